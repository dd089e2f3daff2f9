//! `nudge suggest`: a few concrete micro shifts to try next.

use anyhow::Result;
use clap::Args;
use nudge_journal::{Catalog, Summary};
use nudge_replica::Replica;

use crate::output::{Out, notice};

/// `nudge suggest`.
#[derive(Args, Debug)]
pub struct SuggestArgs {
    /// Print JSON: an array of {"n", "text"}.
    #[arg(long)]
    pub json: bool,
}

/// `suggest`.
pub(crate) fn run(session: &Replica, out: &mut Out, args: SuggestArgs) -> Result<()> {
    let as_json = args.json;
    let (catalog, summary) = match session.view()? {
        Some(view) => (view.catalog, view.summary),
        None => (Catalog::default(), Summary::default()),
    };
    let suggestions = nudge_journal::suggest(&catalog, &summary, &session.now.today().to_string());
    if as_json {
        let list: Vec<serde_json::Value> = suggestions
            .iter()
            .enumerate()
            .map(|(i, text)| serde_json::json!({ "n": i + 1, "text": text }))
            .collect();
        return out.json(&list);
    }
    for s in suggestions {
        out.line(format!("- {s}"));
    }
    notice("Plan one: nudge add \"...\"");
    Ok(())
}
