//! `week`, `suggest`, `history`, `export` and `config`.

use anyhow::{Result, bail};
use nudge_journal::when::rfc3339;
use nudge_journal::{Catalog, Summary, history as journal_history};
use serde_json::json;

use crate::cli::ConfigCommand;
use crate::output::{DIM, Out, TAG, count, notice, paint};
use nudge_replica::{Replica, Touched, local};

/// `week`.
pub fn week(session: &Replica, out: &mut Out, last: usize, as_json: bool) -> Result<()> {
    if last == 0 || last > 520 {
        bail!("--last takes a number of weeks from 1 to 520");
    }
    let (catalog, summary) = match session.view()? {
        Some(view) => (view.catalog, view.summary),
        None => (Catalog::default(), Summary::default()),
    };
    let today = session.now.today();
    let weeks = nudge_journal::weeks(&summary, &catalog, today, last);
    let streak = nudge_journal::streak(&summary, today);
    let doors = catalog.doors_closed();
    if as_json {
        return out.json(&json!({ "weeks": weeks, "streak": streak, "doors_closed": doors }));
    }
    for (i, w) in weeks.iter().enumerate() {
        if i > 0 {
            out.line("");
        }
        let label = if i == 0 {
            "this week".to_owned()
        } else {
            format!("week of {}", w.start)
        };
        out.line(crate::ui::headline(
            w.done,
            w.goal,
            format!("{}/{} micro shifts {label}", w.done, w.goal),
        ));
        for row in crate::ui::day_rows(&w.days, today) {
            out.line(row);
        }
        let mut parts: Vec<String> = w
            .ideas
            .iter()
            .map(|c| paint(TAG, format!("+{} {}", c.title, c.done)))
            .collect();
        if w.untagged > 0 {
            parts.push(paint(DIM, format!("untagged {}", w.untagged)));
        }
        if !parts.is_empty() {
            out.line(format!("  {}", parts.join("  ")));
        }
    }
    out.line(crate::ui::streak(streak));
    if let Some(line) = crate::ui::doors_closed(doors) {
        out.line(line);
    }
    Ok(())
}

/// `suggest`.
pub fn suggest(session: &Replica, out: &mut Out, as_json: bool) -> Result<()> {
    let (catalog, summary) = match session.view()? {
        Some(view) => (view.catalog, view.summary),
        None => (Catalog::default(), Summary::default()),
    };
    let suggestions = nudge_journal::suggest(&catalog, &summary, &session.now.today().to_string());
    if as_json {
        let list: Vec<serde_json::Value> = suggestions
            .iter()
            .enumerate()
            .map(|(i, text)| serde_json::json!({ "n": i + 1, "text": text }))
            .collect();
        return out.json(&list);
    }
    for s in suggestions {
        out.line(format!("- {s}"));
    }
    notice("Plan one: nudge add \"...\"");
    Ok(())
}

/// `history`.
pub fn history(
    session: &Replica,
    out: &mut Out,
    as_json: bool,
    limit: Option<usize>,
) -> Result<()> {
    let Some(journal) = session.load_journal()? else {
        if as_json {
            out.json(&Vec::<serde_json::Value>::new())?;
        }
        return Ok(());
    };
    let catalog = journal.catalog()?;
    let mut entries = journal_history(&journal, &catalog);
    if let Some(limit) = limit {
        let skip = entries.len().saturating_sub(limit);
        entries.drain(..skip);
    }
    if as_json {
        let items: Vec<_> = entries
            .iter()
            .map(|e| {
                json!({
                    "hash": e.hash,
                    "time": rfc3339(e.time_s.saturating_mul(1000)),
                    "device": e.device,
                    "actor": e.actor,
                    "message": e.message,
                })
            })
            .collect();
        return out.json(&items);
    }
    for e in &entries {
        let when = crate::output::local(
            e.time_s.saturating_mul(1000),
            &session.now.tz,
            "%Y-%m-%d %H:%M",
        );
        out.line(format!(
            "{} {}  {}",
            paint(DIM, when),
            paint(DIM, format!("[{}]", e.device)),
            e.message
        ));
    }
    Ok(())
}

/// `export --json`.
pub fn export(session: &Replica, out: &mut Out) -> Result<()> {
    let Some(journal) = session.load_journal()? else {
        return out.json(&nudge_journal::export(
            &Catalog::default(),
            &[],
            &Default::default(),
        ));
    };
    let catalog = journal.catalog()?;
    let contacts = session
        .load_contacts(&catalog)?
        .map(|(_, c)| c.all())
        .unwrap_or_default();
    out.json(&nudge_journal::export(
        &catalog,
        &journal.shifts()?,
        &contacts,
    ))
}

/// `nudge import FILE [--from nudge|taskwarrior] [--dry-run]`.
pub fn import(
    session: &Replica,
    out: &mut Out,
    file: &std::path::Path,
    from: crate::cli::ImportFrom,
    dry_run: bool,
) -> Result<()> {
    use std::io::Read;

    let stdin = file.as_os_str() == "-";
    let name = if stdin {
        "standard input".to_owned()
    } else {
        file.display().to_string()
    };
    let mut text = String::new();
    let read = if stdin {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text).map(|_| ()))
    };
    read.map_err(|e| anyhow::anyhow!("cannot read {name}: {e}"))?;
    let batch = match from {
        crate::cli::ImportFrom::Nudge => nudge_journal::import::from_export(&text),
        crate::cli::ImportFrom::Taskwarrior => {
            nudge_journal::import::from_taskwarrior(&text, &session.now)
        }
    }
    .map_err(|e| anyhow::anyhow!("{name}: {e}; nothing was imported"))?;
    let source = if stdin {
        "stdin".to_owned()
    } else {
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.clone())
    };
    let report = if dry_run {
        let mut journal = match session.load_journal()? {
            Some(journal) => journal,
            None => nudge_journal::Journal::create(
                nudge_journal::automerge::ActorId::random(),
                &session.now,
                "dry run",
                "",
            ),
        };
        journal.import(&session.now, &batch, &source)?
    } else {
        let report = session.write(|journal, _| {
            let report = journal.import(&session.now, &batch, &source)?;
            Ok((report, nudge_replica::Touched::All))
        })?;
        // Contact details go to the contacts document, for people that have none yet.
        if !batch.contacts.is_empty() {
            let view = session.require_view()?;
            let have = session
                .load_contacts(&view.catalog)?
                .map(|(_, c)| c.all())
                .unwrap_or_default();
            for (file_id, contact) in &batch.contacts {
                let Some(target) = report.people_map.get(file_id) else {
                    continue;
                };
                if view.catalog.contact(&have, target).is_empty() {
                    crate::people::save_contact(session, target, contact)?;
                }
            }
        }
        report
    };
    let verb = if dry_run { "Would import" } else { "Imported" };
    if report.added() == 0 {
        out.line(format!(
            "Nothing new in {name}: {} in the journal already.",
            match report.already {
                1 => "its one record is".to_owned(),
                n => format!("all {n} records are"),
            }
        ));
    } else {
        out.line(format!(
            "{verb} {}, {}, {} from {name}{}.",
            count(report.shifts, "shift", "shifts"),
            count(report.ideas, "idea", "ideas"),
            count(report.people, "person", "people"),
            if report.already > 0 {
                format!(" ({} already here)", report.already)
            } else {
                String::new()
            }
        ));
    }
    for line in &batch.left_out {
        out.line(format!("  left out: {line}"));
    }
    Ok(())
}

const KEYS: &str =
    "weekly_goal, week_start (travel with the journal), device.name, color (this device only)";

/// `config get|set`.
pub fn config(session: &Replica, out: &mut Out, cmd: ConfigCommand) -> Result<()> {
    let settings = session
        .view()?
        .map(|v| v.catalog.settings)
        .unwrap_or_default();
    let get = |key: &str| -> Result<String> {
        Ok(match key {
            "weekly_goal" => settings.weekly_goal.to_string(),
            "week_start" => settings.week_start.to_string(),
            local::DEVICE_NAME => session.device_name()?,
            local::COLOR => session.color()?,
            other => bail!("unknown setting {other:?}; the settings are {KEYS}"),
        })
    };
    match cmd {
        ConfigCommand::Path => out.line(crate::config::path()?.display().to_string()),
        ConfigCommand::Get { key, json } => {
            let keys = match &key {
                Some(key) => vec![key.as_str()],
                None => vec![
                    "weekly_goal",
                    "week_start",
                    local::DEVICE_NAME,
                    local::COLOR,
                ],
            };
            let mut values = serde_json::Map::new();
            for key in &keys {
                let value = get(key)?;
                // Numbers stay numbers in JSON.
                let value = match value.parse::<u64>() {
                    Ok(n) if *key == "weekly_goal" => n.into(),
                    _ => value.into(),
                };
                values.insert((*key).to_owned(), value);
            }
            if json {
                return out.json(&values);
            }
            for (key, value) in values {
                let value = match value {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                // One key alone prints its value alone, for scripts.
                out.line(if keys.len() == 1 {
                    value
                } else {
                    format!("{key} = {value}")
                });
            }
        }
        ConfigCommand::Set { key, value } => match key.as_str() {
            "weekly_goal" | "week_start" => {
                session.write(|journal, _| {
                    journal.set_setting(&session.now, &key, value.trim())?;
                    Ok(((), Touched::Shifts(vec![])))
                })?;
                out.line(format!("{key} = {}", get_fresh(session, &key)?));
            }
            local::DEVICE_NAME => {
                let name = value.trim();
                if name.is_empty() {
                    bail!("device.name cannot be empty");
                }
                session.local_set(local::DEVICE_NAME, name)?;
                if session.journal_id()?.is_some() {
                    session.write(|journal, _| {
                        journal.register_device(&session.now, name)?;
                        Ok(((), Touched::Shifts(vec![])))
                    })?;
                }
                out.line(format!("device.name = {name}"));
            }
            local::COLOR => {
                if !["auto", "always", "never"].contains(&value.as_str()) {
                    bail!("color is auto, always or never, not {value:?}");
                }
                session.local_set(local::COLOR, &value)?;
                out.line(format!("color = {value}"));
            }
            other => bail!("unknown setting {other:?}; the settings are {KEYS}"),
        },
    }
    Ok(())
}

fn get_fresh(session: &Replica, key: &str) -> Result<String> {
    let settings = session.require_view()?.catalog.settings;
    Ok(if key == "weekly_goal" {
        settings.weekly_goal.to_string()
    } else {
        settings.week_start.to_string()
    })
}

/// `nudge status`.
pub fn status(session: &Replica, out: &mut Out, as_json: bool) -> Result<()> {
    let remote = crate::remote::load(session.home())?;
    let token_id = remote
        .as_ref()
        .and_then(|r| crate::remote::check_token(&r.token).ok())
        .map(|t| t.id().to_owned());
    let device = session.device_name()?;
    let synced_at = session.synced_at()?;
    let unsynced = if remote.is_some() {
        session.unsynced()?
    } else {
        0
    };
    let watcher = crate::watch::running_state(session.home());
    // The journal's automerge-repo document id: another app syncing with the same server
    // finds the journal by it (`automerge:<id>` is automerge-repo's URL form).
    let journal = session.journal_id()?.map(|id| id.to_string());
    let when = |ms: i64| crate::output::local(ms, &session.now.tz, "%Y-%m-%d %H:%M:%S");
    if as_json {
        return out.json(&serde_json::json!({
            "journal_document_id": journal,
            "journal_url": journal.as_ref().map(|id| format!("automerge:{id}")),
            "remote": remote.as_ref().map(|r| r.url.clone()),
            "token_id": token_id,
            "device": device,
            "last_sync": synced_at.map(nudge_journal::when::rfc3339),
            "unsynced_changes": unsynced,
            "watcher_pid": watcher.as_ref().map(|(pid, _)| pid),
            "watcher": watcher.as_ref().map(|(_, state)| state),
        }));
    }
    match &remote {
        Some(r) => out.line(format!(
            "remote     {} (token {})",
            r.url,
            token_id.as_deref().unwrap_or("damaged")
        )),
        None => out.line("remote     none (`nudge join LINK` or `nudge remote add URL`)"),
    }
    out.line(format!("device     {device}"));
    out.line(match &journal {
        Some(id) => format!("journal    automerge:{id}"),
        None => "journal    none yet (`nudge add` starts one)".to_owned(),
    });
    out.line(format!(
        "last sync  {}",
        synced_at.map(when).unwrap_or_else(|| "never".into())
    ));
    out.line(format!("unsynced   {unsynced} changes"));
    out.line(match watcher {
        Some((pid, state)) => format!("watcher    {state} (pid {pid})"),
        None => "watcher    not running (`nudge sync --watch`)".into(),
    });
    Ok(())
}
