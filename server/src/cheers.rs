//! Cheers from a buddy: `POST /v1/shares/<share token>/cheers` `{"text"}`. The share token
//! writes nothing itself: the server checks the cheer (text, at most 500 characters, no
//! control characters) and the share's rate (10 an hour), then writes it as one change into
//! the share's cheers document (`nudge_protocol::cheers_doc`), which the owner's account
//! owns and the owner's devices sync. The journal is never touched. A revoked or expired
//! share sends no more.
//!
//! The document is made with the share (`share_routes.rs`), so that its id is the owner's
//! before the link leaves the owner's hands; a share made before cheers existed gets it on
//! its first cheer.

use std::sync::Arc;

use automerge::{ActorId, Automerge};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use nudge_journal::cheers::{self, Cheer};
use nudge_store::{DocumentId, NewChange};
use serde_json::{Value, json};

use crate::accounts::AccountError;
use crate::respond::{Body, json, storage_failed as failed, text};
use crate::server::Server;
use crate::shares::{Lookup, ShareRecord};
use crate::state::State;

/// At most this many cheers per share ...
pub const PER_WINDOW: usize = 10;
/// ... in this long.
pub const WINDOW_MS: i64 = 60 * 60 * 1000;
/// The largest request body a cheer may come in.
const MAX_CHEER_BODY: usize = 8 * 1024;

/// Why a cheer is not stored.
pub(crate) enum Refused {
    /// The share sent its ten this hour.
    Rate,
    /// The cheers document's id is another account's, or not a cheers document.
    Taken,
}

fn store_change(
    state: &State,
    doc: &DocumentId,
    change: &automerge::Change,
) -> Result<u64, AccountError> {
    let bytes = change.raw_bytes().to_vec();
    let len = bytes.len() as u64;
    state.store().append(
        doc,
        &[NewChange {
            hash: change.hash().0,
            bytes,
        }],
    )?;
    state.accounts().grew(doc, len)?;
    Ok(state.store().position(doc)?)
}

/// The share's cheers document, made (and owned by the share's account) if it is not yet.
pub(crate) fn ensure(
    state: &State,
    share_id: &str,
    account: &str,
    now_ms: i64,
) -> Result<Result<(DocumentId, Automerge), Refused>, AccountError> {
    let doc = nudge_protocol::cheers_doc(share_id);
    if !state.accounts().claim(&doc, account)? {
        return Ok(Err(Refused::Taken));
    }
    if let Some(stored) = state.store().load(&doc)? {
        return Ok(match Automerge::load(&stored.concat()) {
            Ok(loaded) if cheers::is_cheers(&loaded) => Ok((doc, loaded)),
            _ => Err(Refused::Taken),
        });
    }
    let fresh = cheers::create(ActorId::random(), share_id, now_ms);
    for change in fresh.get_changes(&[]) {
        store_change(state, &doc, &change)?;
    }
    Ok(Ok((doc, fresh)))
}

/// Stores a checked cheer from `record`'s buddy; returns the document, its new position and
/// the cheer.
fn store(
    state: &State,
    share_id: &str,
    record: &ShareRecord,
    text: &str,
    now_ms: i64,
) -> Result<Result<(DocumentId, u64, Cheer), Refused>, AccountError> {
    let (doc, mut loaded) = match ensure(state, share_id, &record.account, now_ms)? {
        Ok(found) => found,
        Err(why) => return Ok(Err(why)),
    };
    let recent = cheers::read(&loaded)
        .iter()
        .filter(|c| c.at_ms > now_ms - WINDOW_MS)
        .count();
    if recent >= PER_WINDOW {
        return Ok(Err(Refused::Rate));
    }
    let from = if record.name.is_empty() {
        "your buddy"
    } else {
        record.name.as_str()
    };
    let (change, cheer) = cheers::add(&mut loaded, from, text, now_ms)
        .map_err(|e| AccountError::Task(e.to_string()))?;
    let position = store_change(state, &doc, &change)?;
    Ok(Ok((doc, position, cheer)))
}

/// The cheers a share's buddy sent, oldest first (for the buddy's page).
pub(crate) fn sent(store: &nudge_store::Store, share_id: &str) -> anyhow::Result<Vec<Cheer>> {
    let doc = nudge_protocol::cheers_doc(share_id);
    Ok(match store.load(&doc)? {
        Some(stored) => Automerge::load(&stored.concat())
            .map(|d| cheers::read(&d))
            .unwrap_or_default(),
        None => Vec::new(),
    })
}

/// `POST /v1/shares/<share token>/cheers`.
pub(crate) async fn post(
    request: Request<Incoming>,
    token: &str,
    server: &Arc<Server>,
) -> Response<Body> {
    let record = match server.shares().lookup(token) {
        Lookup::Live(record) => record,
        Lookup::Expired => {
            return text(
                StatusCode::GONE,
                "this share link has expired: it sends no cheers\n",
            );
        }
        Lookup::Unavailable => return crate::respond::unavailable(),
        Lookup::Unknown => {
            return crate::respond::refused(
                server,
                &request,
                text(
                    StatusCode::NOT_FOUND,
                    "this share link is unknown or was revoked: it sends no cheers\n",
                ),
            );
        }
    };
    let share_id = token
        .parse::<nudge_protocol::Token>()
        .map(|t| t.id().to_owned())
        .unwrap_or_default();
    let body = match Limited::new(request.into_body(), MAX_CHEER_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "a cheer is at most 500 characters\n",
            );
        }
    };
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(said) = value.get("text").and_then(Value::as_str) else {
        return text(
            StatusCode::BAD_REQUEST,
            "the body must be {\"text\": \"...\"}\n",
        );
    };
    if let Err(e) = cheers::check(said) {
        return text(StatusCode::BAD_REQUEST, format!("{e}\n"));
    }
    let (said, now_ms) = (said.to_owned(), server.now_ms());
    let stored = server
        .records(move |state| store(state, &share_id, &record, &said, now_ms))
        .await;
    match stored {
        Ok(Ok((doc, position, cheer))) => {
            // Loaded copies (an owner's device syncing now) take it and pass it on.
            server.documents().announced(doc, position).await;
            server.metrics().cheers.inc();
            json(
                StatusCode::CREATED,
                json!({ "id": cheer.id, "text": cheer.text, "at_ms": cheer.at_ms }),
            )
        }
        Ok(Err(Refused::Rate)) => text(
            StatusCode::TOO_MANY_REQUESTS,
            format!("this share sent {PER_WINDOW} cheers in the last hour: try again later\n"),
        ),
        Ok(Err(Refused::Taken)) => text(
            StatusCode::CONFLICT,
            "this share cannot take cheers (its cheers document is not the owner's); ask the owner for a new link\n",
        ),
        Err(e) => failed(e),
    }
}
