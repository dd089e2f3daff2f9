//! The connection floods of issue 21 against a running server, for the end-to-end test
//! (`floods.rs`) and the benchmark (`nudge-bench flood`): 1,100 idle TCP sockets from one
//! address that never send a byte, 1,025 idle websockets on one buddy link (answering
//! pings) from two more, and 1,024 of the buddy page's event streams on the same link
//! from two others. Every attacker holds what it opened for as long as the server lets
//! it, then opens it again after 200 ms, until [`Flood::stop`].
//!
//! The attackers' threads run at nice 19: on one machine they stand in for other
//! machines, so what competes with an honest client is the server's cost of fending them
//! off (at normal priority), not the attack generator's.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Attempts after which the floods count as under way.
pub const UNDER_WAY: usize = 3_000;

/// An attacker's pause between the server closing what it held and opening it again.
const REOPEN: Duration = Duration::from_millis(200);

/// Floods running against one server; [`Flood::stop`] ends them.
pub struct Flood {
    runtime: Runtime,
    stop: tokio::sync::watch::Sender<bool>,
    attempts: Arc<AtomicUsize>,
}

/// What every attacker shares.
struct Attackers {
    stop: tokio::sync::watch::Receiver<bool>,
    attempts: Arc<AtomicUsize>,
    under_way: Arc<tokio::sync::Notify>,
}

impl Flood {
    /// Starts every flood against the server at `addr` (`host:port`), the websockets and
    /// event streams on the share token `share`; returns once [`UNDER_WAY`] connections
    /// were tried. Raises this process's open-file limit to hold them.
    pub fn start(addr: &str, share: &str) -> Result<Self> {
        let _ = rlimit::increase_nofile_limit(16_384);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .on_thread_start(|| {
                let me = rustix::thread::gettid();
                let _ = rustix::process::setpriority_process(Some(me), 19);
            })
            .build()
            .context("cannot start the attackers' runtime")?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let attackers = Attackers {
            stop: stopped,
            attempts: Arc::new(AtomicUsize::new(0)),
            under_way: Arc::new(tokio::sync::Notify::new()),
        };
        idle_sockets(&runtime, &attackers, addr);
        websockets(&runtime, &attackers, addr, share);
        event_streams(&runtime, &attackers, addr, share);
        let under_way = attackers.under_way.clone();
        let started = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), under_way.notified()).await
        });
        let flood = Self {
            runtime,
            stop,
            attempts: attackers.attempts,
        };
        if started.is_err() {
            let tried = flood.stop();
            bail!("the floods did not get under way in 30 s ({tried} connections tried)");
        }
        Ok(flood)
    }

    /// Connections the attackers tried so far.
    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::Relaxed)
    }

    /// Ends every flood; returns the connections tried.
    pub fn stop(self) -> usize {
        let tried = self.attempts();
        let _ = self.stop.send(true);
        self.runtime.shutdown_timeout(Duration::from_secs(2));
        tried
    }
}

async fn connect_from(source: &str, to: &str) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(format!("{source}:0").parse().ok()?).ok()?;
    socket.connect(to.parse().ok()?).await.ok()
}

/// `count` attackers, each running `hold` again and again until the stop.
fn spawn<F, Fut>(runtime: &Runtime, count: usize, attackers: &Attackers, hold: F)
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + Send,
{
    for _ in 0..count {
        let (mut stop, attempts, under_way, hold) = (
            attackers.stop.clone(),
            attackers.attempts.clone(),
            attackers.under_way.clone(),
            hold.clone(),
        );
        runtime.spawn(async move {
            loop {
                if attempts.fetch_add(1, Ordering::Relaxed) + 1 == UNDER_WAY {
                    under_way.notify_one();
                }
                tokio::select! {
                    _ = hold() => {}
                    _ = stop.changed() => return,
                }
                tokio::select! {
                    _ = tokio::time::sleep(REOPEN) => {}
                    _ = stop.changed() => return,
                }
            }
        });
    }
}

/// 1,100 TCP sockets from 127.0.0.2 that never send a byte.
fn idle_sockets(runtime: &Runtime, attackers: &Attackers, addr: &str) {
    let addr = addr.to_owned();
    spawn(runtime, 1_100, attackers, move || {
        let addr = addr.clone();
        async move {
            if let Some(mut stream) = connect_from("127.0.0.2", &addr).await {
                let mut byte = [0u8; 1];
                let _ = stream.read(&mut byte).await;
            }
        }
    });
}

/// 1,025 websockets on the share link from 127.0.0.3 and .4, answering pings.
fn websockets(runtime: &Runtime, attackers: &Attackers, addr: &str, share: &str) {
    for (i, source) in ["127.0.0.3", "127.0.0.4"].into_iter().enumerate() {
        let (addr, share) = (addr.to_owned(), share.to_owned());
        spawn(runtime, 512 + i, attackers, move || {
            let (addr, share) = (addr.clone(), share.clone());
            async move {
                let Some(stream) = connect_from(source, &addr).await else {
                    return;
                };
                let Ok(mut request) = format!("ws://{addr}/v1/sync").into_client_request() else {
                    return;
                };
                let Ok(bearer) = format!("Bearer {share}").parse() else {
                    return;
                };
                request.headers_mut().insert("authorization", bearer);
                if let Ok((mut ws, _)) = tokio_tungstenite::client_async(request, stream).await {
                    // Reading answers pings; the join never comes.
                    while let Some(Ok(_)) = ws.next().await {}
                }
            }
        });
    }
}

/// 1,024 event streams of the buddy page on the share link from 127.0.0.5 and .6.
fn event_streams(runtime: &Runtime, attackers: &Attackers, addr: &str, share: &str) {
    for source in ["127.0.0.5", "127.0.0.6"] {
        let (addr, share) = (addr.to_owned(), share.to_owned());
        spawn(runtime, 512, attackers, move || {
            let (addr, share) = (addr.clone(), share.clone());
            async move {
                let Some(mut stream) = connect_from(source, &addr).await else {
                    return;
                };
                let request = format!("GET /view/{share}/events HTTP/1.1\r\nHost: {addr}\r\n\r\n");
                if stream.write_all(request.as_bytes()).await.is_ok() {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                }
            }
        });
    }
}
