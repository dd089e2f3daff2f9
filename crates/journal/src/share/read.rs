//! Reading a share view, as any client may have written it (unknown fields are ignored), and
//! what readers derive from one (its summary, catalog and the owner's today),
//! and telling a document made as a view from one passed off as one.

use std::collections::BTreeMap;

use automerge::hydrate::{Map, Value as HValue};
use automerge::{Automerge, ObjId, ROOT, ReadDoc};

use super::*;

pub(super) fn hydrate(doc: &Automerge, obj: &ObjId) -> Map {
    match ReadDoc::hydrate(doc, obj, None) {
        Ok(HValue::Map(m)) => m,
        _ => Map::default(),
    }
}

fn counts(m: &Map) -> BTreeMap<String, u32> {
    m.iter()
        .filter_map(|(k, _)| Some((k.clone(), u32::try_from(int(m, k)?).ok()?)))
        .collect()
}

/// Whether `doc` was made as a share view: every change it starts from (those with no
/// dependencies) marks the root as one. The journal and the contacts document start
/// otherwise, and no later edit of theirs can change how they started, so a device (or a
/// thief holding one) cannot pass either off as a view to share.
pub fn born_as_view(doc: &Automerge) -> bool {
    let roots: Vec<_> = doc
        .get_changes(&[])
        .into_iter()
        .filter(|c| c.deps().is_empty())
        .collect();
    !roots.is_empty()
        && roots.into_iter().all(|change| {
            let mut alone = Automerge::new();
            alone.apply_changes([change.clone()]).is_ok()
                && string(&hydrate(&alone, &ROOT), "kind").as_deref() == Some(VIEW_KIND)
        })
}

/// Reads a share view (any client may have written it; unknown fields are ignored).
pub fn read_view(doc: &Automerge) -> Result<ShareView, Error> {
    let root = hydrate(doc, &ROOT);
    if string(&root, "kind").as_deref() != Some(VIEW_KIND) {
        return Err(Error::NotAJournal(
            "this document is not a nudge share view".into(),
        ));
    }
    let map_at = |key: &str| {
        obj_at(doc, &ROOT, key)
            .map(|o| hydrate(doc, &o))
            .unwrap_or_default()
    };
    let mut view = ShareView {
        scope: string(&root, "scope").and_then(|s| s.parse().ok()),
        weekly_goal: int(&root, "weekly_goal")
            .and_then(|g| u32::try_from(g).ok())
            .unwrap_or(20),
        week_start: Some(parsed(
            &root,
            "week_start",
            crate::model::Settings::default().week_start,
        )),
        days: counts(&map_at("days")),
        ideas_by_status: counts(&map_at("ideas_by_status")),
        doors_closed: int(&root, "doors_closed")
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        updated_at_ms: time_ms(&root, "updated_at"),
        paused: string(&root, "paused")
            .map(|s| s.split(',').filter_map(|d| d.parse().ok()).collect())
            .unwrap_or_default(),
        time_zone: non_empty(&root, "time_zone"),
        display_name: non_empty(&root, "display_name"),
        ..ShareView::default()
    };
    for (id, v) in map_at("ideas").iter() {
        if let HValue::Map(m) = &v.value {
            view.ideas.push(ViewIdea {
                id: id.clone(),
                title: string(m, "title").unwrap_or_default(),
                status: string(m, "status").unwrap_or_default(),
                why: non_empty(m, "why"),
                closing_note: non_empty(m, "closing_note"),
                closed_at_ms: time_ms(m, "closed_at"),
            });
        }
    }
    for (id, v) in map_at("shifts").iter() {
        if let HValue::Map(m) = &v.value {
            view.shifts.push(ViewShift {
                id: id.clone(),
                text: string(m, "text").unwrap_or_default(),
                status: string(m, "status").unwrap_or_default(),
                created_at_ms: time_ms(m, "created_at").unwrap_or(0),
                done_date: non_empty(m, "done_date"),
                ideas: string(m, "ideas")
                    .map(|s| {
                        s.split(',')
                            .filter(|t| !t.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                note: non_empty(m, "note"),
                little_yes: non_empty(m, "little_yes"),
            });
        }
    }
    view.ideas
        .sort_by(|a, b| a.title.cmp(&b.title).then_with(|| a.id.cmp(&b.id)));
    view.shifts.sort_by(|a, b| {
        let when = |s: &ViewShift| (s.done_date.clone().unwrap_or_default(), s.created_at_ms);
        when(b).cmp(&when(a)).then_with(|| a.id.cmp(&b.id))
    });
    Ok(view)
}

impl ShareView {
    /// The per-day counts as a [`Summary`], for `week` and `streak`.
    pub fn summary(&self) -> Summary {
        Summary {
            day_counts: self.days.clone(),
            ..Summary::default()
        }
    }

    /// The owner's settings and pauses as a [`Catalog`], for `week`.
    pub fn catalog(&self) -> Catalog {
        let defaults = Settings::default();
        Catalog {
            settings: Settings {
                weekly_goal: self.weekly_goal,
                week_start: self.week_start.unwrap_or(defaults.week_start),
                display_name: self.display_name.clone(),
            },
            pauses: self
                .paused
                .iter()
                .map(|d| {
                    let pause = Pause {
                        id: d.to_string(),
                        from: *d,
                        to: *d,
                        note: None,
                        created_at_ms: 0,
                    };
                    (pause.id.clone(), pause)
                })
                .collect(),
            ..Catalog::default()
        }
    }

    /// The owner's today at `ts`: in the owner's time zone, else in `fallback`.
    pub fn today(&self, ts: jiff::Timestamp, fallback: &jiff::tz::TimeZone) -> Date {
        let tz = self
            .time_zone
            .as_deref()
            .and_then(crate::when::zone_named)
            .unwrap_or_else(|| fallback.clone());
        ts.to_zoned(tz).date()
    }
}
