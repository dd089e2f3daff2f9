//! One document and the peers syncing it, with the durability rule built in.
//!
//! A `DocSession` holds an Automerge document and one sync state per peer. It does no I/O:
//! each call returns [`Action`]s for the caller to carry out. The rule that makes an
//! acknowledgement mean something: when a peer delivers changes, the session asks for them
//! to be persisted ([`Action::Persist`]) and sends nothing (no message advertising heads
//! that include them) until the caller reports them durable with
//! [`DocSession::persisted`]. Then every peer gets a sync message.
//!
//! Peers that may only read are refused (nothing applied) when they send changes.

use std::collections::BTreeMap;

use automerge::sync::{Message as SyncMessage, State as SyncState, SyncDoc};
use automerge::{Automerge, Change, ChangeHash};

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
    /// Send this encoded Automerge sync message to the peer.
    Send(PeerKey, Vec<u8>),
    /// The peer broke the rules; close its connection with this reason.
    Reject(PeerKey, String),
}

struct Peer {
    state: SyncState,
    access: Access,
}

/// A document and its peers.
pub struct DocSession {
    doc: Automerge,
    peers: BTreeMap<PeerKey, Peer>,
    /// Heads of everything persisted: nothing beyond them may be advertised.
    persisted_heads: Vec<ChangeHash>,
    /// Whether changes are waiting to be persisted.
    waiting: bool,
}

impl DocSession {
    /// A session over a document whose every change is already persisted.
    pub fn new(doc: Automerge) -> Self {
        Self {
            persisted_heads: doc.get_heads(),
            doc,
            peers: BTreeMap::new(),
            waiting: false,
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
            },
        );
        self.generate(Some(peer))
    }

    /// Forgets a peer (disconnected).
    pub fn remove_peer(&mut self, peer: PeerKey) {
        self.peers.remove(&peer);
    }

    /// Handles a sync message from a peer.
    pub fn receive(&mut self, peer: PeerKey, message: SyncMessage) -> Vec<Action> {
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
        if let Err(e) = self.doc.receive_sync_message(&mut p.state, message) {
            return vec![Action::Reject(peer, format!("invalid sync message: {e}"))];
        }
        let new: Vec<Change> = self.doc.get_changes(&before).into_iter().collect();
        if new.is_empty() {
            return self.generate(Some(peer));
        }
        self.waiting = true;
        vec![Action::Persist(new)]
    }

    /// The changes asked for by the last [`Action::Persist`] are durable: tell every peer.
    pub fn persisted(&mut self) -> Vec<Action> {
        self.waiting = false;
        self.persisted_heads = self.doc.get_heads();
        self.generate(None)
    }

    fn generate(&mut self, only: Option<PeerKey>) -> Vec<Action> {
        if self.waiting {
            // Nothing leaves while changes are not durable: every sync message carries our
            // heads, and heads are an acknowledgement.
            return Vec::new();
        }
        debug_assert_eq!(self.doc.get_heads(), self.persisted_heads);
        let mut out = Vec::new();
        for (key, peer) in &mut self.peers {
            if only.is_some_and(|o| o != *key) {
                continue;
            }
            if let Some(message) = self.doc.generate_sync_message(&mut peer.state) {
                out.push(Action::Send(*key, message.encode()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ROOT, ReadDoc};

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
                    Action::Persist(_) => {
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
    fn nothing_is_sent_before_new_changes_are_persisted() {
        let mut session = DocSession::new(Automerge::new());
        let mut client = Client::new();
        client.write("x", 1);
        for a in session.add_peer(7, Access::ReadWrite) {
            if let Action::Send(_, bytes) = a {
                client.incoming(&bytes);
            }
        }
        let _ = session.add_peer(8, Access::ReadWrite);
        let actions = until_persist_or_reject(&mut session, &mut client, 7);
        assert!(
            matches!(actions.as_slice(), [Action::Persist(c)] if c.len() == 1),
            "{actions:?}"
        );
        // While the change is not durable, greeting or answering anyone sends nothing.
        assert!(session.add_peer(9, Access::ReadWrite).is_empty());
        if let Some(m) = client.outgoing() {
            assert!(
                session
                    .receive(7, m)
                    .iter()
                    .all(|a| !matches!(a, Action::Send(..)))
            );
        }
        let after = session.persisted();
        let told: Vec<PeerKey> = after
            .iter()
            .filter_map(|a| match a {
                Action::Send(k, _) => Some(*k),
                _ => None,
            })
            .collect();
        assert!(
            told.contains(&8) && told.contains(&9),
            "every other peer hears of the new heads: {told:?}"
        );
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
        for a in session.add_peer(5, Access::ReadOnly) {
            if let Action::Send(_, bytes) = a {
                reader.incoming(&bytes);
            }
        }
        reader.write("intruder", 1);
        let heads = session.doc().get_heads();
        let actions = until_persist_or_reject(&mut session, &mut reader, 5);
        assert!(
            matches!(actions.as_slice(), [Action::Reject(5, why)] if why.contains("read-only")),
            "{actions:?}"
        );
        assert_eq!(session.doc().get_heads(), heads, "nothing applied");
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
