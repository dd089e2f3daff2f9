//! Writes: the unit of work ([`Replica::write`]: load, change, append, flush, then patch
//! the cache), a new journal, and compaction of a long log.

use anyhow::{Result, bail};
use nudge_journal::automerge::Automerge;
use nudge_journal::{Contacts, Journal, Summary};
use nudge_store::DocumentId;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{COMPACT_AFTER, Replica, Touched, View, local};
use crate::cache::{Bucket, Meta, bucket_of};

impl Replica {
    /// Runs one command that changes the journal: loads it (creating it on first use),
    /// runs `f`, stores and flushes the new changes, and updates the cache.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Journal, &View) -> Result<(T, Touched)>,
    ) -> Result<T> {
        let (id, mut journal) = match self.load_journal_with_id()? {
            Some(loaded) => loaded,
            None => self.create_journal()?,
        };
        journal.check_writable()?;
        let before = journal.doc().get_heads();
        let position = self.checked_position(&id)?;
        let old_meta = match self.cache.meta(position) {
            Some(meta) => meta,
            None => self.rebuild_cache(&journal, position)?,
        };
        self.loaded.borrow_mut().meta = Some(old_meta.clone());
        let view = View {
            catalog: old_meta.catalog.clone(),
            summary: old_meta.summary.clone(),
        };
        journal.set_device_name(&self.device_name()?);
        let (value, touched) = f(&mut journal, &view)?;
        if self.append_since(&id, journal.doc(), &before)? == 0 {
            return Ok(value);
        }
        self.store()?.flush()?;
        self.wrote.set(true);
        let position = self.store()?.position(&id)?;
        self.marker.write(&id, position)?;
        self.stamp();
        tracing::debug!(doc = %id, position, "change stored and flushed");
        match touched {
            Touched::All => {
                self.rebuild_cache(&journal, position)?;
            }
            Touched::Shifts(ids) => {
                if !self.patch_cache(&journal, &old_meta, view.summary, position, ids)? {
                    // A cache file was unusable: derive everything afresh instead.
                    self.rebuild_cache(&journal, position)?;
                }
            }
        }
        self.maybe_compact(&id, journal.doc())?;
        Ok(value)
    }

    /// Updates the cache for the shifts a write touched, through the same
    /// `Summary::apply` a rebuild uses. Returns false if a cache file was unusable.
    pub(super) fn patch_cache(
        &self,
        journal: &Journal,
        old_meta: &Meta,
        mut summary: Summary,
        position: u64,
        ids: Vec<String>,
    ) -> Result<bool> {
        let loaded_ids = self.loaded.borrow().ids.clone();
        let Some(mut index) = loaded_ids
            .map(|i| i.as_ref().clone())
            .or_else(|| self.cache.ids(old_meta))
        else {
            return Ok(false);
        };
        let mut changed: BTreeMap<usize, Bucket> = BTreeMap::new();
        for shift_id in ids {
            let b = bucket_of(&shift_id);
            let bucket = match changed.entry(b) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let loaded = self.loaded.borrow().buckets[b].clone();
                    match loaded
                        .map(|l| l.as_ref().clone())
                        .or_else(|| self.cache.bucket(old_meta, b))
                    {
                        Some(current) => e.insert(current),
                        None => return Ok(false),
                    }
                }
            };
            let new = journal.shift(&shift_id)?;
            summary.apply(bucket.get(&shift_id), new.as_ref());
            match new {
                Some(shift) => {
                    index.insert(&shift_id);
                    bucket.insert(shift_id, shift);
                }
                None => {
                    index.remove(&shift_id);
                    bucket.remove(&shift_id);
                }
            }
        }
        let changed: Vec<(usize, Arc<Bucket>)> =
            changed.into_iter().map(|(b, v)| (b, Arc::new(v))).collect();
        let meta = self.cache.write(
            Some(old_meta),
            position,
            journal.catalog()?,
            summary,
            &changed,
            &index,
        )?;
        let mut loaded = self.loaded.borrow_mut();
        loaded.meta = Some(meta);
        loaded.ids = Some(Arc::new(index));
        for (b, bucket) in changed {
            loaded.buckets[b] = Some(bucket);
        }
        Ok(true)
    }

    pub(super) fn create_journal(&self) -> Result<(DocumentId, Journal)> {
        let actor = self.actor()?;
        let contacts_id = DocumentId::random();
        let contacts = Contacts::create(actor.clone(), &self.now);
        let journal = Journal::create_with_settings(
            actor,
            &self.now,
            &self.device_name()?,
            &contacts_id.to_string(),
            &self.defaults.journal,
        );
        let id = self.install_journal(&journal, &contacts_id, &contacts)?;
        Ok((id, journal))
    }

    /// Stores a journal made elsewhere (a new one, or one built by a benchmark) as this
    /// device's journal, with its contacts document. The home must not have a journal yet.
    pub fn install_journal(
        &self,
        journal: &Journal,
        contacts_id: &DocumentId,
        contacts: &Contacts,
    ) -> Result<DocumentId> {
        if self.journal_id()?.is_some() {
            bail!("{} already has a journal", self.path().display());
        }
        let id = DocumentId::random();
        self.store_new_doc(contacts_id, contacts.doc())?;
        let hashes: Vec<_> = journal
            .doc()
            .get_changes_meta(&[])
            .iter()
            .map(|c| c.hash.0)
            .collect();
        self.store()?.import(&id, &journal.doc().save(), &hashes)?;
        self.store()?.flush()?;
        // The pointers are written last: a crash before them leaves no half-made journal in use.
        self.local_set(local::JOURNAL, &id.to_string())?;
        self.marker.write(&id, self.store()?.position(&id)?)?;
        Ok(id)
    }

    /// Writes a snapshot when enough changes have piled up since the last one.
    pub fn maybe_compact(&self, id: &DocumentId, doc: &Automerge) -> Result<()> {
        if self.store()?.changes_since_snapshot(id)? < COMPACT_AFTER {
            return Ok(());
        }
        let through = self.store()?.position(id)?;
        tracing::debug!(doc = %id, through, "compacting the log into a snapshot");
        self.store()?.compact(id, &doc.save(), through)?;
        self.store()?.flush()?;
        Ok(())
    }
}
