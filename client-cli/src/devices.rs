//! `nudge device link|list|revoke` and `nudge join`: adding a device with a one-time link,
//! seeing the account's devices, revoking one. The server's side is
//! `server/src/device_routes.rs`; docs/devices.md says how it all fits.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};

use crate::api::Api;
use crate::output::{DIM, ID, Out, paint};
use crate::remote::{self, Remote};
use nudge_replica::{Replica, local};

fn connected(session: &Replica, timeout: Duration) -> Result<(Remote, Api<'_>)> {
    crate::api::connected(
        session,
        timeout,
        "this device does not sync yet: `nudge join LINK` with a link from a linked device, or `nudge remote add URL`",
    )
}

fn local_time(ms: i64, session: &Replica) -> String {
    crate::output::local(ms, &session.now.tz, "%Y-%m-%d %H:%M")
}

/// `nudge device link`: a one-time link for another device, alone on the last line.
pub fn link(
    session: &Replica,
    out: &mut Out,
    expires: Option<u64>,
    timeout: Duration,
) -> Result<()> {
    let (_, api) = connected(session, timeout)?;
    let body = json!({ "expires_secs": expires });
    let value = api.expect("POST", "/v1/devices/link", Some(body))?;
    let (Some(link), Some(expires_ms)) = (
        value.get("link").and_then(Value::as_str),
        value.get("expires_ms").and_then(Value::as_i64),
    ) else {
        bail!("the server at {} sent something unexpected", api.url);
    };
    out.line(format!(
        "On the new device, run `nudge join` with this link. It works once, until {}:",
        local_time(expires_ms, session)
    ));
    out.line(link);
    Ok(())
}

/// Splits `<base>/join#<code>` into the server address and the code.
pub fn parse_link(link: &str) -> Result<(String, String)> {
    let bad = || {
        anyhow!(
            "{link:?} is not a nudge device link (those look like http://host:3030/join#<code>); copy it whole from `nudge device link`"
        )
    };
    let (base, code) = link.trim().split_once("/join#").ok_or_else(bad)?;
    let code = code.trim();
    if code.is_empty() || code.len() > 128 || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad());
    }
    remote::endpoints(base).map_err(|_| bad())?;
    Ok((base.to_owned(), code.to_owned()))
}

/// `nudge join LINK`: redeem a link for this device's own token, then sync (adopting the
/// account's journal, carrying this device's own records over).
pub fn join(
    session: &Replica,
    out: &mut Out,
    link: &str,
    name: Option<String>,
    timeout: Duration,
) -> Result<()> {
    let (base, code) = parse_link(link)?;
    let endpoints = remote::endpoints(&base)?;
    if let Some(existing) = remote::load(session.home())? {
        if remote::endpoints(&existing.url)? != endpoints {
            bail!(
                "this device syncs with {} already; `nudge remote remove` first to join another server",
                existing.url
            );
        }
        // Joined before (perhaps a run cut short after the token was stored): if its token
        // still works, just sync; if it was revoked, redeem the new link in its place.
        let api = Api::new(&existing, endpoints.clone(), timeout).letting_go(session);
        match api.call("GET", "/v1/devices", None) {
            Ok(_) => {
                out.line(format!(
                    "This device is linked to {} already; syncing.",
                    existing.url
                ));
                return crate::sync::run(session, out, timeout);
            }
            Err(e)
                if e.downcast_ref::<crate::api::Failure>()
                    .is_some_and(|f| f.code == crate::api::REFUSED) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(name) = &name {
        session.local_set(local::DEVICE_NAME, name)?;
    }
    let name = session.device_name()?;
    // A key of this device's own, kept before asking: the same device redeeming the same
    // link again (after a crash) gets a fresh token in place of the first.
    let device_key = match session.local_get(local::DEVICE_KEY)? {
        Some(key) => key,
        None => {
            let key = nudge_journal::ids::new_id();
            session.local_set(local::DEVICE_KEY, &key)?;
            key
        }
    };
    let api = Api::anonymous(&base, endpoints, timeout).letting_go(session);
    let body = json!({ "code": code, "device_key": device_key, "name": name });
    let value = match api.call("POST", "/v1/devices/join", Some(body))? {
        Ok(value) => value,
        Err(refusal) => bail!("{}; nothing was changed here", refusal.reason),
    };
    let (Some(token), Some(id)) = (
        value.get("token").and_then(Value::as_str),
        value.get("device_id").and_then(Value::as_str),
    ) else {
        bail!("the server at {base} sent something unexpected");
    };
    let token = remote::check_token(token)?;
    remote::save(
        session.home(),
        &Remote {
            url: base.clone(),
            token: token.to_string(),
        },
    )?;
    session.forget_synced()?;
    out.line(format!(
        "Linked this device as {name:?} ({}) to {base}.",
        paint(ID, id)
    ));
    crate::sync::run(session, out, timeout)
}

/// The account's devices, as the server lists them.
fn devices(api: &Api) -> Result<Vec<Value>> {
    let value = api.expect("GET", "/v1/devices", None)?;
    value
        .as_array()
        .cloned()
        .ok_or_else(|| anyhow!("the server at {} sent something unexpected", api.url))
}

/// `nudge device list`.
pub fn list(session: &Replica, out: &mut Out, as_json: bool, timeout: Duration) -> Result<()> {
    let (remote, api) = connected(session, timeout)?;
    let this = remote::check_token(&remote.token)?.id().to_owned();
    let mut devices = devices(&api)?;
    for device in &mut devices {
        let me = device.get("id").and_then(Value::as_str) == Some(this.as_str());
        device["this_device"] = json!(me);
    }
    if as_json {
        // Instants as RFC 3339, like every other listing.
        for device in &mut devices {
            for (ms, at) in [
                ("created_ms", "created_at"),
                ("last_seen_ms", "last_seen_at"),
            ] {
                let when = device
                    .get(ms)
                    .and_then(Value::as_i64)
                    .map(nudge_journal::when::rfc3339);
                if let Some(map) = device.as_object_mut() {
                    map.remove(ms);
                    map.insert(at.to_owned(), json!(when));
                }
            }
        }
        return out.json(&devices);
    }
    for device in &devices {
        let s = |k: &str| device.get(k).and_then(Value::as_str).unwrap_or_default();
        let me = device["this_device"] == json!(true);
        let name = match (s("kind"), s("name")) {
            ("acct", "") => "(account token)".to_owned(),
            (_, "") => "(unnamed)".to_owned(),
            (_, name) => name.to_owned(),
        };
        let seen = device
            .get("last_seen_ms")
            .and_then(Value::as_i64)
            .map(|ms| format!("last seen {}", local_time(ms, session)))
            .unwrap_or_else(|| "never connected".into());
        out.line(format!(
            "{} {}  {name}  {}{}",
            if me { "*" } else { " " },
            paint(ID, s("id")),
            paint(DIM, seen),
            if me { "  (this device)" } else { "" }
        ));
    }
    Ok(())
}

/// `nudge device revoke NAME|ID`.
pub fn revoke(session: &Replica, out: &mut Out, target: &str, timeout: Duration) -> Result<()> {
    let (remote, api) = connected(session, timeout)?;
    let this = remote::check_token(&remote.token)?.id().to_owned();
    let devices = devices(&api)?;
    let wanted = target.trim().to_lowercase();
    let matches: Vec<&Value> = devices
        .iter()
        .filter(|d| {
            let s = |k: &str| {
                d.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_lowercase()
            };
            s("id") == wanted
                || s("name") == wanted
                || (wanted.len() >= 4 && s("id").starts_with(&wanted))
        })
        .collect();
    let device = match matches.as_slice() {
        [one] => *one,
        [] => bail!(
            "no device of this account is called or has the id {target:?}; `nudge device list` shows them"
        ),
        many => bail!(
            "{target:?} matches {} devices ({}); use the id",
            many.len(),
            many.iter()
                .filter_map(|d| d.get("id").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let id = device
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let value = api.expect("DELETE", &format!("/v1/devices/{id}"), None)?;
    let closed = value
        .get("connections_closed")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    out.line(format!(
        "Revoked {id}: its token no longer works ({} closed).",
        crate::output::count(closed as usize, "open connection", "open connections")
    ));
    if id == this {
        out.line("That was this device: it cannot sync until it is linked again.");
    }
    Ok(())
}
