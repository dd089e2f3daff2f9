//! `nudge-load`: many websocket clients against a real `nudge-server` on loopback.
//!
//! Each journal has a writer (a change every `--interval-ms`) and an observer (another
//! device of the account on the same document); the time from a writer's commit to its
//! observer holding the change is the propagation latency. `--stalled` adds a client that
//! joins the busiest document and never reads: the server must disconnect it and the
//! others must not notice. Prints one JSON object: throughput, latency percentiles, server
//! RSS and CPU, whether the stalled client was disconnected. Starts its own server on a
//! temporary folder (the `nudge-server` binary beside this one), talks to 127.0.0.1 only,
//! stops by itself. With `--addr ADDR --pid PID` it loads a server that is already running
//! instead, ours or another automerge-repo server (bench/compare.sh).
//!
//! `--followers N` gives N journals an accountability buddy: the journal's writer also
//! refreshes a share view (a second document, as `nudge sync` does), shared with a read-only
//! share token, and a follower holding that token watches the view; the time from the
//! writer's commit to the follower seeing it is reported apart.
//!
//! ```text
//! cargo build --release --workspace --bins
//! target/release/nudge-load --clients 1000 --seconds 30            # docs/reliability.md
//! target/release/nudge-load --clients 1000 --seconds 30 --stalled
//! ```

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use automerge::sync::{State as SyncState, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ReadDoc, ScalarValue, Value};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use nudge_protocol::Message;
use nudge_store::DocumentId;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use nudge_testkit::peer::{Peer, close};

/// Load against a nudge-server.
#[derive(Parser)]
#[command(name = "nudge-load", about)]
struct Args {
    /// Websocket connections (half writers, half observers).
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// How long to write.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Milliseconds between one writer's changes.
    #[arg(long, default_value_t = 250)]
    interval_ms: u64,
    /// Add a client that joins the busiest document and never reads.
    #[arg(long)]
    stalled: bool,
    /// Journals (of the first ones) that also have a share view and a buddy following it
    /// with a share token: two more connections each.
    #[arg(long, default_value_t = 0)]
    followers: usize,
    /// Seconds the server waits on a stalled send (its --send-timeout).
    #[arg(long, default_value_t = 2)]
    send_timeout: u64,
    /// Seconds of silence before the server pings a connection (its --idle-timeout); a
    /// client that never reads is closed after twice that.
    #[arg(long, default_value_t = 60)]
    idle_timeout: u64,
    /// Load a server that is already running at this address (any automerge-repo sync
    /// server: bench/compare.sh points it at samod and Node too) instead of starting one;
    /// the token, if it needs one, from NUDGE_TOKEN. Share views and the stalled client
    /// need our server, so `--followers` and `--stalled` do not go with it.
    #[arg(long, requires = "pid", conflicts_with_all = ["followers", "stalled"])]
    addr: Option<String>,
    /// With `--addr`: the server's process id, for its CPU time and memory.
    #[arg(long, requires = "addr")]
    pid: Option<u32>,
}

/// Our server on a temporary folder, gone with it.
struct Server {
    process: nudge_testkit::Server,
    _data: tempfile::TempDir,
}

impl std::ops::Deref for Server {
    type Target = nudge_testkit::Server;

    fn deref(&self) -> &Self::Target {
        &self.process
    }
}

fn start_server(send_timeout: u64, idle_timeout: u64) -> Result<(Server, String)> {
    let data = tempfile::tempdir()?;
    let token = nudge_testkit::add_account(data.path(), "load")?;
    let (send_timeout, idle_timeout) = (send_timeout.to_string(), idle_timeout.to_string());
    let level = std::env::var("RUST_LOG").ok();
    let process = nudge_testkit::Server::launch(nudge_testkit::Launch {
        extra: &[
            "--max-connections",
            "100000",
            // Every simulated device comes from 127.0.0.1.
            "--max-connections-per-address",
            "0",
            "--send-timeout",
            &send_timeout,
            "--idle-timeout",
            &idle_timeout,
        ],
        stderr: if std::env::var_os("NUDGE_LOAD_SERVER_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        },
        log: level.as_deref(),
        ..nudge_testkit::Launch::new(data.path())
    })?;
    Ok((
        Server {
            process,
            _data: data,
        },
        token,
    ))
}

/// (utime + stime) in clock ticks, and RSS in KiB, of a process.
fn usage(pid: u32) -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = fields
        .get(11)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    let rss = nudge_testkit::rss_kib(pid).unwrap_or(0);
    Ok((ticks, rss))
}

/// Shares `view` with a buddy (`POST /v1/shares`, the account token); returns the share
/// token.
async fn share(addr: &str, token: &str, view: DocumentId, name: String) -> Result<String> {
    let (url, auth) = (
        format!("http://{addr}/v1/shares"),
        format!("Bearer {token}"),
    );
    let body = serde_json::json!({ "view_doc": view.to_string(), "scope": "counts", "name": name });
    let answer = tokio::task::spawn_blocking(move || -> Result<serde_json::Value> {
        let mut response = ureq::post(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .send(body.to_string())?;
        Ok(serde_json::from_str(
            &response.body_mut().read_to_string()?,
        )?)
    })
    .await??;
    answer["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no share token in {answer}"))
}

/// The counter a document holds.
fn counter(doc: &Automerge) -> Option<i64> {
    match doc.get(ROOT, "n").ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Int(i) => Some(*i),
            _ => None,
        },
        _ => None,
    }
}

type Sent = Arc<Mutex<HashMap<(usize, i64), Instant>>>;

/// One change to the counter, sent at once.
async fn bump(peer: &mut Peer, n: i64, sent: &Sent, journal: usize) -> Result<()> {
    let mut tx = peer.doc.transaction();
    tx.put(ROOT, "n", n)?;
    tx.commit();
    sent.lock()
        .expect("lock")
        .insert((journal, n), Instant::now());
    peer.state.in_flight = false;
    peer.send_pending().await
}

/// Waits (5 s at most) until the server has acknowledged everything `peer` wrote, reading
/// and answering as a real device does before it leaves; false if it never did.
async fn settle(peer: &mut Peer) -> bool {
    let acked = |p: &Peer| p.state.their_heads.as_ref() == Some(&p.doc.get_heads());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !acked(peer) {
        match tokio::time::timeout_at(deadline.into(), peer.ws.next()).await {
            Ok(Some(Ok(WsMessage::Binary(b)))) => {
                if peer.receive(&b).await.is_err() {
                    return false;
                }
            }
            Ok(Some(Ok(_))) => {}
            _ => return false,
        }
    }
    true
}

/// The next message on `peer`'s socket, or never when there is no peer.
async fn next_of(
    peer: &mut Option<Peer>,
) -> Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>> {
    match peer {
        Some(p) => p.ws.next().await,
        None => std::future::pending().await,
    }
}

/// A journal's device: a change every `interval`; with a view, the view gets the same
/// counter right after (the device refreshing its buddy's share view).
async fn writer(
    mut peer: Peer,
    mut view: Option<Peer>,
    journal: usize,
    (sent, view_sent): (Sent, Sent),
    interval: Duration,
    until: Instant,
) -> Result<()> {
    let mut tick = tokio::time::interval(interval);
    let mut n = 0i64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if Instant::now() >= until {
                    // Like a real device: leave once the server has acknowledged
                    // everything. A change sent just before leaving is otherwise not
                    // acknowledged, and may be lost with the connection (a device keeps
                    // and resends it; this generator would not).
                    let mut settled = settle(&mut peer).await;
                    if let Some(view) = view.as_mut() {
                        settled &= settle(view).await;
                    }
                    close(&mut peer.ws).await;
                    if let Some(view) = view.as_mut() {
                        close(&mut view.ws).await;
                    }
                    if !settled {
                        bail!("writer {journal}: its last changes were never acknowledged");
                    }
                    return Ok(());
                }
                n += 1;
                bump(&mut peer, n, &sent, journal).await?;
                if let Some(view) = view.as_mut() {
                    bump(view, n, &view_sent, journal).await?;
                }
            }
            next = peer.ws.next() => match next {
                Some(Ok(WsMessage::Binary(b))) => {
                    peer.receive(&b).await?;
                }
                Some(Ok(_)) => {}
                _ => bail!("writer {journal} lost its connection"),
            },
            next = next_of(&mut view) => match (next, view.as_mut()) {
                (Some(Ok(WsMessage::Binary(b))), Some(view)) => {
                    view.receive(&b).await?;
                }
                (Some(Ok(_)), _) => {}
                _ => bail!("writer {journal} lost its view's connection"),
            }
        }
    }
}

async fn observer(
    mut peer: Peer,
    journal: usize,
    sent: Sent,
    latencies: Arc<Mutex<Vec<Duration>>>,
    until: Instant,
) -> Result<()> {
    let mut seen = 0i64;
    // One deadline, not a fresh wait per message: the server's idle pings would otherwise
    // keep an observer waiting forever. After the writers stop, an observer leaves as
    // soon as it has seen all of its journal's changes, or at the deadline.
    let deadline = until + Duration::from_secs(10);
    let pending = |sent: &Sent| {
        sent.lock()
            .expect("lock")
            .keys()
            .any(|(j, _)| *j == journal)
    };
    loop {
        if Instant::now() >= until && !pending(&sent) {
            return Ok(());
        }
        let wait =
            (until + Duration::from_millis(200)).max(Instant::now() + Duration::from_millis(200));
        let next = match tokio::time::timeout_at(wait.min(deadline).into(), peer.ws.next()).await {
            Ok(next) => next,
            Err(_) if Instant::now() >= deadline => return Ok(()),
            Err(_) => continue,
        };
        match next {
            Some(Ok(WsMessage::Binary(b))) => {
                peer.receive(&b).await?;
                if let Some(n) = counter(&peer.doc).filter(|n| *n > seen) {
                    let now = Instant::now();
                    let mut sent = sent.lock().expect("lock");
                    let mut lat = latencies.lock().expect("lock");
                    for k in seen + 1..=n {
                        if let Some(at) = sent.remove(&(journal, k)) {
                            lat.push(now - at);
                        }
                    }
                    seen = n;
                }
            }
            Some(Ok(_)) => {}
            _ => bail!("observer {journal} lost its connection"),
        }
    }
}

/// A client that joins `id` and then never reads; returns whether the server closed it.
async fn stalled(addr: String, token: String, id: DocumentId, until: Instant) -> Result<bool> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    // A tiny receive buffer, so that the server's sends back up quickly.
    socket.set_recv_buffer_size(4096)?;
    let stream = socket.connect(addr.parse()?).await?;
    let mut request = format!("ws://{addr}/v1/sync").into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (ws, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await?;
    let mut ws = ws;
    let server = nudge_testkit::peer::join(&mut ws, "stalled").await?;
    let mut doc = Automerge::new();
    let mut state = SyncState::new();
    let m = doc
        .generate_sync_message(&mut state)
        .ok_or_else(|| anyhow!("no first message"))?;
    let request = Message::Request {
        document_id: id.to_string(),
        sender_id: "stalled".into(),
        target_id: server,
        data: m.encode(),
    };
    ws.send(WsMessage::Binary(request.encode().into())).await?;
    let _ = &mut doc;
    // Never read while the others write; then see whether the server gave up on us
    // (whatever it sent meanwhile is still queued here, then its close).
    tokio::time::sleep_until(until.into()).await;
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(1), ws.next()).await {
            Ok(Some(Ok(WsMessage::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => break true,
            Ok(Some(Ok(_))) => continue,
            Err(_) => break false,
        }
    };
    Ok(closed)
}

/// A journal's writer (its document pushed and acknowledged) and observer (asking for
/// it); with `follow`, also the writer's share view and the buddy following it.
async fn setup(
    addr: String,
    token: String,
    j: usize,
    follow: bool,
) -> Result<(Peer, Peer, Option<(Peer, Peer)>)> {
    let w = push(&addr, &token, format!("w{j}"), false).await?;
    let o = ask(&addr, &token, format!("o{j}"), w.id).await?;
    if !follow {
        return Ok((w, o, None));
    }
    let view = push(&addr, &token, format!("v{j}"), true).await?;
    let share_token = share(&addr, &token, view.id, format!("buddy{j}")).await?;
    let buddy = ask(&addr, &share_token, format!("b{j}"), view.id).await?;
    Ok((w, o, Some((view, buddy))))
}

/// A new document with the counter at 0, pushed and acknowledged.
/// Pushes a new document; with `view`, one made as a share view (the server shares
/// nothing else).
async fn push(addr: &str, token: &str, me: String, view: bool) -> Result<Peer> {
    let id = DocumentId::random();
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    if view {
        tx.put(ROOT, "kind", "nudge-share")?;
    }
    tx.put(ROOT, "n", 0i64)?;
    tx.commit();
    let heads = doc.get_heads();
    let mut w = Peer::join(addr, token, me.clone(), id, doc).await?;
    w.send_pending().await?;
    // Settle: the server has it before the observer asks.
    let started = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_millis(100), w.ws.next()).await {
            Ok(Some(Ok(WsMessage::Binary(b)))) => {
                w.receive(&b).await?;
            }
            Ok(Some(Ok(_))) => {}
            Ok(_) => bail!("{me}: the connection closed during setup"),
            Err(_)
                if w.state
                    .their_heads
                    .as_ref()
                    .is_some_and(|h| heads.iter().all(|x| h.contains(x))) =>
            {
                break;
            }
            Err(_) if started.elapsed() > Duration::from_secs(60) => {
                bail!("{me}: the document was never acknowledged")
            }
            // No answer for 100 ms: say it again, as a device does (a server may leave a
            // first message for a document it has never seen unanswered; samod 0.16 does).
            Err(_) => {
                w.state.in_flight = false;
                w.send_pending().await?
            }
        }
    }
    Ok(w)
}

/// Another device (or, with a share token, a buddy) asking for `id`.
async fn ask(addr: &str, token: &str, me: String, id: DocumentId) -> Result<Peer> {
    // It holds nothing: its first message is a `request`.
    let mut o = Peer::join(addr, token, me, id, Automerge::new()).await?;
    o.send_pending().await?;
    Ok(o)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn main() -> Result<()> {
    let args = Args::parse();
    // Two sockets per client in this process, one per client in the server (inherited).
    let _ = rlimit::increase_nofile_limit((args.clients as u64 * 3 + 256).max(4096));
    let (server, token, pid) = match (&args.addr, args.pid) {
        (Some(_), Some(pid)) => {
            let token = std::env::var("NUDGE_TOKEN").unwrap_or_default();
            (None, token, pid)
        }
        _ => {
            let (server, token) = start_server(args.send_timeout, args.idle_timeout)?;
            let pid = server.child.id();
            (Some(server), token, pid)
        }
    };
    let addr = match (&server, &args.addr) {
        (Some(server), _) => server.addr.clone(),
        (None, Some(addr)) => addr.clone(),
        (None, None) => unreachable!("a server is started when no address is given"),
    };
    let journals = (args.clients / 2).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        // Set up every journal at once: a writer that pushed it, an observer that asked.
        let setups: Vec<_> = (0..journals)
            .map(|j| tokio::spawn(setup(addr.clone(), token.clone(), j, j < args.followers)))
            .collect();
        let mut writers = Vec::new();
        let mut observers = Vec::new();
        let mut follows = Vec::new();
        let mut ids = Vec::new();
        for s in setups {
            let (w, o, f) = s.await??;
            ids.push(w.id);
            writers.push(w);
            observers.push(o);
            follows.push(f);
        }
        let followers = follows.iter().filter(|f| f.is_some()).count();
        let (ticks0, _) = usage(pid)?;
        let started = Instant::now();
        let until = started + Duration::from_secs(args.seconds);
        let sent: Sent = Arc::default();
        let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let view_sent: Sent = Arc::default();
        let view_latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let stall = args.stalled.then(|| tokio::spawn(stalled(addr.clone(), token.clone(), ids[0], until)));
        let mut tasks = Vec::new();
        for (j, ((w, o), f)) in writers.into_iter().zip(observers).zip(follows).enumerate() {
            let (view, buddy) = f.unzip();
            if let Some(buddy) = buddy {
                tasks.push(tokio::spawn(observer(buddy, j, view_sent.clone(), view_latencies.clone(), until)));
            }
            tasks.push(tokio::spawn(writer(w, view, j, (sent.clone(), view_sent.clone()), Duration::from_millis(args.interval_ms), until)));
            tasks.push(tokio::spawn(observer(o, j, sent.clone(), latencies.clone(), until)));
        }
        let mut peak_rss = 0;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(500)).await;
            peak_rss = peak_rss.max(usage(pid)?.1);
        }
        let mut failures = 0;
        for t in tasks {
            if !matches!(t.await, Ok(Ok(()))) {
                failures += 1;
            }
        }
        let elapsed = started.elapsed();
        let (ticks1, rss) = usage(pid)?;
        let stalled_closed = match stall {
            Some(t) => Some(t.await??),
            None => None,
        };
        let mut lat = latencies.lock().expect("lock").clone();
        lat.sort();
        let lost = sent.lock().expect("lock").len();
        let mut view_lat = view_latencies.lock().expect("lock").clone();
        view_lat.sort();
        let view_lost = view_sent.lock().expect("lock").len();
        let ticks_per_s = 100.0;
        Ok::<_, anyhow::Error>(serde_json::json!({
            "connections": journals * 2 + followers * 2 + usize::from(args.stalled),
            "followers": followers,
            "journals": journals,
            "seconds": elapsed.as_secs_f64(),
            "changes_propagated": lat.len(),
            "changes_not_seen": lost,
            "throughput_per_s": lat.len() as f64 / args.seconds as f64,
            "latency_ms": { "p50": percentile(&lat, 0.5), "p90": percentile(&lat, 0.9), "p99": percentile(&lat, 0.99), "max": percentile(&lat, 1.0) },
            "view_changes_seen_by_followers": view_lat.len(),
            "view_changes_not_seen": view_lost,
            "follower_latency_ms": { "p50": percentile(&view_lat, 0.5), "p90": percentile(&view_lat, 0.9), "p99": percentile(&view_lat, 0.99), "max": percentile(&view_lat, 1.0) },
            "server_rss_mib": rss as f64 / 1024.0,
            "server_peak_rss_mib": peak_rss.max(rss) as f64 / 1024.0,
            "server_cpu_percent": (ticks1 - ticks0) as f64 / ticks_per_s / elapsed.as_secs_f64() * 100.0,
            "server_cpu_ms_per_change": (ticks1 - ticks0) as f64 / ticks_per_s * 1000.0 / lat.len().max(1) as f64,
            "client_failures": failures,
            "stalled_client_disconnected": stalled_closed,
        }))
    })?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    drop(server);
    Ok(())
}
