//! `nudge remote add|show|remove`: the sync server this device uses (kept in
//! `remote.json`, `crate::remote`).

use anyhow::Result;
use clap::Subcommand;
use nudge_replica::Replica;

use crate::output::Out;
use crate::{config, output, remote};

/// `nudge remote ...`.
#[derive(Subcommand, Debug)]
pub enum RemoteCommand {
    /// Set the server, with the token from NUDGE_TOKEN or --token-stdin.
    Add {
        /// ws://host:port or http://host:port (wss:// or https:// behind a TLS proxy);
        /// default: `remote` in the config file.
        url: Option<String>,
        /// Read the token from standard input instead of NUDGE_TOKEN.
        #[arg(long)]
        token_stdin: bool,
    },
    /// Show the server, the token's id (never the secret) and what is not synced yet.
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget the server and the token (the journal stays).
    Remove,
}

/// `nudge remote ...`.
pub(crate) fn run(session: &Replica, out: &mut Out, command: RemoteCommand) -> Result<()> {
    let home = session.home();
    match command {
        RemoteCommand::Add { url, token_stdin } => {
            if let Some(existing) = remote::load(home)? {
                anyhow::bail!(
                    "a remote is set already ({}); run `nudge remote remove` first to change it",
                    existing.url
                );
            }
            let url = match url.or_else(|| config::load().ok().and_then(|c| c.remote)) {
                Some(url) => url,
                None => anyhow::bail!(
                    "give the server's address (`nudge remote add URL`), or set remote in the config file ({})",
                    config::path()?.display()
                ),
            };
            remote::endpoints(&url)?;
            let token = remote::token_from(token_stdin)?;
            let parsed = remote::check_token(&token)?;
            remote::save(
                home,
                &remote::Remote {
                    url: url.trim().to_owned(),
                    token: parsed.to_string(),
                },
            )?;
            session.forget_synced()?;
            out.line(format!(
                "Remote set to {} (token {}). Run `nudge sync` to sync.",
                url.trim(),
                parsed.id()
            ));
            Ok(())
        }
        RemoteCommand::Show { json } => {
            let Some(remote) = remote::load(home)? else {
                anyhow::bail!("no remote is set: run `nudge remote add URL` with NUDGE_TOKEN set");
            };
            let token_id = remote::check_token(&remote.token)
                .map(|t| t.id().to_owned())
                .unwrap_or_else(|_| "(damaged)".into());
            let unsynced = session.unsynced()?;
            if json {
                out.json(&serde_json::json!({
                    "url": remote.url,
                    "token_id": token_id,
                    "unsynced_changes": unsynced,
                }))?;
            } else {
                out.line(format!("url       {}", remote.url));
                out.line(format!("token     {token_id}"));
                out.line(format!(
                    "unsynced  {}",
                    output::count(unsynced as usize, "change", "changes")
                ));
            }
            Ok(())
        }
        RemoteCommand::Remove => {
            if !remote::remove(home)? {
                anyhow::bail!("no remote is set");
            }
            session.forget_synced()?;
            out.line("Remote removed; the journal stays on this device.");
            Ok(())
        }
    }
}
