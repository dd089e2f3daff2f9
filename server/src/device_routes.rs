//! The device routes: a linked device asks for a link, a new device redeems it, and any
//! device of the account lists or revokes the account's devices.
//!
//! | route | token | body | answer |
//! |---|---|---|---|
//! | `POST /v1/devices/link` | account or device | `{"expires_secs"?}` | `{"code", "expires_ms", "link"}` |
//! | `POST /v1/devices/join` | none (the code is the credential) | `{"code", "device_key", "name"}` | `{"token", "device_id"}` |
//! | `GET /v1/devices` | account or device | | `[{"id", "kind", "name", "created_ms", "last_seen_ms"}]` |
//! | `DELETE /v1/devices/<id>` | account or device | | `{"revoked", "connections_closed"}` |

use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header;
use hyper::{Method, Request, Response, StatusCode};
use nudge_protocol::TokenKind;
use serde_json::{Value, json};

use crate::accounts::AccountError;
use crate::devices::LinkError;
use crate::respond::{Body, MAX_BODY, authenticate, json, storage_failed as failed, text};
use crate::server::Server;

/// The longest a link may be asked to live.
const MAX_TTL_SECS: u64 = 24 * 60 * 60;

async fn body(request: Request<Incoming>) -> Result<Value, Response<Body>> {
    let bytes = Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"))?
        .to_bytes();
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|_| text(StatusCode::BAD_REQUEST, "the body must be JSON\n"))
}

/// Where devices reach this server: `--public-url`, else what the asking device used.
pub(crate) fn public_url(request: &Request<Incoming>, server: &Server) -> String {
    if let Some(url) = &server.config().public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// Serves `/v1/devices` and below.
pub async fn route(request: Request<Incoming>, path: &str, server: &Arc<Server>) -> Response<Body> {
    let method = request.method().clone();
    let rest = path
        .trim_start_matches("/v1/devices")
        .trim_start_matches('/')
        .to_owned();
    if method == Method::POST && rest == "join" {
        return join(request, server).await;
    }
    let principal = match authenticate(server, &request) {
        Ok(principal) => principal,
        Err(answer) => return *answer,
    };
    if principal.kind == TokenKind::Share {
        return text(
            StatusCode::FORBIDDEN,
            "a share token cannot manage devices\n",
        );
    }
    match (method, rest.as_str()) {
        (Method::POST, "link") => {
            let base = public_url(&request, server);
            let asked = match body(request).await {
                Ok(v) => v.get("expires_secs").and_then(Value::as_u64),
                Err(response) => return response,
            };
            let ttl = asked
                .map(|s| s.clamp(1, MAX_TTL_SECS) * 1000)
                .unwrap_or(server.config().link_ttl.as_millis() as u64)
                as i64;
            let account = principal.account.clone();
            let minted_by = principal.token_id.clone();
            let created = server
                .records(move |state| state.devices().create_link(&account, &minted_by, ttl))
                .await;
            match created {
                Ok((code, expires_ms)) => {
                    tracing::info!(account = %principal.account, token = %principal.token_id, "device link created");
                    json(
                        StatusCode::CREATED,
                        json!({ "code": code, "expires_ms": expires_ms, "link": format!("{base}/join#{code}") }),
                    )
                }
                Err(e) => failed(e),
            }
        }
        (Method::GET, "") => {
            let (accounts, devices) = (server.accounts().clone(), server.devices().clone());
            let account = principal.account.clone();
            let listed = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                for token in accounts.tokens()? {
                    if token.account != account || token.kind == TokenKind::Share {
                        continue;
                    }
                    let info = devices.info(&token.id)?.unwrap_or_default();
                    out.push(json!({
                        "id": token.id,
                        "kind": token.kind.tag(),
                        "name": info.name,
                        "created_ms": (info.created_ms > 0).then_some(info.created_ms),
                        "last_seen_ms": info.last_seen_ms,
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
            let accounts = server.accounts().clone();
            let (account, target) = (principal.account.clone(), id.to_owned());
            let found =
                tokio::task::spawn_blocking(move || {
                    Ok::<_, AccountError>(accounts.tokens()?.into_iter().find(|t| {
                        t.id == target && t.account == account && t.kind != TokenKind::Share
                    }))
                })
                .await;
            let target = match found {
                Ok(Ok(Some(target))) => target,
                Ok(Ok(None)) => {
                    return text(
                        StatusCode::NOT_FOUND,
                        "no device of this account has that id\n",
                    );
                }
                Ok(Err(e)) => return failed(e),
                Err(e) => return failed(e),
            };
            // A device (a stolen one too) cannot lock the owner out.
            if target.kind == TokenKind::Account && principal.kind != TokenKind::Account {
                return text(
                    StatusCode::FORBIDDEN,
                    "only the account token may revoke the account token (or the operator: `nudge-server account token NAME` issues a new one)\n",
                );
            }
            match server.revoke(id).await {
                Ok((revoked, closed)) => {
                    tracing::info!(token = %id, closed, by = %principal.token_id, "device revoked");
                    json(
                        StatusCode::OK,
                        json!({ "revoked": id, "also_revoked": &revoked[1.min(revoked.len())..], "connections_closed": closed }),
                    )
                }
                Err(e) => failed(e),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "no such device route\n"),
    }
}

/// `POST /v1/devices/join`.
async fn join(request: Request<Incoming>, server: &Arc<Server>) -> Response<Body> {
    let ip = crate::respond::peer_ip(&request);
    let value = match body(request).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let field = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(code), Some(device_key)) = (field("code"), field("device_key")) else {
        return text(
            StatusCode::BAD_REQUEST,
            "the body must be {\"code\", \"device_key\", \"name\"}\n",
        );
    };
    let name: String = field("name")
        .unwrap_or_else(|| "device".into())
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    if device_key.len() > 128 || code.len() > 128 {
        return text(StatusCode::BAD_REQUEST, "code or device key too long\n");
    }
    match server.redeem_link(code, device_key, name).await {
        Ok(Ok(redeemed)) => {
            tracing::info!(account = %redeemed.account, token = %redeemed.token.id(), "device joined");
            json(
                StatusCode::CREATED,
                json!({ "token": redeemed.token.to_string(), "device_id": redeemed.token.id() }),
            )
        }
        Ok(Err(e @ LinkError::Unknown)) => {
            crate::respond::refused_from(server, ip, text(StatusCode::NOT_FOUND, format!("{e}\n")))
        }
        Ok(Err(e)) => text(StatusCode::GONE, format!("{e}\n")),
        Err(e) => failed(e),
    }
}
