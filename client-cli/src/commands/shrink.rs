//! `nudge shrink`: a shift too big to start becomes a smaller first step, planned as a new
//! shift linked to it (`shrunk_from`); the big one stays, and `show` lists its steps.

use anyhow::{Result, bail};
use clap::Args;
use nudge_journal::{NewShift, ShiftStatus, TagRef};
use nudge_replica::{Replica, Touched};

use super::add::ShiftWords;
use crate::output::{DIM, ID, Out, paint};
use crate::resolve::{self, announce_created, split_words, tag_refs};
use crate::shifts::{kind, minutes};

/// `nudge shrink`.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  nudge shrink 3f2a \"Choose who to email first\"\n  nudge shrink 3f2a \"Put a 15-minute slot in the calendar\" --kind other"
)]
pub struct ShrinkArgs {
    /// The shift that is too big (its id or prefix); it stays planned.
    #[arg(add = crate::complete::shift_ids())]
    pub id: String,
    /// The smaller first step: text, then +idea and @person tags (the big shift's are
    /// kept too).
    #[command(flatten)]
    pub step: ShiftWords,
}

/// `shrink`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: ShrinkArgs) -> Result<()> {
    let id = resolve::shift_id(session, &args.id)?;
    let Some(big) = session.cached_shift(&id)? else {
        bail!("no such shift: {id}");
    };
    let big_short = session.shift_short_id(&big.id)?;
    if big.status != ShiftStatus::Planned {
        bail!(
            "{big_short} is {}: only a planned shift can be shrunk; plan the next step with nudge add \"...\"",
            big.status
        );
    }
    let words = split_words(&args.step.words)?;
    if words.text.trim().is_empty() {
        bail!(
            "say what the smaller step is, e.g. nudge shrink {big_short} \"Choose who to email first\""
        );
    }
    let kind = kind(args.step.kind.as_deref())?;
    let minutes = minutes(args.step.minutes)?;
    let created = session.write(|journal, view| {
        let (mut ideas, mut people) =
            tag_refs(&view.catalog, &words.ideas, &words.people, args.step.new)?;
        // The big shift's ideas and people, once each.
        for raw in &big.ideas {
            let tag = TagRef::Existing(view.catalog.idea_id(raw).to_owned());
            if !ideas.contains(&tag) {
                ideas.push(tag);
            }
        }
        for raw in &big.people {
            let tag = TagRef::Existing(view.catalog.person_id(raw).to_owned());
            if !people.contains(&tag) {
                people.push(tag);
            }
        }
        let created = journal.add_shift(
            &session.now,
            NewShift {
                text: words.text.clone(),
                kind,
                minutes,
                note: args.step.note.clone(),
                ideas,
                people,
                shrunk_from: Some(big.id.clone()),
                ..NewShift::default()
            },
        )?;
        let touched = Touched::Shifts(vec![created.id.clone()]);
        Ok((created, touched))
    })?;
    announce_created(&created);
    let short = session.shift_short_id(&created.id)?;
    out.line(format!("Planned {} {}", paint(ID, &short), words.text));
    out.line(paint(
        DIM,
        format!("  a smaller first step of {big_short} {}", big.text),
    ));
    out.line(&created.id);
    Ok(())
}
