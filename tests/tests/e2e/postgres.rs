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
    let added = admin(&url, &["account", "add", "ana"]);
    let token = added.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("nudge_acct_"), "{added}");
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
