//! Property test: `nudge_protocol::receive_sync_message` leaves the document and the sync
//! state exactly as automerge's own `receive_sync_message` does, message for message, while
//! three peers write, generate, deliver, lose and reorder messages, reconnect with fresh
//! state, mark states read-only and send sync resets.

use std::collections::VecDeque;

use automerge::sync::{Message as SyncMessage, MessageFlags, State as SyncState, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc};
use proptest::prelude::*;

const PEERS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Write(usize),
    /// Peer `.0` generates a message for peer `.1` (if it has one to send).
    Generate(usize, usize),
    /// The oldest (or newest) message from `.0` to `.1` arrives, or is lost.
    Deliver {
        from: usize,
        to: usize,
        newest: bool,
        lose: bool,
    },
    /// The pair reconnects: fresh sync states, nothing in transit.
    Reconnect(usize, usize),
    /// Peer `.1` stops applying what `.0` sends (its state for `.0` turns read-only).
    ReadOnly(usize, usize),
    /// The next message from `.0` to `.1` carries the sync-reset flag.
    Reset(usize, usize),
}

fn pair() -> impl Strategy<Value = (usize, usize)> {
    (0..PEERS, 1..PEERS).prop_map(|(a, d)| (a, (a + d) % PEERS))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..PEERS).prop_map(Op::Write),
        5 => pair().prop_map(|(a, b)| Op::Generate(a, b)),
        5 => (pair(), prop::bool::weighted(0.2), prop::bool::weighted(0.15))
            .prop_map(|((from, to), newest, lose)| Op::Deliver { from, to, newest, lose }),
        1 => pair().prop_map(|(a, b)| Op::Reconnect(a, b)),
        1 => pair().prop_map(|(a, b)| Op::ReadOnly(a, b)),
        1 => pair().prop_map(|(a, b)| Op::Reset(a, b)),
    ]
}

struct World {
    docs: Vec<Automerge>,
    /// `states[a][b]`: peer a's sync state for peer b.
    states: Vec<Vec<SyncState>>,
    /// `wire[a][b]`: encoded messages from a to b.
    wire: Vec<Vec<VecDeque<Vec<u8>>>>,
    reset_next: Vec<Vec<bool>>,
    writes: i64,
}

impl World {
    fn new() -> Self {
        Self {
            docs: (0..PEERS).map(|_| Automerge::new()).collect(),
            states: (0..PEERS)
                .map(|_| (0..PEERS).map(|_| SyncState::new()).collect())
                .collect(),
            wire: (0..PEERS)
                .map(|_| (0..PEERS).map(|_| VecDeque::new()).collect())
                .collect(),
            reset_next: vec![vec![false; PEERS]; PEERS],
            writes: 0,
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Write(p) => {
                self.writes += 1;
                let mut tx = self.docs[p].transaction();
                tx.put(ROOT, format!("k{}", self.writes % 5), self.writes)
                    .expect("put");
                tx.commit();
            }
            Op::Generate(a, b) => {
                let (docs, states) = (&mut self.docs, &mut self.states);
                if let Some(mut m) = docs[a].generate_sync_message(&mut states[a][b]) {
                    if std::mem::take(&mut self.reset_next[a][b]) {
                        let mut flags = m.flags.unwrap_or_default();
                        flags.set(MessageFlags::SYNC_RESET);
                        m.flags = Some(flags);
                    }
                    self.wire[a][b].push_back(m.encode());
                }
            }
            Op::Deliver {
                from,
                to,
                newest,
                lose,
            } => {
                let queue = &mut self.wire[from][to];
                let Some(bytes) = (if newest {
                    queue.pop_back()
                } else {
                    queue.pop_front()
                }) else {
                    return Ok(());
                };
                if lose {
                    return Ok(());
                }
                let message = SyncMessage::decode(&bytes).expect("decode");
                // Automerge's own receive, on copies.
                let mut their_doc = self.docs[to].clone();
                let mut their_state = self.states[to][from].clone();
                let theirs = their_doc.receive_sync_message(&mut their_state, message.clone());
                // Ours, on the real thing.
                let ours = nudge_protocol::receive_sync_message(
                    &mut self.docs[to],
                    &mut self.states[to][from],
                    message,
                );
                prop_assert_eq!(ours.is_ok(), theirs.is_ok());
                prop_assert_eq!(self.docs[to].get_heads(), their_doc.get_heads());
                prop_assert_eq!(
                    self.docs[to].get_missing_deps(&[]),
                    their_doc.get_missing_deps(&[])
                );
                prop_assert_eq!(&self.states[to][from], &their_state);
            }
            Op::Reconnect(a, b) => {
                self.states[a][b] = SyncState::new();
                self.states[b][a] = SyncState::new();
                self.wire[a][b].clear();
                self.wire[b][a].clear();
            }
            Op::ReadOnly(a, b) => self.states[b][a].read_only = true,
            Op::Reset(a, b) => self.reset_next[a][b] = true,
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        if std::env::var("NUDGE_TEST_SCALE").as_deref() == Ok("full") { 30_000 } else { 3_000 }
    ))]

    #[test]
    fn the_same_state_as_automerges_own_receive(ops in prop::collection::vec(op(), 1..120)) {
        let mut world = World::new();
        for op in &ops {
            world.apply(op)?;
        }
    }
}

/// Messages that carry no changes and heads of a long history, the case the walk made
/// costly, still leave the state as automerge's would, including the trim of what was sent.
#[test]
fn trims_what_was_sent_once_the_peer_has_it() {
    let mut a = Automerge::new();
    for i in 0..200 {
        let mut tx = a.transaction();
        tx.put(ROOT, "n", i).expect("put");
        tx.commit();
    }
    let mut b = Automerge::new();
    let (mut sa, mut sb) = (SyncState::new(), SyncState::new());
    let mut checked = 0;
    for _ in 0..20 {
        let mut quiet = true;
        if let Some(m) = a.generate_sync_message(&mut sa) {
            nudge_protocol::receive_sync_message(&mut b, &mut sb, m).expect("b receives");
            quiet = false;
        }
        if let Some(m) = b.generate_sync_message(&mut sb) {
            let (mut doc, mut state) = (a.clone(), sa.clone());
            doc.receive_sync_message(&mut state, m.clone())
                .expect("automerge");
            nudge_protocol::receive_sync_message(&mut a, &mut sa, m).expect("a receives");
            assert_eq!(sa, state);
            checked += 1;
            quiet = false;
        }
        if quiet {
            break;
        }
    }
    assert!(checked >= 2, "only {checked} answers checked");
    assert_eq!(a.get_heads(), b.get_heads());
    assert!(sa.sent_hashes.is_empty(), "b has everything a sent");
}
