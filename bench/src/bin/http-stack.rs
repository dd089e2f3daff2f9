//! `http-stack hyper|axum`: the websocket path of nudge-server on two HTTP stacks, to
//! decide by measurement whether its routes should move from hand-written hyper to axum
//! (`bench/http-stack.sh`, docs/PERFORMANCE.md). Both do what nudge-server does before a
//! connection reaches its documents: an HTTP/1 request with a bearer token, the upgrade,
//! tungstenite with an 8 KiB read buffer, and the `join`/`peer` handshake; after it they
//! echo every binary message back, so that a client times the round trip through the stack
//! alone. jemalloc, as nudge-server. Prints `listening on ADDR`.
//!
//! ```text
//! http-stack hyper     # hyper 1 + hyper-util, the upgrade by hand (server/src/http.rs)
//! http-stack axum      # axum 0.8: a Router and its WebSocketUpgrade extractor
//! ```

use anyhow::{Context, Result, bail};
use nudge_protocol::Message;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// tungstenite's read buffer, as nudge-server sets it.
const READ_BUFFER: usize = 8 << 10;

/// The answer to a `join`, or why there is none.
fn answer(join: &[u8]) -> Result<Vec<u8>> {
    match Message::decode(join)? {
        Message::Join { sender_id, .. } => Ok(Message::Peer {
            sender_id: "http-stack".into(),
            target_id: sender_id,
            selected_protocol_version: "1".into(),
            metadata: None,
        }
        .encode()),
        other => bail!("expected join, got {other:?}"),
    }
}

/// Whether a request carries a bearer token (any: the stack is measured, not the check).
fn bearer(value: Option<&hyper::header::HeaderValue>) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ") && v.len() > 7)
}

mod on_hyper {
    use std::convert::Infallible;

    use futures_util::{SinkExt, StreamExt};
    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper::header::{self, HeaderValue};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response, StatusCode};
    use hyper_util::rt::TokioIo;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

    fn status(code: StatusCode) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = code;
        response
    }

    fn upgrade(request: Request<Incoming>) -> Response<Full<Bytes>> {
        if request.uri().path() != "/v1/sync" {
            return status(StatusCode::NOT_FOUND);
        }
        if !super::bearer(request.headers().get(header::AUTHORIZATION)) {
            return status(StatusCode::UNAUTHORIZED);
        }
        let Some(key) = request.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
            return status(StatusCode::BAD_REQUEST);
        };
        let accept = derive_accept_key(key.as_bytes());
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(request).await else {
                return;
            };
            let config = WebSocketConfig::default().read_buffer_size(super::READ_BUFFER);
            let mut ws = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(config),
            )
            .await;
            let Some(Ok(WsMessage::Binary(join))) = ws.next().await else {
                return;
            };
            let Ok(peer) = super::answer(&join) else {
                return;
            };
            if ws.send(WsMessage::Binary(peer.into())).await.is_err() {
                return;
            }
            while let Some(Ok(message)) = ws.next().await {
                if let WsMessage::Binary(bytes) = message
                    && ws.send(WsMessage::Binary(bytes)).await.is_err()
                {
                    return;
                }
            }
        });
        let mut response = status(StatusCode::SWITCHING_PROTOCOLS);
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(value) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
        }
        response
    }

    pub async fn serve(listener: tokio::net::TcpListener) -> anyhow::Result<()> {
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service =
                    service_fn(|request| async move { Ok::<_, Infallible>(upgrade(request)) });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    }
}

mod on_axum {
    use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use futures_util::StreamExt;

    async fn session(mut ws: WebSocket) {
        let Some(Ok(AxMessage::Binary(join))) = ws.next().await else {
            return;
        };
        let Ok(peer) = super::answer(&join) else {
            return;
        };
        if ws.send(AxMessage::Binary(peer.into())).await.is_err() {
            return;
        }
        while let Some(Ok(message)) = ws.next().await {
            if let AxMessage::Binary(bytes) = message
                && ws.send(AxMessage::Binary(bytes)).await.is_err()
            {
                return;
            }
        }
    }

    async fn sync(headers: HeaderMap, upgrade: WebSocketUpgrade) -> Response {
        if !super::bearer(headers.get(header::AUTHORIZATION)) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        upgrade
            .read_buffer_size(super::READ_BUFFER)
            .on_upgrade(session)
    }

    pub async fn serve(listener: tokio::net::TcpListener) -> anyhow::Result<()> {
        use axum::serve::ListenerExt;
        let app = axum::Router::new().route("/v1/sync", get(sync));
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await?;
        Ok(())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let stack = std::env::args()
        .nth(1)
        .context("usage: http-stack hyper|axum")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    match stack.as_str() {
        "hyper" => on_hyper::serve(listener).await,
        "axum" => on_axum::serve(listener).await,
        other => bail!("unknown stack {other:?}: hyper or axum"),
    }
}
