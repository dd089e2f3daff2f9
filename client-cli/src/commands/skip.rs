//! `nudge skip`: let a shift go this time.

use anyhow::Result;
use clap::Args;
use nudge_replica::Replica;

use crate::output::Out;

/// `nudge skip`.
#[derive(Args, Debug)]
pub struct SkipArgs {
    /// The shift's id or prefix.
    #[arg(add = crate::complete::planned_ids())]
    pub id: String,
}

/// `nudge skip`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: SkipArgs) -> Result<()> {
    crate::shifts::set_status(session, out, &args.id, nudge_journal::ShiftStatus::Skipped)
}
