//! A replica: the device's store opened for one command, the journal in it, and the cache
//! of derived state that lets reads skip loading the document.
//!
//! Reads use the cache when its store position matches the journal's; otherwise they rebuild
//! it once from the document. Writes load the document, make one change, append it to the
//! log and flush before returning (a printed success is on disk), then patch the cache for
//! the shifts they touched, with the same code a rebuild uses.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use nudge_journal::automerge::{ActorId, Automerge, ChangeHash};
use nudge_journal::{Catalog, Contacts, Journal, Now, Shift, Summary};
use nudge_store::{DocStore, DocumentId, NewChange, OpenOptions, SledStore};

mod restored;
mod settings;

pub use restored::ActorMove;

use crate::cache::{BUCKETS, Bucket, Cache, IdIndex, Meta, bucket_of};
use crate::marker::Marker;
use settings::Settings;

/// Compact a document's log into a snapshot once it has this many changes since the last.
const COMPACT_AFTER: usize = 256;

/// The file a write touches so that a watcher notices it (see [`Replica::read_stamp`]).
const STAMP: &str = "last-write";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Settings kept on this device only.
pub mod local {
    /// This device's Automerge actor id.
    pub const ACTOR: &str = "actor";
    /// The journal's document id.
    pub const JOURNAL: &str = "journal";
    /// The device's name.
    pub const DEVICE_NAME: &str = "device.name";
    /// Colour preference.
    pub const COLOR: &str = "color";
    /// A random key of this device's, sent when redeeming a link (so a rerun is recognised).
    pub const DEVICE_KEY: &str = "device.key";
    /// The journal this device used before it adopted its account's journal: a crash
    /// between switching the pointer and the position marker is recognised by it.
    pub const PREVIOUS_JOURNAL: &str = "journal.previous";
    /// Prefix of the log position of each document at the end of its last sync.
    pub const SYNCED: &str = "synced.";
    /// When the server last confirmed everything (ms since the epoch).
    pub const SYNCED_AT: &str = "synced_at";
    /// Moves to a fresh actor after a restore from a copy, one line each (`restored.rs`).
    pub const ACTOR_MOVES: &str = "actor.moves";
}

/// Derived state: what reads need.
pub struct View {
    /// Settings, ideas, people.
    pub catalog: Catalog,
    /// Planned shifts and per-day counts.
    pub summary: Summary,
}

/// Which shifts a write changed.
pub enum Touched {
    /// These shifts (by full id).
    Shifts(Vec<String>),
    /// Anything: rebuild.
    All,
}

/// What the user's configuration says where this device has no setting of its own (the
/// CLI reads its config file into this).
#[derive(Clone, Debug, Default)]
pub struct Defaults {
    /// `auto`, `always` or `never`.
    pub color: Option<String>,
    /// This machine's name, instead of its host name.
    pub device_name: Option<String>,
    /// The settings a new journal starts with.
    pub journal: nudge_journal::Settings,
}

/// The opened store of one device.
pub struct Replica {
    home: PathBuf,
    /// Whether this process changed a document (for the "not synced yet" notice).
    wrote: std::cell::Cell<bool>,
    /// `journal.position`: how a store that lost changes is noticed (see `marker.rs`).
    marker: Marker,
    /// The store while this session holds it; `None` once [`Replica::park`]ed, opened
    /// again by the next use.
    opened: RefCell<Option<Opened>>,
    cache: Cache,
    /// What this process has read of the cache: the index and the shift files.
    loaded: RefCell<Loaded>,
    /// The clock and zone.
    pub now: Now,
    /// What the user's configuration says where this device has no setting of its own.
    pub defaults: Defaults,
}

/// The store and its device-local tree, as one opening of the store gave them.
#[derive(Clone)]
struct Opened {
    store: SledStore,
    local: Settings,
    /// Since when this session holds the store.
    since: Instant,
}

impl Opened {
    fn open(home: &Path) -> Result<Self> {
        // Every write flushes before it reports success, so no background flusher is needed.
        let options = OpenOptions {
            background_flush_ms: None,
            ..OpenOptions::default()
        };
        let store = SledStore::open(&home.join("store"), &options)?;
        Ok(Self {
            local: Settings::new(&store),
            store,
            since: Instant::now(),
        })
    }
}

#[derive(Default)]
struct Loaded {
    meta: Option<Meta>,
    ids: Option<Arc<IdIndex>>,
    buckets: [Option<Arc<Bucket>>; BUCKETS],
}

fn new_change(change: &nudge_journal::automerge::Change) -> NewChange {
    NewChange {
        hash: change.hash().0,
        bytes: change.raw_bytes().to_vec(),
    }
}

impl Replica {
    /// Opens the store in `home`, creating the folder if needed.
    #[tracing::instrument(skip_all, fields(home = %home.display()))]
    pub fn open(home: &Path, now: Now) -> Result<Self> {
        std::fs::create_dir_all(home).with_context(|| {
            format!(
                "cannot create the data folder {}; check its permissions or pass --home",
                home.display()
            )
        })?;
        let opened = Opened::open(home)?;
        Ok(Self {
            home: home.to_path_buf(),
            wrote: std::cell::Cell::new(false),
            defaults: Defaults::default(),
            marker: Marker::new(home.join("journal.position")),
            opened: RefCell::new(Some(opened)),
            cache: Cache::new(home.join("cache")),
            loaded: RefCell::default(),
            now,
        })
    }

    /// The store, opened again if the session was parked (what other commands wrote
    /// meanwhile is read afresh).
    fn opened(&self) -> Result<Opened> {
        if let Some(opened) = self.opened.borrow().as_ref() {
            return Ok(opened.clone());
        }
        let t = Instant::now();
        let opened = Opened::open(&self.home)?;
        tracing::debug!(us = t.elapsed().as_micros() as u64, "store opened again");
        *self.loaded.borrow_mut() = Loaded::default();
        *self.opened.borrow_mut() = Some(opened.clone());
        Ok(opened)
    }

    fn store(&self) -> Result<SledStore> {
        Ok(self.opened()?.store)
    }

    fn local(&self) -> Result<Settings> {
        Ok(self.opened()?.local)
    }

    /// Lets go of the store (after making what this session stored durable), so that other
    /// commands can use it while this one waits on the network. The next use opens it again.
    pub fn park(&self) -> Result<()> {
        let Some(opened) = self.opened.borrow_mut().take() else {
            return Ok(());
        };
        let t = Instant::now();
        opened.store.flush()?;
        tracing::debug!(
            us = t.elapsed().as_micros() as u64,
            "store let go while waiting"
        );
        Ok(())
    }

    /// Since when this session has held the store, if it holds it now.
    pub fn held_since(&self) -> Option<Instant> {
        self.opened.borrow().as_ref().map(|o| o.since)
    }

    /// The data folder.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The store's folder.
    pub fn path(&self) -> PathBuf {
        self.home.join("store")
    }

    /// A device-local setting.
    pub fn local_get(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .local()?
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Sets a device-local setting (durably).
    pub fn local_set(&self, key: &str, value: &str) -> Result<()> {
        self.local()?.insert(key, value.as_bytes())?;
        self.store()?.flush()?;
        Ok(())
    }

    fn actor(&self) -> Result<ActorId> {
        if let Some(bytes) = self.local()?.get(local::ACTOR)? {
            return Ok(ActorId::from(bytes.as_slice()));
        }
        let actor = ActorId::random();
        self.local()?.insert(local::ACTOR, actor.to_bytes())?;
        Ok(actor)
    }

    /// `auto`, `always` or `never`: this device's own setting, else the config file's.
    pub fn color(&self) -> Result<String> {
        Ok(self
            .local_get(local::COLOR)?
            .or_else(|| self.defaults.color.clone())
            .unwrap_or_else(|| "auto".into()))
    }

    /// This device's name: its own setting, else the config file's, else the host name.
    pub fn device_name(&self) -> Result<String> {
        Ok(self
            .local_get(local::DEVICE_NAME)?
            .or_else(|| self.defaults.device_name.clone())
            .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned()))
    }

    /// The journal's document id, if there is a journal yet.
    pub fn journal_id(&self) -> Result<Option<DocumentId>> {
        let stored = match self.local_get(local::JOURNAL)? {
            None => None,
            Some(text) => Some(text.parse::<DocumentId>().map_err(|e| {
                anyhow!(
                    "{e}: the device settings in {} are damaged; restore the folder from a backup",
                    self.path().display()
                )
            })?),
        };
        match (stored, self.marker.read()?) {
            (None, Some((id, _))) => bail!(
                "the store at {} has lost the journal {id} that {} names; nothing was changed: restore the folder from a backup (to start over instead, remove both)",
                self.path().display(),
                self.marker.path().display()
            ),
            (Some(a), Some((b, _)))
                if a != b
                    && self.local_get(local::PREVIOUS_JOURNAL)?.as_deref()
                        == Some(b.to_string().as_str()) =>
            {
                // Adoption switched the pointer but crashed before the marker: fine.
                Ok(Some(a))
            }
            (Some(a), Some((b, _))) if a != b => bail!(
                "the store at {} holds journal {a} but {} names {b}; nothing was changed: restore the folder from a backup",
                self.path().display(),
                self.marker.path().display()
            ),
            (id, _) => Ok(id),
        }
    }

    /// The journal's log position, checked against the marker: a store that went back lost
    /// changes, and must not be used (or written to) as if nothing happened.
    fn checked_position(&self, id: &DocumentId) -> Result<u64> {
        let position = self.store()?.position(id)?;
        if let Some((marked, confirmed)) = self.marker.read()?
            && marked == *id
            && position < confirmed
        {
            bail!(
                "the store at {} has lost changes (it ends at {position}, {} confirmed {confirmed}); nothing was changed: restore the folder from a backup or re-sync",
                self.path().display(),
                self.marker.path().display()
            );
        }
        Ok(position)
    }

    fn load_doc(&self, id: &DocumentId) -> Result<Option<Vec<u8>>> {
        Ok(self.store()?.load(id)?.map(|stored| stored.concat()))
    }

    /// Loads the journal document (for writes, history and export).
    #[tracing::instrument(skip_all)]
    pub fn load_journal(&self) -> Result<Option<Journal>> {
        Ok(self.load_journal_with_id()?.map(|(_, journal)| journal))
    }

    /// The journal's id and document.
    fn load_journal_with_id(&self) -> Result<Option<(DocumentId, Journal)>> {
        let Some(id) = self.journal_id()? else {
            return Ok(None);
        };
        let bytes = self.load_doc(&id)?.ok_or_else(|| {
            anyhow!(
                "the journal {id} is missing from {}; restore the folder from a backup or re-sync",
                self.path().display()
            )
        })?;
        let journal = Journal::load(&bytes, self.actor()?).map_err(|e| {
            anyhow!(
                "{e} (in {}); nothing was changed: restore the folder from a backup or re-sync",
                self.path().display()
            )
        })?;
        // Automerge holds back changes whose dependencies it has not seen; a store where
        // that happens has lost changes.
        if !nudge_journal::automerge::ReadDoc::get_missing_deps(journal.doc(), &[]).is_empty() {
            bail!(
                "the journal in {} is missing changes that others depend on; nothing was changed: restore the folder from a backup or re-sync",
                self.path().display()
            );
        }
        Ok(Some((id, journal)))
    }

    /// The contacts document, if the journal names one that is stored here.
    pub fn load_contacts(&self, catalog: &Catalog) -> Result<Option<(DocumentId, Contacts)>> {
        let Some(id) = catalog
            .contacts_doc
            .as_deref()
            .and_then(|s| s.parse::<DocumentId>().ok())
        else {
            return Ok(None);
        };
        let Some(bytes) = self.load_doc(&id)? else {
            return Ok(None);
        };
        let contacts = Contacts::load(&bytes, self.actor()?)
            .map_err(|e| anyhow!("{e} (contacts document {id} in {})", self.path().display()))?;
        Ok(Some((id, contacts)))
    }

    /// Appends the changes `doc` has beyond `before` to the log of `id` (not yet flushed).
    pub fn append_since(
        &self,
        id: &DocumentId,
        doc: &Automerge,
        before: &[ChangeHash],
    ) -> Result<usize> {
        let changes: Vec<NewChange> = doc.get_changes(before).iter().map(new_change).collect();
        Ok(self.store()?.append(id, &changes)?)
    }

    /// Stores a whole new document (all its changes), not yet flushed.
    pub fn store_new_doc(&self, id: &DocumentId, doc: &Automerge) -> Result<()> {
        self.append_since(id, doc, &[])?;
        Ok(())
    }

    /// Appends changes that arrived by sync to the log of `id` (not yet flushed).
    pub fn store_changes(
        &self,
        id: &DocumentId,
        changes: &[nudge_journal::automerge::Change],
    ) -> Result<usize> {
        let changes: Vec<NewChange> = changes.iter().map(new_change).collect();
        Ok(self.store()?.append(id, &changes)?)
    }

    /// Stores a document that arrived whole (nothing of it was here) as one snapshot,
    /// instead of one log entry per change. Atomic: all of it or nothing.
    pub fn store_whole(&self, id: &DocumentId, doc: &Automerge) -> Result<()> {
        let hashes: Vec<_> = doc.get_changes_meta(&[]).iter().map(|c| c.hash.0).collect();
        self.store()?.import(id, &doc.save(), &hashes)?;
        Ok(())
    }

    /// The document `id` as stored here, if it is.
    pub fn load_automerge(&self, id: &DocumentId) -> Result<Option<Automerge>> {
        let Some(bytes) = self.load_doc(id)? else {
            return Ok(None);
        };
        let doc = Automerge::load(&bytes).map_err(|e| {
            anyhow!(
                "document {id} in {} is damaged ({e}); restore the folder from a backup",
                self.path().display()
            )
        })?;
        Ok(Some(doc.with_actor(self.actor()?)))
    }

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

    /// Removes a document from this device.
    pub fn remove_doc(&self, id: &DocumentId) -> Result<()> {
        self.store()?.remove(id)?;
        Ok(())
    }

    /// Whether this process changed a document.
    pub fn wrote(&self) -> bool {
        self.wrote.get()
    }

    /// Makes everything a command wrote durable, and tells a running watcher (`sync
    /// --watch`) that there is something new to send.
    pub fn flush(&self) -> Result<()> {
        self.wrote.set(true);
        self.store()?.flush()?;
        self.stamp();
        Ok(())
    }

    /// Makes what sync stored durable (no stamp: it is not news to the watcher).
    pub fn sync_flush(&self) -> Result<()> {
        self.store()?.flush()?;
        Ok(())
    }

    /// Writes `last-write` beside the store: a watcher polls it to notice local changes
    /// without opening the store. Best effort: a missed stamp delays a push until the
    /// next write or reconnect, it loses nothing.
    fn stamp(&self) {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let _ = std::fs::write(
            self.home.join(STAMP),
            format!("{nanos} {}\n", std::process::id()),
        );
    }

    /// What `last-write` says, read while this session holds the store (so no other
    /// command is half-way through a write): a sync that let go of the store compares two
    /// of these to learn whether anything was written meanwhile.
    pub fn writes_seen(&self) -> Result<String> {
        self.opened()?;
        Ok(Self::read_stamp(&self.home))
    }

    /// What `last-write` says now (empty if there is none).
    pub fn read_stamp(home: &Path) -> String {
        std::fs::read_to_string(home.join(STAMP)).unwrap_or_default()
    }

    /// The log position of a document in the store.
    pub fn store_position(&self, id: &DocumentId) -> Result<u64> {
        Ok(self.store()?.position(id)?)
    }

    /// The changes of `id` appended after `position`, or `None` if compaction folded some.
    pub fn changes_after(&self, id: &DocumentId, position: u64) -> Result<Option<Vec<Vec<u8>>>> {
        Ok(self.store()?.changes_after(id, position)?)
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
    fn current_meta(&self, id: &DocumentId) -> Result<Meta> {
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
    fn rebuild_cache(&self, journal: &Journal, position: u64) -> Result<Meta> {
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
    fn bucket(&self, id_or_prefix: &str) -> Result<Arc<Bucket>> {
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
    fn ids(&self) -> Result<Arc<IdIndex>> {
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
    fn patch_cache(
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

    fn create_journal(&self) -> Result<(DocumentId, Journal)> {
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

    /// This device's actor id (created on first use).
    pub fn device_actor(&self) -> Result<ActorId> {
        self.actor()
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

    /// Fails unless a journal exists yet (for commands that need something to act on).
    pub fn require_view(&self) -> Result<View> {
        match self.view()? {
            Some(view) => Ok(view),
            None => bail!("the journal is empty: start with `nudge add \"a five-minute step\"`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(dir: &Path) -> Replica {
        let now = Now::new(jiff::Timestamp::UNIX_EPOCH, jiff::tz::TimeZone::UTC);
        Replica::open(dir, now).unwrap()
    }

    #[test]
    fn prefixes_find_shifts_and_short_ids_stay_unique() {
        let dir = tempfile::tempdir().unwrap();
        let s = session(dir.path());
        {
            let mut loaded = s.loaded.borrow_mut();
            let mut a = Bucket::new();
            for id in ["abcd1111", "abcd2222"] {
                a.insert(id.into(), crate::cache::sample_shift(id));
            }
            let mut e = Bucket::new();
            e.insert("ef012345".into(), crate::cache::sample_shift("ef012345"));
            loaded.buckets[10] = Some(Arc::new(a));
            loaded.buckets[14] = Some(Arc::new(e));
            let ids: Vec<String> = ["abcd1111", "abcd2222", "ef012345"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            loaded.ids = Some(Arc::new(IdIndex::from_ids(&ids)));
        }
        s.local_set(local::JOURNAL, &DocumentId::random().to_string())
            .unwrap();
        assert_eq!(
            s.shift_ids_with_prefix("abcd").unwrap(),
            ["abcd1111", "abcd2222"]
        );
        assert_eq!(s.shift_ids_with_prefix("ef01").unwrap(), ["ef012345"]);
        assert!(s.shift_ids_with_prefix("a999").unwrap().is_empty());
        assert_eq!(s.shift_short_id("abcd1111").unwrap(), "abcd1");
        assert_eq!(s.shift_short_id("ef012345").unwrap(), "ef01");
    }

    #[test]
    fn a_stale_cache_is_rebuilt_from_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let s = session(dir.path());
        s.write(|j, _| {
            let c = j.add_shift(
                &s.now,
                nudge_journal::NewShift {
                    text: "one".into(),
                    ..Default::default()
                },
            )?;
            Ok((c.id, Touched::Shifts(vec![])))
        })
        .unwrap();
        // The write above did not tell the cache which shift it touched; a cache keyed on the
        // store position must not be trusted once another write moves the position.
        s.cache.damage();
        *s.loaded.borrow_mut() = Loaded::default();
        let view = s.view().unwrap().unwrap();
        assert_eq!(view.summary.open.len(), 1);
        assert_eq!(s.all_shifts().unwrap().len(), 1);
    }

    #[test]
    fn a_patched_cache_equals_a_rebuilt_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = session(dir.path());
        let add = |text: &str, idea: &str| {
            s.write(|j, v| {
                let tag = match v.catalog.resolve_idea(idea) {
                    nudge_journal::Resolved::Existing(id) => {
                        nudge_journal::TagRef::Existing(id.into())
                    }
                    _ => nudge_journal::TagRef::New(idea.into()),
                };
                let c = j.add_shift(
                    &s.now,
                    nudge_journal::NewShift {
                        text: text.into(),
                        ideas: vec![tag],
                        ..Default::default()
                    },
                )?;
                Ok((c.id.clone(), Touched::Shifts(vec![c.id])))
            })
            .unwrap()
        };
        let ids: Vec<String> = (0..40)
            .map(|i| {
                add(
                    &format!("shift {i}"),
                    if i % 2 == 0 { "ux" } else { "teaching" },
                )
            })
            .collect();
        for (i, id) in ids.iter().enumerate() {
            s.write(|j, _| {
                match i % 4 {
                    0 => j.set_status(&s.now, id, nudge_journal::ShiftStatus::Done, None, None)?,
                    1 => j.remove_shift(&s.now, id)?,
                    2 => {
                        j.set_status(&s.now, id, nudge_journal::ShiftStatus::Skipped, None, None)?
                    }
                    _ => {}
                }
                Ok(((), Touched::Shifts(vec![id.clone()])))
            })
            .unwrap();
        }
        let patched = (
            s.view().unwrap().unwrap().summary,
            s.all_shifts().unwrap(),
            s.shift_short_id(&ids[0]).unwrap(),
        );
        s.cache.damage();
        *s.loaded.borrow_mut() = Loaded::default();
        let rebuilt = (
            s.view().unwrap().unwrap().summary,
            s.all_shifts().unwrap(),
            s.shift_short_id(&ids[0]).unwrap(),
        );
        assert_eq!(patched, rebuilt);
        assert_eq!(rebuilt.1.len(), 30);
        assert_eq!(rebuilt.0.day_counts.values().sum::<u32>(), 10);
    }

    #[test]
    fn a_journal_missing_a_dependency_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = session(dir.path());
        s.write(|j, _| {
            let c = j.add_shift(
                &s.now,
                nudge_journal::NewShift {
                    text: "one".into(),
                    ..Default::default()
                },
            )?;
            Ok(((), Touched::Shifts(vec![c.id])))
        })
        .unwrap();
        // Two more changes made elsewhere; only the second reaches the store.
        let mut other = s.load_journal().unwrap().unwrap();
        let before = other.doc().get_heads();
        for text in ["two", "three"] {
            other
                .add_shift(
                    &s.now,
                    nudge_journal::NewShift {
                        text: text.into(),
                        ..Default::default()
                    },
                )
                .unwrap();
        }
        let changes = other.doc().get_changes(&before);
        let id = s.journal_id().unwrap().unwrap();
        let last = changes.last().unwrap();
        s.store()
            .unwrap()
            .append(
                &id,
                &[NewChange {
                    hash: last.hash().0,
                    bytes: last.raw_bytes().to_vec(),
                }],
            )
            .unwrap();
        let err = s.load_journal().err().unwrap().to_string();
        assert!(err.contains("missing changes"), "{err}");
    }
}
