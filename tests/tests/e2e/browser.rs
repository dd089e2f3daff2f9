//! The buddy's web page in a real browser: headless Chromium, driven over the DevTools
//! protocol (a websocket, spoken here with tokio-tungstenite and serde_json), loads
//! `/view/<token>`, shows the owner's numbers in the owner's time zone (name, progress bar,
//! days to come and paused days, the 8-week chart, text contrast of 4.5:1 at least), and
//! updates within 2 s of an owner sync without a reload, telling screen readers. The chart's
//! screenshot (`target/tmp/buddy-chart.png`) must hold its bars; the whole page is kept in
//! `target/tmp/buddy-view.png`.
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
        let answer = self.answer(method, params).await;
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// Chromium's whole answer to a call, an error included.
    async fn answer(&mut self, method: &str, params: Value) -> Value {
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
                    return value;
                }
            }
        }
    }

    /// Waits, at most `limit`, until the JavaScript `condition` holds in the page: checked
    /// now and on every change to the page (a `MutationObserver`), never on a timer.
    /// Returns how long it took.
    async fn until(&mut self, condition: &str, limit: Duration, what: &str) -> Duration {
        let started = Instant::now();
        let expression = format!(
            "new Promise(function(done){{function holds(){{try{{return !!({condition});}}catch(e){{return false;}}}}\
if(holds()){{done(true);return;}}\
new MutationObserver(function(_,o){{if(holds()){{o.disconnect();done(true);}}}})\
.observe(document,{{subtree:true,childList:true,characterData:true,attributes:true}});}})"
        );
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let params =
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true });
            let answer = tokio::time::timeout_at(deadline, self.answer("Runtime.evaluate", params))
                .await
                .unwrap_or_else(|_| panic!("waited {limit:?} for {what}"));
            // The page navigated meanwhile (from about:blank, say): ask the new one.
            let navigated = answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("context was destroyed"));
            if !navigated {
                assert!(
                    answer.get("error").is_none(),
                    "waiting for {what}: {answer}"
                );
                break;
            }
        }
        started.elapsed()
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

/// The owner's zone for the test: one whose date differs from UTC's right now (UTC-12
/// before noon UTC, UTC+14 from noon), so a page that counted in the server's zone fails.
fn owners_zone() -> &'static str {
    if jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .hour()
        < 12
    {
        "Etc/GMT+12"
    } else {
        "Etc/GMT-14"
    }
}

/// The lowest text contrast on the page (against white) and the text that has it. SVG text
/// is drawn in its `fill`; hidden elements and SVG titles (tooltips) do not count.
const CONTRAST: &str = r#"(function(){
function lum(c){var m=c.match(/[\d.]+/g);if(!m){return 1;}var v=m.slice(0,3).map(function(x){x=x/255;return x<=0.03928?x/12.92:Math.pow((x+0.055)/1.055,2.4);});return 0.2126*v[0]+0.7152*v[1]+0.0722*v[2];}
var worst=99,what='';
document.querySelectorAll('body *').forEach(function(e){
 var own=Array.prototype.some.call(e.childNodes,function(n){return n.nodeType===3&&n.textContent.trim();});
 if(!own||e.tagName.toLowerCase()==='title'||e.closest('[hidden]')||e.closest('script')||e.closest('.sr')){return;}
 var cs=getComputedStyle(e);var c=(e instanceof SVGElement)?cs.fill:cs.color;
 var r=(1.05)/(lum(c)+0.05);if(r<worst){worst=r;what=e.tagName+' '+c+' '+e.textContent.trim().slice(0,30);}
});
return JSON.stringify([worst,what]);})()"#;

#[test]
fn the_buddys_page_shows_the_numbers_and_updates_live() {
    let Some(binary) = chromium() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let mut laptop = Home::new();
    // The owner's clock is the real one; their zone is one where the date is not UTC's
    // (the server's), and their week starts today, so tomorrow (paused) is in it.
    let now = jiff::Timestamp::now();
    laptop.now = now.to_string();
    laptop.tz = owners_zone().into();
    let today = now
        .to_zoned(jiff::tz::TimeZone::get(owners_zone()).unwrap())
        .date();
    let weekday = today.strftime("%A").to_string().to_lowercase();
    laptop.ok(&["config", "set", "week_start", &weekday]);
    laptop.ok(&["config", "set", "display_name", "Ana"]);
    laptop.remote_add(&format!("http://{}", server.addr), &token);
    for (text, at) in [
        ("Read a UX case study", "10d ago"),
        ("Asked Sam for an intro", "10d ago"),
        ("Listed three schools", "20d ago"),
    ] {
        laptop.ok(&["log", text, "--at", at]);
    }
    laptop.ok(&["log", "Called Priya", "+teaching"]);
    laptop.ok(&["pause", "--from", "tomorrow"]);
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
        let attr = |selector: &str, name: &str| {
            format!("(function(){{var e=document.querySelector({selector:?});return e&&e.getAttribute({name:?});}})()")
        };
        let text = |selector: &str| {
            format!("(function(){{var e=document.querySelector({selector:?});return e&&e.textContent;}})()")
        };
        // The JavaScript condition `expression === value`.
        let is = |expression: &str, value: &str| format!("({expression}) === {value:?}");
        // The page as served, with its live stream open.
        cdp.until(
            &format!(
                "document.body.getAttribute('data-live') === '1' && {}",
                is(&text("#done"), "1")
            ),
            Duration::from_secs(20),
            "the page to show 1 done with its stream open",
        )
        .await;
        assert_eq!(cdp.eval(&text("#goal")).await, json!("20"));
        assert_eq!(cdp.eval(&text("#who")).await, json!("Ana's micro shifts"));
        assert_eq!(cdp.eval("document.title").await, json!("Ana's micro shifts"));
        // Today is the owner's today, not the server's.
        assert_eq!(
            cdp.eval(&attr(".day.today", "data-date")).await,
            json!(today.to_string())
        );
        assert_eq!(cdp.eval(&attr(".day.today", "data-done")).await, json!("1"));
        let tomorrow = today.tomorrow().unwrap().to_string();
        assert_eq!(cdp.eval(&attr(".day.paused", "data-date")).await, json!(tomorrow));
        assert_eq!(
            cdp.eval("document.querySelectorAll('.day.future').length").await,
            json!(5)
        );
        assert_eq!(
            cdp.eval(&attr("[role=progressbar]", "aria-valuenow")).await,
            json!("1")
        );
        assert_eq!(
            cdp.eval("document.querySelectorAll('svg#weeks rect.wk').length").await,
            json!(8)
        );
        // The week in review, as the scope allows.
        let review = cdp.eval(&text("#review")).await;
        let review = review.as_str().unwrap_or_default();
        assert!(
            review.contains("1 micro shifts: 1 more than the week before (0)")
                && review.contains("Running total: 4 of the method's ~1400 micro shifts"),
            "{review}"
        );
        let updated = cdp.eval(&text("#updated")).await;
        assert!(
            updated.as_str().is_some_and(|u| u.ends_with("ago") || u == "just now"),
            "{updated}"
        );
        let body = cdp.eval("document.body.innerText").await;
        assert!(body.as_str().unwrap().contains("Called Priya"), "{body}");
        let contrast: (f64, String) =
            serde_json::from_str(cdp.eval(CONTRAST).await.as_str().unwrap()).unwrap();
        eprintln!("lowest text contrast: {:.2} ({})", contrast.0, contrast.1);
        assert!(contrast.0 >= 4.5, "text below 4.5:1: {contrast:?}");
        // The chart is drawn: its part of a screenshot holds the bars' green.
        let rect: Vec<f64> = serde_json::from_str(
            cdp.eval("JSON.stringify((function(r){return [r.x,r.y+window.scrollY,r.width,r.height];})(document.getElementById('weeks').getBoundingClientRect()))")
                .await
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let shot = cdp
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true, "clip": {
                    "x": rect[0], "y": rect[1], "width": rect[2], "height": rect[3], "scale": 1
                }}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("buddy-chart.png");
        std::fs::write(&path, &png).unwrap();
        let green = bar_pixels(&png);
        eprintln!("chart: {green} bar pixels ({})", path.display());
        assert!(green >= 200, "the chart's bars are not drawn ({green} pixels)");
        // Mark the page: a reload would lose it.
        cdp.eval("window.__notReloaded = true").await;

        // The owner makes progress and syncs; the page follows without a reload.
        laptop.ok(&["log", "Booked a pottery class", "+pottery"]);
        laptop.ok(&["sync"]);
        let took = cdp
            .until(
                &is(&text("#done"), "2"),
                Duration::from_secs(2),
                "the page to update within 2 s of the owner's sync",
            )
            .await;
        eprintln!("page updated {took:?} after the owner's sync");
        assert_eq!(cdp.eval("window.__notReloaded === true").await, json!(true));
        let body = cdp.eval("document.body.innerText").await;
        assert!(
            body.as_str().unwrap().contains("Booked a pottery class"),
            "{body}"
        );

        assert!(
            cdp.eval(&text("#live")).await.as_str().unwrap().contains("2 of 20"),
            "the live region tells screen readers the new numbers"
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

        // The buddy cheers from the page: it is sent, and shows among the cheers.
        cdp.eval("document.getElementById('cheer-text').value='Go Ana!';document.querySelector('#cheer button').click()").await;
        cdp.until(
            &is(&text("#cheer-status"), "Sent. Thank you!"),
            Duration::from_secs(5),
            "the cheer to be sent",
        )
        .await;
        cdp.until(
            &format!("({}).indexOf('Go Ana!') >= 0", text("#cheers")),
            Duration::from_secs(5),
            "the page to show the cheer",
        )
        .await;
        laptop.ok(&["sync"]);
        let cheers = laptop.json(&["cheers", "--json"]);
        assert_eq!(cheers[0]["text"], "Go Ana!", "{cheers}");

        // Revoked: the open page says so.
        laptop.ok(&["buddy", "revoke", "Jo"]);
        cdp.until(
            &is(&text("#status"), "This link no longer works."),
            Duration::from_secs(5),
            "the page to say the link stopped working",
        )
        .await;
    });
}

/// Pixels of the chart's bar greens (#2a7a50, #3f9a6b) in a PNG, give or take antialiasing.
fn bar_pixels(png: &[u8]) -> usize {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    let near = |p: &[u8], c: [u8; 3]| p.iter().zip(c).all(|(a, b)| a.abs_diff(b) <= 12);
    buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| p.len() >= 3 && (near(p, [0x2a, 0x7a, 0x50]) || near(p, [0x3f, 0x9a, 0x6b])))
        .count()
}
