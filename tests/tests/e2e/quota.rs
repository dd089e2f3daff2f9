//! The per-account storage quota (`serve --quota-mib`), through the real binaries: an
//! account fills its quota in batches, the server restarting between them (so the figure
//! it holds is the one it kept on disk); the batch that would go past it is refused with
//! one line that says what to do, nothing of it is stored, the device keeps all of it, and
//! it goes through once the operator gives the account room.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::util::{Home, Server, add_account, admin, stdout, texts};

/// `count` shifts of 480 letters each, no two alike (so they compress no better than
/// real notes would), as an export file to import.
fn batch(dir: &Path, seed: u64, count: usize) -> PathBuf {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut letter = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        char::from(b'a' + ((state >> 33) % 26) as u8)
    };
    let shifts: Vec<_> = (0..count)
        .map(|i| {
            let text: String = (0..480).map(|_| letter()).collect();
            json!({
                "id": format!("{seed:016x}{i:016x}"),
                "text": text,
                "status": "planned",
                "created_at": "2026-12-01T10:00:00Z",
                "minutes": 5,
                "kind": "other",
                "ideas": [],
                "people": [],
            })
        })
        .collect();
    let file = dir.join(format!("batch-{seed}.json"));
    let export = json!({ "schema_version": 1, "shifts": shifts, "ideas": [], "people": [] });
    std::fs::write(&file, export.to_string()).unwrap();
    file
}

/// What `account list` says the account uses, in bytes (from its `N.N KiB|MiB used`).
fn used(data: &Path) -> f64 {
    let listed = stdout(&admin(data, &["account", "list"]));
    let line = listed.lines().find(|l| l.contains("ana")).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let n: f64 = words[words.len() - 3].parse().unwrap();
    n * match words[words.len() - 2] {
        "MiB" => 1048576.0,
        "KiB" => 1024.0,
        _ => 1.0,
    }
}

#[test]
fn an_account_at_its_quota_is_refused_more_and_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let quota = ["--quota-mib", "1"];
    let mut server = Server::start_with(data.path(), &quota);
    let home = Home::new();
    home.remote_add(&format!("http://{}", server.addr), &token);
    home.new_id(&["add", "Email Sam"]);
    home.ok(&["sync"]);

    // Batches of ~140 KiB go through until one would pass 1 MiB.
    let mut accepted = 0;
    let refusal = loop {
        let seed = accepted as u64 + 1;
        assert!(seed < 20, "1 MiB never filled");
        home.ok(&["import", batch(files.path(), seed, 300).to_str().unwrap()]);
        let out = home.run(&["sync"]);
        if !out.status.success() {
            assert_eq!(out.status.code(), Some(3));
            break String::from_utf8_lossy(&out.stderr).into_owned();
        }
        accepted += 1;
        let addr = server.addr.clone();
        drop(server);
        let before = used(data.path());
        assert!(before > 0.0 && before <= 1048576.0, "{before}");
        server = Server::start_at(data.path(), &addr, &quota);
    };
    eprintln!("refused after {accepted} accepted batches: {refusal}");
    assert_eq!(refusal.trim().lines().count(), 1, "{refusal}");
    assert!(refusal.contains("over its storage quota"), "{refusal}");
    assert!(refusal.contains("--quota-mib"), "{refusal}");
    assert!(accepted >= 3, "the quota was hit too early: {accepted}");

    // The device keeps everything and works on.
    let shifts_here = 1 + 300 * (accepted + 1);
    assert_eq!(texts(&home.json(&["export", "--json"])).len(), shifts_here);
    home.new_id(&["add", "Call Priya"]);

    // Nothing of the refused batch is on the server.
    let other = Home::new();
    other.remote_add(&format!("http://{}", server.addr), &token);
    other.ok(&["sync"]);
    let there = texts(&other.json(&["export", "--json"])).len();
    assert_eq!(there, 1 + 300 * accepted);

    // With room, it all goes through.
    let addr = server.addr.clone();
    drop(server);
    let full = used(data.path());
    let server = Server::start_at(data.path(), &addr, &["--quota-mib", "8"]);
    home.ok(&["sync"]);
    other.ok(&["sync"]);
    assert_eq!(
        texts(&other.json(&["export", "--json"])).len(),
        shifts_here + 1
    );
    drop(server);
    let after = used(data.path());
    eprintln!("used: {full} bytes at the refusal, {after} once it went through");
    assert!(full <= 1048576.0 && after > full, "{full} then {after}");
}
