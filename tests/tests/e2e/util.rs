//! Helpers: a temporary home and ways to run `nudge` in it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The `nudge` binary next to this test executable.
pub fn nudge_bin() -> PathBuf {
    nudge_testkit::bin("nudge").unwrap()
}

/// A temporary nudge home with a fixed clock and zone.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub now: String,
    pub tz: String,
}

impl Home {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            // Wednesday 25 November 2026, 10:30 in Berlin.
            now: "2026-11-25T09:30:00Z".into(),
            tz: "Europe/Berlin".into(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// This home's user config file (none unless a test writes one), so that tests never
    /// read the real user's (`nudge_testkit::nudge_in` points NUDGE_CONFIG there).
    pub fn config_path(&self) -> PathBuf {
        self.path().join("user-config.toml")
    }

    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::from_std(self.std_cmd());
        cmd.timeout(std::time::Duration::from_secs(30));
        cmd
    }

    /// `nudge` in this home, as `nudge_testkit::nudge_in` sets it up.
    pub fn std_cmd(&self) -> std::process::Command {
        nudge_testkit::nudge_in(self.path(), &self.now, &self.tz).unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "nudge {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects failure with `code`; returns stderr.
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "nudge {args:?}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Runs with `--json` already in `args`; parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("nudge {args:?} printed no JSON ({e}): {text}"))
    }

    /// Runs a command that prints a new id on its last line; returns it.
    pub fn new_id(&self, args: &[&str]) -> String {
        let out = self.ok(args);
        let id = out.lines().last().unwrap_or_default().to_owned();
        assert_eq!(id.len(), 32, "last line of {args:?} is not an id: {out}");
        id
    }

    /// The full ids `nudge list --json` prints (planned shifts).
    pub fn listed_ids(&self) -> Vec<String> {
        let list = self.json(&["list", "--json"]);
        list.as_array()
            .expect("list --json prints an array")
            .iter()
            .map(|s| s["id"].as_str().expect("every shift has an id").to_owned())
            .collect()
    }

    /// Every file under the home, with its bytes.
    pub fn snapshot_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![self.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push((path.clone(), std::fs::read(&path).unwrap()));
                }
            }
        }
        out.sort();
        out
    }
}

/// The size of the fault loops: `NUDGE_TEST_SCALE=full` runs more rounds.
pub fn scale(small: usize, full: usize) -> usize {
    match std::env::var("NUDGE_TEST_SCALE").as_deref() {
        Ok("full") => full,
        _ => small,
    }
}

pub use nudge_testkit::{Server, free_port};

/// The `nudge-server` binary next to `nudge`.
pub fn server_bin() -> std::path::PathBuf {
    nudge_testkit::bin("nudge-server").unwrap()
}

/// Makes an account; returns its token.
pub fn add_account(data: &Path, name: &str) -> String {
    nudge_testkit::add_account(data, name).unwrap()
}

/// Runs `nudge-server ARGS --data DATA` (account and token administration).
pub fn admin(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(server_bin())
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap()
}

/// The stdout of a successful command.
pub fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A test dependency that `scripts/setup-tests.sh` installs is missing: under `CI=true` a
/// failure, elsewhere a skip with a message. Returns `None` for the caller to return.
pub fn missing<T>(what: &str) -> Option<T> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what}: scripts/setup-tests.sh installs it");
    }
    eprintln!("SKIPPED: {what}; run scripts/setup-tests.sh");
    None
}

/// The sorted shift texts of an `export --json`.
pub fn texts(export: &serde_json::Value) -> Vec<String> {
    let mut texts: Vec<String> = export["shifts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap().to_owned())
        .collect();
    texts.sort();
    texts
}

impl Home {
    /// `nudge remote add URL` with `token` in NUDGE_TOKEN; expects success.
    /// The token this device's `remote.json` holds (its account or device token).
    pub fn device_token(&self) -> String {
        serde_json::from_str::<Value>(
            &std::fs::read_to_string(self.path().join("remote.json")).unwrap(),
        )
        .unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn remote_add(&self, url: &str, token: &str) {
        let out = self
            .cmd()
            .args(["remote", "add", url])
            .env("NUDGE_TOKEN", token)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Bytes that do not compress (so a change really takes room), different for each seed.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The share token in what `nudge buddy invite` printed (its link is the last line).
pub fn share_token_of(invited: &str) -> String {
    invited
        .lines()
        .last()
        .and_then(|link| link.rsplit("/view/").next())
        .expect("an invite link on the last line")
        .to_owned()
}

/// An HTTP request's head (up to and with the blank line), read a byte at a time so that
/// nothing after it is consumed; `None` if the peer closes first.
pub async fn read_http_head<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Every file below `dir`, by path relative to it.
pub fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().to_path_buf();
                all.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    all
}

/// Writes `all` (as [`files`] read it) below `dir`.
pub fn write_files(dir: &Path, all: &BTreeMap<PathBuf, Vec<u8>>) {
    for (relative, bytes) in all {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// A server on a fresh data folder with one account, `ana`.
pub struct Account {
    /// The server's data folder (kept for as long as this lives).
    pub data: tempfile::TempDir,
    /// The account token.
    pub token: String,
    /// The running server.
    pub server: Server,
    /// `http://ADDR`.
    pub url: String,
}

impl Account {
    pub fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let token = add_account(data.path(), "ana");
        let server = Server::start(data.path());
        let url = format!("http://{}", server.addr);
        Self {
            data,
            token,
            server,
            url,
        }
    }

    /// A new device of the account, its remote set (not synced yet).
    pub fn device(&self) -> Home {
        let home = Home::new();
        home.remote_add(&self.url, &self.token);
        home
    }
}
