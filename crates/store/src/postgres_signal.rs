//! Announcements between the nodes on one PostgreSQL database ([`Shared`]): LISTEN/NOTIFY
//! on the channel `nudge`. Writes to a document notify inside their transaction
//! (`postgres.rs`), so that the notification goes out exactly when the change is
//! committed; the server's own announcements go out through [`Shared::announce`].
//!
//! Each store listens on a connection of its own, outside the pool, once something
//! listens: a task on the store's runtime LISTENs, hands every notification from another
//! origin to the listeners, and pings the database every few seconds. When that connection
//! fails it reconnects (backing off up to a second) and then tells the listeners
//! [`Signal::Resumed`], since notifications sent meanwhile are lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use tokio_postgres::{AsyncMessage, NoTls};

use crate::signal::{Listener, Shared, Signal};
use crate::{Error, PgStore};

/// The channel every node listens on.
pub(crate) const CHANNEL: &str = "nudge";

/// How often the listening connection makes sure the database still answers.
const PING_EVERY: Duration = Duration::from_secs(3);

/// What listening needs, shared with its task.
pub(crate) struct Hub {
    /// This store's id in the notifications (its own are not handed to its listeners).
    pub(crate) origin: u64,
    config: tokio_postgres::Config,
    listeners: Mutex<Vec<Arc<Listener>>>,
    started: Once,
    up: AtomicBool,
}

impl Hub {
    pub(crate) fn new(config: tokio_postgres::Config) -> Self {
        let origin = (uuid::Uuid::new_v4().as_u128() >> 64) as u64;
        Self {
            origin,
            config,
            listeners: Mutex::default(),
            started: Once::new(),
            up: AtomicBool::new(false),
        }
    }

    fn deliver(&self, signal: Signal) {
        let listeners = self
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for listener in listeners {
            listener(signal.clone());
        }
    }

    /// A notification's payload, if another store sent it.
    fn heard(&self, payload: &str) {
        match decode(payload) {
            Some((origin, _)) if origin == self.origin => {}
            Some((_, signal)) => self.deliver(signal),
            None => tracing::warn!(
                payload,
                "an announcement this build cannot read was ignored"
            ),
        }
    }

    /// Listens until the connection fails; returns why.
    async fn listen_once(&self) -> Result<(), tokio_postgres::Error> {
        let (client, mut connection) = self.config.connect(NoTls).await?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // The connection does its I/O when polled; notifications come out of that.
        let driver = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if tx.send(n.payload().to_owned()).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!("the database's announcements stopped: {e}");
                        return;
                    }
                    None => return,
                }
            }
        });
        let listened = async {
            client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
            self.up.store(true, Ordering::SeqCst);
            tracing::info!("listening for the other nodes' announcements");
            self.deliver(Signal::Resumed);
            let mut ping = tokio::time::interval(PING_EVERY);
            loop {
                tokio::select! {
                    payload = rx.recv() => match payload {
                        Some(payload) => self.heard(&payload),
                        None => return Ok(()),
                    },
                    _ = ping.tick() => {
                        match tokio::time::timeout(PING_EVERY, client.simple_query("")).await {
                            Ok(Ok(_)) => {}
                            Ok(Err(e)) => return Err(e),
                            Err(_) => {
                                tracing::warn!("the database did not answer a ping within {PING_EVERY:?}");
                                return Ok(());
                            }
                        }
                    }
                }
            }
        };
        let result = listened.await;
        driver.abort();
        result
    }

    async fn run(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let result = self.listen_once().await;
            let was_up = self.up.swap(false, Ordering::SeqCst);
            match result {
                Err(e) if was_up => {
                    tracing::warn!("lost the database's announcements ({e}); reconnecting")
                }
                Err(e) => tracing::debug!("cannot listen to the database yet: {e}"),
                Ok(()) => tracing::warn!("lost the database's announcements; reconnecting"),
            }
            if was_up {
                backoff = Duration::from_millis(50);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
}

/// The longest run of token ids or documents one announcement carries (a notification's
/// payload is capped at 8,000 bytes).
const PER_MESSAGE: usize = 100;

/// `signal` as one or more lines of text, each tagged with the sender's `origin`.
pub(crate) fn encode(signal: &Signal, origin: u64) -> Vec<String> {
    match signal {
        Signal::Changed { doc, position } => vec![format!("c {origin:x} {doc} {position}")],
        Signal::Withdrawn { tokens, documents } => {
            let mut out = Vec::new();
            for chunk in tokens.chunks(PER_MESSAGE) {
                out.push(format!("t {origin:x} {}", chunk.join(" ")));
            }
            for chunk in documents.chunks(PER_MESSAGE) {
                let ids: Vec<String> = chunk.iter().map(|d| d.to_string()).collect();
                out.push(format!("d {origin:x} {}", ids.join(" ")));
            }
            out
        }
        Signal::Resumed => Vec::new(),
    }
}

/// A line [`encode`] wrote and its origin; `None` for anything else.
pub(crate) fn decode(line: &str) -> Option<(u64, Signal)> {
    let mut words = line.split(' ');
    let kind = words.next()?;
    let origin = u64::from_str_radix(words.next()?, 16).ok()?;
    let signal = match kind {
        "c" => {
            let doc = words.next()?.parse().ok()?;
            let position = words.next()?.parse().ok()?;
            Signal::Changed { doc, position }
        }
        "t" => Signal::Withdrawn {
            tokens: words.filter(|w| !w.is_empty()).map(str::to_owned).collect(),
            documents: Vec::new(),
        },
        "d" => Signal::Withdrawn {
            tokens: Vec::new(),
            documents: words.map(str::parse).collect::<Result<_, _>>().ok()?,
        },
        _ => return None,
    };
    Some((origin, signal))
}

impl Shared for PgStore {
    fn listen(&self, listener: Listener) {
        self.hub
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::new(listener));
        let hub = self.hub.clone();
        self.hub.started.call_once(|| {
            self.spawn(hub.run());
        });
    }

    fn announce(&self, signal: &Signal) -> Result<(), Error> {
        let lines = encode(signal, self.hub.origin);
        if lines.is_empty() {
            return Ok(());
        }
        let pool = self.pool.clone();
        self.run(async move {
            let client = pool.get().await?;
            for line in lines {
                client
                    .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &line])
                    .await?;
            }
            Ok(())
        })
    }

    fn listening(&self) -> bool {
        self.hub.up.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DocumentId;

    #[test]
    fn signals_survive_their_encoding_and_long_ones_are_split() {
        let doc = DocumentId::random();
        let changed = Signal::Changed { doc, position: 42 };
        assert_eq!(
            encode(&changed, 7)
                .iter()
                .map(|l| decode(l))
                .collect::<Vec<_>>(),
            vec![Some((7, changed))]
        );
        let tokens: Vec<String> = (0..250).map(|i| format!("tok{i}")).collect();
        let withdrawn = Signal::Withdrawn {
            tokens: tokens.clone(),
            documents: vec![doc],
        };
        let lines = encode(&withdrawn, u64::MAX);
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| l.len() < 8000));
        let mut heard = Vec::new();
        let mut docs = Vec::new();
        for line in &lines {
            let (origin, signal) = decode(line).unwrap();
            assert_eq!(origin, u64::MAX);
            let Signal::Withdrawn {
                tokens: t,
                documents: d,
            } = signal
            else {
                panic!("{signal:?}");
            };
            heard.extend(t);
            docs.extend(d);
        }
        assert_eq!(heard, tokens);
        assert_eq!(docs, vec![doc]);
        assert_eq!(decode("c zz nonsense"), None);
        assert_eq!(decode(""), None);
    }
}
