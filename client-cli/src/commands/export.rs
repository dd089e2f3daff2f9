//! `nudge export --json`: the whole journal as canonical JSON.

use anyhow::Result;
use clap::Args;
use nudge_journal::Catalog;
use nudge_replica::Replica;

use crate::output::Out;

/// `nudge export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Print JSON (the only format, required for forward compatibility).
    #[arg(long, required = true)]
    pub json: bool,
}

/// `export --json`.
pub(crate) fn run(session: &Replica, out: &mut Out, _args: ExportArgs) -> Result<()> {
    let Some(journal) = session.load_journal()? else {
        return out.json(&nudge_journal::export(
            &Catalog::default(),
            &[],
            &Default::default(),
        ));
    };
    let catalog = journal.catalog()?;
    let contacts = session
        .load_contacts(&catalog)?
        .map(|(_, c)| c.all())
        .unwrap_or_default();
    out.json(&nudge_journal::export(
        &catalog,
        &journal.shifts()?,
        &contacts,
    ))
}
