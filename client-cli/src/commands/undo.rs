//! `nudge undo`: revert this device's last change.

use anyhow::{Result, bail};
use nudge_replica::{Replica, Touched};

use crate::output::Out;

/// `undo`.
pub(crate) fn run(session: &Replica, out: &mut Out) -> Result<()> {
    if session.journal_id()?.is_none() {
        bail!("nothing to undo: the journal is empty");
    }
    let undone = session.write(|journal, _| Ok((journal.undo(&session.now)?, Touched::All)))?;
    out.line(format!("Undid: {}", undone.message));
    Ok(())
}
