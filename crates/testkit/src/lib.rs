//! nudge-testkit: the harness the end-to-end tests (`tests/`), the benchmarks (`bench/`)
//! and the load tool (`load/`) share, so that each piece exists once: the real
//! `nudge-server` process (started, read for its address, killed with SIGKILL, restarted
//! on the same store and address), accounts made through its admin command, loopback
//! ports free for a restart, a process's memory as `/proc` reports it, a websocket peer
//! that speaks automerge-repo's protocol ([`peer`]), the connection floods of the
//! hardening issue ([`flood`]), and waiting on a condition with a deadline ([`wait`]).
//!
//! Binaries are found beside the running executable (or one folder up, for a test
//! executable in `target/*/deps`): the ones built from the current sources.

pub mod faulty;
pub mod flood;
pub mod peer;
pub mod postgres;
pub mod wait;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};

/// The `p` quantile (0.0 to 1.0) of `times`, nearest rank; zero of none.
pub fn percentile(times: &[std::time::Duration], p: f64) -> std::time::Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = ((sorted.len() as f64 - 1.0) * p).round().max(0.0) as usize;
    sorted
        .get(at.min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

/// A binary of this workspace built with the running executable (`nudge`, `nudge-server`).
pub fn bin(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("no path to this executable")?;
    let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    let mut dir = exe.parent();
    while let Some(d) = dir {
        let candidate = d.join(&file);
        if candidate.exists() {
            return Ok(candidate);
        }
        if d.file_name().is_some_and(|n| n != "deps") {
            break;
        }
        dir = d.parent();
    }
    bail!(
        "{file} is missing beside {}: run `cargo build --workspace --bins` (with --release for the benchmarks) first",
        exe.display()
    )
}

/// `nudge` run in the home `home` as the tests and benchmarks run it: its clock fixed at
/// `now` (`NUDGE_NOW`), its zone `tz`, the user config file `home/user-config.toml` (none
/// unless someone writes it there: the real user's is never read), no colour, no log.
pub fn nudge_in(home: &Path, now: &str, tz: &str) -> Result<Command> {
    let mut command = Command::new(bin("nudge")?);
    command
        .env("NUDGE_HOME", home)
        .env("NUDGE_CONFIG", home.join("user-config.toml"))
        .env("NUDGE_NOW", now)
        .env("TZ", tz)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG");
    Ok(command)
}

/// Makes an account with `nudge-server account add NAME --data DATA`; returns its token.
pub fn add_account(data: &Path, name: &str) -> Result<String> {
    let out = Command::new(bin("nudge-server")?)
        .args(["account", "add", name, "--data"])
        .arg(data)
        .output()?;
    if !out.status.success() {
        bail!(
            "account add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout)?
        .lines()
        .last()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("account add printed no token"))
}

/// A running `nudge-server serve`, killed (SIGKILL) when dropped.
pub struct Server {
    /// The process.
    pub child: Child,
    /// The address it listens on.
    pub addr: String,
}

/// How a server is started.
pub struct Launch<'a> {
    /// Its `--data` folder.
    pub data: &'a Path,
    /// Its `--listen` address (`127.0.0.1:0`: any free port).
    pub listen: &'a str,
    /// More flags.
    pub extra: &'a [&'a str],
    /// Where its stderr goes.
    pub stderr: Stdio,
    /// `RUST_LOG` for it (`None`: its default).
    pub log: Option<&'a str>,
}

impl<'a> Launch<'a> {
    /// On `data`, any free port, quiet.
    pub fn new(data: &'a Path) -> Self {
        Self {
            data,
            listen: "127.0.0.1:0",
            extra: &[],
            stderr: Stdio::null(),
            log: None,
        }
    }
}

impl Server {
    /// Starts a server and waits for its `listening on ADDR` line.
    pub fn launch(launch: Launch<'_>) -> Result<Self> {
        let mut command = Command::new(bin("nudge-server")?);
        command
            .args(["serve", "--listen", launch.listen, "--data"])
            .arg(launch.data)
            .args(launch.extra)
            .stdout(Stdio::piped())
            .stderr(launch.stderr);
        match launch.log {
            Some(level) => command.env("RUST_LOG", level),
            None => command.env_remove("RUST_LOG"),
        };
        let mut child = command.spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
        match line.trim().strip_prefix("listening on ") {
            Some(addr) => Ok(Self {
                addr: addr.to_owned(),
                child,
            }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the server's first line was {line:?}, not its address")
            }
        }
    }

    /// A server on `data`, any port (panics if it does not start: for tests).
    pub fn start(data: &Path) -> Self {
        Self::start_with(data, &[])
    }

    /// [`Self::start`] with more flags.
    pub fn start_with(data: &Path, extra: &[&str]) -> Self {
        Self::start_at(data, "127.0.0.1:0", extra)
    }

    /// A server on a given address (to restart it where clients expect it). With
    /// `NUDGE_TEST_SERVER_LOGS` set to a folder, it logs at info level into a file there
    /// named after its data folder (`scripts/stress-faults.sh` counts what they say).
    pub fn start_at(data: &Path, listen: &str, extra: &[&str]) -> Self {
        let (stderr, log) = match std::env::var_os("NUDGE_TEST_SERVER_LOGS") {
            Some(dir) => {
                let name = data.file_name().unwrap_or_default().to_string_lossy();
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(Path::new(&dir).join(format!("server{name}.log")))
                    .expect("the server log folder");
                (Stdio::from(file), Some("info"))
            }
            None => (Stdio::null(), None),
        };
        Self::launch(Launch {
            listen,
            extra,
            stderr,
            log,
            ..Launch::new(data)
        })
        .expect("the server starts")
    }

    /// A server logging at debug level into `log`.
    pub fn start_logged(data: &Path, log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("the log file");
        Self::launch(Launch {
            stderr: Stdio::from(file),
            log: Some("debug"),
            ..Launch::new(data)
        })
        .expect("the server starts")
    }

    /// A server with `extra` flags whose stderr (errors only) goes to `log`.
    pub fn start_with_stderr(data: &Path, extra: &[&str], log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("the log file");
        Self::launch(Launch {
            extra,
            stderr: Stdio::from(file),
            ..Launch::new(data)
        })
        .expect("the server starts")
    }

    /// A server on `data`: `Ok` once it listens, `Err(what it said)` if it refused to start.
    pub fn try_start(data: &Path) -> std::result::Result<Self, String> {
        let mut child = Command::new(bin("nudge-server").map_err(|e| e.to_string())?)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        if let Some(addr) = line.trim().strip_prefix("listening on ") {
            // Drained, so that a server that logs a lot never blocks on a full pipe.
            if let Some(mut stderr) = child.stderr.take() {
                std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
            }
            return Ok(Self {
                addr: addr.to_owned(),
                child,
            });
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        let mut said = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = stderr.read_to_string(&mut said);
        }
        if status.success() {
            return Err(format!("no address and yet success: {said}"));
        }
        Err(said)
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A memory figure of `/proc/PID/status`, in KiB (`VmRSS:` now, `VmHWM:` the peak).
pub fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no {field} in /proc/{pid}/status"))
}

/// A process's resident memory, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS:")
}

/// A loopback port free right now, below the range the kernel hands out to outgoing
/// connections (32768 and up on Linux): a server restarted on it must not find it taken
/// by some other test's client socket meanwhile. One start per process, and a stride
/// prime to the range: no two of this process's first 12,000 calls hand out the same
/// port (a test restarting its server on a port must not meet another test's server).
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    static SEED: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    const RANGE: u32 = 12_000;
    // Reduced once, so that the sum below never wraps (a wrap would shift the sequence).
    let seed = *SEED.get_or_init(|| {
        (std::process::id()
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos()))
            % RANGE
    });
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % RANGE;
        let port = 20_000 + ((seed + n * 7_919) % RANGE) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn percentile_is_the_nearest_rank_and_zero_of_nothing() {
        let ms = |n| Duration::from_millis(n);
        let times: Vec<Duration> = (1..=100).rev().map(ms).collect();
        assert_eq!(super::percentile(&times, 0.5), ms(51));
        assert_eq!(super::percentile(&times, 0.99), ms(99));
        assert_eq!(super::percentile(&times, 1.0), ms(100));
        assert_eq!(super::percentile(&[ms(7)], 0.99), ms(7));
        assert_eq!(super::percentile(&[], 0.99), Duration::ZERO);
    }
}
