//! `review`: the weekly review, a page worth reading on Sunday evening. The week's shifts
//! against the goal and the week before, per idea; the little yeses; doors closed; people
//! reached, and people not contacted for 30 days with the one shift that would reach
//! them; planned shifts that stalled; the running total against the method's ~1,400
//! micro shifts, and the pace it implies.

use jiff::ToSpan;
use jiff::civil::Date;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::model::{IdeaStatus, Shift, ShiftStatus};
use crate::next::{STALLED_AFTER_DAYS, waiting_days};
use crate::suggest::{STALE_AFTER_DAYS, days_since};
use crate::summary::Summary;
use crate::week::{Week, week};
use crate::when::Now;

/// About how many micro shifts the method says a change of career takes.
pub const METHOD_TOTAL: u32 = 1400;

/// Weeks the pace is averaged over.
const PACE_WEEKS: i64 = 4;

/// The running total against the method's, and the pace it implies.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pace {
    /// Done shifts ever, up to the end of the week.
    pub total: u32,
    /// The method's ~1,400.
    pub method_total: u32,
    /// Done shifts a week, averaged over the four weeks ending with this one.
    pub pace_per_week: f64,
    /// Weeks to the method's total at that pace (`None`: no pace yet, or there already).
    pub weeks_to_go: Option<u32>,
}

impl Pace {
    /// "Running total: 123 of the method's ~1400 micro shifts; at 12.5 a week ..."
    pub fn sentence(&self) -> String {
        let pace = match self.weeks_to_go {
            Some(weeks) => format!(
                "; at {:.1} a week (the last 4 weeks), about {weeks} weeks to go",
                self.pace_per_week
            ),
            None if self.total >= self.method_total => ": there, by the method's count".to_owned(),
            None => String::new(),
        };
        format!(
            "Running total: {} of the method's ~{} micro shifts{pace}",
            self.total, self.method_total
        )
    }
}

/// Signed difference, for "vs the week before".
pub fn versus(now: u32, before: u32) -> String {
    match i64::from(now) - i64::from(before) {
        0 => "the same as the week before".to_owned(),
        d if d > 0 => format!("{d} more than the week before ({before})"),
        d => format!("{} fewer than the week before ({before})", -d),
    }
}

/// The total and pace as of the end of `week`.
pub fn pace(summary: &Summary, week: &Week) -> Pace {
    let end = week.end.to_string();
    let total: u32 = summary
        .day_counts
        .iter()
        .filter(|(d, _)| d.as_str() <= end.as_str())
        .map(|(_, n)| n)
        .sum();
    let pace_from = week
        .start
        .checked_sub(((PACE_WEEKS - 1) * 7).days())
        .unwrap_or(week.start)
        .to_string();
    let recent: u32 = summary
        .day_counts
        .range(pace_from..)
        .filter(|(d, _)| d.as_str() <= end.as_str())
        .map(|(_, n)| n)
        .sum();
    let pace_per_week = f64::from(recent) / PACE_WEEKS as f64;
    let weeks_to_go = (pace_per_week > 0.0 && total < METHOD_TOTAL)
        .then(|| (f64::from(METHOD_TOTAL - total) / pace_per_week).ceil() as u32);
    Pace {
        total,
        method_total: METHOD_TOTAL,
        pace_per_week,
        weeks_to_go,
    }
}

/// A little yes of the week.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LittleYes {
    /// The local date of the shift that sparked it.
    pub date: String,
    /// What it sparked.
    pub text: String,
    /// The shift.
    pub shift: String,
}

/// A door closed in the week: an idea marked a dead end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DoorClosed {
    /// The idea's title.
    pub title: String,
    /// What was learned.
    pub note: Option<String>,
}

/// Someone in the week's done shifts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reached {
    /// Their name.
    pub name: String,
    /// Done shifts that named them this week.
    pub shifts: u32,
}

/// Someone not contacted for 30 days (or never).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stale {
    /// Their name.
    pub name: String,
    /// Their last contact, if any.
    pub last_contact: Option<String>,
    /// The one shift that would reach them.
    pub shift: String,
}

/// A planned shift waiting over a week.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stalled {
    /// Its id.
    pub id: String,
    /// What it is.
    pub text: String,
    /// Days since it was planned.
    pub waiting_days: i64,
}

/// The review of one week.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Review {
    /// The week.
    pub week: Week,
    /// The week before, to compare.
    pub before: Week,
    /// The little yeses of the week, oldest first.
    pub little_yeses: Vec<LittleYes>,
    /// Ideas closed as dead ends in the week.
    pub doors_closed: Vec<DoorClosed>,
    /// People in the week's done shifts, most first.
    pub reached: Vec<Reached>,
    /// People not contacted for 30 days by the end of the week (or today, if sooner).
    pub stale: Vec<Stale>,
    /// Planned shifts waiting over a week by then.
    pub stalled: Vec<Stalled>,
    /// The running total and its pace (`total`, `method_total`, `pace_per_week`,
    /// `weeks_to_go` in JSON).
    #[serde(flatten)]
    pub pace: Pace,
}

/// The review of the week containing `date`; `shifts` are all the journal's shifts.
pub fn review(
    catalog: &Catalog,
    summary: &Summary,
    shifts: &[Shift],
    now: &Now,
    date: Date,
) -> Review {
    let this = week(summary, catalog, date);
    let before = week(
        summary,
        catalog,
        this.start.checked_sub(1.day()).unwrap_or(this.start),
    );
    let (start, end) = (this.start.to_string(), this.end.to_string());
    let in_week = |d: &str| d >= start.as_str() && d <= end.as_str();
    let made: Vec<&Shift> = shifts
        .iter()
        .filter(|s| s.status == ShiftStatus::Done)
        .filter(|s| s.done.as_ref().is_some_and(|d| in_week(&d.date)))
        .collect();
    let mut little_yeses: Vec<LittleYes> = made
        .iter()
        .filter_map(|s| {
            Some(LittleYes {
                date: s.done.as_ref()?.date.clone(),
                text: s.little_yes.clone()?,
                shift: s.id.clone(),
            })
        })
        .collect();
    little_yeses.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.shift.cmp(&b.shift)));
    let doors_closed = catalog
        .canonical_ideas()
        .filter(|i| i.status == IdeaStatus::DeadEnd)
        .filter(|i| {
            i.closed_at_ms
                .is_some_and(|at| in_week(&now.local_date(at).to_string()))
        })
        .map(|i| DoorClosed {
            title: i.title.clone(),
            note: i.closing_note.clone(),
        })
        .collect();
    let mut reached: std::collections::BTreeMap<&str, u32> = Default::default();
    for shift in &made {
        let people: std::collections::BTreeSet<&str> =
            shift.people.iter().map(|p| catalog.person_id(p)).collect();
        for person in people {
            *reached.entry(person).or_default() += 1;
        }
    }
    let mut reached: Vec<Reached> = reached
        .into_iter()
        .filter_map(|(id, shifts)| {
            Some(Reached {
                name: catalog.person(id)?.name.clone(),
                shifts,
            })
        })
        .collect();
    reached.sort_by(|a, b| b.shifts.cmp(&a.shifts).then_with(|| a.name.cmp(&b.name)));
    // As of the week's end, or today for the week under way.
    let as_of = this.end.min(now.today());
    let as_of_text = as_of.to_string();
    let stale = catalog
        .canonical_people()
        .filter_map(|p| {
            let group = catalog.person_group(&p.id);
            // The last contact up to `as_of`.
            let last = group
                .iter()
                .filter_map(|id| {
                    summary
                        .person_days
                        .get(id)?
                        .keys()
                        .rfind(|d| d.as_str() <= as_of_text.as_str())
                })
                .max()
                .cloned();
            let days = last.as_deref().and_then(|d| days_since(d, as_of));
            let added = now.local_date(p.created_at_ms);
            let known_long = days_since(&added.to_string(), as_of).unwrap_or(0);
            let stale = match days {
                Some(days) => days > STALE_AFTER_DAYS,
                None => known_long > STALE_AFTER_DAYS,
            };
            stale.then(|| {
                let tag = if p.name.contains(' ') {
                    format!("@\"{}\"", p.name)
                } else {
                    format!("@{}", p.name)
                };
                Stale {
                    name: p.name.clone(),
                    shift: format!("Send {tag} one line on what you are trying now"),
                    last_contact: last,
                }
            })
        })
        .collect();
    let mut stalled: Vec<Stalled> = summary
        .open
        .values()
        .filter(|s| now.local_date(s.created_at_ms) <= as_of)
        .map(|s| Stalled {
            id: s.id.clone(),
            text: s.text.clone(),
            waiting_days: waiting_days(s, now, as_of),
        })
        .filter(|s| s.waiting_days > STALLED_AFTER_DAYS)
        .collect();
    stalled.sort_by(|a, b| {
        b.waiting_days
            .cmp(&a.waiting_days)
            .then_with(|| a.id.cmp(&b.id))
    });
    let pace = pace(summary, &this);
    Review {
        week: this,
        before,
        little_yeses,
        doors_closed,
        reached,
        stale,
        stalled,
        pace,
    }
}
