//! `nudge-server backup` while the server runs and devices write, `restore` into a fresh
//! folder, a server on it, and devices converging with it; damaged backups and wrong
//! folders refused with one line and nothing touched.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::util::{Home, Server, add_account, admin, free_port, stdout, texts};

fn fails(out: &std::process::Output, needle: &str) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(needle), "{err}");
    err
}

#[test]
fn a_backup_taken_while_devices_write_restores_into_a_server_they_converge_with() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let listen = format!("127.0.0.1:{}", free_port());
    let server = Server::start_at(data.path(), &listen, &[]);
    let url = format!("http://{}", server.addr);
    let laptop = Home::new();
    laptop.remote_add(&url, &token);
    for i in 0..20 {
        laptop.new_id(&["add", &format!("Before the backup {i}")]);
    }
    laptop.ok(&["sync"]);
    laptop.ok(&["buddy", "invite", "Jo", "--scope", "titles"]);
    let phone = Home::new();
    phone.remote_add(&url, &token);
    phone.ok(&["sync"]);

    // The phone keeps writing and syncing while the backup is taken.
    let stop = AtomicBool::new(false);
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("nudge.backup");
    let during = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 200 {
                phone.new_id(&["add", &format!("During the backup {i}")]);
                phone.ok(&["sync"]);
                i += 1;
            }
            i
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        let said = stdout(&admin(
            data.path(),
            &["backup", "--out", file.to_str().unwrap()],
        ));
        assert!(said.contains("checked"), "{said}");
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap()
    });
    assert!(!backups.path().join("nudge.backup.partial").exists());
    assert!(during > 0, "the phone wrote nothing during the backup");
    // After the backup, on the old server only.
    laptop.new_id(&["add", "After the backup"]);
    laptop.ok(&["sync"]);
    phone.ok(&["sync"]);
    let before_loss = laptop.json(&["export", "--json"]);

    // The old server's disk is gone; a new folder from the backup, same address.
    drop(server);
    let restored = tempfile::tempdir().unwrap();
    let said = stdout(&admin(
        restored.path(),
        &["restore", "--from", file.to_str().unwrap()],
    ));
    assert!(said.contains("restored"), "{said}");
    let server = Server::start_at(restored.path(), &listen, &[]);

    // The same token works; what the backup missed comes back from the devices.
    laptop.ok(&["sync"]);
    phone.ok(&["sync"]);
    laptop.ok(&["sync"]);
    let fresh = Home::new();
    fresh.remote_add(&url, &token);
    fresh.ok(&["sync"]);
    let want = texts(&before_loss);
    assert!(want.contains(&"After the backup".to_owned()));
    for home in [&laptop, &phone, &fresh] {
        assert_eq!(texts(&home.json(&["export", "--json"])), want);
    }
    // The buddy's share survived too: the link still opens the view.
    let shares = laptop.json(&["buddy", "list", "--json"]);
    assert_eq!(shares.as_array().unwrap().len(), 1, "{shares}");
    // And the restored server takes new writes.
    fresh.new_id(&["add", "On the restored server"]);
    fresh.ok(&["sync"]);
    laptop.ok(&["sync"]);
    assert!(
        texts(&laptop.json(&["export", "--json"])).contains(&"On the restored server".to_owned())
    );
    drop(server);
}

#[test]
fn damaged_backups_and_wrong_folders_are_refused_and_nothing_is_touched() {
    let data = tempfile::tempdir().unwrap();
    let token = add_account(data.path(), "ana");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b");
    // No server runs: the backup reads the folder itself.
    let said = stdout(&admin(
        data.path(),
        &["backup", "--out", file.to_str().unwrap()],
    ));
    assert!(
        said.contains("1 table entries") || said.contains("table entries"),
        "{said}"
    );
    let good = std::fs::read(&file).unwrap();

    // Not a data folder.
    let empty = tempfile::tempdir().unwrap();
    fails(
        &admin(
            &empty.path().join("missing"),
            &["backup", "--out", dir.path().join("x").to_str().unwrap()],
        ),
        "holds no nudge-server data",
    );
    assert!(!dir.path().join("x").exists());
    // A folder the backup cannot be written in: nothing left behind.
    fails(
        &admin(
            data.path(),
            &["backup", "--out", "/nonexistent-dir/nudge.backup"],
        ),
        "cannot write",
    );

    // Cut off, flipped, or not a backup at all: refused before anything is written.
    for (name, bytes, why) in [
        ("cut", good[..good.len() - 10].to_vec(), "ends early"),
        (
            "flipped",
            {
                let mut b = good.clone();
                let at = b.len() - 40;
                b[at] ^= 0xff;
                b
            },
            "does not match",
        ),
        ("text", b"hello".to_vec(), "not a nudge backup"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let target = dir.path().join(format!("restored-{name}"));
        fails(
            &admin(&target, &["restore", "--from", path.to_str().unwrap()]),
            why,
        );
        assert!(!target.exists(), "{name}: a folder was made");
    }
    fails(
        &admin(
            &dir.path().join("t"),
            &[
                "restore",
                "--from",
                dir.path().join("none").to_str().unwrap(),
            ],
        ),
        "cannot read",
    );

    // Not over data, and not under a running server.
    fails(
        &admin(data.path(), &["restore", "--from", file.to_str().unwrap()]),
        "already holds data",
    );
    let fresh = tempfile::tempdir().unwrap();
    let server = Server::start(fresh.path());
    fails(
        &admin(fresh.path(), &["restore", "--from", file.to_str().unwrap()]),
        "holds",
    );
    drop(server);
    // The original folder still serves its account.
    let server = Server::start(data.path());
    let home = Home::new();
    home.remote_add(&format!("http://{}", server.addr), &token);
    home.new_id(&["add", "Still here"]);
    home.ok(&["sync"]);
}
