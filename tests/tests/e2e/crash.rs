//! Killed processes and concurrent processes: nothing printed as done is lost, the store
//! always reopens, and two processes on one home never corrupt it.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::util::{Home, scale};

/// Runs `nudge add`, waits for it to print its id, then SIGKILLs it at once.
fn add_then_kill(home: &Home, text: &str) -> String {
    let mut child = home
        .std_cmd()
        .args(["add", text])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut id = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line.len() == 32 {
            id = line;
            // Printed success: kill it before it can do anything else.
            let _ = child.kill();
            break;
        }
    }
    let _ = child.wait();
    assert_eq!(id.len(), 32, "nudge add printed no id");
    id
}

#[test]
fn sigkill_right_after_success_loses_nothing() {
    let home = Home::new();
    let mut ids = Vec::new();
    for i in 0..scale(8, 40) {
        ids.push(add_then_kill(&home, &format!("shift {i}")));
    }
    let listed = home.listed_ids();
    for id in &ids {
        assert!(listed.contains(id), "{id} was printed but is gone");
    }
}

#[test]
fn sigkill_at_random_moments_never_breaks_the_store() {
    let home = Home::new();
    let mut confirmed = Vec::new();
    let rounds = scale(12, 60);
    for i in 0..rounds {
        let mut child = home
            .std_cmd()
            .args(["add", &format!("round {i}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill somewhere between start-up and completion.
        std::thread::sleep(Duration::from_millis((i as u64 * 7) % 40));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        if let Some(id) = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .filter(|l| l.len() == 32)
        {
            confirmed.push(id.to_owned());
        }
        // The store must reopen after every kill, and every confirmed shift must be there.
        let listed = home.listed_ids();
        for id in &confirmed {
            assert!(listed.contains(id), "round {i}: {id} lost");
        }
    }
    let export = home.json(&["export", "--json"]);
    assert!(export["shifts"].as_array().unwrap().len() >= confirmed.len());
}

/// sled writes a snapshot each time a store opens, to a `.generating` file it renames
/// when done. A kill in between left a file sled read first and refused; the random kills
/// in the sync and device tests hit that now and then.
#[test]
fn a_snapshot_left_unfinished_by_a_kill_does_not_stop_the_next_command() {
    let home = Home::new();
    let id = home.new_id(&["add", "kept"]);
    let unfinished = home
        .path()
        .join("store")
        .join("snap.FFFFFFFFFFFFFFFF.generating");
    std::fs::write(&unfinished, b"").unwrap();
    assert_eq!(home.listed_ids(), vec![id.clone()]);
    assert!(!unfinished.exists());
    let second = home.new_id(&["add", "after"]);
    assert_eq!(home.listed_ids().len(), 2);
    assert!(home.listed_ids().contains(&second));
}

#[test]
fn two_processes_at_once_wait_or_fail_clearly_and_never_corrupt() {
    let home = Home::new();
    home.ok(&["add", "seed"]);
    let per_side = scale(6, 25);
    let mut children = Vec::new();
    for i in 0..per_side {
        for side in ["a", "b"] {
            children.push(
                home.std_cmd()
                    .args(["add", &format!("{side} {i}")])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
        }
    }
    let mut printed = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            printed.push(stdout.lines().last().unwrap().to_owned());
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert!(
                stderr.contains("in use by another process"),
                "unclear error: {stderr}"
            );
        }
    }
    assert!(!printed.is_empty());
    let listed = home.listed_ids();
    for id in &printed {
        assert!(listed.contains(id), "{id} lost");
    }
    assert_eq!(listed.len(), printed.len() + 1);
}
