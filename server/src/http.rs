//! The HTTP side of every connection (hyper): the routes, the token check before a
//! websocket upgrade, and the upgrade itself, after which `connection.rs` takes over.
//!
//! | route | what |
//! |---|---|
//! | `/v1/sync`, `/` | websocket sync (token in `Authorization: Bearer` or `?token=`) |
//! | `GET /v1/journal` | the account's journal document, `{"journal": id or null}` |
//! | `PUT /v1/journal` | register the account's journal, `{"journal": id}`; first one wins |
//! | `GET /healthz` | 200 once storage and a document round-trip work (and, on a shared database, the other nodes are heard), else 503 |
//! | `GET /metrics` | OpenMetrics text |
//! | `POST /v1/devices/link` | a one-time link code for another device (`devices.rs`) |
//! | `POST /v1/devices/join` | redeem a code for a device token (no token needed) |
//! | `GET /v1/devices`, `DELETE /v1/devices/<id>` | the account's devices; revoke one |
//! | `GET /view/<share token>` | the buddy's live web page (`view_page.rs`) |
//! | `/v1/admin/...` | accounts and tokens while the server runs (`admin.rs`; this host only) |

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::{BodyExt, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use nudge_protocol::TokenKind;
use nudge_store::{DocumentId, NewChange};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::accounts::Registered;
use crate::capacity::Socket;
use crate::respond::{Body, MAX_BODY, authenticate, busy, full, json, peer_ip, text, unauthorized};
use crate::server::Server;

/// Ids for websocket connections (for logs and per-connection state).
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Serves one accepted TCP connection: HTTP requests until it closes, or a websocket.
/// `permit` counts against the connection cap, and `socket` against its address and the
/// unauthenticated (`capacity.rs`), for as long as either lasts.
pub async fn serve(
    stream: TcpStream,
    server: Arc<Server>,
    (permit, socket): (Arc<OwnedSemaphorePermit>, Arc<Socket>),
    mut stopped: watch::Receiver<bool>,
    same_host: bool,
    peer: std::net::IpAddr,
) {
    let evictable = socket.clone();
    let service = {
        let (server, stopped) = (server.clone(), stopped.clone());
        service_fn(move |mut request: Request<Incoming>| {
            let client = crate::throttle::client_ip(
                peer,
                request.headers(),
                &server.config().trusted_proxies,
            );
            request
                .extensions_mut()
                .insert(crate::throttle::PeerIp(client));
            let (server, held, stopped) = (
                server.clone(),
                (permit.clone(), socket.clone()),
                stopped.clone(),
            );
            async move {
                Ok::<_, std::convert::Infallible>(
                    route(request, server, held, stopped, same_host).await,
                )
            }
        })
    };
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        // A client that sends its request headers slowly (or never) is cut off.
        .header_read_timeout(server.config().handshake_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("http connection ended: {e}");
            }
        }
        // It waited longest without authenticating while newcomers needed the room.
        _ = evictable.evicted() => {
            tracing::debug!(%peer, "unauthenticated connection closed to make room");
        }
        _ = stopped.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), connection).await;
        }
    }
}

/// A connection's places: the server-wide permit and its [`Socket`].
type Held = (Arc<OwnedSemaphorePermit>, Arc<Socket>);

async fn route(
    request: Request<Incoming>,
    server: Arc<Server>,
    held: Held,
    stopped: watch::Receiver<bool>,
    same_host: bool,
) -> Response<Body> {
    let path = request.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix("/v1/admin/") {
        return crate::admin::route(request, rest, &server, same_host).await;
    }
    if path.starts_with("/view/") && request.method() == Method::GET {
        return crate::view_page::route(&path, &server, peer_ip(&request), &held.1).await;
    }
    if path == "/v1/shares" || path.starts_with("/v1/shares/") {
        return crate::share_routes::route(request, &path, &server).await;
    }
    if path == "/v1/devices" || path.starts_with("/v1/devices/") {
        return crate::device_routes::route(request, &path, &server).await;
    }
    match (request.method(), path.as_str()) {
        (_, "/" | "/v1/sync") if is_upgrade(&request) => upgrade(request, server, held, stopped),
        (&Method::GET, "/join") => text(
            StatusCode::OK,
            "This is a nudge device link. On the device to add, run:\n  nudge join '<this whole link, with the part after #>'\n",
        ),
        (&Method::GET, "/") => text(
            StatusCode::OK,
            "nudge-server: connect a websocket client to /v1/sync\n",
        ),
        (_, "/v1/sync") => text(
            StatusCode::UPGRADE_REQUIRED,
            "websocket sync only: connect a websocket client here\n",
        ),
        (&Method::GET, "/healthz") => health(&server).await,
        (&Method::GET, "/metrics") if server.config().metrics_addr.is_none() => {
            metrics_page(server.metrics())
        }
        (&Method::GET, "/metrics") => text(
            StatusCode::NOT_FOUND,
            "metrics are served on the address given with --metrics-listen\n",
        ),
        (&Method::GET | &Method::PUT, "/v1/journal") => journal(request, &server).await,
        (_, "/healthz" | "/metrics" | "/v1/journal") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "no such endpoint: sync at /v1/sync\n",
        ),
    }
}

fn is_upgrade<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Checks the token, answers 101 and hands the upgraded stream to `connection.rs`.
fn upgrade(
    request: Request<Incoming>,
    server: Arc<Server>,
    (permit, socket): Held,
    stopped: watch::Receiver<bool>,
) -> Response<Body> {
    let mut principal = match authenticate(&server, &request) {
        Ok(principal) => principal,
        Err(answer) => return *answer,
    };
    if principal.kind == TokenKind::Share {
        // A share token opens its one view, while it lasts.
        match server.shares().get(&principal.token_id) {
            Ok(Some(record)) if record.live(server.now_ms()) => {
                principal.share = record.doc();
                principal.expires_ms = record.expires_ms;
            }
            Ok(Some(_)) => return text(StatusCode::GONE, "this share link has expired\n"),
            _ => return unauthorized(),
        }
    }
    // A share link holds a handful of connections; devices keep room of their own.
    let place = match socket.authenticated(principal.kind, &principal.token_id) {
        Ok(place) => place,
        Err(full) => {
            server.metrics().connections_refused.inc();
            return busy(&full);
        }
    };
    if let Err(e) = server.devices().touch(&principal.token_id) {
        tracing::warn!("cannot record when a device was last seen: {e}");
    }
    let key = request.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
    let version_ok = request
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    let (Some(key), true) = (key, version_ok) else {
        return text(
            StatusCode::BAD_REQUEST,
            "not a websocket handshake (Sec-WebSocket-Key and version 13 required)\n",
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let upgraded = match hyper::upgrade::on(request).await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(conn, "upgrade failed: {e}");
                return;
            }
        };
        // tungstenite reads through a 128 KiB buffer by default, allocated per
        // connection: most of an idle connection's memory. 8 KiB costs big messages a few
        // more reads and idle connections 120 KiB less each.
        let config = WebSocketConfig::default()
            .read_buffer_size(8 << 10)
            .max_message_size(Some(server.config().limits.max_message_bytes))
            .max_frame_size(Some(server.config().limits.max_message_bytes));
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        server.metrics().connections.inc();
        crate::connection::serve(ws, server.clone(), principal, conn, stopped).await;
        server.metrics().connections.dec();
        drop(place);
        drop(permit);
    });
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// `/metrics`: everything, as OpenMetrics text.
pub(crate) fn metrics_page(metrics: &crate::metrics::Metrics) -> Response<Body> {
    let mut response = text(StatusCode::OK, metrics.render());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// Serves `/metrics` alone on `listener` (`--metrics-listen`), until `stopped`.
pub(crate) async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: Arc<crate::metrics::Metrics>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("metrics accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let metrics = metrics.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(
                        match (request.method(), request.uri().path()) {
                            (&Method::GET, "/metrics") => metrics_page(&metrics),
                            _ => text(StatusCode::NOT_FOUND, "only /metrics here\n"),
                        },
                    )
                }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Proves storage works end to end: a one-change document is appended, flushed, loaded
/// back, read by Automerge and removed.
async fn health(server: &Server) -> Response<Body> {
    let store = server.store().clone();
    let check = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        use automerge::transaction::Transactable;
        let mut doc = automerge::AutoCommit::new();
        doc.put(automerge::ROOT, "health", "check")?;
        let heads = doc.get_heads();
        let change = doc
            .get_changes(&[])
            .first()
            .map(|c| NewChange {
                hash: c.hash().0,
                bytes: c.raw_bytes().to_vec(),
            })
            .ok_or_else(|| anyhow::anyhow!("automerge made no change"))?;
        let id = DocumentId::random();
        store.append(&id, &[change])?;
        store.flush()?;
        let loaded = store
            .load(&id)?
            .ok_or_else(|| anyhow::anyhow!("a stored document did not come back"))?;
        let back = automerge::Automerge::load(&loaded.concat())?;
        store.remove(&id)?;
        store.flush()?;
        anyhow::ensure!(
            back.get_heads() == heads,
            "a stored document came back different"
        );
        Ok(())
    });
    let checked = tokio::time::timeout(server.config().storage_timeout, check).await;
    let deaf = server.store().shared().is_some_and(|s| !s.listening());
    match checked {
        Ok(Ok(Ok(()))) if deaf => {
            tracing::warn!("health check: not hearing the other nodes' announcements");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not hearing the other nodes on the database (its connection was lost; reconnecting)\n",
            )
        }
        Ok(Ok(Ok(()))) => text(StatusCode::OK, "ok\n"),
        Ok(Ok(Err(e))) => {
            tracing::error!("health check failed: {e:#}");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("health check failed: {e:#}\n"),
            )
        }
        Ok(Err(e)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("health check failed: {e}\n"),
        ),
        Err(_) => {
            let seconds = server.config().storage_timeout.as_secs_f64();
            tracing::error!("health check: storage did not answer within {seconds} s");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("storage did not answer within {seconds} s\n"),
            )
        }
    }
}

/// `GET`/`PUT /v1/journal`: which document is the account's journal.
async fn journal(request: Request<Incoming>, server: &Server) -> Response<Body> {
    let principal = match authenticate(server, &request) {
        Ok(principal) => principal,
        Err(answer) => return *answer,
    };
    if principal.kind == TokenKind::Share {
        return text(
            StatusCode::FORBIDDEN,
            "a share token cannot use this route\n",
        );
    }
    let accounts = server.accounts().clone();
    let account = principal.account.clone();
    if request.method() == Method::GET {
        return match tokio::task::spawn_blocking(move || accounts.journal(&account)).await {
            Ok(Ok(id)) => json(
                StatusCode::OK,
                serde_json::json!({ "journal": id.map(|i| i.to_string()) }),
            ),
            _ => text(StatusCode::SERVICE_UNAVAILABLE, "storage failed\n"),
        };
    }
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body must be {\"journal\": \"<document id>\"}\n",
            );
        }
    };
    let proposed = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("journal")?.as_str()?.parse::<DocumentId>().ok());
    let Some(proposed) = proposed else {
        return text(
            StatusCode::BAD_REQUEST,
            "the body must be {\"journal\": \"<document id>\"}\n",
        );
    };
    let registered = server
        .records(move |state| state.accounts().register_journal(&account, &proposed))
        .await;
    match registered {
        Ok(Registered::Journal(id)) => {
            tracing::info!(account = %principal.account, journal = %id, "journal registered");
            json(
                StatusCode::OK,
                serde_json::json!({ "journal": id.to_string() }),
            )
        }
        Ok(Registered::NotOwned) => text(
            StatusCode::CONFLICT,
            "sync that document to the server before registering it as the journal\n",
        ),
        _ => text(StatusCode::SERVICE_UNAVAILABLE, "storage failed\n"),
    }
}
