//! `nudge remote` and `nudge sync` against the real `nudge-server` on loopback: devices of
//! one account converge, a device's own journal is adopted without loss or duplicates,
//! failures exit 3 or 4 and change nothing, and the server's HTTP routes answer.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::util::{Home, Server, add_account, texts};

/// A device whose remote is the server, with the account's token.
fn device(server: &Server, token: &str) -> Home {
    let home = Home::new();
    connect(&home, server, token);
    home
}

fn connect(home: &Home, server: &Server, token: &str) {
    home.remote_add(&format!("http://{}", server.addr), token);
}

fn sync(home: &Home) -> String {
    home.ok(&["sync", "--timeout", "20"])
}

fn export(home: &Home) -> Value {
    home.json(&["export", "--json"])
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn three_devices_edit_offline_and_converge() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let a = Home::new();
    let sam = a.new_id(&["add", "Email Sam about roles", "+ux", "@sam"]);
    a.new_id(&["add", "Call Priya", "+teaching"]);
    connect(&a, &server, &token);
    let first = sync(&a);
    assert!(first.contains("↑"), "{first}");

    // B kept a journal of its own before it joined: it is carried over.
    let b = Home::new();
    b.new_id(&["add", "Book a pottery class", "+craft"]);
    connect(&b, &server, &token);
    let joined = sync(&b);
    assert!(
        joined.contains("carried over this device's 1 shift, 1 idea and 0 people"),
        "{joined}"
    );
    // C is offline throughout and has nothing of its own.
    let c = device(&server, &token);

    // Offline edits on A and B, including both editing the same shift.
    a.ok(&["done", &sam[..8], "--little-yes", "a reply"]);
    a.ok(&["idea", "drop", "teaching"]);
    a.new_id(&["add", "Read a UX case study", "+ux"]);
    b.ok(&["edit", &sam[..8], "--text", "Email Sam about UX roles"]);
    b.new_id(&["log", "Coffee with Jo", "@jo"]);

    for device in [&b, &a, &b] {
        sync(device);
    }
    let caught_up = sync(&c);
    assert!(caught_up.contains("↓"), "{caught_up}");

    let (ea, eb, ec) = (export(&a), export(&b), export(&c));
    assert_eq!(ea, eb);
    assert_eq!(ea, ec);
    assert_eq!(
        texts(&ea),
        [
            "Book a pottery class",
            "Call Priya",
            "Coffee with Jo",
            "Email Sam about UX roles",
            "Read a UX case study"
        ]
    );
    let email = ea["shifts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == sam.as_str())
        .unwrap();
    assert_eq!(email["status"], "done");
    assert_eq!(email["little_yes"], "a reply");
    let teaching = ea["ideas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == "teaching")
        .unwrap();
    assert_eq!(teaching["status"], "dead_end");
    // Nothing left to move.
    assert!(sync(&c).contains("up to date"));
}

#[test]
fn adopting_again_after_a_crash_duplicates_nothing() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let a = device(&server, &token);
    a.new_id(&["add", "Email Sam"]);
    sync(&a);
    let b = Home::new();
    b.new_id(&["add", "Call Priya", "@priya"]);
    b.ok(&["person", "edit", "priya", "--email", "priya@example.org"]);
    connect(&b, &server, &token);
    // The state of B before the sync, as if it crashed after the server stored the
    // carried-over records but before B switched journals.
    let before = tempfile::tempdir().unwrap();
    copy_dir(b.path(), before.path());
    sync(&b);
    // Meanwhile A works on the carried-over shift; adopting again must not undo that.
    sync(&a);
    let priya = a
        .listed_ids()
        .into_iter()
        .find(|id| a.ok(&["show", id]).contains("Call Priya"))
        .unwrap();
    a.ok(&["done", &priya]);
    sync(&a);
    std::fs::remove_dir_all(b.path()).unwrap();
    copy_dir(before.path(), b.path());
    let again = sync(&b);
    assert!(again.contains("Joined the account's journal."), "{again}");
    sync(&a);
    let (ea, eb) = (export(&a), export(&b));
    assert_eq!(ea, eb);
    assert_eq!(texts(&ea), ["Call Priya", "Email Sam"]);
    let done: Vec<&Value> = ea["shifts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "done")
        .collect();
    assert_eq!(done.len(), 1, "{ea}");
    assert_eq!(ea["people"].as_array().unwrap().len(), 1, "{ea}");
    let shown = a.ok(&["person", "show", "priya"]);
    assert!(shown.contains("priya@example.org"), "{shown}");
}

#[test]
fn failures_exit_3_or_4_and_change_nothing() {
    let home = Home::new();
    home.new_id(&["add", "Email Sam"]);
    let err = home.fails(1, &["sync"]);
    assert!(err.contains("nudge remote add"), "{err}");

    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unknown = format!("nudge_acct_0123456789ab_{}", "c".repeat(64));
    home.remote_add(&format!("ws://127.0.0.1:{port}"), &unknown);
    let before = export(&home);
    let position = std::fs::read(home.path().join("journal.position")).unwrap();
    let err = home.fails(3, &["sync", "--timeout", "5"]);
    assert!(err.contains("cannot reach the server"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(export(&home), before);
    assert_eq!(
        std::fs::read(home.path().join("journal.position")).unwrap(),
        position
    );

    // A server that does not know the token.
    let data = tempfile::tempdir().unwrap();
    add_account(data.path(), "ana");
    let server = Server::start(data.path());
    home.ok(&["remote", "remove"]);
    connect(&home, &server, &unknown);
    let err = home.fails(4, &["sync"]);
    assert!(err.contains("refused this device's token"), "{err}");
    assert_eq!(home.listed_ids().len(), 1);

    // A token that worked, then was revoked while the server runs.
    // The server runs: the account is added through it.
    let token = add_account(data.path(), "bob");
    let device = device(&server, &token);
    device.new_id(&["add", "Call Priya"]);
    sync(&device);
    let id = token.split('_').nth(2).unwrap();
    crate::util::stdout(&crate::util::admin(data.path(), &["token", "revoke", id]));
    device.new_id(&["add", "Book a class"]);
    let before = export(&device);
    let err = device.fails(4, &["sync"]);
    assert!(err.contains("refused"), "{err}");
    // (sled may rewrite its own snapshot file on open; the journal is what must not move.)
    assert_eq!(export(&device), before);
    assert_eq!(texts(&before), ["Book a class", "Call Priya"]);
}

#[test]
fn the_remote_is_private_and_says_what_is_not_synced() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let home = Home::new();
    let url = format!("http://{}", server.addr);
    let err = home.fails(1, &["remote", "add", &url]);
    assert!(err.contains("NUDGE_TOKEN"), "{err}");
    home.cmd()
        .args(["remote", "add", &url, "--token-stdin"])
        .write_stdin(format!("{token}\n"))
        .assert()
        .success();
    let err = home.fails(1, &["remote", "add", &url]);
    assert!(err.contains("remote remove"), "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.path().join("remote.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let secret = token.rsplit('_').next().unwrap();
    let shown = home.ok(&["remote", "show"]);
    assert!(shown.contains(&url) && !shown.contains(secret), "{shown}");

    let out = home.run(&["add", "Email Sam"]);
    let notice = String::from_utf8_lossy(&out.stderr);
    assert!(notice.contains("not synced yet"), "{notice}");
    let before = home.json(&["remote", "show", "--json"])["unsynced_changes"]
        .as_u64()
        .unwrap();
    assert!(before > 0);
    sync(&home);
    assert_eq!(
        home.json(&["remote", "show", "--json"])["unsynced_changes"],
        0
    );
    let out = home.run(&["add", "Call Priya"]);
    let notice = String::from_utf8_lossy(&out.stderr);
    assert!(notice.contains("1 change not synced yet"), "{notice}");
}

#[test]
fn devices_converge_across_server_restarts() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let mut server = Server::start(data.path());
    let a = device(&server, &token);
    let b = device(&server, &token);
    a.new_id(&["add", "Email Sam"]);
    sync(&a);
    // kill -9 right after A was told its changes are stored.
    server.kill9();
    let err = b.fails(3, &["sync", "--timeout", "5"]);
    assert!(err.contains("cannot reach"), "{err}");
    let mut server = Server::start(data.path());
    // The port changed: point the devices at the new one.
    for device in [&a, &b] {
        device.ok(&["remote", "remove"]);
        connect(device, &server, &token);
    }
    sync(&b);
    assert_eq!(texts(&export(&b)), ["Email Sam"]);
    b.new_id(&["add", "Call Priya"]);
    sync(&b);
    server.kill9();
    let server = Server::start(data.path());
    for device in [&a, &b] {
        device.ok(&["remote", "remove"]);
        connect(device, &server, &token);
    }
    sync(&a);
    assert_eq!(export(&a), export(&b));
    assert_eq!(texts(&export(&a)), ["Call Priya", "Email Sam"]);
}

pub(crate) fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut request = agent.get(url);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut response = request.call().unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

#[test]
fn health_metrics_and_the_journal_route_answer_over_http() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let base = format!("http://{}", server.addr);
    assert_eq!(get(&format!("{base}/healthz"), None), (200, "ok\n".into()));
    assert_eq!(get(&format!("{base}/v1/journal"), None).0, 401);
    assert_eq!(
        get(&format!("{base}/v1/journal"), Some(&token)),
        (200, r#"{"journal":null}"#.into())
    );
    assert_eq!(get(&format!("{base}/nope"), None).0, 404);

    let home = device(&server, &token);
    home.new_id(&["add", "Email Sam"]);
    sync(&home);
    let (status, body) = get(&format!("{base}/v1/journal"), Some(&token));
    assert_eq!(status, 200);
    let journal: Value = serde_json::from_str(&body).unwrap();
    assert!(journal["journal"].is_string(), "{body}");

    // Registering a document the account does not own is refused.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let unknown = nudge_store::DocumentId::random().to_string();
    let response = agent
        .put(format!("{base}/v1/journal"))
        .header("Authorization", format!("Bearer {token}"))
        .send(format!(r#"{{"journal":"{unknown}"}}"#))
        .unwrap();
    assert_eq!(response.status().as_u16(), 409);

    let (status, metrics) = get(&format!("{base}/metrics"), None);
    assert_eq!(status, 200);
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from {metrics}"))
    };
    assert!(value("nudge_messages_in_total") >= 2.0);
    assert!(value("nudge_flushes_total") >= 1.0);
    assert!(value("nudge_ack_latency_seconds_count") >= 1.0);
    assert!(value("nudge_flush_seconds_count") >= 1.0);
    assert!(value("nudge_documents_loaded") >= 2.0);
    assert!(value("nudge_auth_failures_total") >= 1.0);
    assert_eq!(value("nudge_connections"), 0.0);
}

/// A home holding a journal of `n` shifts, built through the library (fast).
fn big_home(n: usize) -> Home {
    let home = Home::new();
    let now = nudge_journal::Now::new(
        home.now.parse().unwrap(),
        jiff::tz::TimeZone::get(&home.tz).unwrap(),
    );
    let session = nudge_replica::Replica::open(home.path(), now.clone()).unwrap();
    let actor = session.device_actor().unwrap();
    let contacts_id = nudge_store::DocumentId::random();
    let contacts = nudge_journal::Contacts::create(actor.clone(), &now);
    let mut journal = nudge_journal::Journal::create(actor, &now, "big", &contacts_id.to_string());
    for i in 0..n {
        journal
            .add_shift(
                &now,
                nudge_journal::NewShift {
                    text: format!("Micro shift number {i}"),
                    ..Default::default()
                },
            )
            .unwrap();
    }
    session
        .install_journal(&journal, &contacts_id, &contacts)
        .unwrap();
    drop(session);
    home
}

#[test]
fn a_server_stopped_during_syncs_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let mut server = Server::start(data.path());
    let a = big_home(crate::util::scale(1_500, 5_000));
    connect(&a, &server, &token);
    sync(&a);
    let b = Home::new();
    for round in 0..crate::util::scale(4, 12) {
        b.run(&["remote", "remove"]);
        connect(&b, &server, &token);
        a.new_id(&["add", &format!("Round {round}")]);
        // A's sync and B's fetch run while the server is stopped under them.
        let a_sync = a
            .std_cmd()
            .args(["sync", "--timeout", "10"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let b_sync = b
            .std_cmd()
            .args(["sync", "--timeout", "10"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20 + 30 * (round as u64 % 5)));
        if round % 2 == 0 {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &server.child.id().to_string()])
                .status();
            let _ = server.child.wait();
        } else {
            server.kill9();
        }
        for child in [a_sync, b_sync] {
            let out = child.wait_with_output().unwrap();
            assert!(
                matches!(out.status.code(), Some(0) | Some(3)),
                "a sync cut off by the server exits 0 or 3: {:?} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        server = Server::start(data.path());
        a.run(&["remote", "remove"]);
        connect(&a, &server, &token);
    }
    b.run(&["remote", "remove"]);
    connect(&b, &server, &token);
    sync(&a);
    sync(&b);
    sync(&a);
    let (ea, eb) = (export(&a), export(&b));
    assert_eq!(ea, eb);
    let rounds = crate::util::scale(4, 12);
    assert_eq!(
        texts(&ea)
            .iter()
            .filter(|t| t.starts_with("Round "))
            .count(),
        rounds
    );
}

#[test]
fn a_device_killed_during_syncs_loses_nothing_and_converges() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let a = big_home(crate::util::scale(500, 2_000));
    connect(&a, &server, &token);
    let b = device(&server, &token);
    let rounds = crate::util::scale(20, 40);
    let mut printed = Vec::new();
    for round in 0..rounds {
        printed.push(b.new_id(&["add", &format!("Kept {round}")]));
        let mut child = b
            .std_cmd()
            .args(["sync", "--timeout", "10"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(5 + 13 * (round as u64 % 9)));
        let _ = child.kill();
        let _ = child.wait();
        // The store reopens, and every shift the device printed is there.
        let listed = b.listed_ids();
        for id in &printed {
            assert!(listed.contains(id), "round {round}: {id} is missing");
        }
    }
    sync(&b);
    sync(&a);
    sync(&b);
    assert_eq!(export(&a), export(&b));
    let texts = texts(&export(&a));
    assert_eq!(
        texts.iter().filter(|t| t.starts_with("Kept ")).count(),
        rounds
    );
}

#[test]
fn first_contact_details_given_on_two_devices_at_once_are_both_kept() {
    let account = crate::util::Account::start();
    let laptop = account.device();
    laptop.ok(&["add", "Coffee with Sam", "@sam"]);
    laptop.ok(&["sync"]);
    let phone = account.device();
    phone.ok(&["sync"]);
    // Sam has no details yet; each device gives one, offline.
    laptop.ok(&["person", "edit", "sam", "--email", "sam@example.org"]);
    phone.ok(&["person", "edit", "sam", "--phone", "+44 20 7946 0000"]);
    laptop.ok(&["sync"]);
    phone.ok(&["sync"]);
    laptop.ok(&["sync"]);
    for device in [&laptop, &phone] {
        let sam = device.json(&["person", "show", "sam", "--json"]);
        assert_eq!(sam["contact"]["email"], "sam@example.org", "{sam}");
        assert_eq!(sam["contact"]["phone"], "+44 20 7946 0000", "{sam}");
    }
    // A removal afterwards removes it everywhere, with nothing stale showing through.
    phone.ok(&["person", "edit", "sam", "--email", ""]);
    phone.ok(&["sync"]);
    laptop.ok(&["sync"]);
    let sam = laptop.json(&["person", "show", "sam", "--json"]);
    assert_eq!(sam["contact"]["email"], serde_json::Value::Null, "{sam}");
}
