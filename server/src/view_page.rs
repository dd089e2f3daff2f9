//! `GET /view/<share token>`: the buddy's web page, rendered here from the share view
//! document (no external assets, readable on a phone), and `GET /view/<token>/events`,
//! server-sent events that carry the re-rendered page whenever an owner device stores new
//! changes to the view. Without JavaScript the page is simply static. An unknown or revoked
//! token gets a plain 404 page, an expired one 410. Nothing logs these paths (the token is
//! the credential).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use nudge_journal::share::{ShareView, read_view};
use tokio::sync::mpsc;

use crate::respond::{Body, full};
use crate::server::Server;
use crate::shares::{Lookup, ShareRecord};
use crate::view_render::{STYLE, esc, fragment, heading};

/// How often an open event stream checks that its share still works.
const RECHECK: Duration = Duration::from_secs(1);
/// How often an idle event stream sends a comment, so proxies keep it open.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// An event stream with no update for this long ends.
const IDLE_STREAM: Duration = Duration::from_secs(10 * 60);

fn page(status: StatusCode, title: &str, body: &str) -> Response<Body> {
    let html = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        esc(title)
    );
    let mut response = Response::new(full(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    locked_down(headers);
    response
}

/// What a page may do: run its one script (by hash), style itself, open its event stream;
/// nothing else, and no other site may frame it.
fn content_security_policy() -> &'static HeaderValue {
    static POLICY: std::sync::OnceLock<HeaderValue> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let script = SCRIPT
            .strip_prefix("<script>")
            .and_then(|s| s.strip_suffix("</script>"))
            .unwrap_or(SCRIPT);
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
        // The bars' heights are inline style attributes: styles stay inline-only.
        HeaderValue::from_str(&format!(
            "default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ))
        .expect("a header value of ASCII")
    })
}

/// The headers every `/view/` response carries, pages and event streams alike.
fn locked_down(headers: &mut hyper::HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        content_security_policy().clone(),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// Live updates, as progressive enhancement: replaces the main part with each `view` event,
/// tells screen readers the new numbers (the `live` region), keeps "updated N minutes ago"
/// current, and sends cheers (`POST /v1/shares/<token>/cheers`). `data-live` on the body
/// says the stream is open.
const SCRIPT: &str = "<script>(function(){\
function say(){var s=document.getElementById('say'),l=document.getElementById('live');if(s&&l){l.textContent=s.textContent;}}\
function tick(){var u=document.getElementById('updated');if(!u){return;}var m=Math.floor((Date.now()-Number(u.getAttribute('data-at')))/60000),h=Math.floor(m/60),d=Math.floor(m/1440);\
u.textContent=m<1?'just now':m<60?m+(m==1?' minute':' minutes')+' ago':m<2880?h+(h==1?' hour':' hours')+' ago':d+' days ago';}\
setInterval(tick,30000);\
if(window.EventSource){var es=new EventSource(location.pathname.replace(/\\/$/,'')+'/events');\
es.addEventListener('open',function(){document.body.setAttribute('data-live','1');});\
es.addEventListener('view',function(e){document.getElementById('view').innerHTML=e.data;say();});\
es.addEventListener('gone',function(e){document.getElementById('status').innerHTML='<p class=gone>'+e.data+'</p>';es.close();});}\
var f=document.getElementById('cheer');if(f&&window.fetch){f.hidden=false;f.addEventListener('submit',function(ev){ev.preventDefault();\
var t=document.getElementById('cheer-text'),s=document.getElementById('cheer-status'),k=location.pathname.replace(/\\/$/,'').split('/').pop();\
fetch('/v1/shares/'+k+'/cheers',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({text:t.value})})\
.then(function(r){return r.text().then(function(b){if(r.ok){t.value='';s.textContent='Sent. Thank you!';}else{s.textContent=b.trim();}});})\
.catch(function(){s.textContent='Not sent: the server cannot be reached.';});});}})();</script>";

/// A cheer back to the owner: shown by the script (it posts with `fetch`; without
/// JavaScript the page stays read-only).
const CHEER_FORM: &str = "<form id=cheer hidden><label for=cheer-text>Send a cheer</label><br>\
<textarea id=cheer-text maxlength=500 rows=2 required></textarea><br><button type=submit>Send a cheer</button> <span id=cheer-status role=status></span></form>";

/// Loads and renders a share's view: the page's main part, and its title.
async fn render(
    server: &Arc<Server>,
    record: &ShareRecord,
    share_id: &str,
) -> anyhow::Result<(String, String)> {
    let doc = record
        .doc()
        .ok_or_else(|| anyhow::anyhow!("the share names a bad document"))?;
    let store = server.store().clone();
    let share_id = share_id.to_owned();
    let (stored, cheers) = tokio::task::spawn_blocking(move || {
        anyhow::Ok((store.load(&doc)?, crate::cheers::sent(&store, &share_id)?))
    })
    .await??;
    let Some(stored) = stored else {
        let title = heading(&ShareView::default(), &record.name);
        return Ok((
            format!(
                "<h1 id=who>{}</h1><p class=muted>Nothing shared yet.</p>",
                esc(&title)
            ),
            title,
        ));
    };
    let automerge = automerge::Automerge::load(&stored.concat())?;
    let view = read_view(&automerge)?;
    let main = fragment(
        &view,
        &cheers,
        &record.name,
        jiff::Timestamp::now(),
        &jiff::tz::TimeZone::system(),
    );
    Ok((main, heading(&view, &record.name)))
}

/// Serves `/view/...`.
pub async fn route(
    path: &str,
    server: &Arc<Server>,
    ip: std::net::IpAddr,
    socket: &Arc<crate::capacity::Socket>,
) -> Response<Body> {
    let rest = path.trim_start_matches("/view/");
    let (token, events) = match rest.strip_suffix("/events") {
        Some(token) => (token, true),
        None => (rest, false),
    };
    let record = match server.shares().lookup(token) {
        Lookup::Live(record) => record,
        Lookup::Unavailable => {
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again in a moment",
                "<h1>Not available right now</h1><p>The server cannot reach its storage. Try again in a moment.</p>",
            );
        }
        Lookup::Expired => {
            return page(
                StatusCode::GONE,
                "Link expired",
                "<h1>This link has expired</h1><p>Ask for a new one.</p>",
            );
        }
        Lookup::Unknown => {
            return crate::respond::refused_from(
                server,
                ip,
                page(
                    StatusCode::NOT_FOUND,
                    "Unknown link",
                    "<h1>This link does not work</h1><p>It is unknown here, or it was revoked.</p>",
                ),
            );
        }
    };
    let share_id = token
        .parse::<nudge_protocol::Token>()
        .map(|t| t.id().to_owned())
        .unwrap_or_default();
    if events {
        // A stream counts against its share link, like a websocket does.
        return match socket.authenticated(nudge_protocol::TokenKind::Share, &share_id) {
            Ok(place) => event_stream(server.clone(), token.to_owned(), share_id, record, place),
            Err(full) => {
                server.metrics().connections_refused.inc();
                crate::respond::busy(&full)
            }
        };
    }
    let (main, title) = match render(server, &record, &share_id).await {
        Ok(rendered) => rendered,
        Err(e) => {
            tracing::warn!(share = %record.name, "cannot render a share view: {e:#}");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not available",
                "<h1>Not available right now</h1>",
            );
        }
    };
    page(
        StatusCode::OK,
        &title,
        &format!(
            "<div id=status></div><main id=view>{main}</main><p id=live class=sr aria-live=polite></p>{CHEER_FORM}<p class=muted>Read-only, but for cheers. Updates live when they sync.</p>{SCRIPT}"
        ),
    )
}

/// One server-sent event. A CR, LF or CRLF inside `data` would end the field (and a blank
/// line the event) in the reader's parser, so every line of it gets a `data:` of its own.
fn sse(event: &str, data: &str) -> Bytes {
    let mut out = format!("event: {event}\n");
    for line in data.split(['\r', '\n']) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// The live stream: the page's main part now, then again after every stored change to the
/// view or to the share's cheers; `gone` (and the end) once the share stops working.
fn event_stream(
    server: Arc<Server>,
    token: String,
    share_id: String,
    record: ShareRecord,
    place: crate::capacity::Authenticated,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let mut updates = server.documents().updates.subscribe();
    let doc = record.doc();
    // A new cheer shows on the page too.
    let cheers = nudge_protocol::cheers_doc(&share_id);
    tokio::spawn(async move {
        // Held for as long as the stream lasts.
        let _place = place;
        let mut quiet_since = tokio::time::Instant::now();
        if let Ok((main, _)) = render(&server, &record, &share_id).await
            && tx.send(sse("view", &main)).await.is_err()
        {
            return;
        }
        let mut recheck = tokio::time::interval(RECHECK);
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        loop {
            let changed = tokio::select! {
                update = updates.recv() => match update {
                    Ok(id) => Some(id) == doc || id == cheers,
                    // Missed some: render anyway.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                    Err(_) => return,
                },
                _ = recheck.tick() => {
                    match server.shares().lookup(&token) {
                        // Moved to a new view (`share_views.rs`): the page's EventSource
                        // comes back by itself, to the new one.
                        Lookup::Live(now) if now.view_doc != record.view_doc => return,
                        // Storage cannot say now: the stream goes on.
                        Lookup::Live(_) | Lookup::Unavailable => {}
                        _ => {
                            let _ = tx.send(sse("gone", "This link no longer works.")).await;
                            return;
                        }
                    }
                    false
                }
                _ = keepalive.tick() => {
                    // Nothing new for long: end the stream (the page's EventSource comes
                    // back by itself, checked again like any new visitor).
                    if quiet_since.elapsed() >= IDLE_STREAM {
                        return;
                    }
                    if tx.send(Bytes::from_static(b": keepalive\n\n")).await.is_err() {
                        return;
                    }
                    false
                }
            };
            if changed {
                quiet_since = tokio::time::Instant::now();
            }
            if changed
                && let Ok((main, _)) = render(&server, &record, &share_id).await
                && tx.send(sse("view", &main)).await.is_err()
            {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    locked_down(headers);
    response
}
