//! `nudge pause`: days off planned ahead, kept in the streak (`nudge_journal::Pause` holds
//! the rules: from tomorrow on, at most 7 paused days in any 30). Without `--from` it lists
//! the pauses; `--cancel ID` takes back one that has not begun.

use anyhow::{Result, anyhow};
use clap::Args;
use nudge_journal::when::parse_day_ahead;
use nudge_journal::{MAX_PAUSED_DAYS, PAUSE_WINDOW_DAYS, Pause};
use nudge_replica::{Replica, Touched};
use serde_json::json;

use crate::output::{DIM, ID, Out, paint};

/// `nudge pause`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  nudge pause --from friday --to sunday --note \"Family weekend\"\n  nudge pause --from 2026-12-24 --to 2026-12-26\n  nudge pause                  list the pauses\n  nudge pause --cancel 3f2a    take back one that has not begun"
)]
pub struct PauseArgs {
    /// The first day off (tomorrow at the earliest): tomorrow, friday (the coming one),
    /// "in 3 days", 2026-12-24.
    #[arg(long, value_name = "DAY", conflicts_with = "cancel")]
    pub from: Option<String>,
    /// The last day off (default: the same as --from).
    #[arg(long, value_name = "DAY", requires = "from")]
    pub to: Option<String>,
    /// Why (stays on your devices: a buddy sees only that the day is paused).
    #[arg(long, requires = "from")]
    pub note: Option<String>,
    /// Cancel a pause that has not begun (its id or prefix, from `nudge pause`).
    #[arg(long, value_name = "ID")]
    pub cancel: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A pause as JSON; `counted` is false for one that went over the limit together with a
/// pause planned on another device ([`nudge_journal::Counted`]).
fn pause_json(p: &Pause, counted: bool) -> serde_json::Value {
    json!({
        "id": p.id,
        "from": p.from.to_string(),
        "to": p.to.to_string(),
        "days": p.days().len(),
        "note": p.note,
        "created_at": nudge_journal::when::rfc3339(p.created_at_ms),
        "counted": counted,
    })
}

fn span(p: &Pause) -> String {
    if p.from == p.to {
        p.from.strftime("%a %Y-%m-%d").to_string()
    } else {
        format!(
            "{} to {}",
            p.from.strftime("%a %Y-%m-%d"),
            p.to.strftime("%a %Y-%m-%d")
        )
    }
}

/// `pause`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: PauseArgs) -> Result<()> {
    if let Some(id) = &args.cancel {
        let pause = session.write(|journal, _| {
            let pause = journal.cancel_pause(&session.now, id)?;
            Ok((pause, Touched::Shifts(vec![])))
        })?;
        if args.json {
            return out.json(&json!({ "cancelled": pause_json(&pause, true) }));
        }
        out.line(format!("Cancelled the pause {}", span(&pause)));
        return Ok(());
    }
    let Some(from) = &args.from else {
        return list(session, out, args.json);
    };
    let day = |text: &str, flag: &str| {
        parse_day_ahead(text, &session.now).map_err(|e| anyhow!("{flag}: {e}"))
    };
    let from = day(from, "--from")?;
    let to = match &args.to {
        Some(to) => day(to, "--to")?,
        None => from,
    };
    let pause = session.write(|journal, _| {
        let pause = journal.add_pause(&session.now, from, to, args.note.as_deref())?;
        Ok((pause, Touched::Shifts(vec![])))
    })?;
    if args.json {
        return out.json(&pause_json(&pause, true));
    }
    let n = pause.days().len();
    out.line(format!(
        "Paused {} ({n} day{}): kept in your streak",
        span(&pause),
        if n == 1 { "" } else { "s" }
    ));
    out.line(paint(
        DIM,
        format!(
            "  changed your mind? nudge pause --cancel {}",
            short(&pause.id)
        ),
    ));
    Ok(())
}

fn short(id: &str) -> &str {
    nudge_journal::ids::prefix(id, 8)
}

fn list(session: &Replica, out: &mut Out, as_json: bool) -> Result<()> {
    let catalog = session.view()?.map(|v| v.catalog).unwrap_or_default();
    let counted = catalog.counted_pauses();
    let mut pauses: Vec<&Pause> = catalog.pauses.values().collect();
    pauses.sort_by(|a, b| b.from.cmp(&a.from).then_with(|| a.id.cmp(&b.id)));
    if as_json {
        let all: Vec<_> = pauses
            .iter()
            .map(|p| pause_json(p, !counted.over.contains(&p.id)))
            .collect();
        return out.json(&json!({ "pauses": all }));
    }
    if pauses.is_empty() {
        out.line("No pauses. Plan days off ahead: nudge pause --from DAY --to DAY");
        return Ok(());
    }
    let today = session.now.today();
    for p in pauses {
        let when = if counted.over.contains(&p.id) {
            "not counted: planned apart from another device's pause, it went over 7 paused days in 30 (cancel it and plan days that fit)"
        } else if p.from > today {
            "planned"
        } else if p.to >= today {
            "now"
        } else {
            "past"
        };
        let note = p
            .note
            .as_deref()
            .map(|n| format!("  {n}"))
            .unwrap_or_default();
        out.line(format!(
            "{} {}  {}{note}",
            paint(ID, short(&p.id)),
            span(p),
            paint(DIM, when)
        ));
    }
    let window = today.saturating_sub(jiff::ToSpan::days(PAUSE_WINDOW_DAYS - 1));
    let recent = counted.days.range(window..=today).count();
    if recent > 0 {
        out.line(paint(
            DIM,
            format!(
                "{recent} of {MAX_PAUSED_DAYS} paused days used in the last {PAUSE_WINDOW_DAYS} days"
            ),
        ));
    }
    Ok(())
}
