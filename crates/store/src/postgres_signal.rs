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
        match Signal::decode(payload) {
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
        let lines = signal.encode(self.hub.origin);
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
