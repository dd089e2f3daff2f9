//! `nudge-bench`: per-command wall time of the real `nudge` binary on big journals, against
//! a bare `automerge::Automerge::load` of the same document in the same run.
//!
//! Journals are built through the library (one change per shift, as a person would make
//! them), stored in a home exactly as the CLI stores them, then each command runs as a
//! process. Sizes come from `NUDGE_TEST_SCALE` (`small`: 2,000 and 10,000 shifts; `full`:
//! 2,000 and 100,000).
//!
//! ```text
//! cargo build --release --workspace --bins
//! NUDGE_TEST_SCALE=full target/release/nudge-bench
//! target/release/nudge-bench build DIR N   # only build a home with N shifts, to profile
//! NUDGE_TEST_SCALE=full target/release/nudge-bench sync   # the sync server (`sync.rs`)
//! NUDGE_TEST_SCALE=full target/release/nudge-bench flood  # syncs under floods (`flood.rs`)
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nudge_journal::automerge::Automerge;
use nudge_journal::{Contacts, Journal, Kind, NewShift, Now, TagRef};
use nudge_replica::Replica;
use nudge_store::DocumentId;

mod echo;
mod flood;
mod sync;

const IDEAS: &[&str] = &[
    "ux research",
    "teaching",
    "pottery",
    "data journalism",
    "nursing",
];

/// Builds a journal of `n` shifts over about a year: 1 in 100 planned, the rest done.
fn build(home: &Path, n: usize, now: &Now) -> Result<()> {
    let session = Replica::open(home, now.clone())?;
    let actor = session.device_actor()?;
    let contacts_id = DocumentId::random();
    let contacts = Contacts::create(actor.clone(), now);
    let mut journal = Journal::create(actor, now, "bench", &contacts_id.to_string());
    let mut idea_ids = Vec::new();
    for title in IDEAS {
        idea_ids.push(journal.add_idea(now, title, None)?);
    }
    let start = now.ts.as_millisecond() - 365 * 86_400_000;
    let step = (365 * 86_400_000) / n.max(1) as i64;
    for i in 0..n {
        let at =
            nudge_journal::when::to_timestamp(start + step * i as i64).to_zoned(now.tz.clone());
        journal.add_shift(
            now,
            NewShift {
                text: format!(
                    "Micro shift number {i}: email someone about {}",
                    IDEAS[i % IDEAS.len()]
                ),
                kind: Some(Kind::ALL[i % Kind::ALL.len()]),
                ideas: vec![TagRef::Existing(idea_ids[i % idea_ids.len()].clone())],
                done: (i % 100 != 0).then_some(at),
                ..NewShift::default()
            },
        )?;
    }
    session.install_journal(&journal, &contacts_id, &contacts)?;
    Ok(())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The clock every bench journal is built at.
fn bench_now() -> Result<Now> {
    Ok(Now::new(
        "2026-11-25T09:30:00Z".parse()?,
        jiff::tz::TimeZone::get("Europe/Berlin")?,
    ))
}

/// Runs `nudge` in `home` (with `token` as NUDGE_TOKEN if given); fails if it does.
fn nudge(home: &Path, args: &[&str], token: Option<&str>) -> Result<String> {
    let mut cmd = nudge_testkit::nudge_in(home, "2026-11-25T09:30:00Z", "Europe/Berlin")?;
    cmd.args(args);
    if let Some(token) = token {
        cmd.env("NUDGE_TOKEN", token);
    }
    let out = cmd.output()?;
    if !out.status.success() {
        bail!(
            "nudge {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn run(home: &Path, now: &str, args: &[&str]) -> Result<(Duration, String)> {
    let started = Instant::now();
    let out = nudge_testkit::nudge_in(home, now, "Europe/Berlin")?
        .args(args)
        .output()?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "nudge {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((took, String::from_utf8(out.stdout)?))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn bench(n: usize, runs: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let home = dir.path();
    let now_text = "2026-11-25T09:30:00Z";
    let now = Now::new(now_text.parse()?, jiff::tz::TimeZone::get("Europe/Berlin")?);
    let built = Instant::now();
    build(home, n, &now).context("building the journal")?;
    let build_time = built.elapsed();

    // The baseline: load the same stored document in this process.
    let session = Replica::open(home, now.clone())?;
    let journal = session.load_journal()?.context("no journal")?;
    let bytes = journal.doc().save();
    drop(journal);
    drop(session);
    let mut loads = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let doc = Automerge::load(&bytes)?;
        loads.push(started.elapsed());
        drop(doc);
    }
    let load = median(loads);

    // The first read after the journal arrived rebuilds the cache.
    let (rebuild, _) = run(home, now_text, &["list"])?;
    let mut rows: Vec<(&str, Duration)> = Vec::new();
    for (name, args) in [
        ("list", &["list"][..]),
        ("week", &["week"][..]),
        ("list --json", &["list", "--json"][..]),
    ] {
        let mut samples = Vec::new();
        for _ in 0..runs {
            samples.push(run(home, now_text, args)?.0);
        }
        rows.push((name, median(samples)));
    }
    let mut adds = Vec::new();
    let mut dones = Vec::new();
    for i in 0..runs {
        let (took, out) = run(
            home,
            now_text,
            &["add", &format!("Bench shift {i}"), "+teaching"],
        )?;
        adds.push(took);
        let id = out.lines().last().unwrap_or_default().to_owned();
        dones.push(run(home, now_text, &["done", &id])?.0);
    }
    rows.insert(0, ("done", median(dones)));
    rows.insert(0, ("add", median(adds)));

    println!("### {n} shifts");
    println!();
    println!(
        "built through the library in {:.1} s; stored document {} KiB; bare `Automerge::load` (median of {runs}): {}",
        build_time.as_secs_f64(),
        bytes.len() / 1024,
        ms(load)
    );
    println!(
        "first read after the journal arrived (cache rebuild): {} = {:.2}x load",
        ms(rebuild),
        rebuild.as_secs_f64() / load.as_secs_f64()
    );
    println!();
    println!("| command | median of {runs} | ratio to bare load |");
    println!("|---|---|---|");
    for (name, took) in rows {
        println!(
            "| `{name}` | {} | {:.2}x |",
            ms(took),
            took.as_secs_f64() / load.as_secs_f64()
        );
    }
    println!();
    Ok(())
}

fn main() -> Result<()> {
    // `nudge-bench build DIR N`: only build a journal of N shifts in DIR, for profiling.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("build") {
        let (Some(dir), Some(n)) = (args.get(2), args.get(3).and_then(|n| n.parse().ok())) else {
            bail!("usage: nudge-bench build DIR N");
        };
        let now = Now::new(
            "2026-11-25T09:30:00Z".parse()?,
            jiff::tz::TimeZone::get("Europe/Berlin")?,
        );
        return build(Path::new(dir), n, &now);
    }
    let full = std::env::var("NUDGE_TEST_SCALE").as_deref() == Ok("full");
    if args.get(1).map(String::as_str) == Some("sync") {
        return sync::run(full);
    }
    if args.get(1).map(String::as_str) == Some("flood") {
        return flood::run(full);
    }
    // `nudge-bench relay ADDR CHANGES GAP_MS [SHIFTS [ADDR_B]]`: the relay against any
    // server speaking the automerge-repo protocol (bench/compare.sh), on a journal of
    // SHIFTS shifts (1 if left out); token from NUDGE_TOKEN, if it needs one. With ADDR_B,
    // device B syncs there: another node on the same database (bench/nodes.sh).
    if args.get(1).map(String::as_str) == Some("relay") {
        let shifts = match args.get(5) {
            None => Some(1),
            Some(s) => s.parse().ok(),
        };
        let (Some(addr), Some(n), Some(gap), Some(shifts)) = (
            args.get(2),
            args.get(3).and_then(|n| n.parse().ok()),
            args.get(4).and_then(|g| g.parse::<u64>().ok()),
            shifts,
        ) else {
            bail!(
                "usage: nudge-bench relay ADDR CHANGES GAP_MS [SHIFTS [ADDR_B]] (GAP_MS 0: back to back)"
            );
        };
        return sync::relay_report(addr, n, gap, shifts, args.get(6).map(String::as_str));
    }
    // `nudge-bench fetch ADDR SHIFTS`: a new client fetching a document of SHIFTS changes.
    if args.get(1).map(String::as_str) == Some("fetch") {
        let (Some(addr), Some(n)) = (args.get(2), args.get(3).and_then(|n| n.parse().ok())) else {
            bail!("usage: nudge-bench fetch ADDR SHIFTS");
        };
        return sync::fetch_report(addr, n);
    }
    // `nudge-bench idle ADDR N SECS`, `populate ADDR DOCS SHIFTS`, `get ADDR ID CHANGES`,
    // `stall ADDR SHIFTS`: connection memory, stored journals, a cold start, and whether a
    // big document's compaction holds up others, for bench/compare.sh; `echo ADDR N`: round
    // trips through an echoing server, for bench/http-stack.sh.
    let arg = |i: usize| args.get(i).map(String::as_str);
    let num = |i: usize| args.get(i).and_then(|n| n.parse::<usize>().ok());
    match (arg(1), arg(2), num(3), num(4)) {
        (Some("idle"), Some(addr), Some(n), Some(secs)) => {
            return sync::idle_report(addr, n, secs as u64);
        }
        (Some("populate"), Some(addr), Some(docs), Some(shifts)) => {
            return sync::populate_report(addr, docs, shifts);
        }
        (Some("get"), Some(addr), _, Some(changes)) => {
            return sync::get_report(addr, &args[3], changes);
        }
        (Some("stall"), Some(addr), Some(shifts), _) => {
            return sync::stall_report(addr, shifts);
        }
        (Some("echo"), Some(addr), Some(n), _) => {
            return echo::echo_report(addr, n);
        }
        (Some(cmd @ ("idle" | "populate" | "get" | "stall" | "echo")), ..) => {
            bail!(
                "usage: nudge-bench idle ADDR N SECS | populate ADDR DOCS SHIFTS | get ADDR ID CHANGES | stall ADDR SHIFTS | echo ADDR N (got {cmd} with {:?})",
                &args[2..]
            );
        }
        _ => {}
    }
    let (sizes, runs) = if full {
        (vec![2_000, 100_000], 11)
    } else {
        (vec![2_000, 10_000], 5)
    };
    println!(
        "## nudge-bench (NUDGE_TEST_SCALE={})",
        if full { "full" } else { "small" }
    );
    println!();
    for n in sizes {
        bench(n, runs)?;
    }
    Ok(())
}
