//! Credentials under attack, through the real binaries: guessing is rate-limited by source
//! address without slowing honest clients, and no token ever reaches the server's logs,
//! metrics or data files.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server::runtime;
use crate::util::{Home, Server, add_account, admin, scale, stdout};

/// One HTTP request from `source` (a loopback address) with a bearer token; its status.
async fn attempt(source: &str, server: &str, token: &str) -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(server.parse().unwrap()).await.unwrap();
    let request = format!(
        "GET /v1/journal HTTP/1.1\r\nHost: {server}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn token_guessing_is_rate_limited_by_address_and_honest_clients_are_not() {
    let data = tempfile::tempdir().unwrap();
    let honest = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let tokens_before = stdout(&admin(data.path(), &["token", "list"]));
    let guesses = scale(2_000, 10_000);
    let (counts, honest_ms) = runtime().block_on(async {
        let mut refused = 0;
        let mut throttled = 0;
        let mut honest_ms = Vec::new();
        for i in 0..guesses {
            let guess = format!("nudge_acct_{:012x}_{}", i, "0".repeat(64));
            match attempt("127.0.0.2", &server.addr, &guess).await {
                401 => refused += 1,
                429 => throttled += 1,
                other => panic!("a guess got {other}"),
            }
            if i % 100 == 0 {
                let started = Instant::now();
                assert_eq!(attempt("127.0.0.1", &server.addr, &honest).await, 200);
                honest_ms.push(started.elapsed());
            }
        }
        ((refused, throttled), honest_ms)
    });
    let (refused, throttled) = counts;
    eprintln!(
        "{guesses} guesses: {refused} checked and refused (401), {throttled} throttled (429)"
    );
    assert!(
        throttled > guesses / 2,
        "most guesses must be throttled: {refused} / {throttled}"
    );
    let mut sorted = honest_ms.clone();
    sorted.sort();
    eprintln!(
        "honest requests during the attack: median {:?}, max {:?}",
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1]
    );
    // Nothing changed: the same tokens, and the honest token still works.
    assert_eq!(
        stdout(&admin(data.path(), &["token", "list"])),
        tokens_before
    );
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn every_file(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            every_file(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path.display().to_string(), bytes));
        }
    }
}

#[test]
fn tokens_never_reach_logs_metrics_or_the_servers_files() {
    let data = tempfile::tempdir().unwrap();
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("server.log");
    let account = add_account(data.path(), "ana");
    let mut server = Server::start_logged(data.path(), &log);
    let laptop = Home::new();
    laptop.remote_add(&format!("http://{}", server.addr), &account);
    laptop.new_id(&["add", "Email Sam"]);
    laptop.ok(&["sync"]);
    let link = laptop.ok(&["device", "link"]);
    let phone = Home::new();
    phone.ok(&["join", link.lines().last().unwrap()]);
    let device_token = phone.device_token();
    let invited = laptop.ok(&["buddy", "invite", "Jo"]);
    let share_token = crate::util::share_token_of(&invited);
    let jo = Home::new();
    jo.ok(&["follow", invited.lines().last().unwrap()]);
    // A second account made while the server runs, and a failed guess.
    let second = stdout(&admin(data.path(), &["account", "add", "bob"]))
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let bad = format!("nudge_acct_abcdefabcdef_{}", "f".repeat(64));
    runtime().block_on(async {
        assert_eq!(attempt("127.0.0.1", &server.addr, &bad).await, 401);
    });
    let metrics = {
        let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
        agent
            .get(format!("http://{}/metrics", server.addr))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    std::thread::sleep(Duration::from_millis(200));
    server.kill9();
    let mut files = Vec::new();
    every_file(data.path(), &mut files);
    files.push(("server.log".into(), std::fs::read(&log).unwrap()));
    files.push(("/metrics".into(), metrics.into_bytes()));
    assert!(
        files
            .iter()
            .any(|(name, bytes)| name == "server.log" && bytes.len() > 100),
        "the log is empty"
    );
    // The search works: the device's own remote.json does hold its token (0600, by design).
    let own = std::fs::read(laptop.path().join("remote.json")).unwrap();
    assert!(contains(&own, account.rsplit('_').next().unwrap()));
    for token in [&account, &device_token, &share_token, &second, &bad] {
        let secret = token.rsplit('_').next().unwrap();
        assert_eq!(secret.len(), 64);
        for (name, bytes) in &files {
            assert!(!contains(bytes, secret), "a token's secret is in {name}");
        }
    }
}
