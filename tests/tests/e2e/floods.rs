//! Connection floods against the real server while an honest device syncs in a loop:
//! idle TCP sockets that never send a byte, idle websockets on one buddy link, and the
//! buddy page's event streams on the same link. Each attacker is held to its address's
//! and its link's share of the server; the honest device's syncs all succeed. Latencies
//! are printed (quiet and flooded), not asserted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::util::{Home, Server, add_account, scale};

async fn connect_from(source: &str, to: &str) -> Option<tokio::net::TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(format!("{source}:0").parse().ok()?).ok()?;
    socket.connect(to.parse().ok()?).await.ok()
}

/// Attempts after which the floods count as under way.
const UNDER_WAY: usize = 3_000;

/// What every attacker shares: the stop signal, the attempts so far, and the signal that
/// they reached [`UNDER_WAY`].
struct Attackers {
    stop: tokio::sync::watch::Receiver<bool>,
    attempts: Arc<AtomicUsize>,
    under_way: Arc<tokio::sync::Notify>,
}

/// `count` attackers, each holding what `hold` opens for as long as the server lets it,
/// then opening it again after a pause (an attacker's reopen pace), until the stop.
fn flood<F, Fut>(runtime: &tokio::runtime::Runtime, count: usize, attackers: &Attackers, hold: F)
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
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
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop.changed() => return,
                }
            }
        });
    }
}

fn p99(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[(times.len() * 99 / 100).min(times.len() - 1)]
}

fn timed_syncs(home: &Home, n: usize, label: &str) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            home.new_id(&["add", &format!("{label} {i}")]);
            let started = Instant::now();
            home.ok(&["sync"]);
            started.elapsed()
        })
        .collect()
}

#[test]
fn honest_syncs_succeed_while_idle_sockets_websockets_and_event_streams_flood_the_server() {
    let _ = rlimit::increase_nofile_limit(16_384);
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = Home::new();
    laptop.remote_add(&format!("http://{}", server.addr), &token);
    laptop.new_id(&["add", "Email Sam"]);
    let link = laptop.ok(&["buddy", "invite", "Jo"]);
    let share = crate::util::share_token_of(&link);
    let rounds = scale(20, 100);
    let quiet = timed_syncs(&laptop, rounds, "Quiet");

    // The attackers' own threads run at the lowest priority: on this one machine they stand
    // in for other machines, and what is measured is the server's cost of fending them off
    // (which runs at normal priority), not the attack generator's.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(|| {
            let me = rustix::thread::gettid();
            let _ = rustix::process::setpriority_process(Some(me), 19);
        })
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let attackers = Attackers {
        stop: stopped,
        attempts: Arc::new(AtomicUsize::new(0)),
        under_way: Arc::new(tokio::sync::Notify::new()),
    };
    let addr = server.addr.clone();
    // 1,100 idle TCP sockets from one address.
    let a = addr.clone();
    flood(&runtime, 1_100, &attackers, move || {
        let a = a.clone();
        async move {
            if let Some(mut stream) = connect_from("127.0.0.2", &a).await {
                let mut byte = [0u8; 1];
                let _ = stream.read(&mut byte).await;
            }
        }
    });
    // 1,024 websockets on the one share link, answering pings, from two addresses.
    for (i, source) in ["127.0.0.3", "127.0.0.4"].into_iter().enumerate() {
        let (a, share) = (addr.clone(), share.clone());
        flood(&runtime, 512 + i, &attackers, move || {
            let (a, share) = (a.clone(), share.clone());
            async move {
                let Some(stream) = connect_from(source, &a).await else {
                    return;
                };
                let mut request = format!("ws://{a}/v1/sync").into_client_request().unwrap();
                request
                    .headers_mut()
                    .insert("authorization", format!("Bearer {share}").parse().unwrap());
                if let Ok((mut ws, _)) = tokio_tungstenite::client_async(request, stream).await {
                    // Reading answers pings; the join never comes.
                    while let Some(Ok(_)) = ws.next().await {}
                }
            }
        });
    }
    // 1,024 event streams of the buddy page on the same link.
    for source in ["127.0.0.5", "127.0.0.6"] {
        let (a, share) = (addr.clone(), share.clone());
        flood(&runtime, 512, &attackers, move || {
            let (a, share) = (a.clone(), share.clone());
            async move {
                let Some(mut stream) = connect_from(source, &a).await else {
                    return;
                };
                let request = format!("GET /view/{share}/events HTTP/1.1\r\nHost: {a}\r\n\r\n");
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
    // Let the floods reach the server before the honest device goes on.
    let under_way = attackers.under_way.clone();
    let started = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), under_way.notified()).await
    });
    assert!(started.is_ok(), "the floods did not get under way in 30 s");
    let flooded = timed_syncs(&laptop, rounds, "Flooded");
    let tried = attackers.attempts.load(Ordering::Relaxed);
    let _ = stop.send(true);
    runtime.shutdown_timeout(Duration::from_secs(2));
    eprintln!("flooded syncs: {flooded:?}");
    eprintln!(
        "{rounds} honest syncs: quiet p99 {:?}, flooded p99 {:?} ({tried} attacker connections tried)",
        p99(quiet),
        p99(flooded.clone())
    );
    assert!(tried >= UNDER_WAY, "the floods did not start: {tried}");
    // Every flooded sync succeeded (`ok` asserts it); the buddy's page still works.
    let page = ureq::get(format!("http://{}/view/{share}", server.addr))
        .call()
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
}
