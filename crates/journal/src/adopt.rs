//! Adoption: a device that joins an account which already has a journal carries its own
//! records over into that journal, as new changes.
//!
//! Two separately created journals are never merged as documents: each created its root
//! maps in its first change, so Automerge would see two conflicting `shifts` maps and show
//! only one side. Instead every shift, idea and person the adopted journal lacks is copied
//! in, field by field, under its own id. Records keep their ids, so adopting again (after a
//! crash half-way, say) finds them present and copies nothing twice; same-named ideas and
//! people from both sides are merged by readers like any other same-named records.

use automerge::hydrate::Value as HValue;
use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ObjId, ObjType, ROOT, ReadDoc};

use crate::contacts::Contacts;
use crate::journal::{Journal, obj_at, secs};
use crate::{Error, Now};

/// How many records adoption carried over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Carried {
    /// Shifts.
    pub shifts: usize,
    /// Ideas.
    pub ideas: usize,
    /// People.
    pub people: usize,
    /// People's contact details.
    pub contacts: usize,
}

impl Carried {
    /// Whether nothing was carried over.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Where a value goes: a key of a map, or an index of a list.
#[derive(Clone, Copy)]
enum Place<'a> {
    Key(&'a str),
    Index(usize),
}

/// Writes a hydrated value at `place` of `obj`, recursively.
fn write_value(
    tx: &mut Transaction<'_>,
    obj: &ObjId,
    place: Place<'_>,
    value: &HValue,
) -> Result<(), Error> {
    let object = |tx: &mut Transaction<'_>, kind: ObjType| match place {
        Place::Key(key) => tx.put_object(obj, key, kind),
        Place::Index(i) => tx.insert_object(obj, i, kind),
    };
    match value {
        HValue::Scalar(s) => match place {
            Place::Key(key) => tx.put(obj, key, s.clone())?,
            Place::Index(i) => tx.insert(obj, i, s.clone())?,
        },
        HValue::Map(map) => {
            let child = object(tx, ObjType::Map)?;
            for (k, v) in map.iter() {
                write_value(tx, &child, Place::Key(k), &v.value)?;
            }
        }
        HValue::List(list) => {
            let child = object(tx, ObjType::List)?;
            for (i, item) in list.iter().enumerate() {
                write_value(tx, &child, Place::Index(i), &item.value)?;
            }
        }
        HValue::Text(text) => {
            let child = object(tx, ObjType::Text)?;
            tx.splice_text(&child, 0, 0, &text.to_string())?;
        }
    }
    Ok(())
}

/// Copies every entry of the map `key` under the root of `from` that `tx`'s map of the same
/// name lacks. Returns how many were copied.
fn copy_missing(
    tx: &mut Transaction<'_>,
    into: &ObjId,
    from: &automerge::Automerge,
    key: &str,
) -> Result<usize, Error> {
    let Some(source) = obj_at(from, &ROOT, key) else {
        return Ok(0);
    };
    let HValue::Map(entries) = ReadDoc::hydrate(from, &source, None)? else {
        return Ok(0);
    };
    let mut ids: Vec<&String> = entries.iter().map(|(id, _)| id).collect();
    ids.sort();
    let mut copied = 0;
    for id in ids {
        if tx.get(into, id.as_str())?.is_some() {
            continue;
        }
        if let Some(value) = entries.get(id) {
            write_value(tx, into, Place::Key(id), value)?;
            copied += 1;
        }
    }
    Ok(copied)
}

impl Journal {
    /// Copies into this journal, as one change, every shift, idea and person of `from`
    /// that it does not have (by id). Settings and devices stay as they are here. Makes no
    /// change when there is nothing to carry over.
    pub fn adopt(&mut self, now: &Now, from: &Journal) -> Result<Carried, Error> {
        self.check_writable()?;
        let roots = self.roots()?;
        let mut tx = self.doc.transaction();
        let copied = (|| -> Result<Carried, Error> {
            Ok(Carried {
                shifts: copy_missing(&mut tx, &roots.shifts, &from.doc, "shifts")?,
                ideas: copy_missing(&mut tx, &roots.ideas, &from.doc, "ideas")?,
                people: copy_missing(&mut tx, &roots.people, &from.doc, "people")?,
                contacts: 0,
            })
        })();
        match copied {
            Ok(carried) if !carried.is_empty() => {
                tx.commit_with(
                    CommitOptions::default()
                        .with_message(format!(
                            "Carry over {}, {} and {} from this device's own journal",
                            counted(carried.shifts, "shift", "shifts"),
                            counted(carried.ideas, "idea", "ideas"),
                            counted(carried.people, "person", "people")
                        ))
                        .with_time(secs(now)),
                );
                Ok(carried)
            }
            Ok(carried) => {
                tx.rollback();
                Ok(carried)
            }
            Err(e) => {
                tx.rollback();
                Err(e)
            }
        }
    }
}

impl Contacts {
    /// Copies into this document, as one change, the contact details of every person of
    /// `from` that it does not have. Returns how many people's details were copied.
    pub fn adopt(&mut self, now: &Now, from: &Contacts) -> Result<usize, Error> {
        let mut tx = self.doc_mut().transaction();
        let people = match tx.get(ROOT, "people")? {
            Some((automerge::Value::Object(ObjType::Map), id)) => id,
            _ => {
                tx.rollback();
                return Err(Error::NotAJournal(
                    "the contacts document has no people map".into(),
                ));
            }
        };
        match copy_missing(&mut tx, &people, from.doc(), "people") {
            Ok(0) => {
                tx.rollback();
                Ok(0)
            }
            Ok(n) => {
                tx.commit_with(
                    CommitOptions::default()
                        .with_message(format!(
                            "Carry over the contact details of {}",
                            counted(n, "person", "people")
                        ))
                        .with_time(secs(now)),
                );
                Ok(n)
            }
            Err(e) => {
                tx.rollback();
                Err(e)
            }
        }
    }
}

/// `1 shift`, `2 shifts`: for change messages.
fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Contact, NewShift, TagRef};
    use automerge::ActorId;

    fn now() -> Now {
        Now::new(jiff::Timestamp::UNIX_EPOCH, jiff::tz::TimeZone::UTC)
    }

    fn journal(actor: &ActorId) -> Journal {
        Journal::create(actor.clone(), &now(), "laptop", "contacts")
    }

    #[test]
    fn adoption_copies_what_is_missing_once_and_keeps_both_sides() {
        let now = now();
        let phone = ActorId::random();
        let mut account = journal(&ActorId::random());
        account
            .add_shift(
                &now,
                NewShift {
                    text: "call Ana".into(),
                    ideas: vec![TagRef::New("ux".into())],
                    ..Default::default()
                },
            )
            .unwrap();
        let mut own = journal(&phone);
        for text in ["email Sam", "book a class"] {
            own.add_shift(
                &now,
                NewShift {
                    text: text.into(),
                    ideas: vec![TagRef::New("teaching".into())],
                    ..Default::default()
                },
            )
            .unwrap();
        }
        let mut mine = Journal::load(&account.doc().save(), phone.clone()).unwrap();
        let carried = mine.adopt(&now, &own).unwrap();
        // Both "teaching" records (made by separate adds) come along; readers merge them.
        assert_eq!((carried.shifts, carried.ideas, carried.people), (2, 2, 0));
        let texts: Vec<String> = mine.shifts().unwrap().into_iter().map(|s| s.text).collect();
        assert_eq!(texts.len(), 3, "{texts:?}");
        for text in ["call Ana", "email Sam", "book a class"] {
            assert!(texts.iter().any(|t| t == text), "{texts:?}");
        }
        let catalog = mine.catalog().unwrap();
        assert_eq!(catalog.ideas.len(), 3);
        assert_eq!(catalog.ideas.len() - catalog.idea_alias.len(), 2);
        // Again: nothing to copy, no change made.
        let heads = mine.doc().get_heads();
        assert!(mine.adopt(&now, &own).unwrap().is_empty());
        assert_eq!(mine.doc().get_heads(), heads);
        // The account's other devices see the same after merging the adoption change.
        let mut other = Journal::load(&account.doc().save(), ActorId::random()).unwrap();
        other.doc_mut().merge(&mut mine.doc().clone()).unwrap();
        assert_eq!(other.shifts().unwrap(), mine.shifts().unwrap());
    }

    #[test]
    fn fields_written_by_other_apps_are_copied_whole() {
        // A shift as a JavaScript client might write it: Text, a list, a nested map.
        let now = now();
        let mut own = journal(&ActorId::random());
        {
            let roots = own.roots().unwrap();
            let mut tx = own.doc.transaction();
            let shift = tx.put_object(&roots.shifts, "js1", ObjType::Map).unwrap();
            let text = tx.put_object(&shift, "text", ObjType::Text).unwrap();
            tx.splice_text(&text, 0, 0, "Sketch a portfolio").unwrap();
            tx.put(&shift, "status", "planned").unwrap();
            let list = tx.put_object(&shift, "links", ObjType::List).unwrap();
            tx.insert(&list, 0, "https://example.org").unwrap();
            let inner = tx.insert_object(&list, 1, ObjType::Map).unwrap();
            tx.put(&inner, "k", 1).unwrap();
            tx.commit();
        }
        let mut account = journal(&ActorId::random());
        assert_eq!(account.adopt(&now, &own).unwrap().shifts, 1);
        let copied = |j: &Journal| {
            let roots = j.roots().unwrap();
            let id = obj_at(j.doc(), &roots.shifts, "js1").unwrap();
            ReadDoc::hydrate(j.doc(), &id, None).unwrap()
        };
        assert_eq!(copied(&account), copied(&own));
        let shift = account.shift("js1").unwrap().unwrap();
        assert_eq!(shift.text, "Sketch a portfolio");
    }

    #[test]
    fn contact_details_are_carried_over() {
        let now = now();
        let mut own = Contacts::create(ActorId::random(), &now);
        own.set(
            &now,
            "p1",
            &Contact {
                email: Some("sam@example.org".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let mut account = Contacts::create(ActorId::random(), &now);
        assert_eq!(account.adopt(&now, &own).unwrap(), 1);
        assert_eq!(account.all(), own.all());
        assert_eq!(account.adopt(&now, &own).unwrap(), 0);
    }
}
