//! Account and token administration from the command line: straight on the data folder
//! when no server holds it, or through the running server's admin routes (found in
//! `admin.json`, which `serve` writes with mode 0600 and removes when it stops).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use nudge_server::State;
use nudge_store::{Location, Store};
use serde_json::{Value, json};

/// Where a running server says how to reach its admin routes.
pub fn path(data: &Path) -> PathBuf {
    data.join("admin.json")
}

/// Makes a secret for this run and writes it, with the address, to `admin.json`.
pub fn write(data: &Path, listening: SocketAddr) -> Result<String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw)
        .map_err(|e| anyhow!("the operating system gave no randomness: {e}"))?;
    let secret: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let mut addr = listening;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let body = json!({ "url": format!("http://{addr}"), "secret": secret });
    let file = path(data);
    let tmp = data.join("admin.json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| -> std::io::Result<()> {
        let mut f = options.open(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(body.to_string().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &file)
    })();
    written.with_context(|| format!("cannot write {}", file.display()))?;
    Ok(secret)
}

/// How accounts are managed: on the folder, or through the server that holds it.
pub enum Admin {
    /// No server runs: the data folder itself.
    Direct(Box<State>),
    /// A server runs: its admin routes.
    Running {
        /// `http://host:port`.
        base: String,
        /// The per-run secret.
        secret: String,
        /// The HTTP client.
        agent: ureq::Agent,
    },
}

impl Admin {
    /// Opens the data folder, or finds the server that holds it. A folder without a store
    /// is refused, unless `create` (`account add`): then a new store is made there, and
    /// stderr says where, since a server running on another folder will not know it.
    pub fn open_or_create(location: &Location, create: bool) -> Result<Self> {
        let Location::Folder(data) = location else {
            // A database: opened alongside any running servers (no lock to wait for).
            let store = Store::open(location, &nudge_store::OpenOptions::default())?;
            return Ok(Self::Direct(Box::new(State::open(
                &store,
                nudge_server::clock::system(),
            )?)));
        };
        let data = data.as_path();
        if !holds_store(data) {
            let absolute = std::path::absolute(data).unwrap_or_else(|_| data.to_path_buf());
            if !create {
                bail!(
                    "{} holds no nudge-server store: pass the folder the server runs on with --data DIR (or NUDGE_DATA)",
                    absolute.display()
                );
            }
            let admin = Self::open(data)?;
            eprintln!(
                "nudge-server: created a new, empty server store at {}; a running server elsewhere will not know this account (pass its folder with --data)",
                absolute.display()
            );
            return Ok(admin);
        }
        Self::open(data)
    }

    /// Opens the data folder, or finds the server that holds it.
    pub fn open(data: &Path) -> Result<Self> {
        std::fs::create_dir_all(data)
            .with_context(|| format!("cannot create the data folder {}", data.display()))?;
        // No waiting for the lock: a server holding it does not let go.
        let options = nudge_store::OpenOptions {
            lock_wait: std::time::Duration::ZERO,
            ..nudge_store::OpenOptions::default()
        };
        match Store::open(&Location::Folder(data.to_path_buf()), &options) {
            Ok(store) => Ok(Self::Direct(Box::new(State::open(
                &store,
                nudge_server::clock::system(),
            )?))),
            Err(nudge_store::Error::Locked { .. }) => {
                let file = path(data);
                let text = std::fs::read_to_string(&file).map_err(|_| {
                    anyhow!(
                        "another process holds {} and left no {}; if it is a nudge-server older than this one, stop it to manage accounts",
                        data.display(),
                        file.display()
                    )
                })?;
                let value: Value = serde_json::from_str(&text)
                    .map_err(|_| anyhow!("{} is damaged; restart the server", file.display()))?;
                let (Some(base), Some(secret)) = (value["url"].as_str(), value["secret"].as_str())
                else {
                    bail!("{} is damaged; restart the server", file.display());
                };
                let agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(std::time::Duration::from_secs(10)))
                    .build()
                    .into();
                Ok(Self::Running {
                    base: base.to_owned(),
                    secret: secret.to_owned(),
                    agent,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Calls an admin route; returns the JSON answer.
    fn call(&self, method: &str, route: &str, body: Option<Value>) -> Result<Value> {
        let Self::Running {
            base,
            secret,
            agent,
        } = self
        else {
            bail!("not a running server");
        };
        let url = format!("{base}/v1/admin/{route}");
        let bearer = format!("Bearer {secret}");
        let result = match (method, body) {
            ("GET", _) => agent.get(&url).header("Authorization", &bearer).call(),
            ("DELETE", _) => agent.delete(&url).header("Authorization", &bearer).call(),
            (_, body) => agent
                .post(&url)
                .header("Authorization", &bearer)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(Value::Null).to_string()),
        };
        let mut response = result.map_err(|e| {
            anyhow!("the server that holds the data folder does not answer at {base} ({e}); is it still running?")
        })?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        if !(200..300).contains(&status) {
            bail!("{}", text.trim());
        }
        serde_json::from_str(&text).map_err(|_| anyhow!("the server answered something unexpected"))
    }

    /// Creates an account; returns its id and token.
    pub fn add_account(&self, name: &str) -> Result<(String, String)> {
        match self {
            Self::Direct(state) => {
                let (id, token) = state.accounts().add(name)?;
                state.flush()?;
                Ok((id, token.to_string()))
            }
            Self::Running { .. } => {
                let v = self.call("POST", "accounts", Some(json!({ "name": name })))?;
                match (v["id"].as_str(), v["token"].as_str()) {
                    (Some(id), Some(token)) => Ok((id.to_owned(), token.to_owned())),
                    _ => bail!("the server answered something unexpected"),
                }
            }
        }
    }

    /// What became of the open connections of tokens just revoked: `closed` of them
    /// closed by the running server; on a shared database, every node closes its own.
    fn closed(&self, closed: u64) -> String {
        match self {
            Self::Direct(state) if state.store().shared().is_some() => {
                "the running nodes close its open connections".to_owned()
            }
            _ => format!(
                "{closed} open connection{} closed",
                if closed == 1 { "" } else { "s" }
            ),
        }
    }

    /// A new account token for `name` (the old one revoked); returns it and what became
    /// of the old one's open connections.
    pub fn reissue(&self, name: &str) -> Result<(String, String)> {
        match self {
            Self::Direct(state) => {
                let Some((token, old)) = state.reissue_account_token(name)? else {
                    bail!("no account is called {name:?}; `nudge-server account list` shows them");
                };
                state.flush()?;
                state.withdrawn(old, Vec::new());
                Ok((token.to_string(), self.closed(0)))
            }
            Self::Running { .. } => {
                let v = self.call("POST", &format!("accounts/{name}/token"), Some(json!({})))?;
                match v["token"].as_str() {
                    Some(token) => Ok((
                        token.to_owned(),
                        self.closed(v["connections_closed"].as_u64().unwrap_or(0)),
                    )),
                    None => bail!("the server answered something unexpected"),
                }
            }
        }
    }

    /// Every account as (id, name, bytes its documents take).
    pub fn accounts(&self) -> Result<Vec<(String, String, u64)>> {
        match self {
            Self::Direct(state) => {
                let accounts = state.accounts();
                let mut out = Vec::new();
                for (id, name) in accounts.list()? {
                    let used = accounts.used(&id)?;
                    out.push((id, name, used));
                }
                Ok(out)
            }
            Self::Running { .. } => Ok(self
                .call("GET", "accounts", None)?
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| {
                            (
                                v["id"].as_str().unwrap_or_default().to_owned(),
                                v["name"].as_str().unwrap_or_default().to_owned(),
                                v["used_bytes"].as_u64().unwrap_or(0),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()),
        }
    }

    /// Removes an account; returns a line saying what went with it.
    pub fn remove_account(&self, name: &str) -> Result<String> {
        let (tokens, documents, closed) = match self {
            Self::Direct(state) => {
                let Some(removed) = state.remove_account(name)? else {
                    bail!("no account is called {name:?}; `nudge-server account list` shows them");
                };
                state.flush()?;
                let counts = (removed.tokens.len(), removed.documents.len(), 0);
                state.withdrawn(removed.tokens, removed.documents);
                counts
            }
            Self::Running { .. } => {
                let v = self.call("DELETE", &format!("accounts/{name}"), None)?;
                let n = |k: &str| v[k].as_u64().unwrap_or(0) as usize;
                (
                    n("tokens_revoked"),
                    n("documents_removed"),
                    n("connections_closed"),
                )
            }
        };
        Ok(format!(
            "account {name} removed: {tokens} tokens revoked, {documents} documents deleted, {}",
            self.closed(closed as u64)
        ))
    }

    /// Every token as (id, kind, account name).
    pub fn tokens(&self) -> Result<Vec<(String, String, String)>> {
        let names: std::collections::HashMap<String, String> = self
            .accounts()?
            .into_iter()
            .map(|(id, name, _)| (id, name))
            .collect();
        let raw: Vec<(String, String, String)> = match self {
            Self::Direct(state) => state
                .accounts()
                .tokens()?
                .into_iter()
                .map(|t| (t.id, t.kind.tag().to_owned(), t.account))
                .collect(),
            Self::Running { .. } => self
                .call("GET", "tokens", None)?
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| {
                            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                            (s("id"), s("kind"), s("account"))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        Ok(raw
            .into_iter()
            .map(|(id, kind, account)| {
                let name = names.get(&account).cloned().unwrap_or(account);
                (id, kind, name)
            })
            .collect())
    }

    /// Revokes a token; returns a line saying so.
    pub fn revoke(&self, id: &str) -> Result<String> {
        let closed = match self {
            Self::Direct(state) => {
                let revoked = state.revoke(id)?;
                if revoked.is_empty() {
                    bail!("no token has the id {id:?}; `nudge-server token list` shows them");
                }
                state.flush()?;
                state.withdrawn(revoked, Vec::new());
                0
            }
            Self::Running { .. } => {
                self.call("DELETE", &format!("tokens/{id}"), None)?["connections_closed"]
                    .as_u64()
                    .unwrap_or(0)
            }
        };
        Ok(format!(
            "token {id} revoked, with every device and share it made ({})",
            self.closed(closed)
        ))
    }
}

/// `nudge-server backup`: straight from the folder when no server holds it, else streamed
/// by the running server. Written to `out` + `.partial`, checked whole (framing, checksum,
/// every document loads), synced, then renamed over `out`: a failed backup never replaces
/// a good one.
/// Whether a store was ever created in `data`.
fn holds_store(data: &Path) -> bool {
    Location::Folder(data.to_path_buf()).holds_a_store()
}

pub fn backup(location: &Location, out: &Path) -> Result<nudge_server::backup::Summary> {
    if !location.holds_a_store() {
        bail!(
            "{location} holds no nudge-server data (no store was ever created there); check --data"
        );
    }
    let partial = {
        let mut name = out.as_os_str().to_owned();
        name.push(".partial");
        PathBuf::from(name)
    };
    // It holds every journal and contact detail: its owner's alone, like the folder.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options
        .open(&partial)
        .and_then(|f| {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(f)
        })
        .with_context(|| format!("cannot write {}", partial.display()))?;
    let written = (|| -> Result<()> {
        let mut writer = std::io::BufWriter::with_capacity(256 << 10, &file);
        match Admin::open_or_create(location, false)? {
            Admin::Direct(state) => {
                nudge_server::backup::write(state.store(), &mut writer)?;
            }
            Admin::Running { base, secret, .. } => {
                // No overall time limit: a big folder takes as long as it takes.
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_connect(Some(std::time::Duration::from_secs(10)))
                    .timeout_recv_response(Some(std::time::Duration::from_secs(60)))
                    .build()
                    .into();
                let mut response = agent
                    .get(format!("{base}/v1/admin/backup"))
                    .header("Authorization", format!("Bearer {secret}"))
                    .call()
                    .map_err(|e| {
                        anyhow!("the server that holds the data folder does not answer at {base} ({e}); is it still running?")
                    })?;
                if response.status().as_u16() != 200 {
                    let text = response.body_mut().read_to_string().unwrap_or_default();
                    bail!("the server refused the backup: {}", text.trim());
                }
                std::io::copy(&mut response.into_body().into_reader(), &mut writer)
                    .context("the backup stopped while it was sent")?;
            }
        }
        writer.flush()?;
        Ok(())
    })();
    let checked = written.and_then(|()| {
        file.sync_all()?;
        let reader = std::io::BufReader::new(std::fs::File::open(&partial)?);
        nudge_server::backup::verify(reader)
            .map_err(|e| anyhow!("the backup came out damaged: {e:#}"))
    });
    match checked {
        Ok(summary) => {
            std::fs::rename(&partial, out)
                .with_context(|| format!("cannot move the backup to {}", out.display()))?;
            // The rename itself made durable.
            if let Some(Ok(dir)) = out
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map(std::fs::File::open)
            {
                let _ = dir.sync_all();
            }
            Ok(summary)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e.context(format!("no backup written to {}", out.display())))
        }
    }
}

/// `nudge-server restore`: checks the whole backup, then writes it into an empty folder
/// that no server holds, or an empty database.
pub fn restore(location: &Location, from: &Path) -> Result<nudge_server::backup::Summary> {
    let open_backup = || {
        std::fs::File::open(from)
            .map(std::io::BufReader::new)
            .with_context(|| format!("cannot read {}", from.display()))
    };
    nudge_server::backup::verify(open_backup()?)
        .map_err(|e| anyhow!("{} cannot be restored: {e:#}", from.display()))?;
    let Location::Folder(data) = location else {
        let store = Store::open(location, &nudge_store::OpenOptions::default())?;
        return nudge_server::backup::restore(&store, open_backup()?);
    };
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data folder {}", data.display()))?;
    let options = nudge_store::OpenOptions {
        lock_wait: std::time::Duration::ZERO,
        ..nudge_store::OpenOptions::default()
    };
    let store = match Store::open(&Location::Folder(data.to_path_buf()), &options) {
        Ok(store) => store,
        Err(nudge_store::Error::Locked { .. }) => bail!(
            "a server (or another process) holds {}; restore into a new, empty folder, then start the server on it",
            data.display()
        ),
        Err(e) => return Err(e.into()),
    };
    nudge_server::backup::restore(&store, open_backup()?)
}
