//! Document actors: one task per loaded document owns its [`DocSession`] and carries out
//! the session's actions. Changes are sealed into a batch, appended and flushed on a
//! blocking thread, and only then does the session hear `persisted_through` that batch: no
//! sync message advertising heads reaches the connection that delivered the changes behind
//! them before they are durable (the other connections get them at once,
//! `DocSession::relay`). While one batch is stored the actor goes on handling messages and
//! relaying, gathering the next batch. A connection talks to a document through a bounded
//! channel, and hears back through its own bounded channel; a peer that cannot keep up is
//! dropped, never buffered without bound.

use std::collections::HashMap;
use std::sync::Arc;

use automerge::Automerge;
use nudge_protocol::{Access, Action, Batch, DocSession, Message, PeerKey};
use nudge_store::{DocStore, DocumentId, NewChange};
use tokio::sync::{Mutex, Notify, mpsc};

use crate::accounts::Accounts;
use crate::metrics::Metrics;

/// Capacity of each channel (to a document, to a connection).
pub const CHANNEL: usize = 64;
/// Compact a document's log into a snapshot once it has this many changes since the last.
const COMPACT_AFTER: usize = 1000;

/// What a connection asks of a document.
pub enum DocCommand {
    /// Start syncing with this connection.
    Open {
        /// The connection.
        conn: PeerKey,
        /// The peer id it claimed in `join` (used as `targetId` only).
        remote: String,
        /// Its account.
        account: String,
        /// What it may do.
        access: Access,
        /// Where to send its messages.
        tx: mpsc::Sender<Message>,
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
        /// Its session.
        session_id: String,
        /// Its sequence number.
        count: u64,
        /// Its payload.
        data: Vec<u8>,
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

/// A storage call that did not come back within the storage timeout.
#[derive(Debug, thiserror::Error)]
#[error("storage did not answer within {seconds} s while {what} (is the disk full or failing?)")]
struct StorageStuck {
    what: &'static str,
    seconds: f64,
}

/// What handling one command came to.
enum Handled {
    /// The session's actions, and the connection whose command it was.
    Actions(Option<PeerKey>, Vec<Action>),
    /// Nothing for the session to do.
    Nothing,
    /// Handling the connection's message panicked, with the panic's message.
    Panicked(PeerKey, String),
}

/// Commands handled before one store and flush covers what they delivered.
const BATCH: usize = 256;

/// How many bytes of changes a document gathers while a flush is under way before it waits
/// for that flush to land (what a slow disk may leave waiting in memory). Tests use less.
const PENDING_BYTES: usize = if cfg!(test) { 64 << 10 } else { 8 << 20 };

/// How many flushes may land while a peer that keeps writing waits for its
/// acknowledgement, before the next flush takes no new commands so that it gets it.
const STARVED_AFTER: u32 = 32;

/// Changes handled and not yet handed to a flush.
#[derive(Default)]
struct Pending {
    changes: Vec<automerge::Change>,
    /// A big batch, as the whole document: it holds the `changes` before it.
    snapshot: Option<(Vec<u8>, Vec<automerge::ChangeHash>)>,
    /// The account of the first connection that delivered changes (it claims the
    /// document if nobody owns it).
    claimant: Option<String>,
    /// The bytes of `changes` and `snapshot`.
    bytes: usize,
    /// When the first of them arrived (`nudge_ack_latency_seconds`).
    since: Option<std::time::Instant>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.snapshot.is_none()
    }

    /// Takes a persist request into the batch (`claimant` says whose account delivered
    /// it); hands back any other action, for the caller to carry out.
    fn gather(
        &mut self,
        action: Action,
        claimant: impl FnOnce() -> Option<String>,
    ) -> Option<Action> {
        match action {
            Action::Persist(new) => {
                self.bytes += new.iter().map(|c| c.raw_bytes().len()).sum::<usize>();
                self.changes.extend(new);
            }
            Action::PersistSnapshot {
                snapshot: bytes,
                new,
            } => {
                // Everything this batch applied so far is in the snapshot (and everything
                // before it, stored or being stored, too).
                let mut covered: Vec<automerge::ChangeHash> = self
                    .snapshot
                    .take()
                    .map(|(_, hashes)| hashes)
                    .unwrap_or_default();
                covered.extend(self.changes.drain(..).map(|c| c.hash()));
                covered.extend(new);
                self.bytes = bytes.len();
                self.snapshot = Some((bytes, covered));
            }
            other => return Some(other),
        }
        self.since.get_or_insert_with(std::time::Instant::now);
        if self.claimant.is_none() {
            self.claimant = claimant();
        }
        None
    }
}

/// A batch of changes being stored.
struct Flight {
    /// The store and flush, with the count of changes since the last snapshot.
    task: tokio::task::JoinHandle<anyhow::Result<usize>>,
    batch: Batch,
    /// No command is taken until it lands.
    drain: bool,
    /// When its first change arrived.
    since: std::time::Instant,
}

/// What the actor waits for.
enum Event {
    /// The flight landed: stored, with the count of changes since the last snapshot, or not.
    Landed(anyhow::Result<usize>),
    Command(Option<DocCommand>),
}

/// What a flush task came to, its own failure folded in.
fn stored(joined: Result<anyhow::Result<usize>, tokio::task::JoinError>) -> anyhow::Result<usize> {
    joined.unwrap_or_else(|e| Err(anyhow::anyhow!("the flush task failed: {e}")))
}

/// Runs `f`, turning a panic into its message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned())
    })
}

/// Runs `f`, which blocks for a while, without holding up the other tasks of this runtime
/// thread: on the multi-threaded runtime the server runs, tokio first hands them to
/// another thread. (On a single-threaded runtime, as in some tests, `f` just runs.)
fn off_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

struct Peer {
    remote: String,
    account: String,
    access: Access,
    tx: mpsc::Sender<Message>,
    kick: Arc<Notify>,
}

/// The loaded documents of a server.
pub struct Documents {
    store: Arc<dyn DocStore>,
    accounts: Accounts,
    server_id: String,
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
}

impl Documents {
    /// The registry over `store`.
    pub fn new(
        store: Arc<dyn DocStore>,
        accounts: Accounts,
        server_id: String,
        metrics: Arc<Metrics>,
        storage_timeout: std::time::Duration,
        unload_after: std::time::Duration,
    ) -> Self {
        Self {
            store,
            accounts,
            server_id,
            loaded: Mutex::new(HashMap::new()),
            loading: std::sync::Mutex::new(HashMap::new()),
            metrics,
            failed: Arc::new(Notify::new()),
            updates: tokio::sync::broadcast::channel(256).0,
            failure: std::sync::Mutex::new(None),
            storage_timeout,
            unload_after,
        }
    }

    /// Runs a storage call off the runtime, bounded by the storage timeout: sled can spin
    /// for ever instead of failing when its disk fills (seen with a real full file system),
    /// and a call that never returns must stop the server like one that fails.
    async fn storage<T: Send + 'static, E: Into<anyhow::Error> + Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce() -> Result<T, E> + Send + 'static,
    ) -> anyhow::Result<T> {
        match tokio::time::timeout(self.storage_timeout, tokio::task::spawn_blocking(f)).await {
            Ok(joined) => joined?.map_err(Into::into),
            Err(_) => Err(StorageStuck {
                what,
                seconds: self.storage_timeout.as_secs_f64(),
            }
            .into()),
        }
    }

    /// Why storage failed, once it has: the server is stopping.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records why storage failed and rings [`Self::failed`]: the server stops.
    fn fail(&self, doc: DocumentId, e: &anyhow::Error) {
        tracing::error!(%doc, "storage failed, stopping the server: {e:#}");
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if failure.is_none() {
            *failure = Some(format!("{e:#}"));
        }
        drop(failure);
        self.failed.notify_one();
    }

    /// The channel to a document's actor, loading the document if needed.
    #[cfg(test)]
    pub async fn get(
        self: &Arc<Self>,
        doc: DocumentId,
    ) -> anyhow::Result<mpsc::Sender<DocCommand>> {
        self.load_and_send(doc, None).await
    }

    /// Opens a document for a connection: loads it if needed and hands its actor the
    /// `Open` command under the registry's lock, so that an idle document cannot unload
    /// between the two (its actor checks for waiting commands under the same lock).
    pub async fn open(
        self: &Arc<Self>,
        doc: DocumentId,
        open: DocCommand,
    ) -> anyhow::Result<mpsc::Sender<DocCommand>> {
        self.load_and_send(doc, Some(open)).await
    }

    async fn load_and_send(
        self: &Arc<Self>,
        doc: DocumentId,
        mut command: Option<DocCommand>,
    ) -> anyhow::Result<mpsc::Sender<DocCommand>> {
        let send = |tx: mpsc::Sender<DocCommand>, command: Option<DocCommand>| async move {
            if let Some(command) = command {
                tx.send(command)
                    .await
                    .map_err(|_| anyhow::anyhow!("document {doc} closed"))?;
            }
            Ok::<_, anyhow::Error>(tx)
        };
        loop {
            {
                let loaded = self.loaded.lock().await;
                if let Some(tx) = loaded.get(&doc).filter(|tx| !tx.is_closed()) {
                    return send(tx.clone(), command.take()).await;
                }
            }
            // Not loaded: one caller loads it, others asking for it wait here; everyone
            // else goes on using the registry.
            let gate = self.gate(doc);
            let guard = gate.lock().await;
            if self
                .loaded
                .lock()
                .await
                .get(&doc)
                .is_some_and(|tx| !tx.is_closed())
            {
                continue;
            }
            let automerge = self.load(doc).await;
            // In the registry before the gate opens, so that the next caller finds it.
            let mut loaded = self.loaded.lock().await;
            drop(guard);
            drop(gate);
            self.drop_gate(doc);
            let automerge = automerge?;
            let (tx, rx) = mpsc::channel(CHANNEL);
            if loaded.insert(doc, tx.clone()).is_none() {
                self.metrics.documents_loaded.inc();
            }
            let me = self.clone();
            let own = tx.downgrade();
            tokio::spawn(async move { me.actor(doc, DocSession::new(automerge), rx, own).await });
            return send(tx, command.take()).await;
        }
    }

    /// The loading gate of `doc`, shared by everyone asking for it at the moment.
    fn gate(&self, doc: DocumentId) -> Arc<Mutex<()>> {
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(gate) = loading.get(&doc).and_then(std::sync::Weak::upgrade) {
            return gate;
        }
        let gate = Arc::new(Mutex::new(()));
        loading.insert(doc, Arc::downgrade(&gate));
        gate
    }

    /// Forgets `doc`'s gate once nobody holds it.
    fn drop_gate(&self, doc: DocumentId) {
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if loading
            .get(&doc)
            .is_some_and(|gate| gate.strong_count() == 0)
        {
            loading.remove(&doc);
        }
    }

    /// `doc` from storage (empty if it has never been stored), read and loaded off the
    /// runtime.
    async fn load(&self, doc: DocumentId) -> anyhow::Result<Automerge> {
        let store = self.store.clone();
        let stored = self
            .storage("loading a document", move || store.load(&doc))
            .await?;
        match stored {
            Some(stored) => tokio::task::spawn_blocking(move || Automerge::load(&stored.concat()))
                .await?
                .map_err(|e| anyhow::anyhow!("document {doc} in storage cannot be read: {e}")),
            None => Ok(Automerge::new()),
        }
    }

    /// After a panic while handling `culprit`'s message: that connection is told and
    /// dropped, the document's in-memory state is discarded and reloaded from storage, and
    /// the other connections start a fresh sync with it. `None` if storage fails too.
    async fn recover(
        &self,
        doc: DocumentId,
        peers: &mut HashMap<PeerKey, Peer>,
        culprit: PeerKey,
        why: String,
    ) -> Option<(DocSession, Vec<Action>)> {
        tracing::error!(%doc, conn = culprit, "handling a message panicked ({why}); reloading the document and closing that connection");
        if let Some(peer) = peers.remove(&culprit) {
            let _ = peer.tx.try_send(Message::Error {
                message: "the server could not handle your message for this document".into(),
            });
        }
        let automerge = match self.load(doc).await {
            Ok(automerge) => automerge,
            Err(e) => {
                tracing::error!(%doc, "cannot reload the document: {e:#}");
                return None;
            }
        };
        let mut session = DocSession::new(automerge);
        let mut actions = Vec::new();
        for (conn, peer) in peers.iter() {
            actions.extend(session.add_peer(*conn, peer.access));
        }
        Some((session, actions))
    }

    /// Drops a document from memory (after it was deleted): its actor ends once the
    /// connections that have it open are gone, and the next access starts afresh.
    pub async fn forget(&self, doc: &DocumentId) {
        if self.loaded.lock().await.remove(doc).is_some() {
            self.metrics.documents_loaded.dec();
        }
    }

    async fn actor(
        self: Arc<Self>,
        doc: DocumentId,
        mut session: DocSession,
        mut rx: mpsc::Receiver<DocCommand>,
        own: mpsc::WeakSender<DocCommand>,
    ) {
        let mut peers: HashMap<PeerKey, Peer> = HashMap::new();
        // Changes handled and not yet handed to a flush, and the flush under way: while a
        // batch is stored, the next one gathers (pipelining), so a slow flush holds up the
        // acknowledgements behind it but not the relay. Invariant: no flight, nothing pending.
        let mut pending = Pending::default();
        let mut flight: Option<Flight> = None;
        // Every sender is gone: end once everything handled is stored.
        let mut closed = false;
        loop {
            let accepting = !closed
                && flight
                    .as_ref()
                    .is_none_or(|f| !f.drain && pending.bytes < PENDING_BYTES);
            let event = match flight.as_mut() {
                Some(f) if !accepting => Event::Landed(stored((&mut f.task).await)),
                Some(f) => tokio::select! {
                    // A landed flight first: its acknowledgements, and the next flight.
                    biased;
                    joined = &mut f.task => Event::Landed(stored(joined)),
                    command = rx.recv() => Event::Command(command),
                },
                None if closed => return,
                // Nobody has it open: it leaves memory after `unload_after` of that.
                None if peers.is_empty() => {
                    match tokio::time::timeout(self.unload_after, rx.recv()).await {
                        Ok(command) => Event::Command(command),
                        Err(_) => {
                            if self.unload(doc, &rx, &own).await {
                                return;
                            }
                            continue;
                        }
                    }
                }
                None => Event::Command(rx.recv().await),
            };
            let first = match event {
                Event::Landed(result) => {
                    let Some(landed) = flight.take() else {
                        continue;
                    };
                    let since_snapshot = match result {
                        Ok(since_snapshot) => since_snapshot,
                        Err(e) => {
                            // Never acknowledge what is not stored: this document stops
                            // here, unacknowledged, and the server shuts down.
                            self.fail(doc, &e);
                            return;
                        }
                    };
                    self.metrics
                        .ack_latency
                        .observe(landed.since.elapsed().as_secs_f64());
                    for action in session.persisted_through(landed.batch) {
                        self.carry_out(doc, action, &mut session, &mut peers);
                    }
                    let _ = self.updates.send(doc);
                    let compact = since_snapshot >= COMPACT_AFTER;
                    if pending.is_empty() {
                        // Everything applied is stored: the snapshot covers just that.
                        if compact && let Err(e) = self.compact(doc, &session).await {
                            // Only a storage call that never came back ends up here.
                            self.fail(doc, &e);
                            return;
                        }
                    } else {
                        // The next batch goes at once. It takes no new commands while it is
                        // stored when compaction is due (so that the snapshot holds only
                        // stored changes) or when a peer has written through too many
                        // flushes to be acknowledged (so that it is).
                        let starved = session.longest_wait() >= STARVED_AFTER;
                        let drain = compact || starved;
                        if drain {
                            tracing::debug!(%doc, compact, starved, "the next flush takes no message until it lands");
                        }
                        flight = Some(self.fly(doc, &mut session, &mut pending, drain));
                    }
                    continue;
                }
                Event::Command(None) => {
                    closed = true;
                    continue;
                }
                Event::Command(Some(first)) => first,
            };
            // Group commit: every command already waiting is handled before one store and
            // flush covers all the changes they delivered. Their senders hear nothing
            // meanwhile (the session holds their messages until their batch lands), so the
            // rule stays: no heads reach a device before its changes behind them are on disk.
            let mut delivered = false;
            let mut next = Some(first);
            let mut handled = 0;
            while let Some(command) = next.take() {
                handled += 1;
                let (from, actions) = match self.handle(doc, command, &mut session, &mut peers) {
                    Handled::Actions(from, actions) => (from, actions),
                    Handled::Nothing => (None, Vec::new()),
                    Handled::Panicked(culprit, why) => {
                        // What is being stored lands first, so that the reload has it.
                        // Changes applied and not handed to a flush go with the discarded
                        // state; nothing acknowledged them, and their senders resync.
                        if let Some(landing) = flight.take() {
                            if let Err(e) = stored(landing.task.await) {
                                self.fail(doc, &e);
                                return;
                            }
                            let _ = self.updates.send(doc);
                        }
                        pending = Pending::default();
                        delivered = false;
                        match self.recover(doc, &mut peers, culprit, why).await {
                            Some((fresh, actions)) => {
                                session = fresh;
                                (None, actions)
                            }
                            None => return,
                        }
                    }
                };
                for action in actions {
                    let account = || from.and_then(|c| peers.get(&c)).map(|p| p.account.clone());
                    match pending.gather(action, account) {
                        Some(other) => self.carry_out(doc, other, &mut session, &mut peers),
                        None => delivered = true,
                    }
                }
                if handled < BATCH && pending.bytes < PENDING_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            if !delivered {
                continue;
            }
            // The other connections get the new changes now; their senders hear our heads
            // (their acknowledgement) only once the batch holding them lands.
            let relay = session.relay();
            if flight.is_none() {
                // The flush is a task of its own, spawned before the relay is handed to
                // the connections: the connection woken last runs first on this thread, so
                // the relay goes out before the flush's blocking thread wakes and competes
                // for the cores (docs/PERFORMANCE.md).
                flight = Some(self.fly(doc, &mut session, &mut pending, false));
            }
            for action in relay {
                self.carry_out(doc, action, &mut session, &mut peers);
            }
        }
    }

    /// Seals the pending changes into a batch and starts storing it.
    fn fly(
        self: &Arc<Self>,
        doc: DocumentId,
        session: &mut DocSession,
        pending: &mut Pending,
        drain: bool,
    ) -> Flight {
        let Pending {
            changes,
            snapshot,
            claimant,
            since,
            ..
        } = std::mem::take(pending);
        let count = changes.len() + snapshot.as_ref().map_or(0, |(_, new)| new.len());
        self.metrics.batched_changes.observe(count as f64);
        let batch = session.seal();
        let me = self.clone();
        let task = tokio::spawn(async move { me.persist(doc, snapshot, changes, claimant).await });
        Flight {
            task,
            batch,
            drain,
            since: since.unwrap_or_else(std::time::Instant::now),
        }
    }

    /// Takes an idle document out of the registry, unless a command is waiting (the
    /// registry's lock makes this atomic with [`Self::open`]). Everything in it is stored.
    async fn unload(
        &self,
        doc: DocumentId,
        rx: &mpsc::Receiver<DocCommand>,
        own: &mpsc::WeakSender<DocCommand>,
    ) -> bool {
        let mut loaded = self.loaded.lock().await;
        if !rx.is_empty() {
            return false;
        }
        let ours = match (loaded.get(&doc), own.upgrade()) {
            (Some(entry), Some(own)) => entry.same_channel(&own),
            _ => false,
        };
        if ours {
            loaded.remove(&doc);
            self.metrics.documents_loaded.dec();
            tracing::debug!(%doc, "idle document unloaded");
        }
        true
    }

    /// Handles one command: what the session asks for, or the panic it caused.
    fn handle(
        &self,
        doc: DocumentId,
        command: DocCommand,
        session: &mut DocSession,
        peers: &mut HashMap<PeerKey, Peer>,
    ) -> Handled {
        let done = |conn: PeerKey, result: Result<Vec<Action>, String>| match result {
            Ok(actions) => Handled::Actions(Some(conn), actions),
            Err(why) => Handled::Panicked(conn, why),
        };
        match command {
            DocCommand::Open {
                conn,
                remote,
                account,
                access,
                tx,
                kick,
            } => {
                // Until ownership is recorded (at the first persisted change), a document
                // nobody owns is open to one account only: another cannot slip changes in.
                if peers.values().any(|p| p.account != account) {
                    let _ = tx.try_send(Message::DocUnavailable {
                        sender_id: self.server_id.clone(),
                        target_id: remote,
                        document_id: doc.to_string(),
                    });
                    return Handled::Nothing;
                }
                peers.insert(
                    conn,
                    Peer {
                        remote,
                        account,
                        access,
                        tx,
                        kick,
                    },
                );
                done(conn, guarded(|| session.add_peer(conn, access)))
            }
            DocCommand::Sync { conn, message } => {
                done(conn, guarded(|| session.receive(conn, message)))
            }
            #[cfg(test)]
            DocCommand::Panic { conn } => done(
                conn,
                guarded(|| -> Vec<Action> { panic!("a message automerge cannot handle") }),
            ),
            DocCommand::Ephemeral {
                conn,
                session_id,
                count,
                data,
            } => {
                let Some(sender) = peers.get(&conn).map(|p| p.remote.clone()) else {
                    return Handled::Nothing;
                };
                for (other, peer) in peers.iter() {
                    if *other == conn {
                        continue;
                    }
                    // Ephemeral data is best effort: a full queue drops it, not the peer.
                    let _ = peer.tx.try_send(Message::Ephemeral {
                        sender_id: sender.clone(),
                        target_id: peer.remote.clone(),
                        count,
                        session_id: session_id.clone(),
                        document_id: doc.to_string(),
                        data: data.clone(),
                    });
                }
                Handled::Nothing
            }
            DocCommand::Close { conn } => {
                peers.remove(&conn);
                session.remove_peer(conn);
                Handled::Nothing
            }
        }
    }

    /// Sends a message or closes a peer, as the session asked.
    fn carry_out(
        &self,
        doc: DocumentId,
        action: Action,
        session: &mut DocSession,
        peers: &mut HashMap<PeerKey, Peer>,
    ) {
        match action {
            Action::Send(conn, data) => {
                let Some(peer) = peers.get(&conn) else {
                    return;
                };
                let message = Message::Sync {
                    document_id: doc.to_string(),
                    sender_id: self.server_id.clone(),
                    target_id: peer.remote.clone(),
                    data,
                };
                match peer.tx.try_send(message) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::info!(%doc, conn, "peer cannot keep up; disconnecting it");
                        peer.kick.notify_one();
                        peers.remove(&conn);
                        session.remove_peer(conn);
                    }
                    // The connection ended; its `Close` is on its way.
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        peers.remove(&conn);
                        session.remove_peer(conn);
                    }
                }
            }
            Action::Reject(conn, reason) => {
                if let Some(peer) = peers.remove(&conn) {
                    let message = nudge_protocol::rejection::for_document(&doc, &reason);
                    let _ = peer.tx.try_send(Message::Error { message });
                }
                session.remove_peer(conn);
            }
            // The actor persists; the session asks for it only from `receive`.
            Action::Persist(_) | Action::PersistSnapshot { .. } => {
                tracing::error!(%doc, "a persist request outside a receive was ignored");
            }
        }
    }

    /// Replaces the log with a snapshot of the document, off the runtime: called once
    /// [`COMPACT_AFTER`] changes follow the last snapshot and everything applied is stored.
    /// A failure here loses nothing: the log is still there; only storage that stops
    /// answering is an error.
    async fn compact(&self, doc: DocumentId, session: &DocSession) -> anyhow::Result<()> {
        let (store, accounts) = (self.store.clone(), self.accounts.clone());
        // Saving a 100,000-change journal takes about 60 ms: long enough that the other
        // tasks of this runtime thread should not wait behind it.
        let snapshot = off_the_runtime(|| session.snapshot());
        let result = self
            .storage("compacting a document", move || -> anyhow::Result<()> {
                let through = store.position(&doc)?;
                store.compact(&doc, &snapshot, through)?;
                // Flushed with the next batch: a figure a crash loses is only too high.
                accounts.resized(&doc, snapshot.len() as u64)?;
                Ok(())
            })
            .await;
        match result {
            Ok(()) => {
                self.metrics.compactions.inc();
                tracing::debug!(%doc, "log compacted into a snapshot");
            }
            Err(e) if e.is::<StorageStuck>() => return Err(e),
            Err(e) => tracing::warn!(%doc, "compaction failed (the log is intact): {e:#}"),
        }
        Ok(())
    }

    async fn persist(
        &self,
        doc: DocumentId,
        snapshot: Option<(Vec<u8>, Vec<automerge::ChangeHash>)>,
        changes: Vec<automerge::Change>,
        claimant: Option<String>,
    ) -> anyhow::Result<usize> {
        let store = self.store.clone();
        let accounts = self.accounts.clone();
        let started = std::time::Instant::now();
        let count = changes.len() + snapshot.as_ref().map_or(0, |(_, new)| new.len());
        let pending = self
            .storage("storing changes", move || -> anyhow::Result<usize> {
                let snapshot_size = match snapshot {
                    Some((bytes, new)) => {
                        let hashes: Vec<[u8; 32]> = new.iter().map(|h| h.0).collect();
                        store.append_snapshot(&doc, &bytes, &hashes)?;
                        Some(bytes.len() as u64)
                    }
                    None => None,
                };
                let new: Vec<NewChange> = changes
                    .iter()
                    .map(|c| NewChange {
                        hash: c.hash().0,
                        bytes: c.raw_bytes().to_vec(),
                    })
                    .collect();
                store.append(&doc, &new)?;
                if let Some(account) = claimant
                    && accounts.owner(&doc)?.is_none()
                {
                    accounts.claim(&doc, &account)?;
                }
                // The owner's figure for the quota, in the same flush.
                if let Some(size) = snapshot_size {
                    accounts.resized(&doc, size)?;
                }
                accounts.grew(&doc, new.iter().map(|c| c.bytes.len() as u64).sum())?;
                store.flush()?;
                // Whether to compact, asked here to save a trip to a blocking thread. The
                // changes are durable: a count that fails only skips compaction this time.
                Ok(store.changes_since_snapshot(&doc).unwrap_or(0))
            })
            .await?;
        self.metrics.flushes.inc();
        self.metrics
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        tracing::debug!(%doc, count, us = started.elapsed().as_micros() as u64, "changes stored and flushed");
        Ok(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::sync::{State as SyncState, SyncDoc};
    use automerge::transaction::Transactable;
    use nudge_store::{MemoryStore, OpenOptions, SledStore};

    struct Conn {
        rx: mpsc::Receiver<Message>,
        doc: Automerge,
        state: SyncState,
        kick: Arc<Notify>,
    }

    async fn open(actor: &mpsc::Sender<DocCommand>, conn: PeerKey) -> Conn {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let kick = Arc::new(Notify::new());
        actor
            .send(DocCommand::Open {
                conn,
                remote: format!("peer{conn}"),
                account: "acct".into(),
                access: Access::ReadWrite,
                tx,
                kick: kick.clone(),
            })
            .await
            .unwrap();
        Conn {
            rx,
            doc: Automerge::new(),
            state: SyncState::new(),
            kick,
        }
    }

    /// Syncs until the connection's document has the server's heads and they cover `want`.
    async fn sync_until(
        actor: &mpsc::Sender<DocCommand>,
        conn: PeerKey,
        c: &mut Conn,
        want: &[automerge::ChangeHash],
    ) {
        for _ in 0..50 {
            if let Some(m) = c.doc.generate_sync_message(&mut c.state) {
                actor
                    .send(DocCommand::Sync { conn, message: m })
                    .await
                    .unwrap();
            }
            let next = tokio::time::timeout(std::time::Duration::from_secs(5), c.rx.recv()).await;
            match next {
                Ok(Some(Message::Sync { data, .. })) => {
                    let m = automerge::sync::Message::decode(&data).unwrap();
                    let covered = want.iter().all(|h| m.heads.contains(h));
                    c.doc.receive_sync_message(&mut c.state, m).unwrap();
                    if covered && want.iter().all(|h| c.doc.get_heads().contains(h)) {
                        return;
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        panic!("no agreement");
    }

    /// A store whose `load` of one document, or whose every `flush`, waits until the test
    /// lets it go (one `()` per call), and which counts those calls.
    #[derive(Default)]
    struct Gated {
        inner: MemoryStore,
        slow: Option<DocumentId>,
        release: Option<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
        loads: std::sync::atomic::AtomicUsize,
        flush_gate: Option<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
        flushes: std::sync::atomic::AtomicUsize,
    }

    impl DocStore for Gated {
        fn append(
            &self,
            doc: &DocumentId,
            changes: &[NewChange],
        ) -> Result<usize, nudge_store::Error> {
            self.inner.append(doc, changes)
        }
        fn load(
            &self,
            doc: &DocumentId,
        ) -> Result<Option<nudge_store::StoredDoc>, nudge_store::Error> {
            if Some(*doc) == self.slow {
                self.loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if let Some(release) = &self.release {
                    let _ = release.lock().unwrap().recv();
                }
            }
            self.inner.load(doc)
        }
        fn changes_after(
            &self,
            doc: &DocumentId,
            position: u64,
        ) -> Result<Option<Vec<Vec<u8>>>, nudge_store::Error> {
            self.inner.changes_after(doc, position)
        }
        fn position(&self, doc: &DocumentId) -> Result<u64, nudge_store::Error> {
            self.inner.position(doc)
        }
        fn contains(&self, doc: &DocumentId, hash: &[u8; 32]) -> Result<bool, nudge_store::Error> {
            self.inner.contains(doc, hash)
        }
        fn changes_since_snapshot(&self, doc: &DocumentId) -> Result<usize, nudge_store::Error> {
            self.inner.changes_since_snapshot(doc)
        }
        fn compact(
            &self,
            doc: &DocumentId,
            snapshot: &[u8],
            through: u64,
        ) -> Result<(), nudge_store::Error> {
            self.inner.compact(doc, snapshot, through)
        }
        fn import(
            &self,
            doc: &DocumentId,
            snapshot: &[u8],
            hashes: &[[u8; 32]],
        ) -> Result<(), nudge_store::Error> {
            self.inner.import(doc, snapshot, hashes)
        }
        fn append_snapshot(
            &self,
            doc: &DocumentId,
            snapshot: &[u8],
            new: &[[u8; 32]],
        ) -> Result<usize, nudge_store::Error> {
            self.inner.append_snapshot(doc, snapshot, new)
        }
        fn remove(&self, doc: &DocumentId) -> Result<(), nudge_store::Error> {
            self.inner.remove(doc)
        }
        fn documents(&self) -> Result<Vec<DocumentId>, nudge_store::Error> {
            self.inner.documents()
        }
        fn flush(&self) -> Result<(), nudge_store::Error> {
            self.flushes
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if let Some(gate) = &self.flush_gate {
                let _ = gate.lock().unwrap().recv();
            }
            self.inner.flush()
        }
    }

    /// Answers what the server sends `c` until it is quiet for `quiet`; the heads of the
    /// last message heard, if any.
    async fn settle(
        actor: &mpsc::Sender<DocCommand>,
        conn: PeerKey,
        c: &mut Conn,
        quiet: std::time::Duration,
    ) -> Option<Vec<automerge::ChangeHash>> {
        let mut last = None;
        loop {
            match tokio::time::timeout(quiet, c.rx.recv()).await {
                Ok(Some(Message::Sync { data, .. })) => {
                    let m = automerge::sync::Message::decode(&data).unwrap();
                    last = Some(m.heads.clone());
                    c.doc.receive_sync_message(&mut c.state, m).unwrap();
                    if let Some(reply) = c.doc.generate_sync_message(&mut c.state) {
                        actor
                            .send(DocCommand::Sync {
                                conn,
                                message: reply,
                            })
                            .await
                            .unwrap();
                    }
                }
                Ok(other) => panic!("unexpected {other:?}"),
                Err(_) => return last,
            }
        }
    }

    /// Sends what `c` has for the server.
    async fn send(actor: &mpsc::Sender<DocCommand>, conn: PeerKey, c: &mut Conn) {
        let message = c.doc.generate_sync_message(&mut c.state).unwrap();
        actor
            .send(DocCommand::Sync { conn, message })
            .await
            .unwrap();
    }

    /// Writes one change on `c` and sends it.
    async fn write_and_send(actor: &mpsc::Sender<DocCommand>, conn: PeerKey, c: &mut Conn, n: i64) {
        let mut tx = c.doc.transaction();
        tx.put(automerge::ROOT, format!("k{n}"), n).unwrap();
        tx.commit();
        send(actor, conn, c).await;
    }

    /// A registry over `store`, its accounts in a sled store in the returned folder.
    fn registry(
        store: Arc<dyn DocStore>,
        metrics: Arc<Metrics>,
    ) -> (Arc<Documents>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let sled = SledStore::open(dir.path(), &OpenOptions::default()).unwrap();
        let accounts = Accounts::open(&crate::table::records_of(&sled), &sled).unwrap();
        let documents = Arc::new(Documents::new(
            store,
            accounts,
            "server".into(),
            metrics,
            std::time::Duration::from_secs(30),
            std::time::Duration::from_secs(300),
        ));
        (documents, dir)
    }

    /// Waits (up to 5 s) until `b`, answering the server, holds `heads`.
    async fn until_holds(
        actor: &mpsc::Sender<DocCommand>,
        conn: PeerKey,
        b: &mut Conn,
        heads: &[automerge::ChangeHash],
    ) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while b.doc.get_heads() != heads {
            assert!(
                std::time::Instant::now() < deadline,
                "the change never reached the other device"
            );
            settle(actor, conn, b, std::time::Duration::from_millis(20)).await;
        }
    }

    /// Waits (up to 5 s), answering the server, until the last message `c` heard carries
    /// `heads`.
    async fn until_heard(
        actor: &mpsc::Sender<DocCommand>,
        conn: PeerKey,
        c: &mut Conn,
        heads: &[automerge::ChangeHash],
    ) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut last = None;
        while last.as_deref() != Some(heads) {
            assert!(
                std::time::Instant::now() < deadline,
                "heard {last:?}, never {heads:?}"
            );
            if let Some(heard) = settle(actor, conn, c, std::time::Duration::from_millis(20)).await
            {
                last = Some(heard);
            }
        }
    }

    async fn until_flushes(store: &Gated, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while store.flushes.load(std::sync::atomic::Ordering::SeqCst) < n {
            assert!(
                std::time::Instant::now() < deadline,
                "flush {n} never started"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// A document over a store whose flushes each wait for a `()` on the returned sender,
    /// with two devices syncing it.
    async fn gated_pair() -> (
        Arc<Gated>,
        DocumentId,
        std::sync::mpsc::Sender<()>,
        mpsc::Sender<DocCommand>,
        Conn,
        Conn,
        tempfile::TempDir,
    ) {
        let (release, gate) = std::sync::mpsc::channel();
        let store = Arc::new(Gated {
            flush_gate: Some(std::sync::Mutex::new(gate)),
            ..Gated::default()
        });
        let id = DocumentId::random();
        let (actor, a, b, dir) = pair_on(store.clone(), id).await;
        (store, id, release, actor, a, b, dir)
    }

    /// A pair of devices on a store that flushes at once.
    async fn pair() -> (mpsc::Sender<DocCommand>, Conn, Conn, tempfile::TempDir) {
        pair_on(Arc::new(MemoryStore::default()), DocumentId::random()).await
    }

    /// Two devices on document `id` over `store`, each through its first exchange.
    async fn pair_on(
        store: Arc<dyn DocStore>,
        id: DocumentId,
    ) -> (mpsc::Sender<DocCommand>, Conn, Conn, tempfile::TempDir) {
        let (documents, dir) = registry(store, Arc::default());
        let actor = documents.get(id).await.unwrap();
        let quiet = std::time::Duration::from_millis(100);
        let mut a = open(&actor, 1).await;
        let mut b = open(&actor, 2).await;
        settle(&actor, 1, &mut a, quiet).await;
        settle(&actor, 2, &mut b, quiet).await;
        (actor, a, b, dir)
    }

    /// Whether the connection is told to close (as too slow) within `within`.
    async fn kicked(kick: &Notify, within: std::time::Duration) -> bool {
        tokio::time::timeout(within, kick.notified()).await.is_ok()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_device_that_stops_reading_is_disconnected() {
        let (actor, mut a, b, _dir) = pair().await;
        for n in 0..CHANNEL as i64 + 8 {
            write_and_send(&actor, 1, &mut a, n).await;
            let want = a.doc.get_heads();
            until_heard(&actor, 1, &mut a, &want).await;
        }
        assert!(kicked(&b.kick, std::time::Duration::from_secs(5)).await);
    }

    /// A connection that has just ended is not a slow reader: a relay to it drops it
    /// without a kick (it used to be logged as "peer cannot keep up").
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_relay_to_a_connection_that_ended_drops_it_quietly() {
        let (actor, mut a, b, _dir) = pair().await;
        let Conn { rx, kick, .. } = b;
        drop(rx);
        write_and_send(&actor, 1, &mut a, 1).await;
        let want = a.doc.get_heads();
        until_heard(&actor, 1, &mut a, &want).await;
        assert!(!kicked(&kick, std::time::Duration::from_millis(200)).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_flush_holds_up_acknowledgements_not_the_relay() {
        let (store, id, release, actor, mut a, mut b, _dir) = gated_pair().await;
        // The first change's flush hangs; the other device gets the change meanwhile.
        write_and_send(&actor, 1, &mut a, 1).await;
        until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
        // A second change while the first is being stored: relayed too, not acknowledged.
        write_and_send(&actor, 1, &mut a, 2).await;
        until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
        assert_eq!(store.flushes.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(a.rx.try_recv().is_err(), "acknowledged before any flush");
        // The first flush lands; the second change is still not durable: no heads yet.
        release.send(()).unwrap();
        until_flushes(&store, 2).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(
            a.rx.try_recv().is_err(),
            "acknowledged while its latest change was being stored"
        );
        // The second lands: now the writer hears heads holding both, all of them stored.
        release.send(()).unwrap();
        let want = a.doc.get_heads();
        until_heard(&actor, 1, &mut a, &want).await;
        for change in a.doc.get_changes(&[]) {
            assert!(store.contains(&id, &change.hash().0).unwrap());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_device_writing_through_every_flush_is_still_acknowledged() {
        let (store, _, release, actor, mut a, mut b, _dir) = gated_pair().await;
        write_and_send(&actor, 1, &mut a, 0).await;
        until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
        // Each time, a new change arrives before the flush under way lands.
        for i in 1..=STARVED_AFTER as i64 {
            write_and_send(&actor, 1, &mut a, i).await;
            until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
            assert!(a.rx.try_recv().is_err(), "acknowledged at flush {i}");
            release.send(()).unwrap();
            until_flushes(&store, i as usize + 1).await;
        }
        // It has waited through STARVED_AFTER flushes: the flush now under way takes no
        // new change, and when it lands the writer hears heads holding all it sent before.
        let stored = a.doc.get_heads();
        write_and_send(&actor, 1, &mut a, 99).await;
        settle(&actor, 2, &mut b, std::time::Duration::from_millis(200)).await;
        assert_ne!(b.doc.get_heads(), a.doc.get_heads());
        release.send(()).unwrap();
        until_heard(&actor, 1, &mut a, &stored).await;
        // Then the change it held back is handled as usual.
        until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
        drop(release);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_during_a_flush_reloads_what_that_flush_stored() {
        let (_store, _, release, actor, mut a, mut b, _dir) = gated_pair().await;
        write_and_send(&actor, 1, &mut a, 1).await;
        until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
        // The other device's message panics while the change is being stored.
        actor.send(DocCommand::Panic { conn: 2 }).await.unwrap();
        release.send(()).unwrap();
        loop {
            match tokio::time::timeout(std::time::Duration::from_secs(5), b.rx.recv()).await {
                Ok(Some(Message::Error { .. })) => break,
                Ok(Some(_)) => {}
                other => panic!("the culprit heard {other:?}"),
            }
        }
        // The document came back from storage with the change: the writer, greeted
        // afresh, hears heads that hold it.
        a.state = SyncState::new();
        let want = a.doc.get_heads();
        until_heard(&actor, 1, &mut a, &want).await;
        drop(release);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_document_gathers_a_bounded_amount_while_a_flush_hangs() {
        let (_store, _, release, actor, mut a, mut b, _dir) = gated_pair().await;
        write_and_send(&actor, 1, &mut a, 0).await;
        until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
        // Changes of 20 KB that do not compress, while the first flush hangs.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut big = async |a: &mut Conn, n: usize| {
            let noise: Vec<u8> = (0..20_000)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let mut tx = a.doc.transaction();
            tx.put(automerge::ROOT, format!("big{n}"), noise).unwrap();
            tx.commit();
            send(&actor, 1, a).await;
        };
        let full = PENDING_BYTES.div_ceil(20_000);
        for n in 0..full {
            big(&mut a, n).await;
            until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
        }
        // That is as much as it gathers: the next waits for the flush.
        big(&mut a, full).await;
        settle(&actor, 2, &mut b, std::time::Duration::from_millis(200)).await;
        assert_ne!(
            b.doc.get_heads(),
            a.doc.get_heads(),
            "taken beyond the bound"
        );
        release.send(()).unwrap();
        until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
        drop(release);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compaction_while_writes_keep_coming_snapshots_only_what_is_stored() {
        let (store, id, release, actor, mut a, mut b, _dir) = gated_pair().await;
        let round = 200;
        let send_round = |n: usize| n * round;
        // Messages of 200 changes (logged one by one), each arriving while the one before
        // is being stored.
        let write_round = async |a: &mut Conn, r: usize| {
            for n in send_round(r)..send_round(r + 1) {
                let mut tx = a.doc.transaction();
                tx.put(automerge::ROOT, format!("k{n}"), n as i64).unwrap();
                tx.commit();
            }
            send(&actor, 1, a).await;
        };
        write_round(&mut a, 0).await;
        until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
        for r in 1..6 {
            write_round(&mut a, r).await;
            until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
            release.send(()).unwrap();
            until_flushes(&store, r + 1).await;
        }
        // 1,000 changes are stored and compaction is due, with round 5 being stored: the
        // document takes no new change until it lands, then compacts the 1,200 it holds.
        let compacted = a.doc.get_heads();
        write_round(&mut a, 6).await;
        settle(&actor, 2, &mut b, std::time::Duration::from_millis(200)).await;
        assert_ne!(b.doc.get_heads(), a.doc.get_heads(), "taken while draining");
        release.send(()).unwrap();
        until_heard(&actor, 1, &mut a, &compacted).await;
        until_holds(&actor, 2, &mut b, &a.doc.get_heads()).await;
        release.send(()).unwrap();
        let want = a.doc.get_heads();
        until_heard(&actor, 1, &mut a, &want).await;
        // The snapshot holds the 1,200 changes stored when it was taken; the round after
        // it is in the log, once.
        let stored = store.load(&id).unwrap().unwrap();
        assert!(stored.snapshot.is_some());
        assert_eq!(store.changes_since_snapshot(&id).unwrap(), round);
        assert_eq!(stored.position, send_round(7) as u64);
        let reloaded = Automerge::load(&stored.concat()).unwrap();
        assert_eq!(reloaded.get_heads(), a.doc.get_heads());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_document_that_loads_slowly_holds_up_only_those_asking_for_it() {
        let slow = DocumentId::random();
        let (release, gate) = std::sync::mpsc::channel();
        let store = Arc::new(Gated {
            slow: Some(slow),
            release: Some(std::sync::Mutex::new(gate)),
            ..Gated::default()
        });
        let (documents, _dir) = registry(store.clone(), Arc::new(Metrics::default()));
        // Two connections ask for the slow document; its load hangs.
        let first = tokio::spawn({
            let documents = documents.clone();
            async move { documents.get(slow).await }
        });
        let second = tokio::spawn({
            let documents = documents.clone();
            async move { documents.get(slow).await }
        });
        while store.loads.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // Meanwhile another document opens and syncs as usual.
        let other = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            documents.get(DocumentId::random()),
        )
        .await
        .expect("another document waited for the slow load")
        .unwrap();
        let mut c = open(&other, 1).await;
        let mut tx = c.doc.transaction();
        tx.put(automerge::ROOT, "k", 1).unwrap();
        tx.commit();
        let heads = c.doc.get_heads();
        sync_until(&other, 1, &mut c, &heads).await;
        assert!(!first.is_finished() && !second.is_finished());
        // Let the load finish: both get the same actor, from one load.
        release.send(()).unwrap();
        let (a, b) = (
            first.await.unwrap().unwrap(),
            second.await.unwrap().unwrap(),
        );
        assert!(a.same_channel(&b));
        assert_eq!(store.loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_panic_in_one_document_closes_only_its_culprit_and_reloads_from_storage() {
        let (documents, _dir) =
            registry(Arc::new(MemoryStore::new()), Arc::new(Metrics::default()));
        let id = DocumentId::random();
        let other_id = DocumentId::random();
        let actor = documents.get(id).await.unwrap();
        let other = documents.get(other_id).await.unwrap();
        let mut good = open(&actor, 1).await;
        let mut tx = good.doc.transaction();
        tx.put(automerge::ROOT, "k", 1).unwrap();
        tx.commit();
        let first = good.doc.get_heads();
        sync_until(&actor, 1, &mut good, &first).await;

        let mut culprit = open(&actor, 2).await;
        let mut bystander = open(&other, 3).await;
        actor.send(DocCommand::Panic { conn: 2 }).await.unwrap();
        // The culprit is told and dropped (its connection then closes).
        loop {
            match culprit.rx.recv().await {
                Some(Message::Error { message }) => {
                    assert!(message.contains("could not handle"), "{message}");
                    break;
                }
                Some(_) => {}
                None => panic!("the culprit heard nothing"),
            }
        }
        // The document, reloaded from storage, still serves the other connection.
        let mut tx = good.doc.transaction();
        tx.put(automerge::ROOT, "k", 2).unwrap();
        tx.commit();
        let second = good.doc.get_heads();
        good.state = SyncState::new();
        sync_until(&actor, 1, &mut good, &second).await;
        assert!(!actor.is_closed());
        // And other documents never noticed.
        let mut tx = bystander.doc.transaction();
        tx.put(automerge::ROOT, "x", 1).unwrap();
        tx.commit();
        let heads = bystander.doc.get_heads();
        sync_until(&other, 3, &mut bystander, &heads).await;
    }

    #[tokio::test]
    async fn a_big_batch_is_stored_as_one_snapshot_and_reloads_whole() {
        let store_dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SledStore::open(store_dir.path(), &OpenOptions::default()).unwrap());
        let metrics = Arc::new(Metrics::default());
        let (documents, _dir) = registry(store.clone(), metrics.clone());
        let id = DocumentId::random();
        let actor = documents.get(id).await.unwrap();
        let mut c = open(&actor, 1).await;
        // A few small changes first (stored one by one), then a big batch in one message.
        let put = |c: &mut Conn, n: usize| {
            let mut tx = c.doc.transaction();
            tx.put(automerge::ROOT, format!("k{n}"), n as i64).unwrap();
            tx.commit();
        };
        for n in 0..3 {
            put(&mut c, n);
        }
        let heads = c.doc.get_heads();
        sync_until(&actor, 1, &mut c, &heads).await;
        assert_eq!(store.changes_since_snapshot(&id).unwrap(), 3);
        let big = nudge_protocol::SNAPSHOT_BATCH + 200;
        for n in 3..3 + big {
            put(&mut c, n);
        }
        let heads = c.doc.get_heads();
        sync_until(&actor, 1, &mut c, &heads).await;
        // Acknowledged means stored: as a snapshot holding all of it, no log left over.
        let stored = store.load(&id).unwrap().unwrap();
        assert!(stored.snapshot.is_some());
        assert!(
            stored.changes.is_empty(),
            "{} log entries",
            stored.changes.len()
        );
        assert_eq!(stored.position, (3 + big) as u64);
        let reloaded = Automerge::load(&stored.concat()).unwrap();
        assert_eq!(reloaded.get_heads(), c.doc.get_heads());
        assert_eq!(reloaded.get_changes(&[]).len(), 3 + big);
        for hash in c.doc.get_changes(&[]).iter().map(|c| c.hash()) {
            assert!(store.contains(&id, &hash.0).unwrap());
        }
        // Not appended change by change and compacted after: nothing needed compacting.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(metrics.compactions.get(), 0);
        // Small changes after it go to the log again.
        put(&mut c, 99_999);
        let heads = c.doc.get_heads();
        sync_until(&actor, 1, &mut c, &heads).await;
        assert_eq!(store.changes_since_snapshot(&id).unwrap(), 1);
        assert_eq!(store.position(&id).unwrap(), (4 + big) as u64);
    }
}
