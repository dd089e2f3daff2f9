//! `nudge sync --watch`: stay connected; send local changes as they are made, store remote
//! ones as they come; reconnect with backoff when the server goes away.
//!
//! Other `nudge` commands keep working meanwhile because the watcher **holds the store only
//! in short bursts**: the store lets one process open a store at a time, so the watcher opens it
//! to store what arrived or to read what a command wrote, then closes it again, and a
//! command that finds it busy waits (up to 3 s, in practice milliseconds). Commands tell
//! the watcher about their writes through `last-write` beside the store, which it polls
//! every 100 ms; it then reads only the changes appended since it last looked
//! (`DocStore::changes_after`). `watch.pid` says a watcher runs (`nudge status`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use nudge_journal::Now;
use nudge_journal::automerge::{Automerge, Change};
use nudge_store::DocumentId;

use crate::api::{Failure, REFUSED, UNREACHABLE};
use crate::sync::{self, Link};
use nudge_replica::Replica;

/// How often `last-write` is checked.
const POLL: Duration = Duration::from_millis(100);
/// Backoff between reconnects: from this, doubling, up to `MAX_BACKOFF`, with jitter.
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The pid file of a running watcher.
pub fn pid_path(home: &Path) -> PathBuf {
    home.join("watch.pid")
}

/// The pid of a watcher running on `home`, if one is.
pub fn running(home: &Path) -> Option<u32> {
    running_state(home).map(|(pid, _)| pid)
}

/// The pid of a running watcher and what it is doing (`connecting`, `watching`,
/// `reconnecting`).
pub fn running_state(home: &Path) -> Option<(u32, String)> {
    let text = std::fs::read_to_string(pid_path(home)).ok()?;
    let mut words = text.split_whitespace();
    let pid: u32 = words.next()?.parse().ok()?;
    let state = words.next().unwrap_or("connecting").to_owned();
    Path::new(&format!("/proc/{pid}"))
        .exists()
        .then_some((pid, state))
}

/// Records what the watcher is doing, for `nudge status`.
fn set_state(home: &Path, state: &str) {
    let _ = std::fs::write(pid_path(home), format!("{} {state}\n", std::process::id()));
}

/// Removes the pid file when the watcher ends, however it ends.
struct PidFile(PathBuf);

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn say(line: impl AsRef<str>) {
    let time = jiff::Zoned::now().strftime("%H:%M:%S").to_string();
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "[{time}] {}", line.as_ref());
    let _ = stdout.flush();
}

fn is_code(e: &anyhow::Error, code: u8) -> bool {
    e.downcast_ref::<Failure>().is_some_and(|f| f.code == code)
}

/// A little randomness for backoff, so devices do not reconnect in step.
fn jitter(d: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    d + d.mul_f64(f64::from(byte[0]) / 255.0 * 0.5)
}

/// Runs the watcher until Ctrl-C or SIGTERM (exit 0), or until the server refuses the
/// token (exit 4).
pub fn run(home: &Path, now: impl Fn() -> Result<Now>, timeout: Duration) -> Result<()> {
    // A watcher's output is a log: no progress bar under its lines.
    sync::NO_PROGRESS.store(true, std::sync::atomic::Ordering::Relaxed);
    std::fs::create_dir_all(home)
        .with_context(|| format!("cannot create the data folder {}", home.display()))?;
    if let Some(pid) = running(home) {
        bail!(
            "a watcher already runs on this device (pid {pid}); stop it with Ctrl-C or `kill {pid}`"
        );
    }
    std::fs::write(
        pid_path(home),
        format!("{} connecting\n", std::process::id()),
    )
    .with_context(|| format!("cannot write {}", pid_path(home).display()))?;
    let _pid = PidFile(pid_path(home));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the network runtime")?;
    let has_remote = crate::remote::load(home)?.is_some();
    let followed: Vec<String> = crate::sync::follows::follows(home)?
        .into_iter()
        .filter(|(_, f)| !f.revoked)
        .map(|(name, _)| name)
        .collect();
    if !has_remote && followed.is_empty() {
        bail!("nothing to watch: this device has no remote and follows no one");
    }
    runtime.block_on(async {
        let stop = stop_signal();
        tokio::pin!(stop);
        let own = async {
            if has_remote {
                own_loop(home, &now, timeout).await
            } else {
                set_state(home, "watching");
                std::future::pending().await
            }
        };
        let follows = async {
            futures_util::future::join_all(
                followed
                    .iter()
                    .map(|name| follow_loop(home, &now, name, timeout)),
            )
            .await;
            if has_remote {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = &mut stop => Ok(()),
            result = own => result,
            _ = follows => Ok(()),
        }
    })
}

/// This device's own journal: connected, or waiting to reconnect, until refused.
async fn own_loop(home: &Path, now: &impl Fn() -> Result<Now>, timeout: Duration) -> Result<()> {
    let mut backoff = MIN_BACKOFF;
    loop {
        match connected(home, now, timeout, &mut backoff).await {
            Ok(_) => {}
            Err(e) if is_code(&e, REFUSED) => return Err(e),
            Err(e) if is_code(&e, UNREACHABLE) => {
                set_state(home, "reconnecting");
                wait_to_retry(&e, &mut backoff).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Right after a live connection broke, tries once at once (a revoked token is then
/// refused within the second); after that, backs off with jitter.
async fn wait_to_retry(e: &anyhow::Error, backoff: &mut Duration) {
    let wait = if backoff.is_zero() {
        Duration::ZERO
    } else {
        jitter(*backoff)
    };
    say(format!(
        "{}; trying again in {:.1} s",
        first_clause(e),
        wait.as_secs_f64()
    ));
    tokio::time::sleep(wait).await;
    *backoff = (*backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
}

/// A followed share: kept live until its owner revokes it (or it is unfollowed).
async fn follow_loop(home: &Path, now: &impl Fn() -> Result<Now>, name: &str, timeout: Duration) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let Ok(all) = crate::sync::follows::follows(home) else {
            return;
        };
        let Some(follow) = all.get(name).filter(|f| !f.revoked).cloned() else {
            return;
        };
        match follow_connected(home, now, name, &follow, timeout, &mut backoff).await {
            Ok(()) => return,
            Err(e) if is_code(&e, REFUSED) => {
                let _ = crate::sync::follows::mark_revoked(home, name);
                say(format!(
                    "{name} stopped sharing with you; what you saw stays here"
                ));
                return;
            }
            Err(e) if is_code(&e, UNREACHABLE) => wait_to_retry(&e, &mut backoff).await,
            Err(e) => {
                say(format!("{name}: {}", first_clause(&e)));
                return;
            }
        }
    }
}

async fn follow_connected(
    home: &Path,
    now: &impl Fn() -> Result<Now>,
    name: &str,
    follow: &crate::sync::follows::Follow,
    timeout: Duration,
    backoff: &mut Duration,
) -> Result<()> {
    let mut follow = follow.clone();
    {
        let session = Replica::open(home, now()?)?;
        if crate::sync::follows::follow_moved_view(&session, &mut follow, timeout)? {
            crate::sync::follows::save_follow(home, name, &follow)?;
        }
    }
    let doc: DocumentId = follow
        .doc
        .parse()
        .map_err(|_| anyhow::anyhow!("the follow record of {name} is damaged"))?;
    let remote = crate::remote::Remote {
        url: follow.url.clone(),
        token: follow.token.clone(),
    };
    let api = crate::api::Api::new(&remote, crate::remote::endpoints(&remote.url)?, timeout);
    let mut link = Link::connect(&api, timeout).await?;
    let stored = {
        let session = Replica::open(home, now()?)?;
        session.load_automerge(&doc)?.unwrap_or_default()
    };
    link.add(doc, stored).await?;
    *backoff = Duration::ZERO;
    loop {
        let next = link.ws.next().await;
        let (document, replies) = link.receive(next)?;
        if let Some(id) = document {
            let changes = link.client.take_new_changes(&id);
            if !changes.is_empty() {
                let session = Replica::open(home, now()?)?;
                session.store_changes(&id, &changes)?;
                session.sync_flush()?;
                say(format!(
                    "{name}: ↓ {} {}",
                    changes.len(),
                    crate::output::plural(changes.len(), "change", "changes")
                ));
            }
        }
        link.send(replies).await?;
    }
}

fn first_clause(e: &anyhow::Error) -> String {
    let text = e.to_string();
    text.split("; ").next().unwrap_or(&text).to_owned()
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return tokio::signal::ctrl_c().await.unwrap_or(()),
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// What the watcher knows of each document: the store position up to which it has read
/// (or stored) everything into the connection's copy.
type Known = HashMap<DocumentId, u64>;

/// One connection: a full sync, then live until it breaks. `Ok(false)` asks for a
/// reconnect (the journal changed under us).
async fn connected(
    home: &Path,
    now: &impl Fn() -> Result<Now>,
    timeout: Duration,
    backoff: &mut Duration,
) -> Result<bool> {
    let mut known = Known::new();
    let mut link = {
        let session = Replica::open(home, now()?)?;
        let Some((api, account_journal)) = sync::prepare(&session, timeout)? else {
            bail!(
                "nothing to sync yet: the journal is empty and the account has none; add a shift first"
            );
        };
        let ((report, link), moves) = crate::actor_moves::retrying(&session, async || {
            let (report, mut link) =
                sync::exchange(&session, &api, account_journal, timeout).await?;
            crate::sync::views::refresh_views(&session, &mut link).await?;
            Ok((report, link))
        })
        .await?;
        for line in sync::report_lines(&api.url, &report, 0) {
            say(line);
        }
        if let Some(line) = crate::actor_moves::report_line(&moves) {
            say(line);
        }
        for id in link.client.documents() {
            known.insert(id, session.store_position(&id)?);
        }
        say("watching: local changes go out as they are made; Ctrl-C stops");
        set_state(home, "watching");
        link
        // The session closes here: the store is free for other commands.
    };
    *backoff = Duration::ZERO;
    let mut stamp = Replica::read_stamp(home);
    let mut ticker = tokio::time::interval(POLL);
    let mut was_done = true;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let current = Replica::read_stamp(home);
                if current != stamp {
                    stamp = current;
                    if !push_local(home, now, &mut link, &mut known).await? {
                        link.close().await;
                        return Ok(false);
                    }
                    was_done = false;
                }
            }
            next = link.ws.next() => {
                let (document, replies) = link.receive(next)?;
                let mut stored = false;
                if let Some(id) = document {
                    let changes = link.client.take_new_changes(&id);
                    if !changes.is_empty() {
                        store_received(home, now, &id, &changes, &mut known)?;
                        stored = true;
                        say(format!(
                            "↓ {} {}",
                            changes.len(),
                            crate::output::plural(changes.len(), "change", "changes")
                        ));
                    }
                }
                link.send(replies).await?;
                let done = link.client.is_done();
                if done && (stored || !was_done) {
                    // Everything the watcher holds is on the server: say so for `status`.
                    let session = Replica::open(home, now()?)?;
                    for (id, position) in &known {
                        session.set_synced(id, *position)?;
                    }
                    session.sync_flush()?;
                }
                was_done = done;
            }
        }
    }
}

/// Stores changes that arrived, in a short session; advances `known` if nothing else was
/// appended meanwhile (else the next local read picks both up).
fn store_received(
    home: &Path,
    now: &impl Fn() -> Result<Now>,
    id: &DocumentId,
    changes: &[Change],
    known: &mut Known,
) -> Result<()> {
    let session = Replica::open(home, now()?)?;
    let before = session.store_position(id)?;
    session.store_changes(id, changes)?;
    session.commit_sync()?;
    if known.get(id) == Some(&before) {
        known.insert(*id, session.store_position(id)?);
    }
    Ok(())
}

/// Reads what local commands wrote since the watcher last looked and sends it. `false`
/// when this device's journal is no longer the one being watched.
async fn push_local(
    home: &Path,
    now: &impl Fn() -> Result<Now>,
    link: &mut Link,
    known: &mut Known,
) -> Result<bool> {
    let mut outgoing: Vec<(DocumentId, Vec<Change>)> = Vec::new();
    let mut added: Vec<(DocumentId, Automerge)> = Vec::new();
    {
        let session = Replica::open(home, now()?)?;
        let Some(journal) = session.journal_id()? else {
            return Ok(false);
        };
        if !known.contains_key(&journal) {
            return Ok(false);
        }
        for (id, position) in known.iter_mut() {
            let current = session.store_position(id)?;
            if current == *position {
                continue;
            }
            let changes = match session.changes_after(id, *position)? {
                Some(raw) => raw
                    .into_iter()
                    .filter_map(|bytes| Change::from_bytes(bytes).ok())
                    .collect(),
                // Compacted meanwhile: compare with the whole stored document.
                None => match (session.load_automerge(id)?, link.client.doc(id)) {
                    (Some(stored), Some(ours)) => stored.get_changes(&ours.get_heads()),
                    _ => Vec::new(),
                },
            };
            *position = current;
            if !changes.is_empty() {
                outgoing.push((*id, changes));
            }
        }
        // Share views follow the journal: refreshed from it as stored now.
        if outgoing.iter().any(|(id, _)| *id == journal) {
            for (id, changes) in crate::sync::views::refresh_in_link(&session, link)? {
                let position = session.store_position(&id)?;
                known.insert(id, position);
                outgoing.push((id, changes));
            }
        }
        drop(session);
        let mut sent = 0;
        for (id, changes) in outgoing {
            sent += changes.len();
            let messages = link.client.apply_local(&id, changes)?;
            link.send(messages).await?;
        }
        if sent > 0 {
            say(format!(
                "↑ {sent} {}",
                crate::output::plural(sent, "change", "changes")
            ));
        }
        // A view that now holds words it no longer shows is rebuilt by a full exchange
        // (`view_rebuild.rs`): reconnect for one.
        if !crate::sync::view_rebuild::stale_views(link, &journal).is_empty() {
            return Ok(false);
        }
        // `person forget` points the journal at a new contacts document: watch it too.
        if let Some(doc) = link.client.doc(&journal)
            && let Some(contacts) = sync::contacts_id(doc)?
            && !known.contains_key(&contacts)
        {
            let session = Replica::open(home, now()?)?;
            let stored = session.load_automerge(&contacts)?.unwrap_or_default();
            known.insert(contacts, session.store_position(&contacts)?);
            added.push((contacts, stored));
        }
    }
    for (id, doc) in added {
        link.add(id, doc).await?;
    }
    Ok(true)
}
