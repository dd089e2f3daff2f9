//! `nudge sync`: one exchange with the server, until every document holds the heads the
//! other side reported.
//!
//! 1. Ask the server which document is the account's journal (`GET /v1/journal`).
//! 2. If it has none, push this device's journal and its contacts document, then register
//!    it (`PUT /v1/journal`; the first device to register wins, and a loser adopts).
//! 3. If it is this device's journal, sync it and its contacts document.
//! 4. If it is another, fetch it and its contacts document, carry this device's own
//!    records over into it as new changes (`nudge_journal::Journal::adopt`), switch to it,
//!    and push the carried records.
//!
//! Everything received is stored and flushed before the command reports success. Exit
//! codes: 3 the server cannot be reached (or stopped answering), 4 it refused the token.
//!
//! `link.rs` is the connection; `views.rs` and `view_rebuild.rs` the owner's share views,
//! refreshed after the journal; `follows.rs` the shares this device follows. `buddy.rs`
//! (the commands) uses them; nothing here uses it.

pub(crate) mod follows;
mod link;
pub(crate) mod view_rebuild;
pub(crate) mod views;

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nudge_journal::automerge::Automerge;
use nudge_journal::{Carried, Contacts, Journal};
use nudge_protocol::Moved;
use nudge_store::DocumentId;

use crate::api::Api;
use crate::output::{Out, paint, plural};
use crate::remote;
use nudge_replica::Replica;

pub(crate) use link::{Link, NO_PROGRESS};

/// What a sync did.
#[derive(Default)]
pub(crate) struct Report {
    moved: Moved,
    carried: Option<Carried>,
    adopted: bool,
}

fn add_moved(total: &mut Moved, m: Moved) {
    total.down += m.down;
    total.up += m.up;
}

/// The contacts document a journal names (read in place: no copy of the document).
pub(crate) fn contacts_id(doc: &Automerge) -> Result<Option<DocumentId>> {
    use nudge_journal::automerge::{ObjType, ROOT, ReadDoc, Value};
    Ok(match doc.get(ROOT, "contacts_doc")? {
        Some((Value::Scalar(s), _)) => s.as_str().and_then(|t| t.parse().ok()),
        Some((Value::Object(ObjType::Text), id)) => doc.text(&id)?.parse().ok(),
        _ => None,
    })
}

/// Where a sync starts: the server's routes and the account's journal, or `None` when
/// there is nothing to sync (no journal here or there).
pub(crate) fn prepare(
    session: &Replica,
    timeout: Duration,
) -> Result<Option<(Api<'_>, Option<DocumentId>)>> {
    let Some(remote) = remote::load(session.home())? else {
        bail!(
            "no remote is set: run `nudge remote add URL` with the account's token in NUDGE_TOKEN"
        );
    };
    let endpoints = remote::endpoints(&remote.url)?;
    let api = Api::new(&remote, endpoints, timeout).letting_go(session);
    let local = session.journal_id()?;
    let account_journal = api.journal()?;
    if account_journal.is_none() && local.is_none() {
        return Ok(None);
    }
    Ok(Some((api, account_journal)))
}

/// `nudge sync`: this device's journal (and its share views) with its server, then the
/// shares it follows.
pub fn run(session: &Replica, out: &mut Out, timeout: Duration) -> Result<()> {
    let follows = crate::sync::follows::follows(session.home())?;
    if remote::load(session.home())?.is_none() && !follows.is_empty() {
        return crate::sync::follows::sync_follows(session, out, timeout);
    }
    // Counted before the store is let go for the network (one opening less).
    let shifts_before = shift_count(session)?;
    let Some((api, account_journal)) = prepare(session, timeout)? else {
        out.line("Nothing to sync yet: the journal is empty and the account has none. Add a shift first.");
        return crate::sync::follows::sync_follows(session, out, timeout);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the network runtime")?;
    let (report, moves) = runtime.block_on(crate::actor_moves::retrying(session, async || {
        let (report, mut link) = exchange(session, &api, account_journal, timeout).await?;
        crate::sync::views::refresh_views(session, &mut link).await?;
        link.close().await;
        Ok::<_, anyhow::Error>(report)
    }))?;
    let shifts_after = shift_count(session)?;
    for line in report_lines(
        &api.url,
        &report,
        shifts_after.saturating_sub(shifts_before),
    ) {
        out.line(line);
    }
    if let Some(line) = crate::actor_moves::report_line(&moves) {
        out.line(line);
    }
    crate::sync::follows::sync_follows(session, out, timeout)
}

/// What a sync says it did.
pub(crate) fn report_lines(url: &str, report: &Report, new_shifts: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = format!("Synced with {url}: ");
    if report.moved.down == 0 && report.moved.up == 0 {
        line.push_str("up to date");
    } else {
        line.push_str(&format!(
            "↓ {} {}, ↑ {} {}",
            report.moved.down,
            plural(report.moved.down, "change", "changes"),
            report.moved.up,
            plural(report.moved.up, "change", "changes"),
        ));
        if new_shifts > 0 && report.carried.is_none() {
            line.push_str(&format!(
                " ({new_shifts} new {})",
                plural(new_shifts, "shift", "shifts")
            ));
        }
    }
    lines.push(line);
    if let Some(carried) = report.carried.filter(|c| !c.is_empty()) {
        lines.push(format!(
            "Joined the account's journal; carried over this device's {} {}, {} {} and {} {}.",
            carried.shifts,
            plural(carried.shifts, "shift", "shifts"),
            carried.ideas,
            plural(carried.ideas, "idea", "ideas"),
            carried.people,
            plural(carried.people, "person", "people"),
        ));
    } else if report.adopted {
        lines.push(paint(crate::output::GOOD, "Joined the account's journal."));
    }
    lines
}

fn shift_count(session: &Replica) -> Result<usize> {
    Ok(session.shift_ids_with_prefix("")?.len())
}

/// One full sync over a new connection; returns what moved and the connection, still open.
pub(crate) async fn exchange(
    session: &Replica,
    api: &Api<'_>,
    account_journal: Option<DocumentId>,
    timeout: Duration,
) -> Result<(Report, Link)> {
    let mut link = Link::connect(api, timeout).await?;
    // What other commands write from here on, while the store is let go, goes too (below).
    let mut seen = session.writes_seen()?;
    let mut report = Report::default();
    // This device's journal, pushed before another device's won the registration.
    let mut pushed = Moved::default();
    let local = session.journal_id()?;
    let target = match account_journal {
        // The account has no journal: this device's becomes it, once it is on the server.
        None => {
            let Some(local) = local else {
                bail!("the journal is empty");
            };
            sync_pair(session, &mut link, local).await?;
            pushed = moved_pair(&link, local)?;
            api.register(&local)?
        }
        Some(journal) => {
            if Some(journal) == local {
                sync_pair(session, &mut link, journal).await?;
            }
            journal
        }
    };
    if Some(target) != session.journal_id()? {
        report.adopted = true;
        report.carried = adopt(session, &mut link, target).await?;
    }
    send_local_writes(session, &mut link, &mut seen).await?;
    // What the journal synced last moved, counted once it is in sync (the writes sent
    // just above included).
    report.moved = moved_pair(&link, target)?;
    if Some(target) != local {
        add_moved(&mut report.moved, pushed);
    }
    // From the last look at the store to here, it is held: nothing is marked synced that
    // the server did not get.
    session.commit_sync()?;
    for id in documents(session, &link)? {
        session.mark_synced(&id)?;
    }
    session.sync_flush()?;
    // The link holds the journal exactly as stored now: derive the cache from it rather
    // than load the whole journal again from the store.
    if let Some(id) = session.journal_id()?
        && let Some(doc) = link.client.doc(&id)
    {
        session.refresh_cache_from(doc)?;
    }
    Ok((report, link))
}

/// Sends what other commands stored while the sync had let go of the store, until a look
/// at the store (held) finds no write since the last (`seen`, the `last-write` stamp).
async fn send_local_writes(session: &Replica, link: &mut Link, seen: &mut String) -> Result<()> {
    loop {
        let now = session.writes_seen()?;
        if now == *seen {
            return Ok(());
        }
        *seen = now;
        // The journal first: a new contacts document is found through it.
        let mut next = 0;
        while let Some(id) = documents(session, link)?.get(next).copied() {
            next += 1;
            let Some(stored) = session.load_automerge(&id)? else {
                continue;
            };
            let Some(held) = link.client.doc(&id) else {
                link.add(id, stored).await?;
                continue;
            };
            let missing: Vec<_> = stored
                .get_changes(&[])
                .into_iter()
                .filter(|c| {
                    nudge_journal::automerge::ReadDoc::get_change_by_hash(held, &c.hash()).is_none()
                })
                .collect();
            if !missing.is_empty() {
                let messages = link.client.apply_local(&id, missing)?;
                link.send(messages).await?;
            }
        }
        link.until_done(session).await?;
        session.sync_flush()?;
    }
}

/// The journal and its contacts document (read from the link's copy when it has one).
fn documents(session: &Replica, link: &Link) -> Result<Vec<DocumentId>> {
    let Some(id) = session.journal_id()? else {
        return Ok(Vec::new());
    };
    let mut ids = vec![id];
    let contacts = match link.client.doc(&id) {
        Some(doc) => contacts_id(doc)?,
        None => match session.load_automerge(&id)? {
            Some(doc) => contacts_id(&doc)?,
            None => None,
        },
    };
    ids.extend(contacts);
    Ok(ids)
}

/// Syncs a journal this device has, and then its contacts document.
async fn sync_pair(session: &Replica, link: &mut Link, journal: DocumentId) -> Result<()> {
    let doc = session.load_automerge(&journal)?.ok_or_else(|| {
        anyhow!(
            "the journal {journal} is missing from this device; restore the folder from a backup"
        )
    })?;
    let contacts = contacts_id(&doc)?;
    link.add(journal, doc).await?;
    if let Some(contacts) = contacts {
        let doc = session.load_automerge(&contacts)?.unwrap_or_default();
        link.add(contacts, doc).await?;
    }
    link.until_done(session).await?;
    session.sync_flush()?;
    // The journal may have arrived pointing at a contacts document not synced yet.
    if let Some(doc) = link.client.doc(&journal)
        && let Some(now) = contacts_id(doc)?
        && Some(now) != contacts
    {
        let doc = session.load_automerge(&now)?.unwrap_or_default();
        link.add(now, doc).await?;
        link.until_done(session).await?;
        session.sync_flush()?;
    }
    Ok(())
}

fn moved_pair(link: &Link, journal: DocumentId) -> Result<Moved> {
    let mut total = link.client.moved(&journal);
    if let Some(doc) = link.client.doc(&journal)
        && let Some(contacts) = contacts_id(doc)?
    {
        add_moved(&mut total, link.client.moved(&contacts));
    }
    Ok(total)
}

/// Fetches the account's journal `target`, carries this device's records over into it,
/// makes it this device's journal and pushes the carried records.
async fn adopt(session: &Replica, link: &mut Link, target: DocumentId) -> Result<Option<Carried>> {
    let existing = session.load_automerge(&target)?.unwrap_or_default();
    link.add(target, existing).await?;
    link.until_done(session).await?;
    if link.client.is_unavailable(&target) {
        bail!(
            "the account's journal {target} is not on the server yet; sync the device that created it, then run `nudge sync` here again"
        );
    }
    session.sync_flush()?;
    let fetched = link
        .client
        .doc(&target)
        .cloned()
        .ok_or_else(|| anyhow!("the account's journal did not arrive"))?;
    let mut journal = Journal::from_doc(fetched.with_actor(session.device_actor()?))
        .map_err(|e| anyhow!("the account's journal on the server is not usable here: {e}"))?;
    let contacts_target = contacts_id(journal.doc())?;
    if let Some(id) = contacts_target {
        let existing = session.load_automerge(&id)?.unwrap_or_default();
        link.add(id, existing).await?;
        link.until_done(session).await?;
        session.sync_flush()?;
    }
    // This device's own journal, if it has one with records, is carried over.
    let mut carried = None;
    if let Some(own) = session.load_journal()? {
        let before = journal.doc().get_heads();
        let count = journal.adopt(&session.now, &own)?;
        let mut contacts_count = 0;
        let journal_changes = journal.doc().get_changes(&before);
        let mut contacts_changes = Vec::new();
        if let (Some(cid), Some((_, own_contacts))) =
            (contacts_target, session.load_contacts(&own.catalog()?)?)
            && let Some(doc) = link.client.doc(&cid)
            && !link.client.is_unavailable(&cid)
        {
            let mut theirs = Contacts::load(&doc.save(), session.device_actor()?)?;
            let before = theirs.doc().get_heads();
            contacts_count = theirs.adopt(&session.now, &own_contacts)?;
            contacts_changes = theirs.doc().get_changes(&before);
            session.store_changes(&cid, &contacts_changes)?;
        }
        session.store_changes(&target, &journal_changes)?;
        session.sync_flush()?;
        session.switch_journal(&target)?;
        let messages = link.client.apply_local(&target, journal_changes)?;
        link.send(messages).await?;
        if let Some(cid) = contacts_target {
            let messages = link.client.apply_local(&cid, contacts_changes)?;
            link.send(messages).await?;
        }
        link.until_done(session).await?;
        carried = Some(Carried {
            contacts: contacts_count,
            ..count
        });
    } else {
        session.switch_journal(&target)?;
    }
    Ok(carried)
}
