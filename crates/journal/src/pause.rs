//! Paused days: days off planned ahead. A paused day keeps the streak (it counts as kept),
//! and `week`, `review` and the buddy's page show it. A pause starts tomorrow at the
//! earliest, so it cannot erase a day already missed (Beeminder's "akrasia horizon"), and
//! no 30 days hold more than 7 paused ones: checked when a pause is planned, and again
//! when pauses are read ([`count`]), since two devices apart can each plan within it.
//!
//! Pauses live in the root map `pauses` (id -> pause). Journals made before pauses existed
//! lack it, and two devices may each create it on their first pause while apart: the map
//! is read as the union of every concurrent `pauses` object, so neither device's pause is
//! lost (`docs/schema.md`).

use std::collections::{BTreeMap, BTreeSet};

use automerge::hydrate::Value as HValue;
use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use jiff::ToSpan;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::journal::{Journal, brief, obj_at};
use crate::values::{non_empty, string, time_ms};
use crate::{Error, Now};

/// At most this many paused days ...
pub const MAX_PAUSED_DAYS: usize = 7;
/// ... in any this many consecutive days.
pub const PAUSE_WINDOW_DAYS: i64 = 30;

/// The longest note a pause keeps.
pub const MAX_NOTE_CHARS: usize = 500;

/// Days off, planned ahead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// Its id.
    pub id: String,
    /// Its first day.
    pub from: Date,
    /// Its last day (the same as `from` for one day).
    pub to: Date,
    /// Why, if said (private: never in a share view).
    pub note: Option<String>,
    /// When it was planned (ms).
    pub created_at_ms: i64,
}

impl Pause {
    /// Its days, first to last.
    pub fn days(&self) -> Vec<Date> {
        days(self.from, self.to)
    }
}

fn days(from: Date, to: Date) -> Vec<Date> {
    let mut out = Vec::new();
    let mut d = from;
    while d <= to && out.len() <= 366 {
        out.push(d);
        d = match d.tomorrow() {
            Ok(next) => next,
            Err(_) => break,
        };
    }
    out
}

/// Which pauses count, and the days they cover.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counted {
    /// Every day a counted pause covers.
    pub days: BTreeSet<Date>,
    /// The ids of the pauses that do not count.
    pub over: BTreeSet<String>,
}

/// Counts pauses in the order they were planned (then by id, so every device agrees),
/// each only if, with those counted before it, no 30 days hold more than 7 paused ones.
/// [`check`] refuses such a pause on one device, but two devices planning while apart can
/// together go over the limit: then the later pause does not count, and the streak, the
/// week and the buddy's page all read the same days.
pub fn count<'a>(pauses: impl IntoIterator<Item = &'a Pause>) -> Counted {
    let mut planned: Vec<&Pause> = pauses.into_iter().collect();
    planned.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
    let mut counted = Counted::default();
    for pause in planned {
        let days = pause.days();
        if days.len() <= MAX_PAUSED_DAYS && over_limit(&days, &counted.days).is_none() {
            counted.days.extend(days);
        } else {
            counted.over.insert(pause.id.clone());
        }
    }
    counted
}

/// Every day a pause that counts covers ([`count`]).
pub fn paused_days<'a>(pauses: impl IntoIterator<Item = &'a Pause>) -> BTreeSet<Date> {
    count(pauses).days
}

/// The first 30-day window holding a day of `new` that, with `taken`, holds more than 7
/// paused days: its first and last day and how many it holds.
fn over_limit(new: &[Date], taken: &BTreeSet<Date>) -> Option<(Date, Date, usize)> {
    let (&from, &to) = (new.first()?, new.last()?);
    let all: BTreeSet<Date> = taken.iter().chain(new).copied().collect();
    days(from.saturating_sub((PAUSE_WINDOW_DAYS - 1).days()), to)
        .into_iter()
        .map(|first| {
            let last = first.saturating_add((PAUSE_WINDOW_DAYS - 1).days());
            (first, last, all.range(first..=last).count())
        })
        .find(|&(_, _, n)| n > MAX_PAUSED_DAYS)
}

/// Whether a pause `from..=to` may be planned on `today`, beside the days already paused.
pub fn check(from: Date, to: Date, today: Date, paused: &BTreeSet<Date>) -> Result<(), Error> {
    let tomorrow = today
        .tomorrow()
        .map_err(|e| Error::Invalid(e.to_string()))?;
    if from < tomorrow {
        return Err(Error::Invalid(format!(
            "a pause starts tomorrow ({tomorrow}) at the earliest: it is planned ahead, so it cannot cover a day already gone"
        )));
    }
    if to < from {
        return Err(Error::Invalid(format!(
            "--to ({to}) is before --from ({from})"
        )));
    }
    let new = days(from, to);
    if new.len() > MAX_PAUSED_DAYS {
        return Err(Error::Invalid(format!(
            "a pause is at most {MAX_PAUSED_DAYS} days; this one is {}",
            new.len()
        )));
    }
    if let Some((first, last, n)) = over_limit(&new, paused) {
        return Err(Error::Invalid(format!(
            "that makes {n} paused days between {first} and {last}; at most {MAX_PAUSED_DAYS} in any {PAUSE_WINDOW_DAYS} days (`nudge pause` lists the pauses)"
        )));
    }
    Ok(())
}

/// Every `pauses` object of the root: more than one when devices created it concurrently.
fn roots(doc: &impl ReadDoc) -> Vec<ObjId> {
    doc.get_all(ROOT, "pauses")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(v, id)| matches!(v, Value::Object(ObjType::Map)).then_some(id))
        .collect()
}

/// The pauses a journal document holds, by id.
pub(crate) fn read(doc: &impl ReadDoc) -> BTreeMap<String, Pause> {
    let mut out = BTreeMap::new();
    for obj in roots(doc) {
        let Ok(HValue::Map(map)) = doc.hydrate(&obj, None) else {
            continue;
        };
        for (id, v) in map.iter() {
            let HValue::Map(m) = &v.value else { continue };
            let date = |key: &str| string(m, key).and_then(|s| s.parse::<Date>().ok());
            let (Some(from), Some(to)) = (date("from"), date("to")) else {
                continue;
            };
            out.insert(
                id.clone(),
                Pause {
                    id: id.clone(),
                    from,
                    to: to.max(from),
                    note: non_empty(m, "note"),
                    created_at_ms: time_ms(m, "created_at").unwrap_or(0),
                },
            );
        }
    }
    out
}

impl Journal {
    /// The pauses, by id.
    pub fn pauses(&self) -> BTreeMap<String, Pause> {
        read(&self.doc)
    }

    /// Plans a pause from `from` to `to` (checked against [`check`]).
    pub fn add_pause(
        &mut self,
        now: &Now,
        from: Date,
        to: Date,
        note: Option<&str>,
    ) -> Result<Pause, Error> {
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        if note.is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
            return Err(Error::Invalid(format!(
                "the pause's note is over {MAX_NOTE_CHARS} characters: a line is enough"
            )));
        }
        check(from, to, now.today(), &paused_days(self.pauses().values()))?;
        let pause = Pause {
            id: crate::ids::new_id(),
            from,
            to,
            note: note.map(str::to_owned),
            created_at_ms: now.ms(),
        };
        let p = pause.clone();
        self.change(
            now,
            |_| format!("Pause {} to {}", p.from, p.to),
            |tx, _| {
                let map = match obj_at(tx, &ROOT, "pauses") {
                    Some(map) => map,
                    None => tx.put_object(ROOT, "pauses", ObjType::Map)?,
                };
                let obj = tx.put_object(&map, p.id.as_str(), ObjType::Map)?;
                tx.put(&obj, "from", p.from.to_string())?;
                tx.put(&obj, "to", p.to.to_string())?;
                tx.put(&obj, "created_at", ScalarValue::Timestamp(p.created_at_ms))?;
                if let Some(n) = &p.note {
                    tx.put(&obj, "note", n.as_str())?;
                }
                Ok(())
            },
        )?;
        Ok(pause)
    }

    /// Cancels a pause (by id or prefix) that has not begun (one that has keeps the days
    /// it covered).
    pub fn cancel_pause(&mut self, now: &Now, id: &str) -> Result<Pause, Error> {
        let pauses = self.pauses();
        let pause = match crate::ids::lookup(id, pauses.keys()) {
            crate::ids::Lookup::One(found) => pauses[found].clone(),
            crate::ids::Lookup::None => {
                return Err(Error::Invalid(format!(
                    "no pause has the id {id}; `nudge pause` lists them"
                )));
            }
            crate::ids::Lookup::Many(_) => {
                return Err(Error::Invalid(format!(
                    "several pauses start with {id}; give more of the id"
                )));
            }
        };
        if pause.from <= now.today() {
            return Err(Error::Invalid(format!(
                "the pause from {} has begun: it stays, so the days it covered stay kept",
                pause.from
            )));
        }
        let target = pause.id.clone();
        self.change(
            now,
            |_| format!("Cancel pause {}", brief(&target)),
            |tx, _| {
                for obj in roots(tx) {
                    if tx.get(&obj, target.as_str())?.is_some() {
                        tx.delete(&obj, target.as_str())?;
                    }
                }
                Ok(())
            },
        )?;
        Ok(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn a_pause_is_planned_ahead_and_at_most_seven_days_in_thirty() {
        let today = d("2026-12-07");
        let none = BTreeSet::new();
        assert!(check(d("2026-12-07"), d("2026-12-07"), today, &none).is_err());
        assert!(check(d("2026-12-06"), d("2026-12-09"), today, &none).is_err());
        check(d("2026-12-08"), d("2026-12-14"), today, &none).unwrap();
        assert!(check(d("2026-12-08"), d("2026-12-15"), today, &none).is_err());
        assert!(check(d("2026-12-10"), d("2026-12-09"), today, &none).is_err());
        let taken: BTreeSet<Date> = days(d("2026-12-08"), d("2026-12-12")).into_iter().collect();
        // 5 taken: two more fit, three do not, within 30 days.
        check(d("2026-12-20"), d("2026-12-21"), today, &taken).unwrap();
        let err = check(d("2026-12-20"), d("2026-12-22"), today, &taken).unwrap_err();
        assert!(err.to_string().contains("at most 7"), "{err}");
        // Beyond the window it is a new 30 days.
        check(d("2027-01-07"), d("2027-01-13"), today, &taken).unwrap();
    }

    fn pause(id: &str, from: &str, to: &str, created_at_ms: i64) -> Pause {
        Pause {
            id: id.into(),
            from: d(from),
            to: d(to),
            note: None,
            created_at_ms,
        }
    }

    #[test]
    fn pauses_over_the_limit_together_count_in_the_order_they_were_planned() {
        let first = pause("b", "2026-12-01", "2026-12-05", 10);
        let second = pause("a", "2026-12-08", "2026-12-11", 20);
        let apart = pause("c", "2027-02-01", "2027-02-07", 30);
        let too_long = pause("d", "2027-04-01", "2027-04-08", 5);
        let counted = count([&second, &apart, &first, &too_long]);
        assert_eq!(
            counted.over,
            BTreeSet::from(["a".to_owned(), "d".to_owned()])
        );
        assert_eq!(counted.days.len(), 12);
        // Planned at the same moment: the id decides, the same on every device.
        let tie = pause("a", "2026-12-08", "2026-12-11", 10);
        assert_eq!(count([&first, &tie]).over, BTreeSet::from(["b".to_owned()]));
    }
}
