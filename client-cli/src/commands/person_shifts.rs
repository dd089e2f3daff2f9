//! `nudge person show`'s history: every shift that involved a person (any of their merged
//! records), and the little yeses those sparked, newest first.

use anyhow::Result;
use nudge_journal::{Catalog, Shift};
use nudge_replica::Replica;
use serde_json::{Value, json};

use crate::output::{DIM, ID, Out, paint};
use crate::shifts::mark;

/// The shifts naming the person `canonical`, newest first (by when made, else added).
pub(crate) fn involving(
    session: &Replica,
    catalog: &Catalog,
    canonical: &str,
) -> Result<Vec<Shift>> {
    let group = catalog.person_group(canonical);
    let mut shifts: Vec<Shift> = session
        .all_shifts()?
        .into_iter()
        .filter(|s| s.people.iter().any(|raw| group.contains(raw)))
        .collect();
    shifts.sort_by(|a, b| b.when_ms().cmp(&a.when_ms()).then_with(|| a.id.cmp(&b.id)));
    Ok(shifts)
}

/// `shifts` for `person show --json`.
pub(crate) fn json_of(session: &Replica, shifts: &[Shift]) -> Result<Vec<Value>> {
    shifts
        .iter()
        .map(|s| {
            Ok(json!({
                "id": s.id,
                "short_id": session.shift_short_id(&s.id)?,
                "text": s.text,
                "status": s.status,
                "done_date": s.done.as_ref().map(|d| d.date.clone()),
                "little_yes": s.little_yes,
            }))
        })
        .collect()
}

/// `shifts` as lines under a person.
pub(crate) fn print(session: &Replica, out: &mut Out, shifts: &[Shift]) -> Result<()> {
    if shifts.is_empty() {
        out.line("  shifts   none yet");
        return Ok(());
    }
    out.line(format!("  shifts   {}, newest first:", shifts.len()));
    for s in shifts {
        let when = match &s.done {
            Some(d) => d.date.clone(),
            None => format!("planned {}", session.now.local_date(s.created_at_ms)),
        };
        out.line(format!(
            "    {} {} {}  {}",
            paint(ID, format!("{:<6}", session.shift_short_id(&s.id)?)),
            mark(s.status),
            s.text,
            paint(DIM, when)
        ));
        if let Some(yes) = &s.little_yes {
            out.line(format!("           little yes: {yes}"));
        }
    }
    Ok(())
}
