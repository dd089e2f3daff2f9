//! Linking devices through the real binaries: `nudge device link`, `nudge join`,
//! `nudge device list|revoke`.

use std::time::Duration;

use serde_json::Value;

use crate::util::{Home, Server, add_account, texts};

/// The first device: the account token, a journal, synced.
fn first_device(server: &Server, token: &str) -> Home {
    let home = Home::new();
    home.new_id(&["add", "Email Sam", "+ux"]);
    home.remote_add(&format!("http://{}", server.addr), token);
    home.ok(&["sync"]);
    home
}

fn link(home: &Home, extra: &[&str]) -> String {
    let mut args = vec!["device", "link"];
    args.extend_from_slice(extra);
    let out = home.ok(&args);
    let link = out.lines().last().unwrap().to_owned();
    assert!(link.contains("/join#"), "{out}");
    link
}

fn list(home: &Home) -> Vec<Value> {
    home.json(&["device", "list", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn devices_join_with_links_and_are_listed() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = first_device(&server, &token);

    let phone = Home::new();
    let joined = phone.ok(&["join", &link(&laptop, &[]), "--name", "phone"]);
    assert!(
        joined.contains("Linked this device as \"phone\""),
        "{joined}"
    );
    let tablet = Home::new();
    tablet.ok(&["join", &link(&laptop, &[]), "--name", "tablet"]);
    for device in [&phone, &tablet] {
        assert_eq!(texts(&device.json(&["export", "--json"])), ["Email Sam"]);
    }
    // Each has a token of its own, and is listed with its name; this one is marked.
    let listed = list(&phone);
    assert_eq!(listed.len(), 3, "{listed:?}");
    let names: Vec<&str> = listed.iter().filter_map(|d| d["name"].as_str()).collect();
    assert!(
        names.contains(&"phone") && names.contains(&"tablet"),
        "{names:?}"
    );
    let me: Vec<&Value> = listed.iter().filter(|d| d["this_device"] == true).collect();
    assert_eq!(me.len(), 1);
    assert_eq!(me[0]["name"], "phone");
    let text = laptop.ok(&["device", "list"]);
    assert!(
        text.contains("(account token)") && text.contains("(this device)"),
        "{text}"
    );

    // A change on one device reaches the others.
    tablet.new_id(&["add", "Book a class"]);
    tablet.ok(&["sync"]);
    phone.ok(&["sync"]);
    laptop.ok(&["sync"]);
    for device in [&laptop, &phone] {
        assert_eq!(
            texts(&device.json(&["export", "--json"])),
            ["Book a class", "Email Sam"]
        );
    }
}

#[test]
fn expired_reused_and_made_up_links_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let clock = tempfile::tempdir().unwrap();
    let clock = clock.path().join("offset-ms");
    let server = Server::start_with(data.path(), &["--test-clock", clock.to_str().unwrap()]);
    let laptop = first_device(&server, &token);

    let used = link(&laptop, &[]);
    Home::new().ok(&["join", &used]);
    let late = Home::new();
    late.new_id(&["add", "My own shift"]);
    let err = late.fails(1, &["join", &used]);
    assert!(err.contains("used already"), "{err}");

    let expiring = link(&laptop, &["--expires", "1"]);
    // Two seconds later, by the server's clock.
    std::fs::write(&clock, "2000").unwrap();
    let err = late.fails(1, &["join", &expiring]);
    assert!(err.contains("expired"), "{err}");

    let made_up = format!("http://{}/join#{}", server.addr, "ab".repeat(16));
    let err = late.fails(1, &["join", &made_up]);
    assert!(err.contains("not known"), "{err}");
    let err = late.fails(1, &["join", "http://example.org/no-link-here"]);
    assert!(err.contains("not a nudge device link"), "{err}");
    // Nothing changed on the refused device.
    assert!(!late.path().join("remote.json").exists());
    assert_eq!(texts(&late.json(&["export", "--json"])), ["My own shift"]);
}

#[test]
fn a_device_with_offline_entries_joins_without_losing_any() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = first_device(&server, &token);
    let phone = Home::new();
    for i in 0..50 {
        phone.new_id(&["add", &format!("Offline {i:02}"), "+side-project"]);
    }
    let joined = phone.ok(&["join", &link(&laptop, &[])]);
    assert!(
        joined.contains("carried over this device's 50 shifts, 1 idea and 0 people"),
        "{joined}"
    );
    laptop.ok(&["sync"]);
    let all = texts(&laptop.json(&["export", "--json"]));
    assert_eq!(all.len(), 51);
    assert_eq!(all.iter().filter(|t| t.starts_with("Offline ")).count(), 50);
    assert_eq!(
        laptop.json(&["export", "--json"]),
        phone.json(&["export", "--json"])
    );
}

#[test]
fn join_killed_half_way_and_run_again_duplicates_nothing() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = first_device(&server, &token);
    let rounds = crate::util::scale(4, 12);
    for round in 0..rounds {
        let phone = Home::new();
        for i in 0..5 {
            phone.new_id(&["add", &format!("Round {round} shift {i}")]);
        }
        let link = link(&laptop, &[]);
        let mut child = phone
            .std_cmd()
            .args(["join", &link])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(5 + 15 * round as u64));
        let _ = child.kill();
        let _ = child.wait();
        // Run again with the same link: it finishes, whatever the first run got to.
        phone.ok(&["join", &link]);
        phone.ok(&["sync"]);
    }
    laptop.ok(&["sync"]);
    let all = texts(&laptop.json(&["export", "--json"]));
    assert_eq!(all.len(), 1 + rounds * 5, "{all:?}");
    let mut unique = all.clone();
    unique.dedup();
    assert_eq!(unique, all, "a shift was carried over twice");
    // Every round left exactly one device (killed runs' tokens were replaced).
    assert_eq!(list(&laptop).len(), 1 + rounds);
}

#[test]
fn a_revoked_device_is_refused_keeps_its_data_and_can_join_again() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = first_device(&server, &token);
    let phone = Home::new();
    phone.ok(&["join", &link(&laptop, &[]), "--name", "lost-phone"]);
    phone.new_id(&["add", "Written after the revoke"]);
    let said = laptop.ok(&["device", "revoke", "lost-phone"]);
    assert!(said.contains("Revoked"), "{said}");
    let before = phone.json(&["export", "--json"]);
    let err = phone.fails(4, &["sync"]);
    assert!(err.contains("refused"), "{err}");
    assert_eq!(phone.json(&["export", "--json"]), before);
    assert_eq!(list(&laptop).len(), 1);
    let err = laptop.fails(1, &["device", "revoke", "lost-phone"]);
    assert!(err.contains("no device"), "{err}");
    // Found again: a new link brings it back, with what it wrote meanwhile.
    phone.ok(&["join", &link(&laptop, &[])]);
    laptop.ok(&["sync"]);
    assert_eq!(
        texts(&laptop.json(&["export", "--json"])),
        ["Email Sam", "Written after the revoke"]
    );
}

#[test]
fn a_stolen_device_cannot_lock_the_owner_out_and_loses_what_it_minted_when_revoked() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let base = format!("http://{}", server.addr);
    let laptop = first_device(&server, &token);
    let stolen = Home::new();
    stolen.ok(&["join", &link(&laptop, &[]), "--name", "stolen-phone"]);
    // The thief mints a spare device and a share of their own, and leaves a code unused.
    let spare = Home::new();
    spare.ok(&["join", &link(&stolen, &[]), "--name", "spare"]);
    let unused = link(&stolen, &[]);
    let invited = stolen.ok(&["buddy", "invite", "Thief"]);
    let thiefs_share = invited.lines().last().unwrap().to_owned();
    let owners_share = laptop
        .ok(&["buddy", "invite", "Jo"])
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let status = |url: &str| agent.get(url).call().unwrap().status().as_u16();
    assert_eq!(status(&thiefs_share), 200);
    // It cannot revoke the account token.
    let account_id = token.split('_').nth(2).unwrap();
    let mut answer = agent
        .delete(format!("{base}/v1/devices/{account_id}"))
        .header("Authorization", format!("Bearer {}", stolen.device_token()))
        .call()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 403);
    assert!(
        answer
            .body_mut()
            .read_to_string()
            .unwrap()
            .contains("only the account token")
    );
    laptop.ok(&["sync"]);
    // The owner revokes the stolen device: what it minted goes with it.
    laptop.ok(&["device", "revoke", "stolen-phone"]);
    assert_eq!(spare.fails(4, &["sync"]).lines().count(), 1);
    assert_eq!(status(&thiefs_share), 404);
    let fresh = Home::new();
    let err = fresh.fails(1, &["join", &unused]);
    assert!(err.contains("not known"), "{err}");
    // The owner's own devices and shares are untouched.
    assert_eq!(status(&owners_share), 200);
    laptop.ok(&["sync"]);
    let listed = laptop.json(&["device", "list", "--json"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert!(
        !names.contains(&"stolen-phone") && !names.contains(&"spare"),
        "{listed}"
    );
    // Instants as RFC 3339, like every other listing.
    for device in listed.as_array().unwrap() {
        assert!(device.get("last_seen_ms").is_none(), "{device}");
        let seen = device["last_seen_at"].as_str().unwrap_or("");
        assert!(
            seen.is_empty() || seen.parse::<jiff::Timestamp>().is_ok(),
            "{device}"
        );
    }
}

#[test]
fn a_leaked_account_token_is_replaced_and_the_devices_linked_from_it_keep_working() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = first_device(&server, &token);
    let phone = Home::new();
    phone.ok(&["join", &link(&laptop, &[]), "--name", "phone"]);
    let out = crate::util::admin(data.path(), &["account", "token", "ana"]);
    let said = crate::util::stdout(&out);
    let new = said.lines().last().unwrap().to_owned();
    assert!(new.starts_with("nudge_acct_") && new != token, "{said}");
    // The old token is refused; the new one works; the phone, linked from the old, too.
    assert_eq!(laptop.fails(4, &["sync"]).lines().count(), 1);
    let fresh = Home::new();
    fresh.remote_add(&format!("http://{}", server.addr), &new);
    fresh.ok(&["sync"]);
    phone.new_id(&["add", "From the phone"]);
    phone.ok(&["sync"]);
    fresh.ok(&["sync"]);
    assert!(texts(&fresh.json(&["export", "--json"])).contains(&"From the phone".to_owned()));
    let bad = crate::util::admin(data.path(), &["account", "token", "nobody"]);
    assert_eq!(bad.status.code(), Some(1));
    drop(server);
    // With the server stopped, straight on the folder.
    let again = crate::util::stdout(&crate::util::admin(
        data.path(),
        &["account", "token", "ana"],
    ));
    assert!(
        again.lines().last().unwrap().starts_with("nudge_acct_"),
        "{again}"
    );
}

#[test]
fn buddy_list_shows_the_servers_shares_with_who_made_each_and_revokes_an_unrecorded_one() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = first_device(&server, &token);
    let stolen = Home::new();
    stolen.ok(&["join", &link(&laptop, &[]), "--name", "stolen-phone"]);
    laptop.ok(&["buddy", "invite", "Jo"]);
    // A share the journal never hears of: made, then the journal's record taken back.
    let thiefs_link = stolen
        .ok(&["buddy", "invite", "Thief"])
        .lines()
        .last()
        .unwrap()
        .to_owned();
    stolen.ok(&["undo"]);
    stolen.ok(&["sync"]);
    laptop.ok(&["sync"]);

    let listed = laptop.json(&["buddy", "list", "--json"]);
    let entry = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not listed: {listed}"))
            .clone()
    };
    assert_eq!(entry("Jo")["created_by"], "account token", "{listed}");
    assert_eq!(entry("Jo")["in_journal"], true);
    assert_eq!(entry("Thief")["created_by"], "stolen-phone", "{listed}");
    assert_eq!(entry("Thief")["in_journal"], false);
    let plain = laptop.ok(&["buddy", "list"]);
    assert!(plain.contains("not in this journal"), "{plain}");

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    assert_eq!(
        agent.get(&thiefs_link).call().unwrap().status().as_u16(),
        200
    );
    laptop.ok(&["buddy", "revoke", "thief"]);
    assert_eq!(
        agent.get(&thiefs_link).call().unwrap().status().as_u16(),
        404
    );
    let after = laptop.json(&["buddy", "list", "--json"]);
    assert!(
        !after
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "Thief"),
        "{after}"
    );
}
