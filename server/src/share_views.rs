//! Which documents a share may show, and moving a share to a new view document.
//!
//! A share view keeps its history (Automerge keeps every change), so an edited title or a
//! removed shift would stay readable by anyone with the link. The owner's device then
//! builds the view again as a new, history-free document and moves the share to it:
//! `PUT /v1/shares/<id>` `{"view_doc"}`. The link stays the same; the old document is
//! deleted from the store and from memory, and the share's open connections are closed,
//! so that followers and pages come back to the new one.

use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use nudge_store::{DocumentId, Store};
use serde_json::{Value, json};

use crate::accounts::{AccountError, Accounts, Principal};
use crate::respond::{Body, MAX_BODY, json, storage_failed as failed, text};
use crate::server::Server;

/// Why a document cannot be shared.
pub(crate) enum NotShareable {
    /// It is not on the server, or not this account's.
    NotStored,
    /// It is not a share view (the journal, the contacts, anything else).
    NotAView,
}

/// Whether `account` may share `doc`: it owns it, and it was made as a share view (never
/// the journal or the contacts, whoever asks: a stolen device included).
pub(crate) fn shareable(
    accounts: &Accounts,
    store: &Store,
    account: &str,
    doc: &DocumentId,
) -> Result<Result<(), NotShareable>, AccountError> {
    if accounts.owner(doc)?.as_deref() != Some(account) {
        return Ok(Err(NotShareable::NotStored));
    }
    let is_view = accounts.journal(account)? != Some(*doc)
        && store
            .load(doc)?
            .and_then(|stored| automerge::Automerge::load(&stored.concat()).ok())
            .is_some_and(|loaded| nudge_journal::share::born_as_view(&loaded));
    Ok(if is_view {
        Ok(())
    } else {
        Err(NotShareable::NotAView)
    })
}

/// The answer to a document that cannot be shared.
pub(crate) fn refusal(why: NotShareable) -> Response<Body> {
    match why {
        NotShareable::NotAView => text(
            StatusCode::FORBIDDEN,
            "only a share view document can be shared (`nudge buddy invite` makes one); never the journal or the contacts\n",
        ),
        NotShareable::NotStored => text(
            StatusCode::CONFLICT,
            "sync the view document to the server before sharing it\n",
        ),
    }
}

/// `PUT /v1/shares/<id>` `{"view_doc"}`: the share shows that document from now on.
pub(crate) async fn repoint(
    request: Request<Incoming>,
    id: &str,
    principal: &Principal,
    server: &Arc<Server>,
) -> Response<Body> {
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"),
    };
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(doc) = value
        .get("view_doc")
        .and_then(Value::as_str)
        .and_then(|d| d.parse::<DocumentId>().ok())
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "the body must have view_doc, a document id\n",
        );
    };
    let (account, share) = (principal.account.clone(), id.to_owned());
    let moved = server
        .records(move |state| {
            let shares = state.shares();
            let Some(mut record) = shares.get(&share)?.filter(|r| r.account == account) else {
                return Ok(Err(None));
            };
            if let Err(why) = shareable(state.accounts(), state.store(), &account, &doc)? {
                return Ok(Err(Some(why)));
            }
            let old = record.doc().filter(|old| *old != doc);
            record.view_doc = doc.to_string();
            shares.put(&share, &record)?;
            if let Some(old) = old {
                state.store().remove(&old)?;
                // Nobody stores it again (an owner's watcher still holding it, say).
                state.accounts().retire(&old)?;
            }
            Ok(Ok(old))
        })
        .await;
    match moved {
        Ok(Ok(old)) => {
            // Open connections hold the old document: they come back to the new one.
            let closed = server.moved_share(id, old).await;
            tracing::info!(share = %id, view = %doc, closed, "share moved to a new view");
            json(
                StatusCode::OK,
                json!({ "view_doc": doc.to_string(), "connections_closed": closed }),
            )
        }
        Ok(Err(None)) => text(
            StatusCode::NOT_FOUND,
            "no share of this account has that id\n",
        ),
        Ok(Err(Some(why))) => refusal(why),
        Err(e) => failed(e),
    }
}
