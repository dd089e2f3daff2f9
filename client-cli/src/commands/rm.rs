//! `nudge rm`: remove a shift.

use anyhow::Result;
use clap::Args;
use nudge_replica::{Replica, Touched};

use crate::output::{ID, Out, notice, paint};
use crate::resolve;

/// `nudge rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// The shift's id or prefix.
    #[arg(add = crate::complete::shift_ids())]
    pub id: String,
}

/// `rm`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: RmArgs) -> Result<()> {
    let id = resolve::shift_id(session, &args.id)?;
    let short = session.shift_short_id(&id)?;
    let text = session
        .cached_shift(&id)?
        .map(|s| s.text)
        .unwrap_or_default();
    session.write(|journal, _| {
        journal.remove_shift(&session.now, &id)?;
        Ok(((), Touched::Shifts(vec![id.clone()])))
    })?;
    out.line(format!("Removed {} {text}", paint(ID, short)));
    notice("`nudge undo` brings it back");
    Ok(())
}
