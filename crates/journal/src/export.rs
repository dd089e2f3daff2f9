//! `export --json`: the whole journal as canonical JSON. Keys are sorted, records are in id
//! order, and same-named records are merged, so two replicas holding the same changes
//! export byte-identical text.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::catalog::Catalog;
use crate::model::{Contact, Shift};
use crate::when::rfc3339;

fn opt_time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(rfc3339(ms)))
}

/// The journal as one JSON value.
pub fn export(catalog: &Catalog, shifts: &[Shift], contacts: &BTreeMap<String, Contact>) -> Value {
    let shifts: Vec<Value> = shifts
        .iter()
        .map(|s| {
            let ideas: std::collections::BTreeSet<&str> =
                s.ideas.iter().map(|i| catalog.idea_id(i)).collect();
            let people: std::collections::BTreeSet<&str> =
                s.people.iter().map(|p| catalog.person_id(p)).collect();
            let mut shift = json!({
                "id": s.id,
                "text": s.text,
                "status": s.status,
                "created_at": rfc3339(s.created_at_ms),
                "done_at": opt_time(s.done.as_ref().map(|d| d.at_ms)),
                "done_date": s.done.as_ref().map(|d| d.date.clone()),
                "done_tz": s.done.as_ref().map(|d| d.tz.clone()),
                "minutes": s.minutes,
                "kind": s.kind,
                "ideas": ideas,
                "people": people,
                "note": s.note,
                "little_yes": s.little_yes,
            });
            // Only on the steps `nudge shrink` planned (older exports have no such key).
            if let Some(from) = &s.shrunk_from {
                shift["shrunk_from"] = json!(from);
            }
            shift
        })
        .collect();
    let ideas: Vec<Value> = catalog
        .canonical_ideas()
        .map(|i| {
            json!({
                "id": i.id,
                "title": i.title,
                "why": i.why,
                "status": i.status,
                "created_at": rfc3339(i.created_at_ms),
                "closed_at": opt_time(i.closed_at_ms),
                "closing_note": i.closing_note,
            })
        })
        .collect();
    let people: Vec<Value> = catalog
        .canonical_people()
        .map(|p| {
            let contact = catalog.contact(contacts, &p.id);
            json!({
                "id": p.id,
                "name": p.name,
                "how_known": p.how_known,
                "notes": p.notes,
                "status": p.status,
                "created_at": rfc3339(p.created_at_ms),
                "contact": contact,
            })
        })
        .collect();
    // serde_json's map keeps keys sorted, which makes the text canonical.
    json!({
        "schema_version": catalog.schema_version,
        "settings": catalog.settings,
        "shifts": shifts,
        "ideas": ideas,
        "people": people,
    })
}
