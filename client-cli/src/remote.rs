//! The remote: the sync server's address and this device's token, in `<home>/remote.json`
//! (mode 0600: the token is a secret). The token never comes from argv, where `ps` would
//! show it: `NUDGE_TOKEN` or `--token-stdin`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nudge_protocol::Token;
use serde::{Deserialize, Serialize};

/// A sync server and the token to use with it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Remote {
    /// The address as the user gave it.
    pub url: String,
    /// The bearer token.
    pub token: String,
}

/// Where to reach a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// The websocket url of the sync endpoint.
    pub sync: String,
    /// The base of the HTTP routes (no trailing slash).
    pub http: String,
}

/// The file a remote is kept in.
pub fn path(home: &Path) -> PathBuf {
    home.join("remote.json")
}

/// Works out the endpoints of a server address: `ws://`, `http://`, `wss://` or `https://`,
/// host and port, optionally a path prefix (a server behind a proxy at `/nudge`).
pub fn endpoints(url: &str) -> Result<Endpoints> {
    let bad = || {
        anyhow::anyhow!(
            "{url:?} is not a server address; use ws://host:port or http://host:port (wss:// or https:// behind a TLS proxy)"
        )
    };
    let (scheme, rest) = url.trim().split_once("://").ok_or_else(bad)?;
    let (ws, http) = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => ("ws", "http"),
        "wss" | "https" => ("wss", "https"),
        _ => return Err(bad()),
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty()
        || authority.contains('@')
        || authority.chars().any(char::is_whitespace)
        || path.contains(['?', '#'])
    {
        return Err(bad());
    }
    // `http::Uri` checks the host and port.
    let check: tokio_tungstenite::tungstenite::http::Uri = format!("{http}://{authority}/")
        .parse()
        .map_err(|_| bad())?;
    let port_ok = match authority.rsplit_once(':') {
        Some((_, port)) if !port.contains(']') => port.parse::<u16>().is_ok(),
        _ => true,
    };
    if check.host().is_none_or(str::is_empty) || !port_ok {
        return Err(bad());
    }
    let prefix = path
        .trim_end_matches('/')
        .trim_end_matches("/v1/sync")
        .trim_end_matches('/');
    Ok(Endpoints {
        sync: format!("{ws}://{authority}{prefix}/v1/sync"),
        http: format!("{http}://{authority}{prefix}"),
    })
}

/// Checks a token's form before it is stored.
pub fn check_token(token: &str) -> Result<Token> {
    token.trim().parse::<Token>().map_err(|_| {
        anyhow::anyhow!(
            "that is not a nudge token (they look like nudge_acct_<id>_<secret>); copy it again from `nudge-server account add`"
        )
    })
}

/// The remote, if one is set.
pub fn load(home: &Path) -> Result<Option<Remote>> {
    let file = path(home);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let remote: Remote = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is damaged ({e}); run `nudge remote remove` and add the remote again",
            file.display()
        )
    })?;
    Ok(Some(remote))
}

/// Stores the remote, readable by this user only, replacing the file atomically.
pub fn save(home: &Path, remote: &Remote) -> Result<()> {
    write_private(&path(home), &serde_json::to_string_pretty(remote)?)
}

/// Writes a file only this user can read (mode 0600), replacing it atomically.
pub fn write_private(file: &Path, text: &str) -> Result<()> {
    let tmp = file.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let write = || -> std::io::Result<()> {
        let mut f = options.open(&tmp)?;
        // An existing file keeps its mode through `open`: set it again.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    };
    write().with_context(|| format!("cannot write {}", file.display()))
}

/// Forgets the remote. Returns whether one was set.
pub fn remove(home: &Path) -> Result<bool> {
    match std::fs::remove_file(path(home)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path(home).display())),
    }
}

/// The token for `remote add`: `--token-stdin` reads one line; otherwise `NUDGE_TOKEN`.
pub fn token_from(stdin: bool) -> Result<String> {
    if stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the token from standard input")?;
        let token = line.trim().to_owned();
        if token.is_empty() {
            bail!(
                "no token on standard input; pipe it in, e.g. `nudge remote add URL --token-stdin < token.txt`"
            );
        }
        return Ok(token);
    }
    match std::env::var("NUDGE_TOKEN") {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_owned()),
        _ => bail!(
            "no token: set NUDGE_TOKEN or pass --token-stdin (a token in the command line would show in `ps`)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_map_to_endpoints() {
        let e = endpoints("http://127.0.0.1:3030").unwrap();
        assert_eq!(e.sync, "ws://127.0.0.1:3030/v1/sync");
        assert_eq!(e.http, "http://127.0.0.1:3030");
        let e = endpoints("wss://example.org/nudge/").unwrap();
        assert_eq!(e.sync, "wss://example.org/nudge/v1/sync");
        assert_eq!(e.http, "https://example.org/nudge");
        let e = endpoints("ws://[::1]:3030/v1/sync").unwrap();
        assert_eq!(e.sync, "ws://[::1]:3030/v1/sync");
        assert_eq!(e.http, "http://[::1]:3030");
        for bad in [
            "127.0.0.1:3030",
            "ftp://host",
            "http://",
            "http://user@host",
            "http://host:99999",
            "http://host/?token=x",
        ] {
            assert!(endpoints(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_file_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let remote = Remote {
            url: "http://127.0.0.1:1".into(),
            token: "t".into(),
        };
        save(dir.path(), &remote).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(remote));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(remove(dir.path()).unwrap());
        assert!(!remove(dir.path()).unwrap());
    }
}
