//! `nudge done`: mark a shift done.

use anyhow::Result;
use clap::Args;
use nudge_journal::ShiftStatus;
use nudge_journal::when::parse_when;
use nudge_replica::{Replica, Touched};

use crate::output::{GOOD, ID, Out, paint};
use crate::resolve;
use crate::shifts::progress;

/// `nudge done`.
#[derive(Args, Debug)]
pub struct DoneArgs {
    /// The shift's id (or a unique prefix of at least 4 characters).
    #[arg(add = crate::complete::planned_ids())]
    pub id: String,
    /// What it sparked.
    #[arg(long, value_name = "TEXT")]
    pub little_yes: Option<String>,
    /// When it was made (default: now).
    #[arg(long, value_name = "WHEN")]
    pub at: Option<String>,
}

/// `done`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: DoneArgs) -> Result<()> {
    let DoneArgs { id, little_yes, at } = args;
    let id = resolve::shift_id(session, &id)?;
    let at = at
        .map(|t| parse_when(&t, &session.now).map_err(|e| anyhow::anyhow!("--at: {e}")))
        .transpose()?;
    let shift = session.write(|journal, _| {
        journal.set_status(
            &session.now,
            &id,
            ShiftStatus::Done,
            at.clone(),
            little_yes.as_deref(),
        )?;
        Ok((journal.shift(&id)?, Touched::Shifts(vec![id.clone()])))
    })?;
    let text = shift.map(|s| s.text).unwrap_or_default();
    out.line(format!(
        "{} {} {text}",
        paint(GOOD, "Done"),
        paint(ID, session.shift_short_id(&id)?)
    ));
    out.line(progress(session)?);
    Ok(())
}
