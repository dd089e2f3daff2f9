//! From what people type to records: id prefixes, `+idea` and `@person` names.

use anyhow::{Result, bail};
use nudge_journal::{Catalog, Idea, Person, Resolved, TagRef, ids};

use crate::output::notice;
use nudge_replica::Replica;

/// The full id of the shift `text` names (an id or a unique prefix of at least 4).
pub fn shift_id(session: &Replica, text: &str) -> Result<String> {
    let prefix = text.trim().trim_start_matches('#').to_ascii_lowercase();
    if !ids::looks_like_prefix(&prefix) {
        bail!(
            "{text:?} is not a shift id: use the id shown by `nudge list` (at least 4 characters)"
        );
    }
    let found = session.shift_ids_with_prefix(&prefix)?;
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => {
            bail!("no shift has an id starting with {prefix:?}; `nudge list --all` shows every id")
        }
        many => {
            let mut listed = Vec::new();
            for id in many.iter().take(5) {
                let text = session
                    .cached_shift(id)?
                    .map(|s| s.text)
                    .unwrap_or_default();
                listed.push(format!("{} ({text})", session.shift_short_id(id)?));
            }
            bail!(
                "{prefix:?} matches {} shifts: {}; type more of the id",
                many.len(),
                listed.join(", ")
            )
        }
    }
}

/// The id among `ids` that `text` is a prefix of (at least 4 characters), if any.
fn by_prefix<'a>(text: &str, ids: impl IntoIterator<Item = &'a String>) -> Result<Option<&'a str>> {
    if !ids::looks_like_prefix(text.trim()) {
        return Ok(None);
    }
    match ids::lookup(text, ids) {
        ids::Lookup::One(id) => Ok(Some(id)),
        ids::Lookup::None => Ok(None),
        ids::Lookup::Many(many) => bail!(
            "{:?} matches {} records: {}; type more of the id",
            text.trim(),
            many.len(),
            many.iter()
                .map(|id| ids::prefix(id, 8))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The idea `text` names: a title (with or without `+`) or an id prefix.
pub fn idea<'a>(catalog: &'a Catalog, text: &str) -> Result<&'a Idea> {
    let title = text.trim().trim_start_matches('+');
    match catalog.resolve_idea(title) {
        Resolved::Existing(id) => Ok(&catalog.ideas[id]),
        other => {
            if let Some(id) = by_prefix(title, catalog.canonical_ideas().map(|i| &i.id))? {
                return Ok(&catalog.ideas[id]);
            }
            match other {
                Resolved::Similar(close) => {
                    bail!("no idea is called {title:?}; did you mean +{close}?")
                }
                _ => bail!(
                    "no idea is called {title:?}; `nudge idea list --all` shows them, `nudge idea add` adds one"
                ),
            }
        }
    }
}

/// The person `text` names: a name (with or without `@`) or an id prefix.
pub fn person<'a>(catalog: &'a Catalog, text: &str) -> Result<&'a Person> {
    let name = text.trim().trim_start_matches('@');
    match catalog.resolve_person(name) {
        Resolved::Existing(id) => Ok(&catalog.people[id]),
        other => {
            if let Some(id) = by_prefix(name, catalog.canonical_people().map(|p| &p.id))? {
                return Ok(&catalog.people[id]);
            }
            match other {
                Resolved::Similar(close) => {
                    bail!("nobody is called {name:?}; did you mean @{close}?")
                }
                _ => bail!(
                    "nobody is called {name:?}; `nudge person list` shows everyone, `nudge person add` adds someone"
                ),
            }
        }
    }
}

/// A shift's words split into text and tags.
#[derive(Default)]
pub struct Words {
    /// The text words, joined by spaces.
    pub text: String,
    /// `+idea` names.
    pub ideas: Vec<String>,
    /// `@person` names.
    pub people: Vec<String>,
}

/// Splits words into text, `+idea` tags and `@person` tags.
pub fn split_words(words: &[String]) -> Result<Words> {
    let mut out = Words::default();
    let mut text = Vec::new();
    for word in words {
        if let Some(name) = word.strip_prefix('+') {
            if name.trim().is_empty() {
                bail!("a lone '+' is not an idea: write +name, e.g. +ux");
            }
            out.ideas.push(name.to_owned());
        } else if let Some(name) = word.strip_prefix('@') {
            if name.trim().is_empty() {
                bail!("a lone '@' is not a person: write @name, e.g. @sam");
            }
            out.people.push(name.to_owned());
        } else {
            text.push(word.as_str());
        }
    }
    out.text = text.join(" ");
    Ok(out)
}

/// This command as typed, with the tag `{sigil}{name}` replaced by `{sigil}{existing}`:
/// the exact command that uses the existing record.
fn corrected(sigil: char, name: &str, existing: &str) -> String {
    let typed = format!("{sigil}{name}");
    let mut words = vec!["nudge".to_owned()];
    for arg in std::env::args().skip(1) {
        let arg = if arg == typed {
            format!("{sigil}{existing}")
        } else {
            arg
        };
        words.push(crate::output::shell_word(&arg));
    }
    words.join(" ")
}

/// Resolves tag names to records; unknown names become new records (with a notice), and a
/// name really likely the same as an existing one is an error (that says the command using
/// the existing one) unless `allow_new`.
pub fn tag_refs(
    catalog: &Catalog,
    ideas: &[String],
    people: &[String],
    allow_new: bool,
) -> Result<(Vec<TagRef>, Vec<TagRef>)> {
    let mut idea_refs = Vec::new();
    for name in ideas {
        idea_refs.push(match catalog.resolve_idea(name) {
            Resolved::Existing(id) => TagRef::Existing(id.to_owned()),
            Resolved::Similar(close) if !allow_new => bail!(
                "no idea is called {name:?}, but +{close} is: {}  (or add --new to create +{name})",
                corrected('+', name, close)
            ),
            _ => TagRef::New(name.trim().to_owned()),
        });
    }
    let mut person_refs = Vec::new();
    for name in people {
        person_refs.push(match catalog.resolve_person(name) {
            Resolved::Existing(id) => TagRef::Existing(id.to_owned()),
            Resolved::Similar(close) if !allow_new => bail!(
                "nobody is called {name:?}, but @{close} is: {}  (or add --new to add @{name})",
                corrected('@', name, close)
            ),
            _ => TagRef::New(name.trim().to_owned()),
        });
    }
    Ok((idea_refs, person_refs))
}

/// Tells the user which records a command created on first use.
pub fn announce_created(created: &nudge_journal::Created) {
    for (_, title) in &created.ideas {
        notice(format!("new idea +{title}"));
    }
    for (_, name) in &created.people {
        notice(format!("new person @{name}"));
    }
}
