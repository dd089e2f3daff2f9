//! `nudge doctor`: checks this device's data, one line per part, and says what to do about
//! anything wrong. It only reads: nothing is repaired or overwritten. Exit 0 when all is
//! well, 1 otherwise.

use std::path::Path;

use anyhow::Result;
use nudge_journal::Now;

use crate::output::Out;
use crate::session::Session;

/// What to do when the store itself is damaged.
fn resync_advice(home: &Path) -> String {
    format!(
        "move {} aside, then in a fresh home `nudge join LINK` (or `nudge remote add URL`) and `nudge sync` to get back everything the server has; or restore the folder from a backup",
        home.display()
    )
}

/// Runs every check; `Err` (exit 1) when any failed.
pub fn run(home: &Path, now: Now, out: &mut Out) -> Result<()> {
    let mut problems = Vec::new();
    let ok =
        |out: &mut Out, what: &str, detail: String| out.line(format!("ok       {what}: {detail}"));
    if !home.exists() {
        out.line(format!(
            "ok       data folder: {} does not exist yet (nothing recorded)",
            home.display()
        ));
        out.line("All good.");
        return Ok(());
    }
    let session = match Session::open(home, now) {
        Ok(session) => session,
        Err(e) => {
            let locked = matches!(
                e.downcast_ref::<nudge_store::Error>(),
                Some(nudge_store::Error::Locked { .. })
            );
            out.line(format!("PROBLEM  store: {e:#}"));
            let fix = if locked {
                "another nudge process has it (a watcher? `nudge status` once it is free); wait for it, or stop it".to_owned()
            } else {
                resync_advice(home)
            };
            out.line(format!("         what to do: {fix}"));
            anyhow::bail!("1 problem found (see above); nothing was changed");
        }
    };
    ok(out, "store", format!("{} opens", session.path().display()));
    match session.journal_id() {
        Ok(None) => ok(out, "journal", "none yet".into()),
        Ok(Some(id)) => match session.load_journal() {
            Ok(Some(journal)) => {
                let heads = journal.doc().get_heads().len();
                ok(
                    out,
                    "journal",
                    format!(
                        "{id} loads ({heads} head{})",
                        if heads == 1 { "" } else { "s" }
                    ),
                );
                match session.view() {
                    Ok(_) => ok(
                        out,
                        "read cache",
                        crate::output::count(
                            session.shift_ids_with_prefix("")?.len(),
                            "shift",
                            "shifts",
                        ),
                    ),
                    Err(e) => problems.push((
                        "read cache",
                        format!("{e:#}"),
                        "delete the `cache` folder in the data folder; it is rebuilt".to_owned(),
                    )),
                }
            }
            Ok(None) => problems.push((
                "journal",
                format!("{id} is named but missing"),
                resync_advice(home),
            )),
            Err(e) => problems.push(("journal", format!("{e:#}"), resync_advice(home))),
        },
        Err(e) => problems.push(("journal", format!("{e:#}"), resync_advice(home))),
    }
    match crate::remote::load(home) {
        Ok(Some(remote)) => match crate::remote::check_token(&remote.token) {
            Ok(token) => {
                let unsynced = session.unsynced().unwrap_or(0);
                ok(
                    out,
                    "remote",
                    format!(
                        "{} (token {}), {} not synced yet",
                        remote.url,
                        token.id(),
                        crate::output::count(unsynced as usize, "change", "changes")
                    ),
                );
            }
            Err(_) => problems.push((
                "remote",
                "the stored token is damaged".into(),
                "`nudge remote remove`, then link this device again".into(),
            )),
        },
        Ok(None) => ok(out, "remote", "none (works offline)".into()),
        Err(e) => problems.push((
            "remote",
            format!("{e:#}"),
            "`nudge remote remove`, then link this device again".into(),
        )),
    }
    match crate::buddy::follows(home) {
        Ok(all) if all.is_empty() => {}
        Ok(all) => ok(
            out,
            "following",
            format!(
                "{} share{}",
                all.len(),
                if all.len() == 1 { "" } else { "s" }
            ),
        ),
        Err(e) => problems.push((
            "following",
            format!("{e:#}"),
            "move follows.json aside and follow the links again".into(),
        )),
    }
    match crate::watch::running_state(home) {
        Some((pid, state)) => ok(out, "watcher", format!("{state} (pid {pid})")),
        None => ok(out, "watcher", "not running".into()),
    }
    if problems.is_empty() {
        out.line("All good.");
        return Ok(());
    }
    for (what, problem, fix) in &problems {
        out.line(format!("PROBLEM  {what}: {problem}"));
        out.line(format!("         what to do: {fix}"));
    }
    anyhow::bail!(
        "{} problem{} found (see above); nothing was changed",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    )
}
