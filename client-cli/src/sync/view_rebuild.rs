//! Share views without a past: a view whose history holds words it no longer shows (a
//! title edited, a shift removed or gone from the view's window) is built again as a new
//! document, the share moved to it on the server (`PUT /v1/shares/<id>`, same link), the
//! journal told, and the old document deleted here and there. Followers find the new
//! document at their next sync (`buddy.rs`), pages by themselves.

use anyhow::Result;
use nudge_journal::share::{self, ViewInput};
use nudge_store::DocumentId;
use serde_json::json;

use crate::sync::Link;
use nudge_replica::{Replica, Touched};

/// The active shares of the journal whose view, as `link` holds it, needs rebuilding.
pub(crate) fn stale_views(link: &Link, journal: &DocumentId) -> Vec<share::Share> {
    let Some(journal) = link.client.doc(journal) else {
        return Vec::new();
    };
    let now_ms = crate::sync::views::wall_ms();
    share::shares_in(journal)
        .into_values()
        .filter(|s| s.active(now_ms))
        .filter(|s| {
            s.view_doc
                .parse::<DocumentId>()
                .ok()
                .and_then(|id| link.client.doc(&id))
                .is_some_and(share::holds_forgotten_text)
        })
        .collect()
}

/// Rebuilds every active view `link` holds that needs it; returns how many it moved.
/// A server that cannot move shares (an older one) leaves the view as it is.
pub(crate) async fn rebuild_views(session: &Replica, link: &mut Link) -> Result<usize> {
    let Some(journal_id) = session.journal_id()? else {
        return Ok(0);
    };
    let stale = stale_views(link, &journal_id);
    if stale.is_empty() {
        return Ok(0);
    }
    let (_, api) = crate::sync::views::connected(session, link.timeout())?;
    let (catalog, summary, shifts) = crate::sync::views::projection_input(session)?;
    let input = ViewInput {
        catalog: &catalog,
        summary: &summary,
        shifts: &shifts,
    };
    let mut moved = 0;
    for s in stale {
        let Ok(old) = s.view_doc.parse::<DocumentId>() else {
            continue;
        };
        let fresh = share::fresh_view(session.device_actor()?, &session.now, s.scope, &input)?;
        let id = DocumentId::random();
        session.store_new_doc(&id, &fresh)?;
        session.sync_flush()?;
        link.add(id, fresh).await?;
        link.until_done(session).await?;
        let answer = api.call(
            "PUT",
            &format!("/v1/shares/{}", s.id),
            Some(json!({ "view_doc": id.to_string() })),
        )?;
        if let Err(refusal) = answer {
            tracing::warn!(share = %s.id, status = refusal.status, "the server did not move the share to a rebuilt view: {}", refusal.reason);
            session.remove_doc(&id)?;
            continue;
        }
        session.write(|j, _| {
            j.move_share_view(&session.now, &s.id, &id.to_string())?;
            Ok(((), Touched::Shifts(Vec::new())))
        })?;
        session.remove_doc(&old)?;
        session.sync_flush()?;
        moved += 1;
    }
    // The journal's new pointers go to the server (and so to the other devices) at once.
    if moved > 0
        && let (Some(held), Some(journal)) = (link.client.doc(&journal_id), session.load_journal()?)
    {
        let changes = journal.doc().get_changes(&held.get_heads());
        let messages = link.client.apply_local(&journal_id, changes)?;
        link.send(messages).await?;
        link.until_done(session).await?;
        session.commit_sync()?;
    }
    Ok(moved)
}
