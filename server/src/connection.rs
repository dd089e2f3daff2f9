//! One websocket connection, authenticated before the upgrade (`http.rs`): the protocol
//! handshake, then every inbound message through the guard and on to the
//! documents it names.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use nudge_protocol::admission::{self, Admission, Asking};
use nudge_protocol::{Handshake, Inbound, Message, PeerKey, Step, TokenKind, inspect};
use nudge_store::DocumentId;
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::accounts::Principal;
use crate::documents::{CHANNEL, DocCommand, Event};
use crate::server::Server;

type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// Documents one connection may hold open: a device syncs its journal, its contacts and a
/// view per buddy; each open document costs memory until the connection ends.
const MAX_OPEN_PER_CONNECTION: usize = 1024;

async fn close(ws: &mut Ws, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.chars().take(120).collect::<String>().into(),
    };
    let _ = timeout(std::time::Duration::from_secs(2), ws.close(Some(frame))).await;
}

/// Tells the peer why (an `error` message) and closes with the same reason.
async fn fail(ws: &mut Ws, code: CloseCode, why: &str) {
    let error = Message::Error {
        message: why.to_owned(),
    };
    let _ = ws.send(WsMessage::Binary(error.encode().into())).await;
    close(ws, code, why).await;
}

/// Why a document's actor is gone. After a storage failure its actor ends first and the
/// server's shutdown follows: a message that reaches the document in between is told the
/// same as the shutdown tells every connection, not that the document closed.
fn closed(server: &Server) -> String {
    if server.documents().failure().is_some() {
        crate::STORAGE_FAILED.into()
    } else {
        "document closed".into()
    }
}

/// Serves one authenticated websocket until it closes or the server shuts down.
pub async fn serve(
    mut ws: Ws,
    server: Arc<Server>,
    principal: Principal,
    conn: PeerKey,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(conn, account = %principal.account, token = %principal.token_id, "connected");
    let revoked = server.connected(conn, &principal);
    serve_authenticated(&mut ws, &server, &principal, conn, &mut shutdown, &revoked).await;
    server.disconnected(conn);
}

async fn serve_authenticated(
    ws: &mut Ws,
    server: &Arc<Server>,
    principal: &Principal,
    conn: PeerKey,
    shutdown: &mut watch::Receiver<bool>,
    revoked: &tokio::sync::Notify,
) {
    // The token may have been revoked between the upgrade and now.
    match server.accounts().authenticate_id(&principal.token_id) {
        Ok(true) => {}
        Ok(false) => {
            close(ws, CloseCode::Policy, "token revoked").await;
            return;
        }
        Err(e) => {
            tracing::error!("cannot check a token: {e}");
            close(
                ws,
                CloseCode::Again,
                "the server cannot reach its storage; try again in a moment",
            )
            .await;
            return;
        }
    }
    let Some(remote) = protocol_handshake(ws, server).await else {
        return;
    };
    let idle = server.config().idle_timeout;
    let mut last_heard = tokio::time::Instant::now();
    let mut pinged = false;
    let (tx, mut rx) = mpsc::channel::<Event>(CHANNEL);
    let kick = Arc::new(tokio::sync::Notify::new());
    let mut opened: HashMap<DocumentId, mpsc::Sender<DocCommand>> = HashMap::new();
    // A share that expires closes its connections then, not only at the next upgrade.
    let expiry = principal.expires_ms.map(|at| {
        let left = at.saturating_sub(server.now_ms()).max(0);
        tokio::time::Instant::now() + std::time::Duration::from_millis(left as u64)
    });
    let ended: String = loop {
        let deadline = last_heard + if pinged { idle * 2 } else { idle };
        tokio::select! {
            _ = tokio::time::sleep_until(expiry.unwrap_or(deadline)), if expiry.is_some() => {
                fail(ws, CloseCode::Policy, "this share link has expired").await;
                break "share expired".to_owned();
            }
            _ = tokio::time::sleep_until(deadline) => {
                if pinged {
                    close(ws, CloseCode::Away, "idle: no answer to ping").await;
                    break "idle: no answer to ping".to_owned();
                }
                pinged = true;
                if ws.send(WsMessage::Ping(Vec::new().into())).await.is_err() {
                    break "the ping could not be sent".to_owned();
                }
            }
            _ = shutdown.changed() => {
                let reason = server.stop_reason();
                close(ws, CloseCode::Away, reason).await;
                break reason.to_owned();
            }
            _ = revoked.notified() => {
                fail(ws, CloseCode::Policy, "token revoked").await;
                break "token revoked".to_owned();
            }
            _ = kick.notified() => {
                close(ws, CloseCode::Again, "too slow: messages were piling up").await;
                break "too slow: messages were piling up".to_owned();
            }
            outbound = rx.recv() => match outbound {
                Some(Event::Dropped(why)) => {
                    fail(ws, CloseCode::Policy, &why).await;
                    break why;
                }
                Some(event) => {
                    let bytes = wire(event, server.id(), &remote).encode();
                    server.metrics().messages_out.inc();
                    server.metrics().bytes_out.inc_by(bytes.len() as u64);
                    // A peer that stops reading must not hold this task (and its socket)
                    // forever: a send that cannot complete in time ends the connection.
                    match timeout(server.config().send_timeout, ws.send(WsMessage::Binary(bytes.into()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => break format!("sending failed: {e}"),
                        Err(_) => break "the device stopped reading".to_owned(),
                    }
                }
                None => break "its documents closed".to_owned(),
            },
            inbound = ws.next() => {
                last_heard = tokio::time::Instant::now();
                pinged = false;
                match inbound {
                    Some(Ok(WsMessage::Binary(bytes))) => match counted_inspect(&bytes, server) {
                        Ok(inbound) => {
                            if let Err(why) = route(inbound, server, principal, conn, &remote, (&tx, &kick), &mut opened, ws).await {
                                fail(ws, CloseCode::Policy, &why).await;
                                break why;
                            }
                        }
                        Err(rejection) => {
                            let why = rejection.to_string();
                            fail(ws, CloseCode::Invalid, &why).await;
                            break format!("refused a message: {why}");
                        }
                    },
                    Some(Ok(WsMessage::Text(_))) => {
                        close(ws, CloseCode::Unsupported, "binary CBOR messages only").await;
                        break "a text message".to_owned();
                    }
                    Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(e))) => {
                        server.metrics().guard_rejections.inc();
                        let why = format!("message too large: {e}");
                        close(ws, CloseCode::Size, &why).await;
                        break why;
                    }
                    Some(Ok(WsMessage::Close(_))) => break "closed by the device".to_owned(),
                    None => break "the socket ended".to_owned(),
                    Some(Err(e)) => break format!("reading failed: {e}"),
                    Some(Ok(_)) => {}
                }
            }
        }
    };
    for (_, doc) in opened {
        let _ = doc.send(DocCommand::Close { conn }).await;
    }
    tracing::info!(conn, %ended, "disconnected");
}

/// The wire message for what a document told this connection: from the server (or, for
/// a relayed ephemeral message, from the peer that sent it) to `remote`.
fn wire(event: Event, server_id: &str, remote: &str) -> Message {
    match event {
        Event::Sync { doc, data } => Message::Sync {
            document_id: doc.to_string(),
            sender_id: server_id.to_owned(),
            target_id: remote.to_owned(),
            data,
        },
        Event::Ephemeral {
            doc,
            sender,
            session_id,
            count,
            data,
        } => Message::Ephemeral {
            sender_id: sender,
            target_id: remote.to_owned(),
            count,
            session_id,
            document_id: doc.to_string(),
            data,
        },
        Event::Dropped(message) => Message::Error { message },
    }
}

/// The guard, counted in the metrics.
fn counted_inspect(bytes: &[u8], server: &Server) -> Result<Inbound, nudge_protocol::Rejection> {
    server.metrics().messages_in.inc();
    server.metrics().bytes_in.inc_by(bytes.len() as u64);
    let inspected = inspect(bytes, &server.config().limits);
    if inspected.is_err() {
        server.metrics().guard_rejections.inc();
    }
    inspected
}

/// Waits for `join` and answers `peer`; returns the peer id the client claims. Nothing is
/// keyed by it (sync state and access belong to the connection), so no client can take
/// another's peer id away from it, whoever claimed it first.
async fn protocol_handshake(ws: &mut Ws, server: &Server) -> Option<String> {
    let mut handshake = Handshake::receiving(server.id().to_owned(), None);
    let first = timeout(server.config().handshake_timeout, ws.next()).await;
    let bytes = match first {
        Ok(Some(Ok(WsMessage::Binary(bytes)))) => bytes,
        Err(_) => {
            close(ws, CloseCode::Policy, "no join message in time").await;
            return None;
        }
        _ => {
            close(ws, CloseCode::Protocol, "expected a binary join message").await;
            return None;
        }
    };
    let message = match counted_inspect(&bytes, server) {
        Ok(inbound) => inbound.message,
        Err(e) => {
            close(ws, CloseCode::Invalid, &e.to_string()).await;
            return None;
        }
    };
    match handshake.receive(&message) {
        Step::Established { remote, reply, .. } => {
            if let Some(reply) = reply
                && ws
                    .send(WsMessage::Binary(reply.encode().into()))
                    .await
                    .is_err()
            {
                return None;
            }
            Some(remote)
        }
        Step::Fail(error) => {
            let _ = ws.send(WsMessage::Binary(error.encode().into())).await;
            close(ws, CloseCode::Protocol, "handshake failed").await;
            None
        }
    }
}

/// Acts on one message that passed the guard. An `Err` closes the connection with it.
#[allow(clippy::too_many_arguments)]
async fn route(
    inbound: Inbound,
    server: &Arc<Server>,
    principal: &Principal,
    conn: PeerKey,
    remote: &str,
    (tx, kick): (&mpsc::Sender<Event>, &Arc<tokio::sync::Notify>),
    opened: &mut HashMap<DocumentId, mpsc::Sender<DocCommand>>,
    ws: &mut Ws,
) -> Result<(), String> {
    let is_request = matches!(inbound.message, Message::Request { .. });
    if let Some(sync) = inbound.sync.as_ref().filter(|m| !m.changes.is_empty()) {
        server.may_store(principal, sync.changes.iter().map(|c| c.len() as u64).sum())?;
    }
    match (inbound.message, inbound.document, inbound.sync) {
        (Message::Request { .. } | Message::Sync { .. }, Some(doc), Some(message)) => {
            let actor = match opened.get(&doc) {
                Some(actor) => actor.clone(),
                None => {
                    let asking = Asking {
                        is_request,
                        carries_changes: !message.changes.is_empty(),
                    };
                    let access = match server.admit(principal, &doc, asking)? {
                        Admission::Open(access) => access,
                        Admission::AnswerAsEmpty => {
                            let reply =
                                admission::empty_reply(message).map(|reply| Message::Sync {
                                    document_id: doc.to_string(),
                                    sender_id: server.id().to_owned(),
                                    target_id: remote.to_owned(),
                                    data: reply.encode(),
                                });
                            return match reply {
                                Some(reply) => ws
                                    .send(WsMessage::Binary(reply.encode().into()))
                                    .await
                                    .map_err(|e| e.to_string()),
                                None => Ok(()),
                            };
                        }
                        Admission::Unavailable => {
                            let unavailable = Message::DocUnavailable {
                                sender_id: server.id().to_owned(),
                                target_id: remote.to_owned(),
                                document_id: doc.to_string(),
                            };
                            return ws
                                .send(WsMessage::Binary(unavailable.encode().into()))
                                .await
                                .map_err(|e| e.to_string());
                        }
                    };
                    if opened.len() >= MAX_OPEN_PER_CONNECTION {
                        return Err(format!(
                            "too many documents open on one connection (at most {MAX_OPEN_PER_CONNECTION})"
                        ));
                    }
                    let open = DocCommand::Open {
                        conn,
                        access,
                        tx: tx.clone(),
                        kick: kick.clone(),
                    };
                    let actor = server
                        .documents()
                        .open(doc, open)
                        .await
                        .map_err(|e| format!("{e:#}"))?;
                    opened.insert(doc, actor.clone());
                    actor
                }
            };
            actor
                .send(DocCommand::Sync { conn, message })
                .await
                .map_err(|_| closed(server))
        }
        (Message::Join { .. } | Message::Peer { .. }, _, _) => {
            Err("the handshake is already complete".into())
        }
        (Message::Leave { .. } | Message::Error { .. }, _, _) => Err("bye".into()),
        (
            Message::Ephemeral {
                session_id,
                count,
                data,
                ..
            },
            Some(doc),
            _,
        ) => {
            // Relayed only among the connections syncing the document (so only within
            // the account that may see it); a buddy's share relays nothing.
            if principal.kind == TokenKind::Share {
                return Ok(());
            }
            if let Some(actor) = opened.get(&doc) {
                let relay = DocCommand::Ephemeral {
                    conn,
                    sender: remote.to_owned(),
                    session_id,
                    count,
                    data,
                };
                actor.send(relay).await.map_err(|_| closed(server))?;
            }
            Ok(())
        }
        // doc-unavailable and remote-* need nothing.
        _ => Ok(()),
    }
}
