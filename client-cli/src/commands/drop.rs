//! `nudge drop`: drop a shift no longer wanted.

use anyhow::Result;
use clap::Args;
use nudge_replica::Replica;

use crate::output::Out;

/// `nudge drop`.
#[derive(Args, Debug)]
pub struct DropArgs {
    /// The shift's id or prefix.
    #[arg(add = crate::complete::planned_ids())]
    pub id: String,
}

/// `nudge drop`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: DropArgs) -> Result<()> {
    crate::shifts::set_status(session, out, &args.id, nudge_journal::ShiftStatus::Dropped)
}
