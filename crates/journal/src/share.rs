//! Share views: what an accountability buddy sees. A view is its own Automerge document, a
//! projection of the journal at a scope, refreshed by the owner's devices; the buddy's
//! token can read that document and nothing else.
//!
//! | scope | the view holds |
//! |---|---|
//! | `counts` | goal, week start, shifts made per local day, paused days, ideas by status, doors closed, the owner's time zone and display name |
//! | `titles` | and the latest shifts (text, status, dates, ideas) and the ideas (title, status, dates) |
//! | `full` | and notes, little yeses, why an idea, what a closed door taught |
//!
//! Never people: not their names, not their contact details, at any scope.
//!
//! Refreshing writes only the fields that differ from what the view holds, keyed by id,
//! after the device has pulled both the journal and the view: two owner devices refreshing
//! at once write the same values and converge, and a device cannot roll back what another
//! wrote from a newer journal. Changing a share's scope means a new view document (and
//! token): Automerge keeps history, so narrowing a view in place would keep what it showed.

use std::collections::{BTreeMap, BTreeSet};

use automerge::hydrate::Value as HValue;
use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ActorId, Automerge, ObjId, ObjType, ROOT, ReadDoc, ScalarValue};

use crate::catalog::Catalog;
use crate::journal::{Journal, obj_at, secs};
use crate::model::{IdeaStatus, Scope, Settings, Shift, ShiftStatus, WeekStart};
use crate::pause::Pause;
use crate::summary::Summary;
use crate::values::{int, non_empty, parsed, string, time_ms};
use crate::{Error, Now};
use jiff::civil::Date;

mod history;
mod read;
mod review;

pub use history::{fresh_view, holds_forgotten_text};
use read::hydrate;
pub use read::{born_as_view, read_view};
pub use review::ViewReview;

/// What marks a document as a share view.
pub const VIEW_KIND: &str = "nudge-share";
/// How many of the latest shifts a `titles` or `full` view holds.
pub const RECENT_SHIFTS: usize = 200;

/// A share, as the journal lists it (never its token).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Share {
    /// The server's id for it (the public part of its token).
    pub id: String,
    /// The buddy's name.
    pub name: String,
    /// What it shows.
    pub scope: Scope,
    /// The view document's id.
    pub view_doc: String,
    /// When it was made.
    pub created_at_ms: i64,
    /// When its link stops working, if ever.
    pub expires_at_ms: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
}

impl Share {
    /// Whether its view should still be refreshed at `now_ms`.
    pub fn active(&self, now_ms: i64) -> bool {
        self.revoked_at_ms.is_none() && self.expires_at_ms.is_none_or(|e| e > now_ms)
    }
}

/// A shift as a view holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ViewShift {
    /// Its id.
    pub id: String,
    /// Its text.
    pub text: String,
    /// `planned`, `done`, `skipped`, `dropped`.
    pub status: String,
    /// When it was added (ms).
    pub created_at_ms: i64,
    /// The local date it was made, if it was.
    pub done_date: Option<String>,
    /// Ids of the ideas it serves.
    pub ideas: Vec<String>,
    /// Its note (`full` only).
    pub note: Option<String>,
    /// What it sparked (`full` only).
    pub little_yes: Option<String>,
}

/// An idea as a view holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ViewIdea {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// `exploring`, `parked`, `pursuing`, `dead_end`.
    pub status: String,
    /// Why it is worth a look (`full` only).
    pub why: Option<String>,
    /// What closing it taught (`full` only).
    pub closing_note: Option<String>,
    /// When it was parked or closed (ms).
    pub closed_at_ms: Option<i64>,
}

/// A share view, read.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ShareView {
    /// What it shows.
    pub scope: Option<Scope>,
    /// Micro shifts a week to aim for.
    pub weekly_goal: u32,
    /// First day of a week.
    pub week_start: Option<WeekStart>,
    /// Shifts made per local date (`YYYY-MM-DD`).
    pub days: BTreeMap<String, u32>,
    /// Ideas per status.
    pub ideas_by_status: BTreeMap<String, u32>,
    /// Ideas closed as dead ends.
    pub doors_closed: u32,
    /// The latest shifts, newest first (`titles` and `full`).
    pub shifts: Vec<ViewShift>,
    /// The ideas (`titles` and `full`).
    pub ideas: Vec<ViewIdea>,
    /// When an owner device last refreshed it (ms).
    pub updated_at_ms: Option<i64>,
    /// The owner's planned days off.
    pub paused: BTreeSet<Date>,
    /// The owner device's time zone (IANA name or offset), which "today" follows.
    pub time_zone: Option<String>,
    /// How the owner is named, if they set it (`nudge config set display_name`).
    pub display_name: Option<String>,
}

/// A new, empty view document at `scope`; its root maps are made here, once.
pub fn create_view(actor: ActorId, now: &Now, scope: Scope) -> Automerge {
    let mut doc = Automerge::new().with_actor(actor);
    let mut tx = doc.transaction();
    let made: Result<(), automerge::AutomergeError> = (|| {
        tx.put(ROOT, "kind", VIEW_KIND)?;
        tx.put(ROOT, "schema_version", 1i64)?;
        tx.put(ROOT, "scope", scope.as_str())?;
        for key in ["days", "ideas_by_status", "shifts", "ideas"] {
            tx.put_object(ROOT, key, ObjType::Map)?;
        }
        Ok(())
    })();
    made.expect("writing to a new document cannot fail");
    tx.commit_with(
        CommitOptions::default()
            .with_message(format!("Create a {scope} share view"))
            .with_time(secs(now)),
    );
    doc
}

/// Everything a refresh needs from the journal.
pub struct ViewInput<'a> {
    /// Settings and ideas.
    pub catalog: &'a Catalog,
    /// Per-day counts.
    pub summary: &'a Summary,
    /// Every shift (only the latest are used).
    pub shifts: &'a [Shift],
}

/// Sets `key` of `obj` to `value` unless it holds it already. Returns whether it wrote.
fn set(
    tx: &mut Transaction<'_>,
    obj: &ObjId,
    key: &str,
    value: ScalarValue,
) -> Result<bool, Error> {
    let same = matches!(tx.get(obj, key)?, Some((automerge::Value::Scalar(current), _)) if *current == value);
    if !same {
        tx.put(obj, key, value)?;
    }
    Ok(!same)
}

/// Sets an optional string: `None` deletes it.
fn set_opt(
    tx: &mut Transaction<'_>,
    obj: &ObjId,
    key: &str,
    value: Option<&str>,
) -> Result<bool, Error> {
    match value {
        Some(v) => set(tx, obj, key, ScalarValue::Str(v.into())),
        None if tx.get(obj, key)?.is_some() => {
            tx.delete(obj, key)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The map `key` under `parent`, made if missing (only for entries keyed by id, never roots).
fn child_map(tx: &mut Transaction<'_>, parent: &ObjId, key: &str) -> Result<ObjId, Error> {
    match tx.get(parent, key)? {
        Some((automerge::Value::Object(ObjType::Map), id)) => Ok(id),
        _ => Ok(tx.put_object(parent, key, ObjType::Map)?),
    }
}

/// Makes the map `obj` hold exactly `wanted`, writing only the differences. Counts are
/// signed integers: automerge-repo's JavaScript reads unsigned ones as BigInt, which
/// `JSON.stringify` refuses.
fn sync_counts(
    tx: &mut Transaction<'_>,
    obj: &ObjId,
    wanted: &BTreeMap<String, u32>,
) -> Result<usize, Error> {
    let mut writes = 0;
    for key in tx.keys(obj).collect::<Vec<_>>() {
        if !wanted.contains_key(&key) {
            tx.delete(obj, key.as_str())?;
            writes += 1;
        }
    }
    for (key, n) in wanted {
        writes += usize::from(set(tx, obj, key, ScalarValue::Int(i64::from(*n)))?);
    }
    Ok(writes)
}

fn root_map(view: &impl ReadDoc, key: &str) -> Result<ObjId, Error> {
    obj_at(view, &ROOT, key)
        .ok_or_else(|| Error::NotAJournal(format!("this share view has no {key:?} map")))
}

/// The latest shifts: by when they were made, else added; newest first; at most `n`.
fn latest(shifts: &[Shift], n: usize) -> Vec<&Shift> {
    let mut all: Vec<&Shift> = shifts.iter().collect();
    all.sort_by(|a, b| b.when_ms().cmp(&a.when_ms()).then_with(|| a.id.cmp(&b.id)));
    all.truncate(n);
    all
}

/// Brings a view up to date with the journal, as one change (none if nothing differs).
/// Returns how many fields it wrote.
pub fn refresh_view(
    view: &mut Automerge,
    now: &Now,
    input: &ViewInput<'_>,
) -> Result<usize, Error> {
    let scope: Scope = match view.get(ROOT, "scope")? {
        Some((automerge::Value::Scalar(s), _)) => s
            .as_str()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| Error::NotAJournal("this share view has no scope".into()))?,
        _ => return Err(Error::NotAJournal("this share view has no scope".into())),
    };
    let (days, by_status, shifts_obj, ideas_obj) = (
        root_map(view, "days")?,
        root_map(view, "ideas_by_status")?,
        root_map(view, "shifts")?,
        root_map(view, "ideas")?,
    );
    let catalog = input.catalog;
    let mut tx = view.transaction();
    let result = (|| -> Result<usize, Error> {
        let mut writes = 0;
        let settings = &catalog.settings;
        writes += usize::from(set(
            &mut tx,
            &ROOT,
            "weekly_goal",
            ScalarValue::Int(i64::from(settings.weekly_goal)),
        )?);
        writes += usize::from(set(
            &mut tx,
            &ROOT,
            "week_start",
            ScalarValue::Str(settings.week_start.as_str().into()),
        )?);
        writes += usize::from(set_opt(
            &mut tx,
            &ROOT,
            "display_name",
            settings.display_name.as_deref(),
        )?);
        writes += usize::from(set(
            &mut tx,
            &ROOT,
            "time_zone",
            ScalarValue::Str(now.tz_name().into()),
        )?);
        // Paused days from 12 weeks back on, as one value: every owner device writes the
        // same from the same journal.
        let since = now.today().saturating_sub(jiff::ToSpan::days(84));
        let paused: Vec<String> = catalog
            .paused_days()
            .range(since..)
            .map(ToString::to_string)
            .collect();
        writes += usize::from(set(
            &mut tx,
            &ROOT,
            "paused",
            ScalarValue::Str(paused.join(",").into()),
        )?);
        let made: BTreeMap<String, u32> = input
            .summary
            .day_counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(d, n)| (d.clone(), *n))
            .collect();
        writes += sync_counts(&mut tx, &days, &made)?;
        let mut statuses: BTreeMap<String, u32> = BTreeMap::new();
        for idea in catalog.canonical_ideas() {
            *statuses.entry(idea.status.as_str().to_owned()).or_default() += 1;
        }
        let doors = statuses
            .get(IdeaStatus::DeadEnd.as_str())
            .copied()
            .unwrap_or(0);
        writes += sync_counts(&mut tx, &by_status, &statuses)?;
        writes += usize::from(set(
            &mut tx,
            &ROOT,
            "doors_closed",
            ScalarValue::Int(i64::from(doors)),
        )?);
        if scope == Scope::Counts {
            return Ok(writes);
        }
        let full = scope == Scope::Full;
        // Ideas: all of them, merged by name as readers merge them.
        let ideas: BTreeMap<&str, _> = catalog
            .canonical_ideas()
            .map(|i| (i.id.as_str(), i))
            .collect();
        for id in tx.keys(&ideas_obj).collect::<Vec<_>>() {
            if !ideas.contains_key(id.as_str()) {
                tx.delete(&ideas_obj, id.as_str())?;
                writes += 1;
            }
        }
        for (id, idea) in &ideas {
            let obj = child_map(&mut tx, &ideas_obj, id)?;
            writes += usize::from(set(
                &mut tx,
                &obj,
                "title",
                ScalarValue::Str(idea.title.as_str().into()),
            )?);
            writes += usize::from(set(
                &mut tx,
                &obj,
                "status",
                ScalarValue::Str(idea.status.as_str().into()),
            )?);
            writes += usize::from(set(
                &mut tx,
                &obj,
                "created_at",
                ScalarValue::Timestamp(idea.created_at_ms),
            )?);
            let closed = idea.closed_at_ms.map(ScalarValue::Timestamp);
            match closed {
                Some(c) => writes += usize::from(set(&mut tx, &obj, "closed_at", c)?),
                None => writes += usize::from(set_opt(&mut tx, &obj, "closed_at", None)?),
            }
            writes += usize::from(set_opt(
                &mut tx,
                &obj,
                "why",
                idea.why.as_deref().filter(|_| full),
            )?);
            writes += usize::from(set_opt(
                &mut tx,
                &obj,
                "closing_note",
                idea.closing_note.as_deref().filter(|_| full),
            )?);
        }
        // Shifts: the latest ones.
        let wanted = latest(input.shifts, RECENT_SHIFTS);
        let wanted_ids: std::collections::BTreeSet<&str> =
            wanted.iter().map(|s| s.id.as_str()).collect();
        for id in tx.keys(&shifts_obj).collect::<Vec<_>>() {
            if !wanted_ids.contains(id.as_str()) {
                tx.delete(&shifts_obj, id.as_str())?;
                writes += 1;
            }
        }
        for shift in wanted {
            let obj = child_map(&mut tx, &shifts_obj, &shift.id)?;
            writes += usize::from(set(
                &mut tx,
                &obj,
                "text",
                ScalarValue::Str(shift.text.as_str().into()),
            )?);
            writes += usize::from(set(
                &mut tx,
                &obj,
                "status",
                ScalarValue::Str(shift.status.as_str().into()),
            )?);
            writes += usize::from(set(
                &mut tx,
                &obj,
                "created_at",
                ScalarValue::Timestamp(shift.created_at_ms),
            )?);
            let done_date = shift
                .done
                .as_ref()
                .filter(|_| shift.status == ShiftStatus::Done)
                .map(|d| d.date.as_str());
            writes += usize::from(set_opt(&mut tx, &obj, "done_date", done_date)?);
            let tags: Vec<String> = {
                let mut t: Vec<String> = shift
                    .ideas
                    .iter()
                    .map(|i| catalog.idea_id(i).to_owned())
                    .collect();
                t.sort();
                t.dedup();
                t
            };
            writes += usize::from(set(
                &mut tx,
                &obj,
                "ideas",
                ScalarValue::Str(tags.join(",").into()),
            )?);
            writes += usize::from(set_opt(
                &mut tx,
                &obj,
                "note",
                shift.note.as_deref().filter(|_| full),
            )?);
            writes += usize::from(set_opt(
                &mut tx,
                &obj,
                "little_yes",
                shift.little_yes.as_deref().filter(|_| full),
            )?);
        }
        Ok(writes)
    })();
    match result {
        Ok(0) => {
            tx.rollback();
            Ok(0)
        }
        Ok(writes) => {
            tx.put(ROOT, "updated_at", ScalarValue::Timestamp(now.ms()))?;
            tx.commit_with(
                CommitOptions::default()
                    .with_message(format!("Refresh the share view ({writes} fields)"))
                    .with_time(secs(now)),
            );
            Ok(writes)
        }
        Err(e) => {
            tx.rollback();
            Err(e)
        }
    }
}

impl Journal {
    /// Lists a share in the journal (never its token).
    pub fn add_share(&mut self, now: &Now, share: &Share) -> Result<(), Error> {
        let share = share.clone();
        self.change(
            now,
            |_| format!("Share with {} ({})", share.name, share.scope),
            |tx, _| {
                let shares = match obj_at(tx, &ROOT, "shares") {
                    Some(obj) => obj,
                    None => return Err(Error::NotAJournal("it has no \"shares\" map".into())),
                };
                let obj = tx.put_object(&shares, share.id.as_str(), ObjType::Map)?;
                tx.put(&obj, "name", share.name.as_str())?;
                tx.put(&obj, "scope", share.scope.as_str())?;
                tx.put(&obj, "view_doc", share.view_doc.as_str())?;
                tx.put(
                    &obj,
                    "created_at",
                    ScalarValue::Timestamp(share.created_at_ms),
                )?;
                if let Some(e) = share.expires_at_ms {
                    tx.put(&obj, "expires_at", ScalarValue::Timestamp(e))?;
                }
                Ok(())
            },
        )
    }

    /// Marks a share revoked (its view is no longer refreshed).
    pub fn revoke_share(&mut self, now: &Now, id: &str) -> Result<(), Error> {
        self.change(
            now,
            |_| format!("Revoke share {}", crate::journal::brief(id)),
            |tx, _| {
                let obj = obj_at(tx, &ROOT, "shares")
                    .and_then(|shares| obj_at(tx, &shares, id))
                    .ok_or_else(|| Error::Invalid(format!("no share has the id {id}")))?;
                tx.put(&obj, "revoked_at", ScalarValue::Timestamp(now.ms()))?;
                Ok(())
            },
        )
    }

    /// The shares the journal lists, by id.
    pub fn shares(&self) -> BTreeMap<String, Share> {
        shares_in(&self.doc)
    }
}

/// The shares a journal document lists, by id (read in place: no [`Journal`] needed, so a
/// sync can read them from the copy it already holds).
pub fn shares_in(doc: &Automerge) -> BTreeMap<String, Share> {
    let Some(obj) = obj_at(doc, &ROOT, "shares") else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for (id, v) in hydrate(doc, &obj).iter() {
        let HValue::Map(m) = &v.value else { continue };
        let (Some(name), Some(scope), Some(view_doc)) = (
            string(m, "name"),
            string(m, "scope").and_then(|s| s.parse().ok()),
            string(m, "view_doc"),
        ) else {
            continue;
        };
        out.insert(
            id.clone(),
            Share {
                id: id.clone(),
                name,
                scope,
                view_doc,
                created_at_ms: time_ms(m, "created_at").unwrap_or(0),
                expires_at_ms: time_ms(m, "expires_at"),
                revoked_at_ms: time_ms(m, "revoked_at"),
            },
        );
    }
    out
}

#[cfg(test)]
#[path = "share/tests.rs"]
mod tests;
