//! Shares: a share token reads exactly one share view document and writes nothing.
//!
//! Tree `shares`: share token id -> JSON record (account, view document, scope, name,
//! created, expiry). The token itself is stored like every token: only its SHA-256.
//!
//! | route | token | answer |
//! |---|---|---|
//! | `POST /v1/shares` `{"view_doc", "scope", "name", "expires_ms"?}` | account or device | `{"id", "token", "link"}` (the account must own the view document) |
//! | `GET /v1/shares` | account or device | `[{"id", "name", "scope", "view_doc", "created_ms", "expires_ms", "last_seen_ms", "created_by", "created_by_token"}]` (`created_by`: the minting device's name, `account token`, or `a revoked device`) |
//! | `PUT /v1/shares/<id>` `{"view_doc"}` | account or device | `{"view_doc", "connections_closed"}`: the share shows a new view document (`share_views.rs`) |
//! | `DELETE /v1/shares/<id>` | account or device | `{"revoked", "connections_closed"}` |
//! | `GET /v1/shares/<share token>` | the share token is in the path | `{"doc", "scope", "name"}`; 404 unknown, 410 expired |

use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use nudge_protocol::{Token, TokenKind};
use nudge_store::DocumentId;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::accounts::{AccountError, Accounts};
use crate::clock::Clock;
use crate::respond::{Body, MAX_BODY, authenticate, json, storage_failed as failed, text};
use crate::server::Server;
use crate::share_views::{refusal, shareable};
use crate::table::{RecordStore, Table};

/// What the server knows of a share.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShareRecord {
    /// The owning account.
    pub account: String,
    /// The one document the share token may read.
    pub view_doc: String,
    /// `counts`, `titles` or `full` (as the owner said).
    pub scope: String,
    /// The buddy's name.
    pub name: String,
    /// When it was made (ms).
    pub created_ms: i64,
    /// When it stops working (ms), if ever.
    pub expires_ms: Option<i64>,
    /// The token that made it: revoking that one revokes this share too.
    #[serde(default)]
    pub minted_by: Option<String>,
}

impl ShareRecord {
    /// Whether it still works at `now`.
    pub fn live(&self, now: i64) -> bool {
        self.expires_ms.is_none_or(|e| e > now)
    }

    /// The view document's id.
    pub fn doc(&self) -> Option<DocumentId> {
        self.view_doc.parse().ok()
    }
}

/// The shares of a server.
#[derive(Clone)]
pub struct Shares {
    tree: Table,
    accounts: Accounts,
    clock: Arc<dyn Clock>,
}

/// Why a share token does not open its view.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// It works: the record.
    Live(ShareRecord),
    /// It expired.
    Expired,
    /// Unknown or revoked.
    Unknown,
}

impl Shares {
    /// The shares kept in `store`; expiry judged by `clock`.
    pub fn open(
        store: &RecordStore,
        accounts: Accounts,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AccountError> {
        Ok(Self {
            tree: Table::new(store, "shares"),
            accounts,
            clock,
        })
    }

    /// The record of a share, by its token id.
    pub fn get(&self, id: &str) -> Result<Option<ShareRecord>, AccountError> {
        Ok(self
            .tree
            .get(id.as_bytes())?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// What a presented share token opens.
    pub fn lookup(&self, presented: &str) -> Lookup {
        let Some(principal) = self.accounts.authenticate(presented) else {
            return Lookup::Unknown;
        };
        if principal.kind != TokenKind::Share {
            return Lookup::Unknown;
        }
        match self.get(&principal.token_id) {
            Ok(Some(record)) if record.live(self.clock.now_ms()) => Lookup::Live(record),
            Ok(Some(_)) => Lookup::Expired,
            _ => Lookup::Unknown,
        }
    }

    /// Makes a share of `record.view_doc`; returns its token. The caller flushes.
    pub fn create(&self, record: &ShareRecord) -> Result<Token, AccountError> {
        let token = self.accounts.add_token(&record.account, TokenKind::Share)?;
        self.tree.insert(
            token.id().as_bytes(),
            serde_json::to_vec(record).unwrap_or_default(),
        )?;
        Ok(token)
    }

    /// Every share of `account`, with ids.
    pub fn list(&self, account: &str) -> Result<Vec<(String, ShareRecord)>, AccountError> {
        let mut out = Vec::new();
        for (id, v) in self.tree.all()? {
            if let Ok(record) = serde_json::from_slice::<ShareRecord>(&v)
                && record.account == account
            {
                out.push((String::from_utf8_lossy(&id).into_owned(), record));
            }
        }
        Ok(out)
    }

    /// Replaces the record of a share.
    pub fn put(&self, id: &str, record: &ShareRecord) -> Result<(), AccountError> {
        self.tree.insert(
            id.as_bytes(),
            serde_json::to_vec(record).unwrap_or_default(),
        )?;
        Ok(())
    }

    /// Forgets the record of a share whose token was revoked (nothing when `id` is not a
    /// share).
    pub fn forget(&self, id: &str) -> Result<(), AccountError> {
        self.tree.remove(id.as_bytes())?;
        Ok(())
    }
}

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
    // The share token itself, in the path: what it opens.
    if method == Method::GET && rest.starts_with("nudge_") {
        return match server.shares().lookup(&rest) {
            Lookup::Live(record) => json(
                StatusCode::OK,
                json!({ "doc": record.view_doc, "scope": record.scope, "name": record.name }),
            ),
            Lookup::Expired => text(StatusCode::GONE, "this share link has expired\n"),
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
                    Ok(Ok(state.shares().create(&record)?))
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
