//! `nudge import`: records from a file merged into the journal, idempotently.
//!
//! Two sources: nudge's own `export --json` ([`from_export`]) and Taskwarrior's
//! `task export` ([`from_taskwarrior`]). Both become a [`Batch`] of plain records, which
//! [`Journal::import`] merges in one change:
//! - a record whose id the journal has is already there: skipped (so importing the same
//!   file twice adds nothing, not even an empty change);
//! - an idea or person whose name matches one the journal has (after normalising, as
//!   same-named records merge) is that one: its shifts are tagged with the existing record;
//! - everything else is created with its id, times and fields as the file says.
//!
//! Taskwarrior tasks keep their uuid as the shift id (a uuid is 32 hex digits without its
//! dashes), so importing a newer `task export` later adds only the new tasks.

use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::Transactable;
use automerge::{ObjType, ScalarValue};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::catalog::normalize;
use crate::commands::put_optional;
use crate::ids;
use crate::journal::obj_at;
use crate::limits::Field;
use crate::model::{
    Contact, DoneAt, Idea, IdeaStatus, Kind, Person, PersonStatus, Shift, ShiftStatus,
};
use crate::when::{Now, zone_name};
use crate::{Error, Journal};

/// Records to merge into a journal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Ideas (shifts refer to them by id).
    pub ideas: Vec<Idea>,
    /// People (shifts refer to them by id).
    pub people: Vec<Person>,
    /// Shifts.
    pub shifts: Vec<Shift>,
    /// Contact details by person id (from a nudge export).
    pub contacts: BTreeMap<String, Contact>,
    /// What was left out of the file, and why (one line each).
    pub left_out: Vec<String>,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Shifts added.
    pub shifts: usize,
    /// Ideas added.
    pub ideas: usize,
    /// People added.
    pub people: usize,
    /// Records that were there already (same id, or same name for ideas and people).
    pub already: usize,
    /// Person id in the file -> the journal's person, for contact details.
    pub people_map: BTreeMap<String, String>,
}

impl Imported {
    /// Whether the import added anything.
    pub fn added(&self) -> usize {
        self.shifts + self.ideas + self.people
    }
}

fn is_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_id(id: &str, what: &str) -> Result<(), Error> {
    if is_id(id) {
        Ok(())
    } else {
        Err(Error::Invalid(format!("{what}: {id:?} is not an id")))
    }
}

fn parse_time(value: &str, what: &str) -> Result<i64, Error> {
    value
        .parse::<Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| Error::Invalid(format!("{what}: {value:?} is not an RFC 3339 time")))
}

// ---------------------------------------------------------------------------------------
// nudge's own export

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportFile {
    schema_version: u64,
    #[serde(default)]
    #[allow(dead_code)]
    settings: Value,
    #[serde(default)]
    shifts: Vec<ExportShift>,
    #[serde(default)]
    ideas: Vec<ExportIdea>,
    #[serde(default)]
    people: Vec<ExportPerson>,
}

#[derive(Deserialize)]
struct ExportShift {
    id: String,
    text: String,
    status: ShiftStatus,
    created_at: String,
    done_at: Option<String>,
    done_date: Option<String>,
    done_tz: Option<String>,
    minutes: Option<u32>,
    kind: Option<Kind>,
    #[serde(default)]
    ideas: BTreeSet<String>,
    #[serde(default)]
    people: BTreeSet<String>,
    note: Option<String>,
    little_yes: Option<String>,
    #[serde(default)]
    shrunk_from: Option<String>,
}

#[derive(Deserialize)]
struct ExportIdea {
    id: String,
    title: String,
    why: Option<String>,
    status: IdeaStatus,
    created_at: String,
    closed_at: Option<String>,
    closing_note: Option<String>,
}

#[derive(Deserialize)]
struct ExportPerson {
    id: String,
    name: String,
    how_known: Option<String>,
    notes: Option<String>,
    status: PersonStatus,
    created_at: String,
    #[serde(default)]
    contact: Option<Contact>,
}

/// Reads a `nudge export --json` file.
pub fn from_export(json: &str) -> Result<Batch, Error> {
    if json.trim_start().starts_with('[') {
        return Err(Error::Invalid(
            "it is a JSON array, not a `nudge export --json` file; if it is Taskwarrior's `task export`, add --from taskwarrior".into(),
        ));
    }
    let file: ExportFile = serde_json::from_str(json)
        .map_err(|e| Error::Invalid(format!("it is not a `nudge export --json` file ({e})")))?;
    if file.schema_version > crate::SCHEMA_MAJOR {
        return Err(Error::Invalid(format!(
            "it was exported with journal schema {}, newer than this nudge ({}): upgrade nudge first",
            file.schema_version,
            crate::SCHEMA_MAJOR
        )));
    }
    let mut batch = Batch::default();
    for (n, i) in file.ideas.into_iter().enumerate() {
        let what = |field: &str| format!("ideas[{n}].{field}");
        check_id(&i.id, &what("id"))?;
        batch.ideas.push(Idea {
            title: Field::IdeaTitle.clean_at(&i.title, &what("title"))?,
            why: i.why,
            status: i.status,
            created_at_ms: parse_time(&i.created_at, &what("created_at"))?,
            closed_at_ms: i
                .closed_at
                .map(|t| parse_time(&t, &what("closed_at")))
                .transpose()?,
            closing_note: i.closing_note,
            id: i.id,
        });
    }
    for (n, p) in file.people.into_iter().enumerate() {
        let what = |field: &str| format!("people[{n}].{field}");
        check_id(&p.id, &what("id"))?;
        if let Some(contact) = p.contact.filter(|c| !c.is_empty()) {
            batch.contacts.insert(p.id.clone(), contact);
        }
        batch.people.push(Person {
            name: Field::PersonName.clean_at(&p.name, &what("name"))?,
            how_known: p.how_known,
            notes: p.notes,
            // A status other than the first one was set by someone; the first one moves
            // with the shifts, as on the device that exported it.
            status_manual: p.status != PersonStatus::ToContact,
            status: p.status,
            created_at_ms: parse_time(&p.created_at, &what("created_at"))?,
            id: p.id,
        });
    }
    for (n, s) in file.shifts.into_iter().enumerate() {
        let what = |field: &str| format!("shifts[{n}].{field}");
        check_id(&s.id, &what("id"))?;
        let done = match (s.status, s.done_at, s.done_date, s.done_tz) {
            (ShiftStatus::Done, Some(at), Some(date), Some(tz)) => {
                if date.parse::<jiff::civil::Date>().is_err() {
                    return Err(Error::Invalid(format!(
                        "{}: {date:?} is not a date (YYYY-MM-DD)",
                        what("done_date")
                    )));
                }
                let at_ms = parse_time(&at, &what("done_at"))?;
                let Some(zone) = crate::when::zone_named(&tz) else {
                    return Err(Error::Invalid(format!(
                        "{}: {tz:?} is not a time zone (an IANA name such as Europe/Paris, or an offset such as +02:00)",
                        what("done_tz")
                    )));
                };
                let local = crate::when::to_timestamp(at_ms).to_zoned(zone).date();
                if local.to_string() != date {
                    return Err(Error::Invalid(format!(
                        "{}: {date:?} is not the date of done_at in {tz} (that is {local})",
                        what("done_date")
                    )));
                }
                Some(DoneAt { at_ms, date, tz })
            }
            (ShiftStatus::Done, ..) => {
                return Err(Error::Invalid(format!(
                    "{}: a done shift needs done_at, done_date and done_tz",
                    what("status")
                )));
            }
            _ => None,
        };
        batch.shifts.push(Shift {
            text: Field::ShiftText.clean_at(&s.text, &what("text"))?,
            status: s.status,
            created_at_ms: parse_time(&s.created_at, &what("created_at"))?,
            done,
            minutes: s.minutes.unwrap_or(5).clamp(1, 24 * 60),
            kind: s.kind.unwrap_or(Kind::Other),
            ideas: s.ideas,
            people: s.people,
            note: s.note,
            little_yes: s.little_yes,
            shrunk_from: s.shrunk_from,
            id: s.id,
        });
    }
    Ok(batch)
}

// ---------------------------------------------------------------------------------------
// Taskwarrior

#[derive(Deserialize)]
struct Task {
    uuid: String,
    description: String,
    status: String,
    entry: Option<String>,
    end: Option<String>,
    modified: Option<String>,
    project: Option<String>,
    #[serde(default)]
    annotations: Vec<Annotation>,
}

#[derive(Deserialize)]
struct Annotation {
    description: String,
}

/// Taskwarrior's dates: `20260125T093000Z` (also RFC 3339, which newer versions accept).
fn task_time(value: &str, what: &str) -> Result<i64, Error> {
    if let Some(z) = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", value)
        .ok()
        .and_then(|t| t.to_zoned(jiff::tz::TimeZone::UTC).ok())
    {
        return Ok(z.timestamp().as_millisecond());
    }
    parse_time(value, what)
        .map_err(|_| Error::Invalid(format!("{what}: {value:?} is not a Taskwarrior date")))
}

/// Reads Taskwarrior's `task export` (a JSON array of tasks). Pending and waiting tasks
/// become planned shifts, completed ones done shifts (made at their `end`, counted on the
/// local date of `now`'s zone), deleted and recurring-template tasks are left out;
/// projects become ideas; annotations become the shift's note.
pub fn from_taskwarrior(json: &str, now: &Now) -> Result<Batch, Error> {
    if json.trim_start().starts_with('{') {
        return Err(Error::Invalid(
            "it is a JSON object, not Taskwarrior's `task export` (an array of tasks); for a `nudge export --json` file leave out --from taskwarrior".into(),
        ));
    }
    let tasks: Vec<Task> = serde_json::from_str(json).map_err(|e| {
        Error::Invalid(format!(
            "it is not Taskwarrior's `task export` JSON, an array of tasks ({e})"
        ))
    })?;
    let mut batch = Batch::default();
    let mut projects: BTreeMap<String, String> = BTreeMap::new();
    for (n, task) in tasks.into_iter().enumerate() {
        let what = |field: &str| format!("task {n} ({}).{field}", task.uuid);
        let id = task.uuid.replace('-', "").to_ascii_lowercase();
        if !is_id(&id) {
            return Err(Error::Invalid(format!("{}: not a uuid", what("uuid"))));
        }
        let status = match task.status.as_str() {
            "pending" | "waiting" => ShiftStatus::Planned,
            "completed" => ShiftStatus::Done,
            "deleted" => {
                batch
                    .left_out
                    .push(format!("deleted task {}: {}", &id[..8], task.description));
                continue;
            }
            "recurring" => {
                batch.left_out.push(format!(
                    "recurring template {}: {} (its pending instances are imported)",
                    &id[..8],
                    task.description
                ));
                continue;
            }
            other => {
                return Err(Error::Invalid(format!(
                    "{}: unknown status {other:?}",
                    what("status")
                )));
            }
        };
        let mut description = task
            .description
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let mut note: Vec<String> = Vec::new();
        if description.chars().count() > 500 {
            // The whole text is kept: the shift gets the start, the note all of it.
            note.push(description.clone());
            description = description.chars().take(497).collect::<String>() + "...";
        }
        note.extend(task.annotations.into_iter().map(|a| a.description));
        let created_at_ms = match &task.entry {
            Some(entry) => task_time(entry, &what("entry"))?,
            None => now.ms(),
        };
        let done = if status == ShiftStatus::Done {
            let at = task
                .end
                .as_deref()
                .or(task.modified.as_deref())
                .map(|t| task_time(t, &what("end")))
                .transpose()?
                .unwrap_or(created_at_ms);
            let ts = crate::when::to_timestamp(at);
            Some(DoneAt {
                at_ms: at,
                date: now.local_date(at).to_string(),
                tz: zone_name(&now.tz, ts),
            })
        } else {
            None
        };
        let mut ideas = BTreeSet::new();
        if let Some(project) = task
            .project
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            // A later import finds the idea by its name.
            let idea = projects
                .entry(project.to_owned())
                .or_insert_with(ids::new_id);
            ideas.insert(idea.clone());
        }
        batch.shifts.push(Shift {
            id,
            text: Field::ShiftText.clean_at(&description, &what("description"))?,
            status,
            created_at_ms,
            done,
            minutes: 5,
            kind: Kind::Other,
            ideas,
            people: BTreeSet::new(),
            note: (!note.is_empty()).then(|| note.join("; ")),
            little_yes: None,
            shrunk_from: None,
        });
    }
    for (title, id) in projects {
        let created_at_ms = batch
            .shifts
            .iter()
            .filter(|s| s.ideas.contains(&id))
            .map(|s| s.created_at_ms)
            .min()
            .unwrap_or(now.ms());
        batch.ideas.push(Idea {
            id,
            title: Field::IdeaTitle.clean_at(&title, "a project's name")?,
            why: None,
            status: IdeaStatus::Exploring,
            created_at_ms,
            closed_at_ms: None,
            closing_note: None,
        });
    }
    Ok(batch)
}

// ---------------------------------------------------------------------------------------
// Merging

impl Journal {
    /// Merges `batch` into the journal as one change (none if nothing is new); `source`
    /// names the file in the change's message.
    pub fn import(&mut self, now: &Now, batch: &Batch, source: &str) -> Result<Imported, Error> {
        let catalog = self.catalog()?;
        let existing_shifts: BTreeSet<String> = self.shifts()?.into_iter().map(|s| s.id).collect();
        let mut report = Imported::default();
        // File id -> journal id, for tags; and the records to create.
        let mut idea_map: BTreeMap<&str, String> = BTreeMap::new();
        let mut new_ideas: Vec<&Idea> = Vec::new();
        let mut taken: BTreeMap<String, String> = catalog
            .canonical_ideas()
            .map(|i| (normalize(&i.title), i.id.clone()))
            .collect();
        for idea in &batch.ideas {
            if catalog.idea(&idea.id).is_some() {
                idea_map.insert(&idea.id, catalog.idea_id(&idea.id).to_owned());
                report.already += 1;
            } else if let Some(same) = taken.get(&normalize(&idea.title)) {
                idea_map.insert(&idea.id, same.clone());
                report.already += 1;
            } else {
                taken.insert(normalize(&idea.title), idea.id.clone());
                idea_map.insert(&idea.id, idea.id.clone());
                new_ideas.push(idea);
            }
        }
        let mut new_people: Vec<&Person> = Vec::new();
        let mut named: BTreeMap<String, String> = catalog
            .canonical_people()
            .map(|p| (normalize(&p.name), p.id.clone()))
            .collect();
        for person in &batch.people {
            let target = if catalog.person(&person.id).is_some() {
                report.already += 1;
                catalog.person_id(&person.id).to_owned()
            } else if let Some(same) = named.get(&normalize(&person.name)) {
                report.already += 1;
                same.clone()
            } else {
                named.insert(normalize(&person.name), person.id.clone());
                new_people.push(person);
                person.id.clone()
            };
            report.people_map.insert(person.id.clone(), target);
        }
        let known_idea = |id: &str| -> Option<String> {
            idea_map
                .get(id)
                .cloned()
                .or_else(|| catalog.idea(id).map(|i| catalog.idea_id(&i.id).to_owned()))
        };
        let known_person = |id: &str| -> Option<String> {
            report.people_map.get(id).cloned().or_else(|| {
                catalog
                    .person(id)
                    .map(|p| catalog.person_id(&p.id).to_owned())
            })
        };
        let mut seen = BTreeSet::new();
        let mut new_shifts: Vec<(&Shift, Vec<String>, Vec<String>)> = Vec::new();
        for shift in &batch.shifts {
            if existing_shifts.contains(&shift.id) || !seen.insert(shift.id.as_str()) {
                report.already += 1;
                continue;
            }
            let ideas = shift.ideas.iter().filter_map(|i| known_idea(i)).collect();
            let people = shift
                .people
                .iter()
                .filter_map(|p| known_person(p))
                .collect();
            new_shifts.push((shift, ideas, people));
        }
        report.ideas = new_ideas.len();
        report.people = new_people.len();
        report.shifts = new_shifts.len();
        if report.added() == 0 {
            return Ok(report);
        }
        let message = format!(
            "Import {} shifts, {} ideas, {} people from {source}",
            report.shifts, report.ideas, report.people
        );
        self.change(
            now,
            |_: &()| message,
            |tx, roots| {
                for idea in &new_ideas {
                    let obj = tx.put_object(&roots.ideas, idea.id.as_str(), ObjType::Map)?;
                    tx.put(&obj, "title", idea.title.as_str())?;
                    tx.put(&obj, "status", idea.status.as_str())?;
                    tx.put(
                        &obj,
                        "created_at",
                        ScalarValue::Timestamp(idea.created_at_ms),
                    )?;
                    put_optional(tx, &obj, "why", idea.why.as_deref())?;
                    if let Some(closed) = idea.closed_at_ms {
                        tx.put(&obj, "closed_at", ScalarValue::Timestamp(closed))?;
                    }
                    put_optional(tx, &obj, "closing_note", idea.closing_note.as_deref())?;
                }
                for person in &new_people {
                    let obj = tx.put_object(&roots.people, person.id.as_str(), ObjType::Map)?;
                    tx.put(&obj, "name", person.name.as_str())?;
                    tx.put(&obj, "status", person.status.as_str())?;
                    tx.put(
                        &obj,
                        "created_at",
                        ScalarValue::Timestamp(person.created_at_ms),
                    )?;
                    put_optional(tx, &obj, "how_known", person.how_known.as_deref())?;
                    put_optional(tx, &obj, "notes", person.notes.as_deref())?;
                    if person.status_manual {
                        tx.put(&obj, "status_set_at", ScalarValue::Timestamp(now.ms()))?;
                    }
                }
                for (shift, ideas, people) in &new_shifts {
                    if obj_at(tx, &roots.shifts, &shift.id).is_some() {
                        continue;
                    }
                    let obj = tx.put_object(&roots.shifts, shift.id.as_str(), ObjType::Map)?;
                    tx.put(&obj, "text", shift.text.as_str())?;
                    tx.put(&obj, "status", shift.status.as_str())?;
                    tx.put(
                        &obj,
                        "created_at",
                        ScalarValue::Timestamp(shift.created_at_ms),
                    )?;
                    tx.put(&obj, "minutes", i64::from(shift.minutes))?;
                    tx.put(&obj, "kind", shift.kind.as_str())?;
                    let idea_set = tx.put_object(&obj, "ideas", ObjType::Map)?;
                    for id in ideas {
                        tx.put(&idea_set, id.as_str(), true)?;
                    }
                    let people_set = tx.put_object(&obj, "people", ObjType::Map)?;
                    for id in people {
                        tx.put(&people_set, id.as_str(), true)?;
                    }
                    if let Some(done) = &shift.done {
                        tx.put(&obj, "done_at", ScalarValue::Timestamp(done.at_ms))?;
                        tx.put(&obj, "done_date", done.date.as_str())?;
                        tx.put(&obj, "done_tz", done.tz.as_str())?;
                    }
                    put_optional(tx, &obj, "note", shift.note.as_deref())?;
                    put_optional(tx, &obj, "little_yes", shift.little_yes.as_deref())?;
                    put_optional(tx, &obj, "shrunk_from", shift.shrunk_from.as_deref())?;
                }
                Ok(())
            },
        )?;
        Ok(report)
    }
}
