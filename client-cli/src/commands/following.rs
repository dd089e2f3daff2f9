//! `nudge following`: the people this device follows.

use anyhow::Result;
use clap::Args;
use nudge_replica::Replica;

use crate::output::Out;

/// `nudge following`.
#[derive(Args, Debug)]
pub struct FollowingArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `nudge following`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: FollowingArgs) -> Result<()> {
    crate::buddy::following(session, out, args.json)
}
