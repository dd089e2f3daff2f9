//! `nudge join LINK`: join an account with a link from `nudge device link`.

use anyhow::Result;
use clap::Args;
use nudge_replica::Replica;

use crate::output::Out;

/// `nudge join`.
#[derive(Args, Debug)]
pub struct JoinArgs {
    /// The link, e.g. http://host:3030/join#<code> (quote it: the shell may eat `#`).
    pub link: String,
    /// This device's name in `nudge device list` (default: device.name or the host name).
    #[arg(long)]
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

/// `nudge join`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: JoinArgs) -> Result<()> {
    let timeout = std::time::Duration::from_secs(args.timeout.max(1));
    crate::devices::join(session, out, &args.link, args.name, timeout)
}
