//! `nudge edit`: change a shift.

use anyhow::{Result, bail};
use clap::Args;
use nudge_journal::ShiftEdit;
use nudge_replica::{Replica, Touched};

use super::one_of;
use crate::output::{ID, Out, paint};
use crate::resolve::{self, announce_created, split_words, tag_refs};
use crate::shifts::{kind, minutes};

/// `nudge edit`.
#[derive(Args, Debug)]
pub struct EditArgs {
    /// The shift's id or prefix.
    #[arg(add = crate::complete::shift_ids())]
    pub id: String,
    /// Tags to add: +idea, @person.
    #[arg(value_name = "+IDEA|@PERSON", add = crate::complete::tag_words())]
    pub tags: Vec<String>,
    /// New text.
    #[arg(long)]
    pub text: Option<String>,
    /// Tags to remove: --untag +idea --untag @person.
    #[arg(long, value_name = "+IDEA|@PERSON", allow_hyphen_values = true)]
    pub untag: Vec<String>,
    /// New kind.
    #[arg(long, ignore_case = true, value_parser = one_of(nudge_journal::Kind::ALL.iter().map(|k| k.as_str())))]
    pub kind: Option<String>,
    /// New minutes.
    #[arg(long)]
    pub minutes: Option<u32>,
    /// New note ("" removes it).
    #[arg(long)]
    pub note: Option<String>,
    /// New little yes ("" removes it).
    #[arg(long)]
    pub little_yes: Option<String>,
    /// Create +ideas and @people even when a similar name exists.
    #[arg(long)]
    pub new: bool,
}

/// `edit`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: EditArgs) -> Result<()> {
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
