//! The weekly view: shifts made per day and per idea against the goal, and the streak.

use std::collections::BTreeSet;

use jiff::ToSpan;
use jiff::civil::Date;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::summary::Summary;
use crate::when::last_weekday;

/// Shifts made on one day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// The local date.
    pub date: Date,
    /// Done shifts that day.
    pub done: u32,
    /// Whether it is a planned day off (`nudge pause`).
    pub paused: bool,
}

/// Shifts made for one idea in a week.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdeaCount {
    /// The idea's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Done shifts for it that week.
    pub done: u32,
}

/// One week of shifts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Week {
    /// Its first day.
    pub start: Date,
    /// Its last day.
    pub end: Date,
    /// Done shifts in it.
    pub done: u32,
    /// The weekly goal.
    pub goal: u32,
    /// Each day, first to last.
    pub days: Vec<DayCount>,
    /// Ideas with done shifts, most first.
    pub ideas: Vec<IdeaCount>,
    /// Done shifts with no idea.
    pub untagged: u32,
}

fn day(date: Date) -> String {
    date.to_string()
}

/// The week (per the journal's week start) containing `date`.
pub fn week(summary: &Summary, catalog: &Catalog, date: Date) -> Week {
    let start = last_weekday(date, catalog.settings.week_start.weekday());
    let paused = catalog.paused_days();
    let days: Vec<DayCount> = (0..7)
        .filter_map(|i| start.checked_add(i.days()).ok())
        .map(|d| DayCount {
            date: d,
            done: summary.day_counts.get(&day(d)).copied().unwrap_or(0),
            paused: paused.contains(&d),
        })
        .collect();
    let mut ideas: std::collections::BTreeMap<&str, u32> = Default::default();
    let mut untagged = 0;
    for d in &days {
        untagged += summary.day_untagged.get(&day(d.date)).copied().unwrap_or(0);
        for (raw, n) in summary.day_ideas.get(&day(d.date)).into_iter().flatten() {
            *ideas.entry(catalog.idea_id(raw)).or_default() += n;
        }
    }
    let mut ideas: Vec<IdeaCount> = ideas
        .into_iter()
        .map(|(id, done)| IdeaCount {
            id: id.to_owned(),
            title: catalog
                .idea(id)
                .map_or_else(|| "(removed idea)".into(), |i| i.title.clone()),
            done,
        })
        .collect();
    ideas.sort_by(|a, b| b.done.cmp(&a.done).then_with(|| a.title.cmp(&b.title)));
    Week {
        start,
        end: days.last().map_or(start, |d| d.date),
        done: days.iter().map(|d| d.done).sum(),
        goal: catalog.settings.weekly_goal,
        days,
        ideas,
        untagged,
    }
}

/// The `n` weeks up to and including the one containing `today`, most recent first.
pub fn weeks(summary: &Summary, catalog: &Catalog, today: Date, n: usize) -> Vec<Week> {
    let mut out = Vec::with_capacity(n);
    let mut date = today;
    for _ in 0..n.max(1) {
        let w = week(summary, catalog, date);
        date = match w.start.checked_sub(1.day()) {
            Ok(d) => d,
            Err(_) => break,
        };
        out.push(w);
    }
    out
}

/// Consecutive local days, ending today or yesterday, each with at least one done shift or
/// paused (a paused day counts as kept).
pub fn streak(summary: &Summary, paused: &BTreeSet<Date>, today: Date) -> u32 {
    let has =
        |d: Date| paused.contains(&d) || summary.day_counts.get(&day(d)).is_some_and(|n| *n > 0);
    let mut date = if has(today) {
        today
    } else {
        match today.yesterday() {
            Ok(y) if has(y) => y,
            _ => return 0,
        }
    };
    let mut n = 0;
    while has(date) {
        n += 1;
        date = match date.yesterday() {
            Ok(d) => d,
            Err(_) => break,
        };
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::WeekStart;

    fn summary(days: &[(&str, u32)]) -> Summary {
        let mut s = Summary::default();
        for (d, n) in days {
            s.day_counts.insert(d.to_string(), *n);
            s.day_untagged.insert(d.to_string(), *n);
        }
        s
    }

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn weeks_follow_the_week_start() {
        let s = summary(&[("2026-11-22", 2), ("2026-11-23", 3), ("2026-11-29", 1)]);
        let mut c = Catalog::default();
        // Wednesday 2026-11-25; Monday start: 23..29.
        let w = week(&s, &c, date("2026-11-25"));
        assert_eq!(
            (w.start, w.end, w.done),
            (date("2026-11-23"), date("2026-11-29"), 4)
        );
        assert_eq!(w.days.len(), 7);
        assert_eq!(w.untagged, 4);
        // Sunday start: 22..28.
        c.settings.week_start = WeekStart::Sunday;
        let w = week(&s, &c, date("2026-11-25"));
        assert_eq!((w.start, w.done), (date("2026-11-22"), 5));
        let ws = weeks(&s, &c, date("2026-11-25"), 3);
        assert_eq!(ws.len(), 3);
        assert_eq!(ws[1].start, date("2026-11-15"));
    }

    #[test]
    fn streak_ends_today_or_yesterday() {
        let s = summary(&[("2026-11-21", 1), ("2026-11-22", 1), ("2026-11-23", 2)]);
        let none = BTreeSet::new();
        assert_eq!(streak(&s, &none, date("2026-11-23")), 3);
        assert_eq!(streak(&s, &none, date("2026-11-24")), 3);
        assert_eq!(streak(&s, &none, date("2026-11-25")), 0);
        assert_eq!(streak(&Summary::default(), &none, date("2026-11-25")), 0);
        // A paused day in the middle keeps it, and counts.
        let s = summary(&[("2026-11-20", 1), ("2026-11-22", 1)]);
        let paused: BTreeSet<Date> = [date("2026-11-21")].into();
        assert_eq!(streak(&s, &none, date("2026-11-22")), 1);
        assert_eq!(streak(&s, &paused, date("2026-11-22")), 3);
        // Paused today and yesterday, nothing made then: kept back to the 22nd.
        let paused: BTreeSet<Date> = [date("2026-11-23"), date("2026-11-24")].into();
        assert_eq!(streak(&s, &paused, date("2026-11-24")), 3);
    }
}
