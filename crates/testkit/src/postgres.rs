//! A throwaway PostgreSQL cluster for tests: `initdb` into a temporary folder, the server
//! on a free loopback port (and a socket in that folder), one database per test. The
//! cluster belongs to the test process: it is started once, by a thread that lives as
//! long as the process, with the parent-death signal set, so the server shuts down when
//! the tests end, however they end; its folder is removed then too (or, after a kill, by
//! the next run).
//!
//! PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` user
//! that Debian's package creates (util-linux's `setpriv` switches to it and sets the
//! parent-death signal). Without PostgreSQL installed, [`cluster`] says why and
//! the caller skips, except under `CI=true`, where that is an error
//! (`scripts/setup-tests.sh` installs it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A running cluster.
#[derive(Debug)]
pub struct Cluster {
    /// Its folder (data, socket, log).
    pub dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    bin: PathBuf,
    user: Option<(u32, u32)>,
}

/// The folder PostgreSQL's programs are in: `pg_config --bindir`, else the newest of
/// Debian's `/usr/lib/postgresql/*/bin`.
fn bindir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The uid and gid of the `postgres` user, when running as root.
fn run_as() -> Result<Option<(u32, u32)>> {
    if rustix::process::geteuid().as_raw() != 0 {
        return Ok(None);
    }
    let id = |flag: &str| -> Result<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output()?;
        anyhow::ensure!(
            out.status.success(),
            "no postgres user to run PostgreSQL as (running as root)"
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    Ok(Some((id("-u")?, id("-g")?)))
}

impl Cluster {
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid);
        }
        command.env_remove("PGDATA").env("LC_ALL", "C");
        command
    }

    /// Creates a new, empty database; returns its URL.
    pub fn database(&self) -> Result<String> {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let out = self
            .command("createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "nudge",
                &name,
            ])
            .output()?;
        if !out.status.success() {
            bail!(
                "createdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(format!("postgres://nudge@127.0.0.1:{}/{name}", self.port))
    }

    fn start() -> Result<Self> {
        let bin = bindir().context(
            "PostgreSQL is not installed (scripts/setup-tests.sh installs Debian's postgresql)",
        )?;
        let user = run_as()?;
        clear_stale();
        let cluster = Self::create(
            std::env::temp_dir().join(format!("nudge-pg-{}", std::process::id())),
            bin,
            user,
        )?;
        cluster.spawn_server(false)?;
        cluster.wait_ready()?;
        Ok(cluster)
    }

    /// A new cluster in `dir` (initdb), not started.
    fn create(dir: PathBuf, bin: PathBuf, user: Option<(u32, u32)>) -> Result<Self> {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
        }
        let cluster = Self {
            dir: dir.clone(),
            port: crate::free_port(),
            bin,
            user,
        };
        let out = cluster
            .command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "nudge",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(dir.join("data"))
            .output()?;
        if !out.status.success() {
            bail!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(cluster)
    }

    /// Starts `postgres` from a thread that lives as long as the process; the server gets
    /// SIGINT (a fast shutdown) when that thread, and so the process, ends. Should the
    /// server stop by itself, its folder goes too, unless `keep_dir`. Returns its pid.
    fn spawn_server(&self, keep_dir: bool) -> Result<u32> {
        // setpriv sets the parent-death signal after it changes the user (a change of user
        // clears it), then runs postgres in its place.
        let mut command = Command::new("setpriv");
        command.args(["--pdeathsig", "INT"]);
        if self.user.is_some() {
            command.args([
                "--reuid",
                "postgres",
                "--regid",
                "postgres",
                "--init-groups",
            ]);
        }
        command
            .arg("--")
            .arg(self.bin.join("postgres"))
            .env_remove("PGDATA")
            .env("LC_ALL", "C")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-k",
            ])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("log"))?,
            );
        let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<u32>>();
        let dir = self.dir.clone();
        std::thread::Builder::new()
            .name("postgres".into())
            .spawn(move || {
                let mut child: Child = match command.spawn() {
                    Ok(child) => child,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let _ = tx.send(Ok(child.id()));
                // The server lives as long as this thread, which lives as long as the
                // process; should it stop by itself, its folder goes.
                let _ = child.wait();
                if !keep_dir {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            })?;
        match rx.recv() {
            Ok(started) => Ok(started?),
            Err(_) => bail!("the thread starting PostgreSQL ended"),
        }
    }

    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self
                .command("pg_isready")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
                bail!("PostgreSQL did not start in 30 s: {log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Folders of clusters whose test process is gone (killed before it could clean up).
fn clear_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("nudge-pg-")
            .and_then(|p| p.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// This process's cluster, started on first use. `Ok(None)`: PostgreSQL is not installed
/// and this is not CI (the caller says it skipped, and why).
pub fn cluster() -> Result<Option<&'static Cluster>> {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    let started = CLUSTER.get_or_init(|| Cluster::start().map_err(|e| format!("{e:#}")));
    match started {
        Ok(cluster) => Ok(Some(cluster)),
        Err(why) if bindir().is_none() && std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipped: {why}");
            Ok(None)
        }
        Err(why) => bail!("{why}"),
    }
}

/// A cluster of one test's own, which the test may stop and start again (a database that
/// goes away and comes back); stopped, and its folder removed, when dropped.
#[derive(Debug)]
pub struct Private {
    cluster: Cluster,
    /// The running server's pid, if it runs.
    pid: Option<u32>,
}

impl std::ops::Deref for Private {
    type Target = Cluster;

    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl Private {
    /// Stops the server (a fast shutdown) and waits until it is gone.
    pub fn stop(&mut self) -> Result<()> {
        let Some(pid) = self.pid.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Path::new(&format!("/proc/{pid}")).exists() {
            if Instant::now() > deadline {
                bail!("PostgreSQL (pid {pid}) did not stop in 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Starts the server again, on the same port and data.
    pub fn start(&mut self) -> Result<()> {
        if self.pid.is_none() {
            self.pid = Some(self.cluster.spawn_server(true)?);
            self.cluster.wait_ready()?;
        }
        Ok(())
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.cluster.dir);
    }
}

/// A cluster of the caller's own ([`Private`]), started. `Ok(None)`: as for [`cluster`].
pub fn private() -> Result<Option<Private>> {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let Some(bin) = bindir() else {
        let why =
            "PostgreSQL is not installed (scripts/setup-tests.sh installs Debian's postgresql)";
        if std::env::var("CI").as_deref() == Ok("true") {
            bail!("{why}");
        }
        eprintln!("skipped: {why}");
        return Ok(None);
    };
    clear_stale();
    let dir = std::env::temp_dir().join(format!(
        "nudge-pg-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut private = Private {
        cluster: Cluster::create(dir, bin, run_as()?)?,
        pid: None,
    };
    private.start()?;
    Ok(Some(private))
}
