//! `history`: every change to the journal, with its time, device and message.

use serde::Serialize;

use crate::catalog::Catalog;
use crate::journal::Journal;

/// One change in the journal's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// The change hash.
    pub hash: String,
    /// Seconds since the epoch the change says it was made at.
    pub time_s: i64,
    /// The actor (device) id.
    pub actor: String,
    /// The device's name.
    pub device: String,
    /// What it did.
    pub message: String,
}

/// Every change, oldest first (causal order, as stored).
pub fn history(journal: &Journal, catalog: &Catalog) -> Vec<HistoryEntry> {
    journal
        .doc()
        .get_changes_meta(&[])
        .into_iter()
        .map(|c| {
            let actor = c.actor.to_hex_string();
            HistoryEntry {
                hash: c.hash.to_string(),
                time_s: c.timestamp,
                device: catalog.device_name(&actor),
                actor,
                message: c.message.map(|m| m.into_owned()).unwrap_or_default(),
            }
        })
        .collect()
}
