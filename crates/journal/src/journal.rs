//! The journal document: its schema and how it is read. The commands that change it are in
//! `commands.rs`; every one is a single Automerge change, made through `Journal::change`.

use automerge::hydrate::{Map, Value as HValue};
use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ActorId, Automerge, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};

use crate::catalog::Catalog;
use crate::model::{
    DoneAt, Idea, IdeaStatus, Kind, Person, PersonStatus, Settings, Shift, ShiftStatus,
};
use crate::values::{int, non_empty, parsed, set, string, time_ms};
use crate::when::Now;
use crate::{Error, ids};

/// The schema major version this code writes. A journal with a higher one is read-only here.
pub const SCHEMA_MAJOR: u64 = 1;

/// The schema minor version this code writes: raised by additive changes, which older
/// readers ignore (docs/schema.md, "Versioning"). 1 (2026-12-07): pauses, `shrunk_from`,
/// the `display_name` setting and the shares' cheers documents. A journal without the key
/// is 1.0, and every write of this code brings it up to this.
pub const SCHEMA_MINOR: u64 = 1;

/// The root objects of a journal.
pub(crate) struct Roots {
    pub shifts: ObjId,
    pub ideas: ObjId,
    pub people: ObjId,
    pub settings: ObjId,
    pub devices: ObjId,
}

/// A journal: one Automerge document.
pub struct Journal {
    pub(crate) doc: Automerge,
    /// This device's name: recorded (in the same change) by the first command this device
    /// makes, and again whenever it differs from the journal's record.
    device: Option<String>,
}

pub(crate) fn obj_at(doc: &impl ReadDoc, parent: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(parent, key).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

pub(crate) fn secs(now: &Now) -> i64 {
    now.ms().div_euclid(1000)
}

/// The first 8 characters of an id, for change messages.
pub(crate) fn brief(id: &str) -> &str {
    ids::prefix(id, 8)
}

impl Journal {
    /// A new journal, created with one change, written by `actor`.
    pub fn create(actor: ActorId, now: &Now, device: &str, contacts_doc: &str) -> Self {
        Self::create_with_settings(actor, now, device, contacts_doc, &Settings::default())
    }

    /// A new journal whose settings start as `settings` (the user's config file).
    pub fn create_with_settings(
        actor: ActorId,
        now: &Now,
        device: &str,
        contacts_doc: &str,
        settings: &Settings,
    ) -> Self {
        let actor_hex = actor.to_hex_string();
        let mut doc = Automerge::new().with_actor(actor);
        let settings_values = settings;
        let mut tx = doc.transaction();
        let ok: Result<(), automerge::AutomergeError> = (|| {
            // Signed: JavaScript reads unsigned integers as BigInt.
            tx.put(ROOT, "schema_version", SCHEMA_MAJOR as i64)?;
            tx.put(ROOT, "schema_minor", SCHEMA_MINOR as i64)?;
            tx.put(ROOT, "created_at", ScalarValue::Timestamp(now.ms()))?;
            let settings = tx.put_object(ROOT, "settings", ObjType::Map)?;
            let defaults = settings_values;
            tx.put(&settings, "weekly_goal", i64::from(defaults.weekly_goal))?;
            tx.put(&settings, "week_start", defaults.week_start.as_str())?;
            for key in ["shifts", "ideas", "people", "shares"] {
                tx.put_object(ROOT, key, ObjType::Map)?;
            }
            let devices = tx.put_object(ROOT, "devices", ObjType::Map)?;
            let this = tx.put_object(&devices, actor_hex.as_str(), ObjType::Map)?;
            tx.put(&this, "first_seen", ScalarValue::Timestamp(now.ms()))?;
            tx.put(&this, "name", device)?;
            tx.put(ROOT, "contacts_doc", contacts_doc)?;
            Ok(())
        })();
        ok.expect("writing to a new document cannot fail");
        tx.commit_with(
            CommitOptions::default()
                .with_message("Create journal")
                .with_time(secs(now)),
        );
        Self {
            doc,
            device: Some(device.to_owned()),
        }
    }

    /// Loads a journal from stored bytes (a saved document and/or changes) for `actor`.
    pub fn load(bytes: &[u8], actor: ActorId) -> Result<Self, Error> {
        let doc = Automerge::load(bytes).map_err(|e| Error::Corrupt(e.to_string()))?;
        let journal = Self {
            doc: doc.with_actor(actor),
            device: None,
        };
        journal.roots()?;
        Ok(journal)
    }

    /// Wraps a document (for sync and tests).
    pub fn from_doc(doc: Automerge) -> Result<Self, Error> {
        let journal = Self { doc, device: None };
        journal.roots()?;
        Ok(journal)
    }

    /// The document.
    pub fn doc(&self) -> &Automerge {
        &self.doc
    }

    /// The document, mutably (for sync).
    pub fn doc_mut(&mut self) -> &mut Automerge {
        &mut self.doc
    }

    pub(crate) fn roots(&self) -> Result<Roots, Error> {
        let get = |key: &str| {
            obj_at(&self.doc, &ROOT, key)
                .ok_or_else(|| Error::NotAJournal(format!("it has no {key:?} map")))
        };
        Ok(Roots {
            shifts: get("shifts")?,
            ideas: get("ideas")?,
            people: get("people")?,
            settings: get("settings")?,
            devices: get("devices")?,
        })
    }

    /// The schema major version the journal says it has.
    pub fn schema_version(&self) -> u64 {
        self.root_number("schema_version")
    }

    /// The schema minor version the journal says it has (0 for a journal made before
    /// minor versions were written).
    pub fn schema_minor(&self) -> u64 {
        self.root_number("schema_minor")
    }

    fn root_number(&self, key: &str) -> u64 {
        match self.doc.get(ROOT, key) {
            Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Uint(u) => *u,
                ScalarValue::Int(i) => (*i).max(0) as u64,
                ScalarValue::F64(f) => *f as u64,
                _ => 0,
            },
            _ => 0,
        }
    }

    /// Refuses to write a journal made by a newer major version of the schema.
    pub fn check_writable(&self) -> Result<(), Error> {
        let version = self.schema_version();
        if version > SCHEMA_MAJOR {
            return Err(Error::NewerSchema {
                found: version,
                supported: SCHEMA_MAJOR,
            });
        }
        Ok(())
    }

    pub(crate) fn hydrate_map(&self, obj: &ObjId) -> Map {
        match ReadDoc::hydrate(&self.doc, obj, None) {
            Ok(HValue::Map(m)) => m,
            _ => Map::default(),
        }
    }

    /// Settings, ideas, people and devices.
    pub fn catalog(&self) -> Result<Catalog, Error> {
        let roots = self.roots()?;
        let settings = self.hydrate_map(&roots.settings);
        let defaults = Settings::default();
        let mut catalog = Catalog {
            schema_version: self.schema_version(),
            schema_minor: self.schema_minor(),
            settings: Settings {
                weekly_goal: int(&settings, "weekly_goal")
                    .and_then(|g| u32::try_from(g).ok())
                    .unwrap_or(defaults.weekly_goal),
                week_start: parsed(&settings, "week_start", defaults.week_start),
                display_name: non_empty(&settings, "display_name"),
            },
            contacts_doc: match self.doc.get(ROOT, "contacts_doc") {
                Ok(Some((Value::Scalar(s), _))) => s.as_str().map(str::to_owned),
                Ok(Some((Value::Object(ObjType::Text), id))) => self.doc.text(&id).ok(),
                _ => None,
            },
            ..Catalog::default()
        };
        for (id, v) in self.hydrate_map(&roots.ideas).iter() {
            if let HValue::Map(m) = &v.value {
                catalog.ideas.insert(id.clone(), read_idea(id, m));
            }
        }
        for (id, v) in self.hydrate_map(&roots.people).iter() {
            if let HValue::Map(m) = &v.value {
                catalog.people.insert(id.clone(), read_person(id, m));
            }
        }
        for (actor, v) in self.hydrate_map(&roots.devices).iter() {
            if let HValue::Map(m) = &v.value
                && let Some(name) = string(m, "name")
            {
                catalog.devices.insert(actor.clone(), name);
            }
        }
        catalog.pauses = crate::pause::read(&self.doc);
        catalog.shares = crate::share::shares_in(&self.doc);
        catalog.finish();
        Ok(catalog)
    }

    /// Every shift, in id order.
    pub fn shifts(&self) -> Result<Vec<Shift>, Error> {
        let roots = self.roots()?;
        let all = self.hydrate_map(&roots.shifts);
        let mut out: Vec<Shift> = all
            .iter()
            .filter_map(|(id, v)| match &v.value {
                HValue::Map(m) => Some(self.read_shift(&roots, id, m)),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// One shift by full id.
    pub fn shift(&self, id: &str) -> Result<Option<Shift>, Error> {
        let roots = self.roots()?;
        let Some(obj) = obj_at(&self.doc, &roots.shifts, id) else {
            return Ok(None);
        };
        let m = self.hydrate_map(&obj);
        Ok(Some(self.read_shift(&roots, id, &m)))
    }

    fn read_shift(&self, roots: &Roots, id: &str, m: &Map) -> Shift {
        let mut status = parsed(m, "status", ShiftStatus::Planned);
        // Marking a shift done is never undone by a concurrent edit: where devices set the
        // status concurrently, done wins, on every replica alike.
        if status != ShiftStatus::Done && m.iter().any(|(k, v)| k == "status" && v.conflict) {
            let done = obj_at(&self.doc, &roots.shifts, id).is_some_and(|obj| {
                self.doc.get_all(&obj, "status").is_ok_and(|all| {
                    all.iter()
                        .any(|(v, _)| v.as_str() == Some(ShiftStatus::Done.as_str()))
                })
            });
            if done {
                status = ShiftStatus::Done;
            }
        }
        let done = match (status, time_ms(m, "done_at")) {
            (ShiftStatus::Done, Some(at_ms)) => Some(DoneAt {
                at_ms,
                date: string(m, "done_date").unwrap_or_default(),
                tz: string(m, "done_tz").unwrap_or_else(|| "UTC".into()),
            }),
            (ShiftStatus::Done, None) => Some(DoneAt {
                at_ms: time_ms(m, "created_at").unwrap_or(0),
                date: string(m, "done_date").unwrap_or_default(),
                tz: string(m, "done_tz").unwrap_or_else(|| "UTC".into()),
            }),
            _ => None,
        };
        let mut done = done;
        if let Some(d) = &mut done
            && d.date.is_empty()
        {
            d.date = crate::when::to_timestamp(d.at_ms)
                .to_zoned(jiff::tz::TimeZone::get(&d.tz).unwrap_or(jiff::tz::TimeZone::UTC))
                .date()
                .to_string();
        }
        Shift {
            id: id.to_owned(),
            text: string(m, "text").unwrap_or_default(),
            status,
            created_at_ms: time_ms(m, "created_at").unwrap_or(0),
            done,
            minutes: int(m, "minutes")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(5),
            kind: parsed(m, "kind", Kind::Other),
            ideas: set(m, "ideas"),
            people: set(m, "people"),
            note: non_empty(m, "note"),
            little_yes: non_empty(m, "little_yes"),
            shrunk_from: non_empty(m, "shrunk_from"),
        }
    }

    /// Runs `f` as one change with `message`, or changes nothing if it fails.
    pub(crate) fn change<T>(
        &mut self,
        now: &Now,
        message: impl FnOnce(&T) -> String,
        f: impl FnOnce(&mut Transaction<'_>, &Roots) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.check_writable()?;
        let roots = self.roots()?;
        let device = self.device.clone();
        let actor = self.doc.get_actor().to_hex_string();
        let behind = self.schema_minor() < SCHEMA_MINOR;
        let mut tx = self.doc.transaction();
        let result = f(&mut tx, &roots).and_then(|value| {
            if let Some(name) = &device {
                name_device(&mut tx, now, &roots, &actor, name)?;
            }
            // A write of this code may use what the minor version added: say so (only
            // beside a real change; two devices writing the same number agree).
            if behind && tx.pending_ops() > 0 {
                tx.put(ROOT, "schema_minor", SCHEMA_MINOR as i64)?;
            }
            Ok(value)
        });
        match result {
            Ok(value) => {
                let message = message(&value);
                tx.commit_with(
                    CommitOptions::default()
                        .with_message(message)
                        .with_time(secs(now)),
                );
                Ok(value)
            }
            Err(e) => {
                tx.rollback();
                Err(e)
            }
        }
    }

    /// Sets this device's name, recorded with the next change it makes.
    pub fn set_device_name(&mut self, name: &str) {
        self.device = Some(name.to_owned());
    }

    /// Records this device's name now, as a change of its own, unless the journal has it.
    /// Returns whether a change was made.
    pub fn register_device(&mut self, now: &Now, name: &str) -> Result<bool, Error> {
        let actor = self.doc.get_actor().to_hex_string();
        let roots = self.roots()?;
        if device_named(&self.doc, &roots, &actor, name) {
            return Ok(false);
        }
        self.device = Some(name.to_owned());
        self.change(now, |_| format!("Name this device {name:?}"), |_, _| Ok(()))?;
        Ok(true)
    }
}

fn device_named(doc: &impl ReadDoc, roots: &Roots, actor: &str, name: &str) -> bool {
    obj_at(doc, &roots.devices, actor).is_some_and(|obj| {
        matches!(doc.get(&obj, "name"), Ok(Some((Value::Scalar(s), _))) if s.as_str() == Some(name))
    })
}

/// Records `name` for `actor` in the devices map, unless it is there already.
fn name_device(
    tx: &mut Transaction<'_>,
    now: &Now,
    roots: &Roots,
    actor: &str,
    name: &str,
) -> Result<(), Error> {
    if device_named(tx, roots, actor, name) {
        return Ok(());
    }
    let obj = match obj_at(tx, &roots.devices, actor) {
        Some(obj) => obj,
        None => {
            let obj = tx.put_object(&roots.devices, actor, ObjType::Map)?;
            tx.put(&obj, "first_seen", ScalarValue::Timestamp(now.ms()))?;
            obj
        }
    };
    tx.put(&obj, "name", name)?;
    Ok(())
}

fn read_idea(id: &str, m: &Map) -> Idea {
    Idea {
        id: id.to_owned(),
        title: string(m, "title").unwrap_or_else(|| "(untitled)".into()),
        why: non_empty(m, "why"),
        status: parsed(m, "status", IdeaStatus::Exploring),
        created_at_ms: time_ms(m, "created_at").unwrap_or(0),
        closed_at_ms: time_ms(m, "closed_at"),
        closing_note: non_empty(m, "closing_note"),
    }
}

fn read_person(id: &str, m: &Map) -> Person {
    Person {
        id: id.to_owned(),
        name: string(m, "name").unwrap_or_else(|| "(unnamed)".into()),
        how_known: non_empty(m, "how_known"),
        notes: non_empty(m, "notes"),
        status: parsed(m, "status", PersonStatus::ToContact),
        created_at_ms: time_ms(m, "created_at").unwrap_or(0),
        status_manual: time_ms(m, "status_set_at").is_some(),
    }
}
