//! The server behind a reverse proxy, through the real binary: a small proxy in the test
//! forwards each request from its own address with `X-Forwarded-For`. A valid token or
//! share link is never throttled, however many bad ones came the same way; with
//! `--trusted-proxy` the failed-attempt limit keys on the forwarded client, and forwarding
//! headers from anyone else are ignored.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::server::runtime;
use crate::util::{Home, Server, add_account};

/// The address the proxy connects to the server from.
const PROXY_OUT: &str = "127.0.0.3";

/// Forwards every connection to `server`, from [`PROXY_OUT`], adding `X-Forwarded-For`
/// with the client's address (as nginx's `$proxy_add_x_forwarded_for` does).
async fn proxy(server: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut client, from)) = listener.accept().await {
            let server = server.clone();
            tokio::spawn(async move {
                let Some(text) = crate::util::read_http_head(&mut client).await else {
                    return;
                };
                let (first, rest) = text.split_once("\r\n").unwrap();
                let forwarded = format!("{first}\r\nX-Forwarded-For: {}\r\n{rest}", from.ip());
                let socket = TcpSocket::new_v4().unwrap();
                socket
                    .bind(format!("{PROXY_OUT}:0").parse().unwrap())
                    .unwrap();
                let mut upstream = socket.connect(server.parse().unwrap()).await.unwrap();
                upstream.write_all(forwarded.as_bytes()).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    addr
}

/// The status of `GET path` sent from `source` to `to`, with `headers` added.
async fn status(source: &str, to: &str, path: &str, headers: &str) -> u16 {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream: TcpStream = socket.connect(to.parse().unwrap()).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {to}\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

struct Setup {
    _data: tempfile::TempDir,
    server: Server,
    account: String,
    share: String,
}

fn setup(extra: &[&str]) -> Setup {
    let data = tempfile::tempdir().unwrap();
    let account = add_account(data.path(), "ana");
    let server = Server::start_with(data.path(), extra);
    let laptop = Home::new();
    laptop.remote_add(&format!("http://{}", server.addr), &account);
    laptop.new_id(&["add", "Email Sam"]);
    let invited = laptop.ok(&["buddy", "invite", "Jo"]);
    let share = crate::util::share_token_of(&invited);
    Setup {
        _data: data,
        server,
        account,
        share,
    }
}

/// Bad tokens from `source` through the proxy until one is answered 429.
async fn flood(source: &str, proxy: &str) -> usize {
    for i in 1..=200 {
        let guess = format!("nudge_acct_{i:012x}_{}", "0".repeat(64));
        match status(source, proxy, "/v1/journal", &bearer(&guess)).await {
            401 => {}
            429 => return i,
            other => panic!("a guess got {other}"),
        }
    }
    panic!("200 bad tokens and no 429");
}

#[test]
fn valid_credentials_through_a_proxy_are_never_throttled() {
    let s = setup(&[]);
    runtime().block_on(async {
        let proxy = proxy(s.server.addr.clone()).await;
        let throttled_after = flood("127.0.0.2", &proxy).await;
        eprintln!("the proxy's address was held back after {throttled_after} bad tokens");
        // Everyone shares the proxy's address: bad tokens are held back for all...
        let other_bad = format!("nudge_acct_ffffffffffff_{}", "1".repeat(64));
        assert_eq!(
            status("127.0.0.4", &proxy, "/v1/journal", &bearer(&other_bad)).await,
            429
        );
        // ...but a valid token, and a valid buddy link, go through.
        for _ in 0..5 {
            assert_eq!(
                status("127.0.0.4", &proxy, "/v1/journal", &bearer(&s.account)).await,
                200
            );
            let page = format!("/view/{}", s.share);
            assert_eq!(status("127.0.0.4", &proxy, &page, "").await, 200);
        }
    });
}

#[test]
fn a_trusted_proxy_names_the_client_and_nobody_else_can() {
    let s = setup(&["--trusted-proxy", PROXY_OUT]);
    runtime().block_on(async {
        let proxy = proxy(s.server.addr.clone()).await;
        flood("127.0.0.2", &proxy).await;
        // Another client behind the same proxy has a budget of its own.
        let bad = format!("nudge_acct_ffffffffffff_{}", "1".repeat(64));
        assert_eq!(
            status("127.0.0.4", &proxy, "/v1/journal", &bearer(&bad)).await,
            401
        );
        // The held-back client through the proxy stays held back...
        assert_eq!(
            status("127.0.0.2", &proxy, "/v1/journal", &bearer(&bad)).await,
            429
        );
        // ...and an untrusted peer cannot borrow a forwarded address: its header is ignored.
        let claims = format!("X-Forwarded-For: 127.0.0.2\r\n{}", bearer(&bad));
        assert_eq!(
            status("127.0.0.5", &s.server.addr, "/v1/journal", &claims).await,
            401
        );
        assert_eq!(
            status("127.0.0.2", &proxy, "/v1/journal", &bearer(&s.account)).await,
            200
        );
    });
}
