//! The commands that change a journal. Each is one Automerge change (see
//! [`Journal::change`](crate::Journal)) whose message says what it did, so `nudge history`
//! reads like a log of the user's actions.

use automerge::transaction::{Transactable, Transaction};
use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue};
use jiff::Zoned;

use crate::journal::{Journal, Roots, brief, obj_at};
use crate::limits::Field;
use crate::model::{IdeaStatus, Kind, PersonStatus, ShiftStatus, WeekStart};
use crate::when::{Now, zone_name};
use crate::{Error, ids};

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
    /// The shift it is a smaller first step of (`nudge shrink`).
    pub shrunk_from: Option<String>,
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

impl Journal {
    /// Adds a shift (planned, or done when `shift.done` is set).
    pub fn add_shift(&mut self, now: &Now, shift: NewShift) -> Result<Created, Error> {
        let text = Field::ShiftText.clean(&shift.text)?;
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
                tx.put(&obj, "minutes", i64::from(shift.minutes.unwrap_or(5)))?;
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
                put_optional(tx, &obj, "shrunk_from", shift.shrunk_from.as_deref())?;
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
            Some(t) => Some(Field::ShiftText.clean(t)?),
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
                    tx.put(&obj, "minutes", i64::from(minutes))?;
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
        let title = Field::IdeaTitle.clean(title)?;
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
        let name = Field::PersonName.clean(name)?;
        self.change(
            now,
            |id: &String| format!("Add person {}: {name}", brief(id)),
            |tx, roots| {
                let id = create_person(tx, now, roots, &name)?;
                let obj = obj_at(tx, &roots.people, &id).ok_or(Error::NoSuchPerson)?;
                apply_person_edit(tx, now, &obj, edit)?;
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
            Field::PersonName.clean(new)?;
        }
        self.change(
            now,
            |_| format!("Edit person: {name}"),
            |tx, roots| {
                for id in group {
                    let obj = obj_at(tx, &roots.people, id).ok_or(Error::NoSuchPerson)?;
                    apply_person_edit(tx, now, &obj, edit)?;
                }
                Ok(())
            },
        )
    }

    /// Sets a journal setting: `weekly_goal`, `week_start` or `display_name` (empty clears it).
    pub fn set_setting(&mut self, now: &Now, key: &str, value: &str) -> Result<(), Error> {
        enum Parsed {
            Goal(u32),
            Start(WeekStart),
            Name(Option<String>),
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
            "display_name" => Parsed::Name(match value.trim() {
                "" => None,
                name => Some(crate::limits::Field::PersonName.clean(name)?),
            }),
            other => {
                return Err(Error::Invalid(format!(
                    "unknown setting {other:?}: the journal has weekly_goal, week_start and display_name"
                )));
            }
        };
        self.change(
            now,
            |_| format!("Set {key} to {value}"),
            |tx, roots| {
                match parsed {
                    Parsed::Goal(g) => tx.put(&roots.settings, "weekly_goal", i64::from(g))?,
                    Parsed::Start(s) => tx.put(&roots.settings, "week_start", s.as_str())?,
                    Parsed::Name(Some(n)) => tx.put(&roots.settings, "display_name", n)?,
                    Parsed::Name(None) => tx.delete(&roots.settings, "display_name")?,
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

/// Deletes `obj[key]` if it is set (deleting an absent key is an error in Automerge).
pub(crate) fn delete_if_set(tx: &mut Transaction<'_>, obj: &ObjId, key: &str) -> Result<(), Error> {
    if tx.get(obj, key)?.is_some() {
        tx.delete(obj, key)?;
    }
    Ok(())
}

pub(crate) fn put_optional(
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
            let field = if is_idea {
                Field::IdeaTitle
            } else {
                Field::PersonName
            };
            let name = field.clean(name)?;
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
    now: &Now,
    obj: &ObjId,
    edit: &PersonEdit,
) -> Result<(), Error> {
    if let Some(name) = &edit.name {
        tx.put(obj, "name", Field::PersonName.clean(name)?.as_str())?;
    }
    put_optional(tx, obj, "how_known", edit.how_known.as_deref())?;
    put_optional(tx, obj, "notes", edit.notes.as_deref())?;
    if let Some(status) = edit.status {
        tx.put(obj, "status", status.as_str())?;
        // Set by hand: it no longer moves with the shifts that name them.
        tx.put(obj, "status_set_at", ScalarValue::Timestamp(now.ms()))?;
    }
    Ok(())
}
