//! What the device knows of its sync: the journal's position confirmed in the marker, the
//! position of each document when the server last had all of it ("N changes not synced
//! yet"), and the switch to the account's journal when a device adopts it.

use anyhow::Result;
use nudge_store::DocumentId;

use super::{Loaded, Replica, local, now_ms};

impl Replica {
    /// Flushes what sync stored and confirms the journal's new position in the marker.
    pub fn commit_sync(&self) -> Result<()> {
        self.store()?.flush()?;
        if let Some(id) = self.journal_id()? {
            self.marker.write(&id, self.store()?.position(&id)?)?;
        }
        Ok(())
    }

    /// Makes `id` (already stored and flushed here) this device's journal in place of
    /// the current one, which stays stored until the caller removes it.
    pub fn switch_journal(&self, id: &DocumentId) -> Result<()> {
        if let Some(previous) = self.journal_id()? {
            self.local()?
                .insert(local::PREVIOUS_JOURNAL, previous.to_string().as_bytes())?;
        }
        self.local()?
            .insert(local::JOURNAL, id.to_string().as_bytes())?;
        self.store()?.flush()?;
        self.marker.write(id, self.store()?.position(id)?)?;
        *self.loaded.borrow_mut() = Loaded::default();
        Ok(())
    }

    /// Log positions: the document's now, and at the end of its last sync.
    pub fn sync_positions(&self, id: &DocumentId) -> Result<(u64, u64)> {
        let now = self.store()?.position(id)?;
        let synced = self
            .local_get(&format!("{}{id}", local::SYNCED))?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok((now, synced))
    }

    /// Records that the server holds everything stored for `id` now.
    pub fn mark_synced(&self, id: &DocumentId) -> Result<()> {
        let position = self.store()?.position(id)?;
        self.set_synced(id, position)
    }

    /// Forgets every sync record (when the remote changes).
    pub fn forget_synced(&self) -> Result<()> {
        for key in self.local()?.keys_with_prefix(local::SYNCED)? {
            self.local()?.remove(key)?;
        }
        self.store()?.flush()?;
        Ok(())
    }

    /// How many changes of the journal and its contacts the server has not confirmed.
    pub fn unsynced(&self) -> Result<u64> {
        let Some(view) = self.view()? else {
            return Ok(0);
        };
        let mut ids: Vec<DocumentId> = self.journal_id()?.into_iter().collect();
        if let Some(contacts) = view
            .catalog
            .contacts_doc
            .as_deref()
            .and_then(|s| s.parse().ok())
        {
            ids.push(contacts);
        }
        let mut total = 0;
        for id in ids {
            let (now, synced) = self.sync_positions(&id)?;
            total += now.saturating_sub(synced);
        }
        Ok(total)
    }

    /// Records that the server holds `id` up to log position `position`.
    pub fn set_synced(&self, id: &DocumentId, position: u64) -> Result<()> {
        self.local()?.insert(
            format!("{}{id}", local::SYNCED),
            position.to_string().as_bytes(),
        )?;
        self.local()?
            .insert(local::SYNCED_AT, now_ms().to_string().as_bytes())?;
        Ok(())
    }

    /// When the server last confirmed everything (ms since the epoch), if ever.
    pub fn synced_at(&self) -> Result<Option<i64>> {
        Ok(self
            .local_get(local::SYNCED_AT)?
            .and_then(|v| v.parse().ok()))
    }
}
