//! `nudge log`: record a shift already made.

use anyhow::Result;
use clap::Args;
use nudge_replica::Replica;

use super::add::{ShiftWords, record};
use crate::output::Out;

/// `nudge log`.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// The shift.
    #[command(flatten)]
    pub shift: ShiftWords,
    /// When it was made (default: now): today, yesterday 17:00, monday, 3d ago, 2026-11-20.
    #[arg(long, value_name = "WHEN")]
    pub at: Option<String>,
    /// What it sparked.
    #[arg(long, value_name = "TEXT")]
    pub little_yes: Option<String>,
}

/// `nudge log`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: LogArgs) -> Result<()> {
    record(session, out, args.shift, Some(args.at), args.little_yes)
}
