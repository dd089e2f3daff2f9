//! `nudge history`: every change to the journal.

use anyhow::Result;
use clap::Args;
use nudge_journal::history as journal_history;
use nudge_journal::when::rfc3339;
use nudge_replica::Replica;
use serde_json::json;

use crate::output::{DIM, Out, paint};

/// `nudge history`.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Only the most recent N changes.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

/// `history`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: HistoryArgs) -> Result<()> {
    let HistoryArgs {
        json: as_json,
        limit,
    } = args;
    let Some(journal) = session.load_journal()? else {
        if as_json {
            out.json(&Vec::<serde_json::Value>::new())?;
        }
        return Ok(());
    };
    let catalog = journal.catalog()?;
    let mut entries = journal_history(&journal, &catalog);
    if let Some(limit) = limit {
        let skip = entries.len().saturating_sub(limit);
        entries.drain(..skip);
    }
    if as_json {
        let items: Vec<_> = entries
            .iter()
            .map(|e| {
                json!({
                    "hash": e.hash,
                    "time": rfc3339(e.time_s.saturating_mul(1000)),
                    "device": e.device,
                    "actor": e.actor,
                    "message": e.message,
                })
            })
            .collect();
        return out.json(&items);
    }
    for e in &entries {
        let when = crate::output::local(
            e.time_s.saturating_mul(1000),
            &session.now.tz,
            "%Y-%m-%d %H:%M",
        );
        out.line(format!(
            "{} {}  {}",
            paint(DIM, when),
            paint(DIM, format!("[{}]", e.device)),
            e.message
        ));
    }
    Ok(())
}
