//! `suggest`: a few concrete micro shifts to try next, drawn from the journal itself.

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

/// Up to five suggestions, most specific first. `today` (as `YYYY-MM-DD`) varies the general
/// ones from day to day.
pub fn suggest(catalog: &Catalog, summary: &Summary, today: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut people: Vec<_> = catalog
        .canonical_people()
        .map(|p| (summary.last_contact(&catalog.person_group(&p.id)), p))
        .collect();
    people.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
    for (last, person) in people.iter().take(2) {
        let tag = tag('@', &person.name);
        out.push(match (person.status, last) {
            (PersonStatus::ToContact, None) => {
                format!("Draft a two-line hello to {tag}: who you are and one question")
            }
            (PersonStatus::Dormant, _) => format!("Send {tag} a link they'd like, no ask attached"),
            (_, Some(date)) => format!(
                "Follow up with {tag} (last contact {date}): share one thing you tried since"
            ),
            _ => format!("Suggest a 15-minute coffee or call to {tag}"),
        });
    }
    let mut ideas: Vec<_> = catalog
        .canonical_ideas()
        .filter(|i| matches!(i.status, IdeaStatus::Exploring | IdeaStatus::Pursuing))
        .map(|i| (summary.idea_done(&catalog.idea_group(&i.id)), i))
        .collect();
    ideas.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.title.cmp(&b.1.title)));
    for (done, idea) in ideas.iter().take(2) {
        let tag = tag('+', &idea.title);
        out.push(if *done == 0 {
            format!("Spend five minutes finding one person who does {tag} for a living")
        } else {
            format!("Find one event, class or group about {tag} this month, and note the date")
        });
    }
    let seed = today.bytes().fold(0usize, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(b as usize)
    });
    while out.len() < 5 {
        let pick = GENERAL[(seed + out.len()) % GENERAL.len()];
        if out.iter().any(|s| s == pick) {
            break;
        }
        out.push(pick.to_owned());
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
