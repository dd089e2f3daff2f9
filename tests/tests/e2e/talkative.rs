//! A server (or anything in between) that never lets a sync finish: it answers the
//! handshake, then keeps talking (pings, and sync messages claiming heads it never sends).
//! `nudge sync --timeout` is a deadline for the whole exchange: it gives up in time, with
//! exit code 3 and one line, and the device keeps working offline.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use nudge_protocol::Message;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::util::Home;

/// Serves `GET /v1/journal` as "no journal yet" and every websocket as a peer that talks
/// for ever; `claims` says whether it also sends sync messages with made-up heads. Each
/// device's join is told on `joined`.
pub(crate) async fn endless(
    listener: TcpListener,
    claims: bool,
    joined: std::sync::mpsc::Sender<()>,
) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let joined = joined.clone();
        tokio::spawn(async move {
            let Some(text) = crate::util::read_http_head(&mut stream).await else {
                return;
            };
            let key = text.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_owned())
            });
            let Some(key) = key else {
                let body = r#"{"journal":null}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                return;
            };
            let answer = format!(
                "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                derive_accept_key(key.as_bytes())
            );
            if stream.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
            let mut ws = WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
            let mut me = String::new();
            let mut docs = Vec::new();
            // Pings alone come slower: they must hit the deadline, not the round cap.
            let every = if claims { 5 } else { 50 };
            let mut tick = tokio::time::interval(Duration::from_millis(every));
            let mut made_up = 0u64;
            loop {
                tokio::select! {
                    inbound = ws.next() => match inbound {
                        Some(Ok(WsMessage::Binary(b))) => match Message::decode(&b) {
                            Ok(Message::Join { sender_id, .. }) => {
                                me = sender_id.clone();
                                let peer = Message::Peer {
                                    sender_id: "endless".into(),
                                    target_id: sender_id,
                                    selected_protocol_version: "1".into(),
                                    metadata: None,
                                };
                                let _ = ws.send(WsMessage::Binary(peer.encode().into())).await;
                                let _ = joined.send(());
                            }
                            Ok(Message::Sync { document_id, .. } | Message::Request { document_id, .. }) => {
                                docs.push(document_id);
                            }
                            _ => {}
                        },
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                    _ = tick.tick() => {
                        if ws.send(WsMessage::Ping(Vec::new().into())).await.is_err() {
                            return;
                        }
                        if claims {
                            for doc in &docs {
                                made_up += 1;
                                let mut hash = [7u8; 32];
                                hash[..8].copy_from_slice(&made_up.to_be_bytes());
                                let claim = automerge::sync::Message {
                                    heads: vec![automerge::ChangeHash(hash)],
                                    need: Vec::new(),
                                    have: Vec::new(),
                                    changes: Vec::<Vec<u8>>::new().into(),
                                    flags: None,
                                    version: automerge::sync::MessageVersion::V1,
                                };
                                let sync = Message::Sync {
                                    document_id: doc.clone(),
                                    sender_id: "endless".into(),
                                    target_id: me.clone(),
                                    data: claim.encode(),
                                };
                                if ws.send(WsMessage::Binary(sync.encode().into())).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                }
            }
        });
    }
}

fn gives_up_in_time(claims: bool) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(endless(listener, claims, std::sync::mpsc::channel().0));
    let home = Home::new();
    home.new_id(&["add", "Email Sam"]);
    let token = format!("nudge_acct_{}_{}", "a".repeat(12), "b".repeat(64));
    home.remote_add(&format!("http://{addr}"), &token);
    let before = home.ok(&["export", "--json"]);
    let started = Instant::now();
    let err = home.fails(3, &["sync", "--timeout", "3"]);
    let took = started.elapsed();
    eprintln!("gave up after {took:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let expected = if claims {
        "brought nothing new"
    } else {
        "did not finish within 3 s"
    };
    assert!(err.contains(expected), "{err}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    // The device works offline again at once, and nothing was lost.
    assert_eq!(home.ok(&["export", "--json"]), before);
    home.new_id(&["add", "Call Priya"]);
}

#[test]
fn a_server_that_only_pings_cannot_hold_a_sync() {
    gives_up_in_time(false);
}

#[test]
fn a_server_that_claims_heads_it_never_sends_cannot_hold_a_sync() {
    gives_up_in_time(true);
}
