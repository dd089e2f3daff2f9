//! A document's actor: the loop that owns the document's [`DocSession`], takes commands
//! from connections, gathers what they deliver into batches (group commit, the policy in
//! `batch.rs`), stores each batch while the next gathers, and acknowledges a batch only
//! once it landed; the session's actions become messages to each peer here.

use std::collections::HashMap;
use std::sync::Arc;

use nudge_protocol::{Action, Batch, DocSession, PeerKey};
use nudge_store::DocumentId;
use tokio::sync::mpsc;

use super::batch::{self, Pending};
use super::{DocCommand, Documents, Event, Peer};

/// What handling one command came to.
enum Handled {
    /// The session's actions.
    Actions(Vec<Action>),
    /// Nothing for the session to do.
    Nothing,
    /// Handling the connection's message panicked, with the panic's message.
    Panicked(PeerKey, String),
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
enum Wake {
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

impl Documents {
    pub(super) async fn actor(
        self: Arc<Self>,
        doc: DocumentId,
        (mut session, mut caught_up): (DocSession, u64),
        mut rx: mpsc::Receiver<DocCommand>,
        own: mpsc::WeakSender<DocCommand>,
    ) {
        // `caught_up`: the log position the session holds every stored change through
        // (what compaction may cover on a shared database, `follow.rs`).
        let mut peers: HashMap<PeerKey, Peer> = HashMap::new();
        // Changes handled and not yet handed to a flush, and the flush under way: while a
        // batch is stored, the next one gathers (pipelining), so a slow flush holds up the
        // acknowledgements behind it but not the relay. Invariant: no flight, nothing pending.
        let mut pending = Pending::default();
        let mut flight: Option<Flight> = None;
        // Every sender is gone: end once everything handled is stored.
        let mut closed = false;
        loop {
            let accepting =
                batch::accepting(closed, flight.as_ref().map(|f| f.drain), pending.bytes);
            let event = match flight.as_mut() {
                Some(f) if !accepting => Wake::Landed(stored((&mut f.task).await)),
                Some(f) => tokio::select! {
                    // A landed flight first: its acknowledgements, and the next flight.
                    biased;
                    joined = &mut f.task => Wake::Landed(stored(joined)),
                    command = rx.recv() => Wake::Command(command),
                },
                None if closed => return,
                // Nobody has it open: it leaves memory after `unload_after` of that.
                None if peers.is_empty() => {
                    match tokio::time::timeout(self.unload_after, rx.recv()).await {
                        Ok(command) => Wake::Command(command),
                        Err(_) => {
                            if self.unload(doc, &rx, &own).await {
                                return;
                            }
                            continue;
                        }
                    }
                }
                None => Wake::Command(rx.recv().await),
            };
            let first = match event {
                Wake::Landed(result) => {
                    let Some(landed) = flight.take() else {
                        continue;
                    };
                    let since_snapshot = match result {
                        Ok(since_snapshot) => since_snapshot,
                        Err(e) => {
                            // Never acknowledge what is not stored: this document stops
                            // here, unacknowledged, and the server shuts down.
                            self.fail(doc, &e, &peers);
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
                    let landing = batch::after_landing(since_snapshot, session.longest_wait());
                    if pending.is_empty() {
                        // Everything applied is stored: the snapshot covers just that (and,
                        // on a shared database, everything stored through `caught_up`).
                        if landing.compact {
                            let through = if self.shared {
                                let read = self
                                    .catch_up(doc, u64::MAX, &mut session, &mut caught_up)
                                    .await;
                                for action in read {
                                    self.carry_out(doc, action, &mut session, &mut peers);
                                }
                                Some(caught_up)
                            } else {
                                None
                            };
                            if let Err(e) = self.compact(doc, &session, through).await {
                                // Only a storage call that never came back ends up here.
                                self.fail(doc, &e, &peers);
                                return;
                            }
                        }
                    } else {
                        // The next batch goes at once. It takes no new commands while it is
                        // stored when compaction is due (so that the snapshot holds only
                        // stored changes) or when a peer has written through too many
                        // flushes to be acknowledged (so that it is).
                        let batch::Landing {
                            compact,
                            starved,
                            drain,
                        } = landing;
                        if drain {
                            tracing::debug!(%doc, compact, starved, "the next flush takes no message until it lands");
                        }
                        flight = Some(self.fly(doc, &mut session, &mut pending, drain));
                    }
                    continue;
                }
                Wake::Command(None) => {
                    closed = true;
                    continue;
                }
                Wake::Command(Some(first)) => first,
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
                if let DocCommand::CatchUp { position } = command {
                    let read = self
                        .catch_up(doc, position, &mut session, &mut caught_up)
                        .await;
                    for action in read {
                        self.carry_out(doc, action, &mut session, &mut peers);
                    }
                    if batch::take_more(handled, pending.bytes) {
                        next = rx.try_recv().ok();
                    }
                    continue;
                }
                let actions = match self.handle(doc, command, &mut session, &mut peers) {
                    Handled::Actions(actions) => actions,
                    Handled::Nothing => Vec::new(),
                    Handled::Panicked(culprit, why) => {
                        // What is being stored lands first, so that the reload has it.
                        // Changes applied and not handed to a flush go with the discarded
                        // state; nothing acknowledged them, and their senders resync.
                        if let Some(landing) = flight.take() {
                            if let Err(e) = stored(landing.task.await) {
                                self.fail(doc, &e, &peers);
                                return;
                            }
                            let _ = self.updates.send(doc);
                        }
                        pending = Pending::default();
                        delivered = false;
                        match self.recover(doc, &mut peers, culprit, why).await {
                            Some((fresh, position, actions)) => {
                                session = fresh;
                                caught_up = position;
                                actions
                            }
                            None => return,
                        }
                    }
                };
                for action in actions {
                    match pending.gather(self.storable(action, &session)) {
                        Some(other) => self.carry_out(doc, other, &mut session, &mut peers),
                        None => delivered = true,
                    }
                }
                if batch::take_more(handled, pending.bytes) {
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
            since,
            ..
        } = std::mem::take(pending);
        let count = changes.len() + snapshot.as_ref().map_or(0, |(_, new)| new.len());
        self.metrics.batched_changes.observe(count as f64);
        let batch = session.seal();
        let me = self.clone();
        let task = tokio::spawn(async move { me.persist(doc, snapshot, changes).await });
        Flight {
            task,
            batch,
            drain,
            since: since.unwrap_or_else(std::time::Instant::now),
        }
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
            Ok(actions) => Handled::Actions(actions),
            Err(why) => Handled::Panicked(conn, why),
        };
        match command {
            DocCommand::Open {
                conn,
                access,
                tx,
                kick,
            } => {
                // Only the owner's connections get here: opening a document nobody owned
                // made it the account's (`Server::admit`). A share's cheers are written by
                // the server alone (`cheers.rs`): every peer reads them only, so nothing a
                // peer stores (or a compaction after it) can race the server's writes.
                let access = if nudge_journal::cheers::is_cheers(session.doc()) {
                    nudge_protocol::Access::ReadOnly
                } else {
                    access
                };
                peers.insert(conn, Peer { access, tx, kick });
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
                sender,
                session_id,
                count,
                data,
            } => {
                if !peers.contains_key(&conn) {
                    return Handled::Nothing;
                }
                for (other, peer) in peers.iter() {
                    if *other == conn {
                        continue;
                    }
                    // Ephemeral data is best effort: a full queue drops it, not the peer.
                    let _ = peer.tx.try_send(Event::Ephemeral {
                        doc,
                        sender: sender.clone(),
                        session_id: session_id.clone(),
                        count,
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
            // Taken by the loop (it reads storage), never handed here.
            DocCommand::CatchUp { .. } => Handled::Nothing,
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
                match peer.tx.try_send(Event::Sync { doc, data }) {
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
                    let why = nudge_protocol::rejection::for_document(&doc, &reason);
                    let _ = peer.tx.try_send(Event::Dropped(why));
                }
                session.remove_peer(conn);
            }
            // The actor persists; the session asks for it only from `receive`.
            Action::Persist(_) | Action::PersistSnapshot { .. } => {
                tracing::error!(%doc, "a persist request outside a receive was ignored");
            }
        }
    }
}
