//! `nudge next`: the one shift that fits this moment (the planned one that has waited
//! longest and fits the minutes at hand, else a suggestion), with the one command that
//! marks it done.

use anyhow::Result;
use clap::Args;
use nudge_journal::{Catalog, Next, STALLED_AFTER_DAYS, Summary};
use nudge_replica::Replica;

use crate::output::{DIM, ID, Out, TAG, notice, paint, shell_word};
use crate::shifts::tags_text;

/// `nudge next`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  nudge next                 five minutes in a queue: what to do\n  nudge next --minutes 20    a longer gap\n  nudge next --start         and a five-minute timer for it"
)]
pub struct NextArgs {
    /// The minutes you have.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub minutes: u32,
    /// Print JSON: {"source": "planned" or "suggestion", "text", "command", ...}.
    #[arg(long)]
    pub json: bool,
    /// Start an N-minute timer for it (a progress bar; Ctrl-C stops it), then say whether
    /// it was done.
    #[arg(long, conflicts_with = "json")]
    pub start: bool,
}

/// `next`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: NextArgs) -> Result<()> {
    let (catalog, summary) = match session.view()? {
        Some(view) => (view.catalog, view.summary),
        None => (Catalog::default(), Summary::default()),
    };
    let minutes = args.minutes;
    match nudge_journal::next(&catalog, &summary, &session.now, minutes) {
        Some(Next::Planned {
            shift,
            waiting_days,
        }) => {
            let short = session.shift_short_id(&shift.id)?;
            let command = format!("nudge done {short}");
            let stalled = waiting_days > STALLED_AFTER_DAYS;
            if args.json {
                return out.json(&serde_json::json!({
                    "source": "planned",
                    "id": shift.id,
                    "short_id": short,
                    "text": shift.text,
                    "minutes": shift.minutes,
                    "waiting_days": waiting_days,
                    "stalled": stalled,
                    "command": command,
                }));
            }
            let tags = tags_text(&catalog, &shift);
            out.line(format!(
                "{} {}{}",
                paint(ID, &short),
                shift.text,
                if tags.is_empty() {
                    String::new()
                } else {
                    format!("  {}", paint(TAG, tags))
                }
            ));
            let waited = match waiting_days {
                0 => "planned today".to_owned(),
                1 => "waiting 1 day".to_owned(),
                n => format!("waiting {n} days"),
            };
            out.line(paint(
                DIM,
                format!(
                    "  {} · {}m of your {minutes} · {waited}",
                    shift.kind, shift.minutes
                ),
            ));
            if stalled {
                notice(format!(
                    "It has waited over a week: too big? Make it smaller: nudge shrink {short} \"a smaller first step\""
                ));
            }
            out.line(format!("Done? {command}"));
            if args.start {
                return super::next_timer::start(
                    session,
                    out,
                    super::next_timer::Timed::Planned(shift.id.clone()),
                    minutes,
                    &command,
                );
            }
        }
        Some(Next::Suggested(suggestion)) => {
            let mut words = vec![
                "nudge".to_owned(),
                "log".to_owned(),
                shell_word(&suggestion.text),
            ];
            for id in &suggestion.ideas {
                if let Some(idea) = catalog.idea(id) {
                    words.push(shell_word(&format!("+{}", idea.title)));
                }
            }
            for id in &suggestion.people {
                if let Some(person) = catalog.person(id) {
                    words.push(shell_word(&format!("@{}", person.name)));
                }
            }
            let command = words.join(" ");
            if args.json {
                return out.json(&serde_json::json!({
                    "source": "suggestion",
                    "text": suggestion.text,
                    "command": command,
                }));
            }
            notice(format!("Nothing planned fits {minutes} minutes; try this:"));
            out.line(&suggestion.text);
            out.line(format!("Done? {command}"));
            if args.start {
                return super::next_timer::start(
                    session,
                    out,
                    super::next_timer::Timed::Suggested(suggestion),
                    minutes,
                    &command,
                );
            }
            notice("Or plan it for later: nudge suggest --take 1");
        }
        None => {
            if args.json {
                return out.json(&serde_json::Value::Null);
            }
            notice("Nothing to suggest. Plan a five-minute step: nudge add \"...\"");
        }
    }
    Ok(())
}
