//! The client side of a sync, sans-IO: one connection to a server and the documents synced
//! over it. Feed it what arrives (after [`crate::inspect`]); send what it returns; store
//! what [`ClientSync::take_new_changes`] hands over; stop when [`ClientSync::is_done`].
//!
//! A document is done when the server has reported exactly our heads: then both hold the
//! same changes, so nothing is left to send either way. The server answers only once the
//! changes it received are durable (`docs/protocol.md`), so "done" also means everything
//! we sent is stored there. (Waiting, besides, for our own last message to need no
//! answer stalls: after taking in changes, Automerge announces its new heads, and a server
//! whose heads they equal has nothing to say back.)

use std::collections::{BTreeMap, BTreeSet};

use automerge::sync::{Message as SyncMessage, State as SyncState, SyncDoc};
use automerge::{Automerge, Change, ChangeHash};
use nudge_store::DocumentId;

use crate::guard::Inbound;
use crate::handshake::{Handshake, Step};
use crate::message::Message;

/// Why a sync cannot go on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The server sent an `error` message.
    #[error("the server said: {0}")]
    Server(String),
    /// The handshake failed.
    #[error("the server's handshake failed: {0}")]
    Handshake(String),
    /// The server sent something out of order.
    #[error("the server broke the protocol: {0}")]
    Protocol(String),
    /// A sync message could not be applied.
    #[error("a sync message from the server could not be applied: {0}")]
    Apply(String),
    /// The server holds changes of an actor, numbered like changes of the same actor held
    /// here but different from them: a copy of a device (restored from a backup) wrote as
    /// the same actor as the original (`nudge_journal::reauthor` is the way out).
    #[error(
        "the server holds other changes of this device's actor {actor} from sequence number {seq} on (was this device restored from a copy?)"
    )]
    ActorReused {
        /// The document.
        document: DocumentId,
        /// The actor both wrote as.
        actor: automerge::ActorId,
        /// The first sequence number both used.
        seq: u64,
    },
}

/// How much moved for one document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// Changes received.
    pub down: usize,
    /// Changes the server did not have and now has from us.
    pub up: usize,
}

struct ClientDoc {
    doc: Automerge,
    state: SyncState,
    /// Our heads when the sync began.
    initial: Vec<ChangeHash>,
    /// The heads the server first reported.
    server_initial: Option<Vec<ChangeHash>>,
    /// Heads already handed out by `take_new_changes`.
    stored: Vec<ChangeHash>,
    /// The server does not have it (or will not say).
    unavailable: bool,
    /// Changes made here during the sync (`apply_local`): sent, not received.
    local: BTreeSet<ChangeHash>,
}

impl ClientDoc {
    fn new(doc: Automerge) -> Self {
        let heads = doc.get_heads();
        Self {
            doc,
            state: SyncState::new(),
            initial: heads.clone(),
            server_initial: None,
            stored: heads,
            unavailable: false,
            local: BTreeSet::new(),
        }
    }

    fn in_sync(&self) -> bool {
        if self.unavailable {
            return true;
        }
        let mut ours = self.doc.get_heads();
        ours.sort();
        let theirs = self.state.their_heads.clone().map(|mut h| {
            h.sort();
            h
        });
        theirs == Some(ours)
    }
}

/// One client connection's sync of several documents.
pub struct ClientSync {
    our_id: String,
    handshake: Handshake,
    server: Option<String>,
    docs: BTreeMap<DocumentId, ClientDoc>,
}

impl ClientSync {
    /// A sync about to start, and the `join` to send first.
    pub fn new(our_id: impl Into<String>) -> (Self, Message) {
        let our_id = our_id.into();
        let (handshake, join) = Handshake::initiating(our_id.clone(), None);
        (
            Self {
                our_id,
                handshake,
                server: None,
                docs: BTreeMap::new(),
            },
            join,
        )
    }

    /// Adds a document to sync (an empty one to fetch it). Returns what to send now.
    pub fn add(&mut self, id: DocumentId, doc: Automerge) -> Vec<Message> {
        self.docs.insert(id, ClientDoc::new(doc));
        match self.server.clone() {
            Some(server) => self.first_message(id, &server).into_iter().collect(),
            None => Vec::new(),
        }
    }

    fn first_message(&mut self, id: DocumentId, server: &str) -> Option<Message> {
        let entry = self.docs.get_mut(&id)?;
        let data = entry.doc.generate_sync_message(&mut entry.state)?.encode();
        let (document_id, sender_id, target_id) =
            (id.to_string(), self.our_id.clone(), server.to_owned());
        // A document we have nothing of is asked for; the server says if it lacks it too.
        Some(if entry.initial.is_empty() {
            Message::Request {
                document_id,
                sender_id,
                target_id,
                data,
            }
        } else {
            Message::Sync {
                document_id,
                sender_id,
                target_id,
                data,
            }
        })
    }

    /// Acts on one message from the server; returns what to send.
    pub fn receive(&mut self, inbound: Inbound) -> Result<Vec<Message>, ClientError> {
        let Some(server) = self.server.clone() else {
            return match self.handshake.receive(&inbound.message) {
                Step::Established { remote, .. } => {
                    self.server = Some(remote.clone());
                    let ids: Vec<DocumentId> = self.docs.keys().copied().collect();
                    Ok(ids
                        .into_iter()
                        .filter_map(|id| self.first_message(id, &remote))
                        .collect())
                }
                Step::Fail(Message::Error { message }) => Err(ClientError::Handshake(message)),
                Step::Fail(other) => Err(ClientError::Handshake(format!("{other:?}"))),
            };
        };
        match (inbound.message, inbound.document, inbound.sync) {
            (Message::Sync { .. } | Message::Request { .. }, Some(id), Some(message)) => {
                self.receive_sync(id, message, &server)
            }
            (Message::DocUnavailable { .. }, Some(id), _) => {
                if let Some(entry) = self.docs.get_mut(&id) {
                    entry.unavailable = true;
                }
                Ok(Vec::new())
            }
            (Message::Error { message }, _, _) => {
                Err(match crate::rejection::actor_reused(&message) {
                    // The server met this device's changes first (see `rejection.rs`).
                    Some((document, actor, seq)) => ClientError::ActorReused {
                        document,
                        actor,
                        seq,
                    },
                    None => ClientError::Server(message),
                })
            }
            (Message::Leave { .. }, _, _) => {
                Err(ClientError::Server("the server left the connection".into()))
            }
            (Message::Join { .. } | Message::Peer { .. }, _, _) => {
                Err(ClientError::Protocol("a second handshake message".into()))
            }
            // Ephemeral messages and announcements are not for a headless sync.
            _ => Ok(Vec::new()),
        }
    }

    fn receive_sync(
        &mut self,
        id: DocumentId,
        message: SyncMessage,
        server: &str,
    ) -> Result<Vec<Message>, ClientError> {
        let Some(entry) = self.docs.get_mut(&id) else {
            // Not a document we asked about: nothing to do with it.
            return Ok(Vec::new());
        };
        if entry.server_initial.is_none() {
            entry.server_initial = Some(message.heads.clone());
        }
        entry.unavailable = false;
        crate::receive_sync_message(&mut entry.doc, &mut entry.state, message).map_err(
            |e| match e {
                automerge::AutomergeError::DuplicateSeqNumber(seq, actor) => {
                    ClientError::ActorReused {
                        document: id,
                        actor,
                        seq,
                    }
                }
                other => ClientError::Apply(other.to_string()),
            },
        )?;
        Ok(self.reply(id, server).into_iter().collect())
    }

    fn reply(&mut self, id: DocumentId, server: &str) -> Option<Message> {
        let entry = self.docs.get_mut(&id)?;
        let message = entry.doc.generate_sync_message(&mut entry.state)?;
        Some(Message::Sync {
            document_id: id.to_string(),
            sender_id: self.our_id.clone(),
            target_id: server.to_owned(),
            data: message.encode(),
        })
    }

    /// Applies changes made here (not received) to a document, and returns what to send
    /// so that the server gets them.
    pub fn apply_local(
        &mut self,
        id: &DocumentId,
        changes: Vec<Change>,
    ) -> Result<Vec<Message>, ClientError> {
        let Some(server) = self.server.clone() else {
            return Err(ClientError::Protocol("not connected yet".into()));
        };
        let Some(entry) = self.docs.get_mut(id) else {
            return Ok(Vec::new());
        };
        entry.local.extend(changes.iter().map(|c| c.hash()));
        entry
            .doc
            .apply_changes(changes)
            .map_err(|e| ClientError::Apply(e.to_string()))?;
        // Already stored by the caller.
        entry.stored = entry.doc.get_heads();
        Ok(self.reply(*id, &server).into_iter().collect())
    }

    /// The documents being synced.
    pub fn documents(&self) -> Vec<DocumentId> {
        self.docs.keys().copied().collect()
    }

    /// Whether the handshake is complete.
    pub fn is_established(&self) -> bool {
        self.server.is_some()
    }

    /// Whether every document is in sync with the server (or unavailable there).
    pub fn is_done(&self) -> bool {
        self.is_established() && self.docs.values().all(ClientDoc::in_sync)
    }

    /// Whether the server said it does not have the document.
    pub fn is_unavailable(&self, id: &DocumentId) -> bool {
        self.docs.get(id).is_some_and(|d| d.unavailable)
    }

    /// The document as it stands.
    pub fn doc(&self, id: &DocumentId) -> Option<&Automerge> {
        self.docs.get(id).map(|d| &d.doc)
    }

    /// The changes received since the last call (or the start), for the caller to store.
    pub fn take_new_changes(&mut self, id: &DocumentId) -> Vec<Change> {
        let Some(entry) = self.docs.get_mut(id) else {
            return Vec::new();
        };
        let changes: Vec<Change> = entry.doc.get_changes(&entry.stored);
        entry.stored = entry.doc.get_heads();
        changes
    }

    /// Whether nothing of `id` has been handed out for storing yet (a fetch into an empty
    /// device): the caller may store the whole document at once, then [`Self::mark_stored`].
    pub fn nothing_stored(&self, id: &DocumentId) -> bool {
        self.docs.get(id).is_some_and(|e| e.stored.is_empty())
    }

    /// Everything `id` holds now is stored (the caller stored the whole document).
    pub fn mark_stored(&mut self, id: &DocumentId) {
        if let Some(entry) = self.docs.get_mut(id) {
            entry.stored = entry.doc.get_heads();
        }
    }

    /// How much moved for a document; meaningful once it is in sync.
    pub fn moved(&self, id: &DocumentId) -> Moved {
        let Some(entry) = self.docs.get(id) else {
            return Moved::default();
        };
        let Some(server_initial) = &entry.server_initial else {
            return Moved::default();
        };
        // Metadata only: building whole changes to read their hashes cost as much as the
        // fetch itself on a big journal.
        let hashes = |heads: &[ChangeHash]| -> BTreeSet<ChangeHash> {
            entry
                .doc
                .get_changes_meta(heads)
                .iter()
                .map(|c| c.hash)
                .collect()
        };
        let down: BTreeSet<ChangeHash> = hashes(&entry.initial)
            .difference(&entry.local)
            .copied()
            .collect();
        let server_lacked = hashes(server_initial);
        Moved {
            down: down.len(),
            up: server_lacked.difference(&down).count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{Access, Action, DocSession};
    use crate::guard::{Limits, inspect};
    use automerge::transaction::Transactable;
    use automerge::{ROOT, ReadDoc};

    /// The server's answer to a client's `join`.
    fn establish(join: &Message) -> Message {
        match Handshake::receiving("server", None).receive(join) {
            Step::Established { reply, .. } => reply.unwrap(),
            Step::Fail(e) => panic!("{e:?}"),
        }
    }

    /// What arrives at the client: `m` as the inbound path sees it.
    fn arrive(m: &Message) -> crate::Inbound {
        inspect(&m.encode(), &Limits::default()).unwrap()
    }

    /// The server takes in a client message, storing what it asks to store at once;
    /// returns what it sends back.
    fn serve(server: &mut DocSession, m: &Message) -> Vec<Message> {
        let mut out = Vec::new();
        let mut acts = server.receive(1, arrive(m).sync.unwrap());
        while !acts.is_empty() {
            let mut next = Vec::new();
            for a in acts {
                match a {
                    Action::Persist(_) | Action::PersistSnapshot { .. } => {
                        next.extend(server.persisted())
                    }
                    other => out.extend(actions(vec![other])),
                }
            }
            acts = next;
        }
        out
    }

    /// Runs a client against a `DocSession` (the server's core) until the client is done.
    fn run(client: &mut ClientSync, join: Message, server: &mut DocSession) {
        let mut to_client = vec![establish(&join)];
        let mut added = false;
        for _ in 0..50 {
            let mut to_server = Vec::new();
            for m in to_client.drain(..) {
                to_server.extend(client.receive(arrive(&m)).unwrap());
            }
            if client.is_done() {
                return;
            }
            for m in to_server {
                if !added {
                    to_client.extend(actions(server.add_peer(1, Access::ReadWrite)));
                    added = true;
                }
                to_client.extend(serve(server, &m));
            }
        }
        panic!("no convergence");
    }

    fn actions(actions: Vec<Action>) -> Vec<Message> {
        actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Send(_, data) => Some(Message::Sync {
                    document_id: doc_id().to_string(),
                    sender_id: "server".into(),
                    target_id: "client".into(),
                    data,
                }),
                _ => None,
            })
            .collect()
    }

    fn doc_id() -> DocumentId {
        DocumentId::from_bytes([7; 16])
    }

    fn doc_with(key: &str) -> Automerge {
        let mut doc = automerge::AutoCommit::new();
        doc.put(ROOT, key, 1).unwrap();
        doc.document().clone()
    }

    /// Delivers one message at a time (the server's first, or the client's first), the
    /// server persisting at once; returns whether the client was done when nothing was
    /// left to deliver.
    fn until_quiet(
        client: &mut ClientSync,
        join: Message,
        server: &mut DocSession,
        server_first: bool,
    ) -> bool {
        let mut to_server = client.receive(arrive(&establish(&join))).unwrap();
        let mut to_client = actions(server.add_peer(1, Access::ReadWrite));
        to_server.extend(client.add(doc_id(), client_doc()));
        for _ in 0..100 {
            if to_client.is_empty() && to_server.is_empty() {
                return client.is_done();
            }
            if !to_client.is_empty() && (server_first || to_server.is_empty()) {
                let m = to_client.remove(0);
                to_server.extend(client.receive(arrive(&m)).unwrap());
            } else {
                let m = to_server.remove(0);
                to_client.extend(serve(server, &m));
            }
        }
        panic!("the exchange never went quiet");
    }

    fn client_doc() -> Automerge {
        let mut ours = doc_with("base").with_actor(automerge::ActorId::from([1u8; 16]));
        let mut tx = ours.transaction();
        tx.put(ROOT, "client", 2).unwrap();
        tx.commit();
        ours
    }

    #[test]
    fn done_once_the_heads_match_though_our_last_message_gets_no_answer() {
        // Both sides have a change the other lacks; messages go one at a time, in two
        // orders. When nothing is left to deliver, the client must be done: a client that
        // also waited for an answer to its last heads announcement stalled in the
        // full-size kill -9 test (`faults.rs`; these orders did not reproduce that one).
        let mut server_doc = doc_with("base").with_actor(automerge::ActorId::from([2u8; 16]));
        let mut tx = server_doc.transaction();
        tx.put(ROOT, "later", 3).unwrap();
        tx.commit();
        for server_first in [true, false] {
            let mut server = DocSession::new(server_doc.clone());
            let (mut client, join) = ClientSync::new("client");
            assert!(
                until_quiet(&mut client, join, &mut server, server_first),
                "stalled, not done (server first: {server_first})"
            );
            let doc = client.doc(&doc_id()).unwrap();
            assert_eq!(doc.get_heads().len(), 2);
            assert_eq!(doc.get_heads(), server.doc().get_heads());
        }
    }

    #[test]
    fn pushes_and_pulls_until_both_hold_the_same_heads() {
        let server = DocSession::new(doc_with("server"));
        let mut ours = server
            .doc()
            .clone()
            .with_actor(automerge::ActorId::random());
        let mut tx = ours.transaction();
        tx.put(ROOT, "client", 2).unwrap();
        tx.commit();
        let mut server_doc = server
            .doc()
            .clone()
            .with_actor(automerge::ActorId::random());
        let mut tx = server_doc.transaction();
        tx.put(ROOT, "later", 3).unwrap();
        tx.commit();
        let mut server = DocSession::new(server_doc);
        let (mut client, join) = ClientSync::new("client");
        client.add(doc_id(), ours);
        assert!(!client.is_done());
        run(&mut client, join, &mut server);
        let id = doc_id();
        let doc = client.doc(&id).unwrap();
        assert_eq!(doc.get_heads().len(), 2);
        assert!(doc.get(ROOT, "later").unwrap().is_some());
        assert!(server.doc().get(ROOT, "client").unwrap().is_some());
        assert_eq!(client.moved(&id), Moved { down: 1, up: 1 });
        assert_eq!(client.take_new_changes(&id).len(), 1);
        assert!(client.take_new_changes(&id).is_empty());
    }

    #[test]
    fn an_empty_document_is_requested_and_fetched() {
        let mut server = DocSession::new(doc_with("server"));
        let (mut client, join) = ClientSync::new("client");
        let first = client.add(doc_id(), Automerge::new());
        assert!(first.is_empty(), "nothing goes out before the handshake");
        run(&mut client, join, &mut server);
        let id = doc_id();
        assert_eq!(
            client.doc(&id).unwrap().get_heads(),
            server.doc().get_heads()
        );
        assert_eq!(client.moved(&id), Moved { down: 1, up: 0 });
    }

    #[test]
    fn doc_unavailable_and_errors_end_the_wait() {
        let (mut client, join) = ClientSync::new("client");
        let id = doc_id();
        client.add(id, Automerge::new());
        let mut handshake = Handshake::receiving("server", None);
        let Step::Established {
            reply: Some(peer), ..
        } = handshake.receive(&join)
        else {
            panic!()
        };
        let limits = Limits::default();
        let out = client
            .receive(inspect(&peer.encode(), &limits).unwrap())
            .unwrap();
        assert!(matches!(out.as_slice(), [Message::Request { .. }]));
        assert!(!client.is_done());
        let unavailable = Message::DocUnavailable {
            sender_id: "server".into(),
            target_id: "client".into(),
            document_id: id.to_string(),
        };
        client
            .receive(inspect(&unavailable.encode(), &limits).unwrap())
            .unwrap();
        assert!(client.is_done() && client.is_unavailable(&id));
        let error = Message::Error {
            message: "no".into(),
        };
        assert_eq!(
            client.receive(inspect(&error.encode(), &limits).unwrap()),
            Err(ClientError::Server("no".into()))
        );
        // The server met changes numbered like ones it holds of the same actor: said so,
        // with the document, for the device to move to a fresh actor.
        let actor = automerge::ActorId::random();
        let duplicate = automerge::AutomergeError::DuplicateSeqNumber(3, actor.clone());
        let error = Message::Error {
            message: crate::rejection::for_document(
                &id,
                &format!("invalid sync message: {duplicate}"),
            ),
        };
        assert_eq!(
            client.receive(inspect(&error.encode(), &limits).unwrap()),
            Err(ClientError::ActorReused {
                document: id,
                actor,
                seq: 3
            })
        );
    }
}
