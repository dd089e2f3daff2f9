//! The websocket side of a sync: one connection to the server, documents added as they
//! become known, each message received within the sync's deadline, what it brought stored
//! through the replica, and the store let go while the wait is long (`Replica::park`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, anyhow};
use futures_util::{SinkExt, StreamExt};
use nudge_journal::automerge::Automerge;
use nudge_protocol::{ClientSync, Limits, Message, inspect};
use nudge_replica::Replica;
use nudge_store::DocumentId;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::api::{Api, broke, refused, unreachable};
use crate::counted::Counted;

type Ws = WebSocketStream<MaybeTlsStream<Counted<TcpStream>>>;

/// Largest message accepted from the server: a first fetch of a big journal comes whole,
/// and a 100,000-shift journal is a few MiB; more than this is no journal (and would cost
/// twice its size in memory to read).
const MAX_INBOUND: usize = 64 << 20;

/// Messages in a row that bring nothing new to store, after which a server that keeps
/// talking without getting anywhere is given up on.
const MAX_ROUNDS_WITHOUT_PROGRESS: u32 = 256;

/// The store is let go (`Replica::park`) when the next message takes longer than this, so
/// that other commands work while a sync waits on the network.
const HOLD_IDLE: Duration = Duration::from_millis(200);

/// Nor is it held for longer than this at a time while a sync goes on (a server that keeps
/// sending cannot keep the device's other commands out).
const MAX_HOLD: Duration = Duration::from_secs(1);

/// The websocket side: one connection, documents added as they become known.
pub(crate) struct Link {
    pub(crate) ws: Ws,
    pub(crate) client: ClientSync,
    limits: Limits,
    url: String,
    timeout: Duration,
    /// When a one-shot sync gives up, however much the server keeps talking (`--timeout`).
    deadline: tokio::time::Instant,
    /// Messages in a row that stored nothing.
    rounds_without_progress: u32,
    progress: Progress,
}

/// What has arrived, on stderr, for syncs that take a while: on a terminal only, from the
/// first byte (counted under the websocket, so a journal fetched whole shows while it
/// comes), cleared when the sync ends; never for `sync --watch` ([`NO_PROGRESS`]).
struct Progress {
    bar: indicatif::ProgressBar,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

/// Set by `sync --watch`: its output is a log, so no sync of this process shows progress.
pub(crate) static NO_PROGRESS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// How long a sync runs before it shows anything: a quick one never flashes a bar.
const PROGRESS_AFTER: Duration = Duration::from_millis(300);

impl Progress {
    fn new(read: Arc<AtomicU64>) -> Self {
        let bar = indicatif::ProgressBar::hidden();
        let show = std::io::IsTerminal::is_terminal(&std::io::stderr())
            && !NO_PROGRESS.load(Ordering::Relaxed);
        let ticker = show.then(|| {
            let (bar, read) = (bar.clone(), read.clone());
            tokio::spawn(async move {
                tokio::time::sleep(PROGRESS_AFTER).await;
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} syncing: {bytes} received ({bytes_per_sec})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                let mut redraw = tokio::time::interval(Duration::from_millis(100));
                loop {
                    redraw.tick().await;
                    bar.set_position(read.load(Ordering::Relaxed));
                    bar.tick();
                }
            })
        });
        Self { bar, ticker }
    }

    fn finish(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // On an error path too, the error line must not land after a stale bar.
        self.finish();
    }
}

impl Link {
    pub(crate) async fn connect(api: &Api<'_>, timeout: Duration) -> Result<Self> {
        api.let_go()?;
        let url = api.url.clone();
        let endpoints = &api.endpoints;
        let token = api.token().unwrap_or_default();
        let mut request = endpoints
            .sync
            .as_str()
            .into_client_request()
            .map_err(|e| anyhow!("{url:?} is not a usable address: {e}"))?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            anyhow!("the stored token is damaged; run `nudge remote remove` and add it again")
        })?;
        request.headers_mut().insert("Authorization", bearer);
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_INBOUND))
            .max_frame_size(Some(MAX_INBOUND));
        let read = Arc::new(AtomicU64::new(0));
        let host = request.uri().host().unwrap_or_default().to_owned();
        let port =
            request
                .uri()
                .port_u16()
                .unwrap_or(if request.uri().scheme_str() == Some("wss") {
                    443
                } else {
                    80
                });
        let connected = tokio::time::timeout(timeout, async {
            let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
                .await
                .map_err(tokio_tungstenite::tungstenite::Error::Io)?;
            let _ = tcp.set_nodelay(true);
            let counted = Counted {
                inner: tcp,
                read: read.clone(),
            };
            tokio_tungstenite::client_async_tls_with_config(request, counted, Some(config), None)
                .await
        })
        .await
        .map_err(|_| unreachable(&url, "no answer in time"))?;
        let ws = match connected {
            Ok((ws, _)) => ws,
            Err(tokio_tungstenite::tungstenite::Error::Http(response))
                if response.status().as_u16() == 401 =>
            {
                return Err(refused(&url));
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(response))
                if response.status().as_u16() == 429 =>
            {
                return Err(crate::api::throttled(&url));
            }
            Err(e) => return Err(unreachable(&url, e)),
        };
        let peer_id = format!("nudge-cli-{}", nudge_journal::ids::new_id());
        let (client, join) = ClientSync::new(peer_id);
        let limits = Limits {
            max_message_bytes: MAX_INBOUND,
            ..Limits::default()
        };
        let mut link = Self {
            ws,
            client,
            limits,
            url,
            timeout,
            deadline: tokio::time::Instant::now() + timeout,
            rounds_without_progress: 0,
            progress: Progress::new(read),
        };
        link.send(vec![join]).await?;
        while !link.client.is_established() {
            link.step(None).await?;
        }
        Ok(link)
    }

    pub(crate) async fn send(&mut self, messages: Vec<Message>) -> Result<()> {
        for message in messages {
            self.ws
                .send(WsMessage::Binary(message.encode().into()))
                .await
                .map_err(|e| broke(&self.url, e))?;
        }
        Ok(())
    }

    /// Receives one message and acts on it; stores what it brought through `session`.
    /// Within the sync's deadline (`--timeout` for the whole exchange, not per message),
    /// and within [`MAX_ROUNDS_WITHOUT_PROGRESS`].
    async fn step(&mut self, session: Option<&Replica>) -> Result<()> {
        let next = self.next_message(session).await?;
        let (document, replies) = self.receive(next)?;
        let mut stored = false;
        if let (Some(session), Some(id)) = (session, document) {
            match self.client.doc(&id) {
                // A document fetched into an empty device: one snapshot, not a log entry
                // per change (a 10,000-shift journal stored in a fraction of the time).
                // Empty in the store too: another command may have written to it while
                // the store was let go, and a snapshot replaces what is there.
                Some(doc)
                    if self.client.nothing_stored(&id)
                        && !doc.get_heads().is_empty()
                        && session.store_position(&id)? == 0 =>
                {
                    session.store_whole(&id, doc)?;
                    self.client.mark_stored(&id);
                    stored = true;
                }
                _ => {
                    let changes = self.client.take_new_changes(&id);
                    if !changes.is_empty() {
                        session.store_changes(&id, &changes)?;
                        stored = true;
                    }
                }
            }
        }
        self.rounds_without_progress = if stored {
            0
        } else {
            self.rounds_without_progress + 1
        };
        if self.rounds_without_progress > MAX_ROUNDS_WITHOUT_PROGRESS {
            return Err(broke(
                &self.url,
                format!(
                    "{MAX_ROUNDS_WITHOUT_PROGRESS} messages in a row brought nothing new; is it a nudge server?"
                ),
            ));
        }
        self.send(replies).await
    }

    /// Waits for the next message, within the sync's deadline. The store is let go when
    /// the wait outlasts [`HOLD_IDLE`], or the session has held it for [`MAX_HOLD`].
    async fn next_message(
        &mut self,
        session: Option<&Replica>,
    ) -> Result<Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>> {
        if let Some(session) = session
            && let Some(since) = session.held_since()
        {
            let let_go_at = tokio::time::Instant::from_std(since + MAX_HOLD)
                .min(tokio::time::Instant::now() + HOLD_IDLE);
            if let_go_at < self.deadline {
                // Cancel-safe: a message that was not whole yet stays in the stream.
                match tokio::time::timeout_at(let_go_at, self.ws.next()).await {
                    Ok(next) => return Ok(next),
                    Err(_) => session.park()?,
                }
            }
        }
        tokio::time::timeout_at(self.deadline, self.ws.next())
            .await
            .map_err(|_| {
                broke(
                    &self.url,
                    format!(
                        "the sync did not finish within {} s (--timeout)",
                        self.timeout.as_secs()
                    ),
                )
            })
    }

    /// Acts on what the socket gave, without I/O: returns the document it was about and
    /// the replies to send.
    pub(crate) fn receive(
        &mut self,
        next: Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<(Option<DocumentId>, Vec<Message>)> {
        let bytes = match next {
            Some(Ok(WsMessage::Binary(bytes))) => bytes,
            Some(Ok(WsMessage::Close(frame))) => {
                let why = frame
                    .map(|f| f.reason.to_string())
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "closed by the server".into());
                return Err(broke(&self.url, why));
            }
            Some(Ok(_)) => return Ok((None, Vec::new())),
            Some(Err(e)) => return Err(broke(&self.url, e)),
            None => return Err(broke(&self.url, "closed by the server")),
        };
        let inbound = inspect(&bytes, &self.limits)
            .map_err(|e| anyhow!("the server at {} sent a bad message ({e}); nothing bad was stored: run `nudge sync` again", self.url))?;
        let document = inbound.document;
        let replies = self.client.receive(inbound).map_err(|e| match e {
            nudge_protocol::ClientError::Server(why) => crate::api::ended(&self.url, &why),
            nudge_protocol::ClientError::ActorReused {
                document,
                actor,
                seq,
            } => anyhow::Error::new(crate::actor_moves::ActorReused {
                document,
                actor,
                seq,
            }),
            other => anyhow!("{other}; run `nudge sync` again"),
        })?;
        Ok((document, replies))
    }

    /// The sync's `--timeout`.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) async fn add(&mut self, id: DocumentId, doc: Automerge) -> Result<()> {
        let messages = self.client.add(id, doc);
        self.send(messages).await
    }

    pub(crate) async fn until_done(&mut self, session: &Replica) -> Result<()> {
        while !self.client.is_done() {
            self.step(Some(session)).await?;
        }
        Ok(())
    }

    pub(crate) async fn close(mut self) {
        self.progress.finish();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }
}
