//! The cheers the owner's buddies sent, as this device holds them: each share's cheers
//! document (`nudge_protocol::cheers_doc`), fetched by `nudge sync`. What `week`, `review`
//! and `nudge cheers` read; "new" means after the last `nudge cheers` on this device.

use anyhow::Result;
use nudge_journal::cheers::{self, Cheer};
use nudge_journal::share::Share;
use nudge_replica::Replica;

/// The device-local key holding when the newest cheer seen was sent (ms).
const SEEN: &str = "cheers.seen_ms";

/// Every cheer of every share the journal lists, oldest first.
pub(crate) fn received(session: &Replica) -> Result<Vec<Cheer>> {
    let mut all = Vec::new();
    for share in shares(session)? {
        let doc = nudge_protocol::cheers_doc(&share.id);
        if let Some(loaded) = session.load_automerge(&doc)? {
            all.extend(cheers::read(&loaded));
        }
    }
    all.sort_by(|a, b| a.at_ms.cmp(&b.at_ms).then_with(|| a.id.cmp(&b.id)));
    Ok(all)
}

/// The journal's shares (none before a journal exists).
pub(crate) fn shares(session: &Replica) -> Result<Vec<Share>> {
    Ok(match session.view()? {
        Some(view) => view.catalog.shares.into_values().collect(),
        None => Vec::new(),
    })
}

/// When the newest cheer `nudge cheers` showed was sent.
pub(crate) fn seen_ms(session: &Replica) -> Result<i64> {
    Ok(session
        .local_get(SEEN)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(i64::MIN))
}

/// Marks every cheer up to `at_ms` seen.
pub(crate) fn mark_seen(session: &Replica, at_ms: i64) -> Result<()> {
    if at_ms > seen_ms(session)? {
        session.local_set(SEEN, &at_ms.to_string())?;
    }
    Ok(())
}

/// The cheers not seen yet, oldest first.
pub(crate) fn unseen(session: &Replica) -> Result<Vec<Cheer>> {
    let seen = seen_ms(session)?;
    Ok(received(session)?
        .into_iter()
        .filter(|c| c.at_ms > seen)
        .collect())
}

/// A cheer's text in quotes, on one line.
pub(crate) fn quoted(cheer: &Cheer) -> String {
    format!("\"{}\"", cheer.text.replace('\n', " "))
}

/// `N new cheer(s) · NAME said: "TEXT"`, for `week`.
pub(crate) fn headline(unseen: &[Cheer]) -> Option<String> {
    let last = unseen.last()?;
    let n = unseen.len();
    Some(format!(
        "{n} new cheer{} · {} said: {} (nudge cheers)",
        if n == 1 { "" } else { "s" },
        last.from,
        quoted(last)
    ))
}
