//! `nudge-load` runs against a real server and reports: a short run in CI (the full
//! figures are in docs/reliability.md). Functional checks only: with a client that never
//! reads among them, every change propagated (to observers and to buddies following share
//! views), no client failed, and the server closed the silent one (idle timeout 1 s); no
//! timing asserted.

use std::process::Command;

#[test]
fn a_short_load_run_propagates_everything_and_drops_a_stalled_client() {
    let out = Command::new(env!("CARGO_BIN_EXE_nudge-load"))
        .args(["--clients", "20", "--seconds", "3", "--interval-ms", "100"])
        .args(["--stalled", "--idle-timeout", "1", "--followers", "4"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // 10 writers and 10 observers, 4 share views and their 4 buddies, the stalled one.
    assert_eq!(report["connections"], 29, "{report}");
    assert_eq!(report["followers"], 4, "{report}");
    assert_eq!(report["client_failures"], 0, "{report}");
    assert_eq!(report["changes_not_seen"], 0, "{report}");
    assert!(
        report["changes_propagated"].as_u64().unwrap() >= 200,
        "{report}"
    );
    // The buddies, reading with share tokens, saw every change to the views.
    assert_eq!(report["view_changes_not_seen"], 0, "{report}");
    assert!(
        report["view_changes_seen_by_followers"].as_u64().unwrap() >= 80,
        "{report}"
    );
    // Pinged after 1 s of silence, closed after 2: the client that never reads is gone.
    assert_eq!(report["stalled_client_disconnected"], true, "{report}");
}
