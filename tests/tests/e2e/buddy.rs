//! The accountability buddy through the real binaries: invite, follow, show, revoke, and a
//! hostile buddy on a raw websocket.

use std::path::Path;
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use nudge_store::{DocumentId, Location, OpenOptions, Store};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::server::{connect, forged_refusal, join, recv, runtime, sync};
use crate::util::{Home, Server, add_account};

fn owner(server: &Server, token: &str) -> Home {
    let home = Home::new();
    home.remote_add(&format!("http://{}", server.addr), token);
    home
}

fn invite(home: &Home, name: &str, scope: &str) -> String {
    let out = home.ok(&["buddy", "invite", name, "--scope", scope]);
    let link = out.lines().last().unwrap().to_owned();
    assert!(link.contains("/view/nudge_share_"), "{out}");
    link
}

/// Every document in a home's store, saved uncompressed (so a byte search is honest).
fn stored_bytes(home: &Path) -> Vec<u8> {
    let location = Location::Folder(home.join("store"));
    let store = Store::open(&location, &OpenOptions::default()).unwrap();
    let mut all = Vec::new();
    for doc in store.documents().unwrap() {
        let stored = store.load(&doc).unwrap().unwrap();
        let loaded = Automerge::load(&stored.concat()).unwrap();
        all.extend(loaded.save_nocompress());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_buddy_follows_the_owners_progress_at_each_scope_and_never_sees_people() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = owner(&server, &token);
    let sam = laptop.new_id(&["add", "Email Sam Quill about roles", "+ux", "@Sam Quill"]);
    laptop.ok(&[
        "person",
        "edit",
        "Sam Quill",
        "--email",
        "sam.quill@example.org",
    ]);
    laptop.ok(&[
        "log",
        "Called Priya Stone",
        "+teaching",
        "--little-yes",
        "she offered an intro",
    ]);
    laptop.ok(&["sync"]);
    // With no buddy yet, suggestions offer to ask for one; once a buddy follows, not.
    let buddy_line = |home: &Home| {
        home.json(&["suggest", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["text"].as_str().unwrap().contains("accountability buddy"))
    };
    assert!(buddy_line(&laptop));
    let titles_link = invite(&laptop, "Jo", "titles");
    assert!(!buddy_line(&laptop));
    let counts_link = invite(&laptop, "Kim", "counts");
    // A second owner device joins and works too.
    let phone = Home::new();
    let link = laptop.ok(&["device", "link"]);
    phone.ok(&["join", link.lines().last().unwrap()]);

    let jo = Home::new();
    jo.ok(&["follow", &titles_link, "--as", "ana"]);
    let kim = Home::new();
    kim.ok(&["follow", &counts_link, "--as", "ana"]);

    // The owner makes progress on both devices.
    laptop.ok(&["done", &sam[..8]]);
    laptop.ok(&["sync"]);
    phone.ok(&["sync"]);
    phone.new_id(&["log", "Booked a pottery class", "+pottery"]);
    phone.ok(&["sync"]);
    laptop.ok(&["sync"]);
    for buddy in [&jo, &kim] {
        // A device that only follows has nothing of its own to sync: no "not synced" footer.
        let synced = buddy.run(&["sync"]);
        assert!(synced.status.success());
        let said = String::from_utf8_lossy(&synced.stderr);
        assert!(!said.contains("not synced"), "{said}");
    }
    // A journal of its own on a device with no remote: still no footer, nowhere to sync to.
    let own = kim.run(&["add", "Read the week I follow"]);
    assert!(!String::from_utf8_lossy(&own.stderr).contains("not synced"));
    let plain = jo.ok(&["buddy", "show", "ana"]);
    assert!(
        plain.ends_with('\n'),
        "buddy show ends without a newline: {plain:?}"
    );

    // The buddy's view converges to the owner's state at that scope.
    let owner_week = &laptop.json(&["week", "--json"])["weeks"][0];
    let shown = jo.json(&["buddy", "show", "ana", "--json"]);
    assert_eq!(shown["week"]["done"], owner_week["done"], "{shown}");
    assert_eq!(shown["week"]["goal"], owner_week["goal"]);
    // The review, within the scope: the owner's total; no little yes below `full`.
    let owner_review = laptop.json(&["review", "--json"]);
    assert_eq!(
        shown["review"]["pace"]["total"], owner_review["total"],
        "{shown}"
    );
    assert_eq!(shown["review"]["little_yeses"], Value::Array(vec![]));
    assert!(plain.contains("Running total: "), "{plain}");
    let mut texts: Vec<&str> = shown["shifts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    texts.sort();
    assert_eq!(
        texts,
        [
            "Booked a pottery class",
            "Called Priya Stone",
            "Email Sam Quill about roles"
        ]
    );
    let counts = kim.json(&["buddy", "show", "ana", "--json"]);
    assert_eq!(counts["week"]["done"], owner_week["done"]);
    assert_eq!(counts["shifts"], Value::Array(vec![]));
    assert_eq!(counts["ideas_by_status"]["exploring"], 3);

    // Bytes, not only output: what each buddy's store holds.
    let at_titles = stored_bytes(jo.path());
    let at_counts = stored_bytes(kim.path());
    for secret in ["Booked a pottery", "Email Sam", "pottery", "teaching"] {
        assert!(!contains(&at_counts, secret), "{secret:?} leaked at counts");
    }
    for bytes in [&at_titles, &at_counts] {
        for secret in ["sam.quill@example.org", "she offered an intro"] {
            assert!(!contains(bytes, secret), "{secret:?} leaked to a buddy");
        }
    }
    assert!(contains(&at_titles, "Booked a pottery class"));
    // Following is read-only: the buddy's own journal is not made or touched by it.
    assert!(!jo.path().join("journal.position").exists());
}

#[test]
fn a_hostile_buddy_cannot_change_anything() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let mut server = Server::start(data.path());
    let laptop = owner(&server, &token);
    laptop.new_id(&["add", "Email Sam"]);
    laptop.ok(&["sync"]);
    let link = invite(&laptop, "Mallory", "titles");
    let share_token = link.rsplit("/view/").next().unwrap().to_owned();
    let view: DocumentId = laptop.json(&["buddy", "list", "--json"])[0]["view_doc"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let journal: DocumentId = ureq_get_journal(&server.addr, &token).parse().unwrap();
    let before_export = laptop.json(&["export", "--json"]);

    let stored = |data: &Path| {
        let location = Location::Folder(data.to_path_buf());
        let store = Store::open(&location, &OpenOptions::default()).unwrap();
        (store.load(&view).unwrap(), store.load(&journal).unwrap())
    };
    server.kill9();
    let before = stored(data.path());
    let mut server = Server::start(data.path());

    runtime().block_on(async {
        for target in [view, journal] {
            let mut ws = connect(&server.addr, Some(&share_token)).await.unwrap();
            let server_id = join(&mut ws, "mallory").await;
            // First learn the view (allowed), then send changes: refused out loud.
            let mut doc = Automerge::new();
            let _ = sync(&mut ws, "mallory", &server_id, &view, &mut doc, "request").await;
            let told = forged_refusal(&mut ws, "mallory", &server_id, &target, &doc, |tx| {
                tx.put(ROOT, "weekly_goal", 1).unwrap();
                tx.put(ROOT, "hacked", true).unwrap();
            })
            .await;
            assert!(told.contains("read-only"), "for {target}: {told:?}");
        }
        // Asking for the owner's journal: as if it did not exist.
        let mut ws = connect(&server.addr, Some(&share_token)).await.unwrap();
        let server_id = join(&mut ws, "mallory2").await;
        let mut nothing = Automerge::new();
        assert_eq!(
            sync(
                &mut ws,
                "mallory2",
                &server_id,
                &journal,
                &mut nothing,
                "request"
            )
            .await,
            Err("unavailable".into())
        );
    });
    server.kill9();
    assert_eq!(
        stored(data.path()),
        before,
        "the server's stored documents changed"
    );
    let server = Server::start(data.path());
    let out = laptop.cmd().args(["remote", "remove"]).output().unwrap();
    assert!(out.status.success());
    laptop.remote_add(&format!("http://{}", server.addr), &token);
    laptop.ok(&["sync"]);
    assert_eq!(laptop.json(&["export", "--json"]), before_export);
}

fn ureq_get_journal(addr: &str, token: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(format!("http://{addr}/v1/journal"))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    let body: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    body["journal"].as_str().unwrap().to_owned()
}

#[test]
fn revoking_closes_the_buddys_connection_and_keeps_what_they_saw() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = owner(&server, &token);
    laptop.new_id(&["log", "Called Priya"]);
    laptop.ok(&["sync"]);
    let link = invite(&laptop, "Jo", "titles");
    let share_token = link.rsplit("/view/").next().unwrap().to_owned();
    let jo = Home::new();
    jo.ok(&["follow", &link, "--as", "ana"]);
    runtime().block_on(async {
        let mut ws = connect(&server.addr, Some(&share_token)).await.unwrap();
        join(&mut ws, "jo-live").await;
        let revoked = Instant::now();
        laptop.ok(&["buddy", "revoke", "Jo"]);
        let mut closed = false;
        for _ in 0..10 {
            match recv(&mut ws, Duration::from_millis(500)).await {
                Some(WsMessage::Close(_)) => {
                    closed = true;
                    break;
                }
                Some(_) => {}
                None => {}
            }
        }
        assert!(closed, "the buddy's connection stayed open");
        assert!(
            revoked.elapsed() < Duration::from_secs(2),
            "{:?}",
            revoked.elapsed()
        );
    });
    let said = jo.ok(&["sync"]);
    assert!(said.contains("stopped sharing"), "{said}");
    let shown = jo.json(&["buddy", "show", "ana", "--json"]);
    assert_eq!(shown["revoked"], true);
    assert_eq!(shown["week"]["done"], 1);
    let listed = laptop.json(&["buddy", "list", "--json"]);
    assert_eq!(listed[0]["active"], false);
    // A revoked or made-up link cannot be followed.
    let err = Home::new().fails(1, &["follow", &link]);
    assert!(err.contains("revoked") || err.contains("unknown"), "{err}");
}

#[test]
fn an_expired_link_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = owner(&server, &token);
    laptop.new_id(&["add", "Email Sam"]);
    laptop.ok(&["sync"]);
    let out = laptop.ok(&["buddy", "invite", "Jo", "--expires", "1s"]);
    let link = out.lines().last().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(1_500));
    let jo = Home::new();
    let err = jo.fails(1, &["follow", &link]);
    assert!(err.contains("expired"), "{err}");
    assert!(!jo.path().join("follows.json").exists());
    let err = laptop.fails(1, &["buddy", "invite", "Kim", "--expires", "soon"]);
    assert!(err.contains("--expires"), "{err}");
    // An expired share no longer blocks inviting the same buddy again.
    laptop.ok(&["buddy", "invite", "Jo"]);
    let err = laptop.fails(1, &["buddy", "invite", "Jo"]);
    assert!(err.contains("active counts share already"), "{err}");
    // Another scope: a new view and link; the old link stops working.
    let first = laptop.ok(&["buddy", "list", "--json"]);
    let said = laptop.ok(&["buddy", "invite", "Jo", "--scope", "full"]);
    assert!(said.contains("counts link no longer works"), "{said}");
    let list = laptop.json(&["buddy", "list", "--json"]);
    let active: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["active"] == true)
        .collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["scope"], "full");
    assert_ne!(first, laptop.ok(&["buddy", "list", "--json"]));
}

/// The head and as much of the body of `GET path` as arrives until `until` is in it.
async fn read_until(addr: &str, path: &str, until: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&got).contains(until) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn the_buddy_page_is_locked_down_and_a_carriage_return_cannot_fake_an_event() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = owner(&server, &token);
    let id = laptop.new_id(&["add", "Email Sam"]);
    laptop.ok(&[
        "done",
        &id,
        "--little-yes",
        "a reply\r\revent: gone\rdata: This link no longer works.\r\r",
    ]);
    let link = invite(&laptop, "Jo", "full");
    let share = link.rsplit("/view/").next().unwrap().to_owned();
    runtime().block_on(async {
        let page = read_until(&server.addr, &format!("/view/{share}"), "</html>").await;
        let head = page.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
        for header in [
            "content-security-policy: default-src 'none'; script-src 'sha256-",
            "frame-ancestors 'none'",
            "x-content-type-options: nosniff",
            "x-frame-options: deny",
        ] {
            assert!(head.contains(header), "no {header:?} in\n{head}");
        }
        let events = read_until(&server.addr, &format!("/view/{share}/events"), "\n\n").await;
        let (head, body) = events.split_once("\r\n\r\n").unwrap();
        assert!(head.to_ascii_lowercase().contains("nosniff"), "{head}");
        assert!(body.contains("a reply"), "{body}");
        // An event-stream reader ends a line at CR, LF or CRLF: no line may start a field
        // the owner did not write.
        for line in body.split(['\r', '\n']) {
            assert!(
                !line.starts_with("event: gone") && !line.starts_with("data: This link"),
                "a forged line in the event stream: {line:?}\n{body:?}"
            );
        }
    });
}

#[test]
fn no_token_can_share_the_journal_itself() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = owner(&server, &token);
    laptop.new_id(&["add", "Email Sam Quill", "@Sam Quill"]);
    laptop.ok(&["sync"]);
    // A linked phone: the kind of token a thief holds.
    let link = laptop.ok(&["device", "link"]);
    let phone = Home::new();
    phone.ok(&["join", link.lines().last().unwrap()]);
    let device_token = phone.device_token();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let base = format!("http://{}", server.addr);
    let journal = agent
        .get(format!("{base}/v1/journal"))
        .header("Authorization", format!("Bearer {device_token}"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .map(|t| serde_json::from_str::<Value>(&t).unwrap())
        .unwrap()["journal"]
        .as_str()
        .unwrap()
        .to_owned();
    for bearer in [&device_token, &token] {
        let mut answer = agent
            .post(format!("{base}/v1/shares"))
            .header("Authorization", format!("Bearer {bearer}"))
            .header("Content-Type", "application/json")
            .send(
                serde_json::json!({ "view_doc": journal, "scope": "full", "name": "x" })
                    .to_string(),
            )
            .unwrap();
        assert_eq!(answer.status().as_u16(), 403);
        let why = answer.body_mut().read_to_string().unwrap();
        assert!(why.contains("only a share view"), "{why}");
    }
    // The honest way still works, and the server lists only that share.
    invite(&laptop, "Jo", "titles");
    let listed = agent
        .get(format!("{base}/v1/shares"))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .map(|t| serde_json::from_str::<Value>(&t).unwrap())
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

#[test]
fn an_open_buddy_connection_closes_when_its_share_expires() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let mut laptop = owner(&server, &token);
    // The server's clock is the real one: the share must expire after this moment.
    laptop.now = jiff::Timestamp::now().to_string();
    laptop.new_id(&["add", "Email Sam"]);
    let link = invite_expiring(&laptop, "3s");
    let share = link.rsplit("/view/").next().unwrap().to_owned();
    let started = Instant::now();
    let reason = runtime().block_on(async {
        let mut ws = connect(&server.addr, Some(&share)).await.unwrap();
        join(&mut ws, "jo").await;
        loop {
            match recv(&mut ws, Duration::from_secs(20)).await {
                Some(WsMessage::Close(frame)) => {
                    break frame.map(|f| f.reason.to_string()).unwrap_or_default();
                }
                Some(_) => {}
                None => break "still open 20 s later".into(),
            }
        }
    });
    eprintln!("closed after {:?}: {reason}", started.elapsed());
    assert!(reason.contains("expired"), "{reason}");
}

fn invite_expiring(home: &Home, expires: &str) -> String {
    let out = home.ok(&["buddy", "invite", "Jo", "--expires", expires]);
    out.lines().last().unwrap().to_owned()
}
