//! Property test: clients sync through a `DocSession` over a lossy network (messages
//! dropped, duplicated, reordered), disconnect and reconnect, while persists complete late
//! and the server crashes and restarts from what it persisted.
//! After a healing phase (everyone reconnects with fresh sync state, no more loss) every
//! replica has the same heads and every write, within a bounded number of rounds. And at
//! no point does a client whose changes are not persisted yet hear the server's heads
//! (which would acknowledge them); other clients hear of them at once.

use std::collections::VecDeque;

use automerge::sync::{Message as SyncMessage, State as SyncState, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use nudge_protocol::{Access, Action, DocSession, PeerKey};
use proptest::prelude::*;

struct Client {
    doc: Automerge,
    state: SyncState,
    connected: bool,
    /// Messages from the server on their way to this client.
    inbox: VecDeque<Vec<u8>>,
}

#[derive(Clone, Debug)]
enum Op {
    Write(usize),
    Send {
        client: usize,
        drop: bool,
        duplicate: bool,
    },
    Deliver {
        client: usize,
        drop: bool,
        newest_first: bool,
    },
    Persist,
    Disconnect(usize),
    Connect(usize),
    /// The server crashes and restarts from what it persisted; every connection drops.
    RestartServer,
}

fn op(clients: usize) -> impl Strategy<Value = Op> {
    let c = 0..clients;
    prop_oneof![
        3 => c.clone().prop_map(Op::Write),
        5 => (c.clone(), prop::bool::weighted(0.2), prop::bool::weighted(0.1))
            .prop_map(|(client, drop, duplicate)| Op::Send { client, drop, duplicate }),
        5 => (c.clone(), prop::bool::weighted(0.2), prop::bool::weighted(0.2))
            .prop_map(|(client, drop, newest_first)| Op::Deliver { client, drop, newest_first }),
        3 => Just(Op::Persist),
        1 => c.clone().prop_map(Op::Disconnect),
        1 => c.prop_map(Op::Connect),
        1 => Just(Op::RestartServer),
    ]
}

struct World {
    session: DocSession,
    clients: Vec<Client>,
    /// Whether the session is waiting for a persist to complete.
    persist_pending: bool,
    written: Vec<String>,
    /// Every change hash the server has persisted.
    durable: std::collections::HashSet<automerge::ChangeHash>,
    /// Clients whose delivered changes are not persisted yet: they may hear nothing, since
    /// heads would acknowledge those changes (the others may hear of them at once).
    unacknowledged: std::collections::HashSet<PeerKey>,
}

impl World {
    fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Persist(changes) => {
                    assert!(!changes.is_empty());
                    self.persist_pending = true;
                }
                Action::PersistSnapshot { new, .. } => {
                    assert!(!new.is_empty());
                    self.persist_pending = true;
                }
                Action::Send(key, bytes) => {
                    assert!(
                        !self.unacknowledged.contains(&key),
                        "heads sent to client {key} before its changes were persisted"
                    );
                    SyncMessage::decode(&bytes).expect("a well-formed sync message");
                    let c = &mut self.clients[key as usize];
                    if c.connected {
                        c.inbox.push_back(bytes);
                    }
                }
                Action::Reject(key, why) => panic!("client {key} rejected: {why}"),
            }
        }
    }

    fn connect(&mut self, i: usize) {
        let c = &mut self.clients[i];
        c.connected = true;
        // A new connection always starts from a fresh sync state on both sides.
        c.state = SyncState::new();
        c.inbox.clear();
        let actions = self.session.add_peer(i as PeerKey, Access::ReadWrite);
        self.apply(actions);
    }

    fn disconnect(&mut self, i: usize) {
        self.clients[i].connected = false;
        self.clients[i].inbox.clear();
        self.session.remove_peer(i as PeerKey);
    }

    fn send(&mut self, i: usize, drop: bool, duplicate: bool) {
        let c = &mut self.clients[i];
        if !c.connected {
            return;
        }
        let Some(m) = c.doc.generate_sync_message(&mut c.state) else {
            return;
        };
        if drop {
            return;
        }
        let bytes = m.encode();
        for _ in 0..if duplicate { 2 } else { 1 } {
            let actions = self
                .session
                .receive(i as PeerKey, SyncMessage::decode(&bytes).unwrap());
            if actions
                .iter()
                .any(|a| matches!(a, Action::Persist(_) | Action::PersistSnapshot { .. }))
            {
                self.unacknowledged.insert(i as PeerKey);
            }
            self.apply(actions);
            // As the server does after a batch: the others hear of the changes at once.
            let relayed = self.session.relay();
            self.apply(relayed);
        }
    }

    fn deliver(&mut self, i: usize, drop: bool, newest_first: bool) {
        let c = &mut self.clients[i];
        let next = if newest_first {
            c.inbox.pop_back()
        } else {
            c.inbox.pop_front()
        };
        let Some(bytes) = next else { return };
        if drop {
            return;
        }
        c.doc
            .receive_sync_message(&mut c.state, SyncMessage::decode(&bytes).unwrap())
            .unwrap();
    }

    fn restart(&mut self) {
        let mut reloaded = Automerge::new();
        let kept: Vec<automerge::Change> = self
            .session
            .doc()
            .get_changes(&[])
            .into_iter()
            .filter(|c| self.durable.contains(&c.hash()))
            .collect();
        reloaded.apply_changes(kept).unwrap();
        self.session = DocSession::new(reloaded);
        // A persist in flight when it died never completed, so it acknowledged nothing.
        self.persist_pending = false;
        self.unacknowledged.clear();
        for c in &mut self.clients {
            c.connected = false;
            c.inbox.clear();
        }
    }

    fn persist(&mut self) {
        if self.persist_pending {
            self.persist_pending = false;
            self.durable
                .extend(self.session.doc().get_changes(&[]).iter().map(|c| c.hash()));
            self.unacknowledged.clear();
            let actions = self.session.persisted();
            self.apply(actions);
        }
    }
}

fn run(n: usize, ops: Vec<Op>) {
    let mut world = World {
        session: DocSession::new(Automerge::new()),
        clients: (0..n)
            .map(|_| Client {
                doc: Automerge::new(),
                state: SyncState::new(),
                connected: false,
                inbox: VecDeque::new(),
            })
            .collect(),
        persist_pending: false,
        written: Vec::new(),
        durable: Default::default(),
        unacknowledged: Default::default(),
    };
    for i in 0..n {
        world.connect(i);
    }
    for op in ops {
        match op {
            Op::Write(i) => {
                let key = format!("k{}", world.written.len());
                let mut tx = world.clients[i].doc.transaction();
                tx.put(ROOT, key.as_str(), i as i64).unwrap();
                tx.commit();
                world.written.push(key);
            }
            Op::Send {
                client,
                drop,
                duplicate,
            } => world.send(client, drop, duplicate),
            Op::Deliver {
                client,
                drop,
                newest_first,
            } => world.deliver(client, drop, newest_first),
            Op::Persist => world.persist(),
            Op::Disconnect(i) => world.disconnect(i),
            Op::RestartServer => world.restart(),
            Op::Connect(i) => {
                if !world.clients[i].connected {
                    world.connect(i);
                }
            }
        }
    }
    // Heal: reconnect everyone afresh, no loss, persists complete at once.
    world.persist();
    for i in 0..n {
        world.disconnect(i);
        world.connect(i);
    }
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 60, "no convergence within 60 rounds");
        let mut busy = false;
        for i in 0..n {
            while !world.clients[i].inbox.is_empty() {
                world.deliver(i, false, false);
                busy = true;
            }
            let before = world.clients[i].state.clone();
            world.send(i, false, false);
            busy |=
                before.shared_heads != world.clients[i].state.shared_heads || world.persist_pending;
            world.persist();
        }
        let heads = world.session.doc().get_heads();
        let done = world
            .clients
            .iter()
            .all(|c| c.doc.get_heads() == heads && c.inbox.is_empty());
        if done && !busy {
            break;
        }
    }
    for c in &world.clients {
        for key in &world.written {
            assert!(
                c.doc.get(ROOT, key.as_str()).unwrap().is_some(),
                "{key} missing on a client"
            );
        }
    }
    for key in &world.written {
        assert!(
            world
                .session
                .doc()
                .get(ROOT, key.as_str())
                .unwrap()
                .is_some(),
            "{key} missing on the server"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_through_a_lossy_network(n in 3usize..6, ops in proptest::collection::vec(op(5), 1..100)) {
        let ops = ops
            .into_iter()
            .map(|o| match o {
                Op::Write(i) => Op::Write(i % n),
                Op::Send { client, drop, duplicate } => Op::Send { client: client % n, drop, duplicate },
                Op::Deliver { client, drop, newest_first } => Op::Deliver { client: client % n, drop, newest_first },
                Op::Disconnect(i) => Op::Disconnect(i % n),
                Op::Connect(i) => Op::Connect(i % n),
                Op::Persist => Op::Persist,
                Op::RestartServer => Op::RestartServer,
            })
            .collect();
        run(n, ops);
    }
}
