//! `nudge unfollow NAME`: stop following someone.

use anyhow::Result;
use clap::Args;
use nudge_replica::Replica;

use crate::output::Out;

/// `nudge unfollow`.
#[derive(Args, Debug)]
pub struct UnfollowArgs {
    /// The name you follow them as.
    #[arg(add = crate::complete::followed_names())]
    pub name: String,
}

/// `nudge unfollow`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: UnfollowArgs) -> Result<()> {
    crate::buddy::unfollow(session, out, &args.name)
}
