//! A replica: the device's store opened for one command, the journal in it, and the cache
//! of derived state that lets reads skip loading the document.
//!
//! Reads use the cache when its store position matches the journal's; otherwise they rebuild
//! it once from the document. Writes load the document, make one change, append it to the
//! log and flush before returning (a printed success is on disk), then patch the cache for
//! the shifts they touched, with the same code a rebuild uses.
//!
//! This file opens, parks and reopens the store and loads documents; `views.rs` reads,
//! `write.rs` writes, `sync_state.rs` keeps what the device knows of its sync,
//! `settings.rs` its own settings, `restored.rs` the move to a fresh actor after a
//! restore from a copy.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use nudge_journal::automerge::{ActorId, Automerge, ChangeHash};
use nudge_journal::{Catalog, Contacts, Journal, Now, Summary};
use nudge_store::{DocumentId, Location, NewChange, OpenOptions, Store};

mod restored;
mod settings;
mod sync_state;
mod views;
mod write;

pub use restored::ActorMove;

use crate::cache::{BUCKETS, Bucket, Cache, IdIndex, Meta};
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
    store: Store,
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
        let store = Store::open(&Location::Folder(home.join("store")), &options)?;
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

    fn store(&self) -> Result<Store> {
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

    /// This device's actor id (created on first use).
    pub fn device_actor(&self) -> Result<ActorId> {
        self.actor()
    }
}

#[cfg(test)]
#[path = "replica/tests.rs"]
mod tests;
