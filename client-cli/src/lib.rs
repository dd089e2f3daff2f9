//! The `nudge` CLI: a journal of micro shifts, fully offline, on one device.
//!
//! - `cli.rs`: the clap grammar's root (a contract: scripts rely on it); `commands/`: one
//!   file per command, its arguments beside its `run`.
//! - the device's store, the journal in it and the derived-state cache are
//!   `nudge_replica::Replica` (crates/replica).
//! - `shifts.rs`: what the shift commands share; `ui.rs`: the week chart and other
//!   drawings more than one command shows.
//! - `resolve.rs`: ids, prefixes and `+idea` / `@person` names to records.
//! - `output.rs`: colour, relative times, JSON shapes.
//!
//! - `remote.rs`, `sync.rs`: the sync server's address and token; `nudge sync`.
//!
//! Exit codes: 0 success, 1 an error the user can fix (one line on stderr that says how),
//! 2 bad usage, 3 the server cannot be reached, 4 the server refused the token.

mod actor_moves;
pub mod api;
mod buddy;
mod buddy_list;
mod cheers;
mod cli;
mod commands;
mod complete;
mod config;
mod counted;
mod devices;
mod doctor;
mod help;
pub mod output;
pub mod remote;
mod resolve;
mod shifts;
mod sync;
mod ui;
mod watch;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use nudge_journal::Now;

use cli::{Cli, ColorWhen};
use commands::Command;
use nudge_replica::Replica;
use output::Out;

/// Runs the CLI with the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    // `COMPLETE=bash nudge ...`: the shell asking for completions (docs/cli.md).
    clap_complete::CompleteEnv::with_factory(<Cli as clap::CommandFactory>::command).complete();
    // Logs only when asked for (RUST_LOG=debug nudge ...), on stderr, so output stays clean.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    // `--color` has to be known before parsing, so that `--help` and usage errors obey it.
    let colour = color_asked();
    let parsed = help::grouped(<Cli as clap::CommandFactory>::command())
        .color(colour)
        .try_get_matches()
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.color {
        ColorWhen::Always => anstream::ColorChoice::Always.write_global(),
        ColorWhen::Never => anstream::ColorChoice::Never.write_global(),
        ColorWhen::Auto => {}
    }
    let mut out = Out::default();
    let result = run(cli, &mut out);
    let printed = out.print();
    match (result, printed) {
        (Ok(()), Ok(())) => ExitCode::SUCCESS,
        (Ok(()), Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        (Ok(()), Err(e)) => {
            let _ = writeln!(std::io::stderr(), "nudge: cannot write output: {e}");
            ExitCode::from(1)
        }
        (Err(e), _) => {
            let code = e.downcast_ref::<api::Failure>().map_or(1, |f| f.code);
            let _ = writeln!(
                anstream::stderr(),
                "{}nudge:{} {e:#}",
                output::ERR.render(),
                output::ERR.render_reset()
            );
            ExitCode::from(code)
        }
    }
}

/// `--color WHEN` (or `--color=WHEN`) as given on the command line, before clap parses it.
fn color_asked() -> clap::ColorChoice {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut asked = None;
    for (i, arg) in args.iter().enumerate() {
        if arg == "--" {
            break;
        }
        if let Some(value) = arg.strip_prefix("--color=") {
            asked = Some(value.to_owned());
        } else if arg == "--color" {
            asked = args.get(i + 1).cloned();
        }
    }
    match asked.as_deref() {
        Some("never") => clap::ColorChoice::Never,
        Some("always") => clap::ColorChoice::Always,
        _ => clap::ColorChoice::Auto,
    }
}

pub(crate) fn home(cli_home: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(home) = cli_home.filter(|h| !h.as_os_str().is_empty()) {
        return Ok(home);
    }
    directories::ProjectDirs::from("", "", "nudge")
        .map(|dirs| dirs.data_dir().to_path_buf())
        .ok_or_else(|| {
            anyhow!("cannot find a data directory for this user; pass --home DIR or set NUDGE_HOME")
        })
}

/// The clock: `NUDGE_NOW` (an RFC 3339 instant, or a local date-time) if set, else the
/// system clock; the zone from `TZ` or the system.
pub(crate) fn now() -> Result<Now> {
    let tz = jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC);
    let ts = match std::env::var("NUDGE_NOW") {
        Ok(text) if !text.is_empty() => text
            .parse::<jiff::Timestamp>()
            .ok()
            .or_else(|| {
                text.replace(' ', "T")
                    .parse::<jiff::civil::DateTime>()
                    .ok()
                    .and_then(|dt| dt.to_zoned(tz.clone()).ok())
                    .map(|z| z.timestamp())
            })
            .with_context(|| {
                format!("NUDGE_NOW={text:?} is not a time; use RFC 3339, e.g. 2026-11-25T09:30:00Z")
            })?,
        _ => jiff::Timestamp::now(),
    };
    Ok(Now::new(ts, tz))
}

fn run(cli: Cli, out: &mut Out) -> Result<()> {
    // Generated from the clap definitions; they need no data folder.
    match &cli.command {
        Command::Completions(args) => {
            let grammar = <Cli as clap::CommandFactory>::command();
            return commands::completions::run(out, args, grammar);
        }
        Command::Man(args) => {
            let grammar = <Cli as clap::CommandFactory>::command();
            return commands::man::run(out, args, grammar);
        }
        // Works with a broken config file, so that one can find it.
        Command::Config(commands::config::ConfigCommand::Path) => {
            out.line(config::path()?.display().to_string());
            return Ok(());
        }
        _ => {}
    }
    let config = config::load()?;
    let home = home(cli.home)?;
    // The doctor opens the store itself: a store that does not open is what it reports.
    if let Command::Doctor(args) = cli.command {
        return doctor::run(&home, now()?, out, args.json);
    }
    // The watcher opens the store only in short bursts, so that other commands can run.
    if let Command::Sync(args) = &cli.command
        && args.watch
    {
        return watch::run(
            &home,
            now,
            std::time::Duration::from_secs(args.timeout.max(1)),
        );
    }
    let mut session = Replica::open(&home, now()?)?;
    session.defaults = config.defaults();
    // --color, else this device's own setting, else the config file.
    if cli.color == ColorWhen::Auto {
        match session.color()?.as_str() {
            "always" => anstream::ColorChoice::Always.write_global(),
            "never" => anstream::ColorChoice::Never.write_global(),
            _ => {}
        }
    }
    let syncing = cli.command.talks_to_server();
    let result = commands::dispatch(cli.command, &session, out);
    // With a watcher running, the change is on its way: no need to say anything.
    if result.is_ok()
        && session.wrote()
        && !syncing
        && remote::load(&home).ok().flatten().is_some()
        && watch::running(&home).is_none()
    {
        match session.unsynced() {
            Ok(0) | Err(_) => {}
            Ok(n) => output::notice(format!(
                "{} not synced yet (run `nudge sync`)",
                output::count(n as usize, "change", "changes")
            )),
        }
    }
    // Every command flushes what it wrote before it reports success, so the store needs no
    // closing flush; skipping the database's (thread joins and all) saves a few ms per command.
    std::mem::forget(session);
    result
}
