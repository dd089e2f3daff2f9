//! `nudge list`: list shifts.

use anyhow::{Result, bail};
use clap::Args;
use nudge_journal::when::{parse_date, relative};
use nudge_journal::{STALLED_AFTER_DAYS, Shift, ShiftStatus, waiting_days};
use nudge_replica::Replica;
use serde_json::Value;

use crate::output::{DIM, ID, Out, TAG, notice, paint};
use crate::resolve::{self, split_words};
use crate::shifts::{mark, shift_json, tags_text};

/// Done shifts `list --done` shows unless told otherwise.
const DONE_LIMIT: usize = 20;

/// `nudge list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Filters: +idea, @person.
    #[arg(value_name = "+IDEA|@PERSON", add = crate::complete::tag_words())]
    pub tags: Vec<String>,
    /// Every shift, whatever its status (with --done: every done shift, no limit).
    #[arg(long, conflicts_with = "planned")]
    pub all: bool,
    /// Only done shifts, newest first (the 20 newest unless --limit or --all).
    #[arg(long, conflicts_with = "planned")]
    pub done: bool,
    /// With --done: how many of the newest to show (0: all).
    #[arg(long, value_name = "N", requires = "done")]
    pub limit: Option<usize>,
    /// Only planned shifts (the default).
    #[arg(long)]
    pub planned: bool,
    /// Only shifts made (or, if not made, added) on or after this day.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `list`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: ListArgs) -> Result<()> {
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
    // `--done --all`: every done shift, unlimited.
    let every_status = args.all && !args.done;
    let mut shifts: Vec<Shift> = if only_planned {
        view.summary.open.values().cloned().collect()
    } else {
        session.all_shifts()?
    };
    shifts.retain(|s| {
        let status_ok = every_status
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
    shifts.sort_by(|a, b| a.when_ms().cmp(&b.when_ms()).then_with(|| a.id.cmp(&b.id)));
    let mut hidden = 0;
    if args.done {
        // What was made lately first; a long past is one --all away.
        shifts.reverse();
        let limit = match (args.all, args.limit) {
            (true, _) | (false, Some(0)) => usize::MAX,
            (false, Some(n)) => n,
            (false, None) => DONE_LIMIT,
        };
        hidden = shifts.len().saturating_sub(limit);
        shifts.truncate(limit);
    }
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
    let today = session.now.today();
    let mut stalled = Vec::new();
    for s in &shifts {
        let waiting = waiting_days(s, &session.now, today);
        let age = match &s.done {
            Some(d) => format!("done {}", relative(d.at_ms, &session.now)),
            None if s.status == ShiftStatus::Planned && waiting > STALLED_AFTER_DAYS => {
                stalled.push(session.shift_short_id(&s.id)?);
                format!("waiting {waiting} days: too big?")
            }
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
    if hidden > 0 {
        notice(format!(
            "{hidden} older done shift{} not shown: --limit N or --all for more",
            if hidden == 1 { "" } else { "s" }
        ));
    }
    if let Some(first) = stalled.first() {
        notice(format!(
            "{} waited over a week: make one smaller with nudge shrink {first} \"a smaller first step\"",
            if stalled.len() == 1 {
                "One shift has".to_owned()
            } else {
                format!("{} shifts have", stalled.len())
            }
        ));
    }
    Ok(())
}
