//! `nudge suggest`: a few concrete micro shifts to try next, numbered; `--take N` plans
//! line N as a shift.

use anyhow::{Result, bail};
use clap::Args;
use nudge_journal::{Catalog, NewShift, Suggestion, Summary, TagRef};
use nudge_replica::{Replica, Touched};

use crate::output::{ID, Out, notice, paint};

/// `nudge suggest`.
#[derive(Args, Debug)]
pub struct SuggestArgs {
    /// Plan suggestion number N (as `nudge suggest` numbers them today) as a shift.
    #[arg(long, value_name = "N")]
    pub take: Option<usize>,
    /// Print JSON: an array of {"n", "text"} (with --take: the planned shift's
    /// {"id", "text"}).
    #[arg(long)]
    pub json: bool,
}

/// Today's suggestions for this journal.
pub(crate) fn suggestions(session: &Replica) -> Result<Vec<Suggestion>> {
    let (catalog, summary) = match session.view()? {
        Some(view) => (view.catalog, view.summary),
        None => (Catalog::default(), Summary::default()),
    };
    Ok(nudge_journal::suggest(
        &catalog,
        &summary,
        session.now.today(),
    ))
}

/// `suggest`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: SuggestArgs) -> Result<()> {
    let suggestions = suggestions(session)?;
    if let Some(n) = args.take {
        let Some(taken) = n.checked_sub(1).and_then(|i| suggestions.get(i)) else {
            bail!(
                "there is no suggestion {n}: `nudge suggest` lists {} today",
                suggestions.len()
            );
        };
        return take(session, out, taken, args.json);
    }
    if args.json {
        let list: Vec<serde_json::Value> = suggestions
            .iter()
            .enumerate()
            .map(|(i, s)| serde_json::json!({ "n": i + 1, "text": s.text }))
            .collect();
        return out.json(&list);
    }
    for (i, s) in suggestions.iter().enumerate() {
        out.line(format!("{}. {}", i + 1, s.text));
    }
    notice("Plan one: nudge suggest --take N");
    Ok(())
}

/// Plans `taken` as a five-minute shift serving its ideas and involving its people.
pub(crate) fn take(
    session: &Replica,
    out: &mut Out,
    taken: &Suggestion,
    as_json: bool,
) -> Result<()> {
    let created = session.write(|journal, _| {
        let shift = NewShift {
            text: taken.text.clone(),
            ideas: taken.ideas.iter().cloned().map(TagRef::Existing).collect(),
            people: taken.people.iter().cloned().map(TagRef::Existing).collect(),
            ..NewShift::default()
        };
        let created = journal.add_shift(&session.now, shift)?;
        let touched = Touched::Shifts(vec![created.id.clone()]);
        Ok((created, touched))
    })?;
    let short = session.shift_short_id(&created.id)?;
    if as_json {
        return out.json(&serde_json::json!({ "id": created.id, "text": taken.text }));
    }
    out.line(format!("Planned {} {}", paint(ID, &short), taken.text));
    notice(format!("When it is done: nudge done {short}"));
    out.line(&created.id);
    Ok(())
}
