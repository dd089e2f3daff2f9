//! `nudge week`: the week against the goal, per day and per idea, and the streak.

use anyhow::{Result, bail};
use clap::Args;
use nudge_journal::{Catalog, Summary};
use nudge_replica::Replica;
use serde_json::json;

use crate::output::{DIM, Out, TAG, paint};

/// `nudge week`.
#[derive(Args, Debug)]
pub struct WeekArgs {
    /// Show this many weeks, most recent first.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub last: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `week`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: WeekArgs) -> Result<()> {
    let WeekArgs {
        last,
        json: as_json,
    } = args;
    if last == 0 || last > 520 {
        bail!("--last takes a number of weeks from 1 to 520");
    }
    let (catalog, summary) = match session.view()? {
        Some(view) => (view.catalog, view.summary),
        None => (Catalog::default(), Summary::default()),
    };
    let today = session.now.today();
    let weeks = nudge_journal::weeks(&summary, &catalog, today, last);
    let streak = nudge_journal::streak(&summary, &catalog.paused_days(), today);
    let doors = catalog.doors_closed();
    let unseen = crate::cheers::unseen(session)?;
    if as_json {
        return out.json(
            &json!({ "weeks": weeks, "streak": streak, "doors_closed": doors, "new_cheers": unseen }),
        );
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
    if let Some(line) = crate::cheers::headline(&unseen) {
        out.line(crate::output::paint(crate::output::GOOD, line));
    }
    Ok(())
}
