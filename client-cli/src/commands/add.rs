//! `nudge add`: plan a micro shift (and the recording `nudge log` shares).

use anyhow::{Result, bail};
use clap::Args;
use nudge_journal::NewShift;
use nudge_journal::when::parse_when;
use nudge_replica::{Replica, Touched};

use super::one_of;
use crate::output::{GOOD, ID, Out, paint};
use crate::resolve::{announce_created, split_words, tag_refs};
use crate::shifts::{kind, minutes, progress};

/// Words of a shift: text words, `+idea` and `@person` tags, in any order.
#[derive(Args, Debug)]
pub struct ShiftWords {
    /// The shift's text, then +idea and @person tags.
    #[arg(required = true, num_args = 1.., value_name = "TEXT|+IDEA|@PERSON", allow_hyphen_values = false, add = crate::complete::tag_words())]
    pub words: Vec<String>,
    /// Kind: email, call, message, event, coffee, class, apply, research, other.
    #[arg(long, ignore_case = true, value_parser = one_of(nudge_journal::Kind::ALL.iter().map(|k| k.as_str())))]
    pub kind: Option<String>,
    /// About how many minutes (default 5).
    #[arg(long)]
    pub minutes: Option<u32>,
    /// A note.
    #[arg(long)]
    pub note: Option<String>,
    /// Create +ideas and @people even when a similar name exists.
    #[arg(long)]
    pub new: bool,
}

/// `nudge add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// The shift.
    #[command(flatten)]
    pub shift: ShiftWords,
}

/// Plans a shift, or (`log_at` set, even to `None` for now) logs one made.
pub(crate) fn record(
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
                shrunk_from: None,
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

/// `nudge add`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: AddArgs) -> Result<()> {
    record(session, out, args.shift, None, None)
}
