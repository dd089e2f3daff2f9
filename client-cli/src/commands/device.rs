//! `nudge device link|list|revoke`: the account's devices (`crate::devices` talks to the
//! server).

use anyhow::Result;
use clap::Subcommand;
use nudge_replica::Replica;

use crate::devices;
use crate::output::Out;

/// `nudge device ...`.
#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// A one-time link for a new device (printed alone on the last line).
    Link {
        /// Seconds the link stays valid (default: the server's, 15 minutes).
        #[arg(long, value_name = "SECS")]
        expires: Option<u64>,
    },
    /// The account's devices: id, name, last seen; this one marked.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device: its token stops working at once and its connections close.
    Revoke {
        /// The device's name, id or id prefix (at least 4 characters).
        #[arg(add = crate::complete::device_names())]
        device: String,
    },
}

/// `nudge device ...`.
pub(crate) fn run(session: &Replica, out: &mut Out, command: DeviceCommand) -> Result<()> {
    let timeout = super::env_timeout();
    match command {
        DeviceCommand::Link { expires } => devices::link(session, out, expires, timeout),
        DeviceCommand::List { json } => devices::list(session, out, json, timeout),
        DeviceCommand::Revoke { device } => devices::revoke(session, out, &device, timeout),
    }
}
