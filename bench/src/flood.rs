//! `nudge-bench flood`: one honest device's `nudge sync` (a process start, an HTTP request
//! and a websocket sync, each after a new shift) against a release `nudge-server` with
//! its default limits, quiet and under the connection floods of the hardening issue
//! (`nudge_testkit::flood`). Quiet and flooded batches alternate, so that whatever drifts
//! during the run (caches, the store's size) weighs on both sides alike; the figure is
//! flooded p99 over quiet p99, and the server's CPU time per phase shows what turning the
//! attackers away costs it.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nudge_testkit::flood::Flood;
use nudge_testkit::{Server, percentile};

use crate::ms;

/// What one phase took: each sync's wall time, and the server's CPU seconds meanwhile.
#[derive(Default)]
struct Phase {
    syncs: Vec<Duration>,
    server_cpu: f64,
    wall: Duration,
}

/// A process's user and system CPU time so far, in seconds (`/proc/PID/stat` counts in
/// the kernel's USER_HZ, 100 on Linux).
fn cpu_seconds(child: &Child) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id()))?;
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no process name in /proc/PID/stat")?;
    // After the name: state is field 3; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        Ok(fields
            .get(i - 3)
            .context("/proc/PID/stat is short")?
            .parse::<f64>()?)
    };
    Ok((ticks(14)? + ticks(15)?) / 100.0)
}

fn timed_syncs(
    home: &Path,
    server: &Server,
    n: usize,
    label: &str,
    into: &mut Phase,
) -> Result<()> {
    let cpu = cpu_seconds(&server.child)?;
    let started = Instant::now();
    for i in 0..n {
        crate::nudge(home, &["add", &format!("{label} {i}")], None)?;
        let began = Instant::now();
        crate::nudge(home, &["sync"], None)?;
        into.syncs.push(began.elapsed());
    }
    into.wall += started.elapsed();
    into.server_cpu += cpu_seconds(&server.child)? - cpu;
    Ok(())
}

pub fn run(full: bool) -> Result<()> {
    let (rounds, per_round) = if full { (5, 60) } else { (3, 20) };
    let data = tempfile::tempdir()?;
    let token = nudge_testkit::add_account(data.path(), "bench")?;
    let server = Server::start(data.path());
    let home = tempfile::tempdir()?;
    let url = format!("http://{}", server.addr);
    crate::nudge(home.path(), &["remote", "add", &url], Some(&token))?;
    crate::nudge(home.path(), &["add", "Email Sam"], None)?;
    let invited = crate::nudge(home.path(), &["buddy", "invite", "Jo"], None)?;
    let share = invited
        .lines()
        .last()
        .and_then(|link| link.rsplit("/view/").next())
        .context("buddy invite printed no link")?
        .to_owned();
    crate::nudge(home.path(), &["sync"], None)?;

    let (mut quiet, mut flooded) = (Phase::default(), Phase::default());
    // Attacker connections in all, and while the flooded syncs ran.
    let (mut tried, mut during) = (0, 0);
    for round in 0..rounds {
        timed_syncs(
            home.path(),
            &server,
            per_round,
            &format!("Quiet {round}"),
            &mut quiet,
        )?;
        let flood = Flood::start(&server.addr, &share)?;
        let before = flood.attempts();
        let result = timed_syncs(
            home.path(),
            &server,
            per_round,
            &format!("Flooded {round}"),
            &mut flooded,
        );
        during += flood.attempts() - before;
        tried += flood.stop();
        result?;
    }

    println!(
        "## nudge-bench flood (NUDGE_TEST_SCALE={}): {rounds} rounds of {per_round} quiet and {per_round} flooded syncs",
        if full { "full" } else { "small" }
    );
    println!();
    println!("| | p50 | p90 | p99 | server CPU (share of one core) |");
    println!("|---|---|---|---|---|");
    for (name, phase) in [("quiet", &quiet), ("flooded", &flooded)] {
        println!(
            "| {name} | {} | {} | {} | {:.0}% |",
            ms(percentile(&phase.syncs, 0.5)),
            ms(percentile(&phase.syncs, 0.9)),
            ms(percentile(&phase.syncs, 0.99)),
            100.0 * phase.server_cpu / phase.wall.as_secs_f64().max(1e-9)
        );
    }
    println!();
    let ratio = |p: f64| {
        percentile(&flooded.syncs, p).as_secs_f64() / percentile(&quiet.syncs, p).as_secs_f64()
    };
    println!(
        "flooded / quiet: p50 {:.2}x, p99 {:.2}x (target p99 within 2x); {tried} attacker connections tried, {:.0} a second while the flooded syncs ran",
        ratio(0.5),
        ratio(0.99),
        during as f64 / flooded.wall.as_secs_f64().max(1e-9)
    );
    Ok(())
}
