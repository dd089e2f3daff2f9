//! The accountability buddy, both sides (docs/sharing.md).
//!
//! Owner: `nudge buddy invite|list|revoke`: a share view document (a projection of the
//! journal, `nudge_journal::share`) is made, pushed, registered with the server for a share
//! token, and listed in the journal; every `nudge sync` refreshes active views.
//!
//! Buddy: `nudge follow|following|unfollow`, `nudge buddy show`: a read-only replica of the
//! view in this device's store, its link in `<home>/follows.json` (mode 0600).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nudge_journal::automerge::Automerge;
use nudge_journal::share::{self, Share, ShareView, ViewInput};
use nudge_journal::{Catalog, Scope, Settings, Summary};
use nudge_store::DocumentId;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{Api, Failure, REFUSED};
use crate::output::{DIM, GOOD, Out, TAG, paint};
use crate::remote::{self, Remote};
use crate::sync::{self, Link};
use nudge_replica::{Replica, Touched};

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

fn follows_path(home: &Path) -> std::path::PathBuf {
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

fn save_follows(home: &Path, all: &BTreeMap<String, Follow>) -> Result<()> {
    remote::write_private(&follows_path(home), &serde_json::to_string_pretty(all)?)
}

/// `90d`, `12h`, `2w`, `30m` or `never`, in milliseconds (`None`: never).
fn parse_expiry(text: &str) -> Result<Option<i64>> {
    let text = text.trim().to_ascii_lowercase();
    if text == "never" {
        return Ok(None);
    }
    let (n, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: i64 = n.parse().map_err(|_| {
        anyhow!("--expires takes a number and a unit (90d, 2w, 12h, 30m, 45s) or never")
    })?;
    let ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => bail!("--expires takes a number and a unit (90d, 2w, 12h, 30m, 45s) or never"),
    };
    if n <= 0 || n > 3650 * 86_400_000 / ms {
        bail!("--expires must be between 1 second and 10 years");
    }
    Ok(Some(n * ms))
}

/// The real time (ms): expiry is the server's to enforce, with its clock, so it is never
/// judged by `NUDGE_NOW`.
pub(crate) fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The journal's state a view is projected from.
pub(crate) fn projection_input(
    session: &Replica,
) -> Result<(Catalog, Summary, Vec<nudge_journal::Shift>)> {
    let view = session.require_view()?;
    let shifts = session.all_shifts()?;
    Ok((view.catalog, view.summary, shifts))
}

pub(crate) fn connected(session: &Replica, timeout: Duration) -> Result<(Remote, Api)> {
    crate::api::connected(
        session.home(),
        timeout,
        "sharing needs the sync server: `nudge join LINK` or `nudge remote add URL` first",
    )
}

/// `nudge buddy invite NAME`: prints the link alone on the last line.
pub fn invite(
    session: &Replica,
    out: &mut Out,
    name: &str,
    scope: Scope,
    expires: &str,
    timeout: Duration,
) -> Result<()> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        bail!("a buddy's name is 1 to 64 characters");
    }
    let expires_in = parse_expiry(expires)?;
    let (_, api) = connected(session, timeout)?;
    let journal = session.load_journal()?.ok_or_else(|| {
        anyhow!("the journal is empty: start with `nudge add \"a five-minute step\"`")
    })?;
    let now_ms = wall_ms();
    // A new scope is a new view and a new link: Automerge keeps history, so a view is
    // never narrowed (or widened) in place. The old link stops working.
    let mut replaced = None;
    if let Some(old) = journal
        .shares()
        .into_values()
        .find(|s| s.active(now_ms) && s.name.eq_ignore_ascii_case(name))
    {
        if old.scope == scope {
            bail!(
                "{name:?} has an active {scope} share already; `nudge buddy revoke {name}` first to send a new link"
            );
        }
        revoke_share(session, &api, &old)?;
        replaced = Some(old.scope);
    }
    // The view, filled from the journal as it stands.
    let (catalog, summary, shifts) = projection_input(session)?;
    let mut view = share::create_view(session.device_actor()?, &session.now, scope);
    share::refresh_view(
        &mut view,
        &session.now,
        &ViewInput {
            catalog: &catalog,
            summary: &summary,
            shifts: &shifts,
        },
    )?;
    let view_id = DocumentId::random();
    session.store_new_doc(&view_id, &view)?;
    session.sync_flush()?;
    // On the server before it can be shared.
    let runtime = runtime()?;
    runtime.block_on(async {
        let mut link = Link::connect(&api, timeout).await?;
        link.add(view_id, view.clone()).await?;
        link.until_done(session).await?;
        link.close().await;
        Ok::<_, anyhow::Error>(())
    })?;
    // The server enforces expiry with its clock: count from the real time, not NUDGE_NOW.
    let expires_at_ms = expires_in.map(|e| wall_ms() + e);
    let answer = api.expect(
        "POST",
        "/v1/shares",
        Some(json!({
            "view_doc": view_id.to_string(),
            "scope": scope.as_str(),
            "name": name,
            "expires_ms": expires_at_ms,
        })),
    )?;
    let (Some(id), Some(link)) = (
        answer.get("id").and_then(Value::as_str),
        answer.get("link").and_then(Value::as_str),
    ) else {
        bail!("the server at {} sent something unexpected", api.url);
    };
    let record = Share {
        id: id.to_owned(),
        name: name.to_owned(),
        scope,
        view_doc: view_id.to_string(),
        created_at_ms: now_ms,
        expires_at_ms,
        revoked_at_ms: None,
    };
    session.write(|j, _| {
        j.add_share(&session.now, &record)?;
        Ok(((), Touched::Shifts(Vec::new())))
    })?;
    // The journal's list of shares goes to the other devices at once.
    crate::sync::run(session, &mut Out::default(), timeout)?;
    if let Some(previous) = replaced {
        out.line(format!(
            "{name}'s {previous} link no longer works; this new one shows the {scope} scope."
        ));
    }
    out.line(format!(
        "{name} can follow your progress at the {scope} scope{}. Send them this link (shown once):",
        expires_at_ms
            .map(|e| format!(", until {}", day(e, session)))
            .unwrap_or_default()
    ));
    out.line(link);
    Ok(())
}

pub(crate) fn day(ms: i64, session: &Replica) -> String {
    crate::output::local(ms, &session.now.tz, "%Y-%m-%d")
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the network runtime")
}

/// Revokes a share on the server (gone already is fine) and marks it in the journal;
/// returns how many open connections the server closed.
pub(crate) fn revoke_share(session: &Replica, api: &Api, share: &Share) -> Result<u64> {
    let closed = match api.call("DELETE", &format!("/v1/shares/{}", share.id), None)? {
        Ok(v) => v
            .get("connections_closed")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        Err(r) if r.status == 404 => 0,
        Err(r) => bail!(
            "the server at {} answered {}: {}",
            api.url,
            r.status,
            r.reason
        ),
    };
    session.write(|j, _| {
        j.revoke_share(&session.now, &share.id)?;
        Ok(((), Touched::Shifts(Vec::new())))
    })?;
    Ok(closed)
}

/// The active share views the journal lists, read from the connection's copy of the
/// journal (no document load).
fn active_views(session: &Replica, link: &Link) -> Result<Vec<DocumentId>> {
    let Some(journal) = session.journal_id()?.and_then(|id| link.client.doc(&id)) else {
        return Ok(Vec::new());
    };
    let now_ms = wall_ms();
    Ok(share::shares_in(journal)
        .into_values()
        .filter(|s| s.active(now_ms))
        .filter_map(|s| s.view_doc.parse().ok())
        .collect())
}

/// Refreshes each view the connection holds (and has content) from the journal as stored
/// now; stores the changes and returns them, to be sent.
fn refresh_held(
    session: &Replica,
    link: &Link,
    views: &[DocumentId],
) -> Result<Vec<(DocumentId, Vec<nudge_journal::automerge::Change>)>> {
    let held: Vec<&DocumentId> = views
        .iter()
        .filter(|id| {
            link.client
                .doc(id)
                .is_some_and(|d| !d.get_heads().is_empty())
        })
        .collect();
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let (catalog, summary, shifts) = projection_input(session)?;
    let input = ViewInput {
        catalog: &catalog,
        summary: &summary,
        shifts: &shifts,
    };
    let mut out = Vec::new();
    for id in held {
        let Some(current) = link.client.doc(id) else {
            continue;
        };
        let mut view = current.clone().with_actor(session.device_actor()?);
        let before = view.get_heads();
        if share::refresh_view(&mut view, &session.now, &input)? == 0 {
            continue;
        }
        let changes = view.get_changes(&before);
        session.store_changes(id, &changes)?;
        out.push((*id, changes));
    }
    session.sync_flush()?;
    Ok(out)
}

/// Refreshes every active share view of the journal over `link`: pulls each view, writes
/// what differs, pushes it. Called by `nudge sync` once the journal itself is in sync.
pub(crate) async fn refresh_views(session: &Replica, link: &mut Link) -> Result<usize> {
    let views = active_views(session, link)?;
    if views.is_empty() {
        return Ok(0);
    }
    for id in &views {
        if link.client.doc(id).is_none() {
            let stored = session.load_automerge(id)?.unwrap_or_default();
            link.add(*id, stored).await?;
        }
    }
    link.until_done(session).await?;
    session.sync_flush()?;
    let refreshed = refresh_held(session, link, &views)?;
    let count = refreshed.len();
    for (id, changes) in refreshed {
        let messages = link.client.apply_local(&id, changes)?;
        link.send(messages).await?;
    }
    link.until_done(session).await?;
    session.sync_flush()?;
    crate::view_rebuild::rebuild_views(session, link).await?;
    Ok(count)
}

/// For the watcher: refreshes the active views the connection holds from the journal as
/// stored now, stores the changes, and returns them to send (no waiting on the network
/// while the store is held).
pub(crate) fn refresh_in_link(
    session: &Replica,
    link: &Link,
) -> Result<Vec<(DocumentId, Vec<nudge_journal::automerge::Change>)>> {
    let views = active_views(session, link)?;
    refresh_held(session, link, &views)
}

/// Splits `<base>/view/<token>`.
fn parse_view_link(link: &str) -> Result<(String, String)> {
    let bad = || {
        anyhow!(
            "{link:?} is not a nudge share link (those look like http://host:3030/view/nudge_share_...)"
        )
    };
    let (base, token) = link.trim().rsplit_once("/view/").ok_or_else(bad)?;
    let token = token.trim_end_matches('/');
    if !token.starts_with("nudge_share_") {
        return Err(bad());
    }
    remote::endpoints(base).map_err(|_| bad())?;
    Ok((base.to_owned(), token.to_owned()))
}

/// `nudge follow LINK [--as NAME]`.
pub fn follow(
    session: &Replica,
    out: &mut Out,
    link: &str,
    name: Option<String>,
    timeout: Duration,
) -> Result<()> {
    let (base, token) = parse_view_link(link)?;
    let mut all = follows(session.home())?;
    if let Some((existing, _)) = all.iter().find(|(_, f)| f.token == token) {
        bail!("this device follows that link already, as {existing:?}");
    }
    let name = match name {
        Some(n) if !n.trim().is_empty() => n.trim().to_owned(),
        Some(_) => bail!("--as needs a name"),
        None => (1..)
            .map(|i| {
                if i == 1 {
                    "buddy".to_owned()
                } else {
                    format!("buddy-{i}")
                }
            })
            .find(|n| !all.contains_key(n))
            .expect("some name is free"),
    };
    if all.contains_key(&name) {
        bail!("this device follows someone as {name:?} already; pick another with --as");
    }
    let endpoints = remote::endpoints(&base)?;
    let api = Api::new(
        &Remote {
            url: base.clone(),
            token: token.clone(),
        },
        endpoints.clone(),
        timeout,
    );
    let info = match Api::anonymous(&base, endpoints, timeout).call(
        "GET",
        &format!("/v1/shares/{token}"),
        None,
    )? {
        Ok(v) => v,
        Err(r) => bail!("{}; nothing was changed here", r.reason),
    };
    let (Some(doc), Some(scope)) = (
        info.get("doc").and_then(Value::as_str),
        info.get("scope").and_then(Value::as_str),
    ) else {
        bail!("the server at {base} sent something unexpected");
    };
    let doc_id: DocumentId = doc
        .parse()
        .map_err(|_| anyhow!("the server named a bad document id"))?;
    let record = Follow {
        url: base.clone(),
        token,
        doc: doc.to_owned(),
        scope: scope.to_owned(),
        revoked: false,
    };
    fetch(session, &api, doc_id, timeout)?;
    all.insert(name.clone(), record);
    save_follows(session.home(), &all)?;
    let view = read(session, &doc_id)?;
    out.line(format!(
        "Following {name} ({scope} scope): {}/{} micro shifts this week. `nudge buddy show {name}`; `nudge sync` keeps it current.",
        this_week(&view, session).0,
        view.weekly_goal
    ));
    Ok(())
}

/// Syncs one followed view (read-only: this side never has changes to send).
fn fetch(session: &Replica, api: &Api, doc: DocumentId, timeout: Duration) -> Result<usize> {
    runtime()?.block_on(async {
        session.park()?;
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
        );
        match fetch(session, &api, doc, timeout) {
            Ok(0) => {}
            Ok(n) => out.line(format!(
                "{name}: ↓ {n} {}",
                sync::plural(n, "change", "changes")
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
    session.park()?;
    let Some(moved) =
        current_view(f, timeout).filter(|d| *d != f.doc && d.parse::<DocumentId>().is_ok())
    else {
        return Ok(false);
    };
    if let Ok(old) = f.doc.parse::<DocumentId>() {
        session.remove_doc(&old)?;
    }
    f.doc = moved;
    Ok(true)
}

/// Saves the follow record of `name`.
pub(crate) fn save_follow(home: &Path, name: &str, f: &Follow) -> Result<()> {
    let mut all = follows(home)?;
    all.insert(name.to_owned(), f.clone());
    save_follows(home, &all)
}

/// The view document a followed share shows now, as its server says (`None` if it does
/// not say: offline, revoked or expired, which the fetch that follows reports).
fn current_view(f: &Follow, timeout: Duration) -> Option<String> {
    let endpoints = remote::endpoints(&f.url).ok()?;
    let info = Api::anonymous(&f.url, endpoints, timeout)
        .call("GET", &format!("/v1/shares/{}", f.token), None)
        .ok()?
        .ok()?;
    info.get("doc").and_then(Value::as_str).map(str::to_owned)
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

fn read(session: &Replica, doc: &DocumentId) -> Result<ShareView> {
    let stored: Automerge = session
        .load_automerge(doc)?
        .ok_or_else(|| anyhow!("nothing of that share is stored here yet; run `nudge sync`"))?;
    Ok(share::read_view(&stored)?)
}

/// This week's (done, days) of a view, in the owner's week.
fn this_week(view: &ShareView, session: &Replica) -> (u32, nudge_journal::Week) {
    let catalog = Catalog {
        settings: Settings {
            weekly_goal: view.weekly_goal,
            week_start: view.week_start.unwrap_or(Settings::default().week_start),
        },
        ..Catalog::default()
    };
    let week = nudge_journal::week(&view.summary(), &catalog, session.now.today());
    (week.done, week)
}

/// `nudge following`.
pub fn following(session: &Replica, out: &mut Out, as_json: bool) -> Result<()> {
    let all = follows(session.home())?;
    let mut rows = Vec::new();
    for (name, f) in &all {
        let view = f.doc.parse().ok().and_then(|d| read(session, &d).ok());
        rows.push((name, f, view));
    }
    if as_json {
        let list: Vec<Value> = rows
            .iter()
            .map(|(name, f, view)| {
                json!({
                    "name": name, "url": f.url, "scope": f.scope, "revoked": f.revoked,
                    "updated_at": view.as_ref().and_then(|v| v.updated_at_ms).map(nudge_journal::when::rfc3339),
                })
            })
            .collect();
        return out.json(&list);
    }
    if rows.is_empty() {
        crate::output::notice("You follow no one yet: nudge follow LINK");
    }
    for (name, f, view) in rows {
        let state = if f.revoked { " (stopped sharing)" } else { "" };
        let week = view
            .as_ref()
            .map(|v| format!("{}/{} this week", this_week(v, session).0, v.weekly_goal))
            .unwrap_or_else(|| "not synced yet".into());
        out.line(format!("{name}  {}  {week}{state}", paint(TAG, &f.scope)));
    }
    Ok(())
}

/// `nudge buddy show NAME`.
pub fn show(session: &Replica, out: &mut Out, name: &str, as_json: bool) -> Result<()> {
    let all = follows(session.home())?;
    let f = all.get(name).ok_or_else(|| {
        anyhow!("this device follows no one called {name:?}; `nudge following` lists them")
    })?;
    let doc: DocumentId = f
        .doc
        .parse()
        .map_err(|_| anyhow!("{} is damaged", follows_path(session.home()).display()))?;
    let view = read(session, &doc)?;
    let (done, week) = this_week(&view, session);
    let streak = nudge_journal::streak(&view.summary(), session.now.today());
    if as_json {
        return out.json(&json!({
            "name": name,
            "scope": view.scope,
            "revoked": f.revoked,
            "week": week,
            "streak": streak,
            "ideas_by_status": view.ideas_by_status,
            "doors_closed": view.doors_closed,
            "days": view.days,
            "ideas": view.ideas,
            "shifts": view.shifts,
            "updated_at": view.updated_at_ms.map(nudge_journal::when::rfc3339),
        }));
    }
    let headline = format!("{name}: {done}/{} micro shifts this week", view.weekly_goal);
    out.line(if done >= view.weekly_goal {
        paint(GOOD, headline)
    } else {
        headline
    });
    for d in &week.days {
        let future = d.date > session.now.today();
        out.line(format!(
            "  {} {:<3} {}",
            d.date.strftime("%a %d"),
            if future {
                String::new()
            } else {
                d.done.to_string()
            },
            paint(GOOD, "█".repeat(d.done.min(40) as usize))
        ));
    }
    out.line(format!(
        "streak: {streak} day{}",
        if streak == 1 { "" } else { "s" }
    ));
    let statuses: Vec<String> = view
        .ideas_by_status
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    if !statuses.is_empty() {
        out.line(format!("ideas: {}", statuses.join(", ")));
    }
    if view.doors_closed > 0 {
        out.line(format!(
            "{} door{} closed",
            view.doors_closed,
            if view.doors_closed == 1 { "" } else { "s" }
        ));
    }
    for idea in &view.ideas {
        out.line(format!(
            "  {} {}",
            paint(TAG, format!("+{}", idea.title)),
            paint(DIM, &idea.status)
        ));
    }
    if !view.shifts.is_empty() {
        out.line("recent:");
    }
    for s in view.shifts.iter().take(10) {
        let mark = if s.status == "done" { "[x]" } else { "[ ]" };
        out.line(format!(
            "  {mark} {}{}",
            s.text,
            s.done_date
                .as_ref()
                .map(|d| format!("  {}", paint(DIM, d)))
                .unwrap_or_default()
        ));
        if let Some(y) = &s.little_yes {
            out.line(format!("      {}", paint(DIM, format!("little yes: {y}"))));
        }
    }
    if f.revoked {
        out.line(paint(
            DIM,
            "(they stopped sharing; this is what you last saw)",
        ));
    }
    Ok(())
}

/// `nudge unfollow NAME`.
pub fn unfollow(session: &Replica, out: &mut Out, name: &str) -> Result<()> {
    let mut all = follows(session.home())?;
    let f = all
        .remove(name)
        .ok_or_else(|| anyhow!("this device follows no one called {name:?}"))?;
    if let Ok(doc) = f.doc.parse::<DocumentId>() {
        session.remove_doc(&doc)?;
        session.sync_flush()?;
    }
    save_follows(session.home(), &all)?;
    out.line(format!(
        "No longer following {name}; their view is removed from this device."
    ));
    Ok(())
}
