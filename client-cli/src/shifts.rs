//! Shift commands: add, log, done, skip, drop, edit, rm, undo, list, show.

use anyhow::{Result, bail};
use nudge_journal::when::{parse_date, parse_when, relative, rfc3339};
use nudge_journal::{Catalog, Kind, NewShift, Shift, ShiftEdit, ShiftStatus};
use serde_json::{Value, json};

use crate::cli::{EditArgs, ListArgs, ShiftWords};
use crate::output::{DIM, GOOD, ID, Out, TAG, notice, paint};
use crate::resolve::{self, announce_created, split_words, tag_refs};
use nudge_replica::{Replica, Touched};

fn kind(text: Option<&str>) -> Result<Option<Kind>> {
    text.map(|k| {
        k.parse::<Kind>()
            .map_err(|e| anyhow::anyhow!("--kind: {e}"))
    })
    .transpose()
}

fn minutes(m: Option<u32>) -> Result<Option<u32>> {
    match m {
        Some(0) => bail!("--minutes must be at least 1"),
        Some(m) if m > 24 * 60 => {
            bail!("--minutes must be at most a day (1440); a micro shift is small")
        }
        other => Ok(other),
    }
}

/// `add` and `log` (with `at` set, even to `None` for now).
pub fn add(
    session: &Replica,
    out: &mut Out,
    args: ShiftWords,
    log_at: Option<Option<String>>,
    little_yes: Option<String>,
) -> Result<()> {
    let words = split_words(&args.words)?;
    if words.text.trim().is_empty() {
        bail!("say what the shift is, e.g. nudge add \"Email Sam about UX roles\" +ux @sam");
    }
    let kind = kind(args.kind.as_deref())?;
    let minutes = minutes(args.minutes)?;
    let done = match &log_at {
        None => None,
        Some(None) => Some(session.now.zoned()),
        Some(Some(text)) => {
            Some(parse_when(text, &session.now).map_err(|e| anyhow::anyhow!("--at: {e}"))?)
        }
    };
    let created = session.write(|journal, view| {
        let (ideas, people) = tag_refs(&view.catalog, &words.ideas, &words.people, args.new)?;
        let created = journal.add_shift(
            &session.now,
            NewShift {
                text: words.text.clone(),
                kind,
                minutes,
                note: args.note.clone(),
                little_yes: little_yes.clone(),
                ideas,
                people,
                done: done.clone(),
            },
        )?;
        let touched = Touched::Shifts(vec![created.id.clone()]);
        Ok((created, touched))
    })?;
    announce_created(&created);
    let short = session.shift_short_id(&created.id)?;
    let verb = if log_at.is_some() {
        "Logged"
    } else {
        "Planned"
    };
    let verb = if log_at.is_some() {
        paint(GOOD, verb)
    } else {
        verb.to_owned()
    };
    out.line(format!("{verb} {} {}", paint(ID, &short), words.text));
    if log_at.is_some() {
        out.line(progress(session)?);
    }
    out.line(&created.id);
    Ok(())
}

/// `done`.
pub fn done(
    session: &Replica,
    out: &mut Out,
    id: &str,
    little_yes: Option<String>,
    at: Option<String>,
) -> Result<()> {
    let id = resolve::shift_id(session, id)?;
    let at = at
        .map(|t| parse_when(&t, &session.now).map_err(|e| anyhow::anyhow!("--at: {e}")))
        .transpose()?;
    let shift = session.write(|journal, _| {
        journal.set_status(
            &session.now,
            &id,
            ShiftStatus::Done,
            at.clone(),
            little_yes.as_deref(),
        )?;
        Ok((journal.shift(&id)?, Touched::Shifts(vec![id.clone()])))
    })?;
    let text = shift.map(|s| s.text).unwrap_or_default();
    out.line(format!(
        "{} {} {text}",
        paint(GOOD, "Done"),
        paint(ID, session.shift_short_id(&id)?)
    ));
    out.line(progress(session)?);
    Ok(())
}

/// The line `log` and `done` confirm with: the week so far against the goal, and the streak.
fn progress(session: &Replica) -> Result<String> {
    let view = session.require_view()?;
    let today = session.now.today();
    let week = nudge_journal::week(&view.summary, &view.catalog, today);
    let streak = nudge_journal::streak(&view.summary, today);
    Ok(format!(
        "{}/{} micro shifts this week · streak {streak} day{}",
        week.done,
        week.goal,
        if streak == 1 { "" } else { "s" }
    ))
}

/// `skip` and `drop`.
pub fn set_status(session: &Replica, out: &mut Out, id: &str, status: ShiftStatus) -> Result<()> {
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

/// `edit`.
pub fn edit(session: &Replica, out: &mut Out, args: EditArgs) -> Result<()> {
    let id = resolve::shift_id(session, &args.id)?;
    let tags = split_words(&args.tags)?;
    if !tags.text.is_empty() {
        bail!(
            "{:?} is neither +idea nor @person; to change the text use --text",
            tags.text
        );
    }
    let untag = split_words(&args.untag)?;
    if !untag.text.is_empty() {
        bail!("--untag takes +idea or @person, not {:?}", untag.text);
    }
    let kind = kind(args.kind.as_deref())?;
    let minutes = minutes(args.minutes)?;
    let nothing = args.text.is_none()
        && kind.is_none()
        && minutes.is_none()
        && args.note.is_none()
        && args.little_yes.is_none()
        && tags.ideas.is_empty()
        && tags.people.is_empty()
        && untag.ideas.is_empty()
        && untag.people.is_empty();
    if nothing {
        bail!(
            "nothing to change: give --text, --kind, --minutes, --note, --little-yes, +idea, @person or --untag"
        );
    }
    let created = session.write(|journal, view| {
        let (add_ideas, add_people) = tag_refs(&view.catalog, &tags.ideas, &tags.people, args.new)?;
        let mut remove_ideas = Vec::new();
        for name in &untag.ideas {
            remove_ideas.extend(
                view.catalog
                    .idea_group(&resolve::idea(&view.catalog, name)?.id),
            );
        }
        let mut remove_people = Vec::new();
        for name in &untag.people {
            remove_people.extend(
                view.catalog
                    .person_group(&resolve::person(&view.catalog, name)?.id),
            );
        }
        let created = journal.edit_shift(
            &session.now,
            &id,
            ShiftEdit {
                text: args.text.clone(),
                kind,
                minutes,
                note: args.note.clone(),
                little_yes: args.little_yes.clone(),
                add_ideas,
                add_people,
                remove_ideas,
                remove_people,
            },
        )?;
        Ok((created, Touched::Shifts(vec![id.clone()])))
    })?;
    announce_created(&created);
    let shift = session.cached_shift(&id)?;
    out.line(format!(
        "Edited {} {}",
        paint(ID, session.shift_short_id(&id)?),
        shift.map(|s| s.text).unwrap_or_default()
    ));
    Ok(())
}

/// `rm`.
pub fn remove(session: &Replica, out: &mut Out, id: &str) -> Result<()> {
    let id = resolve::shift_id(session, id)?;
    let short = session.shift_short_id(&id)?;
    let text = session
        .cached_shift(&id)?
        .map(|s| s.text)
        .unwrap_or_default();
    session.write(|journal, _| {
        journal.remove_shift(&session.now, &id)?;
        Ok(((), Touched::Shifts(vec![id.clone()])))
    })?;
    out.line(format!("Removed {} {text}", paint(ID, short)));
    notice("`nudge undo` brings it back");
    Ok(())
}

/// `undo`.
pub fn undo(session: &Replica, out: &mut Out) -> Result<()> {
    if session.journal_id()?.is_none() {
        bail!("nothing to undo: the journal is empty");
    }
    let undone = session.write(|journal, _| Ok((journal.undo(&session.now)?, Touched::All)))?;
    out.line(format!("Undid: {}", undone.message));
    Ok(())
}

/// A shift as `--json` shows it.
pub fn shift_json(session: &Replica, catalog: &Catalog, shift: &Shift) -> Result<Value> {
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
    }))
}

fn tags_text(catalog: &Catalog, shift: &Shift) -> String {
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

fn mark(status: ShiftStatus) -> &'static str {
    match status {
        ShiftStatus::Planned => "[ ]",
        ShiftStatus::Done => "[x]",
        ShiftStatus::Skipped => "[-]",
        ShiftStatus::Dropped => "[~]",
    }
}

/// `list`.
pub fn list(session: &Replica, out: &mut Out, args: ListArgs) -> Result<()> {
    let Some(view) = session.view()? else {
        if args.json {
            out.json(&Vec::<Value>::new())?;
        } else {
            notice("No shifts yet. Plan one: nudge add \"Email Sam about UX roles\" +ux @sam");
        }
        return Ok(());
    };
    let filters = split_words(&args.tags)?;
    if !filters.text.is_empty() {
        bail!(
            "{:?} is not a filter: list takes +idea and @person",
            filters.text
        );
    }
    let mut idea_ids = Vec::new();
    for name in &filters.ideas {
        idea_ids.push(resolve::idea(&view.catalog, name)?.id.clone());
    }
    let mut person_ids = Vec::new();
    for name in &filters.people {
        person_ids.push(resolve::person(&view.catalog, name)?.id.clone());
    }
    let since = args
        .since
        .as_deref()
        .map(|s| parse_date(s, &session.now).map_err(|e| anyhow::anyhow!("--since: {e}")))
        .transpose()?
        .map(|d| d.to_string());
    let only_planned = !args.all && !args.done;
    let mut shifts: Vec<Shift> = if only_planned {
        view.summary.open.values().cloned().collect()
    } else {
        session.all_shifts()?
    };
    shifts.retain(|s| {
        let status_ok = args.all
            || (args.done && s.status == ShiftStatus::Done)
            || (only_planned && s.status == ShiftStatus::Planned);
        let ideas_ok = idea_ids
            .iter()
            .all(|want| s.ideas.iter().any(|raw| view.catalog.idea_id(raw) == want));
        let people_ok = person_ids.iter().all(|want| {
            s.people
                .iter()
                .any(|raw| view.catalog.person_id(raw) == want)
        });
        let since_ok = since.as_ref().is_none_or(|since| {
            let date = match &s.done {
                Some(d) => d.date.clone(),
                None => session.now.local_date(s.created_at_ms).to_string(),
            };
            date >= *since
        });
        status_ok && ideas_ok && people_ok && since_ok
    });
    let when = |s: &Shift| s.done.as_ref().map_or(s.created_at_ms, |d| d.at_ms);
    shifts.sort_by(|a, b| when(a).cmp(&when(b)).then_with(|| a.id.cmp(&b.id)));
    if args.json {
        let items = shifts
            .iter()
            .map(|s| shift_json(session, &view.catalog, s))
            .collect::<Result<Vec<_>>>()?;
        return out.json(&items);
    }
    if shifts.is_empty() {
        notice(if only_planned {
            "Nothing planned. Add a five-minute step: nudge add \"...\", or try nudge suggest"
        } else {
            "No shifts match."
        });
        return Ok(());
    }
    for s in &shifts {
        let age = match &s.done {
            Some(d) => format!("done {}", relative(d.at_ms, &session.now)),
            None => format!("added {}", relative(s.created_at_ms, &session.now)),
        };
        let tags = tags_text(&view.catalog, s);
        out.line(format!(
            "{} {} {}{}  {}",
            paint(ID, format!("{:<6}", session.shift_short_id(&s.id)?)),
            mark(s.status),
            s.text,
            if tags.is_empty() {
                String::new()
            } else {
                format!("  {}", paint(TAG, tags))
            },
            paint(DIM, format!("{} · {}m · {age}", s.kind, s.minutes)),
        ));
    }
    Ok(())
}

/// `show`.
pub fn show(session: &Replica, out: &mut Out, id: &str, json: bool) -> Result<()> {
    let view = session.require_view()?;
    let id = resolve::shift_id(session, id)?;
    let Some(shift) = session.cached_shift(&id)? else {
        bail!("no such shift: {id}");
    };
    if json {
        return out.json(&shift_json(session, &view.catalog, &shift)?);
    }
    out.line(format!(
        "{} {} {}",
        paint(ID, session.shift_short_id(&id)?),
        mark(shift.status),
        shift.text
    ));
    out.line(format!("  id        {}", shift.id));
    out.line(format!("  status    {}", shift.status));
    out.line(format!(
        "  kind      {} · {} minutes",
        shift.kind, shift.minutes
    ));
    out.line(format!(
        "  added     {} ({})",
        rfc3339(shift.created_at_ms),
        relative(shift.created_at_ms, &session.now)
    ));
    if let Some(d) = &shift.done {
        out.line(format!(
            "  done      {} ({}, {})",
            d.date,
            relative(d.at_ms, &session.now),
            d.tz
        ));
    }
    let tags = tags_text(&view.catalog, &shift);
    if !tags.is_empty() {
        out.line(format!("  tags      {}", paint(TAG, tags)));
    }
    if let Some(note) = &shift.note {
        out.line(format!("  note      {note}"));
    }
    if let Some(yes) = &shift.little_yes {
        out.line(format!("  little yes {yes}"));
    }
    Ok(())
}
