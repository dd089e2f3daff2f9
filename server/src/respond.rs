//! What every route answers with, and the credential check in front of them: response
//! bodies, text and JSON answers, the presented token, the failed-attempt count and its
//! 429. A leaf: the routes (`http.rs`, `admin.rs`, `device_routes.rs`, `shares.rs`,
//! `share_views.rs`, `view_page.rs`) use it; it uses none of them.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use crate::accounts::Principal;
use crate::server::Server;

/// Every response body: whole (most routes) or streamed (the live view's events).
pub(crate) type Body = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// A whole body.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// Largest request body accepted (the journal route's JSON).
pub(crate) const MAX_BODY: usize = 4096;

pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut response = Response::new(full(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pub(crate) fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The token a request carries: `Authorization: Bearer <token>`, or `?token=<token>` for
/// clients that cannot set headers (browsers).
pub(crate) fn presented_token<B>(request: &Request<B>) -> Option<String> {
    if let Some(value) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(token) = value.strip_prefix("Bearer ")
    {
        return Some(token.trim().to_owned());
    }
    request
        .uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token=").map(str::to_owned))
}

/// The principal of the token a request presents; else the answer to send: 401, or 429
/// once the client's address has failed too often. A valid token is never throttled.
pub(crate) fn authenticate<B>(
    server: &Server,
    request: &Request<B>,
) -> Result<Principal, Box<Response<Body>>> {
    let found = match presented_token(request) {
        Some(token) => server.accounts().authenticate(&token),
        None => Ok(None),
    };
    match found {
        Ok(Some(principal)) => Ok(principal),
        Ok(None) => Err(Box::new(refused(server, request, unauthorized()))),
        Err(e) => {
            tracing::error!("cannot check a token: {e}");
            Err(Box::new(unavailable()))
        }
    }
}

/// 503: storage cannot answer (a shared database that is unreachable or restarting).
pub(crate) fn unavailable() -> Response<Body> {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server cannot reach its storage right now; try again in a moment\n",
    )
}

/// The client address `serve` recorded for a request.
pub(crate) fn peer_ip<B>(request: &Request<B>) -> std::net::IpAddr {
    request
        .extensions()
        .get::<crate::throttle::PeerIp>()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |p| p.0)
}

/// Counts a failed credential (token, link code, share link, admin secret) against the
/// client's address and answers `answer`, or 429 once that address is over its budget.
pub(crate) fn refused<B>(
    server: &Server,
    request: &Request<B>,
    answer: Response<Body>,
) -> Response<Body> {
    refused_from(server, peer_ip(request), answer)
}

/// [`refused`], for a request whose address was taken out already.
pub(crate) fn refused_from(
    server: &Server,
    ip: std::net::IpAddr,
    answer: Response<Body>,
) -> Response<Body> {
    server.metrics().auth_failures.inc();
    if server.throttle().blocked(ip) {
        return text(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed attempts from your address; check the token or link, then retry in a few seconds\n",
        );
    }
    server.throttle().failed(ip);
    answer
}

/// The answer when storage work for a request failed (logged, with its cause).
pub(crate) fn storage_failed(e: impl std::fmt::Display) -> Response<Body> {
    tracing::error!("request failed: {e}");
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("storage failed: {e}\n"),
    )
}

/// The answer when a connection finds no room (`capacity.rs`); the socket closes after it.
pub(crate) fn busy(full: &crate::capacity::Full) -> Response<Body> {
    let mut response = text(StatusCode::SERVICE_UNAVAILABLE, format!("{full}\n"));
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

pub(crate) fn unauthorized() -> Response<Body> {
    text(
        StatusCode::UNAUTHORIZED,
        "missing, unknown or revoked token\n",
    )
}
