//! The owner's side of a sync: every active share view of the journal refreshed from the
//! journal as stored (a projection, `nudge_journal::share`), and rebuilt when its history
//! holds what it no longer shows (`view_rebuild.rs`).

use std::time::Duration;

use anyhow::{Context, Result};
use nudge_journal::share::{self, ViewInput};
use nudge_journal::{Catalog, Summary};
use nudge_replica::Replica;
use nudge_store::DocumentId;

use super::Link;
use crate::api::Api;
use crate::remote::Remote;

/// The real time (ms): expiry is the server's to enforce, with its clock, so it is never
/// judged by `NUDGE_NOW`.
pub(crate) fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The journal's state a view is projected from.
pub(crate) fn projection_input(
    session: &Replica,
) -> Result<(Catalog, Summary, Vec<nudge_journal::Shift>)> {
    let view = session.require_view()?;
    let shifts = session.all_shifts()?;
    Ok((view.catalog, view.summary, shifts))
}

pub(crate) fn connected(session: &Replica, timeout: Duration) -> Result<(Remote, Api<'_>)> {
    crate::api::connected(
        session,
        timeout,
        "sharing needs the sync server: `nudge join LINK` or `nudge remote add URL` first",
    )
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the network runtime")
}

/// The shares the journal lists, read from the connection's copy of the journal (no
/// document load).
fn shares(session: &Replica, link: &Link) -> Result<Vec<share::Share>> {
    let Some(journal) = session.journal_id()?.and_then(|id| link.client.doc(&id)) else {
        return Ok(Vec::new());
    };
    Ok(share::shares_in(journal).into_values().collect())
}

/// The active share views the journal lists.
pub(crate) fn active_views(session: &Replica, link: &Link) -> Result<Vec<DocumentId>> {
    let now_ms = wall_ms();
    Ok(shares(session, link)?
        .into_iter()
        .filter(|s| s.active(now_ms))
        .filter_map(|s| s.view_doc.parse().ok())
        .collect())
}

/// The cheers documents of the journal's shares that are not revoked.
fn cheers_docs(session: &Replica, link: &Link) -> Result<Vec<DocumentId>> {
    Ok(shares(session, link)?
        .into_iter()
        .filter(|s| s.revoked_at_ms.is_none())
        .map(|s| nudge_protocol::cheers_doc(&s.id))
        .collect())
}

/// Refreshes each view the connection holds (and has content) from the journal as stored
/// now; stores the changes and returns them, to be sent.
pub(crate) fn refresh_held(
    session: &Replica,
    link: &Link,
    views: &[DocumentId],
) -> Result<Vec<(DocumentId, Vec<nudge_journal::automerge::Change>)>> {
    let held: Vec<&DocumentId> = views
        .iter()
        .filter(|id| {
            link.client
                .doc(id)
                .is_some_and(|d| !d.get_heads().is_empty())
        })
        .collect();
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let (catalog, summary, shifts) = projection_input(session)?;
    let input = ViewInput {
        catalog: &catalog,
        summary: &summary,
        shifts: &shifts,
    };
    let mut out = Vec::new();
    for id in held {
        let Some(current) = link.client.doc(id) else {
            continue;
        };
        let mut view = current.clone().with_actor(session.device_actor()?);
        let before = view.get_heads();
        if share::refresh_view(&mut view, &session.now, &input)? == 0 {
            continue;
        }
        let changes = view.get_changes(&before);
        session.store_changes(id, &changes)?;
        out.push((*id, changes));
    }
    session.sync_flush()?;
    Ok(out)
}

/// Refreshes every active share view of the journal over `link`: pulls each view (and
/// each share's cheers), writes what differs, pushes it. Called by `nudge sync` once the
/// journal itself is in sync.
pub(crate) async fn refresh_views(session: &Replica, link: &mut Link) -> Result<usize> {
    let views = active_views(session, link)?;
    if views.is_empty() {
        return Ok(0);
    }
    // The shares' cheers come down with the views (read-only: the server writes them).
    for id in cheers_docs(session, link)?.iter().chain(&views) {
        if link.client.doc(id).is_none() {
            let stored = session.load_automerge(id)?.unwrap_or_default();
            link.add(*id, stored).await?;
        }
    }
    link.until_done(session).await?;
    session.sync_flush()?;
    let refreshed = refresh_held(session, link, &views)?;
    let count = refreshed.len();
    for (id, changes) in refreshed {
        let messages = link.client.apply_local(&id, changes)?;
        link.send(messages).await?;
    }
    link.until_done(session).await?;
    session.sync_flush()?;
    crate::sync::view_rebuild::rebuild_views(session, link).await?;
    Ok(count)
}

/// For the watcher: refreshes the active views the connection holds from the journal as
/// stored now, stores the changes, and returns them to send (no waiting on the network
/// while the store is held).
pub(crate) fn refresh_in_link(
    session: &Replica,
    link: &Link,
) -> Result<Vec<(DocumentId, Vec<nudge_journal::automerge::Change>)>> {
    let views = active_views(session, link)?;
    refresh_held(session, link, &views)
}
