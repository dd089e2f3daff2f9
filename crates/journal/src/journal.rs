//! The journal document: its schema, how it is read, and the commands that change it.
//! Every command is one Automerge change whose message says what it did.

use automerge::hydrate::{Map, Value as HValue};
use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ActorId, Automerge, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use jiff::Zoned;

use crate::catalog::Catalog;
use crate::model::{
    DoneAt, Idea, IdeaStatus, Kind, Person, PersonStatus, Settings, Shift, ShiftStatus, WeekStart,
};
use crate::values::{int, non_empty, parsed, set, string, time_ms};
use crate::when::{Now, zone_name};
use crate::{Error, ids};

/// The schema major version this code writes. A journal with a higher one is read-only here.
pub const SCHEMA_MAJOR: u64 = 1;

/// A tag on a new or edited shift: an existing record, or one to create in the same change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagRef {
    /// An existing idea or person (canonical id).
    Existing(String),
    /// A new idea (by title) or person (by name).
    New(String),
}

/// A shift to add (`add`) or record as already made (`log`, with `done` set).
#[derive(Clone, Debug, Default)]
pub struct NewShift {
    /// What to do.
    pub text: String,
    /// Kind of action (default: other).
    pub kind: Option<Kind>,
    /// Minutes (default: 5).
    pub minutes: Option<u32>,
    /// A note.
    pub note: Option<String>,
    /// What it sparked.
    pub little_yes: Option<String>,
    /// Ideas it serves.
    pub ideas: Vec<TagRef>,
    /// People it involves.
    pub people: Vec<TagRef>,
    /// When it was made, for a shift recorded as done.
    pub done: Option<Zoned>,
}

/// Changes to a shift; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ShiftEdit {
    /// New text.
    pub text: Option<String>,
    /// New kind.
    pub kind: Option<Kind>,
    /// New minutes.
    pub minutes: Option<u32>,
    /// New note (empty removes it).
    pub note: Option<String>,
    /// New little yes (empty removes it).
    pub little_yes: Option<String>,
    /// Ideas to add.
    pub add_ideas: Vec<TagRef>,
    /// People to add.
    pub add_people: Vec<TagRef>,
    /// Idea ids to remove (every raw id of the merged idea).
    pub remove_ideas: Vec<String>,
    /// Person ids to remove (every raw id of the merged person).
    pub remove_people: Vec<String>,
}

/// Changes to a person; `None` leaves a field as it is, an empty string removes it.
#[derive(Clone, Debug, Default)]
pub struct PersonEdit {
    /// New name.
    pub name: Option<String>,
    /// How they are known.
    pub how_known: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// Status.
    pub status: Option<PersonStatus>,
}

/// What a command created besides its main record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Created {
    /// The id of the record the command is about.
    pub id: String,
    /// Ideas created on first use, as (id, title).
    pub ideas: Vec<(String, String)>,
    /// People created on first use, as (id, name).
    pub people: Vec<(String, String)>,
}

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

fn obj_at(doc: &impl ReadDoc, parent: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(parent, key).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

fn secs(now: &Now) -> i64 {
    now.ms().div_euclid(1000)
}

/// The first 8 characters of an id, for change messages.
fn brief(id: &str) -> &str {
    ids::prefix(id, 8)
}

impl Journal {
    /// A new journal, created with one change, written by `actor`.
    pub fn create(actor: ActorId, now: &Now, device: &str, contacts_doc: &str) -> Self {
        let actor_hex = actor.to_hex_string();
        let mut doc = Automerge::new().with_actor(actor);
        let mut tx = doc.transaction();
        let ok: Result<(), automerge::AutomergeError> = (|| {
            tx.put(ROOT, "schema_version", SCHEMA_MAJOR)?;
            tx.put(ROOT, "created_at", ScalarValue::Timestamp(now.ms()))?;
            let settings = tx.put_object(ROOT, "settings", ObjType::Map)?;
            let defaults = Settings::default();
            tx.put(&settings, "weekly_goal", u64::from(defaults.weekly_goal))?;
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
        match self.doc.get(ROOT, "schema_version") {
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

    fn hydrate_map(&self, obj: &ObjId) -> Map {
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
            settings: Settings {
                weekly_goal: int(&settings, "weekly_goal")
                    .and_then(|g| u32::try_from(g).ok())
                    .unwrap_or(defaults.weekly_goal),
                week_start: parsed(&settings, "week_start", defaults.week_start),
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
        }
    }

    /// Runs `f` as one change with `message`, or changes nothing if it fails.
    fn change<T>(
        &mut self,
        now: &Now,
        message: impl FnOnce(&T) -> String,
        f: impl FnOnce(&mut Transaction<'_>, &Roots) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.check_writable()?;
        let roots = self.roots()?;
        let device = self.device.clone();
        let actor = self.doc.get_actor().to_hex_string();
        let mut tx = self.doc.transaction();
        let result = f(&mut tx, &roots).and_then(|value| {
            if let Some(name) = &device {
                name_device(&mut tx, now, &roots, &actor, name)?;
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

    /// Adds a shift (planned, or done when `shift.done` is set).
    pub fn add_shift(&mut self, now: &Now, shift: NewShift) -> Result<Created, Error> {
        let text = clean_text(&shift.text)?;
        let logged = shift.done.is_some();
        self.change(
            now,
            |c: &Created| {
                let verb = if logged { "Log shift" } else { "Add shift" };
                format!("{verb} {}: {text}", brief(&c.id))
            },
            |tx, roots| {
                let mut created = Created {
                    id: ids::new_id(),
                    ..Created::default()
                };
                let obj = tx.put_object(&roots.shifts, created.id.as_str(), ObjType::Map)?;
                tx.put(&obj, "text", text.as_str())?;
                tx.put(&obj, "created_at", ScalarValue::Timestamp(now.ms()))?;
                tx.put(&obj, "minutes", u64::from(shift.minutes.unwrap_or(5)))?;
                tx.put(&obj, "kind", shift.kind.unwrap_or(Kind::Other).as_str())?;
                let ideas = tx.put_object(&obj, "ideas", ObjType::Map)?;
                let people = tx.put_object(&obj, "people", ObjType::Map)?;
                for tag in &shift.ideas {
                    let id = tag_id(tx, now, roots, tag, true, &mut created)?;
                    tx.put(&ideas, id.as_str(), true)?;
                }
                for tag in &shift.people {
                    let id = tag_id(tx, now, roots, tag, false, &mut created)?;
                    tx.put(&people, id.as_str(), true)?;
                }
                put_optional(tx, &obj, "note", shift.note.as_deref())?;
                put_optional(tx, &obj, "little_yes", shift.little_yes.as_deref())?;
                match &shift.done {
                    Some(at) => {
                        tx.put(&obj, "status", ShiftStatus::Done.as_str())?;
                        put_done(tx, &obj, at)?;
                    }
                    None => tx.put(&obj, "status", ShiftStatus::Planned.as_str())?,
                }
                Ok(created)
            },
        )
    }

    /// Sets a shift's status. Marking it done records when (now, or `at`) and where.
    pub fn set_status(
        &mut self,
        now: &Now,
        id: &str,
        status: ShiftStatus,
        at: Option<Zoned>,
        little_yes: Option<&str>,
    ) -> Result<(), Error> {
        let text = self.shift(id)?.map(|s| s.text).unwrap_or_default();
        self.change(
            now,
            |_| {
                let verb = match status {
                    ShiftStatus::Done => "Mark done",
                    ShiftStatus::Skipped => "Skip",
                    ShiftStatus::Dropped => "Drop",
                    ShiftStatus::Planned => "Plan again",
                };
                format!("{verb} {}: {text}", brief(id))
            },
            |tx, roots| {
                let obj = obj_at(tx, &roots.shifts, id).ok_or(Error::NoSuchShift)?;
                tx.put(&obj, "status", status.as_str())?;
                if status == ShiftStatus::Done {
                    put_done(tx, &obj, &at.unwrap_or_else(|| now.zoned()))?;
                } else {
                    for key in ["done_at", "done_date", "done_tz"] {
                        delete_if_set(tx, &obj, key)?;
                    }
                }
                if let Some(little_yes) = little_yes {
                    put_optional(tx, &obj, "little_yes", Some(little_yes))?;
                }
                Ok(())
            },
        )
    }

    /// Edits a shift's fields and tags.
    pub fn edit_shift(&mut self, now: &Now, id: &str, edit: ShiftEdit) -> Result<Created, Error> {
        let text = match &edit.text {
            Some(t) => Some(clean_text(t)?),
            None => None,
        };
        self.change(
            now,
            |_| format!("Edit shift {}", brief(id)),
            |tx, roots| {
                let obj = obj_at(tx, &roots.shifts, id).ok_or(Error::NoSuchShift)?;
                let mut created = Created {
                    id: id.to_owned(),
                    ..Created::default()
                };
                if let Some(text) = &text {
                    tx.put(&obj, "text", text.as_str())?;
                }
                if let Some(kind) = edit.kind {
                    tx.put(&obj, "kind", kind.as_str())?;
                }
                if let Some(minutes) = edit.minutes {
                    tx.put(&obj, "minutes", u64::from(minutes))?;
                }
                if let Some(note) = &edit.note {
                    put_optional(tx, &obj, "note", Some(note))?;
                }
                if let Some(little_yes) = &edit.little_yes {
                    put_optional(tx, &obj, "little_yes", Some(little_yes))?;
                }
                for (key, add, remove, is_idea) in [
                    ("ideas", &edit.add_ideas, &edit.remove_ideas, true),
                    ("people", &edit.add_people, &edit.remove_people, false),
                ] {
                    if add.is_empty() && remove.is_empty() {
                        continue;
                    }
                    let members = match obj_at(tx, &obj, key) {
                        Some(m) => m,
                        // Written by a client that left the set out: create it now.
                        None => tx.put_object(&obj, key, ObjType::Map)?,
                    };
                    for raw in remove {
                        delete_if_set(tx, &members, raw.as_str())?;
                    }
                    for tag in add {
                        let tag_id = tag_id(tx, now, roots, tag, is_idea, &mut created)?;
                        tx.put(&members, tag_id.as_str(), true)?;
                    }
                }
                Ok(created)
            },
        )
    }

    /// Removes a shift.
    pub fn remove_shift(&mut self, now: &Now, id: &str) -> Result<(), Error> {
        let text = self.shift(id)?.map(|s| s.text).unwrap_or_default();
        self.change(
            now,
            |_| format!("Remove shift {}: {text}", brief(id)),
            |tx, roots| {
                if obj_at(tx, &roots.shifts, id).is_none() {
                    return Err(Error::NoSuchShift);
                }
                tx.delete(&roots.shifts, id)?;
                Ok(())
            },
        )
    }

    /// Adds an idea.
    pub fn add_idea(&mut self, now: &Now, title: &str, why: Option<&str>) -> Result<String, Error> {
        let title = clean_text(title)?;
        self.change(
            now,
            |id: &String| format!("Add idea {}: {title}", brief(id)),
            |tx, roots| {
                let id = create_idea(tx, now, roots, &title)?;
                let obj = obj_at(tx, &roots.ideas, &id).ok_or(Error::NoSuchIdea)?;
                put_optional(tx, &obj, "why", why)?;
                Ok(id)
            },
        )
    }

    /// Sets the status of an idea (every raw record of it, after merging).
    pub fn set_idea_status(
        &mut self,
        now: &Now,
        group: &[String],
        title: &str,
        status: IdeaStatus,
        note: Option<&str>,
    ) -> Result<(), Error> {
        self.change(
            now,
            |_| {
                let verb = match status {
                    IdeaStatus::Exploring => "Explore idea",
                    IdeaStatus::Parked => "Park idea",
                    IdeaStatus::Pursuing => "Pursue idea",
                    IdeaStatus::DeadEnd => "Close idea as a dead end",
                };
                format!("{verb}: {title}")
            },
            |tx, roots| {
                for id in group {
                    let obj = obj_at(tx, &roots.ideas, id).ok_or(Error::NoSuchIdea)?;
                    tx.put(&obj, "status", status.as_str())?;
                    match status {
                        IdeaStatus::Parked | IdeaStatus::DeadEnd => {
                            tx.put(&obj, "closed_at", ScalarValue::Timestamp(now.ms()))?
                        }
                        _ => delete_if_set(tx, &obj, "closed_at")?,
                    }
                    if let Some(note) = note {
                        put_optional(tx, &obj, "closing_note", Some(note))?;
                    }
                }
                Ok(())
            },
        )
    }

    /// Adds a person.
    pub fn add_person(
        &mut self,
        now: &Now,
        name: &str,
        edit: &PersonEdit,
    ) -> Result<String, Error> {
        let name = clean_text(name)?;
        self.change(
            now,
            |id: &String| format!("Add person {}: {name}", brief(id)),
            |tx, roots| {
                let id = create_person(tx, now, roots, &name)?;
                let obj = obj_at(tx, &roots.people, &id).ok_or(Error::NoSuchPerson)?;
                apply_person_edit(tx, &obj, edit)?;
                Ok(id)
            },
        )
    }

    /// Edits a person (every raw record of them, after merging).
    pub fn edit_person(
        &mut self,
        now: &Now,
        group: &[String],
        name: &str,
        edit: &PersonEdit,
    ) -> Result<(), Error> {
        if let Some(new) = &edit.name {
            clean_text(new)?;
        }
        self.change(
            now,
            |_| format!("Edit person: {name}"),
            |tx, roots| {
                for id in group {
                    let obj = obj_at(tx, &roots.people, id).ok_or(Error::NoSuchPerson)?;
                    apply_person_edit(tx, &obj, edit)?;
                }
                Ok(())
            },
        )
    }

    /// Sets a journal setting: `weekly_goal` or `week_start`.
    pub fn set_setting(&mut self, now: &Now, key: &str, value: &str) -> Result<(), Error> {
        enum Parsed {
            Goal(u32),
            Start(WeekStart),
        }
        let parsed = match key {
            "weekly_goal" => Parsed::Goal(
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|g| (1..=1000).contains(g))
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "weekly_goal must be a whole number from 1 to 1000, not {value:?}"
                        ))
                    })?,
            ),
            "week_start" => Parsed::Start(
                value
                    .parse::<WeekStart>()
                    .map_err(|e| Error::Invalid(format!("week_start: {e}")))?,
            ),
            other => {
                return Err(Error::Invalid(format!(
                    "unknown setting {other:?}: the journal has weekly_goal and week_start"
                )));
            }
        };
        self.change(
            now,
            |_| format!("Set {key} to {value}"),
            |tx, roots| {
                match parsed {
                    Parsed::Goal(g) => tx.put(&roots.settings, "weekly_goal", u64::from(g))?,
                    Parsed::Start(s) => tx.put(&roots.settings, "week_start", s.as_str())?,
                }
                Ok(())
            },
        )
    }

    /// Points the journal at a new contacts document (after `person forget`).
    pub fn set_contacts_doc(&mut self, now: &Now, doc_id: &str, reason: &str) -> Result<(), Error> {
        self.change(
            now,
            |_| reason.to_owned(),
            |tx, _| {
                tx.put(ROOT, "contacts_doc", doc_id)?;
                Ok(())
            },
        )
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

fn clean_text(text: &str) -> Result<String, Error> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return Err(Error::Invalid(
            "the text is empty: say what the shift is, e.g. \"Email Sam\"".into(),
        ));
    }
    if text.chars().count() > 500 {
        return Err(Error::Invalid("the text is over 500 characters: keep it to one small action, and put the rest in --note".into()));
    }
    Ok(text)
}

/// Deletes `obj[key]` if it is set (deleting an absent key is an error in Automerge).
pub(crate) fn delete_if_set(tx: &mut Transaction<'_>, obj: &ObjId, key: &str) -> Result<(), Error> {
    if tx.get(obj, key)?.is_some() {
        tx.delete(obj, key)?;
    }
    Ok(())
}

fn put_optional(
    tx: &mut Transaction<'_>,
    obj: &ObjId,
    key: &str,
    value: Option<&str>,
) -> Result<(), Error> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => tx.put(obj, key, v)?,
        Some(_) => delete_if_set(tx, obj, key)?,
        None => {}
    }
    Ok(())
}

fn put_done(tx: &mut Transaction<'_>, obj: &ObjId, at: &Zoned) -> Result<(), Error> {
    tx.put(
        obj,
        "done_at",
        ScalarValue::Timestamp(at.timestamp().as_millisecond()),
    )?;
    tx.put(obj, "done_date", at.date().to_string())?;
    tx.put(obj, "done_tz", zone_name(at.time_zone(), at.timestamp()))?;
    Ok(())
}

fn create_idea(
    tx: &mut Transaction<'_>,
    now: &Now,
    roots: &Roots,
    title: &str,
) -> Result<String, Error> {
    let id = ids::new_id();
    let obj = tx.put_object(&roots.ideas, id.as_str(), ObjType::Map)?;
    tx.put(&obj, "title", title)?;
    tx.put(&obj, "status", IdeaStatus::Exploring.as_str())?;
    tx.put(&obj, "created_at", ScalarValue::Timestamp(now.ms()))?;
    Ok(id)
}

fn create_person(
    tx: &mut Transaction<'_>,
    now: &Now,
    roots: &Roots,
    name: &str,
) -> Result<String, Error> {
    let id = ids::new_id();
    let obj = tx.put_object(&roots.people, id.as_str(), ObjType::Map)?;
    tx.put(&obj, "name", name)?;
    tx.put(&obj, "status", PersonStatus::ToContact.as_str())?;
    tx.put(&obj, "created_at", ScalarValue::Timestamp(now.ms()))?;
    Ok(id)
}

fn tag_id(
    tx: &mut Transaction<'_>,
    now: &Now,
    roots: &Roots,
    tag: &TagRef,
    is_idea: bool,
    created: &mut Created,
) -> Result<String, Error> {
    match tag {
        TagRef::Existing(id) => Ok(id.clone()),
        TagRef::New(name) => {
            // The same new name twice in one command makes one record.
            let list = if is_idea {
                &mut created.ideas
            } else {
                &mut created.people
            };
            if let Some((id, _)) = list
                .iter()
                .find(|(_, n)| crate::catalog::normalize(n) == crate::catalog::normalize(name))
            {
                return Ok(id.clone());
            }
            let name = clean_text(name)?;
            let id = if is_idea {
                create_idea(tx, now, roots, &name)?
            } else {
                create_person(tx, now, roots, &name)?
            };
            let list = if is_idea {
                &mut created.ideas
            } else {
                &mut created.people
            };
            list.push((id.clone(), name));
            Ok(id)
        }
    }
}

fn apply_person_edit(
    tx: &mut Transaction<'_>,
    obj: &ObjId,
    edit: &PersonEdit,
) -> Result<(), Error> {
    if let Some(name) = &edit.name {
        tx.put(obj, "name", clean_text(name)?.as_str())?;
    }
    put_optional(tx, obj, "how_known", edit.how_known.as_deref())?;
    put_optional(tx, obj, "notes", edit.notes.as_deref())?;
    if let Some(status) = edit.status {
        tx.put(obj, "status", status.as_str())?;
    }
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
    }
}
