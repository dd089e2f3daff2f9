//! The `nudge` CLI: a journal of micro shifts, fully offline, on one device.
//!
//! - `cli.rs`: the clap grammar (a contract: scripts rely on it).
//! - the device's store, the journal in it and the derived-state cache are
//!   `nudge_replica::Replica` (crates/replica).
//! - `shifts.rs`, `ideas.rs`, `people.rs`, `misc.rs`: the commands.
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
mod cli;
mod complete;
mod config;
mod counted;
mod devices;
mod doctor;
mod help;
mod ideas;
mod misc;
pub mod output;
mod people;
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

use cli::{BuddyCommand, Cli, ColorWhen, Command, DeviceCommand, RemoteCommand};
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

/// What every page ends with: exit codes, environment, files (docs/cli.md says the same).
const MAN_TAIL: &str = r#".SH "EXIT STATUS"
0 on success; 1 on an error you can fix (one line on stderr says how); 2 on bad usage; 3 when the server cannot be reached or stopped answering; 4 when the server refused the token; 5 when the server is holding back this address after too many failed attempts. A failed command changes nothing.
.SH ENVIRONMENT
.TP
\fBNUDGE_HOME\fR
Where nudge keeps its data (as \fB--home\fR).
.TP
\fBNUDGE_TOKEN\fR
The account's token, for \fBnudge remote add\fR.
.TP
\fBNUDGE_SYNC_TIMEOUT\fR
Seconds a whole sync may take (as \fB--timeout\fR).
.TP
\fBNUDGE_CONFIG\fR
The config file to read instead of the platform's.
.TP
\fBNO_COLOR\fR
No colour with \fB--color auto\fR.
.TP
\fBTZ\fR
The time zone done shifts are counted in.
.SH FILES
.TP
\fI~/.local/share/nudge\fR
The data folder on Linux (the store, the read cache, remote.json and follows.json, mode 0600).
.TP
\fI~/.config/nudge/config.toml\fR
Defaults for colour, week start, weekly goal, remote and device name (\fBnudge config path\fR says where).
"#;

/// Writes `nudge.1` and a page per command (`nudge-sync.1`, `nudge-buddy-invite.1`, ...).
fn write_man_pages(dir: &std::path::Path, out: &mut Out) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create {}; pick another --out folder", dir.display()))?;
    let mut written = 0;
    // Built first, so that every command knows its full name (`nudge sync`) and version.
    // No `help` subcommands on paper: each command's page is its help.
    fn without_help(command: clap::Command) -> clap::Command {
        command
            .disable_help_subcommand(true)
            .mut_subcommands(without_help)
    }
    let mut root = without_help(<Cli as clap::CommandFactory>::command());
    root.build();
    let mut stack = vec![("nudge".to_owned(), root)];
    while let Some((name, command)) = stack.pop() {
        let command = command.display_name(name.replace('-', " "));
        // Every command listed gets its page, so no SEE ALSO points nowhere.
        for sub in command.get_subcommands() {
            stack.push((format!("{name}-{}", sub.get_name()), sub.clone()));
        }
        let mut page = Vec::new();
        clap_mangen::Man::new(command)
            .title(name.clone())
            .render(&mut page)
            .with_context(|| format!("cannot render the man page for {name}"))?;
        page.extend_from_slice(MAN_TAIL.as_bytes());
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page).with_context(|| {
            format!("cannot write {}; pick another --out folder", path.display())
        })?;
        written += 1;
    }
    out.line(format!(
        "Wrote {written} man pages to {} (try: man -l {}).",
        dir.display(),
        dir.join("nudge.1").display()
    ));
    Ok(())
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
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut text = Vec::new();
            clap_complete::generate(*shell, &mut command, "nudge", &mut text);
            out.line(String::from_utf8_lossy(&text).trim_end());
            return Ok(());
        }
        Command::Man { out: dir } => return write_man_pages(dir, out),
        // Works with a broken config file, so that one can find it.
        Command::Config(cli::ConfigCommand::Path) => {
            out.line(config::path()?.display().to_string());
            return Ok(());
        }
        _ => {}
    }
    let config = config::load()?;
    let home = home(cli.home)?;
    // The doctor opens the store itself: a store that does not open is what it reports.
    if let Command::Doctor { json } = cli.command {
        return doctor::run(&home, now()?, out, json);
    }
    // The watcher opens the store only in short bursts, so that other commands can run.
    if let Command::Sync {
        watch: true,
        timeout,
    } = cli.command
    {
        return watch::run(&home, now, std::time::Duration::from_secs(timeout.max(1)));
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
    let syncing = matches!(
        cli.command,
        Command::Sync { .. }
            | Command::Remote(_)
            | Command::Join { .. }
            | Command::Device(_)
            | Command::Buddy(_)
            | Command::Follow { .. }
            | Command::Unfollow { .. }
    );
    let result = dispatch(cli.command, &session, out);
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

fn dispatch(command: Command, session: &Replica, out: &mut Out) -> Result<()> {
    match command {
        Command::Add(args) => shifts::add(session, out, args.shift, None, None),
        Command::Log(args) => shifts::add(session, out, args.shift, Some(args.at), args.little_yes),
        Command::Done { id, little_yes, at } => shifts::done(session, out, &id, little_yes, at),
        Command::Skip { id } => {
            shifts::set_status(session, out, &id, nudge_journal::ShiftStatus::Skipped)
        }
        Command::Drop { id } => {
            shifts::set_status(session, out, &id, nudge_journal::ShiftStatus::Dropped)
        }
        Command::Edit(args) => shifts::edit(session, out, args),
        Command::Rm { id } => shifts::remove(session, out, &id),
        Command::Undo => shifts::undo(session, out),
        Command::List(args) => shifts::list(session, out, args),
        Command::Show { id, json } => shifts::show(session, out, &id, json),
        Command::Week { last, json } => misc::week(session, out, last, json),
        Command::Idea(cmd) => ideas::run(session, out, cmd),
        Command::Person(cmd) => people::run(session, out, cmd),
        Command::Suggest { json } => misc::suggest(session, out, json),
        Command::History { json, limit } => misc::history(session, out, json, limit),
        Command::Export { .. } => misc::export(session, out),
        Command::Import {
            file,
            from,
            dry_run,
        } => misc::import(session, out, &file, from, dry_run),
        Command::Config(cmd) => misc::config(session, out, cmd),
        Command::Remote(cmd) => remote_command(session, out, cmd),
        Command::Buddy(cmd) => {
            let timeout = env_timeout();
            match cmd {
                BuddyCommand::Invite {
                    name,
                    scope,
                    expires,
                } => buddy::invite(session, out, &name, scope, &expires, timeout),
                BuddyCommand::List { json } => buddy_list::list(session, out, json, timeout),
                BuddyCommand::Revoke { name } => buddy_list::revoke(session, out, &name, timeout),
                BuddyCommand::Show { name, json } => buddy::show(session, out, &name, json),
            }
        }
        Command::Follow {
            link,
            name,
            timeout,
        } => buddy::follow(
            session,
            out,
            &link,
            name,
            std::time::Duration::from_secs(timeout.max(1)),
        ),
        Command::Following { json } => buddy::following(session, out, json),
        Command::Unfollow { name } => buddy::unfollow(session, out, &name),
        Command::Device(cmd) => {
            let timeout = env_timeout();
            match cmd {
                DeviceCommand::Link { expires } => devices::link(session, out, expires, timeout),
                DeviceCommand::List { json } => devices::list(session, out, json, timeout),
                DeviceCommand::Revoke { device } => devices::revoke(session, out, &device, timeout),
            }
        }
        Command::Join {
            link,
            name,
            timeout,
        } => devices::join(
            session,
            out,
            &link,
            name,
            std::time::Duration::from_secs(timeout.max(1)),
        ),
        Command::Status { json } => misc::status(session, out, json),
        Command::Doctor { json } => doctor::run(session.home(), session.now.clone(), out, json),
        // Answered in `run` before any store opens.
        Command::Completions { .. } | Command::Man { .. } => Ok(()),
        Command::Sync { timeout, .. } => {
            sync::run(session, out, std::time::Duration::from_secs(timeout.max(1)))
        }
    }
}

fn remote_command(session: &Replica, out: &mut Out, command: RemoteCommand) -> Result<()> {
    let home = session.home();
    match command {
        RemoteCommand::Add { url, token_stdin } => {
            if let Some(existing) = remote::load(home)? {
                anyhow::bail!(
                    "a remote is set already ({}); run `nudge remote remove` first to change it",
                    existing.url
                );
            }
            let url = match url.or_else(|| config::load().ok().and_then(|c| c.remote)) {
                Some(url) => url,
                None => anyhow::bail!(
                    "give the server's address (`nudge remote add URL`), or set remote in the config file ({})",
                    config::path()?.display()
                ),
            };
            remote::endpoints(&url)?;
            let token = remote::token_from(token_stdin)?;
            let parsed = remote::check_token(&token)?;
            remote::save(
                home,
                &remote::Remote {
                    url: url.trim().to_owned(),
                    token: parsed.to_string(),
                },
            )?;
            session.forget_synced()?;
            out.line(format!(
                "Remote set to {} (token {}). Run `nudge sync` to sync.",
                url.trim(),
                parsed.id()
            ));
            Ok(())
        }
        RemoteCommand::Show { json } => {
            let Some(remote) = remote::load(home)? else {
                anyhow::bail!("no remote is set: run `nudge remote add URL` with NUDGE_TOKEN set");
            };
            let token_id = remote::check_token(&remote.token)
                .map(|t| t.id().to_owned())
                .unwrap_or_else(|_| "(damaged)".into());
            let unsynced = session.unsynced()?;
            if json {
                out.json(&serde_json::json!({
                    "url": remote.url,
                    "token_id": token_id,
                    "unsynced_changes": unsynced,
                }))?;
            } else {
                out.line(format!("url       {}", remote.url));
                out.line(format!("token     {token_id}"));
                out.line(format!(
                    "unsynced  {}",
                    output::count(unsynced as usize, "change", "changes")
                ));
            }
            Ok(())
        }
        RemoteCommand::Remove => {
            if !remote::remove(home)? {
                anyhow::bail!("no remote is set");
            }
            session.forget_synced()?;
            out.line("Remote removed; the journal stays on this device.");
            Ok(())
        }
    }
}

/// `NUDGE_SYNC_TIMEOUT` seconds (default 30), for commands that talk to the server.
fn env_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(
        std::env::var("NUDGE_SYNC_TIMEOUT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30u64)
            .max(1),
    )
}
