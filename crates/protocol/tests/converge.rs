//! Property test: clients sync through a `DocSession` over a lossy network (messages
//! dropped, duplicated, reordered), disconnect and reconnect, while persists complete late
//! in batches that may be stored one behind another (pipelined), and the server crashes and
//! restarts from what it persisted.
//! After a healing phase (everyone reconnects with fresh sync state, no more loss) every
//! replica has the same heads and every write, within a bounded number of rounds. And at
//! no point does a client whose changes are not all persisted yet hear the server's heads
//! (which would acknowledge them), even when an earlier batch of its changes has landed;
//! other clients hear of them at once. Nor does a client hear heads covering a change it
//! wrote that is not persisted, however that change reached the server (another client
//! may deliver it, having had it relayed by a server that crashed before storing it).

use std::collections::VecDeque;

use automerge::sync::{Message as SyncMessage, State as SyncState, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ROOT, ReadDoc};
use nudge_protocol::{Access, Action, Batch, DocSession, PeerKey};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

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
    /// Every change asked for so far is persisted at once.
    Persist,
    /// The changes asked for since the last seal start to be stored, as one batch.
    Seal,
    /// The oldest batch being stored lands.
    Land,
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
        1 => Just(Op::Persist),
        2 => Just(Op::Seal),
        2 => Just(Op::Land),
        1 => c.clone().prop_map(Op::Disconnect),
        1 => c.prop_map(Op::Connect),
        1 => Just(Op::RestartServer),
    ]
}

struct World {
    session: DocSession,
    clients: Vec<Client>,
    /// Changes asked to be persisted since the last seal.
    open: Vec<ChangeHash>,
    /// Sealed batches being stored, oldest first.
    in_flight: VecDeque<(Batch, Vec<ChangeHash>)>,
    written: Vec<String>,
    /// Every change hash the server has persisted.
    durable: HashSet<ChangeHash>,
    /// The changes each client delivered that are not persisted yet: while any are left, it
    /// may hear nothing, since heads would acknowledge them (the others may hear of them
    /// at once).
    owed: HashMap<PeerKey, HashSet<ChangeHash>>,
    /// The changes each client wrote.
    wrote: HashMap<PeerKey, HashSet<ChangeHash>>,
}

impl World {
    fn persist_pending(&self) -> bool {
        !self.open.is_empty() || !self.in_flight.is_empty()
    }

    /// Carries out the session's actions; `from` is the client whose message they answer.
    fn apply_from(&mut self, from: Option<PeerKey>, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Persist(changes) => self.ask(from, changes.iter().map(|c| c.hash())),
                Action::PersistSnapshot { new, .. } => self.ask(from, new),
                Action::Send(key, bytes) => {
                    assert!(
                        self.owed.get(&key).is_none_or(HashSet::is_empty),
                        "heads sent to client {key} before its changes were persisted"
                    );
                    let message = SyncMessage::decode(&bytes).expect("a well-formed sync message");
                    self.check_heads(key, &message.heads);
                    let c = &mut self.clients[key as usize];
                    if c.connected {
                        c.inbox.push_back(bytes);
                    }
                }
                Action::Reject(key, why) => panic!("client {key} rejected: {why}"),
            }
        }
    }

    /// Heads sent to client `key` cover none of its own changes that are not persisted.
    fn check_heads(&self, key: PeerKey, heads: &[ChangeHash]) {
        let server = self.session.doc();
        let after: HashSet<ChangeHash> = server
            .get_changes_meta(heads)
            .into_iter()
            .map(|c| c.hash)
            .collect();
        for h in self.wrote.get(&key).into_iter().flatten() {
            let covered = server.get_change_meta_by_hash(h).is_some() && !after.contains(h);
            assert!(
                !covered || self.durable.contains(h),
                "heads sent to client {key} cover its change {h} before it was persisted"
            );
        }
    }

    /// The session asks for `hashes`, delivered by `from`, to be persisted.
    fn ask(&mut self, from: Option<PeerKey>, hashes: impl IntoIterator<Item = ChangeHash>) {
        let from = from.expect("a persist asked for outside a receive");
        let before = self.open.len();
        self.open.extend(hashes);
        assert!(self.open.len() > before, "a persist of nothing");
        self.owed
            .entry(from)
            .or_default()
            .extend(&self.open[before..]);
    }

    fn apply(&mut self, actions: Vec<Action>) {
        self.apply_from(None, actions);
    }

    /// Some changes are durable now.
    fn landed(&mut self, hashes: impl IntoIterator<Item = ChangeHash>) {
        self.durable.extend(hashes);
        for owed in self.owed.values_mut() {
            owed.retain(|h| !self.durable.contains(h));
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
            self.apply_from(Some(i as PeerKey), actions);
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
        // Persists in flight when it died never completed, so they acknowledged nothing.
        self.open.clear();
        self.in_flight.clear();
        self.owed.clear();
        for c in &mut self.clients {
            c.connected = false;
            c.inbox.clear();
        }
    }

    fn persist(&mut self) {
        if self.persist_pending() {
            let mut all = std::mem::take(&mut self.open);
            all.extend(self.in_flight.drain(..).flat_map(|(_, hashes)| hashes));
            self.landed(all);
            let actions = self.session.persisted();
            self.apply(actions);
        }
    }

    fn seal(&mut self) {
        if !self.open.is_empty() {
            let batch = self.session.seal();
            let hashes = std::mem::take(&mut self.open);
            self.in_flight.push_back((batch, hashes));
        }
    }

    fn land(&mut self) {
        if let Some((batch, hashes)) = self.in_flight.pop_front() {
            self.landed(hashes);
            let actions = self.session.persisted_through(batch);
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
        open: Vec::new(),
        in_flight: VecDeque::new(),
        written: Vec::new(),
        durable: Default::default(),
        owed: Default::default(),
        wrote: Default::default(),
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
                let (hash, _) = tx.commit();
                world.wrote.entry(i as PeerKey).or_default().extend(hash);
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
            Op::Seal => world.seal(),
            Op::Land => world.land(),
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
            busy |= before.shared_heads != world.clients[i].state.shared_heads
                || world.persist_pending();
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
                Op::Seal => Op::Seal,
                Op::Land => Op::Land,
                Op::RestartServer => Op::RestartServer,
            })
            .collect();
        run(n, ops);
    }
}
