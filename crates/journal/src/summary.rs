//! Aggregates over shifts that `list` and `week` read, maintained one shift at a time.
//!
//! The same [`Summary::apply`] builds it from scratch and keeps it current after a command,
//! so a cache of it can never drift from what a full rebuild would give.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Shift, ShiftStatus};

/// Planned shifts and per-day counts of done ones.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Planned shifts, by id.
    pub open: BTreeMap<String, Shift>,
    /// Done shifts per local date (`YYYY-MM-DD`).
    pub day_counts: BTreeMap<String, u32>,
    /// Done shifts per local date and raw idea id.
    pub day_ideas: BTreeMap<String, BTreeMap<String, u32>>,
    /// Done shifts with no idea, per local date.
    pub day_untagged: BTreeMap<String, u32>,
    /// Done shifts per raw person id and local date (for "last contact").
    pub person_days: BTreeMap<String, BTreeMap<String, u32>>,
    /// Shifts per status.
    pub by_status: BTreeMap<ShiftStatus, u32>,
}

fn bump<K: Ord + Clone>(map: &mut BTreeMap<K, u32>, key: &K, up: bool) {
    if up {
        *map.entry(key.clone()).or_default() += 1;
    } else if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Summary {
    /// The summary of these shifts.
    pub fn build<'a>(shifts: impl IntoIterator<Item = &'a Shift>) -> Self {
        let mut summary = Self::default();
        for shift in shifts {
            summary.apply(None, Some(shift));
        }
        summary
    }

    /// Replaces a shift's old state (`None`: it did not exist) with its new one (`None`: it
    /// was removed).
    pub fn apply(&mut self, old: Option<&Shift>, new: Option<&Shift>) {
        if let Some(old) = old {
            self.count(old, false);
        }
        if let Some(new) = new {
            self.count(new, true);
        }
    }

    fn count(&mut self, shift: &Shift, up: bool) {
        bump(&mut self.by_status, &shift.status, up);
        if shift.status == ShiftStatus::Planned {
            if up {
                self.open.insert(shift.id.clone(), shift.clone());
            } else {
                self.open.remove(&shift.id);
            }
        }
        let Some(done) = shift
            .done
            .as_ref()
            .filter(|_| shift.status == ShiftStatus::Done)
        else {
            return;
        };
        let date = &done.date;
        bump(&mut self.day_counts, date, up);
        if shift.ideas.is_empty() {
            bump(&mut self.day_untagged, date, up);
        }
        let ideas = self.day_ideas.entry(date.clone()).or_default();
        for idea in &shift.ideas {
            bump(ideas, idea, up);
        }
        if ideas.is_empty() {
            self.day_ideas.remove(date);
        }
        for person in &shift.people {
            let days = self.person_days.entry(person.clone()).or_default();
            bump(days, date, up);
            if days.is_empty() {
                self.person_days.remove(person);
            }
        }
    }

    /// The last local date any of these person records was in a done shift.
    pub fn last_contact<'a>(&self, raw_ids: impl IntoIterator<Item = &'a String>) -> Option<&str> {
        raw_ids
            .into_iter()
            .filter_map(|id| self.person_days.get(id)?.keys().next_back())
            .max()
            .map(String::as_str)
    }

    /// The last local date a done shift served any of these idea records.
    pub fn idea_last_done(&self, raw_ids: &[String]) -> Option<&str> {
        self.day_ideas
            .iter()
            .rev()
            .find(|(_, ideas)| raw_ids.iter().any(|id| ideas.contains_key(id)))
            .map(|(date, _)| date.as_str())
    }

    /// Done shifts ever counted for these idea records.
    pub fn idea_done(&self, raw_ids: &[String]) -> u32 {
        self.day_ideas
            .values()
            .flat_map(|ideas| raw_ids.iter().filter_map(|id| ideas.get(id)))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DoneAt, Kind};

    fn shift(id: &str, status: ShiftStatus, date: Option<&str>, ideas: &[&str]) -> Shift {
        Shift {
            id: id.into(),
            text: "t".into(),
            status,
            created_at_ms: 0,
            done: date.map(|d| DoneAt {
                at_ms: 0,
                date: d.into(),
                tz: "UTC".into(),
            }),
            minutes: 5,
            kind: Kind::Other,
            ideas: ideas.iter().map(|s| s.to_string()).collect(),
            people: ["p1".to_string()].into(),
            note: None,
            little_yes: None,
            shrunk_from: None,
        }
    }

    #[test]
    fn incremental_updates_equal_a_rebuild() {
        let a = shift("a", ShiftStatus::Planned, None, &["x"]);
        let b = shift("b", ShiftStatus::Done, Some("2026-11-20"), &["x", "y"]);
        let c = shift("c", ShiftStatus::Done, Some("2026-11-21"), &[]);
        let mut s = Summary::build([&a, &b, &c]);
        assert_eq!(s.open.len(), 1);
        assert_eq!(s.day_counts["2026-11-20"], 1);
        assert_eq!(s.day_untagged["2026-11-21"], 1);
        assert_eq!(s.last_contact(&["p1".to_string()]), Some("2026-11-21"));
        // a gets done, c is removed, b moves to another day.
        let a2 = shift("a", ShiftStatus::Done, Some("2026-11-22"), &["x"]);
        let b2 = shift("b", ShiftStatus::Done, Some("2026-11-19"), &["y"]);
        s.apply(Some(&a), Some(&a2));
        s.apply(Some(&c), None);
        s.apply(Some(&b), Some(&b2));
        assert_eq!(s, Summary::build([&a2, &b2]));
        assert_eq!(s.by_status.values().sum::<u32>(), 2);
        assert_eq!(s.idea_done(&["x".to_string(), "y".to_string()]), 2);
    }
}
