//! The buddy's web page in a real browser: headless Chromium, driven over the DevTools
//! protocol (a websocket, spoken here with tokio-tungstenite and serde_json), loads
//! `/view/<token>`, shows the owner's numbers, and updates within 2 s of an owner sync
//! without a reload. A screenshot is kept in `target/tmp/buddy-view.png`.
//!
//! Chromium comes from `scripts/setup-tests.sh` (Debian's `chromium`). Under `CI=true` a
//! missing browser fails the test; elsewhere it is skipped with a message.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::server::runtime;
use crate::util::{Home, Server, add_account};

fn chromium() -> Option<String> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Some(name.to_owned());
        }
    }
    crate::util::missing("chromium is not installed (apt-get install chromium)")
}

struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws_url: String,
}

impl Browser {
    fn launch(binary: &str) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                "--window-size=420,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let started = Instant::now();
        let ws_url = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap() == 0 {
                panic!("chromium exited before it listened");
            }
            if let Some(url) = line.trim().strip_prefix("DevTools listening on ") {
                break url.to_owned();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromium never listened"
            );
        };
        // Keep draining stderr so that chromium never blocks on it.
        std::thread::spawn(move || for _ in stderr.lines() {});
        Self {
            child,
            _profile: profile,
            ws_url,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A DevTools protocol session on one page.
struct Cdp {
    ws: Ws,
    next: u64,
    session: Option<String>,
}

impl Cdp {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        self.ws
            .send(WsMessage::Text(message.to_string().into()))
            .await
            .unwrap();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .expect("chromium answers")
                .expect("the devtools socket stays open")
                .unwrap();
            if let WsMessage::Text(text) = next {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["id"] == id {
                    assert!(value.get("error").is_none(), "{method}: {value}");
                    return value["result"].clone();
                }
            }
        }
    }

    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        result["result"]["value"].clone()
    }
}

#[test]
fn the_buddys_page_shows_the_numbers_and_updates_live() {
    let Some(binary) = chromium() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let mut laptop = Home::new();
    // The page counts the week the server's clock is in: the owner's clock is the real one
    // here (and its zone UTC, as the server's), whatever day the test runs.
    laptop.now = jiff::Timestamp::now().to_string();
    laptop.tz = "UTC".into();
    laptop.remote_add(&format!("http://{}", server.addr), &token);
    laptop.ok(&["log", "Called Priya", "+teaching"]);
    laptop.ok(&["sync"]);
    let invited = laptop.ok(&["buddy", "invite", "Jo", "--scope", "titles"]);
    let link = invited.lines().last().unwrap().to_owned();
    let browser = Browser::launch(&binary);
    runtime().block_on(async {
        let (ws, _) = tokio_tungstenite::connect_async(browser.ws_url.as_str())
            .await
            .unwrap();
        let mut cdp = Cdp {
            ws,
            next: 0,
            session: None,
        };
        let target = cdp
            .call("Target.createTarget", json!({ "url": link }))
            .await;
        let attached = cdp
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await;
        cdp.session = attached["sessionId"].as_str().map(str::to_owned);
        // The page as served.
        let done = "document.getElementById('done') && document.getElementById('done').textContent";
        let started = Instant::now();
        while cdp.eval(done).await != json!("1") {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the page never showed 1 done"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            cdp.eval("document.getElementById('goal').textContent")
                .await,
            json!("20")
        );
        let text = cdp.eval("document.body.innerText").await;
        assert!(text.as_str().unwrap().contains("Called Priya"), "{text}");
        // Give the event stream a moment to open, and mark the page: a reload would lose it.
        cdp.eval("window.__notReloaded = true").await;
        tokio::time::sleep(Duration::from_millis(500)).await;

        // The owner makes progress and syncs; the page follows without a reload.
        laptop.ok(&["log", "Booked a pottery class", "+pottery"]);
        laptop.ok(&["sync"]);
        let synced = Instant::now();
        while cdp.eval(done).await != json!("2") {
            assert!(
                synced.elapsed() < Duration::from_secs(2),
                "the page did not update within 2 s of the owner's sync"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("page updated {:?} after the owner's sync", synced.elapsed());
        assert_eq!(cdp.eval("window.__notReloaded === true").await, json!(true));
        let text = cdp.eval("document.body.innerText").await;
        assert!(
            text.as_str().unwrap().contains("Booked a pottery class"),
            "{text}"
        );

        let shot = cdp
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("buddy-view.png");
        std::fs::write(&path, &png).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        eprintln!("screenshot: {}", path.display());

        // Revoked: the open page says so.
        laptop.ok(&["buddy", "revoke", "Jo"]);
        let revoked = Instant::now();
        while cdp
            .eval("document.getElementById('status').textContent")
            .await
            != json!("This link no longer works.")
        {
            assert!(
                revoked.elapsed() < Duration::from_secs(5),
                "the page never said the link stopped working"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}
