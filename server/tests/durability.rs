//! The durability rule, seen from a client: with storage whose every flush takes 500 ms,
//! no message carrying the heads of a delivered change leaves the server before the flush
//! that stores the change has completed; and when storage fails, nothing is acknowledged,
//! connections are closed with the reason and the server stops with an error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::sync::{Message as SyncMessage, State as SyncState, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use futures_util::{SinkExt, StreamExt};
use nudge_protocol::Message;
use nudge_store::{DocumentId, Location, OpenOptions, Store};
use nudge_testkit::faulty::Faulty;
use nudge_testkit::peer::Ws;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const DELAY: Duration = Duration::from_millis(500);

/// A data folder with one account, its store seen through a [`Faulty`] one whose flushes
/// take `delay` longer (and whose writes fail, when `broken`).
fn setup(delay: Duration, broken: bool) -> (tempfile::TempDir, Store, Arc<Faulty>, String) {
    let data = tempfile::tempdir().unwrap();
    let location = Location::Folder(data.path().to_path_buf());
    let store = Store::open(&location, &OpenOptions::default()).unwrap();
    let (_, token) = nudge_server::Accounts::open(&store.records(), &*store)
        .unwrap()
        .add("ana")
        .unwrap();
    let wrapped = Arc::new(Faulty::over(store.docs()).slow_flushes(delay));
    if broken {
        wrapped.break_writes();
    }
    (data, store, wrapped, token.to_string())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The server library on a loopback port over `store` seen through `wrapped`; stops when
/// the returned sender is used (or dropped).
async fn serve(
    store: &Store,
    wrapped: &Arc<Faulty>,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<anyhow::Result<()>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(nudge_server::run_with(
        listener,
        store.clone(),
        wrapped.clone(),
        nudge_server::Config::default(),
        async {
            let _ = stopped.await;
        },
    ));
    (addr, server, stop)
}

/// Connects with the token and completes the handshake; returns the server's peer id.
async fn joined(addr: std::net::SocketAddr, token: &str) -> (Ws, String) {
    nudge_testkit::peer::connect(&addr.to_string(), token, "phone")
        .await
        .unwrap()
}

#[test]
fn no_acknowledgement_leaves_before_its_flush_completes() {
    let (_data, store, slow, token) = setup(DELAY, false);
    let runtime = runtime();
    runtime.block_on(async {
        let (addr, server, stop) = serve(&store, &slow).await;
        let (mut ws, server_id) = joined(addr, &token).await;

        let id = DocumentId::random();
        let mut doc = Automerge::new();
        for i in 0..3 {
            let mut tx = doc.transaction();
            tx.put(ROOT, format!("k{i}"), i).unwrap();
            tx.commit();
        }
        let ours = doc.get_heads();
        let mut state = SyncState::new();
        let mut changes_sent_at = None;
        let mut acknowledged_at = None;
        let send = |m: SyncMessage| Message::Sync {
            document_id: id.to_string(),
            sender_id: "phone".into(),
            target_id: server_id.clone(),
            data: m.encode(),
        };
        let first = doc.generate_sync_message(&mut state).unwrap();
        ws.send(WsMessage::Binary(send(first).encode().into()))
            .await
            .unwrap();
        while acknowledged_at.is_none() {
            let bytes = match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(WsMessage::Binary(b)))) => b,
                other => panic!("no answer: {other:?}"),
            };
            let Message::Sync { data, .. } = Message::decode(&bytes).unwrap() else {
                continue;
            };
            let message = SyncMessage::decode(&data).unwrap();
            if ours.iter().all(|h| message.heads.contains(h)) {
                acknowledged_at = Some(Instant::now());
            }
            doc.receive_sync_message(&mut state, message).unwrap();
            if let Some(reply) = doc.generate_sync_message(&mut state) {
                if !reply.changes.is_empty() && changes_sent_at.is_none() {
                    changes_sent_at = Some(Instant::now());
                }
                ws.send(WsMessage::Binary(send(reply).encode().into()))
                    .await
                    .unwrap();
            }
        }
        let (sent, acked) = (changes_sent_at.unwrap(), acknowledged_at.unwrap());
        let flushed = slow.flushed_at();
        assert!(
            flushed.iter().any(|f| *f > sent && *f <= acked),
            "the acknowledgement came {:?} after the changes, with no flush completed in between",
            acked - sent
        );
        assert!(
            acked - sent >= DELAY,
            "acknowledged after only {:?}",
            acked - sent
        );
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    });
}

#[test]
fn when_storage_fails_nothing_is_acknowledged_and_the_server_stops() {
    let (_data, store, faulty, token) = setup(Duration::ZERO, true);
    let runtime = runtime();
    runtime.block_on(async {
        let (addr, server, _stop) = serve(&store, &faulty).await;
        let (mut ws, server_id) = joined(addr, &token).await;
        let id = DocumentId::random();
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, "k", 1).unwrap();
        tx.commit();
        let ours = doc.get_heads();
        let mut state = SyncState::new();
        let send = |m: SyncMessage| Message::Sync {
            document_id: id.to_string(),
            sender_id: "phone".into(),
            target_id: server_id.clone(),
            data: m.encode(),
        };
        let first = doc.generate_sync_message(&mut state).unwrap();
        ws.send(WsMessage::Binary(send(first).encode().into()))
            .await
            .unwrap();
        let mut close_reason = None;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(WsMessage::Binary(b)))) => {
                    if let Message::Sync { data, .. } = Message::decode(&b).unwrap() {
                        let message = SyncMessage::decode(&data).unwrap();
                        assert!(
                            !ours.iter().all(|h| message.heads.contains(h)),
                            "a change that could not be stored was acknowledged"
                        );
                        doc.receive_sync_message(&mut state, message).unwrap();
                        if let Some(reply) = doc.generate_sync_message(&mut state) {
                            let _ = ws
                                .send(WsMessage::Binary(send(reply).encode().into()))
                                .await;
                        }
                    }
                }
                Ok(Some(Ok(WsMessage::Close(frame)))) => {
                    close_reason = frame.map(|f| f.reason.to_string());
                    break;
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_))) | Ok(None) => break,
                Err(_) => panic!("the server neither acknowledged nor closed"),
            }
        }
        assert_eq!(
            close_reason.as_deref(),
            Some("server stopping: storage failed")
        );
        let stopped = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server stops")
            .unwrap();
        let err = stopped.expect_err("a storage failure stops the server with an error");
        assert!(err.to_string().contains("No space left on device"), "{err}");
    });
}

/// Syncs `doc` over `ws` until the server reports heads covering ours; `false` if the
/// connection ends first.
async fn push(ws: &mut Ws, server_id: &str, id: &DocumentId, doc: &mut Automerge) -> bool {
    let ours = doc.get_heads();
    let mut state = SyncState::new();
    let send = |m: SyncMessage| Message::Sync {
        document_id: id.to_string(),
        sender_id: "phone".into(),
        target_id: server_id.to_owned(),
        data: m.encode(),
    };
    if let Some(first) = doc.generate_sync_message(&mut state)
        && ws
            .send(WsMessage::Binary(send(first).encode().into()))
            .await
            .is_err()
    {
        return false;
    }
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(WsMessage::Binary(b)))) => {
                let Ok(Message::Sync { data, .. }) = Message::decode(&b) else {
                    continue;
                };
                let message = SyncMessage::decode(&data).unwrap();
                let acked = ours.iter().all(|h| message.heads.contains(h));
                doc.receive_sync_message(&mut state, message).unwrap();
                if acked {
                    return true;
                }
                if let Some(reply) = doc.generate_sync_message(&mut state) {
                    let _ = ws
                        .send(WsMessage::Binary(send(reply).encode().into()))
                        .await;
                }
            }
            Ok(Some(Ok(WsMessage::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => return false,
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("the server neither acknowledged nor closed"),
        }
    }
}

#[test]
fn after_the_disk_fills_and_space_returns_nothing_acknowledged_is_lost() {
    let (_data, store, disk, token) = setup(Duration::ZERO, false);
    let runtime = runtime();
    runtime.block_on(async {
        let id = DocumentId::random();
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, "before", 1).unwrap();
        tx.commit();
        let acknowledged = doc.get_heads();

        let (addr, server, _first_stop) = serve(&store, &disk).await;
        let (mut ws, server_id) = joined(addr, &token).await;
        assert!(
            push(&mut ws, &server_id, &id, &mut doc).await,
            "acknowledged before the disk filled"
        );

        // The disk fills: the next change is refused, not acknowledged, and the server stops.
        disk.break_writes();
        let mut tx = doc.transaction();
        tx.put(ROOT, "during", 2).unwrap();
        tx.commit();
        assert!(
            !push(&mut ws, &server_id, &id, &mut doc).await,
            "acknowledged on a full disk"
        );
        let stopped = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server stops")
            .unwrap();
        assert!(stopped.is_err());

        // Space returns; the server starts again on the same data.
        disk.mend_writes();
        let (addr, server, stop) = serve(&store, &disk).await;
        // What was acknowledged is there, before the device re-sends anything.
        let (mut ws, server_id) = joined(addr, &token).await;
        let mut fetched = Automerge::new();
        let mut state = SyncState::new();
        let first = fetched.generate_sync_message(&mut state).unwrap();
        let request = Message::Request {
            document_id: id.to_string(),
            sender_id: "phone".into(),
            target_id: server_id.clone(),
            data: first.encode(),
        };
        ws.send(WsMessage::Binary(request.encode().into()))
            .await
            .unwrap();
        while !acknowledged
            .iter()
            .all(|h| automerge::ReadDoc::get_change_by_hash(&fetched, h).is_some())
        {
            let Some(Ok(WsMessage::Binary(b))) =
                tokio::time::timeout(Duration::from_secs(10), ws.next())
                    .await
                    .expect("an answer")
            else {
                continue;
            };
            if let Ok(Message::Sync { data, .. }) = Message::decode(&b) {
                fetched
                    .receive_sync_message(&mut state, SyncMessage::decode(&data).unwrap())
                    .unwrap();
                if let Some(reply) = fetched.generate_sync_message(&mut state) {
                    let reply = Message::Sync {
                        document_id: id.to_string(),
                        sender_id: "phone".into(),
                        target_id: server_id.clone(),
                        data: reply.encode(),
                    };
                    ws.send(WsMessage::Binary(reply.encode().into()))
                        .await
                        .unwrap();
                }
            }
        }
        // And the change the full disk refused goes through now.
        let (mut ws, server_id) = joined(addr, &token).await;
        assert!(push(&mut ws, &server_id, &id, &mut doc).await);
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    });
}
