//! The real `nudge-server` on PostgreSQL (`serve --store postgres://...`), on a throwaway
//! cluster the test starts itself (`nudge_testkit::postgres`): accounts made with the same
//! `--store`, a device's journal synced, the server killed with SIGKILL and started again
//! on the same database, another device fetching it whole. Without PostgreSQL installed,
//! outside CI, it says it skipped and why; under `CI=true` it fails.

use std::process::{Command, Stdio};

use nudge_testkit::{Launch, Server};

use crate::util::{Home, server_bin, stdout};

/// `nudge-server ARGS --store URL`; its stdout, failing the test if it fails.
fn admin(url: &str, args: &[&str]) -> String {
    let out = Command::new(server_bin())
        .args(args)
        .args(["--store", url])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nudge-server {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

/// A new account on the database at `url`; its token.
fn account(url: &str) -> String {
    let added = admin(url, &["account", "add", "ana"]);
    added.lines().last().unwrap().trim().to_owned()
}

/// Two nodes on the database at `url`, and the (unused) folders they were given.
fn two_nodes(url: &str) -> (Server, Server, [tempfile::TempDir; 2]) {
    let folders = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let one = serve(folders[0].path(), url);
    let two = serve(folders[1].path(), url);
    (one, two, folders)
}

fn serve(data: &std::path::Path, url: &str) -> Server {
    Server::launch(Launch {
        extra: &["--store", url],
        stderr: Stdio::null(),
        ..Launch::new(data)
    })
    .unwrap()
}

#[test]
fn a_journal_on_postgres_survives_kill_9_and_reaches_another_device() {
    let Some(cluster) = nudge_testkit::postgres::cluster().unwrap() else {
        return;
    };
    let url = cluster.database().unwrap();
    // The account lives in the database, not in a folder.
    let token = account(&url);
    assert!(token.starts_with("nudge_acct_"), "{token}");
    let unused = tempfile::tempdir().unwrap();

    let mut server = serve(unused.path(), &url);
    let laptop = Home::new();
    laptop.new_id(&["add", "Email Sam about UX roles", "+ux"]);
    laptop.new_id(&["log", "Called Priya", "+teaching"]);
    laptop.remote_add(&format!("http://{}", server.addr), &token);
    let said = laptop.ok(&["sync", "--timeout", "20"]);
    assert!(said.contains('↑'), "{said}");
    // Admin commands open the database beside the running server.
    let listed = admin(&url, &["account", "list"]);
    assert!(listed.contains("ana"), "{listed}");

    // Acknowledged means committed: a SIGKILL loses nothing.
    server.kill9();
    let server = serve(unused.path(), &url);
    let phone = Home::new();
    phone.remote_add(&format!("http://{}", server.addr), &token);
    phone.ok(&["sync", "--timeout", "20"]);
    let texts = crate::util::texts(&phone.json(&["export", "--json"]));
    assert!(
        texts.contains(&"Email Sam about UX roles".to_owned()),
        "{texts:?}"
    );
    assert!(texts.contains(&"Called Priya".to_owned()), "{texts:?}");
    // Nothing was written into the folder the server was given besides the database.
    assert!(
        std::fs::read_dir(unused.path()).unwrap().next().is_none(),
        "the data folder was used"
    );
}

/// This device's token moved to the server at `url` (as an operator's DNS would).
fn move_to(device: &Home, url: &str) {
    let token = device.device_token();
    device.ok(&["remote", "remove"]);
    device.remote_add(url, &token);
}

#[test]
fn two_nodes_on_one_database_carry_changes_live_and_revocations_at_once() {
    use crate::watch::{Watcher, arrives, has, joined};
    use std::time::{Duration, Instant};
    let Some(cluster) = nudge_testkit::postgres::cluster().unwrap() else {
        return;
    };
    let url = cluster.database().unwrap();
    let token = account(&url);
    let (one, two, _folders) = two_nodes(&url);
    let (one_url, two_url) = (
        format!("http://{}", one.addr),
        format!("http://{}", two.addr),
    );

    // The laptop syncs with node 1; the phone and the tablet join through it (a link
    // code made on node 1), then move to node 2.
    let laptop = Home::new();
    laptop.new_id(&["add", "Email Sam about UX roles"]);
    laptop.remote_add(&one_url, &token);
    laptop.ok(&["sync", "--timeout", "20"]);
    let phone = joined(&laptop, "phone");
    let tablet = joined(&laptop, "tablet");
    for device in [&phone, &tablet] {
        move_to(device, &two_url);
        device.ok(&["sync", "--timeout", "20"]);
        assert!(has(device, "Email Sam about UX roles"));
    }

    // Live, both ways, across the nodes.
    let _laptop_watch = Watcher::start(&laptop);
    let mut phone_watch = Watcher::start(&phone);
    let mut tablet_watch = Watcher::start(&tablet);
    laptop.new_id(&["add", "Written on node 1"]);
    let took = arrives(&phone, "Written on node 1", Duration::from_secs(10));
    eprintln!("node 1 -> node 2, device to device, in {took:?}");
    phone.new_id(&["add", "Written on node 2"]);
    let took = arrives(&laptop, "Written on node 2", Duration::from_secs(10));
    eprintln!("node 2 -> node 1, device to device, in {took:?}");

    // Revoked on node 1 (the laptop's `device revoke` goes there): the phone's socket on
    // node 2 closes at once.
    laptop.ok(&["device", "revoke", "phone"]);
    let revoked = Instant::now();
    assert_eq!(phone_watch.wait(Duration::from_secs(10)), Some(4));
    let took = revoked.elapsed();
    eprintln!("revoked on node 1, the watcher on node 2 was cut off after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    // Revoked by the admin command on the database itself, beside both nodes.
    let tablet_id = tablet.device_token().split('_').nth(2).unwrap().to_owned();
    let said = admin(&url, &["token", "revoke", &tablet_id]);
    let revoked = Instant::now();
    assert!(said.contains("the running nodes close"), "{said}");
    assert_eq!(tablet_watch.wait(Duration::from_secs(10)), Some(4));
    let took = revoked.elapsed();
    eprintln!("revoked by the admin command, the watcher on node 2 was cut off after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    // What it held stays.
    assert!(has(&tablet, "Written on node 2"));
}

/// `nudge-server migrate ARGS`: its exit code, stdout and stderr.
fn migrate(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(server_bin())
        .arg("migrate")
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_data_folder_migrates_to_postgres_and_its_devices_keep_syncing() {
    use crate::watch::{has, joined};
    let Some(cluster) = nudge_testkit::postgres::cluster().unwrap() else {
        return;
    };
    let url = cluster.database().unwrap();
    let data = tempfile::tempdir().unwrap();
    let token = crate::util::add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let laptop = Home::new();
    laptop.new_id(&["add", "Email Sam about UX roles"]);
    laptop.remote_add(&format!("http://{}", server.addr), &token);
    laptop.ok(&["sync", "--timeout", "20"]);
    let phone = joined(&laptop, "phone");
    phone.new_id(&["log", "Called Priya"]);
    phone.ok(&["sync", "--timeout", "20"]);
    let folder = data.path().to_str().unwrap();

    // The server still holds the folder: refused, nothing copied.
    let (code, _, err) = migrate(&["--from", folder, "--to", &url]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("stop the server"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    drop(server);

    let (code, said, err) = migrate(&["--from", folder, "--to", &url]);
    assert_eq!(code, Some(0), "{err}");
    assert!(said.contains("heads checked"), "{said}");
    // Twice is refused: the database holds data now.
    let (code, _, err) = migrate(&["--from", folder, "--to", &url]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--into-nonempty"), "{err}");

    // The devices move to a node on the database with the tokens they had.
    let unused = tempfile::tempdir().unwrap();
    let node = serve(unused.path(), &url);
    let node_url = format!("http://{}", node.addr);
    for device in [&laptop, &phone] {
        move_to(device, &node_url);
    }
    phone.new_id(&["add", "After the move"]);
    phone.ok(&["sync", "--timeout", "20"]);
    laptop.ok(&["sync", "--timeout", "20"]);
    for text in ["Email Sam about UX roles", "Called Priya", "After the move"] {
        assert!(has(&laptop, text), "{text}");
    }
    assert!(laptop.ok(&["device", "list"]).contains("phone"));

    // A backup of the database, while the node runs, restores into another database.
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("nudge.backup");
    let file = file.to_str().unwrap();
    let backed = admin(&url, &["backup", "--out", file]);
    assert!(backed.contains("checked"), "{backed}");
    let other = cluster.database().unwrap();
    let restored = admin(&other, &["restore", "--from", file]);
    assert!(restored.contains("serve --store"), "{restored}");
    let again = Command::new(server_bin())
        .args(["restore", "--from", file, "--store", &other])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds data"));
    drop(node);
    let restored_node = serve(unused.path(), &other);
    let tablet = Home::new();
    tablet.remote_add(&format!("http://{}", restored_node.addr), &token);
    tablet.ok(&["sync", "--timeout", "20"]);
    assert!(has(&tablet, "After the move"));
}

/// Polls `GET /healthz` until it answers `status` (at most 30 s); what it said.
fn health_becomes(base: &str, status: u16) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (now, said) = crate::sync::get(&format!("{base}/healthz"), None);
        if now == status {
            return said;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/healthz never answered {status} (last {now}: {said})"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_node_that_loses_its_database_stops_acknowledging_and_recovers_by_itself() {
    use crate::watch::has;
    let Some(mut pg) = nudge_testkit::postgres::private().unwrap() else {
        return;
    };
    let url = pg.database().unwrap();
    let token = account(&url);
    let unused = tempfile::tempdir().unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let node = Server::launch(Launch {
        extra: &["--store", &url],
        stderr: Stdio::from(log.reopen().unwrap()),
        ..Launch::new(unused.path())
    })
    .unwrap();
    let base = format!("http://{}", node.addr);
    let laptop = Home::new();
    laptop.new_id(&["add", "Before the outage"]);
    laptop.remote_add(&base, &token);
    laptop.ok(&["sync", "--timeout", "20"]);
    health_becomes(&base, 200);
    // The tablet watches: its socket is open, and its journal loaded on the node, when
    // the database goes.
    let tablet = Home::new();
    tablet.remote_add(&base, &token);
    tablet.ok(&["sync", "--timeout", "20"]);
    let _watching = crate::watch::Watcher::start(&tablet);

    pg.stop().unwrap();
    let said = health_becomes(&base, 503);
    eprintln!("/healthz with the database down: {said}");
    // Nothing is acknowledged: the sync fails, with one line that says why, and the
    // device keeps what it wrote.
    laptop.new_id(&["add", "During the outage"]);
    let out = laptop.run(&["sync", "--timeout", "5"]);
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("sync with the database down: {err}");
    assert_eq!(
        out.status.code(),
        Some(3),
        "as unreachable, not a refused token: {err}"
    );
    assert!(err.contains("cannot reach its storage"), "{err}");
    assert!(has(&laptop, "During the outage"));
    tablet.new_id(&["add", "Watched during the outage"]);

    // The database comes back: the node recovers by itself, and the sync goes through.
    pg.start().unwrap();
    health_becomes(&base, 200);
    laptop.ok(&["sync", "--timeout", "20"]);
    let phone = Home::new();
    phone.remote_add(&base, &token);
    phone.ok(&["sync", "--timeout", "20"]);
    assert!(has(&phone, "During the outage") && has(&phone, "Before the outage"));
    // The watcher stored its change by itself once the database was back: at its next
    // try, which its backoff (up to 30 s, with jitter) may put a while off, after the
    // phone's sync above. So the phone watches too, and hears of it live.
    let _phone_watching = crate::watch::Watcher::start(&phone);
    crate::watch::arrives(
        &phone,
        "Watched during the outage",
        std::time::Duration::from_secs(75),
    );
    // The node never stopped.
    assert_eq!(crate::sync::get(&format!("{base}/healthz"), None).0, 200);
}

#[test]
fn a_buddy_page_on_node_2_updates_live_with_what_the_owner_syncs_to_node_1() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(cluster) = nudge_testkit::postgres::cluster().unwrap() else {
        return;
    };
    let url = cluster.database().unwrap();
    let token = account(&url);
    let (one, two, _folders) = two_nodes(&url);
    let laptop = Home::new();
    laptop.remote_add(&format!("http://{}", one.addr), &token);
    laptop.new_id(&["add", "Email Sam about UX roles"]);
    let invited = laptop.ok(&["buddy", "invite", "Jo", "--scope", "full"]);
    let share = invited
        .lines()
        .last()
        .unwrap()
        .rsplit("/view/")
        .next()
        .unwrap()
        .to_owned();
    laptop.ok(&["sync", "--timeout", "20"]);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The buddy's page on node 2, its live stream open.
        let mut stream = tokio::net::TcpStream::connect(&two.addr).await.unwrap();
        let request = format!(
            "GET /view/{share}/events HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            two.addr
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        let mut read_until = async |until: &str, got: &mut Vec<u8>| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !String::from_utf8_lossy(got).contains(until) {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, stream.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
                    _ => panic!(
                        "no {until:?} on node 2's page: {}",
                        String::from_utf8_lossy(got)
                    ),
                }
            }
        };
        read_until("Email Sam about UX roles", &mut got).await;
        assert!(!String::from_utf8_lossy(&got).contains("Called Priya"));
        // The owner logs a shift and syncs it to node 1: node 2's page shows it.
        let started = Instant::now();
        tokio::task::spawn_blocking(move || {
            laptop.ok(&["log", "Called Priya from node 1"]);
            laptop.ok(&["sync", "--timeout", "20"]);
        })
        .await
        .unwrap();
        read_until("Called Priya from node 1", &mut got).await;
        eprintln!(
            "node 2's page showed node 1's shift {:?} after the owner started",
            started.elapsed()
        );
    });
}
