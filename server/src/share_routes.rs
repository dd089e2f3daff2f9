//! The share routes: making, listing, moving and revoking the account's shares, and what a
//! share token opens (the records are `shares.rs`).
//!
//! | route | token | answer |
//! |---|---|---|
//! | `POST /v1/shares` `{"view_doc", "scope", "name", "expires_ms"?}` | account or device | `{"id", "token", "link"}` (the account must own the view document) |
//! | `GET /v1/shares` | account or device | `[{"id", "name", "scope", "view_doc", "created_ms", "expires_ms", "last_seen_ms", "created_by", "created_by_token"}]` (`created_by`: the minting device's name, `account token`, or `a revoked device`) |
//! | `PUT /v1/shares/<id>` `{"view_doc"}` | account or device | `{"view_doc", "connections_closed"}`: the share shows a new view document (`share_views.rs`) |
//! | `DELETE /v1/shares/<id>` | account or device | `{"revoked", "connections_closed"}` |
//! | `GET /v1/shares/<share token>` | the share token is in the path | `{"doc", "scope", "name"}`; 404 unknown, 410 expired |
//! | `POST /v1/shares/<share token>/cheers` `{"text"}` | the share token is in the path | `{"id", "text", "at_ms"}` (201); 400 a bad cheer, 429 over 10 an hour, 404/410 (`cheers.rs`) |

use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use nudge_protocol::TokenKind;
use nudge_store::DocumentId;
use serde_json::{Value, json};

use crate::accounts::{AccountError, Accounts};
use crate::respond::{Body, MAX_BODY, authenticate, json, storage_failed as failed, text};
use crate::server::Server;
use crate::share_views::{refusal, shareable};
use crate::shares::{Lookup, ShareRecord};

/// Who a token is, for the owner's list of shares: the device's name, `account token`, or
/// `a revoked device` once it is gone.
fn created_by(
    accounts: &Accounts,
    devices: &crate::devices::Devices,
    token: &str,
) -> Result<String, AccountError> {
    let kind = accounts
        .tokens()?
        .into_iter()
        .find(|t| t.id == token)
        .map(|t| t.kind);
    Ok(match kind {
        Some(nudge_protocol::TokenKind::Account) => "account token".to_owned(),
        Some(_) => devices
            .info(token)?
            .map(|i| i.name)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("device {token}")),
        None => "a revoked device".to_owned(),
    })
}

/// Serves `/v1/shares` and below.
pub async fn route(request: Request<Incoming>, path: &str, server: &Arc<Server>) -> Response<Body> {
    let rest = path
        .trim_start_matches("/v1/shares")
        .trim_start_matches('/')
        .to_owned();
    let method = request.method().clone();
    // A buddy's cheer, with the share token in the path (`cheers.rs`).
    if method == Method::POST
        && let Some(token) = rest
            .strip_suffix("/cheers")
            .filter(|t| t.starts_with("nudge_"))
    {
        let token = token.to_owned();
        return crate::cheers::post(request, &token, server).await;
    }
    // The share token itself, in the path: what it opens.
    if method == Method::GET && rest.starts_with("nudge_") {
        return match server.shares().lookup(&rest) {
            Lookup::Live(record) => json(
                StatusCode::OK,
                json!({ "doc": record.view_doc, "scope": record.scope, "name": record.name }),
            ),
            Lookup::Expired => text(StatusCode::GONE, "this share link has expired\n"),
            Lookup::Unavailable => crate::respond::unavailable(),
            Lookup::Unknown => crate::respond::refused(
                server,
                &request,
                text(
                    StatusCode::NOT_FOUND,
                    "this share link is unknown or was revoked\n",
                ),
            ),
        };
    }
    let principal = match authenticate(server, &request) {
        Ok(principal) => principal,
        Err(answer) => return *answer,
    };
    if principal.kind == TokenKind::Share {
        return text(
            StatusCode::FORBIDDEN,
            "a share token cannot manage shares\n",
        );
    }
    match (method, rest.as_str()) {
        (Method::POST, "") => {
            let base = crate::device_routes::public_url(&request, server);
            let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"),
            };
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let field = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
            let (Some(view_doc), Some(scope)) = (field("view_doc"), field("scope")) else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "the body must have view_doc and scope\n",
                );
            };
            let Ok(doc) = view_doc.parse::<DocumentId>() else {
                return text(StatusCode::BAD_REQUEST, "view_doc is not a document id\n");
            };
            if !["counts", "titles", "full"].contains(&scope.as_str()) {
                return text(StatusCode::BAD_REQUEST, "scope is counts, titles or full\n");
            }
            let record = ShareRecord {
                account: principal.account.clone(),
                view_doc,
                scope,
                name: field("name")
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(64)
                    .collect(),
                created_ms: server.now_ms(),
                expires_ms: value.get("expires_ms").and_then(Value::as_i64),
                minted_by: Some(principal.token_id.clone()),
            };
            let made = server
                .records(move |state| {
                    if let Err(why) =
                        shareable(state.accounts(), state.store(), &record.account, &doc)?
                    {
                        return Ok(Err(why));
                    }
                    let token = state.shares().create(&record)?;
                    // Its cheers document, the owner's before the link leaves their hands.
                    let made =
                        crate::cheers::ensure(state, token.id(), &record.account, record.created_ms)?;
                    if made.is_err() {
                        tracing::warn!(share = %token.id(), "its cheers document's id is taken: it will take no cheers");
                    }
                    Ok(Ok(token))
                })
                .await;
            match made {
                Ok(Err(why)) => refusal(why),
                Ok(Ok(token)) => {
                    tracing::info!(account = %principal.account, share = %token.id(), "share created");
                    json(
                        StatusCode::CREATED,
                        json!({ "id": token.id(), "token": token.to_string(), "link": format!("{base}/view/{token}") }),
                    )
                }
                Err(e) => failed(e),
            }
        }
        (Method::PUT, id) if !id.is_empty() && !id.contains('/') => {
            crate::share_views::repoint(request, id, &principal, server).await
        }
        (Method::GET, "") => {
            let (shares, devices, accounts) = (
                server.shares().clone(),
                server.devices().clone(),
                server.accounts().clone(),
            );
            let account = principal.account.clone();
            let listed = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                for (id, r) in shares.list(&account)? {
                    let seen = devices.info(&id)?.and_then(|i| i.last_seen_ms);
                    let by = match &r.minted_by {
                        Some(token) => Some(created_by(&accounts, &devices, token)?),
                        None => None,
                    };
                    out.push(json!({
                        "id": id, "name": r.name, "scope": r.scope, "view_doc": r.view_doc,
                        "created_ms": r.created_ms, "expires_ms": r.expires_ms, "last_seen_ms": seen,
                        "created_by": by, "created_by_token": r.minted_by,
                    }));
                }
                Ok::<_, AccountError>(out)
            })
            .await;
            match listed {
                Ok(Ok(list)) => json(StatusCode::OK, Value::Array(list)),
                Ok(Err(e)) => failed(e),
                Err(e) => failed(e),
            }
        }
        (Method::DELETE, id) if !id.is_empty() && !id.contains('/') => {
            let (shares, account, target) = (
                server.shares().clone(),
                principal.account.clone(),
                id.to_owned(),
            );
            let ours = tokio::task::spawn_blocking(move || {
                Ok::<_, AccountError>(shares.get(&target)?.is_some_and(|r| r.account == account))
            })
            .await;
            match ours {
                Ok(Ok(true)) => match server.revoke(id).await {
                    Ok((_, closed)) => {
                        tracing::info!(share = %id, closed, "share revoked");
                        json(
                            StatusCode::OK,
                            json!({ "revoked": id, "connections_closed": closed }),
                        )
                    }
                    Err(e) => failed(e),
                },
                Ok(Ok(false)) => text(
                    StatusCode::NOT_FOUND,
                    "no share of this account has that id\n",
                ),
                Ok(Err(e)) => failed(e),
                Err(e) => failed(e),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "no such share route\n"),
    }
}
