//! `nudge show`: one shift.

use anyhow::{Result, bail};
use clap::Args;
use nudge_journal::when::{relative, rfc3339};
use nudge_replica::Replica;

use crate::output::{ID, Out, TAG, paint};
use crate::resolve;
use crate::shifts::{mark, shift_json, tags_text};

/// `nudge show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The shift's id or prefix.
    #[arg(add = crate::complete::shift_ids())]
    pub id: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `show`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: ShowArgs) -> Result<()> {
    let ShowArgs { id, json } = args;
    let id = id.as_str();
    let view = session.require_view()?;
    let id = resolve::shift_id(session, id)?;
    let Some(shift) = session.cached_shift(&id)? else {
        bail!("no such shift: {id}");
    };
    // The smaller steps it was shrunk into, oldest first.
    let mut steps: Vec<_> = session
        .all_shifts()?
        .into_iter()
        .filter(|s| s.shrunk_from.as_deref() == Some(shift.id.as_str()))
        .collect();
    steps.sort_by(|a, b| {
        a.created_at_ms
            .cmp(&b.created_at_ms)
            .then_with(|| a.id.cmp(&b.id))
    });
    if json {
        let mut shown = shift_json(session, &view.catalog, &shift)?;
        shown["shrunk_into"] = steps.iter().map(|s| s.id.clone()).collect();
        return out.json(&shown);
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
    if let Some(from) = &shift.shrunk_from {
        match session.cached_shift(from)? {
            Some(big) => out.line(format!(
                "  shrunk from {} {}",
                paint(ID, session.shift_short_id(from)?),
                big.text
            )),
            None => out.line(format!("  shrunk from {from} (removed)")),
        }
    }
    for step in &steps {
        out.line(format!(
            "  shrunk into {} {} {}",
            paint(ID, session.shift_short_id(&step.id)?),
            mark(step.status),
            step.text
        ));
    }
    Ok(())
}
