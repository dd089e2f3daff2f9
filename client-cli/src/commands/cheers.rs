//! `nudge cheers`: what your buddies cheered, newest first (new ones marked); seeing them
//! here marks them seen, so `week` stops announcing them.

use anyhow::Result;
use clap::Args;
use nudge_replica::Replica;
use serde_json::json;

use crate::output::{DIM, GOOD, Out, paint};

/// `nudge cheers`.
#[derive(Args, Debug)]
pub struct CheersArgs {
    /// Print JSON: an array of {"id", "text", "from", "at", "new"}, newest first.
    #[arg(long)]
    pub json: bool,
}

/// `cheers`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: CheersArgs) -> Result<()> {
    let all = crate::cheers::received(session)?;
    let seen = crate::cheers::seen_ms(session)?;
    if let Some(last) = all.last() {
        crate::cheers::mark_seen(session, last.at_ms)?;
    }
    if args.json {
        let list: Vec<_> = all
            .iter()
            .rev()
            .map(|c| {
                json!({
                    "id": c.id, "text": c.text, "from": c.from,
                    "at": nudge_journal::when::rfc3339(c.at_ms), "new": c.at_ms > seen,
                })
            })
            .collect();
        return out.json(&list);
    }
    if all.is_empty() {
        out.line(
            "No cheers yet. A buddy sends them from your page or with `nudge cheer`; `nudge sync` fetches them.",
        );
        return Ok(());
    }
    for c in all.iter().rev() {
        let when = nudge_journal::when::relative(c.at_ms, &session.now);
        let new = if c.at_ms > seen { " new" } else { "" };
        out.line(format!(
            "{}  {}",
            paint(GOOD, crate::cheers::quoted(c)),
            paint(DIM, format!("{}, {when}{new}", c.from))
        ));
    }
    Ok(())
}
