//! `cargo install --path client-cli` and `cargo install --path server`, as README says,
//! produce binaries that work on their own: `scripts/setup-tests.sh` installs both into
//! `target/install-check` (debug profile, reusing the workspace's build, before any test
//! runs), and this test runs a server, an account and two syncing devices from those
//! copies.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::{Home, free_port};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Where `scripts/setup-tests.sh` installs both binaries with `cargo install --path`.
/// Installing here, while other tests run, would re-link `target/debug/nudge` under them.
fn installed() -> Option<PathBuf> {
    let bin = workspace().join("target/install-check/bin");
    if bin
        .join(format!("nudge-server{}", std::env::consts::EXE_SUFFIX))
        .exists()
        && bin
            .join(format!("nudge{}", std::env::consts::EXE_SUFFIX))
            .exists()
    {
        return Some(bin);
    }
    crate::util::missing("no `cargo install`ed binaries in target/install-check/bin")
}

#[test]
fn cargo_install_gives_a_working_nudge_and_nudge_server() {
    let Some(bin) = installed() else {
        return;
    };
    let nudge = bin.join(format!("nudge{}", std::env::consts::EXE_SUFFIX));
    let server = bin.join(format!("nudge-server{}", std::env::consts::EXE_SUFFIX));
    for binary in [&nudge, &server] {
        let out = Command::new(binary).arg("--version").output().unwrap();
        assert!(out.status.success(), "{}", binary.display());
    }

    let data = tempfile::tempdir().unwrap();
    let out = Command::new(&server)
        .args(["account", "add", "ana", "--data"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut running = Command::new(&server)
        .args(["serve", "--listen", &listen, "--data"])
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(running.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("listening on"), "{line}");

    // Two homes driven by the installed `nudge`.
    let run = |home: &Home, args: &[&str]| {
        let out = Command::new(&nudge)
            .args(args)
            .env("NUDGE_HOME", home.path())
            .env("NUDGE_CONFIG", home.config_path())
            .env("NUDGE_TOKEN", &token)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nudge {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let (laptop, phone) = (Home::new(), Home::new());
    let url = format!("http://{listen}");
    run(&laptop, &["add", "Installed and working"]);
    run(&laptop, &["remote", "add", &url]);
    run(&laptop, &["sync"]);
    run(&phone, &["remote", "add", &url]);
    run(&phone, &["sync"]);
    assert!(run(&phone, &["list"]).contains("Installed and working"));
    let _ = running.kill();
    let _ = running.wait();
}
