//! Everything in the journal but its shifts: settings, ideas, people, devices. Small enough
//! to derive whole after every change, and the part that names resolve against.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Contact, Idea, IdeaStatus, Person, Settings};

/// Settings, ideas, people and devices, with the merging of same-named entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// The journal's schema major version.
    pub schema_version: u64,
    /// The journal's schema minor version (0 before minor versions were written).
    pub schema_minor: u64,
    /// Settings that travel with the journal.
    pub settings: Settings,
    /// Every idea record, by raw id (same-titled ones included).
    pub ideas: BTreeMap<String, Idea>,
    /// Every person record, by raw id (same-named ones included).
    pub people: BTreeMap<String, Person>,
    /// Device names by actor id (hex).
    pub devices: BTreeMap<String, String>,
    /// The id of the contacts document.
    pub contacts_doc: Option<String>,
    /// For each idea record that shares its title with an older one, the older one's id.
    pub idea_alias: BTreeMap<String, String>,
    /// For each person record that shares its name with an older one, the older one's id.
    pub person_alias: BTreeMap<String, String>,
    /// Planned days off, by id.
    #[serde(default)]
    pub pauses: BTreeMap<String, crate::Pause>,
    /// Buddy shares the journal lists, by id (never a token).
    #[serde(default)]
    pub shares: BTreeMap<String, crate::share::Share>,
}

/// How names compare: case, `-`, `_` and runs of spaces do not matter.
pub fn normalize(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .replace(['-', '_'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A normalized name with what a person may well type differently left out: accents,
/// spaces, and a trailing plural `s`.
fn fold(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    let mut folded: String = name
        .nfd()
        .filter(|c| !is_combining_mark(*c) && !c.is_whitespace())
        .collect();
    if folded.chars().count() >= 3 && folded.ends_with('s') {
        folded.pop();
    }
    folded
}

/// Whether two normalized names are really likely the same (one a typo or a variant of
/// the other): equal once folded (case, accents, spaces, a trailing s), or a few letters
/// apart in a long name. Short names must match folded: `ux` is not `ui`, nor `bea` `ben`.
fn similar(a: &str, b: &str) -> bool {
    let (a, b) = (fold(a), fold(b));
    if a == b {
        return true;
    }
    let allowed = match a.chars().count().min(b.chars().count()) {
        0..=4 => 0,
        5..=9 => 1,
        _ => 2,
    };
    strsim::levenshtein(&a, &b) <= allowed
}

/// For people, also: one name is the other's first words (`@sam` and then "Sam Lee" is
/// usually the same person, given a surname).
fn similar_person(a: &str, b: &str) -> bool {
    let first_words = |long: &str, short: &str| {
        long.strip_prefix(short)
            .is_some_and(|rest| rest.starts_with(' '))
    };
    similar(a, b) || first_words(a, b) || first_words(b, a)
}

/// Records sharing a name merge into the oldest (then lowest id): two devices that both
/// created `+ux` while offline end up with one idea, and no tag is lost.
fn aliases<'a>(
    entries: impl Iterator<Item = (&'a String, &'a str, i64)>,
) -> BTreeMap<String, String> {
    let mut first: BTreeMap<String, (i64, &'a String)> = BTreeMap::new();
    let mut all = Vec::new();
    for (id, name, created) in entries {
        let key = normalize(name);
        all.push((id, key.clone()));
        let slot = first.entry(key).or_insert((created, id));
        if (created, id) < (slot.0, slot.1) {
            *slot = (created, id);
        }
    }
    all.into_iter()
        .filter_map(|(id, key)| {
            let canonical = first[&key].1;
            (canonical != id).then(|| (id.clone(), canonical.clone()))
        })
        .collect()
}

/// What a `+name` or `@name` turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// An existing record (the canonical id).
    Existing(&'a str),
    /// No record has that name, and none is close: create it.
    New,
    /// No record has that name, but this one is close.
    Similar(&'a str),
}

impl Catalog {
    /// Which pauses count, and the days they cover (`pause::count`).
    pub fn counted_pauses(&self) -> crate::Counted {
        crate::pause::count(self.pauses.values())
    }

    /// Every paused day that counts.
    pub fn paused_days(&self) -> std::collections::BTreeSet<jiff::civil::Date> {
        self.counted_pauses().days
    }

    /// Whether a buddy follows: a share neither revoked nor expired by `today` (UTC).
    pub fn has_buddy(&self, today: jiff::civil::Date) -> bool {
        let start_ms = today
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_or(0, |z| z.timestamp().as_millisecond());
        self.shares.values().any(|s| s.active(start_ms))
    }

    /// Computes the alias maps after the records are read.
    pub fn finish(&mut self) {
        self.idea_alias = aliases(
            self.ideas
                .iter()
                .map(|(id, i)| (id, i.title.as_str(), i.created_at_ms)),
        );
        self.person_alias = aliases(
            self.people
                .iter()
                .map(|(id, p)| (id, p.name.as_str(), p.created_at_ms)),
        );
    }

    /// The canonical id of an idea record.
    pub fn idea_id<'a>(&'a self, raw: &'a str) -> &'a str {
        self.idea_alias.get(raw).map_or(raw, String::as_str)
    }

    /// The canonical id of a person record.
    pub fn person_id<'a>(&'a self, raw: &'a str) -> &'a str {
        self.person_alias.get(raw).map_or(raw, String::as_str)
    }

    /// The idea a raw id refers to, after merging.
    pub fn idea(&self, raw: &str) -> Option<&Idea> {
        self.ideas.get(self.idea_id(raw))
    }

    /// The person a raw id refers to, after merging.
    pub fn person(&self, raw: &str) -> Option<&Person> {
        self.people.get(self.person_id(raw))
    }

    /// Ideas after merging, by id.
    pub fn canonical_ideas(&self) -> impl Iterator<Item = &Idea> {
        self.ideas
            .values()
            .filter(|i| !self.idea_alias.contains_key(&i.id))
    }

    /// People after merging, by id.
    pub fn canonical_people(&self) -> impl Iterator<Item = &Person> {
        self.people
            .values()
            .filter(|p| !self.person_alias.contains_key(&p.id))
    }

    /// Every raw id merged into `canonical`, itself included.
    pub fn idea_group(&self, canonical: &str) -> Vec<String> {
        group(canonical, &self.idea_alias)
    }

    /// Every raw id merged into `canonical`, itself included.
    pub fn person_group(&self, canonical: &str) -> Vec<String> {
        group(canonical, &self.person_alias)
    }

    /// Resolves an idea title.
    pub fn resolve_idea(&self, title: &str) -> Resolved<'_> {
        resolve(
            title,
            self.canonical_ideas()
                .map(|i| (i.id.as_str(), i.title.as_str())),
            similar,
        )
    }

    /// Resolves a person's name.
    pub fn resolve_person(&self, name: &str) -> Resolved<'_> {
        resolve(
            name,
            self.canonical_people()
                .map(|p| (p.id.as_str(), p.name.as_str())),
            similar_person,
        )
    }

    /// A person's contact details, gathered from every record merged into `canonical`
    /// (the first record with a field wins).
    pub fn contact(&self, contacts: &BTreeMap<String, Contact>, canonical: &str) -> Contact {
        let mut merged = Contact::default();
        for raw in self.person_group(canonical) {
            if let Some(c) = contacts.get(&raw) {
                merged.email = merged.email.or(c.email.clone());
                merged.phone = merged.phone.or(c.phone.clone());
                merged.url = merged.url.or(c.url.clone());
            }
        }
        merged
    }

    /// Ideas closed as dead ends: doors closed.
    pub fn doors_closed(&self) -> usize {
        self.canonical_ideas()
            .filter(|i| i.status == IdeaStatus::DeadEnd)
            .count()
    }

    /// A device's name, or the start of its actor id.
    pub fn device_name(&self, actor: &str) -> String {
        self.devices
            .get(actor)
            .cloned()
            .unwrap_or_else(|| format!("device {}", crate::ids::prefix(actor, 8)))
    }
}

fn group(canonical: &str, alias: &BTreeMap<String, String>) -> Vec<String> {
    let mut ids = vec![canonical.to_owned()];
    ids.extend(
        alias
            .iter()
            .filter(|(_, c)| c.as_str() == canonical)
            .map(|(raw, _)| raw.clone()),
    );
    ids
}

fn resolve<'a>(
    name: &str,
    entries: impl Iterator<Item = (&'a str, &'a str)>,
    similar: fn(&str, &str) -> bool,
) -> Resolved<'a> {
    let wanted = normalize(name);
    let mut close = None;
    for (id, title) in entries {
        let have = normalize(title);
        if have == wanted {
            return Resolved::Existing(id);
        }
        if close.is_none() && similar(&have, &wanted) {
            close = Some(title);
        }
    }
    close.map_or(Resolved::New, Resolved::Similar)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IdeaStatus;

    fn idea(id: &str, title: &str, created: i64) -> Idea {
        Idea {
            id: id.into(),
            title: title.into(),
            why: None,
            status: IdeaStatus::Exploring,
            created_at_ms: created,
            closed_at_ms: None,
            closing_note: None,
        }
    }

    #[test]
    fn same_titles_merge_into_the_oldest() {
        let mut c = Catalog::default();
        for i in [
            idea("bbbb", "UX", 5),
            idea("aaaa", "ux", 9),
            idea("cccc", "Teaching", 1),
        ] {
            c.ideas.insert(i.id.clone(), i);
        }
        c.finish();
        assert_eq!(c.idea_id("aaaa"), "bbbb");
        assert_eq!(c.idea("aaaa").unwrap().id, "bbbb");
        assert_eq!(c.canonical_ideas().count(), 2);
        assert_eq!(c.idea_group("bbbb"), vec!["bbbb", "aaaa"]);
        assert_eq!(
            c.resolve_idea("+ux".trim_start_matches('+')),
            Resolved::Existing("bbbb")
        );
        assert_eq!(c.resolve_idea("teachin"), Resolved::Similar("Teaching"));
        // Short names are only the same when they are equal folded.
        assert_eq!(c.resolve_idea("uxx"), Resolved::New);
        assert_eq!(c.resolve_idea("ui"), Resolved::New);
        assert_eq!(c.resolve_idea("UXs"), Resolved::Similar("UX"));
        assert_eq!(c.resolve_idea("Téaching"), Resolved::Similar("Teaching"));
        assert_eq!(c.resolve_idea("teach ings"), Resolved::Similar("Teaching"));
        // An idea's first word is not the idea; a person's first name usually is them.
        assert_eq!(c.resolve_idea("teaching kids"), Resolved::New);
        assert!(similar_person("sam lee", "sam") && similar_person("sam", "sam lee"));
        assert!(!similar_person("samuel", "sam") && !similar_person("bea", "ben"));
        assert_eq!(c.resolve_idea("gardening"), Resolved::New);
        assert_eq!(normalize("  UX_design-Work "), "ux design work");
    }
}
