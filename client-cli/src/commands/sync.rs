//! `nudge sync`: one exchange with the server (`crate::sync`), or with `--watch` a
//! connection that stays (`crate::watch`, run before any store opens).

use anyhow::Result;
use clap::Args;
use nudge_replica::Replica;

use crate::output::Out;

/// `nudge sync`.
#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Stay connected: send local changes as they are made, store remote ones as they
    /// come, reconnect when the server goes away; Ctrl-C stops.
    #[arg(long)]
    pub watch: bool,
    /// Seconds the whole exchange with the server may take before giving up.
    #[arg(
        long,
        env = "NUDGE_SYNC_TIMEOUT",
        default_value_t = 30,
        value_name = "SECS"
    )]
    pub timeout: u64,
}

/// `nudge sync` (without `--watch`).
pub(crate) fn run(session: &Replica, out: &mut Out, args: SyncArgs) -> Result<()> {
    crate::sync::run(
        session,
        out,
        std::time::Duration::from_secs(args.timeout.max(1)),
    )
}
