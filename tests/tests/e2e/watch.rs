//! `nudge sync --watch` through the real binaries: live changes between devices, commands
//! that keep working while a watcher holds the device, reconnects, revocation, Ctrl-C.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nudge_testkit::wait::until;

use crate::util::{Home, Server, add_account, free_port};

/// A device joined to the account, synced once.
pub(crate) fn joined(laptop: &Home, name: &str) -> Home {
    let link = laptop.ok(&["device", "link"]);
    let device = Home::new();
    device.ok(&["join", link.lines().last().unwrap(), "--name", name]);
    device
}

fn first_device(server: &Server, token: &str) -> Home {
    let home = Home::new();
    home.new_id(&["add", "Email Sam"]);
    home.remote_add(&format!("http://{}", server.addr), token);
    home.ok(&["sync"]);
    home
}

/// A running watcher; killed with SIGKILL if a test forgets it. What it printed is shown
/// when the test fails.
pub(crate) struct Watcher(Child, tempfile::NamedTempFile);

impl Watcher {
    pub(crate) fn start(home: &Home) -> Self {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = home
            .std_cmd()
            .args(["sync", "--watch", "--timeout", "5"])
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        // Watching once `status` says so and the first sync is through.
        until(Duration::from_secs(10), "the watcher to start", || {
            home.json(&["status", "--json"])["watcher"] == "watching"
        });
        Self(child, log)
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the watcher to exit; its exit code.
    pub(crate) fn wait(&mut self, limit: Duration) -> Option<i32> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                started.elapsed() < limit,
                "the watcher did not exit in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if std::thread::panicking() {
            let printed = std::fs::read_to_string(self.1.path()).unwrap_or_default();
            eprintln!("the watcher (pid {}) printed:\n{printed}", self.0.id());
        }
    }
}

pub(crate) fn has(home: &Home, text: &str) -> bool {
    home.json(&["list", "--json", "--all"])
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["text"] == text)
}

/// How long until `text` shows on `home`, polling; panics after `limit`.
pub(crate) fn arrives(home: &Home, text: &str, limit: Duration) -> Duration {
    until(limit, &format!("{text:?} to arrive"), || has(home, text))
}

#[test]
fn watchers_exchange_changes_live_and_survive_a_server_restart() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut server = Server::start_at(data.path(), &listen, &[]);
    let laptop = first_device(&server, &token);
    let phone = joined(&laptop, "phone");
    let _a = Watcher::start(&laptop);
    let _b = Watcher::start(&phone);

    laptop.new_id(&["add", "Live from the laptop"]);
    // Live: no command syncs in between. How fast is printed, not asserted (CI runs this
    // beside many other tests on two cores); the deadline only ends a test that hangs.
    let took = arrives(&phone, "Live from the laptop", Duration::from_secs(10));
    eprintln!("laptop -> phone in {took:?}");
    phone.new_id(&["add", "Live from the phone"]);
    let took = arrives(&laptop, "Live from the phone", Duration::from_secs(10));
    eprintln!("phone -> laptop in {took:?}");

    // The server goes away; both keep working offline, then reconnect by themselves.
    server.kill9();
    laptop.new_id(&["add", "Written while the server was down"]);
    std::thread::sleep(Duration::from_millis(300));
    server = Server::start_at(data.path(), &listen, &[]);
    arrives(
        &phone,
        "Written while the server was down",
        Duration::from_secs(15),
    );
    phone.new_id(&["add", "After the restart"]);
    arrives(&laptop, "After the restart", Duration::from_secs(10));
    drop(server);
}

#[test]
fn commands_keep_working_while_a_watcher_runs() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = first_device(&server, &token);
    let phone = joined(&laptop, "phone");
    let _a = Watcher::start(&laptop);
    let _b = Watcher::start(&phone);
    let adds = crate::util::scale(100, 300);
    let mut slowest = Duration::ZERO;
    for i in 0..adds {
        let started = Instant::now();
        laptop.new_id(&["add", &format!("Burst {i:03}")]);
        // Each add must succeed: one that found the store busy for longer than the
        // store's lock wait would have failed. How long they take is a figure, not a
        // test (CI runs this beside sixty other tests on two cores).
        slowest = slowest.max(started.elapsed());
    }
    eprintln!("slowest of {adds} adds beside a watcher: {slowest:?}");
    arrives(
        &phone,
        &format!("Burst {:03}", adds - 1),
        Duration::from_secs(20),
    );
    let on_phone = phone.json(&["list", "--json"]);
    let bursts = on_phone
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["text"].as_str().unwrap().starts_with("Burst "))
        .count();
    assert_eq!(bursts, adds);
}

#[test]
fn a_revoked_watcher_is_cut_off_and_its_data_stays() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = first_device(&server, &token);
    let phone = joined(&laptop, "stolen-phone");
    phone.new_id(&["add", "Before the revoke"]);
    let mut watcher = Watcher::start(&phone);
    let revoked = Instant::now();
    laptop.ok(&["device", "revoke", "stolen-phone"]);
    let code = watcher.wait(Duration::from_secs(5));
    let took = revoked.elapsed();
    eprintln!("revoked watcher exited after {took:?}");
    assert_eq!(code, Some(4));
    assert!(took < Duration::from_secs(2), "{took:?}");
    let before = phone.json(&["export", "--json"]);
    let err = phone.fails(4, &["sync"]);
    assert!(err.contains("refused"), "{err}");
    assert_eq!(phone.json(&["export", "--json"]), before);
    assert!(has(&phone, "Before the revoke"));
}

#[test]
fn ctrl_c_stops_a_watcher_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = first_device(&server, &token);
    let mut watcher = Watcher::start(&laptop);
    let status = laptop.json(&["status", "--json"]);
    assert_eq!(status["remote"], format!("http://{}", server.addr));
    // The journal's automerge-repo id, as the server knows it (GET /v1/journal).
    let id = status["journal_document_id"].as_str().unwrap().to_owned();
    assert_eq!(status["journal_url"], format!("automerge:{id}"));
    let known = ureq::get(format!("http://{}/v1/journal", server.addr))
        .header("authorization", &format!("Bearer {token}"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(known.contains(&id), "{known} vs {id}");
    let err = laptop.fails(1, &["sync", "--watch"]);
    assert!(err.contains("already runs"), "{err}");
    watcher.signal("-INT");
    assert_eq!(watcher.wait(Duration::from_secs(5)), Some(0));
    let status = laptop.json(&["status", "--json"]);
    assert!(status["watcher_pid"].is_null(), "{status}");
    assert!(status["last_sync"].is_string(), "{status}");
    assert_eq!(status["unsynced_changes"], 0);
}

#[test]
fn commands_racing_each_other_and_a_watcher_lose_nothing() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = first_device(&server, &token);
    let phone = joined(&laptop, "phone");
    let _a = Watcher::start(&laptop);
    let _b = Watcher::start(&phone);
    let racers = crate::util::scale(8, 24);
    let children: Vec<(Instant, Child)> = (0..racers)
        .map(|i| {
            let child = laptop
                .std_cmd()
                .args(["add", &format!("Racer {i:02}")])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (Instant::now(), child)
        })
        .collect();
    for (started, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("racer done after {:?}", started.elapsed());
    }
    arrives(&phone, "Racer 00", Duration::from_secs(10));
    let count = |home: &Home| {
        home.json(&["list", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["text"].as_str().unwrap().starts_with("Racer "))
            .count()
    };
    let started = Instant::now();
    while count(&phone) < racers {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not every racer arrived"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(count(&laptop), racers);
}

#[test]
fn watchers_carry_an_owners_progress_to_a_following_buddy_live() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = first_device(&server, &token);
    let out = laptop.ok(&["buddy", "invite", "Jo", "--scope", "titles"]);
    let jo = Home::new();
    jo.ok(&["follow", out.lines().last().unwrap(), "--as", "ana"]);
    let _owner = Watcher::start(&laptop);
    let _buddy = Watcher::start(&jo);
    laptop.new_id(&["log", "Sent the portfolio"]);
    let started = Instant::now();
    loop {
        let shown = jo.json(&["buddy", "show", "ana", "--json"]);
        let texts: Vec<&str> = shown["shifts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["text"].as_str())
            .collect();
        if texts.contains(&"Sent the portfolio") {
            assert_eq!(shown["week"]["done"], 1);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the buddy never saw the owner's shift: {shown}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("owner -> buddy in {:?}", started.elapsed());
}

#[test]
fn a_rebuilt_view_reaches_a_following_watcher_without_its_past() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = first_device(&server, &token);
    let id = laptop.new_id(&["log", "Sent the portfolio to the wrong studio"]);
    laptop.ok(&["sync"]);
    let out = laptop.ok(&["buddy", "invite", "Jo", "--scope", "titles"]);
    let jo = Home::new();
    jo.ok(&["follow", out.lines().last().unwrap(), "--as", "ana"]);
    let followed = || -> String {
        let follows = std::fs::read_to_string(jo.path().join("follows.json")).unwrap();
        let follows: serde_json::Value = serde_json::from_str(&follows).unwrap();
        follows["ana"]["doc"].as_str().unwrap().to_owned()
    };
    let first = followed();
    let _owner = Watcher::start(&laptop);
    let _buddy = Watcher::start(&jo);
    // The owner's watcher sees the edit, rebuilds the view; the buddy's moves to it.
    laptop.ok(&["edit", &id, "--text", "Sent the portfolio"]);
    // Until the buddy's watcher has stored the new view, `buddy show` says to sync: not yet.
    let shown = || {
        let out = jo.run(&["buddy", "show", "ana", "--json"]);
        if out.status.success() {
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            String::new()
        }
    };
    let took = until(
        Duration::from_secs(20),
        "the buddy to move to a rebuilt view",
        || followed() != first && shown().contains("Sent the portfolio\""),
    );
    assert!(!shown().contains("wrong studio"), "{}", shown());
    eprintln!("edit -> rebuilt view at the buddy in {took:?}");
    let listed = laptop.json(&["buddy", "list", "--json"]).to_string();
    assert!(listed.contains(&followed()), "the owner lists {listed}");
}
