//! `nudge person ...`: possible connections. Contact details live in the separate contacts
//! document, so that `forget` can erase them for good.

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use nudge_journal::when::{relative, rfc3339};
use nudge_journal::{
    Catalog, Contact, Contacts, Person, PersonEdit, PersonStatus, Resolved, Summary, ids,
};
use nudge_replica::{Replica, Touched};
use nudge_store::DocumentId;
use serde_json::{Value, json};

use super::{one_of, person_shifts};
use crate::output::{DIM, ID, Out, notice, paint, shell_word};
use crate::resolve;

/// Fields of a person.
#[derive(Args, Debug, Default)]
pub struct PersonFields {
    /// How you know them.
    #[arg(long)]
    pub how: Option<String>,
    /// Email (kept in the erasable contacts document).
    #[arg(long)]
    pub email: Option<String>,
    /// Phone (kept in the erasable contacts document).
    #[arg(long)]
    pub phone: Option<String>,
    /// Web address (kept in the erasable contacts document).
    #[arg(long)]
    pub url: Option<String>,
    /// Notes.
    #[arg(long)]
    pub notes: Option<String>,
    /// Status: to_contact, reached_out, talking, met, dormant.
    #[arg(long, ignore_case = true, value_parser = one_of(nudge_journal::PersonStatus::ALL.iter().map(|s| s.as_str())))]
    pub status: Option<String>,
}

/// `nudge person ...`.
#[derive(Subcommand, Debug)]
pub enum PersonCommand {
    /// Add a person.
    Add {
        /// Their name (also their @name).
        name: String,
        /// Details.
        #[command(flatten)]
        fields: PersonFields,
        /// Add them even when a similar name exists.
        #[arg(long)]
        new: bool,
    },
    /// List people, with when each was last contacted.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one person.
    Show {
        /// Their id, prefix or name.
        #[arg(add = crate::complete::people_names())]
        person: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a person's details.
    Edit {
        /// Their id, prefix or name.
        #[arg(add = crate::complete::people_names())]
        person: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// Details ("" removes one).
        #[command(flatten)]
        fields: PersonFields,
    },
    /// Erase a person's contact details for good.
    Forget {
        /// Their id, prefix or name.
        #[arg(add = crate::complete::people_names())]
        person: String,
    },
}

fn person_json(
    catalog: &Catalog,
    summary: &Summary,
    short: &str,
    p: &Person,
    contact: &Contact,
) -> Value {
    let last = summary.last_contact(&catalog.person_group(&p.id));
    json!({
        "id": p.id,
        "short_id": short,
        "name": p.name,
        "how_known": p.how_known,
        "notes": p.notes,
        "status": p.effective_status(last),
        "status_set_by_hand": p.status_manual,
        "created_at": rfc3339(p.created_at_ms),
        "last_contact": last,
        "contact": contact,
    })
}

fn short_ids(catalog: &Catalog) -> std::collections::BTreeMap<String, String> {
    let canonical: std::collections::BTreeMap<String, ()> = catalog
        .canonical_people()
        .map(|p| (p.id.clone(), ()))
        .collect();
    ids::short_ids(&canonical)
}

fn edit_of(fields: &PersonFields, name: Option<String>) -> Result<PersonEdit> {
    Ok(PersonEdit {
        name,
        how_known: fields.how.clone(),
        notes: fields.notes.clone(),
        status: fields
            .status
            .as_deref()
            .map(|s| {
                s.parse::<PersonStatus>()
                    .map_err(|e| anyhow::anyhow!("--status: {e}"))
            })
            .transpose()?,
    })
}

/// The flags that set `fields`, as typed (for a command a message suggests).
fn fields_as_flags(fields: &PersonFields) -> String {
    [
        ("--how", &fields.how),
        ("--email", &fields.email),
        ("--phone", &fields.phone),
        ("--url", &fields.url),
        ("--notes", &fields.notes),
        ("--status", &fields.status),
    ]
    .iter()
    .filter_map(|(flag, value)| {
        value
            .as_deref()
            .map(|v| format!(" {flag} {}", shell_word(v)))
    })
    .collect()
}

fn contact_update(fields: &PersonFields) -> Contact {
    Contact {
        email: fields.email.clone(),
        phone: fields.phone.clone(),
        url: fields.url.clone(),
    }
}

/// Writes contact details for a person into the contacts document (durably).
pub(crate) fn save_contact(session: &Replica, person: &str, update: &Contact) -> Result<()> {
    if update.email.is_none() && update.phone.is_none() && update.url.is_none() {
        return Ok(());
    }
    let view = session.require_view()?;
    let Some((id, mut contacts)) = session.load_contacts(&view.catalog)? else {
        bail!(
            "the contacts document is not on this device; run `nudge sync` (or restore a backup) and try again"
        );
    };
    let before = contacts.doc().get_heads();
    contacts.set(&session.now, person, update)?;
    session.append_since(&id, contacts.doc(), &before)?;
    session.flush()?;
    Ok(())
}

/// Runs a person command.
pub(crate) fn run(session: &Replica, out: &mut Out, cmd: PersonCommand) -> Result<()> {
    match cmd {
        PersonCommand::Add { name, fields, new } => {
            // Checked first, so that an empty name is not "close to" anyone.
            let name = nudge_journal::limits::Field::PersonName
                .clean(name.trim().trim_start_matches('@'))?;
            let edit = edit_of(&fields, None)?;
            let id = session.write(|journal, view| {
                match view.catalog.resolve_person(&name) {
                    Resolved::Existing(_) => bail!("someone called {name:?} is already here; give a fuller name (e.g. \"{name} K\") or use `nudge person edit`"),
                    Resolved::Similar(close) if !new => {
                        let details = fields_as_flags(&fields);
                        bail!(
                            "@{close} is close to {name:?}: to give @{close} that name, run `nudge person edit {} --name {}{details}`; to add {name:?} as someone else, run `nudge person add {}{details} --new`",
                            shell_word(close),
                            shell_word(&name),
                            shell_word(&name),
                        )
                    }
                    _ => {}
                }
                Ok((journal.add_person(&session.now, &name, &edit)?, Touched::Shifts(vec![])))
            })?;
            save_contact(session, &id, &contact_update(&fields))?;
            out.line(format!(
                "New person {} @{name}",
                paint(ID, ids::prefix(&id, 8))
            ));
            out.line(&id);
        }
        PersonCommand::List { json } => {
            let Some(view) = session.view()? else {
                if json {
                    out.json(&Vec::<Value>::new())?;
                } else {
                    notice(
                        "Nobody yet. Add someone to reach out to: nudge person add \"Sam Lee\" --how \"old colleague\"",
                    );
                }
                return Ok(());
            };
            let contacts = session
                .load_contacts(&view.catalog)?
                .map(|(_, c)| c.all())
                .unwrap_or_default();
            let shorts = short_ids(&view.catalog);
            let mut people: Vec<&Person> = view.catalog.canonical_people().collect();
            people.sort_by_key(|p| p.name.to_lowercase());
            if json {
                let items: Vec<Value> = people
                    .iter()
                    .map(|p| {
                        person_json(
                            &view.catalog,
                            &view.summary,
                            &shorts[&p.id],
                            p,
                            &view.catalog.contact(&contacts, &p.id),
                        )
                    })
                    .collect();
                return out.json(&items);
            }
            for p in people {
                let last = view.summary.last_contact(&view.catalog.person_group(&p.id));
                let how = p
                    .how_known
                    .as_deref()
                    .map(|how| format!("{how} · "))
                    .unwrap_or_default();
                out.line(format!(
                    "{} @{}  {}",
                    paint(ID, format!("{:<6}", shorts[&p.id])),
                    p.name,
                    paint(
                        DIM,
                        format!(
                            "{how}{} · last contact {}",
                            p.effective_status(last),
                            last.unwrap_or("never")
                        )
                    ),
                ));
            }
        }
        PersonCommand::Show { person, json } => {
            let view = session.require_view()?;
            let found = resolve::person(&view.catalog, &person)?;
            let contacts = session
                .load_contacts(&view.catalog)?
                .map(|(_, c)| c.all())
                .unwrap_or_default();
            let contact = view.catalog.contact(&contacts, &found.id);
            let shorts = short_ids(&view.catalog);
            let shifts = person_shifts::involving(session, &view.catalog, &found.id)?;
            if json {
                let mut shown = person_json(
                    &view.catalog,
                    &view.summary,
                    &shorts[&found.id],
                    found,
                    &contact,
                );
                shown["shifts"] = person_shifts::json_of(session, &shifts)?.into();
                return out.json(&shown);
            }
            let last = view
                .summary
                .last_contact(&view.catalog.person_group(&found.id));
            out.line(format!(
                "{} @{}  ({})",
                paint(ID, &shorts[&found.id]),
                found.name,
                found.effective_status(last)
            ));
            out.line(format!("  id       {}", found.id));
            out.line(format!(
                "  added    {}",
                relative(found.created_at_ms, &session.now)
            ));
            if let Some(how) = &found.how_known {
                out.line(format!("  known    {how}"));
            }
            for (label, value) in [
                ("email", &contact.email),
                ("phone", &contact.phone),
                ("url", &contact.url),
            ] {
                if let Some(v) = value {
                    out.line(format!("  {label:<8} {v}"));
                }
            }
            if let Some(notes) = &found.notes {
                out.line(format!("  notes    {notes}"));
            }
            out.line(format!("  last contact {}", last.unwrap_or("never")));
            person_shifts::print(session, out, &shifts)?;
        }
        PersonCommand::Edit {
            person,
            name,
            fields,
        } => {
            let edit = edit_of(&fields, name.clone())?;
            let update = contact_update(&fields);
            if name.is_none()
                && edit.how_known.is_none()
                && edit.notes.is_none()
                && edit.status.is_none()
                && update.is_empty()
            {
                bail!(
                    "nothing to change: give --name, --how, --email, --phone, --url, --notes or --status"
                );
            }
            let (id, shown) = session.write(|journal, view| {
                let found = resolve::person(&view.catalog, &person)?;
                if let Some(new) = &name
                    && let Resolved::Existing(other) = view.catalog.resolve_person(new)
                    && other != found.id
                {
                    bail!("someone else is already called {new:?}");
                }
                let group = view.catalog.person_group(&found.id);
                let changes = edit.name.is_some()
                    || edit.how_known.is_some()
                    || edit.notes.is_some()
                    || edit.status.is_some();
                if changes {
                    journal.edit_person(&session.now, &group, &found.name, &edit)?;
                }
                Ok((
                    (found.id.clone(), name.clone().unwrap_or(found.name.clone())),
                    Touched::Shifts(vec![]),
                ))
            })?;
            save_contact(session, &id, &update)?;
            out.line(format!("Updated @{shown}"));
        }
        PersonCommand::Forget { person } => forget(session, out, &person)?,
    }
    Ok(())
}

/// Erases a person's contact details: the contacts document is rebuilt without them under a
/// new id, the journal points at the new one, and the old one is deleted.
fn forget(session: &Replica, out: &mut Out, person: &str) -> Result<()> {
    let view = session.require_view()?;
    let found = resolve::person(&view.catalog, person)?.clone();
    let group = view.catalog.person_group(&found.id);
    let Some((old_id, contacts)) = session.load_contacts(&view.catalog)? else {
        bail!(
            "the contacts document is not on this device; run `nudge sync` (or restore a backup) and try again"
        );
    };
    let new_id = DocumentId::random();
    let fresh: Contacts = contacts.without(
        &group,
        nudge_journal::automerge::ActorId::random(),
        &session.now,
    )?;
    session.store_new_doc(&new_id, fresh.doc())?;
    session.flush()?;
    session.write(|journal, _| {
        journal.set_contacts_doc(
            &session.now,
            &new_id.to_string(),
            &format!("Forget contact details of {}", found.name),
        )?;
        Ok(((), Touched::Shifts(vec![])))
    })?;
    session.remove_doc(&old_id)?;
    session.flush()?;
    out.line(format!(
        "Erased the contact details of @{}; their name and shifts stay",
        found.name
    ));
    Ok(())
}
