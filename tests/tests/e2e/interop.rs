//! A real JavaScript automerge-repo client (`@automerge/automerge-repo` 2.5.6 and its
//! websocket client adapter, from npm, pinned by `tests/js/package-lock.json`) against the
//! real `nudge-server`: it finds the journal the `nudge` CLI made, reads it, adds a shift with
//! the schema of docs/schema.md, and the CLI sees that shift after `nudge sync`. With a
//! buddy's read-only share token it reads the share view, and its change is refused.
//!
//! The packages are installed by `scripts/setup-tests.sh` (`npm install` in `tests/js`).
//! Under `CI=true` missing node or packages fail the test; elsewhere it is skipped.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Home, Server, add_account};

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// `node`, with the client's packages installed, or a skip (a failure under CI).
fn node() -> Option<()> {
    let has_node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let installed = js_dir()
        .join("node_modules/@automerge/automerge-repo-network-websocket/package.json")
        .exists();
    if has_node && installed {
        return Some(());
    }
    let what = if has_node {
        "the automerge-repo npm packages are not installed in tests/js"
    } else {
        "node is not installed"
    };
    crate::util::missing(what)
}

/// `tests/js/client.mjs` running, its JSON lines read on a thread.
struct Client {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Client {
    fn start(args: &[&str]) -> Self {
        // The devices' clock and zone (util::Home), so that the JS client's shift counts
        // in the same week as theirs, whatever the date the test runs on.
        let home = Home::new();
        let mut child = Command::new("node")
            .arg(js_dir().join("client.mjs"))
            .args(args)
            .env("NUDGE_NOW", &home.now)
            .env("TZ", &home.tz)
            .current_dir(js_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(value) => {
                        if tx.send(value).is_err() {
                            break;
                        }
                    }
                    Err(_) => eprintln!("client.mjs: {line}"),
                }
            }
        });
        Self { child, lines }
    }

    /// The next step the client reports, which must be `step`.
    fn step(&self, step: &str, within: Duration) -> Value {
        let value = self
            .lines
            .recv_timeout(within)
            .unwrap_or_else(|e| panic!("the JS client did not report {step:?} in {within:?}: {e}"));
        assert_eq!(value["step"], step, "{value}");
        value
    }

    /// Closes its standard input (it then disconnects and exits) and waits for it.
    fn finish(mut self) {
        drop(self.child.stdin.take());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "the JS client exited with {status}");
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "JS client hangs"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ws_url(server: &Server, token: &str) -> String {
    format!("ws://{}/v1/sync?token={token}", server.addr)
}

fn shift_texts(home: &Home) -> Vec<String> {
    home.json(&["list", "--all", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap().to_owned())
        .collect()
}

/// A server with one account and a device syncing with it (the data folder, kept alive).
fn account_with_a_device() -> (tempfile::TempDir, Server, String, Home) {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = Home::new();
    laptop.remote_add(&format!("http://{}", server.addr), &token);
    (data, server, token, laptop)
}

#[test]
fn a_javascript_automerge_repo_client_reads_and_writes_the_journal() {
    if node().is_none() {
        return;
    }
    let (_data, server, token, laptop) = account_with_a_device();
    laptop.new_id(&["add", "Email Sam about the UX role", "+ux"]);
    laptop.new_id(&["log", "Called the pottery studio"]);
    laptop.ok(&["sync"]);
    let status = laptop.json(&["status", "--json"]);
    let doc = status["journal_document_id"].as_str().unwrap().to_owned();
    assert_eq!(status["journal_url"], format!("automerge:{doc}"));

    let js = Client::start(&[
        "journal",
        &ws_url(&server, &token),
        &doc,
        "Booked a class from the JS app",
    ]);
    let read = js.step("read", Duration::from_secs(30));
    assert_eq!(
        read["stringify"], true,
        "JSON.stringify of the journal: {read}"
    );
    assert_eq!(read["schema_version"], 1, "{read}");
    assert_eq!(read["schema_minor"], 1, "the journal says 1.1: {read}");
    let mut seen: Vec<&str> = read["shifts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        ["Called the pottery studio", "Email Sam about the UX role"]
    );
    js.step("added", Duration::from_secs(10));

    // The CLI sees it after `nudge sync` (the JS client sends it on its own time).
    let started = Instant::now();
    loop {
        laptop.ok(&["sync"]);
        if shift_texts(&laptop).contains(&"Booked a class from the JS app".to_owned()) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the JS client's shift never reached the CLI"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    js.finish();
    // Read with nudge's own schema: a done shift, counted this week, in the export.
    let shown = laptop.json(&["list", "--all", "--json"]);
    let added = shown
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["text"] == "Booked a class from the JS app")
        .unwrap();
    assert_eq!(added["status"], "done", "{added}");
    let export = laptop.json(&["export", "--json"]);
    let exported = export["shifts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["text"] == "Booked a class from the JS app")
        .unwrap();
    assert_eq!(
        exported["note"], "a note written as Automerge Text",
        "{exported}"
    );
    assert_eq!(exported["kind"], "other", "{exported}");
    assert_eq!(exported["minutes"], 5, "{exported}");
    let week = laptop.json(&["week", "--json"]);
    assert_eq!(week["weeks"][0]["done"], 2, "{week}");
    // And nudge keeps writing to the journal the JS client touched.
    laptop.new_id(&["add", "After the JS client"]);
    laptop.ok(&["sync"]);
    let other = Home::new();
    other.remote_add(&format!("http://{}", server.addr), &token);
    other.ok(&["sync"]);
    assert_eq!(shift_texts(&other).len(), 4);
}

#[test]
fn a_javascript_client_with_a_share_token_reads_the_view_and_cannot_change_it() {
    if node().is_none() {
        return;
    }
    let (_data, server, _token, laptop) = account_with_a_device();
    laptop.new_id(&["log", "Emailed Sam"]);
    laptop.ok(&["sync"]);
    let out = laptop.ok(&["buddy", "invite", "Jo", "--scope", "titles"]);
    let link = out.lines().last().unwrap();
    let share_token = link.rsplit("/view/").next().unwrap();
    let view = laptop.json(&["buddy", "list", "--json"])[0]["view_doc"]
        .as_str()
        .unwrap()
        .to_owned();

    let js = Client::start(&["share", &ws_url(&server, share_token), &view]);
    let read = js.step("read", Duration::from_secs(30));
    assert_eq!(
        read["stringify"], true,
        "JSON.stringify of the view: {read}"
    );
    assert_eq!(read["kind"], "nudge-share", "{read}");
    assert_eq!(read["scope"], "titles", "{read}");
    assert_eq!(read["days"], 1, "{read}");
    assert_eq!(read["shifts"], serde_json::json!(["Emailed Sam"]), "{read}");
    let changed = js.step("changed", Duration::from_secs(20));
    assert_eq!(
        changed["closed"], true,
        "the server kept a writer: {changed}"
    );
    let reread = js.step("reread", Duration::from_secs(30));
    assert_eq!(reread["forged"], false, "{reread}");
    drop(js);

    // The owner's devices are unaffected and the view still refreshes.
    laptop.new_id(&["log", "Called the studio"]);
    laptop.ok(&["sync"]);
    let jo = Home::new();
    jo.ok(&["follow", link, "--as", "ana"]);
    let shown = jo.json(&["buddy", "show", "ana", "--json"]);
    let text = shown.to_string();
    assert!(text.contains("Called the studio"), "{text}");
    assert!(!text.contains("1999-01-01"), "{text}");
    let _ = std::io::stdout().flush();
}
