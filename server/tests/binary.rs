//! The binary starts, and building this test makes cargo build the `nudge-server` binary
//! that the end-to-end tests in `tests/` run.

use std::process::Command;

#[test]
fn help_works_and_usage_errors_exit_2() {
    let bin = env!("CARGO_BIN_EXE_nudge-server");
    let help = Command::new(bin).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("serve"));
    let bad = Command::new(bin).arg("no-such-command").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
