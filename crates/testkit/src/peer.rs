//! A websocket peer speaking automerge-repo's protocol to a server on loopback: the socket
//! (opened with a token, Nagle off as the CLI has it), the `join`/`peer` handshake, and a
//! client of one document that syncs it (asking with `request` while it holds nothing, as
//! automerge-repo clients do). The benchmarks, the load tool and the end-to-end tests use
//! it, against nudge-server and the servers nudge is compared with.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use automerge::Automerge;
use automerge::sync::{Message as SyncMessage, State as SyncState, SyncDoc};
use futures_util::{SinkExt, StreamExt};
use nudge_protocol::Message;
use nudge_store::DocumentId;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::InvalidHeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client's websocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a send may wait to be written before the server counts as having stopped
/// reading.
pub const STUCK: Duration = Duration::from_secs(60);

/// Opens `ws://ADDR/v1/sync`, presenting `token` (`Authorization: Bearer`) when given;
/// a refusal is tungstenite's `Error::Http` with the server's response.
pub async fn open(addr: &str, token: Option<&str>) -> Result<Ws, tungstenite::Error> {
    let mut request = format!("ws://{addr}/v1/sync").into_client_request()?;
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|e: InvalidHeaderValue| tungstenite::Error::HttpFormat(e.into()))?;
        request.headers_mut().insert("authorization", value);
    }
    // Nagle off, as the CLI has it: otherwise back-to-back messages wait for delayed ACKs.
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true).await?;
    Ok(ws)
}

/// Says `join` as `me` and waits for the server's `peer` (addressed to `me`); returns the
/// server's peer id. A server may ping first (Node's keeps every connection alive with
/// pings, and one can come before its answer when it is busy).
pub async fn join(ws: &mut Ws, me: &str) -> Result<String> {
    let join = Message::Join {
        sender_id: me.into(),
        supported_protocol_versions: vec!["1".into()],
        metadata: None,
    };
    ws.send(WsMessage::Binary(join.encode().into())).await?;
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Binary(b))) => match Message::decode(&b)? {
                Message::Peer {
                    sender_id,
                    target_id,
                    ..
                } if target_id == me => return Ok(sender_id),
                other => bail!("expected peer, got {other:?}"),
            },
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
            other => bail!("expected peer, got {other:?}"),
        }
    }
}

/// [`open`] with `token`, then [`join`]: the socket and the server's peer id.
pub async fn connect(addr: &str, token: &str, me: &str) -> Result<(Ws, String)> {
    let mut ws = open(addr, Some(token)).await?;
    let server = join(&mut ws, me).await?;
    Ok((ws, server))
}

/// The next frame within `wait`; `None` when none came or the socket ended.
pub async fn recv(ws: &mut Ws, wait: Duration) -> Option<WsMessage> {
    match tokio::time::timeout(wait, ws.next()).await {
        Ok(Some(Ok(m))) => Some(m),
        _ => None,
    }
}

/// A `sync` frame from `me` to `server` about `id`.
pub fn sync_frame(id: &DocumentId, me: &str, server: &str, m: SyncMessage) -> WsMessage {
    let message = Message::Sync {
        document_id: id.to_string(),
        sender_id: me.into(),
        target_id: server.into(),
        data: m.encode(),
    };
    WsMessage::Binary(message.encode().into())
}

/// One client of one document: its Automerge copy and sync state over a websocket.
pub struct Peer {
    /// The socket.
    pub ws: Ws,
    /// The peer id it joined as.
    pub me: String,
    /// The server's peer id.
    pub server: String,
    /// The document.
    pub id: DocumentId,
    /// Its copy of the document.
    pub doc: Automerge,
    /// Its sync state with the server.
    pub state: SyncState,
    /// When the last sync message from the server was applied (before the answer to it
    /// was made and sent: a change has arrived once it is in the document).
    pub applied_at: Instant,
    /// Whether it has sent its `request` yet.
    asked: bool,
}

impl Peer {
    /// A client of document `id` holding `doc`, connected to the server at `addr` as `me`.
    pub async fn join(
        addr: &str,
        token: &str,
        me: String,
        id: DocumentId,
        doc: Automerge,
    ) -> Result<Self> {
        let (ws, server) = connect(addr, token, &me).await?;
        Ok(Self {
            ws,
            me,
            server,
            id,
            doc,
            state: SyncState::new(),
            applied_at: Instant::now(),
            asked: false,
        })
    }

    /// Sends what the sync state says is due, if anything: a `request` while the client
    /// holds nothing and has not asked yet, else a `sync`.
    pub async fn send_pending(&mut self) -> Result<()> {
        let Some(m) = self.doc.generate_sync_message(&mut self.state) else {
            return Ok(());
        };
        let frame = if self.doc.get_heads().is_empty() && !self.asked {
            self.asked = true;
            let request = Message::Request {
                document_id: self.id.to_string(),
                sender_id: self.me.clone(),
                target_id: self.server.clone(),
                data: m.encode(),
            };
            WsMessage::Binary(request.encode().into())
        } else {
            sync_frame(&self.id, &self.me, &self.server, m)
        };
        // A server that stops reading would otherwise hold this send for ever (seen with
        // the Node server on a 10,000-shift journal taking changes back to back).
        tokio::time::timeout(STUCK, self.ws.send(frame))
            .await
            .map_err(|_| {
                anyhow!(
                    "the server stopped reading (a send waited {} s)",
                    STUCK.as_secs()
                )
            })??;
        Ok(())
    }

    /// Takes one binary frame: a `sync` (or a `request`: samod forwards one to the peers
    /// it syncs the document with) about this document is applied and answered; frames
    /// about other documents (a server that announces every document) are ignored.
    /// Returns whether it was about this document.
    pub async fn receive(&mut self, bytes: &[u8]) -> Result<bool> {
        match Message::decode(bytes)? {
            Message::Sync {
                data, document_id, ..
            }
            | Message::Request {
                data, document_id, ..
            } if document_id == self.id.to_string() => {
                self.doc
                    .receive_sync_message(&mut self.state, SyncMessage::decode(&data)?)?;
                self.applied_at = Instant::now();
                self.send_pending().await?;
                Ok(true)
            }
            // Not there yet (a server that has not finished taking it in): ask again
            // shortly, with a fresh sync state, as a client would.
            Message::DocUnavailable { document_id, .. } if document_id == self.id.to_string() => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                self.state = SyncState::new();
                self.asked = false;
                self.send_pending().await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Receives one frame within `wait` and acts on it; false when none came in time.
    pub async fn step(&mut self, wait: Duration) -> Result<bool> {
        let next = match tokio::time::timeout(wait, self.ws.next()).await {
            Ok(next) => next,
            Err(_) => return Ok(false),
        };
        match next {
            Some(Ok(WsMessage::Binary(b))) => {
                self.receive(&b).await?;
                Ok(true)
            }
            Some(Ok(_)) => Ok(true),
            other => bail!("connection ended: {other:?}"),
        }
    }

    /// Whether the server last reported exactly this client's heads.
    pub fn acknowledged(&self) -> bool {
        let mut ours = self.doc.get_heads();
        ours.sort();
        let theirs = self.state.their_heads.clone().map(|mut h| {
            h.sort();
            h
        });
        theirs == Some(ours)
    }

    /// Syncs until the server reports exactly this client's heads.
    pub async fn settle(&mut self) -> Result<()> {
        self.send_pending().await?;
        // Equal heads are done, whether or not our last message has been answered: a
        // server with nothing to add sends nothing (samod 0.16 often does not).
        while !self.acknowledged() {
            if !self.step(Duration::from_secs(10)).await? {
                bail!("the server stopped answering");
            }
        }
        Ok(())
    }

    /// Sends a close frame and reads until the server answers it (2 s at most).
    pub async fn close(&mut self) {
        close(&mut self.ws).await;
    }
}

/// Sends a close frame on `ws` and reads until the server answers it (2 s at most).
pub async fn close(ws: &mut Ws) {
    let _ = ws.send(WsMessage::Close(None)).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}
