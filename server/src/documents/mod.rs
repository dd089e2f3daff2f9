//! Document actors: one task per loaded document owns its [`DocSession`] and carries out
//! the session's actions. Changes are sealed into a batch, appended and flushed on a
//! blocking thread, and only then does the session hear `persisted_through` that batch: no
//! sync message advertising heads reaches the connection that delivered the changes behind
//! them before they are durable (the other connections get them at once,
//! `DocSession::relay`). While one batch is stored the actor goes on handling messages and
//! relaying, gathering the next batch. A connection talks to a document through a bounded
//! channel, and hears back through its own bounded channel as [`Event`]s, which the
//! connection turns into wire messages (peer ids are the connection's business, not the
//! document's); a peer that cannot keep up is dropped, never buffered without bound.
//!
//! - `registry.rs`: which documents are loaded, load gates, unload, forget.
//! - `actor.rs`: one document's loop.
//! - `batch.rs`: the batching and flush policy, without I/O.
//! - `storage.rs`: the storage calls (store and flush, compact), bounded by a timeout.
//! - `follow.rs`: catching up with what other nodes on a shared database stored.

mod actor;
mod batch;
mod follow;
mod registry;
#[cfg(test)]
mod shared_tests;
mod storage;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use nudge_protocol::{Access, PeerKey};
use nudge_store::{DocStore, DocumentId};
use tokio::sync::{Mutex, Notify, mpsc};

use crate::accounts::Accounts;
use crate::metrics::Metrics;

/// Capacity of each channel (to a document, to a connection).
pub const CHANNEL: usize = 64;

/// What a document tells one of its connections.
#[derive(Debug)]
pub enum Event {
    /// An Automerge sync message for the document.
    Sync {
        /// The document.
        doc: DocumentId,
        /// The encoded sync message.
        data: Vec<u8>,
    },
    /// Another connection's ephemeral message, relayed.
    Ephemeral {
        /// The document.
        doc: DocumentId,
        /// The peer id the other connection claimed.
        sender: String,
        /// Its session.
        session_id: String,
        /// Its sequence number.
        count: u64,
        /// Its payload.
        data: Vec<u8>,
    },
    /// The document dropped this connection: why (sent to the peer as an `error`, and
    /// the connection closes).
    Dropped(String),
}

/// What a connection asks of a document.
pub enum DocCommand {
    /// Start syncing with this connection.
    Open {
        /// The connection.
        conn: PeerKey,
        /// What it may do.
        access: Access,
        /// Where to send what the document tells it.
        tx: mpsc::Sender<Event>,
        /// Rung when the connection must close (it cannot keep up).
        kick: Arc<Notify>,
    },
    /// An Automerge sync message from the connection.
    Sync {
        /// The connection.
        conn: PeerKey,
        /// The decoded message.
        message: automerge::sync::Message,
    },
    /// An ephemeral message to relay to the document's other peers.
    Ephemeral {
        /// The connection it came from.
        conn: PeerKey,
        /// The peer id that connection claimed.
        sender: String,
        /// Its session.
        session_id: String,
        /// Its sequence number.
        count: u64,
        /// Its payload.
        data: Vec<u8>,
    },
    /// Another node stored changes, and the document's log reached `position`
    /// (`u64::MAX`: it may have, read it); the document catches up (`follow.rs`).
    CatchUp {
        /// The position announced.
        position: u64,
    },
    /// The connection went away.
    Close {
        /// The connection.
        conn: PeerKey,
    },
    /// Panics while handling the connection's message (tests of the isolation).
    #[cfg(test)]
    Panic {
        /// The connection.
        conn: PeerKey,
    },
}

struct Peer {
    access: Access,
    tx: mpsc::Sender<Event>,
    kick: Arc<Notify>,
}

/// The loaded documents of a server.
pub struct Documents {
    store: Arc<dyn DocStore>,
    accounts: Accounts,
    loaded: Mutex<HashMap<DocumentId, mpsc::Sender<DocCommand>>>,
    /// One gate per document being loaded: whoever holds it loads the document, others
    /// asking for the same document wait on it, and nobody waits on the registry's lock
    /// while a document loads (a 100,000-change journal takes over a second).
    loading: std::sync::Mutex<HashMap<DocumentId, std::sync::Weak<Mutex<()>>>>,
    metrics: Arc<Metrics>,
    /// Rung when storage fails: the server must stop rather than go on unacknowledged.
    pub failed: Arc<Notify>,
    /// Every document whose new changes were stored (for the live share page).
    pub updates: tokio::sync::broadcast::Sender<DocumentId>,
    /// Why it failed ([`Self::failure`]).
    failure: std::sync::Mutex<Option<String>>,
    /// How long one storage call may take before storage counts as failed.
    storage_timeout: std::time::Duration,
    /// How long a document nobody has open stays in memory.
    unload_after: std::time::Duration,
    /// Other nodes write to the same database (`follow.rs`).
    shared: bool,
}

impl Documents {
    /// The registry over `store`.
    pub fn new(
        store: Arc<dyn DocStore>,
        accounts: Accounts,
        metrics: Arc<Metrics>,
        storage_timeout: std::time::Duration,
        unload_after: std::time::Duration,
    ) -> Self {
        Self {
            store,
            accounts,
            loaded: Mutex::new(HashMap::new()),
            loading: std::sync::Mutex::new(HashMap::new()),
            metrics,
            failed: Arc::new(Notify::new()),
            updates: tokio::sync::broadcast::channel(256).0,
            failure: std::sync::Mutex::new(None),
            storage_timeout,
            unload_after,
            shared: false,
        }
    }

    /// Why storage failed, once it has: the server is stopping.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records why storage failed and rings [`Self::failed`]: the server stops. On a
    /// shared database, where the failure is the database's (lost, or restarting) and
    /// other nodes may be serving, only this document stops: `peers` are told and
    /// dropped, nothing they sent since their last acknowledgement counts as stored, and
    /// the next connection loads the document afresh once the database answers.
    fn fail(&self, doc: DocumentId, e: &anyhow::Error, peers: &HashMap<PeerKey, Peer>) {
        if self.shared {
            tracing::error!(%doc, "the database failed; dropping this document's connections until it answers again: {e:#}");
            for peer in peers.values() {
                let _ = peer.tx.try_send(Event::Dropped(
                    "the server cannot reach its database: nothing since your last acknowledgement was stored; sync again in a moment".into(),
                ));
            }
            return;
        }
        tracing::error!(%doc, "storage failed, stopping the server: {e:#}");
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if failure.is_none() {
            *failure = Some(format!("{e:#}"));
        }
        drop(failure);
        self.failed.notify_one();
    }
}
