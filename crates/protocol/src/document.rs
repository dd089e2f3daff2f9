//! One document and the peers syncing it, with the durability rule built in.
//!
//! A `DocSession` holds an Automerge document and one sync state per peer. It does no I/O:
//! each call returns [`Action`]s for the caller to carry out. The rule that makes an
//! acknowledgement mean something: when a peer delivers changes, the session asks for them
//! to be persisted ([`Action::Persist`]) and sends **that peer** nothing (no message
//! advertising heads that include its changes) until the caller reports them durable with
//! [`DocSession::persisted`]; then it gets its acknowledgement. The other peers get the
//! changes at once, as a server that does not wait for its disk would send them: they are
//! not theirs to lose (the sender still holds them, unacknowledged, and sends them again
//! to a server that lost them), and waiting for the flush would add it to every relay.
//!
//! Persists may be pipelined: [`DocSession::seal`] closes the changes delivered so far into
//! a batch, the caller stores it while the session goes on receiving, and
//! [`DocSession::persisted_through`] acknowledges the peers whose changes were all in the
//! batches stored. A peer that delivered more changes meanwhile waits for the batch those
//! went into; [`DocSession::longest_wait`] says how many batches it has seen land without
//! it, so that the caller can stop pipelining for one batch and let it be acknowledged.
//!
//! A peer can also hold a change it did not deliver here: one it wrote and sent to a
//! server that relayed it and crashed before storing it, which another peer that got the
//! relay now delivers. Heads covering that change would acknowledge it to its writer. So a
//! message whose heads cover a change not yet persisted that was neither delivered by that
//! peer nor ever sent to it (so it may have it from elsewhere) is held until the batch
//! holding that change lands, and the messages after it wait behind it.
//!
//! Peers that may only read are refused (nothing applied) when they send changes.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use automerge::sync::{Message as SyncMessage, State as SyncState, SyncDoc};
use automerge::{Automerge, Change, ChangeHash, ReadDoc, SaveOptions};

/// Who a peer is, as the caller keys connections (never the peer id a client claims).
pub type PeerKey = u64;

/// What a peer may do with this document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read and write.
    ReadWrite,
    /// Read only: changes it sends are refused.
    ReadOnly,
}

/// Something for the caller to do.
#[derive(Debug)]
pub enum Action {
    /// Append these changes to storage and flush, then call [`DocSession::persisted`].
    Persist(Vec<Change>),
    /// A big batch arrived (at least [`SNAPSHOT_BATCH`] changes): store `snapshot`, the
    /// whole document, in place of what is stored, with the hashes of the changes it adds
    /// (`nudge_store::DocStore::append_snapshot`), flush, then call
    /// [`DocSession::persisted`]. Rebuilding and storing each change would cost more than
    /// the snapshot that compaction would write right after anyway.
    PersistSnapshot {
        /// The document saved whole (without changes still waiting for dependencies).
        snapshot: Vec<u8>,
        /// The hashes of the changes this message added.
        new: Vec<ChangeHash>,
    },
    /// Send this encoded Automerge sync message to the peer.
    Send(PeerKey, Vec<u8>),
    /// The peer broke the rules; close its connection with this reason.
    Reject(PeerKey, String),
}

struct Peer {
    state: SyncState,
    access: Access,
    /// Messages in a row after which changes some peer sent still wait for dependencies.
    dangling: u32,
    /// The dependencies missing because of changes it sent (missing since one of its
    /// messages, and still missing).
    blamed: HashSet<ChangeHash>,
    /// Messages in a row after which `blamed` is not empty, not counting those sent while
    /// we held our answer back (it asks for what is missing).
    strikes: u32,
    /// Bytes of changes in those messages, all of them.
    strike_bytes: usize,
    /// Messages generated for it that wait for a batch to land (the newest batch holding a
    /// change their heads cover that it may hold unacknowledged), oldest first; `None`:
    /// nothing to wait for but the messages before it.
    held: VecDeque<(Option<u64>, Vec<u8>)>,
    /// Changes not persisted yet that we sent it when it lacked them.
    got: HashSet<ChangeHash>,
}

/// From this many changes in one message on, they are persisted as a snapshot
/// ([`Action::PersistSnapshot`]) rather than change by change.
pub const SNAPSHOT_BATCH: usize = 1000;

/// How many messages in a row a peer may leave changes waiting for dependencies it has
/// not sent (not counting those it sent while we held our answer back). An honest peer
/// leaves some until it reads our reply asking for them (a bloom filter false positive
/// made it skip a change), which takes a device writing fast on a busy machine a few
/// messages (three within 49 ms were seen); changes whose dependencies never arrive would
/// otherwise sit in the document's memory for as long as the server runs.
pub const MAX_DANGLING_MESSAGES: u32 = 256;

/// How many bytes of changes a peer may send while its own changes wait for dependencies
/// (whether or not we held our answer back): the memory bound.
pub const MAX_DANGLING_BYTES: usize = 8 << 20;

/// A document and its peers.
pub struct DocSession {
    doc: Automerge,
    peers: BTreeMap<PeerKey, Peer>,
    /// The peers whose delivered changes wait to be persisted: they hear nothing until then.
    waiting: BTreeMap<PeerKey, Waiting>,
    /// Changes asked to be persisted and not persisted yet, with their batch.
    unstored: HashMap<ChangeHash, u64>,
    /// The batch changes delivered now go into ([`Self::seal`]).
    open: u64,
}

/// Whether a peer may hold `hash` already, by what it last told us: its heads, and the
/// bloom filters of the changes it has (no false negatives). Before it has said what it
/// has, it may hold anything. (Not Automerge's `sent_hashes`: a message carrying the whole
/// document records every hash as sent, those the peer had too.)
fn may_hold(state: &SyncState, hash: &ChangeHash) -> bool {
    let in_heads = state.their_heads.as_ref().is_some_and(|h| h.contains(hash));
    let in_have = match &state.their_have {
        None => true,
        Some(haves) => haves.is_empty() || haves.iter().any(|h| h.bloom.contains_hash(hash)),
    };
    in_heads || in_have
}

/// A batch of changes to persist, closed by [`DocSession::seal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Batch(u64);

/// A peer waiting for its changes to be persisted.
struct Waiting {
    /// The batch its latest changes went into.
    batch: u64,
    /// How many batches landed while it waited ([`DocSession::longest_wait`]).
    passed: u32,
}

impl DocSession {
    /// A session over a document whose every change is already persisted.
    pub fn new(doc: Automerge) -> Self {
        Self {
            doc,
            peers: BTreeMap::new(),
            waiting: BTreeMap::new(),
            unstored: HashMap::new(),
            open: 0,
        }
    }

    /// The document.
    pub fn doc(&self) -> &Automerge {
        &self.doc
    }

    /// Adds (or re-adds, with a fresh sync state: automerge's sync loops if a message was
    /// lost and the old state kept) a peer, and greets it.
    pub fn add_peer(&mut self, peer: PeerKey, access: Access) -> Vec<Action> {
        self.peers.insert(
            peer,
            Peer {
                state: SyncState::new(),
                access,
                dangling: 0,
                blamed: HashSet::new(),
                strikes: 0,
                strike_bytes: 0,
                held: VecDeque::new(),
                got: Default::default(),
            },
        );
        self.generate(Some(peer))
    }

    /// Forgets a peer (disconnected). Changes it left waiting for dependencies are dropped
    /// unless another peer is still in the middle of completing some.
    pub fn remove_peer(&mut self, peer: PeerKey) {
        let left_dangling = self.peers.remove(&peer).is_some_and(|p| p.dangling > 0);
        if left_dangling && self.peers.values().all(|p| p.dangling == 0) {
            self.drop_waiting_changes();
        }
    }

    /// Drops changes Automerge holds back because their dependencies are missing (they were
    /// never applied, stored or advertised). Automerge has no call for that, so the
    /// document is rebuilt from its history: costly on a big document, but only a peer
    /// that breaks the protocol makes it happen.
    fn drop_waiting_changes(&mut self) {
        if self.doc.get_missing_deps(&[]).is_empty() {
            return;
        }
        // Loading what we just saved cannot fail short of a bug in Automerge; if it did,
        // the waiting changes would stay (memory, not data, is at stake).
        let history = self.doc.save_with_options(SaveOptions {
            deflate: false,
            retain_orphans: false,
        });
        if let Ok(doc) = Automerge::load(&history) {
            self.doc = doc;
        }
    }

    /// The document saved whole for storage: its history only, never changes still waiting
    /// for dependencies (Automerge's `save` keeps those by default).
    pub fn snapshot(&self) -> Vec<u8> {
        self.doc.save_with_options(SaveOptions {
            deflate: true,
            retain_orphans: false,
        })
    }

    /// Changes waiting for dependencies: the missing dependencies' count (for tests and
    /// metrics).
    pub fn missing_dependencies(&self) -> usize {
        self.doc.get_missing_deps(&[]).len()
    }

    /// Handles a sync message from a peer.
    pub fn receive(&mut self, peer: PeerKey, message: SyncMessage) -> Vec<Action> {
        let withheld = self.waiting.contains_key(&peer);
        let Some(p) = self.peers.get_mut(&peer) else {
            return vec![Action::Reject(
                peer,
                "sync for a document it has not opened".into(),
            )];
        };
        if p.access == Access::ReadOnly && !message.changes.is_empty() {
            return vec![Action::Reject(
                peer,
                "read-only: changes refused, nothing stored".into(),
            )];
        }
        let before = self.doc.get_heads();
        let carried = !message.changes.is_empty();
        let carried_bytes: usize = message.changes.iter().map(<[u8]>::len).sum();
        // Most messages carry a few change chunks: those need no count of what applied.
        let surely_small = crate::sync_shape::changes_at_most(message.changes.iter())
            .is_some_and(|n| n < SNAPSHOT_BATCH);
        let check = carried || p.dangling > 0;
        let missing_before = if check {
            self.doc.get_missing_deps(&[])
        } else {
            Vec::new()
        };
        if let Err(e) = crate::receive_sync_message(&mut self.doc, &mut p.state, message) {
            return vec![Action::Reject(peer, format!("invalid sync message: {e}"))];
        }
        let missing = if check {
            self.doc.get_missing_deps(&[])
        } else {
            Vec::new()
        };
        p.dangling = if missing.is_empty() {
            0
        } else {
            p.dangling + 1
        };
        // Only what its own changes left missing counts against a peer: another's changes
        // waiting for their dependencies are not its to complete. And a peer that cannot
        // have heard our answer, because we hold messages back from it (its changes are
        // being stored, or ours wait for a batch), cannot have sent what that answer asks
        // for yet: such a message does not count against it either.
        p.blamed
            .extend(missing.iter().filter(|h| !missing_before.contains(h)));
        p.blamed.retain(|h| missing.contains(h));
        if p.blamed.is_empty() {
            p.strikes = 0;
            p.strike_bytes = 0;
        } else {
            if !withheld && p.held.is_empty() {
                p.strikes += 1;
            }
            p.strike_bytes += carried_bytes;
        }
        let blamed = p.blamed.len();
        let (strikes, strike_bytes) = (p.strikes, p.strike_bytes);
        let rejected = strikes > MAX_DANGLING_MESSAGES || strike_bytes > MAX_DANGLING_BYTES;
        let mut actions = Vec::new();
        if carried && surely_small {
            // Whatever did apply is stored like any other change, even from a peer about
            // to be closed: it is in the document now.
            let new = self.doc.get_changes(&before);
            if !new.is_empty() {
                self.wait(peer, new.iter().map(Change::hash));
                actions.push(Action::Persist(new));
            }
        } else if carried {
            // Maybe a big batch: count it from metadata, which costs nothing like
            // rebuilding every change, which a big batch then skips.
            let new: Vec<ChangeHash> = self
                .doc
                .get_changes_meta(&before)
                .into_iter()
                .map(|m| m.hash)
                .collect();
            if new.len() >= SNAPSHOT_BATCH {
                self.wait(peer, new.iter().copied());
                actions.push(Action::PersistSnapshot {
                    snapshot: self.snapshot(),
                    new,
                });
            } else if !new.is_empty() {
                self.wait(peer, new.iter().copied());
                actions.push(Action::Persist(self.doc.get_changes(&before)));
            }
        }
        if rejected {
            self.peers.remove(&peer);
            if self.peers.values().all(|p| p.dangling == 0) {
                self.drop_waiting_changes();
            }
            actions.push(Action::Reject(
                peer,
                format!(
                    "changes whose dependencies never arrived ({blamed} missing after \
                     {strikes} messages and {strike_bytes} bytes of changes); they were \
                     dropped, nothing else changed"
                ),
            ));
            return actions;
        }
        if actions.is_empty() {
            return self.generate(Some(peer));
        }
        actions
    }

    /// Sync messages for every peer whose own changes are not waiting to be persisted: how
    /// changes just received reach the other peers without waiting for the store. Call it
    /// after a batch of [`DocSession::receive`]s, before persisting what they asked for
    /// (once per batch, so that several messages make one message per peer).
    pub fn relay(&mut self) -> Vec<Action> {
        self.generate(None)
    }

    /// Changes that are durable already, stored by another server on the same database:
    /// `stored` is what storage holds (change chunks, or a saved document followed by
    /// them). Applies what is new and tells every peer, as [`Self::relay`] does; nothing
    /// waits to be persisted for them.
    pub fn absorb(&mut self, stored: &[u8]) -> Result<Vec<Action>, automerge::AutomergeError> {
        let before = self.doc.get_heads();
        self.doc.load_incremental(stored)?;
        if self.doc.get_heads() == before {
            return Ok(Vec::new());
        }
        Ok(self.generate(None))
    }

    /// Every change asked for so far by [`Action::Persist`] is durable: tell every peer.
    pub fn persisted(&mut self) -> Vec<Action> {
        let batch = self.seal();
        self.persisted_through(batch)
    }

    /// Closes the changes delivered since the last seal into a batch: the caller persists
    /// them (every [`Action::Persist`] and [`Action::PersistSnapshot`] since), and reports
    /// with [`Self::persisted_through`] once that batch and every one before it are durable.
    /// Changes delivered meanwhile go into the next batch.
    pub fn seal(&mut self) -> Batch {
        let batch = Batch(self.open);
        self.open += 1;
        batch
    }

    /// `batch` and every batch before it are durable: the peers whose changes were all in
    /// them hear our heads (their acknowledgement); the others wait for their own batch.
    pub fn persisted_through(&mut self, batch: Batch) -> Vec<Action> {
        let peers = &mut self.peers;
        self.waiting.retain(|key, waiting| {
            if waiting.batch > batch.0 {
                waiting.passed += 1;
                return true;
            }
            if let Some(peer) = peers.get_mut(key) {
                // A sender heard from while we waited may have told us heads equal to ours,
                // and Automerge then records them as sent to it and stays quiet; but nothing
                // was sent, and that peer waits for our heads as its acknowledgement.
                peer.state.last_sent_heads.clear();
            }
            false
        });
        self.unstored.retain(|_, b| *b > batch.0);
        let mut out = Vec::new();
        for (key, peer) in &mut self.peers {
            peer.got.retain(|hash| self.unstored.contains_key(hash));
            // A peer that delivered changes since hears nothing until they are persisted,
            // not even what was held for it before.
            if self.waiting.contains_key(key) {
                continue;
            }
            while peer
                .held
                .front()
                .is_some_and(|(needs, _)| needs.is_none_or(|n| n <= batch.0))
            {
                if let Some((_, bytes)) = peer.held.pop_front() {
                    out.push(Action::Send(*key, bytes));
                }
            }
        }
        out.extend(self.generate(None));
        out
    }

    /// Whether changes some peer delivered still wait to be persisted.
    pub fn is_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// The most batches any waiting peer has seen land without being acknowledged, because
    /// it delivered more changes each time before its batch landed (0 if none waits).
    pub fn longest_wait(&self) -> u32 {
        self.waiting
            .iter()
            .filter(|(key, _)| self.peers.contains_key(key))
            .map(|(_, w)| w.passed)
            .max()
            .unwrap_or(0)
    }

    /// `peer`'s latest changes, `hashes`, went into the open batch.
    fn wait(&mut self, peer: PeerKey, hashes: impl Iterator<Item = ChangeHash>) {
        let open = self.open;
        self.unstored.extend(hashes.map(|h| (h, open)));
        self.waiting
            .entry(peer)
            .and_modify(|w| w.batch = open)
            .or_insert(Waiting {
                batch: open,
                passed: 0,
            });
    }

    fn generate(&mut self, only: Option<PeerKey>) -> Vec<Action> {
        let mut out = Vec::new();
        for (key, peer) in &mut self.peers {
            if only.is_some_and(|o| o != *key) {
                continue;
            }
            // Every sync message carries our heads, and to the peer whose changes they
            // include, heads are an acknowledgement: none until those are durable.
            if self.waiting.contains_key(key) {
                continue;
            }
            if let Some(message) = self.doc.generate_sync_message(&mut peer.state) {
                // The heads cover every change not persisted yet. One the peer may hold
                // of its own (not one it lacked and we sent it) waits to be persisted.
                let mut needs = None;
                for (hash, batch) in &self.unstored {
                    if peer.got.contains(hash) {
                        continue;
                    }
                    if may_hold(&peer.state, hash) {
                        needs = needs.max(Some(*batch));
                    } else if peer.state.sent_hashes.contains(hash) {
                        peer.got.insert(*hash);
                    }
                }
                if needs.is_none() && peer.held.is_empty() {
                    out.push(Action::Send(*key, message.encode()));
                } else {
                    peer.held.push_back((needs, message.encode()));
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "document_tests.rs"]
mod tests;
