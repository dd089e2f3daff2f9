//! `nudge buddy list` and `nudge buddy revoke`: the shares this journal records, joined
//! with the server's list of the account's shares, which says who made each and when its
//! buddy was last seen. A share the server holds but the journal does not (made by a
//! device that never recorded it: a stolen one, through a client of its own) is listed too,
//! marked, and can be revoked by name or id like any other.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use nudge_journal::share::Share;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::buddy::{day, revoke_share};
use crate::output::{DIM, ERR, ID, Out, TAG, paint};
use crate::sync::views::{connected, wall_ms};
use nudge_replica::Replica;

/// A share as the server lists it (`GET /v1/shares`).
#[derive(Clone, Debug, Deserialize)]
struct ServerShare {
    id: String,
    name: String,
    scope: String,
    view_doc: String,
    created_ms: i64,
    expires_ms: Option<i64>,
    last_seen_ms: Option<i64>,
    /// The device that made it (`account token`, `a revoked device`), if the server knows.
    #[serde(default)]
    created_by: Option<String>,
}

/// The server's shares of the account by id; `None` offline (the journal's list still
/// shows).
fn server_shares(session: &Replica, timeout: Duration) -> Option<BTreeMap<String, ServerShare>> {
    let (_, api) = connected(session, timeout).ok()?;
    let listed = api.call("GET", "/v1/shares", None).ok()?.ok()?;
    let shares: Vec<ServerShare> = serde_json::from_value(listed).ok()?;
    Some(shares.into_iter().map(|s| (s.id.clone(), s)).collect())
}

/// `nudge buddy list`.
pub fn list(session: &Replica, out: &mut Out, as_json: bool, timeout: Duration) -> Result<()> {
    let shares = session
        .load_journal()?
        .map(|j| j.shares())
        .unwrap_or_default();
    let server = server_shares(session, timeout);
    let on_server = |id: &str| server.as_ref().and_then(|all| all.get(id));
    // Shares only the server knows: live there, absent from the journal.
    let unrecorded: Vec<&ServerShare> = server
        .iter()
        .flat_map(|all| all.values())
        .filter(|s| !shares.contains_key(&s.id))
        .collect();
    let now_ms = wall_ms();
    let rfc = nudge_journal::when::rfc3339;
    if as_json {
        let mut list: Vec<Value> = shares
            .values()
            .map(|s| {
                let known = on_server(&s.id);
                json!({
                    "id": s.id, "name": s.name, "scope": s.scope, "view_doc": s.view_doc,
                    "created_at": rfc(s.created_at_ms),
                    "expires_at": s.expires_at_ms.map(rfc),
                    "revoked_at": s.revoked_at_ms.map(rfc),
                    "active": s.active(now_ms),
                    "last_seen": known.and_then(|k| k.last_seen_ms).map(rfc),
                    "created_by": known.and_then(|k| k.created_by.clone()),
                    "in_journal": true,
                })
            })
            .collect();
        list.extend(unrecorded.iter().map(|s| {
            json!({
                "id": s.id, "name": s.name, "scope": s.scope, "view_doc": s.view_doc,
                "created_at": rfc(s.created_ms),
                "expires_at": s.expires_ms.map(rfc),
                "revoked_at": null,
                "active": s.expires_ms.is_none_or(|e| e > now_ms),
                "last_seen": s.last_seen_ms.map(rfc),
                "created_by": s.created_by,
                "in_journal": false,
            })
        }));
        return out.json(&list);
    }
    if shares.is_empty() && unrecorded.is_empty() {
        crate::output::notice("No buddies yet. Invite one: nudge buddy invite NAME");
    }
    let seen = |ms: Option<i64>| {
        ms.map(|ms| format!("last seen {}", day(ms, session)))
            .unwrap_or_else(|| "not seen yet".into())
    };
    let by = |who: Option<&String>| who.map(|w| format!("  by {w}")).unwrap_or_default();
    for s in shares.values() {
        let known = on_server(&s.id);
        out.line(format!(
            "{}  {}  {}  since {}  {}  {}{}",
            paint(ID, &s.id),
            s.name,
            paint(TAG, s.scope),
            day(s.created_at_ms, session),
            state(s, now_ms, session),
            paint(DIM, seen(known.and_then(|k| k.last_seen_ms))),
            paint(DIM, by(known.and_then(|k| k.created_by.as_ref()))),
        ));
    }
    for s in &unrecorded {
        out.line(format!(
            "{}  {}  {}  since {}  {}  {}{}",
            paint(ID, &s.id),
            s.name,
            paint(TAG, &s.scope),
            day(s.created_ms, session),
            paint(ERR, "not in this journal: revoke it unless you know it"),
            paint(DIM, seen(s.last_seen_ms)),
            paint(DIM, by(s.created_by.as_ref())),
        ));
    }
    Ok(())
}

fn state(s: &Share, now_ms: i64, session: &Replica) -> String {
    match (s.revoked_at_ms, s.active(now_ms)) {
        (Some(_), _) => "revoked".to_owned(),
        (None, false) => "expired".to_owned(),
        (None, true) => match s.expires_at_ms {
            Some(e) => format!("until {}", day(e, session)),
            None => "no expiry".to_owned(),
        },
    }
}

/// `nudge buddy revoke NAME`: a share of the journal's, or one only the server knows.
pub fn revoke(session: &Replica, out: &mut Out, name: &str, timeout: Duration) -> Result<()> {
    let named = |share_name: &str, id: &str| share_name.eq_ignore_ascii_case(name) || id == name;
    let recorded = session
        .load_journal()?
        .map(|j| j.shares())
        .unwrap_or_default()
        .into_values()
        .find(|s| s.revoked_at_ms.is_none() && named(&s.name, &s.id));
    let (_, api) = connected(session, timeout)?;
    let (who, closed) = match recorded {
        Some(share) => (share.name.clone(), revoke_share(session, &api, &share)?),
        None => {
            let unrecorded = server_shares(session, timeout)
                .unwrap_or_default()
                .into_values()
                .find(|s| named(&s.name, &s.id))
                .ok_or_else(|| {
                    anyhow!("no active share is called {name:?}; `nudge buddy list` shows them")
                })?;
            let answer = api.call("DELETE", &format!("/v1/shares/{}", unrecorded.id), None)?;
            let closed = match answer {
                Ok(v) => v.get("connections_closed").and_then(Value::as_u64),
                Err(r) if r.status == 404 => Some(0),
                Err(r) => bail!(
                    "the server at {} answered {}: {}",
                    api.url,
                    r.status,
                    r.reason
                ),
            };
            (unrecorded.name, closed.unwrap_or(0))
        }
    };
    out.line(format!(
        "{who}'s link no longer works ({} closed). What they already saw stays with them.",
        crate::output::count(closed as usize, "open connection", "open connections")
    ));
    Ok(())
}
