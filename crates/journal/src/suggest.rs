//! `suggest`: a few concrete micro shifts to try next, drawn from the journal itself, each
//! small enough for five minutes and each one that `suggest --take N` can plan as a shift.
//!
//! The rules: people first, those not reached the longest (never a follow-up with
//! someone reached in the last 7 days; 30 days without contact makes a person stale);
//! then ideas being explored or pursued, those untouched the longest (two weeks without
//! a done shift is untouched); then a buddy, while none follows; then general ones, varied
//! by day, to make five.

use jiff::civil::Date;

use crate::catalog::Catalog;
use crate::model::{IdeaStatus, PersonStatus};
use crate::summary::Summary;

const GENERAL: &[&str] = &[
    "Write down three things you lost track of time doing this month",
    "Message one former colleague to ask what their work is like now",
    "Skim one job posting that sounds fun, and note the single line that drew you in",
    "Book a free taster class or webinar in something you are curious about",
    "Ask a friend: \"what do you think I'd be good at?\"",
    "Write one sentence on what a great ordinary workday would look like",
];

/// Offered while no buddy follows the journal.
pub const BUDDY: &str =
    "Ask one friend to be your accountability buddy (then: nudge buddy invite THEIR-NAME)";

/// Someone reached this many days ago or less gets no follow-up suggestion.
pub const FOLLOW_UP_AFTER_DAYS: i64 = 7;
/// Someone not reached for this many days is stale.
pub const STALE_AFTER_DAYS: i64 = 30;
/// An idea with no done shift for this many days is untouched.
pub const UNTOUCHED_AFTER_DAYS: i64 = 14;

/// One suggestion: its text (with the `+idea` and `@person` tags it is about), and the
/// canonical ids of those ideas and people, for planning it as a shift.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggestion {
    /// What to do.
    pub text: String,
    /// The ideas it serves (canonical ids).
    pub ideas: Vec<String>,
    /// The people it involves (canonical ids).
    pub people: Vec<String>,
}

impl Suggestion {
    fn general(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            ideas: Vec::new(),
            people: Vec::new(),
        }
    }
}

/// Days from `date` (`YYYY-MM-DD`) to `today`; `None` if it does not parse.
pub(crate) fn days_since(date: &str, today: Date) -> Option<i64> {
    let date: Date = date.parse().ok()?;
    date.until(today)
        .ok()
        .map(|span| i64::from(span.get_days()))
}

/// Up to five suggestions, most specific first. `today` varies the general ones from day
/// to day.
pub fn suggest(catalog: &Catalog, summary: &Summary, today: Date) -> Vec<Suggestion> {
    let mut out = Vec::new();
    let mut people: Vec<_> = catalog
        .canonical_people()
        .map(|p| {
            let last = summary.last_contact(&catalog.person_group(&p.id));
            (last.and_then(|d| days_since(d, today)), last, p)
        })
        // Reached within the week: leave them be.
        .filter(|(days, _, _)| days.is_none_or(|d| d > FOLLOW_UP_AFTER_DAYS))
        .collect();
    // Never reached first, then the longest ago.
    people.sort_by(|a, b| {
        let key = |days: Option<i64>| days.map_or(i64::MIN, |d| -d);
        key(a.0)
            .cmp(&key(b.0))
            .then_with(|| a.2.name.cmp(&b.2.name))
    });
    for (days, last, person) in people.iter().take(2) {
        let tag = tag('@', &person.name);
        let text = match (person.effective_status(*last), days, last) {
            (PersonStatus::ToContact, None, _) => {
                format!("Draft a two-line hello to {tag}: who you are and one question")
            }
            (PersonStatus::Dormant, _, _) => {
                format!("Send {tag} a link they'd like, no ask attached")
            }
            (_, Some(days), _) if *days > STALE_AFTER_DAYS => format!(
                "It has been {days} days since you reached {tag}: send one line on what you are trying now"
            ),
            (_, Some(_), Some(date)) => format!(
                "Follow up with {tag} (last contact {date}): share one thing you tried since"
            ),
            _ => format!("Suggest a 15-minute coffee or call to {tag}"),
        };
        out.push(Suggestion {
            text,
            ideas: Vec::new(),
            people: vec![person.id.clone()],
        });
    }
    let mut ideas: Vec<_> = catalog
        .canonical_ideas()
        .filter(|i| matches!(i.status, IdeaStatus::Exploring | IdeaStatus::Pursuing))
        .map(|i| {
            let group = catalog.idea_group(&i.id);
            let idle = summary
                .idea_last_done(&group)
                .and_then(|d| days_since(d, today));
            (idle, summary.idea_done(&group), i)
        })
        .collect();
    ideas.sort_by(|a, b| {
        let key = |idle: Option<i64>| idle.map_or(i64::MIN, |d| -d);
        key(a.0)
            .cmp(&key(b.0))
            .then_with(|| a.2.title.cmp(&b.2.title))
    });
    for (idle, done, idea) in ideas.iter().take(2) {
        let tag = tag('+', &idea.title);
        let text = match idle {
            _ if *done == 0 => {
                format!("Spend five minutes finding one person who does {tag} for a living")
            }
            Some(days) if *days >= UNTOUCHED_AFTER_DAYS => {
                format!("{tag} has waited {days} days: find one article, event or person about it")
            }
            _ => {
                format!("Find one event, class or group about {tag} this month, and note the date")
            }
        };
        out.push(Suggestion {
            text,
            ideas: vec![idea.id.clone()],
            people: Vec::new(),
        });
    }
    if !catalog.has_buddy(today) {
        out.push(Suggestion::general(BUDDY));
    }
    let seed = today.to_string().bytes().fold(0usize, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(b as usize)
    });
    while out.len() < 5 {
        let pick = GENERAL[(seed + out.len()) % GENERAL.len()];
        if out.iter().any(|s| s.text == pick) {
            break;
        }
        out.push(Suggestion::general(pick));
    }
    out
}

fn tag(sigil: char, name: &str) -> String {
    if name.contains(' ') {
        format!("{sigil}\"{name}\"")
    } else {
        format!("{sigil}{name}")
    }
}
