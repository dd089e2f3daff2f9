//! The weekly review as a buddy sees it, within the share's scope: the week against the
//! goal and the week before, the running total and its pace (every scope); doors closed
//! that week (`titles` and `full`); the week's little yeses (`full`). What the buddy's
//! page and `nudge buddy show` print, from the same [`crate::review`] rules.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

use super::ShareView;
use crate::model::IdeaStatus;
use crate::review::{DoorClosed, LittleYes, Pace, pace};
use crate::week::{Week, week};

/// The review of a share view's week.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ViewReview {
    /// The week.
    pub week: Week,
    /// The week before.
    pub before: Week,
    /// The total and pace.
    pub pace: Pace,
    /// Doors closed in the week (`titles`, `full`).
    pub doors_closed: Vec<DoorClosed>,
    /// The week's little yeses, oldest first (`full`).
    pub little_yeses: Vec<LittleYes>,
}

impl ShareView {
    /// The review of the owner's week containing `today` (in the owner's zone, else
    /// `fallback`, for dates of closing).
    pub fn review(&self, today: Date, fallback: &TimeZone) -> ViewReview {
        let (summary, catalog) = (self.summary(), self.catalog());
        let this = week(&summary, &catalog, today);
        let before = week(
            &summary,
            &catalog,
            this.start.yesterday().unwrap_or(this.start),
        );
        let tz = self
            .time_zone
            .as_deref()
            .and_then(crate::when::zone_named)
            .unwrap_or_else(|| fallback.clone());
        let in_week = |d: Date| d >= this.start && d <= this.end;
        let doors_closed = self
            .ideas
            .iter()
            .filter(|i| i.status == IdeaStatus::DeadEnd.as_str())
            .filter(|i| {
                i.closed_at_ms.is_some_and(|ms| {
                    Timestamp::from_millisecond(ms)
                        .is_ok_and(|t| in_week(t.to_zoned(tz.clone()).date()))
                })
            })
            .map(|i| DoorClosed {
                title: i.title.clone(),
                note: i.closing_note.clone(),
            })
            .collect();
        let mut little_yeses: Vec<LittleYes> = self
            .shifts
            .iter()
            .filter_map(|s| {
                let date = s.done_date.as_deref()?;
                let text = s.little_yes.clone()?;
                in_week(date.parse().ok()?).then(|| LittleYes {
                    date: date.to_owned(),
                    text,
                    shift: s.id.clone(),
                })
            })
            .collect();
        little_yeses.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.shift.cmp(&b.shift)));
        ViewReview {
            pace: pace(&summary, &this),
            week: this,
            before,
            doors_closed,
            little_yeses,
        }
    }
}
