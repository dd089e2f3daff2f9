//! Accounts and tokens while the server runs. The embedded store lets one process open the data folder,
//! so `nudge-server account ...` and `token ...` go through the running server: they read
//! the address and a per-run secret from `admin.json` in the data folder (mode 0600, so
//! only whoever may read the data may administer it) and call these routes, which also
//! refuse any connection that does not come from this host.
//!
//! | route | what |
//! |---|---|
//! | `GET /v1/admin/accounts` | `[{"id", "name"}]` |
//! | `POST /v1/admin/accounts` `{"name"}` | `{"id", "name", "token"}`: the token, shown once |
//! | `POST /v1/admin/accounts/<name>/token` | `{"token", "connections_closed"}`: a new account token, the old one revoked |
//! | `DELETE /v1/admin/accounts/<name>` | tokens revoked, documents deleted, sockets closed |
//! | `GET /v1/admin/tokens` | `[{"id", "kind", "account"}]`, never a secret |
//! | `DELETE /v1/admin/tokens/<id>` | revoked; its sockets closed |
//! | `GET /v1/admin/backup` | a backup of the data folder, streamed (`backup.rs`) |

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::accounts::AccountError;
use crate::respond::{Body, MAX_BODY, json, presented_token, storage_failed as failed, text};
use crate::server::Server;

fn allowed(
    request: &Request<Incoming>,
    server: &Server,
    same_host: bool,
) -> Option<Response<Body>> {
    let Some(secret) = &server.config().admin_secret else {
        return Some(text(StatusCode::NOT_FOUND, "admin routes are off\n"));
    };
    if !same_host {
        return Some(text(
            StatusCode::FORBIDDEN,
            "admin routes answer this host only\n",
        ));
    }
    let presented = presented_token(request).unwrap_or_default();
    if bool::from(presented.as_bytes().ct_eq(secret.as_bytes())) {
        None
    } else {
        Some(crate::respond::refused(
            server,
            request,
            text(
                StatusCode::UNAUTHORIZED,
                "missing or wrong admin secret (see admin.json in the data folder)\n",
            ),
        ))
    }
}

/// Serves `/v1/admin/<rest>`.
pub async fn route(
    request: Request<Incoming>,
    rest: &str,
    server: &std::sync::Arc<Server>,
    same_host: bool,
) -> Response<Body> {
    if let Some(refused) = allowed(&request, server, same_host) {
        return refused;
    }
    let method = request.method().clone();
    let rest = rest.to_owned();
    match (method, rest.split_once('/')) {
        (Method::GET, None) if rest == "accounts" => {
            let accounts = server.accounts().clone();
            let listed = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                for (id, name) in accounts.list()? {
                    let used = accounts.used(&id)?;
                    out.push(json!({ "id": id, "name": name, "used_bytes": used }));
                }
                Ok::<_, AccountError>(out)
            });
            match listed.await {
                Ok(Ok(list)) => json(StatusCode::OK, list.into()),
                Ok(Err(e)) => failed(e),
                Err(e) => failed(e),
            }
        }
        (Method::POST, None) if rest == "accounts" => {
            let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
                Ok(body) => body.to_bytes(),
                Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"),
            };
            let Some(name) = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("name")?.as_str().map(str::to_owned))
            else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "the body must be {\"name\": \"...\"}\n",
                );
            };
            let added = server
                .records(move |state| Ok((state.accounts().add(&name)?, name)))
                .await;
            match added {
                Ok(((id, token), name)) => {
                    tracing::info!(account = %id, %name, token = %token.id(), "account added");
                    json(
                        StatusCode::CREATED,
                        json!({ "id": id, "name": name, "token": token.to_string() }),
                    )
                }
                Err(e @ (AccountError::Exists(_) | AccountError::BadName)) => {
                    text(StatusCode::CONFLICT, format!("{e}\n"))
                }
                Err(e) => failed(e),
            }
        }
        (Method::POST, Some(("accounts", rest))) if rest.ends_with("/token") => {
            let name = rest.trim_end_matches("/token");
            match server.reissue_account_token(name).await {
                Ok(Some((token, closed))) => {
                    tracing::info!(token = %token.id(), closed, "account token reissued");
                    json(
                        StatusCode::OK,
                        json!({ "token": token.to_string(), "connections_closed": closed }),
                    )
                }
                Ok(None) => text(StatusCode::NOT_FOUND, "no such account\n"),
                Err(e) => failed(e),
            }
        }
        (Method::DELETE, Some(("accounts", name))) => match server.remove_account(name).await {
            Ok(Some((removed, closed))) => {
                tracing::info!(account = %removed.account, "account removed");
                json(
                    StatusCode::OK,
                    json!({
                        "account": removed.account,
                        "tokens_revoked": removed.tokens.len(),
                        "documents_removed": removed.documents.len(),
                        "connections_closed": closed,
                    }),
                )
            }
            Ok(None) => text(StatusCode::NOT_FOUND, "no such account\n"),
            Err(e) => failed(e),
        },
        (Method::GET, None) if rest == "tokens" => {
            let accounts = server.accounts().clone();
            match tokio::task::spawn_blocking(move || accounts.tokens()).await {
                Ok(Ok(tokens)) => json(
                    StatusCode::OK,
                    tokens
                        .into_iter()
                        .map(|t| json!({ "id": t.id, "kind": t.kind.tag(), "account": t.account }))
                        .collect(),
                ),
                Ok(Err(e)) => failed(e),
                Err(e) => failed(e),
            }
        }
        (Method::DELETE, Some(("tokens", id))) => match server.revoke(id).await {
            Ok((revoked, closed)) if !revoked.is_empty() => {
                tracing::info!(token = %id, closed, "token revoked");
                json(
                    StatusCode::OK,
                    json!({ "revoked": id, "also_revoked": &revoked[1..], "connections_closed": closed }),
                )
            }
            Ok(_) => text(StatusCode::NOT_FOUND, "no such token\n"),
            Err(e) => failed(e),
        },
        (Method::GET, None) if rest == "backup" => backup(server),
        _ => text(StatusCode::NOT_FOUND, "no such admin route\n"),
    }
}

/// Streams a backup of the whole data folder, written on a blocking thread while the
/// server goes on serving. A failure half way ends the stream early; the backup's missing
/// end record tells the receiving side.
fn backup(server: &std::sync::Arc<Server>) -> Response<Body> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<hyper::body::Bytes>(8);
    let store = server.store().clone();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let out = std::io::BufWriter::with_capacity(256 << 10, Channel(tx));
        match crate::backup::write(&store, out) {
            Ok(summary) => {
                tracing::info!(%summary, ms = started.elapsed().as_millis() as u64, "backup sent")
            }
            Err(e) => tracing::warn!("backup failed: {e:#}"),
        }
    });
    let frames = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(hyper::body::Frame::data(c))))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/octet-stream")
        .body(http_body_util::StreamBody::new(frames).boxed())
        .expect("a valid response")
}

/// Hands what a backup writes to the response body, a chunk at a time.
struct Channel(tokio::sync::mpsc::Sender<hyper::body::Bytes>);

impl std::io::Write for Channel {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(hyper::body::Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::other("the backup's receiver went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
