//! The buddy's side of a sync: the shares this device follows (`<home>/follows.json`,
//! mode 0600), each fetched read-only at every `nudge sync`; a share the owner moved to a
//! rebuilt view is followed there, one the owner revoked is marked and kept.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nudge_replica::Replica;
use nudge_store::DocumentId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Link;
use super::views::runtime;
use crate::api::{Api, Failure, REFUSED};
use crate::output::Out;
use crate::remote::{self, Remote};

/// A share this device follows.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Follow {
    /// The server's address.
    pub url: String,
    /// The share token (a secret: this file is 0600).
    pub token: String,
    /// The view document.
    pub doc: String,
    /// Its scope, as the server said.
    pub scope: String,
    /// When the owner revoked it, if they did (what was seen is kept).
    pub revoked: bool,
}

pub(crate) fn follows_path(home: &Path) -> std::path::PathBuf {
    home.join("follows.json")
}

/// The shares this device follows, by name.
pub fn follows(home: &Path) -> Result<BTreeMap<String, Follow>> {
    let path = follows_path(home);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            anyhow!(
                "{} is damaged ({e}); follow the links again after moving it aside",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

pub(crate) fn save_follows(home: &Path, all: &BTreeMap<String, Follow>) -> Result<()> {
    remote::write_private(&follows_path(home), &serde_json::to_string_pretty(all)?)
}

/// Saves the follow record of `name`.
pub(crate) fn save_follow(home: &Path, name: &str, f: &Follow) -> Result<()> {
    let mut all = follows(home)?;
    all.insert(name.to_owned(), f.clone());
    save_follows(home, &all)
}

/// Marks a followed share revoked (its owner stopped sharing); what was seen stays.
pub(crate) fn mark_revoked(home: &Path, name: &str) -> Result<()> {
    let mut all = follows(home)?;
    if let Some(f) = all.get_mut(name) {
        f.revoked = true;
        save_follows(home, &all)?;
    }
    Ok(())
}

/// Syncs one followed view (read-only: this side never has changes to send).
pub(crate) fn fetch(
    session: &Replica,
    api: &Api,
    doc: DocumentId,
    timeout: Duration,
) -> Result<usize> {
    runtime()?.block_on(async {
        let mut link = Link::connect(api, timeout).await?;
        let stored = session.load_automerge(&doc)?.unwrap_or_default();
        link.add(doc, stored).await?;
        link.until_done(session).await?;
        session.sync_flush()?;
        if link.client.is_unavailable(&doc) {
            bail!("the server does not have that share's view");
        }
        let moved = link.client.moved(&doc);
        link.close().await;
        Ok(moved.down)
    })
}

/// `nudge sync` for followed shares: each one refreshed; revoked ones marked, kept.
pub fn sync_follows(session: &Replica, out: &mut Out, timeout: Duration) -> Result<()> {
    let mut all = follows(session.home())?;
    let mut changed = false;
    for (name, f) in all.iter_mut().filter(|(_, f)| !f.revoked) {
        changed |= follow_moved_view(session, f, timeout)?;
        let Ok(doc) = f.doc.parse::<DocumentId>() else {
            continue;
        };
        let api = Api::new(
            &Remote {
                url: f.url.clone(),
                token: f.token.clone(),
            },
            remote::endpoints(&f.url)?,
            timeout,
        )
        .letting_go(session);
        match fetch(session, &api, doc, timeout) {
            Ok(0) => {}
            Ok(n) => out.line(format!(
                "{name}: ↓ {n} {}",
                crate::output::plural(n, "change", "changes")
            )),
            Err(e)
                if e.downcast_ref::<Failure>()
                    .is_some_and(|x| x.code == REFUSED) =>
            {
                f.revoked = true;
                changed = true;
                out.line(format!(
                    "{name} stopped sharing with you; what you saw stays here (`nudge unfollow {name}` removes it)."
                ));
            }
            Err(e) => out.line(format!(
                "{name}: not synced ({})",
                e.to_string().split("; ").next().unwrap_or_default()
            )),
        }
    }
    if changed {
        save_follows(session.home(), &all)?;
    }
    Ok(())
}

/// The owner may have moved a share to a rebuilt view (`view_rebuild.rs`): the old one is
/// gone from the server, and goes from here too. Returns whether `f` changed (the caller
/// saves the follows).
pub(crate) fn follow_moved_view(
    session: &Replica,
    f: &mut Follow,
    timeout: Duration,
) -> Result<bool> {
    let Some(moved) = current_view(session, f, timeout)
        .filter(|d| *d != f.doc && d.parse::<DocumentId>().is_ok())
    else {
        return Ok(false);
    };
    if let Ok(old) = f.doc.parse::<DocumentId>() {
        session.remove_doc(&old)?;
    }
    f.doc = moved;
    Ok(true)
}

/// The view document a followed share shows now, as its server says (`None` if it does
/// not say: offline, revoked or expired, which the fetch that follows reports).
fn current_view(session: &Replica, f: &Follow, timeout: Duration) -> Option<String> {
    let endpoints = remote::endpoints(&f.url).ok()?;
    let info = Api::anonymous(&f.url, endpoints, timeout)
        .letting_go(session)
        .call("GET", &format!("/v1/shares/{}", f.token), None)
        .ok()?
        .ok()?;
    info.get("doc").and_then(Value::as_str).map(str::to_owned)
}
