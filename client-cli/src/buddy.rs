//! The accountability buddy, both sides (docs/sharing.md).
//!
//! Owner: `nudge buddy invite|list|revoke`: a share view document (a projection of the
//! journal, `nudge_journal::share`) is made, pushed, registered with the server for a share
//! token, and listed in the journal; every `nudge sync` refreshes active views.
//!
//! Buddy: `nudge follow|following|unfollow`, `nudge buddy show`: a read-only replica of the
//! view in this device's store, its link in `<home>/follows.json` (mode 0600).

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use nudge_journal::Scope;
use nudge_journal::automerge::Automerge;
use nudge_journal::share::{self, Share, ShareView, ViewInput};
use nudge_store::DocumentId;
use serde_json::{Value, json};

use crate::api::Api;
use crate::output::{DIM, GOOD, Out, TAG, paint};
use crate::remote::{self, Remote};
use crate::sync::Link;
use crate::sync::follows::{Follow, fetch, follows, follows_path, save_follows};
use crate::sync::views::{connected, projection_input, runtime, wall_ms};
use nudge_replica::{Replica, Touched};

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
    )
    .letting_go(session);
    let info = match Api::anonymous(&base, endpoints, timeout)
        .letting_go(session)
        .call("GET", &format!("/v1/shares/{token}"), None)?
    {
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

fn read(session: &Replica, doc: &DocumentId) -> Result<ShareView> {
    let stored: Automerge = session
        .load_automerge(doc)?
        .ok_or_else(|| anyhow!("nothing of that share is stored here yet; run `nudge sync`"))?;
    Ok(share::read_view(&stored)?)
}

/// This week's (done, days) of a view, in the owner's week.
fn this_week(view: &ShareView, session: &Replica) -> (u32, nudge_journal::Week) {
    let week = nudge_journal::week(
        &view.summary(),
        &view.catalog(),
        owners_today(view, session),
    );
    (week.done, week)
}

/// Today where the owner is (their device writes its time zone into the view).
fn owners_today(view: &ShareView, session: &Replica) -> jiff::civil::Date {
    view.today(session.now.ts, &session.now.tz)
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
    let today = owners_today(&view, session);
    let streak = nudge_journal::streak(&view.summary(), &view.paused, today);
    let review = view.review(today, &session.now.tz);
    let (done, week) = (review.week.done, &review.week);
    if as_json {
        return out.json(&json!({
            "review": review,
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
    out.line(crate::ui::headline(
        done,
        view.weekly_goal,
        format!("{name}: {done}/{} micro shifts this week", view.weekly_goal),
    ));
    for row in crate::ui::day_rows(&week.days, today) {
        out.line(row);
    }
    out.line(crate::ui::streak(streak));
    out.line(format!(
        "{}; {}",
        nudge_journal::versus(review.week.done, review.before.done),
        review.pace.sentence()
    ));
    for door in &review.doors_closed {
        let note = door
            .note
            .as_deref()
            .map(|n| format!(": {n}"))
            .unwrap_or_default();
        out.line(format!("door closed this week: +{}{note}", door.title));
    }
    for yes in &review.little_yeses {
        out.line(format!(
            "little yes ({}): {}",
            yes.date,
            paint(GOOD, &yes.text)
        ));
    }
    let statuses: Vec<String> = view
        .ideas_by_status
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    if !statuses.is_empty() {
        out.line(format!("ideas: {}", statuses.join(", ")));
    }
    if let Some(line) = crate::ui::doors_closed(view.doors_closed as usize) {
        out.line(line);
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
