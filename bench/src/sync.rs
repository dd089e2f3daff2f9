//! `nudge-bench sync`: the sync server measured through the real `nudge-server` binary on
//! loopback, each figure next to a baseline from the same run.
//!
//! - Latency of one change, device A -> server -> device B (two websocket clients in this
//!   process), spaced out and back to back; baseline: the same relay through in-memory
//!   Automerge sync states, with no network and no storage.
//! - A new device fetching a big journal with `nudge sync` (a process of the real `nudge`);
//!   baseline: an in-memory Automerge sync of the same document into an empty one.
//! - The server's resident memory idle and with 100 journals loaded.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use nudge_journal::automerge::sync::{State as SyncState, SyncDoc};
use nudge_journal::automerge::transaction::Transactable;
use nudge_journal::automerge::{Automerge, ChangeHash, ROOT};
use nudge_store::DocumentId;

use nudge_testkit::peer::{Peer, connect};
use nudge_testkit::{Launch, Server, percentile, rss_kib};

/// The server's `--unload-after` in this bench.
const UNLOAD_AFTER: Duration = Duration::from_secs(3);
/// How long a relay may go without a new change arriving before the server counts as
/// stuck (as long as a send may wait, `peer::STUCK`).
const STUCK: Duration = nudge_testkit::peer::STUCK;

fn start(data: &Path) -> Result<(Server, String)> {
    let token = nudge_testkit::add_account(data, "bench")?;
    let unload_after = UNLOAD_AFTER.as_secs().to_string();
    let level = std::env::var("RUST_LOG").ok();
    let server = Server::launch(Launch {
        // Idle documents leave memory after 3 s here (300 s by default), to measure it;
        // every simulated device comes from 127.0.0.1.
        extra: &[
            "--unload-after",
            &unload_after,
            "--max-connections-per-address",
            "0",
        ],
        // NUDGE_BENCH_SERVER_LOG=FILE keeps the server's log (with RUST_LOG set).
        stderr: match std::env::var_os("NUDGE_BENCH_SERVER_LOG") {
            Some(path) => Stdio::from(std::fs::File::create(path)?),
            None => Stdio::null(),
        },
        log: level.as_deref(),
        ..Launch::new(data)
    })?;
    Ok((server, token))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A -> server -> B for `n` changes, each a new shift, on a journal that already holds
/// `shifts` shifts (at least one), which A pushes and B fetches first; `gap` between
/// changes (None: back to back).
async fn relay(
    addr: &str,
    addr_b: &str,
    token: &str,
    n: usize,
    gap: Option<Duration>,
    shifts: usize,
) -> Result<Vec<Duration>> {
    let shifts = shifts.max(1);
    let id = DocumentId::random();
    let mut a = Peer::join(addr, token, format!("a-{id}"), id, shifts_doc(shifts)?).await?;
    a.settle().await.context("device A pushing the journal")?;
    let mut b = Peer::join(addr_b, token, format!("b-{id}"), id, Automerge::new()).await?;
    b.settle().await.context("device B fetching the journal")?;

    let sent: Arc<Mutex<HashMap<ChangeHash, Instant>>> = Arc::default();
    let writer = {
        let sent = sent.clone();
        tokio::spawn(async move {
            for i in 0..n {
                let hash = add_shift(&mut a.doc, shifts + i)?;
                sent.lock().expect("lock").insert(hash, Instant::now());
                // A new change goes out even while an earlier message is unanswered.
                a.state.in_flight = false;
                a.send_pending().await?;
                match gap {
                    Some(gap) => {
                        let until = Instant::now() + gap;
                        while Instant::now() < until {
                            a.step(until - Instant::now()).await?;
                        }
                    }
                    None => while a.step(Duration::ZERO).await? {},
                }
            }
            a.settle().await?;
            Ok::<_, anyhow::Error>(a)
        })
    };
    let mut latencies = Vec::with_capacity(n);
    let mut progress = Instant::now();
    while latencies.len() < n {
        if !b.step(Duration::from_secs(10)).await? {
            bail!("device B stopped hearing changes");
        }
        // A server may go on sending without ever delivering the rest (seen with the Node
        // server on a 10,000-shift journal taking changes back to back).
        if progress.elapsed() > STUCK {
            bail!(
                "device B got no new change for {} s ({} of {n} arrived)",
                STUCK.as_secs(),
                latencies.len()
            );
        }
        let before = latencies.len();
        // Arrived: in B's document. Only the changes not seen yet are looked at (usually
        // one), so the bookkeeping costs the same at the 1,000th change as at the first.
        let arrived = b.applied_at;
        sent.lock().expect("lock").retain(|hash, at| {
            let here = b.doc.get_change_meta_by_hash(hash).is_some();
            if here {
                latencies.push(arrived - *at);
            }
            !here
        });
        if latencies.len() > before {
            progress = Instant::now();
        }
    }
    writer.await??;
    latencies.sort();
    Ok(latencies)
}

/// `nudge-bench relay`: prints `p50_ms p99_ms` of the relay against the server at `addr`,
/// on a journal of `shifts` shifts.
/// `addr_b`: where device B syncs (another node on the same database), if not `addr`.
pub fn relay_report(
    addr: &str,
    n: usize,
    gap_ms: u64,
    shifts: usize,
    addr_b: Option<&str>,
) -> Result<()> {
    let token = std::env::var("NUDGE_TOKEN").unwrap_or_default();
    let runtime = client_runtime()?;
    let gap = (gap_ms > 0).then(|| Duration::from_millis(gap_ms));
    let latencies =
        runtime.block_on(relay(addr, addr_b.unwrap_or(addr), &token, n, gap, shifts))?;
    println!(
        "{:.3} {:.3}",
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0
    );
    Ok(())
}

/// A document of `shifts` changes, one small map each, like a journal's shifts.
fn shifts_doc(shifts: usize) -> Result<Automerge> {
    let mut doc = Automerge::new();
    for i in 0..shifts {
        add_shift(&mut doc, i)?;
    }
    Ok(doc)
}

/// Commits shift number `i` (a new small map, as a journal's shift) as one change.
fn add_shift(doc: &mut Automerge, i: usize) -> Result<ChangeHash> {
    let mut tx = doc.transaction();
    let shift = tx.put_object(
        ROOT,
        format!("shift{i}"),
        nudge_journal::automerge::ObjType::Map,
    )?;
    tx.put(
        &shift,
        "text",
        format!("Micro shift number {i}: email someone"),
    )?;
    tx.put(&shift, "status", "done")?;
    let (hash, _) = tx.commit();
    hash.context("a shift's change")
}

/// The baseline: an in-memory Automerge sync of `doc` into an empty document, timed.
fn sync_in_memory(doc: &Automerge) -> Result<Duration> {
    let started = Instant::now();
    let mut empty = Automerge::new();
    let (mut sa, mut sb) = (SyncState::new(), SyncState::new());
    let mut source = doc.clone();
    loop {
        let mut any = false;
        if let Some(m) = source.generate_sync_message(&mut sa) {
            empty.receive_sync_message(&mut sb, m)?;
            any = true;
        }
        if let Some(m) = empty.generate_sync_message(&mut sb) {
            source.receive_sync_message(&mut sa, m)?;
            any = true;
        }
        if !any {
            return Ok(started.elapsed());
        }
    }
}

/// `nudge-bench fetch ADDR SHIFTS`: pushes a document of SHIFTS changes to the server at
/// `addr`, then times a new client fetching it whole; prints `fetch_ms in_memory_ms`, the
/// second an in-memory Automerge sync of the same document into an empty one.
pub fn fetch_report(addr: &str, shifts: usize) -> Result<()> {
    let token = std::env::var("NUDGE_TOKEN").unwrap_or_default();
    let runtime = client_runtime()?;
    let doc = shifts_doc(shifts)?;
    let id = DocumentId::random();
    let fetched = runtime.block_on(async {
        let mut pusher = Peer::join(addr, &token, format!("pusher-{id}"), id, doc.clone()).await?;
        pusher.settle().await.context("pushing the document")?;
        let started = Instant::now();
        let mut fetcher =
            Peer::join(addr, &token, format!("fetcher-{id}"), id, Automerge::new()).await?;
        let mut want = doc.get_heads();
        want.sort();
        // Done when it holds the whole document (whether or not the server says more).
        fetcher.send_pending().await?;
        loop {
            let mut have = fetcher.doc.get_heads();
            have.sort();
            if have == want {
                break;
            }
            if !fetcher.step(Duration::from_secs(10)).await? {
                bail!("fetching the document: the server stopped answering");
            }
        }
        Ok::<_, anyhow::Error>(started.elapsed())
    })?;
    let in_memory = sync_in_memory(&doc)?;
    println!(
        "{:.1} {:.1}",
        fetched.as_secs_f64() * 1000.0,
        in_memory.as_secs_f64() * 1000.0
    );
    Ok(())
}

/// The same relay in memory: A -> S -> B through sync states, no network, no storage; the
/// three start in sync on a journal of `shifts` shifts.
fn relay_in_memory(n: usize, shifts: usize) -> Result<Vec<Duration>> {
    let mut a = shifts_doc(shifts)?;
    let mut s = a.clone();
    let mut b = a.clone();
    let (mut a_s, mut s_a, mut s_b, mut b_s) = (
        SyncState::new(),
        SyncState::new(),
        SyncState::new(),
        SyncState::new(),
    );
    let pump = |x: &mut Automerge,
                xs: &mut SyncState,
                y: &mut Automerge,
                ys: &mut SyncState|
     -> Result<bool> {
        let mut moved = false;
        for _ in 0..10 {
            let mut any = false;
            if let Some(m) = x.generate_sync_message(xs) {
                y.receive_sync_message(ys, m)?;
                any = true;
            }
            if let Some(m) = y.generate_sync_message(ys) {
                x.receive_sync_message(xs, m)?;
                any = true;
            }
            moved |= any;
            if !any {
                break;
            }
        }
        Ok(moved)
    };
    // The sync states learn that all three are in sync before the first change is timed.
    pump(&mut a, &mut a_s, &mut s, &mut s_a)?;
    pump(&mut s, &mut s_b, &mut b, &mut b_s)?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        add_shift(&mut a, shifts + i)?;
        pump(&mut a, &mut a_s, &mut s, &mut s_a)?;
        pump(&mut s, &mut s_b, &mut b, &mut b_s)?;
        out.push(started.elapsed());
    }
    out.sort();
    Ok(out)
}

/// Runs the sync benchmarks.
pub fn run(full: bool) -> Result<()> {
    let (changes, relay_shifts, fetch_shifts, journals, journal_shifts) = if full {
        (1_000, 10_000, 10_000, 100, 2_000)
    } else {
        (200, 1_000, 2_000, 100, 200)
    };
    let runtime = client_runtime()?;
    let data = tempfile::tempdir()?;
    let (server, token) = start(data.path())?;
    let idle = rss_kib(server.child.id())?;
    // Idle connections: joined, nothing open.
    let connections = 1_000;
    let _ = rlimit::increase_nofile_limit(connections as u64 * 2 + 256);
    let before_connections = rss_kib(server.child.id())?;
    let held = runtime.block_on(async {
        let mut held = Vec::with_capacity(connections);
        for c in 0..connections {
            held.push(connect(&server.addr, &token, &format!("idle-{c}")).await?);
        }
        Ok::<_, anyhow::Error>(held)
    })?;
    std::thread::sleep(Duration::from_millis(500));
    let with_connections = rss_kib(server.child.id())?;
    drop(held);

    println!(
        "## nudge-bench sync (NUDGE_TEST_SCALE={})",
        if full { "full" } else { "small" }
    );
    println!();
    println!(
        "### One change, device A -> server -> device B ({changes} changes on a {relay_shifts}-shift journal)"
    );
    println!();
    let memory = relay_in_memory(changes, relay_shifts)?;
    let spaced = runtime.block_on(relay(
        &server.addr,
        &server.addr,
        &token,
        changes,
        Some(Duration::from_millis(20)),
        relay_shifts,
    ))?;
    let burst = runtime.block_on(relay(
        &server.addr,
        &server.addr,
        &token,
        changes,
        None,
        relay_shifts,
    ))?;
    println!("| run | median | p99 | median / in-memory median |");
    println!("|---|---|---|---|");
    let base = percentile(&memory, 0.5);
    for (name, d) in [
        ("in memory (baseline)", &memory),
        ("spaced 20 ms", &spaced),
        ("back to back", &burst),
    ] {
        let median = percentile(d, 0.5);
        println!(
            "| {name} | {} | {} | {:.1}x |",
            ms(median),
            ms(percentile(d, 0.99)),
            median.as_secs_f64() / base.as_secs_f64()
        );
    }
    println!();

    // A new device fetching a big journal.
    println!("### A new device fetches a {fetch_shifts}-shift journal");
    println!();
    let first = tempfile::tempdir()?;
    let now = crate::bench_now()?;
    crate::build(first.path(), fetch_shifts, &now)?;
    let url = format!("http://{}", server.addr);
    crate::nudge(first.path(), &["remote", "add", &url], Some(&token))?;
    crate::nudge(first.path(), &["sync"], None)?;
    let mut fetches = Vec::new();
    for _ in 0..3 {
        let fresh = tempfile::tempdir()?;
        crate::nudge(fresh.path(), &["remote", "add", &url], Some(&token))?;
        let started = Instant::now();
        crate::nudge(fresh.path(), &["sync"], None)?;
        fetches.push(started.elapsed());
    }
    fetches.sort();
    let fetch = fetches[fetches.len() / 2];
    let session = nudge_replica::Replica::open(first.path(), now)?;
    let full_doc = session.load_journal()?.context("no journal")?.doc().clone();
    drop(session);
    let mut in_memory = Vec::new();
    for _ in 0..3 {
        in_memory.push(sync_in_memory(&full_doc)?);
    }
    in_memory.sort();
    let memory_fetch = in_memory[1];
    println!("| run | median of 3 | ratio |");
    println!("|---|---|---|");
    println!(
        "| in-memory Automerge sync into an empty document (baseline) | {} | 1.0x |",
        ms(memory_fetch)
    );
    println!(
        "| `nudge sync` on a new device (process, websocket, sled, cache rebuild) | {} | {:.1}x |",
        ms(fetch),
        fetch.as_secs_f64() / memory_fetch.as_secs_f64()
    );
    println!();

    // Memory with many journals loaded.
    let journal = shifts_doc(journal_shifts)?;
    runtime.block_on(async {
        for j in 0..journals {
            let id = DocumentId::random();
            let me = format!("loader-{j}");
            let mut peer = Peer::join(&server.addr, &token, me, id, journal.clone()).await?;
            peer.settle().await?;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    let loaded = rss_kib(server.child.id())?;
    // Nobody has them open now: after the unload time they leave memory.
    std::thread::sleep(UNLOAD_AFTER + Duration::from_secs(12));
    let unloaded = rss_kib(server.child.id())?;
    println!("### Server memory");
    println!();
    println!("| state | RSS |");
    println!("|---|---|");
    println!("| idle, just started | {:.1} MiB |", idle as f64 / 1024.0);
    println!(
        "| {journals} journals of {journal_shifts} changes loaded | {:.1} MiB ({:.2} MiB per journal) |",
        loaded as f64 / 1024.0,
        (loaded.saturating_sub(idle)) as f64 / 1024.0 / journals as f64
    );
    println!(
        "| the same journals {} s after their last connection closed (unloaded) | {:.1} MiB |",
        (UNLOAD_AFTER + Duration::from_secs(12)).as_secs(),
        unloaded as f64 / 1024.0
    );
    println!(
        "| {connections} idle connections (joined, nothing open) | +{:.1} MiB ({:.1} KiB per connection) |",
        with_connections.saturating_sub(before_connections) as f64 / 1024.0,
        with_connections.saturating_sub(before_connections) as f64 / connections as f64
    );
    println!();
    Ok(())
}

pub(crate) fn client_runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// `nudge-bench idle ADDR N SECS` (bench/compare.sh): opens N connections to the server at
/// `addr`, each joined as its own peer, prints `connected N` once all are open, holds them
/// for SECS and closes them.
pub fn idle_report(addr: &str, n: usize, secs: u64) -> Result<()> {
    let token = std::env::var("NUDGE_TOKEN").unwrap_or_default();
    client_runtime()?.block_on(async {
        let mut held = Vec::with_capacity(n);
        for i in 0..n {
            let (ws, _) = connect(addr, &token, &format!("idle-{}-{i}", std::process::id()))
                .await
                .with_context(|| format!("connection {i}"))?;
            held.push(ws);
        }
        println!("connected {n}");
        std::io::Write::flush(&mut std::io::stdout())?;
        tokio::time::sleep(Duration::from_secs(secs)).await;
        for mut ws in held {
            let _ = ws.close(None).await;
        }
        Ok(())
    })
}

/// `nudge-bench populate ADDR DOCS SHIFTS` (bench/compare.sh): pushes DOCS new documents of
/// SHIFTS changes each to the server at `addr`, eight at a time, each over its own
/// connection, and prints their ids, one a line, once the server reports every one whole.
pub fn populate_report(addr: &str, docs: usize, shifts: usize) -> Result<()> {
    let token = std::env::var("NUDGE_TOKEN").unwrap_or_default();
    let doc = shifts_doc(shifts)?;
    let ids = client_runtime()?.block_on(async {
        futures_util::stream::iter(0..docs)
            .map(|_| {
                let (doc, token) = (doc.fork(), token.clone());
                async move {
                    let id = DocumentId::random();
                    let me = format!("populate-{id}");
                    let mut pusher = Peer::join(addr, &token, me, id, doc).await?;
                    pusher.settle().await.context("pushing a document")?;
                    let _ = pusher.ws.close(None).await;
                    Ok::<_, anyhow::Error>(id)
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()
    })?;
    for id in ids {
        println!("{id}");
    }
    Ok(())
}

/// `nudge-bench get ADDR ID CHANGES` (bench/compare.sh): a new client fetches the stored
/// document ID, which has CHANGES changes, from the server at `addr`; prints the time from
/// connecting to holding all of it, in ms.
pub fn get_report(addr: &str, id: &str, changes: usize) -> Result<()> {
    let token = std::env::var("NUDGE_TOKEN").unwrap_or_default();
    let id: DocumentId = id.parse().map_err(|e| anyhow!("document id {id:?}: {e}"))?;
    let took = client_runtime()?.block_on(async {
        let started = Instant::now();
        let me = format!("get-{id}-{}", std::process::id());
        let mut fetcher = Peer::join(addr, &token, me, id, Automerge::new()).await?;
        fetcher.send_pending().await?;
        while fetcher.doc.get_changes(&[]).len() < changes {
            if !fetcher.step(Duration::from_secs(10)).await? {
                bail!("fetching {id}: the server stopped answering");
            }
        }
        Ok(started.elapsed())
    })?;
    println!("{:.1}", took.as_secs_f64() * 1000.0);
    Ok(())
}

/// `nudge-bench stall ADDR SHIFTS` (bench/compare.sh): whether work on one big document
/// holds up the others. Pushes a document of SHIFTS changes, then measures the relay of
/// 150 changes spaced 20 ms on a second document twice: alone, and while a writer sends
/// the big document 1,100 single changes back to back (enough to make our server compact
/// it once); the writer's time runs until the server holds all of them. Prints `alone_p99_ms alone_max_ms during_p99_ms during_max_ms writer_ms`.
pub fn stall_report(addr: &str, shifts: usize) -> Result<()> {
    let token = std::env::var("NUDGE_TOKEN").unwrap_or_default();
    let gap = Some(Duration::from_millis(20));
    let big = shifts_doc(shifts)?;
    let (alone, during, writer) = client_runtime()?.block_on(async {
        let id = DocumentId::random();
        let me = format!("big-{id}");
        let mut writer = Peer::join(addr, &token, me, id, big).await?;
        writer.settle().await.context("pushing the big document")?;
        let alone = relay(addr, addr, &token, 150, gap, 1).await?;
        let write = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let started = Instant::now();
            // Back to back, as a device catching up sends them: each goes out at once,
            // whatever has come back is taken in without waiting.
            for i in 0..1_100 {
                let mut tx = writer.doc.transaction();
                tx.put(ROOT, "n", i as i64)?;
                tx.commit();
                writer.state.in_flight = false;
                writer.send_pending().await?;
                while writer.step(Duration::ZERO).await? {}
            }
            writer
                .settle()
                .await
                .context("writing to the big document")?;
            Ok::<_, anyhow::Error>(started.elapsed())
        };
        let (during, written) = tokio::join!(relay(addr, addr, &token, 150, gap, 1), write);
        Ok::<_, anyhow::Error>((alone, during?, written?))
    })?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{:.3} {:.3} {:.3} {:.3} {:.0}",
        ms(percentile(&alone, 0.99)),
        ms(alone[alone.len() - 1]),
        ms(percentile(&during, 0.99)),
        ms(during[during.len() - 1]),
        ms(writer)
    );
    Ok(())
}
