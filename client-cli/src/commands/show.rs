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
    if json {
        return out.json(&shift_json(session, &view.catalog, &shift)?);
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
    Ok(())
}
