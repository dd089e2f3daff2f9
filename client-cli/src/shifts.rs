//! What the shift commands (`commands/add.rs` ... `show.rs`) share: parsing a kind and
//! minutes, the progress line, skip and drop, a shift as JSON and as a line.

use anyhow::{Result, bail};
use nudge_journal::when::rfc3339;
use nudge_journal::{Catalog, Kind, Shift, ShiftStatus};
use nudge_replica::{Replica, Touched};
use serde_json::{Value, json};

use crate::output::{ID, Out, paint};
use crate::resolve;

pub(crate) fn kind(text: Option<&str>) -> Result<Option<Kind>> {
    text.map(|k| {
        k.parse::<Kind>()
            .map_err(|e| anyhow::anyhow!("--kind: {e}"))
    })
    .transpose()
}

pub(crate) fn minutes(m: Option<u32>) -> Result<Option<u32>> {
    match m {
        Some(0) => bail!("--minutes must be at least 1"),
        Some(m) if m > 24 * 60 => {
            bail!("--minutes must be at most a day (1440); a micro shift is small")
        }
        other => Ok(other),
    }
}

/// The line `log` and `done` confirm with: the week so far against the goal, and the streak.
pub(crate) fn progress(session: &Replica) -> Result<String> {
    let view = session.require_view()?;
    let today = session.now.today();
    let week = nudge_journal::week(&view.summary, &view.catalog, today);
    let streak = nudge_journal::streak(&view.summary, &view.catalog.paused_days(), today);
    Ok(format!(
        "{}/{} micro shifts this week · streak {streak} day{}",
        week.done,
        week.goal,
        if streak == 1 { "" } else { "s" }
    ))
}

/// `skip` and `drop`.
pub(crate) fn set_status(
    session: &Replica,
    out: &mut Out,
    id: &str,
    status: ShiftStatus,
) -> Result<()> {
    let id = resolve::shift_id(session, id)?;
    let shift = session.write(|journal, _| {
        journal.set_status(&session.now, &id, status, None, None)?;
        Ok((journal.shift(&id)?, Touched::Shifts(vec![id.clone()])))
    })?;
    let verb = if status == ShiftStatus::Skipped {
        "Skipped"
    } else {
        "Dropped"
    };
    let text = shift.map(|s| s.text).unwrap_or_default();
    out.line(format!(
        "{verb} {} {text}",
        paint(ID, session.shift_short_id(&id)?)
    ));
    Ok(())
}

/// A shift as `--json` shows it.
pub(crate) fn shift_json(session: &Replica, catalog: &Catalog, shift: &Shift) -> Result<Value> {
    let mut ideas: Vec<Value> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for raw in &shift.ideas {
        let id = catalog.idea_id(raw);
        if seen.insert(id.to_owned()) {
            ideas.push(json!({
                "id": id,
                "title": catalog.idea(id).map(|i| i.title.clone()),
            }));
        }
    }
    let mut people: Vec<Value> = Vec::new();
    for raw in &shift.people {
        let id = catalog.person_id(raw);
        if seen.insert(id.to_owned()) {
            people.push(json!({
                "id": id,
                "name": catalog.person(id).map(|p| p.name.clone()),
            }));
        }
    }
    Ok(json!({
        "id": shift.id,
        "short_id": session.shift_short_id(&shift.id)?,
        "text": shift.text,
        "status": shift.status,
        "kind": shift.kind,
        "minutes": shift.minutes,
        "created_at": rfc3339(shift.created_at_ms),
        "done_at": shift.done.as_ref().map(|d| rfc3339(d.at_ms)),
        "done_date": shift.done.as_ref().map(|d| d.date.clone()),
        "done_tz": shift.done.as_ref().map(|d| d.tz.clone()),
        "ideas": ideas,
        "people": people,
        "note": shift.note,
        "little_yes": shift.little_yes,
        "shrunk_from": shift.shrunk_from,
    }))
}

pub(crate) fn tags_text(catalog: &Catalog, shift: &Shift) -> String {
    let mut tags: Vec<String> = Vec::new();
    for raw in &shift.ideas {
        if let Some(idea) = catalog.idea(raw) {
            let tag = format!("+{}", idea.title);
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
    }
    for raw in &shift.people {
        if let Some(person) = catalog.person(raw) {
            let tag = format!("@{}", person.name);
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
    }
    tags.join(" ")
}

pub(crate) fn mark(status: ShiftStatus) -> &'static str {
    match status {
        ShiftStatus::Planned => "[ ]",
        ShiftStatus::Done => "[x]",
        ShiftStatus::Skipped => "[-]",
        ShiftStatus::Dropped => "[~]",
    }
}
