//! The contacts document: people's email, phone and url, kept apart from the journal so that
//! `person forget` can erase them for good by rebuilding this small document under a new id.

use std::collections::BTreeMap;

use automerge::hydrate::Value as HValue;
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ObjType, ROOT, ReadDoc, Value};

use crate::model::Contact;
use crate::values::non_empty;
use crate::{Error, Now};

/// The contacts document.
pub struct Contacts {
    doc: Automerge,
}

impl Contacts {
    /// A new, empty contacts document.
    pub fn create(actor: ActorId, now: &Now) -> Self {
        let mut doc = Automerge::new().with_actor(actor);
        let mut tx = doc.transaction();
        tx.put_object(ROOT, "people", ObjType::Map)
            .expect("writing to a new document cannot fail");
        tx.commit_with(
            CommitOptions::default()
                .with_message("Create contacts")
                .with_time(now.ms().div_euclid(1000)),
        );
        Self { doc }
    }

    /// Loads stored bytes.
    pub fn load(bytes: &[u8], actor: ActorId) -> Result<Self, Error> {
        let doc = Automerge::load(bytes).map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok(Self {
            doc: doc.with_actor(actor),
        })
    }

    /// The document.
    pub fn doc(&self) -> &Automerge {
        &self.doc
    }

    /// The document, mutably (for sync and adoption).
    pub fn doc_mut(&mut self) -> &mut Automerge {
        &mut self.doc
    }

    /// Every person's contact details, by person id.
    pub fn all(&self) -> BTreeMap<String, Contact> {
        let Ok(Some((Value::Object(ObjType::Map), people))) = self.doc.get(ROOT, "people") else {
            return BTreeMap::new();
        };
        let Ok(HValue::Map(people)) = ReadDoc::hydrate(&self.doc, &people, None) else {
            return BTreeMap::new();
        };
        people
            .iter()
            .filter_map(|(id, v)| match &v.value {
                HValue::Map(m) => Some((
                    id.clone(),
                    Contact {
                        email: non_empty(m, "email"),
                        phone: non_empty(m, "phone"),
                        url: non_empty(m, "url"),
                    },
                )),
                _ => None,
            })
            .filter(|(_, c)| !c.is_empty())
            .collect()
    }

    /// Sets the given fields of a person's details (`Some("")` removes one) as one change.
    pub fn set(&mut self, now: &Now, person: &str, update: &Contact) -> Result<(), Error> {
        let mut tx = self.doc.transaction();
        let people = match tx.get(ROOT, "people")? {
            Some((Value::Object(ObjType::Map), id)) => id,
            _ => tx.put_object(ROOT, "people", ObjType::Map)?,
        };
        let obj = match tx.get(&people, person)? {
            Some((Value::Object(ObjType::Map), id)) => id,
            _ => tx.put_object(&people, person, ObjType::Map)?,
        };
        for (key, value) in [
            ("email", &update.email),
            ("phone", &update.phone),
            ("url", &update.url),
        ] {
            match value.as_deref().map(str::trim) {
                Some("") => crate::commands::delete_if_set(&mut tx, &obj, key)?,
                Some(v) => tx.put(&obj, key, v)?,
                None => {}
            }
        }
        tx.commit_with(
            CommitOptions::default()
                .with_message(format!(
                    "Set contact details of {}",
                    crate::ids::prefix(person, 8)
                ))
                .with_time(now.ms().div_euclid(1000)),
        );
        Ok(())
    }

    /// A new contacts document with everything but `forget`'s details, written fresh so that
    /// no change in it has ever held them.
    pub fn without(&self, forget: &[String], actor: ActorId, now: &Now) -> Result<Self, Error> {
        let mut fresh = Self::create(actor, now);
        for (person, contact) in self.all() {
            if !forget.contains(&person) {
                fresh.set(now, &person, &contact)?;
            }
        }
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgetting_rebuilds_without_a_trace() {
        let now = Now::new(jiff::Timestamp::UNIX_EPOCH, jiff::tz::TimeZone::UTC);
        let mut c = Contacts::create(ActorId::random(), &now);
        let sam = Contact {
            email: Some("sam@example.org".into()),
            phone: Some("+1 555".into()),
            url: None,
        };
        c.set(&now, "p-sam", &sam).unwrap();
        c.set(
            &now,
            "p-ann",
            &Contact {
                email: Some("ann@example.org".into()),
                ..Contact::default()
            },
        )
        .unwrap();
        assert_eq!(c.all()["p-sam"], sam);
        let fresh = c
            .without(&["p-sam".into()], ActorId::random(), &now)
            .unwrap();
        assert!(!fresh.all().contains_key("p-sam"));
        assert!(fresh.all().contains_key("p-ann"));
        let bytes = fresh.doc().save_nocompress();
        assert!(!bytes.windows(15).any(|w| w == b"sam@example.org"));
    }
}
