//! An operator's first hour with the real `nudge-server` binary: admin commands that point
//! at the wrong folder say so, the server logs by default (as text without colour codes,
//! or as JSON), and what it writes to disk is its owner's alone.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::util::{Home, Server, add_account, admin, server_bin, stdout};

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn account_add_in_a_folder_without_a_store_says_it_made_a_new_one() {
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(server_bin())
        .args(["account", "add", "me"])
        .current_dir(cwd.path())
        .env_remove("NUDGE_DATA")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = std::fs::canonicalize(cwd.path())
        .unwrap()
        .join("nudge-data");
    assert!(
        err.contains("created a new, empty server store at")
            && err.contains(&expected.display().to_string())
            && err.contains("a running server elsewhere will not know this account"),
        "{err}"
    );
    // The second account in the same store: nothing to say.
    let again = Command::new(server_bin())
        .args(["account", "add", "you"])
        .current_dir(cwd.path())
        .env_remove("NUDGE_DATA")
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(again.stderr.is_empty(), "{again:?}");
    // Listing a folder with no store creates nothing and says what to pass.
    let nowhere = cwd.path().join("elsewhere");
    let listed = admin(&nowhere, &["account", "list"]);
    assert_eq!(listed.status.code(), Some(1));
    let err = String::from_utf8_lossy(&listed.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("holds no nudge-server store") && err.contains("--data"),
        "{err}"
    );
    assert!(!nowhere.exists());
}

/// Starts `nudge-server serve` with `args` and no RUST_LOG; returns the child and the
/// stderr lines it writes (read on a thread).
fn serve_reading_stderr(
    data: &std::path::Path,
    args: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(server_bin())
        .args(args)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

fn first_line_with(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no log line with {needle:?} within 20 s");
}

#[test]
fn the_server_logs_by_default_as_plain_text_or_as_json() {
    let data = tempfile::tempdir().unwrap();
    add_account(data.path(), "ana");
    let (mut child, rx) = serve_reading_stderr(data.path(), &[]);
    let line = first_line_with(&rx, "listening on");
    assert!(
        !line.contains('\u{1b}'),
        "colour codes in a piped log: {line:?}"
    );
    assert!(line.contains("INFO"), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, rx) = serve_reading_stderr(data.path(), &["--log-format", "json"]);
    let line = first_line_with(&rx, "listening on");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["level"], "INFO", "{line}");
    assert!(event["fields"]["addr"].is_string(), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[cfg(unix)]
#[test]
fn the_servers_folder_the_devices_store_and_backups_are_their_owners_alone() {
    let data = tempfile::tempdir().unwrap();
    let folder = data.path().join("nudge-data");
    let token = add_account(&folder, "ana");
    assert_eq!(mode(&folder), 0o700);
    let server = Server::start(&folder);
    let laptop = Home::new();
    laptop.remote_add(&format!("http://{}", server.addr), &token);
    laptop.new_id(&["add", "Email Sam"]);
    laptop.ok(&["sync"]);
    assert_eq!(mode(&laptop.path().join("store")), 0o700);
    let out = data.path().join("nudge.backup");
    stdout(&admin(&folder, &["backup", "--out", out.to_str().unwrap()]));
    assert_eq!(mode(&out), 0o600);
    // Taken again with the server stopped, over the old file: still 0600.
    drop(server);
    stdout(&admin(&folder, &["backup", "--out", out.to_str().unwrap()]));
    assert_eq!(mode(&out), 0o600);
}

fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut answer = agent.get(url).call().unwrap();
    (
        answer.status().as_u16(),
        answer.body_mut().read_to_string().unwrap(),
    )
}

#[test]
fn metrics_carry_process_and_build_figures_and_can_leave_the_public_port() {
    let data = tempfile::tempdir().unwrap();
    add_account(data.path(), "ana");
    let server = Server::start(data.path());
    let (status, text) = get(&format!("http://{}/metrics", server.addr));
    assert_eq!(status, 200);
    for name in [
        "nudge_build_info{version=\"",
        "nudge_process_resident_memory_bytes ",
        "nudge_process_cpu_seconds ",
        "nudge_process_open_fds ",
        "nudge_connections_refused_total ",
    ] {
        assert!(text.contains(name), "no {name} in\n{text}");
    }
    let rss: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("nudge_process_resident_memory_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(rss > 1e6, "{rss}");
    drop(server);
    // With --metrics-listen, only that address serves them.
    let metrics = format!("127.0.0.1:{}", crate::util::free_port());
    let server = Server::start_with(data.path(), &["--metrics-listen", &metrics]);
    let (status, _) = get(&format!("http://{}/metrics", server.addr));
    assert_eq!(status, 404);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
        match agent.get(format!("http://{metrics}/metrics")).call() {
            Ok(mut answer) => break answer.body_mut().read_to_string().unwrap(),
            Err(e) => assert!(std::time::Instant::now() < deadline, "{metrics}: {e}"),
        }
    };
    assert!(text.contains("nudge_build_info"), "{text}");
    assert_eq!(get(&format!("http://{metrics}/v1/journal")).0, 404);
}
