//! One websocket connection: authentication in the HTTP handshake (before the upgrade),
//! the protocol handshake, then every inbound message through the guard and on to the
//! documents it names.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use nudge_protocol::{Access, Handshake, Inbound, Message, PeerKey, Step, TokenKind, inspect};
use nudge_store::DocumentId;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message as WsMessage, protocol::WebSocketConfig};
use tokio_tungstenite::{WebSocketStream, accept_hdr_async_with_config};

use crate::Shared;
use crate::accounts::Principal;
use crate::documents::{CHANNEL, DocCommand};

type Ws = WebSocketStream<TcpStream>;

fn refuse(status: StatusCode, why: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(why.to_owned()));
    *response.status_mut() = status;
    response
}

/// The token a request carries: `Authorization: Bearer <token>`, or `?token=<token>` for
/// clients that cannot set headers (browsers).
fn presented_token(request: &Request) -> Option<String> {
    if let Some(value) = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        && let Some(token) = value.strip_prefix("Bearer ")
    {
        return Some(token.trim().to_owned());
    }
    request
        .uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token=").map(str::to_owned))
}

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

/// Serves one accepted TCP connection until it closes or the server shuts down.
#[allow(clippy::result_large_err)] // the handshake callback's error type is tungstenite's
pub async fn serve(
    stream: TcpStream,
    shared: Arc<Shared>,
    conn: PeerKey,
    mut shutdown: watch::Receiver<bool>,
) {
    let slot: Arc<std::sync::Mutex<Option<Principal>>> = Arc::default();
    let callback = {
        let slot = slot.clone();
        let accounts = shared.accounts.clone();
        move |request: &Request, response: Response| {
            let path = request.uri().path();
            if path != "/" && path != "/v1/sync" {
                return Err(refuse(
                    StatusCode::NOT_FOUND,
                    "no such endpoint: sync at /v1/sync",
                ));
            }
            match presented_token(request).and_then(|t| accounts.authenticate(&t)) {
                Some(principal) => {
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(principal);
                    Ok(response)
                }
                None => Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "missing, unknown or revoked token",
                )),
            }
        }
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(shared.config.limits.max_message_bytes))
        .max_frame_size(Some(shared.config.limits.max_message_bytes));
    let accepted = timeout(
        shared.config.handshake_timeout,
        accept_hdr_async_with_config(stream, callback, Some(config)),
    )
    .await;
    let mut ws = match accepted {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(conn, "handshake refused: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(conn, "handshake timed out");
            return;
        }
    };
    let Some(principal) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return;
    };
    tracing::info!(conn, account = %principal.account, token = %principal.token_id, "connected");
    let Some(remote) = protocol_handshake(&mut ws, &shared, &principal).await else {
        return;
    };
    let idle = shared.config.idle_timeout;
    let mut last_heard = tokio::time::Instant::now();
    let mut pinged = false;
    let (tx, mut rx) = mpsc::channel::<Message>(CHANNEL);
    let kick = Arc::new(tokio::sync::Notify::new());
    let mut opened: HashMap<DocumentId, mpsc::Sender<DocCommand>> = HashMap::new();
    loop {
        let deadline = last_heard + if pinged { idle * 2 } else { idle };
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                if pinged {
                    close(&mut ws, CloseCode::Away, "idle: no answer to ping").await;
                    break;
                }
                pinged = true;
                if ws.send(WsMessage::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            _ = shutdown.changed() => {
                close(&mut ws, CloseCode::Away, "server shutting down").await;
                break;
            }
            _ = kick.notified() => {
                close(&mut ws, CloseCode::Again, "too slow: messages were piling up").await;
                break;
            }
            outbound = rx.recv() => match outbound {
                Some(Message::Error { message }) => {
                    fail(&mut ws, CloseCode::Policy, &message).await;
                    break;
                }
                Some(message) => {
                    if ws.send(WsMessage::Binary(message.encode().into())).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            inbound = ws.next() => {
                last_heard = tokio::time::Instant::now();
                pinged = false;
                match inbound {
                    Some(Ok(WsMessage::Binary(bytes))) => match inspect(&bytes, &shared.config.limits) {
                        Ok(inbound) => {
                            if let Err(why) = route(inbound, &shared, &principal, conn, &remote, (&tx, &kick), &mut opened, &mut ws).await {
                                fail(&mut ws, CloseCode::Policy, &why).await;
                                break;
                            }
                        }
                        Err(rejection) => {
                            let why = rejection.to_string();
                            tracing::info!(conn, "refused a message: {why}");
                            fail(&mut ws, CloseCode::Invalid, &why).await;
                            break;
                        }
                    },
                    Some(Ok(WsMessage::Text(_))) => {
                        close(&mut ws, CloseCode::Unsupported, "binary CBOR messages only").await;
                        break;
                    }
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                }
            }
        }
    }
    for (_, doc) in opened {
        let _ = doc.send(DocCommand::Close { conn }).await;
    }
    release_peer_id(&shared, &remote, &principal);
    tracing::info!(conn, "disconnected");
}

/// Frees a peer id this credential reserved.
fn release_peer_id(shared: &Shared, remote: &str, principal: &Principal) {
    let mut peer_ids = shared.peer_ids.lock().unwrap_or_else(|p| p.into_inner());
    if peer_ids.get(remote) == Some(&principal.token_id) {
        peer_ids.remove(remote);
    }
}

/// Waits for `join`, reserves the claimed peer id for this credential (refusing one held
/// under another), and only then answers `peer`; returns the peer id.
async fn protocol_handshake(ws: &mut Ws, shared: &Shared, principal: &Principal) -> Option<String> {
    let mut handshake = Handshake::receiving(shared.server_id.clone(), None);
    let first = timeout(shared.config.handshake_timeout, ws.next()).await;
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
    let message = match inspect(&bytes, &shared.config.limits) {
        Ok(inbound) => inbound.message,
        Err(e) => {
            close(ws, CloseCode::Invalid, &e.to_string()).await;
            return None;
        }
    };
    match handshake.receive(&message) {
        Step::Established { remote, reply, .. } => {
            // Reserved before `peer` goes out, so that once a client has its answer no other
            // credential can take the same peer id.
            let taken = {
                let mut peer_ids = shared.peer_ids.lock().unwrap_or_else(|p| p.into_inner());
                match peer_ids.get(&remote) {
                    Some(holder) if *holder != principal.token_id => true,
                    _ => {
                        peer_ids.insert(remote.clone(), principal.token_id.clone());
                        false
                    }
                }
            };
            if taken {
                fail(
                    ws,
                    CloseCode::Policy,
                    "that peer id is connected under another credential",
                )
                .await;
                return None;
            }
            if let Some(reply) = reply
                && ws
                    .send(WsMessage::Binary(reply.encode().into()))
                    .await
                    .is_err()
            {
                release_peer_id(shared, &remote, principal);
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
    shared: &Arc<Shared>,
    principal: &Principal,
    conn: PeerKey,
    remote: &str,
    (tx, kick): (&mpsc::Sender<Message>, &Arc<tokio::sync::Notify>),
    opened: &mut HashMap<DocumentId, mpsc::Sender<DocCommand>>,
    ws: &mut Ws,
) -> Result<(), String> {
    let is_request = matches!(inbound.message, Message::Request { .. });
    match (inbound.message, inbound.document, inbound.sync) {
        (Message::Request { .. } | Message::Sync { .. }, Some(doc), Some(message)) => {
            let actor = match opened.get(&doc) {
                Some(actor) => actor.clone(),
                None => {
                    let owner = shared
                        .accounts
                        .owner(&doc)
                        .map_err(|e| format!("storage failed: {e}"))?;
                    let allowed = principal.kind != TokenKind::Share
                        && match owner {
                            Some(owner) => owner == principal.account,
                            // A document nobody owns yet becomes the account's when it first
                            // delivers changes; a request never creates it.
                            None => !is_request,
                        };
                    if !allowed {
                        let unavailable = Message::DocUnavailable {
                            sender_id: shared.server_id.clone(),
                            target_id: remote.to_owned(),
                            document_id: doc.to_string(),
                        };
                        return ws
                            .send(WsMessage::Binary(unavailable.encode().into()))
                            .await
                            .map_err(|e| e.to_string());
                    }
                    let actor = shared
                        .documents
                        .get(doc)
                        .await
                        .map_err(|e| format!("{e:#}"))?;
                    let open = DocCommand::Open {
                        conn,
                        remote: remote.to_owned(),
                        account: principal.account.clone(),
                        access: Access::ReadWrite,
                        tx: tx.clone(),
                        kick: kick.clone(),
                    };
                    actor
                        .send(open)
                        .await
                        .map_err(|_| "document closed".to_owned())?;
                    opened.insert(doc, actor.clone());
                    actor
                }
            };
            actor
                .send(DocCommand::Sync { conn, message })
                .await
                .map_err(|_| "document closed".to_owned())
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
            // the account that may see it).
            if let Some(actor) = opened.get(&doc) {
                let relay = DocCommand::Ephemeral {
                    conn,
                    session_id,
                    count,
                    data,
                };
                actor
                    .send(relay)
                    .await
                    .map_err(|_| "document closed".to_owned())?;
            }
            Ok(())
        }
        // doc-unavailable and remote-* need nothing.
        _ => Ok(()),
    }
}
