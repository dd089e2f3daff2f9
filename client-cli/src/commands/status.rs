//! `nudge status`: what this device syncs with.

use anyhow::Result;
use clap::Args;
use nudge_replica::Replica;

use crate::output::Out;

/// `nudge status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `nudge status`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: StatusArgs) -> Result<()> {
    let as_json = args.json;
    let remote = crate::remote::load(session.home())?;
    let token_id = remote
        .as_ref()
        .and_then(|r| crate::remote::check_token(&r.token).ok())
        .map(|t| t.id().to_owned());
    let device = session.device_name()?;
    let synced_at = session.synced_at()?;
    let unsynced = if remote.is_some() {
        session.unsynced()?
    } else {
        0
    };
    let watcher = crate::watch::running_state(session.home());
    // The journal's automerge-repo document id: another app syncing with the same server
    // finds the journal by it (`automerge:<id>` is automerge-repo's URL form).
    let journal = session.journal_id()?.map(|id| id.to_string());
    let when = |ms: i64| crate::output::local(ms, &session.now.tz, "%Y-%m-%d %H:%M:%S");
    if as_json {
        return out.json(&serde_json::json!({
            "journal_document_id": journal,
            "journal_url": journal.as_ref().map(|id| format!("automerge:{id}")),
            "remote": remote.as_ref().map(|r| r.url.clone()),
            "token_id": token_id,
            "device": device,
            "last_sync": synced_at.map(nudge_journal::when::rfc3339),
            "unsynced_changes": unsynced,
            "watcher_pid": watcher.as_ref().map(|(pid, _)| pid),
            "watcher": watcher.as_ref().map(|(_, state)| state),
        }));
    }
    match &remote {
        Some(r) => out.line(format!(
            "remote     {} (token {})",
            r.url,
            token_id.as_deref().unwrap_or("damaged")
        )),
        None => out.line("remote     none (`nudge join LINK` or `nudge remote add URL`)"),
    }
    out.line(format!("device     {device}"));
    out.line(match &journal {
        Some(id) => format!("journal    automerge:{id}"),
        None => "journal    none yet (`nudge add` starts one)".to_owned(),
    });
    out.line(format!(
        "last sync  {}",
        synced_at.map(when).unwrap_or_else(|| "never".into())
    ));
    out.line(format!("unsynced   {unsynced} changes"));
    out.line(match watcher {
        Some((pid, state)) => format!("watcher    {state} (pid {pid})"),
        None => "watcher    not running (`nudge sync --watch`)".into(),
    });
    Ok(())
}
