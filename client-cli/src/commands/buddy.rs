//! `nudge buddy invite|list|revoke|show`: the accountability buddy (`crate::buddy` and
//! `crate::buddy_list` do the work).

use anyhow::Result;
use clap::Subcommand;
use clap::builder::TypedValueParser as _;
use nudge_replica::Replica;

use super::one_of;
use crate::output::Out;
use crate::{buddy, buddy_list};

/// `nudge buddy ...`.
#[derive(Subcommand, Debug)]
pub enum BuddyCommand {
    /// Invite a buddy: prints a read-only link alone on the last line (shown once).
    Invite {
        /// Their name.
        name: String,
        /// What they see: counts, titles or full.
        #[arg(long, default_value = "counts", ignore_case = true, value_parser = one_of(nudge_journal::Scope::ALL.iter().map(|s| s.as_str())).try_map(|s| s.parse::<nudge_journal::Scope>()))]
        scope: nudge_journal::Scope,
        /// How long the link works: 90d, 2w, 12h, 30m or never.
        #[arg(long, default_value = "90d", value_name = "WHEN")]
        expires: String,
    },
    /// Your buddies: name, scope, since, expiry, last seen.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a buddy's link: it stops working at once.
    Revoke {
        /// Their name (or the share's id).
        #[arg(add = crate::complete::buddy_names())]
        name: String,
    },
    /// Someone you follow: their week, streak, ideas and recent shifts, as their scope allows.
    Show {
        /// The name you follow them as.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `nudge buddy ...`.
pub(crate) fn run(session: &Replica, out: &mut Out, command: BuddyCommand) -> Result<()> {
    let timeout = super::env_timeout();
    match command {
        BuddyCommand::Invite {
            name,
            scope,
            expires,
        } => buddy::invite(session, out, &name, scope, &expires, timeout),
        BuddyCommand::List { json } => buddy_list::list(session, out, json, timeout),
        BuddyCommand::Revoke { name } => buddy_list::revoke(session, out, &name, timeout),
        BuddyCommand::Show { name, json } => buddy::show(session, out, &name, json),
    }
}
