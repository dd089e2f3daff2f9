//! The contacts document: people's email, phone and url, kept apart from the journal so that
//! `person forget` can erase them for good by rebuilding this small document under a new id.

use std::collections::BTreeMap;

use automerge::hydrate::Value as HValue;
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ObjId, ObjType, ROOT, ReadDoc, Value};

use crate::model::Contact;
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
    ///
    /// Two devices that give the same person their first details at the same time each
    /// create a record for them; Automerge keeps both, in conflict, and would show one.
    /// Reading merges them, field by field, the winning record's value first, so neither
    /// device's details are lost (`set` then writes to both).
    pub fn all(&self) -> BTreeMap<String, Contact> {
        let Ok(Some((Value::Object(ObjType::Map), people))) = self.doc.get(ROOT, "people") else {
            return BTreeMap::new();
        };
        self.doc
            .keys(&people)
            .map(|person| {
                let contact = self.merged(&people, &person);
                (person, contact)
            })
            .filter(|(_, c)| !c.is_empty())
            .collect()
    }

    /// The records of `person` (more than one after concurrent first edits), winner first.
    fn records(doc: &impl ReadDoc, people: &ObjId, person: &str) -> Vec<ObjId> {
        let mut records: Vec<ObjId> = doc
            .get_all(people, person)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(value, id)| matches!(value, Value::Object(ObjType::Map)).then_some(id))
            .collect();
        // `get_all` lists the conflicting values in the order of their operation ids; the
        // one `get` shows (the winner) is the last.
        records.reverse();
        records
    }

    fn merged(&self, people: &ObjId, person: &str) -> Contact {
        let records: Vec<BTreeMap<String, HValue>> = Self::records(&self.doc, people, person)
            .iter()
            .filter_map(|obj| match ReadDoc::hydrate(&self.doc, obj, None) {
                Ok(HValue::Map(m)) => Some(
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.value.clone()))
                        .collect(),
                ),
                _ => None,
            })
            .collect();
        let field = |key: &str| {
            records.iter().find_map(|m| match m.get(key) {
                Some(HValue::Scalar(automerge::ScalarValue::Str(s))) if !s.is_empty() => {
                    Some(s.to_string())
                }
                _ => None,
            })
        };
        Contact {
            email: field("email"),
            phone: field("phone"),
            url: field("url"),
        }
    }

    /// Sets the given fields of a person's details (`Some("")` removes one) as one change,
    /// in every record of the person (see [`Contacts::all`]).
    pub fn set(&mut self, now: &Now, person: &str, update: &Contact) -> Result<(), Error> {
        let mut tx = self.doc.transaction();
        let people = match tx.get(ROOT, "people")? {
            Some((Value::Object(ObjType::Map), id)) => id,
            _ => tx.put_object(ROOT, "people", ObjType::Map)?,
        };
        let mut records = Self::records(&tx, &people, person);
        if records.is_empty() {
            records.push(tx.put_object(&people, person, ObjType::Map)?);
        }
        for obj in &records {
            for (key, value) in [
                ("email", &update.email),
                ("phone", &update.phone),
                ("url", &update.url),
            ] {
                match value.as_deref().map(str::trim) {
                    Some("") => crate::commands::delete_if_set(&mut tx, obj, key)?,
                    Some(v) => tx.put(obj, key, v)?,
                    None => {}
                }
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

    #[test]
    fn first_details_given_on_two_devices_at_once_are_both_kept() {
        let now = Now::new(jiff::Timestamp::UNIX_EPOCH, jiff::tz::TimeZone::UTC);
        let laptop = Contacts::create(ActorId::random(), &now);
        let mut phone = Contacts::load(&laptop.doc().save(), ActorId::random()).unwrap();
        let mut laptop = laptop;
        let email = Contact {
            email: Some("sam@example.org".into()),
            ..Contact::default()
        };
        let number = Contact {
            phone: Some("+44 20 7946 0000".into()),
            ..Contact::default()
        };
        laptop.set(&now, "p-sam", &email).unwrap();
        phone.set(&now, "p-sam", &number).unwrap();
        laptop.doc_mut().merge(phone.doc_mut()).unwrap();
        phone.doc_mut().merge(laptop.doc_mut()).unwrap();
        let both = Contact {
            email: email.email.clone(),
            phone: number.phone.clone(),
            url: None,
        };
        assert_eq!(laptop.all()["p-sam"], both);
        assert_eq!(phone.all()["p-sam"], both);
        // A later edit or removal reaches every record: nothing stale shows through.
        laptop
            .set(
                &now,
                "p-sam",
                &Contact {
                    email: Some(String::new()),
                    phone: Some("+1 555".into()),
                    url: None,
                },
            )
            .unwrap();
        assert_eq!(
            laptop.all()["p-sam"],
            Contact {
                email: None,
                phone: Some("+1 555".into()),
                url: None,
            }
        );
    }
}
