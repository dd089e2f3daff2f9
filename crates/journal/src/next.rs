//! `next`: the one shift that fits this moment. From the planned shifts that take no longer
//! than the minutes at hand, serve no idea set aside (parked) or closed (a dead end), and
//! are not waiting for a smaller first step of theirs (`nudge shrink`), the one that has
//! waited longest, counting the days its ideas went untouched too (a
//! shift for a neglected idea comes before an equally old one for a busy idea); nothing
//! planned fits, the first suggestion.

use jiff::civil::Date;

use crate::catalog::Catalog;
use crate::model::{IdeaStatus, Shift};
use crate::suggest::{Suggestion, UNTOUCHED_AFTER_DAYS, days_since, suggest};
use crate::summary::Summary;
use crate::when::Now;

/// A planned shift waiting longer than this many days is stalled (too big? shrink it).
pub const STALLED_AFTER_DAYS: i64 = 7;

/// What `next` offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// A planned shift, and the days it has waited since it was planned.
    Planned {
        /// The shift.
        shift: Shift,
        /// Days since it was planned.
        waiting_days: i64,
    },
    /// Nothing planned fits: something to do now instead.
    Suggested(Suggestion),
}

/// The one shift for `minutes` minutes now, if there is anything at all.
pub fn next(catalog: &Catalog, summary: &Summary, now: &Now, minutes: u32) -> Option<Next> {
    let today = now.today();
    let idle = |shift: &Shift| -> i64 {
        shift
            .ideas
            .iter()
            .map(|raw| {
                let group = catalog.idea_group(catalog.idea_id(raw));
                summary
                    .idea_last_done(&group)
                    .and_then(|d| days_since(d, today))
                    .unwrap_or(UNTOUCHED_AFTER_DAYS)
            })
            .max()
            .unwrap_or(0)
    };
    let set_aside = |shift: &Shift| {
        shift.ideas.iter().any(|raw| {
            catalog
                .idea(raw)
                .is_some_and(|i| matches!(i.status, IdeaStatus::Parked | IdeaStatus::DeadEnd))
        })
    };
    let waiting = |shift: &Shift| waiting_days(shift, now, today);
    // A shift shrunk into a step still planned waits for that step.
    let shrunk: std::collections::BTreeSet<&str> = summary
        .open
        .values()
        .filter_map(|s| s.shrunk_from.as_deref())
        .collect();
    let best = summary
        .open
        .values()
        .filter(|s| s.minutes <= minutes && !set_aside(s) && !shrunk.contains(s.id.as_str()))
        .max_by(|a, b| {
            (waiting(a) + idle(a))
                .cmp(&(waiting(b) + idle(b)))
                // Equal: the older, then the smaller id, wins.
                .then_with(|| b.created_at_ms.cmp(&a.created_at_ms))
                .then_with(|| b.id.cmp(&a.id))
        });
    match best {
        Some(shift) => Some(Next::Planned {
            waiting_days: waiting(shift),
            shift: shift.clone(),
        }),
        None => suggest(catalog, summary, today)
            .into_iter()
            .next()
            .map(Next::Suggested),
    }
}

/// Days since `shift` was planned, by the device's calendar.
pub fn waiting_days(shift: &Shift, now: &Now, today: Date) -> i64 {
    now.local_date(shift.created_at_ms)
        .until(today)
        .map_or(0, |span| i64::from(span.get_days()))
}
