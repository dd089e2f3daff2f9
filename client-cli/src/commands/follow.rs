//! `nudge follow LINK`: follow a buddy's progress (`crate::buddy`).

use anyhow::Result;
use clap::Args;
use nudge_replica::Replica;

use crate::output::Out;

/// `nudge follow`.
#[derive(Args, Debug)]
pub struct FollowArgs {
    /// The link, e.g. http://host:3030/view/nudge_share_...
    pub link: String,
    /// What to call them here (default: buddy, buddy-2, ...).
    #[arg(long = "as", value_name = "NAME")]
    pub name: Option<String>,
    /// Seconds the whole exchange with the server may take before giving up.
    #[arg(
        long,
        env = "NUDGE_SYNC_TIMEOUT",
        default_value_t = 30,
        value_name = "SECS"
    )]
    pub timeout: u64,
}

/// `nudge follow`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: FollowArgs) -> Result<()> {
    let timeout = std::time::Duration::from_secs(args.timeout.max(1));
    crate::buddy::follow(session, out, &args.link, args.name, timeout)
}
