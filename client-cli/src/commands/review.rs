//! `nudge review`: the weekly review, a page worth reading on Sunday evening
//! (`nudge_journal::review` gathers it; this prints it).

use anyhow::Result;
use clap::Args;
use jiff::ToSpan;
use nudge_journal::cheers::Cheer;
use nudge_journal::when::parse_date;
use nudge_journal::{Catalog, Review, Summary};
use nudge_replica::Replica;

use crate::output::{DIM, GOOD, ID, Out, TAG, paint, shell_word};

/// `nudge review`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  nudge review                 this week, so far\n  nudge review --week last     Monday morning: the week that ended\n  nudge review --week 2026-11-02"
)]
pub struct ReviewArgs {
    /// Which week: `this` (so far), `last`, or a day in it (2026-11-02, "3w ago", ...).
    #[arg(long, default_value = "this", value_name = "this|last|DAY")]
    pub week: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `review`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: ReviewArgs) -> Result<()> {
    let today = session.now.today();
    let date = match args.week.trim().to_ascii_lowercase().as_str() {
        "this" => today,
        "last" => today.checked_sub(7.days())?,
        other => parse_date(other, &session.now).map_err(|e| anyhow::anyhow!("--week: {e}"))?,
    };
    let (catalog, summary) = match session.view()? {
        Some(view) => (view.catalog, view.summary),
        None => (Catalog::default(), Summary::default()),
    };
    let shifts = session.all_shifts()?;
    let review = nudge_journal::review(&catalog, &summary, &shifts, &session.now, date);
    let (start, end) = (review.week.start, review.week.end);
    let cheers: Vec<Cheer> = crate::cheers::received(session)?
        .into_iter()
        .filter(|c| (start..=end).contains(&session.now.local_date(c.at_ms)))
        .collect();
    if args.json {
        let mut value = serde_json::to_value(&review)?;
        value["cheers"] = serde_json::to_value(&cheers)?;
        return out.json(&value);
    }
    print(session, out, &review, &cheers)
}

fn print(session: &Replica, out: &mut Out, r: &Review, cheers: &[Cheer]) -> Result<()> {
    let w = &r.week;
    out.line(format!("Week of {} to {}", w.start, w.end));
    out.line(crate::ui::headline(
        w.done,
        w.goal,
        format!(
            "  {}/{} micro shifts: {}",
            w.done,
            w.goal,
            nudge_journal::versus(w.done, r.before.done)
        ),
    ));
    let paused: Vec<String> = w
        .days
        .iter()
        .filter(|d| d.paused)
        .map(|d| d.date.strftime("%a %d").to_string())
        .collect();
    if !paused.is_empty() {
        out.line(paint(
            DIM,
            format!("  paused: {} (kept in the streak)", paused.join(", ")),
        ));
    }
    for idea in &w.ideas {
        let before = r
            .before
            .ideas
            .iter()
            .find(|i| i.id == idea.id)
            .map_or(0, |i| i.done);
        out.line(format!(
            "  {} {}  {}",
            paint(TAG, format!("+{}", idea.title)),
            idea.done,
            paint(DIM, format!("(week before: {before})"))
        ));
    }
    if !r.little_yeses.is_empty() {
        out.line("");
        out.line("Little yeses");
        for yes in &r.little_yeses {
            out.line(format!(
                "  {}  {}",
                paint(DIM, &yes.date),
                paint(GOOD, &yes.text)
            ));
        }
    }
    if !r.doors_closed.is_empty() {
        out.line("");
        out.line("Doors closed (each one a relief)");
        for door in &r.doors_closed {
            match &door.note {
                Some(note) => out.line(format!("  +{}: {note}", door.title)),
                None => out.line(format!("  +{}", door.title)),
            }
        }
    }
    out.line("");
    if r.reached.is_empty() {
        out.line("People reached: nobody this week");
    } else {
        let names: Vec<String> = r
            .reached
            .iter()
            .map(|p| match p.shifts {
                1 => format!("@{}", p.name),
                n => format!("@{} ({n})", p.name),
            })
            .collect();
        out.line(format!("People reached: {}", names.join(", ")));
    }
    if !r.stale.is_empty() {
        out.line("");
        out.line("Not contacted for 30 days");
        for p in &r.stale {
            let last = p.last_contact.as_deref().unwrap_or("never");
            out.line(format!("  @{} (last contact {last})", p.name));
            out.line(paint(
                DIM,
                format!("    nudge add {}", shell_word(&p.shift)),
            ));
        }
    }
    if !r.stalled.is_empty() {
        out.line("");
        out.line("Stalled (planned over a week ago)");
        for s in &r.stalled {
            let short = session.shift_short_id(&s.id)?;
            out.line(format!(
                "  {} {}  {}",
                paint(ID, &short),
                s.text,
                paint(DIM, format!("{} days", s.waiting_days))
            ));
            out.line(paint(
                DIM,
                format!("    nudge shrink {short} \"a smaller first step\""),
            ));
        }
    }
    if !cheers.is_empty() {
        out.line("");
        out.line("Cheers from your buddies");
        for c in cheers {
            out.line(format!(
                "  {}  {}",
                paint(GOOD, crate::cheers::quoted(c)),
                paint(DIM, &c.from)
            ));
        }
    }
    out.line("");
    out.line(r.pace.sentence());
    Ok(())
}
