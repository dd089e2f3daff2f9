//! `cargo bench -p nudge-protocol --bench receive`: receiving one sync message on a journal
//! of 1,000 and 10,000 shifts (and 100,000 with `NUDGE_TEST_SCALE=full`), automerge's own
//! `receive_sync_message` beside ours (`nudge_protocol::receive_sync_message`) in the same
//! run: a message carrying one new change, and the same heads again without it (what an
//! acknowledgement looks like). Each side keeps its own device and server document, as a
//! server does, and only the receive is timed. docs/PERFORMANCE.md has the figures.

use std::time::{Duration, Instant};

use automerge::sync::{Message, State, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{Automerge, AutomergeError, ObjType, ROOT};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

type Receive = fn(&mut Automerge, &mut State, Message) -> Result<(), AutomergeError>;

fn automerge_receive(
    doc: &mut Automerge,
    state: &mut State,
    m: Message,
) -> Result<(), AutomergeError> {
    doc.receive_sync_message(state, m)
}

/// Steps before a pair starts again from its fresh copy.
const STEPS: u64 = 32;

/// A device and the server it syncs with, in sync over a journal-like document.
#[derive(Clone)]
struct Pair {
    device: Automerge,
    device_state: State,
    server: Automerge,
    server_state: State,
    next: u64,
}

impl Pair {
    fn new(shifts: usize) -> Self {
        let mut doc = Automerge::new();
        for i in 0..shifts {
            let mut tx = doc.transaction();
            let shift = tx
                .put_object(ROOT, format!("shift{i}"), ObjType::Map)
                .expect("put");
            tx.put(
                &shift,
                "text",
                format!("Micro shift number {i}: email someone"),
            )
            .expect("put");
            tx.commit();
        }
        let mut pair = Self {
            device: doc.fork(),
            device_state: State::new(),
            server: doc,
            server_state: State::new(),
            next: 0,
        };
        pair.settle();
        pair
    }

    fn settle(&mut self) {
        loop {
            let mut quiet = true;
            if let Some(m) = self.device.generate_sync_message(&mut self.device_state) {
                self.server
                    .receive_sync_message(&mut self.server_state, m)
                    .expect("server");
                quiet = false;
            }
            if let Some(m) = self.server.generate_sync_message(&mut self.server_state) {
                self.device
                    .receive_sync_message(&mut self.device_state, m)
                    .expect("device");
                quiet = false;
            }
            if quiet {
                break;
            }
        }
    }

    /// The device adds a shift and syncs it to the server through `receive`; the time of
    /// the server's receive of the message with the change, or (with `heads_only`) of the
    /// same message again without it.
    fn step(&mut self, receive: Receive, heads_only: bool) -> Duration {
        self.next += 1;
        let mut tx = self.device.transaction();
        tx.put(ROOT, format!("new{}", self.next), self.next as i64)
            .expect("put");
        tx.commit();
        let m = self
            .device
            .generate_sync_message(&mut self.device_state)
            .expect("a message with the change");
        let mut again = m.clone();
        again.changes = Vec::<Vec<u8>>::new().into();
        let started = Instant::now();
        receive(&mut self.server, &mut self.server_state, m).expect("receive");
        let mut took = started.elapsed();
        if heads_only {
            let started = Instant::now();
            receive(&mut self.server, &mut self.server_state, again).expect("receive");
            took = started.elapsed();
        }
        // The server answers and the device hears it, untimed, as in a real exchange.
        if let Some(back) = self.server.generate_sync_message(&mut self.server_state) {
            self.device
                .receive_sync_message(&mut self.device_state, back)
                .expect("device");
        }
        took
    }
}

fn sizes() -> Vec<usize> {
    let mut sizes = vec![1_000, 10_000];
    if std::env::var("NUDGE_TEST_SCALE").as_deref() == Ok("full") {
        sizes.push(100_000);
    }
    sizes
}

fn receive(c: &mut Criterion) {
    let nudge: Receive = nudge_protocol::receive_sync_message;
    let automerge: Receive = automerge_receive;
    for (group, heads_only) in [
        ("receive a message with one change", false),
        ("receive the same heads without the change", true),
    ] {
        let mut g = c.benchmark_group(group);
        for &n in &sizes() {
            let fresh = Pair::new(n);
            for (name, f) in [("automerge", automerge), ("nudge", nudge)] {
                let mut pair = fresh.clone();
                g.bench_function(BenchmarkId::new(name, n), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            // A few dozen shifts on, start again from the same journal
                            // (untimed), so that every sample sees the same size.
                            if pair.next >= STEPS {
                                pair = fresh.clone();
                            }
                            total += pair.step(f, heads_only);
                        }
                        total
                    })
                });
            }
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    targets = receive
}
criterion_main!(benches);
