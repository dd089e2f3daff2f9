//! `nudge doctor`: checks this device's data, one line per part, and says what to do about
//! anything wrong. It only reads: nothing is repaired or overwritten. Exit 0 when all is
//! well, 1 otherwise.

use std::path::Path;

use anyhow::Result;
use nudge_journal::Now;

use crate::output::Out;
use nudge_replica::Replica;

/// What to do when the store itself is damaged.
fn resync_advice(home: &Path) -> String {
    format!(
        "move {} aside, then in a fresh home `nudge join LINK` (or `nudge remote add URL`) and `nudge sync` to get back everything the server has; or restore the folder from a backup",
        home.display()
    )
}

/// Runs every check and reports them, as lines or (`as_json`) one JSON object; `Err`
/// (exit 1) when any failed.
pub fn run(home: &Path, now: Now, out: &mut Out, as_json: bool) -> Result<()> {
    let mut fine: Vec<(&str, String)> = Vec::new();
    let problems = check(home, now, &mut fine);
    report(out, as_json, &fine, &problems)
}

/// A check that failed: the part, what is wrong, what to do.
type Problem = (&'static str, String, String);

fn report(
    out: &mut Out,
    as_json: bool,
    fine: &[(&str, String)],
    problems: &[Problem],
) -> Result<()> {
    if as_json {
        let mut checks: Vec<serde_json::Value> = fine
            .iter()
            .map(|(part, detail)| serde_json::json!({ "part": part, "ok": true, "detail": detail, "fix": null }))
            .collect();
        checks.extend(problems.iter().map(|(part, detail, fix)| {
            serde_json::json!({ "part": part, "ok": false, "detail": detail, "fix": fix })
        }));
        out.json(&serde_json::json!({ "ok": problems.is_empty(), "checks": checks }))?;
    } else {
        for (what, detail) in fine {
            out.line(format!("ok       {what}: {detail}"));
        }
        if problems.is_empty() {
            out.line("All good.");
        }
        for (what, problem, fix) in problems {
            out.line(format!("PROBLEM  {what}: {problem}"));
            out.line(format!("         what to do: {fix}"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "{} found (see above); nothing was changed",
        crate::output::count(problems.len(), "problem", "problems")
    )
}

/// Every check: what passed goes into `fine`; what failed is returned.
fn check(home: &Path, now: Now, fine: &mut Vec<(&'static str, String)>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let out = fine;
    let ok = |out: &mut Vec<(&'static str, String)>, what: &'static str, detail: String| {
        out.push((what, detail))
    };
    if !home.exists() {
        ok(
            out,
            "data folder",
            format!("{} does not exist yet (nothing recorded)", home.display()),
        );
        return problems;
    }
    let session = match Replica::open(home, now) {
        Ok(session) => session,
        Err(e) => {
            let locked = matches!(
                e.downcast_ref::<nudge_store::Error>(),
                Some(nudge_store::Error::Locked { .. })
            );
            let fix = if locked {
                "another nudge process has it (a watcher? `nudge status` once it is free); wait for it, or stop it".to_owned()
            } else {
                resync_advice(home)
            };
            problems.push(("store", format!("{e:#}"), fix));
            return problems;
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
                match session
                    .view()
                    .and_then(|_| session.shift_ids_with_prefix(""))
                {
                    Ok(ids) => ok(
                        out,
                        "read cache",
                        crate::output::count(ids.len(), "shift", "shifts"),
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
    // A restored copy of this home is only recognised by a sync (the evidence is on the
    // server), which moves the device to a fresh actor; say when that happened.
    if let Ok(moves) = session.actor_moves()
        && let Some(last) = moves.last()
    {
        let changes: usize = moves.iter().map(|m| m.changes).sum();
        ok(
            out,
            "identity",
            format!(
                "restored from a copy of this home: moved to a fresh actor (last on {}; {} in all), {} carried over",
                last.at,
                crate::output::count(moves.len(), "move", "moves"),
                crate::output::count(changes, "change", "changes")
            ),
        );
    }
    match crate::sync::follows::follows(home) {
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
    problems
}
