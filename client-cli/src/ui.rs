//! Rendering shared by the commands: the week chart (`nudge week`, `nudge buddy show`), its
//! headline, the streak and the doors closed, drawn one way everywhere.

use jiff::civil::Date;
use nudge_journal::DayCount;

use crate::output::{DIM, GOOD, paint};

/// `done/goal micro shifts …`, green once the goal is reached.
pub(crate) fn headline(done: u32, goal: u32, text: String) -> String {
    if done >= goal {
        paint(GOOD, text)
    } else {
        text
    }
}

/// One line per day: the date, the count (none for a day still to come), a bar, and
/// `paused` on a planned day off.
pub(crate) fn day_rows(days: &[DayCount], today: Date) -> Vec<String> {
    days.iter()
        .map(|d| {
            let count = if d.date > today {
                String::new()
            } else {
                d.done.to_string()
            };
            let paused = if d.paused {
                paint(DIM, " paused")
            } else {
                String::new()
            };
            format!(
                "  {} {:<3} {}{paused}",
                d.date.strftime("%a %d"),
                count,
                paint(GOOD, "█".repeat(d.done.min(40) as usize))
            )
        })
        .collect()
}

/// `streak: N day(s)`.
pub(crate) fn streak(days: u32) -> String {
    format!("streak: {days} day{}", if days == 1 { "" } else { "s" })
}

/// `N door(s) closed`, when there is one.
pub(crate) fn doors_closed(doors: usize) -> Option<String> {
    (doors > 0).then(|| format!("{doors} door{} closed", if doors == 1 { "" } else { "s" }))
}
