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
mod tests {
    use super::*;
    use automerge::ROOT;
    use automerge::transaction::Transactable;

    /// A client replica talking to the session as peer `key`.
    struct Client {
        doc: Automerge,
        state: SyncState,
    }

    impl Client {
        fn new() -> Self {
            Self {
                doc: Automerge::new(),
                state: SyncState::new(),
            }
        }

        fn write(&mut self, key: &str, value: i64) {
            let mut tx = self.doc.transaction();
            tx.put(ROOT, key, value).unwrap();
            tx.commit();
        }

        fn outgoing(&mut self) -> Option<SyncMessage> {
            self.doc.generate_sync_message(&mut self.state)
        }

        fn incoming(&mut self, bytes: &[u8]) {
            let m = SyncMessage::decode(bytes).unwrap();
            self.doc.receive_sync_message(&mut self.state, m).unwrap();
        }
    }

    /// Adds a peer and hands it the greeting.
    fn greet(session: &mut DocSession, key: PeerKey, access: Access, client: &mut Client) {
        for a in session.add_peer(key, access) {
            if let Action::Send(_, bytes) = a {
                client.incoming(&bytes);
            }
        }
    }

    /// The heads of every message among `actions` for `key`.
    fn heads_sent(actions: &[Action], key: PeerKey) -> Vec<Vec<ChangeHash>> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(k, bytes) if *k == key => {
                    Some(SyncMessage::decode(bytes).unwrap().heads)
                }
                _ => None,
            })
            .collect()
    }

    /// Runs the exchange until quiet, persisting on request; returns how many persists.
    fn run(
        session: &mut DocSession,
        clients: &mut BTreeMap<PeerKey, Client>,
        mut actions: Vec<Action>,
    ) -> usize {
        let mut persists = 0;
        for _ in 0..100 {
            for (key, c) in clients.iter_mut() {
                if let Some(m) = c.outgoing() {
                    actions.extend(session.receive(*key, m));
                }
            }
            if actions.is_empty() {
                return persists;
            }
            for action in std::mem::take(&mut actions) {
                match action {
                    Action::Persist(_) | Action::PersistSnapshot { .. } => {
                        persists += 1;
                        actions.extend(session.persisted());
                    }
                    Action::Send(key, bytes) => clients.get_mut(&key).unwrap().incoming(&bytes),
                    Action::Reject(key, why) => panic!("peer {key} rejected: {why}"),
                }
            }
        }
        panic!("no quiescence");
    }

    #[test]
    fn peers_converge_through_the_session() {
        let mut session = DocSession::new(Automerge::new());
        let mut clients: BTreeMap<PeerKey, Client> = (1..=3).map(|k| (k, Client::new())).collect();
        clients.get_mut(&1).unwrap().write("a", 1);
        clients.get_mut(&2).unwrap().write("b", 2);
        let mut actions = Vec::new();
        for k in 1..=3 {
            actions.extend(session.add_peer(k, Access::ReadWrite));
        }
        let persists = run(&mut session, &mut clients, actions);
        assert!(persists >= 2);
        let heads = session.doc().get_heads();
        for c in clients.values() {
            assert_eq!(c.doc.get_heads(), heads);
            assert!(
                c.doc.get(ROOT, "a").unwrap().is_some() && c.doc.get(ROOT, "b").unwrap().is_some()
            );
        }
    }

    /// Exchanges messages between one client and the session until the session asks for
    /// a persist or rejects; returns those actions.
    fn until_persist_or_reject(
        session: &mut DocSession,
        client: &mut Client,
        key: PeerKey,
    ) -> Vec<Action> {
        for _ in 0..20 {
            let Some(m) = client.outgoing() else { continue };
            let actions = session.receive(key, m);
            if actions
                .iter()
                .any(|a| matches!(a, Action::Persist(_) | Action::Reject(..)))
            {
                return actions;
            }
            for a in actions {
                if let Action::Send(k, bytes) = a {
                    assert_eq!(k, key);
                    client.incoming(&bytes);
                }
            }
        }
        panic!("the client never delivered its change");
    }

    #[test]
    fn the_sender_hears_nothing_before_its_changes_are_persisted_the_others_at_once() {
        let mut session = DocSession::new(Automerge::new());
        let mut client = Client::new();
        client.write("x", 1);
        greet(&mut session, 7, Access::ReadWrite, &mut client);
        // Another peer that has told us what it holds (nothing yet).
        let mut other = Client::new();
        greet(&mut session, 8, Access::ReadWrite, &mut other);
        let said = other.outgoing().expect("a first message");
        let _ = session.receive(8, said);
        let actions = until_persist_or_reject(&mut session, &mut client, 7);
        let heads = client.doc.get_heads();
        let to = |actions: &[Action], key: PeerKey| {
            actions
                .iter()
                .any(|a| matches!(a, Action::Send(k, _) if *k == key))
        };
        assert!(
            matches!(actions.first(), Some(Action::Persist(c)) if c.len() == 1),
            "{actions:?}"
        );
        // The other peer gets the change now (`relay`), with heads that include it.
        assert_eq!(actions.len(), 1, "{actions:?}");
        let actions = session.relay();
        let relayed = heads_sent(&actions, 8).contains(&heads);
        assert!(relayed, "{actions:?}");
        assert!(
            !to(&actions, 7),
            "the sender was acknowledged before the store"
        );
        // A new peer, which has not said what it holds (it may be the sender, connected
        // again, holding the change as its own), is greeted once the change is stored; the
        // sender, speaking again, still hears nothing.
        assert!(!to(&session.add_peer(9, Access::ReadWrite), 9));
        if let Some(m) = client.outgoing() {
            assert!(!to(&session.receive(7, m), 7));
        }
        assert!(session.is_waiting());
        let after = session.persisted();
        let acked = heads_sent(&after, 7).contains(&heads);
        assert!(acked, "the sender hears our heads once stored: {after:?}");
        assert!(
            to(&after, 9),
            "the new peer is greeted once stored: {after:?}"
        );
        assert!(!session.is_waiting());
    }

    /// A writer whose change a crashed server relayed to another device before storing it,
    /// that device (which wrote `more` changes since), and the restarted server's session.
    fn relayed_before_a_crash(more: i64) -> (Client, Client, DocSession) {
        let mut writer = Client::new();
        writer.write("w", 1);
        let mut reached = Client::new();
        reached.doc.merge(&mut writer.doc.clone()).unwrap();
        for i in 0..more {
            reached.write(&format!("r{i}"), i);
        }
        (writer, reached, DocSession::new(Automerge::new()))
    }

    /// `before`, what the writer got so far, does not acknowledge its change; once
    /// everything is persisted, what it gets does.
    fn acknowledged_only_once_stored(
        session: &mut DocSession,
        before: &[Action],
        acknowledges: impl Fn(&[Action]) -> bool,
    ) {
        assert!(
            !acknowledges(before),
            "acknowledged before stored: {before:?}"
        );
        let after = session.persisted();
        assert!(
            acknowledges(&after),
            "stored, the writer hears the heads: {after:?}"
        );
    }

    /// A server relayed the writer's change and crashed before storing it; restarted, it
    /// gets the change from the peer the relay reached. Until it is stored, the writer
    /// hears no heads covering it: it would take them for its acknowledgement.
    #[test]
    fn a_change_delivered_by_another_peer_is_acknowledged_to_its_writer_only_once_stored() {
        let (mut writer, mut reached, mut session) = relayed_before_a_crash(0);
        let written = writer.doc.get_heads();
        greet(&mut session, 1, Access::ReadWrite, &mut reached);
        let actions = until_persist_or_reject(&mut session, &mut reached, 1);
        assert!(matches!(actions.first(), Some(Action::Persist(c)) if c.len() == 1));
        let covers = |actions: &[Action]| heads_sent(actions, 2).contains(&written);
        // The writer connects and says what it holds, the change among it.
        let mut heard = session.add_peer(2, Access::ReadWrite);
        heard.extend(session.relay());
        for _ in 0..5 {
            let Some(m) = writer.outgoing() else { break };
            heard.extend(session.receive(2, m));
        }
        acknowledged_only_once_stored(&mut session, &heard, covers);
    }

    /// The same, when what the writer lacks makes the relay carry the whole document
    /// (Automerge then records every hash as sent, the writer's own change too).
    #[test]
    fn a_whole_document_relay_does_not_acknowledge_its_receivers_change_before_stored() {
        let (mut writer, mut reached, mut session) = relayed_before_a_crash(10);
        // The writer connects first and says what it holds, before it sends anything (its
        // first message, before it heard ours).
        let _ = session.add_peer(2, Access::ReadWrite);
        let said = writer.outgoing().expect("a first message");
        assert!(said.changes.is_empty());
        let _ = session.receive(2, said);
        // The other device delivers the writer's change with ten of its own.
        greet(&mut session, 1, Access::ReadWrite, &mut reached);
        let actions = until_persist_or_reject(&mut session, &mut reached, 1);
        assert!(matches!(actions.first(), Some(Action::Persist(c)) if c.len() == 11));
        let to_writer = |actions: &[Action]| heads_sent(actions, 2).iter().any(|h| !h.is_empty());
        let relayed = session.relay();
        acknowledged_only_once_stored(&mut session, &relayed, to_writer);
    }

    #[test]
    fn a_read_only_peer_cannot_change_the_document() {
        let mut base = Automerge::new();
        let mut tx = base.transaction();
        tx.put(ROOT, "owner", 1).unwrap();
        tx.commit();
        let mut session = DocSession::new(base.fork());
        let mut reader = Client {
            doc: base.fork(),
            state: SyncState::new(),
        };
        greet(&mut session, 5, Access::ReadOnly, &mut reader);
        reader.write("intruder", 1);
        let heads = session.doc().get_heads();
        let actions = until_persist_or_reject(&mut session, &mut reader, 5);
        assert!(
            matches!(actions.as_slice(), [Action::Reject(5, why)] if why.contains("read-only")),
            "{actions:?}"
        );
        assert_eq!(session.doc().get_heads(), heads, "nothing applied");
    }

    /// A sync message that carries `changes` and nothing else.
    fn carrying(changes: &[Change]) -> SyncMessage {
        SyncMessage {
            heads: Vec::new(),
            need: Vec::new(),
            have: Vec::new(),
            changes: changes
                .iter()
                .map(|c| c.raw_bytes().to_vec())
                .collect::<Vec<_>>()
                .into(),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        }
    }

    #[test]
    fn changes_whose_dependencies_never_arrive_are_dropped_and_their_sender_closed() {
        let mut session = DocSession::new(Automerge::new());
        let _ = session.add_peer(1, Access::ReadWrite);
        let _ = session.add_peer(2, Access::ReadWrite);
        // The hostile peer sends changes whose first change (their dependency) never comes.
        let mut hostile = Client::new();
        hostile.write("root", 0);
        for i in 0..MAX_DANGLING_MESSAGES + 1 {
            hostile.write("x", i64::from(i));
        }
        let changes = hostile.doc.get_changes(&[]);
        let mut last = Vec::new();
        for i in 0..=MAX_DANGLING_MESSAGES as usize {
            last = session.receive(1, carrying(&changes[i + 1..i + 2]));
            if i < MAX_DANGLING_MESSAGES as usize {
                assert!(
                    !last.iter().any(|a| matches!(a, Action::Reject(..))),
                    "message {i}: {last:?}"
                );
                assert!(session.missing_dependencies() > 0);
            }
        }
        assert!(
            matches!(last.as_slice(), [Action::Reject(1, why)] if why.contains("never arrived")),
            "{last:?}"
        );
        assert_eq!(
            session.missing_dependencies(),
            0,
            "the waiting changes are gone"
        );
        assert!(session.doc().get_heads().is_empty(), "nothing applied");
        // The other peer goes on as before.
        let mut honest = BTreeMap::from([(2, Client::new())]);
        honest.get_mut(&2).unwrap().write("y", 1);
        assert_eq!(run(&mut session, &mut honest, Vec::new()), 1);
    }

    /// A peer whose changes are being stored hears nothing, so it cannot learn that we
    /// lack a dependency of what it goes on sending (its bloom filter matched one we do
    /// not have): it is not closed for that, and the dependency completes them later.
    #[test]
    fn a_peer_is_not_closed_for_dependencies_while_it_hears_nothing_from_us() {
        let mut session = DocSession::new(Automerge::new());
        let _ = session.add_peer(1, Access::ReadWrite);
        let mut peer = Client::new();
        peer.write("a", 1);
        peer.write("skipped", 2);
        for i in 0..=MAX_DANGLING_MESSAGES {
            peer.write("b", i64::from(i));
        }
        let changes = peer.doc.get_changes(&[]);
        let first = session.receive(1, carrying(&changes[..1]));
        assert!(matches!(first.as_slice(), [Action::Persist(c)] if c.len() == 1));
        for (i, change) in changes[2..].iter().enumerate() {
            let actions = session.receive(1, carrying(std::slice::from_ref(change)));
            assert!(actions.is_empty(), "message {i}: {actions:?}");
        }
        let _ = session.persisted();
        let completed = session.receive(1, carrying(&changes[1..2]));
        assert!(
            matches!(completed.as_slice(), [Action::Persist(c)] if c.len() == changes.len() - 1),
            "{completed:?}"
        );
    }

    #[test]
    fn a_peer_sending_megabytes_of_changes_that_cannot_apply_is_closed() {
        let mut session = DocSession::new(Automerge::new());
        let _ = session.add_peer(1, Access::ReadWrite);
        let mut hostile = Client::new();
        hostile.write("root", 0);
        for i in 0..3 {
            let mut tx = hostile.doc.transaction();
            tx.put(ROOT, format!("big{i}"), "x".repeat(3 << 20))
                .unwrap();
            tx.commit();
        }
        let changes = hostile.doc.get_changes(&[]);
        assert_eq!(changes.len(), 4);
        for (i, change) in changes[1..].iter().enumerate() {
            let actions = session.receive(1, carrying(std::slice::from_ref(change)));
            let closed = actions.iter().any(|a| matches!(a, Action::Reject(..)));
            // Three messages of 3 MiB are over the bound; two are not.
            assert_eq!(closed, i == 2, "message {i}: {actions:?}");
        }
        assert_eq!(session.missing_dependencies(), 0);
    }

    /// Changes one peer left waiting for their dependencies count against that peer only:
    /// another, sending changes we already have meanwhile, is not closed for them.
    #[test]
    fn only_the_peer_whose_changes_wait_is_closed_for_them() {
        let mut base = Client::new();
        base.write("base", 0);
        let mut server = Automerge::new();
        server.merge(&mut base.doc.clone()).unwrap();
        let mut session = DocSession::new(server);
        let _ = session.add_peer(1, Access::ReadWrite);
        let _ = session.add_peer(2, Access::ReadWrite);
        let mut hostile = Client::new();
        hostile.write("root", 0);
        hostile.write("x", 1);
        let orphan = hostile.doc.get_changes(&[])[1].clone();
        let known = base.doc.get_changes(&[]);
        let rejected = |actions: &[Action], key: PeerKey| {
            actions
                .iter()
                .any(|a| matches!(a, Action::Reject(k, _) if *k == key))
        };
        for i in 0..=MAX_DANGLING_MESSAGES {
            let theirs = session.receive(1, carrying(std::slice::from_ref(&orphan)));
            let ours = session.receive(2, carrying(&known));
            assert!(!rejected(&ours, 2), "message {i}: {ours:?}");
            assert_eq!(
                rejected(&theirs, 1),
                i == MAX_DANGLING_MESSAGES,
                "{theirs:?}"
            );
        }
    }

    #[test]
    fn a_dependency_sent_one_message_late_is_fine() {
        let mut session = DocSession::new(Automerge::new());
        let _ = session.add_peer(1, Access::ReadWrite);
        let mut peer = Client::new();
        peer.write("a", 1);
        peer.write("b", 2);
        let changes = peer.doc.get_changes(&[]);
        let first = session.receive(1, carrying(&changes[1..]));
        assert!(!first.iter().any(|a| matches!(a, Action::Reject(..))));
        let second = session.receive(1, carrying(&changes[..1]));
        assert!(
            matches!(second.as_slice(), [Action::Persist(c)] if c.len() == 2),
            "{second:?}"
        );
        assert_eq!(session.missing_dependencies(), 0);
    }

    #[test]
    fn waiting_changes_go_when_their_sender_disconnects() {
        let mut session = DocSession::new(Automerge::new());
        let _ = session.add_peer(1, Access::ReadWrite);
        let mut peer = Client::new();
        peer.write("a", 1);
        peer.write("b", 2);
        let changes = peer.doc.get_changes(&[]);
        let _ = session.receive(1, carrying(&changes[1..]));
        assert!(session.missing_dependencies() > 0);
        session.remove_peer(1);
        assert_eq!(session.missing_dependencies(), 0);
    }

    #[test]
    fn a_peer_heard_again_while_changes_are_stored_still_gets_its_acknowledgement() {
        let mut session = DocSession::new(Automerge::new());
        let mut client = Client::new();
        greet(&mut session, 1, Access::ReadWrite, &mut client);
        client.write("x", 1);
        let first = session.receive(1, client.outgoing().unwrap());
        assert!(
            matches!(first.as_slice(), [Action::Persist(_)]),
            "{first:?}"
        );
        // Before the store completes, the client speaks again: its heads, no changes.
        client.state.in_flight = false;
        let mut again = client.outgoing().unwrap();
        again.changes = Vec::<Vec<u8>>::new().into();
        assert!(
            session.receive(1, again).is_empty(),
            "nothing leaves while waiting"
        );
        let after = session.persisted();
        let heads = client.doc.get_heads();
        let acked = after.iter().any(|a| match a {
            Action::Send(1, bytes) => SyncMessage::decode(bytes).unwrap().heads == heads,
            _ => false,
        });
        assert!(acked, "the client hears our heads: {after:?}");
    }

    #[test]
    fn a_peer_with_changes_in_a_later_batch_waits_for_that_batch() {
        let mut session = DocSession::new(Automerge::new());
        let mut writer = Client::new();
        let mut quiet = Client::new();
        for (key, c) in [(1, &mut writer), (2, &mut quiet)] {
            for a in session.add_peer(key, Access::ReadWrite) {
                if let Action::Send(_, bytes) = a {
                    c.incoming(&bytes);
                }
            }
        }
        let heard = |actions: &[Action], key: PeerKey| -> Option<Vec<ChangeHash>> {
            actions.iter().find_map(|a| match a {
                Action::Send(k, bytes) if *k == key => {
                    Some(SyncMessage::decode(bytes).unwrap().heads)
                }
                _ => None,
            })
        };
        // The writer's first change goes into batch 1, which starts to be stored.
        writer.write("a", 1);
        assert!(matches!(
            session.receive(1, writer.outgoing().unwrap()).as_slice(),
            [Action::Persist(_)]
        ));
        let first = session.seal();
        // While it is stored, the writer delivers a second change (batch 2) and the quiet
        // peer speaks without changes.
        writer.write("b", 2);
        writer.state.in_flight = false;
        assert!(matches!(
            session.receive(1, writer.outgoing().unwrap()).as_slice(),
            [Action::Persist(_)]
        ));
        let _ = session.relay();
        let _ = quiet.outgoing();
        // Batch 1 lands: the writer's newest change is not durable, so it hears nothing.
        let landed = session.persisted_through(first);
        assert_eq!(heard(&landed, 1), None, "{landed:?}");
        assert!(session.is_waiting());
        assert_eq!(session.longest_wait(), 1);
        // Batch 2 lands: now it hears heads covering both.
        let second = session.seal();
        let landed = session.persisted_through(second);
        assert_eq!(
            heard(&landed, 1),
            Some(writer.doc.get_heads()),
            "{landed:?}"
        );
        assert!(!session.is_waiting());
        assert_eq!(session.longest_wait(), 0);
    }

    #[test]
    fn unknown_peers_are_refused() {
        let mut session = DocSession::new(Automerge::new());
        let mut client = Client::new();
        client.write("x", 1);
        let actions = session.receive(42, client.outgoing().unwrap());
        assert!(matches!(actions.as_slice(), [Action::Reject(42, _)]));
    }
}
