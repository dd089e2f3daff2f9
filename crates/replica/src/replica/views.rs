//! Reads: views from the derived-state cache (`cache.rs`), rebuilt from the journal when
//! its position moved, and shift ids by prefix.

use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use nudge_journal::automerge::Automerge;
use nudge_journal::{Journal, Shift, Summary};
use nudge_store::DocumentId;

use super::{Replica, View};
use crate::cache::{BUCKETS, Bucket, IdIndex, Meta, bucket_of};

impl Replica {
    /// The derived state, from the cache or rebuilt. `None` before the first journal.
    pub fn view(&self) -> Result<Option<View>> {
        let Some(id) = self.journal_id()? else {
            return Ok(None);
        };
        let meta = self.current_meta(&id)?;
        Ok(Some(View {
            catalog: meta.catalog,
            summary: meta.summary,
        }))
    }

    /// The cache index for the journal's current position, rebuilt if stale.
    pub(super) fn current_meta(&self, id: &DocumentId) -> Result<Meta> {
        let position = self.checked_position(id)?;
        if let Some(meta) = &self.loaded.borrow().meta
            && meta.position == position
        {
            return Ok(meta.clone());
        }
        if let Some(meta) = self.cache.meta(position) {
            self.loaded.borrow_mut().meta = Some(meta.clone());
            return Ok(meta);
        }
        let journal = self
            .load_journal()?
            .ok_or_else(|| anyhow!("the journal disappeared"))?;
        self.rebuild_cache(&journal, position)
    }

    /// Brings the cache up to date from `doc`, a copy of the journal as stored (a sync
    /// holds one in memory), instead of loading the journal again from the store.
    pub fn refresh_cache_from(&self, doc: &Automerge) -> Result<()> {
        let Some(id) = self.journal_id()? else {
            return Ok(());
        };
        let position = self.checked_position(&id)?;
        if self.cache.meta(position).is_some() {
            return Ok(());
        }
        let journal = Journal::from_doc(doc.clone())
            .map_err(|e| anyhow!("the journal cannot be read: {e}"))?;
        self.rebuild_cache(&journal, position)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(position = position))]
    pub(super) fn rebuild_cache(&self, journal: &Journal, position: u64) -> Result<Meta> {
        tracing::debug!("deriving the cache from the journal");
        let catalog = journal.catalog()?;
        let shifts = journal.shifts()?;
        let summary = Summary::build(&shifts);
        let ids = IdIndex::from_ids(shifts.iter().map(|s| &s.id));
        let mut buckets: Vec<Bucket> = vec![Bucket::new(); BUCKETS];
        for shift in shifts {
            buckets[bucket_of(&shift.id)].insert(shift.id.clone(), shift);
        }
        let buckets: Vec<(usize, Arc<Bucket>)> =
            buckets.into_iter().map(Arc::new).enumerate().collect();
        let meta = self
            .cache
            .write(None, position, catalog, summary, &buckets, &ids)?;
        let mut loaded = self.loaded.borrow_mut();
        loaded.meta = Some(meta.clone());
        loaded.ids = Some(Arc::new(ids));
        for (b, bucket) in buckets {
            loaded.buckets[b] = Some(bucket);
        }
        Ok(meta)
    }

    /// The shift file an id or id prefix belongs in, rebuilding the cache if it is stale.
    pub(super) fn bucket(&self, id_or_prefix: &str) -> Result<Arc<Bucket>> {
        let b = bucket_of(id_or_prefix);
        if let Some(bucket) = &self.loaded.borrow().buckets[b] {
            return Ok(bucket.clone());
        }
        let id = self
            .journal_id()?
            .ok_or_else(|| anyhow!("the journal is empty"))?;
        let meta = self.current_meta(&id)?;
        if let Some(bucket) = self.cache.bucket(&meta, b) {
            let bucket = Arc::new(bucket);
            self.loaded.borrow_mut().buckets[b] = Some(bucket.clone());
            return Ok(bucket);
        }
        let journal = self
            .load_journal()?
            .ok_or_else(|| anyhow!("the journal disappeared"))?;
        self.rebuild_cache(&journal, meta.position)?;
        let bucket = self.loaded.borrow().buckets[b].clone();
        bucket.ok_or_else(|| anyhow!("the cache in {} cannot be written", self.path().display()))
    }

    /// One shift from the cache, by full id.
    pub fn cached_shift(&self, id: &str) -> Result<Option<Shift>> {
        Ok(self.bucket(id)?.get(id).cloned())
    }

    /// The index of every shift id, rebuilding the cache if it is stale.
    pub(super) fn ids(&self) -> Result<Arc<IdIndex>> {
        if let Some(ids) = &self.loaded.borrow().ids {
            return Ok(ids.clone());
        }
        let id = self
            .journal_id()?
            .ok_or_else(|| anyhow!("the journal is empty"))?;
        let meta = self.current_meta(&id)?;
        if let Some(ids) = self.cache.ids(&meta) {
            let ids = Arc::new(ids);
            self.loaded.borrow_mut().ids = Some(ids.clone());
            return Ok(ids);
        }
        let journal = self
            .load_journal()?
            .ok_or_else(|| anyhow!("the journal disappeared"))?;
        self.rebuild_cache(&journal, meta.position)?;
        let ids = self.loaded.borrow().ids.clone();
        ids.ok_or_else(|| anyhow!("the cache in {} cannot be written", self.path().display()))
    }

    /// Full ids of shifts starting with `prefix`.
    pub fn shift_ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        if self.journal_id()?.is_none() {
            return Ok(Vec::new());
        }
        Ok(self.ids()?.with_prefix(prefix))
    }

    /// The shortest unique prefix (at least 4) of a shift id.
    pub fn shift_short_id(&self, id: &str) -> Result<String> {
        let shared = self
            .ids()?
            .neighbours(id)
            .iter()
            .map(|other| nudge_journal::ids::common_prefix(other, id))
            .max()
            .unwrap_or(0);
        let len = (shared + 1).max(nudge_journal::ids::MIN_PREFIX);
        Ok(nudge_journal::ids::prefix(id, len).to_owned())
    }

    /// Every cached shift, in id order.
    pub fn all_shifts(&self) -> Result<Vec<Shift>> {
        let mut out = Vec::new();
        for b in 0..BUCKETS {
            let first = format!("{b:x}");
            out.extend(self.bucket(&first)?.values().cloned());
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Fails unless a journal exists yet (for commands that need something to act on).
    pub fn require_view(&self) -> Result<View> {
        match self.view()? {
            Some(view) => Ok(view),
            None => bail!("the journal is empty: start with `nudge add \"a five-minute step\"`"),
        }
    }
}
