//! A session: the device's store opened for one command, the journal in it, and the cache
//! of derived state that lets reads skip loading the document.
//!
//! Reads use the cache when its store position matches the journal's; otherwise they rebuild
//! it once from the document. Writes load the document, make one change, append it to the
//! log and flush before returning (a printed success is on disk), then patch the cache for
//! the shifts they touched, with the same code a rebuild uses.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use nudge_journal::automerge::{ActorId, Automerge, ChangeHash};
use nudge_journal::{Catalog, Contacts, Journal, Now, Shift, Summary};
use nudge_store::{DocStore, DocumentId, NewChange, OpenOptions, SledStore};
use serde::{Deserialize, Serialize};

/// Compact a document's log into a snapshot once it has this many changes since the last.
const COMPACT_AFTER: usize = 256;
/// Bump when the cache's shape changes; an old cache is then rebuilt.
const CACHE_FORMAT: u32 = 1;

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
}

#[derive(Serialize, Deserialize)]
struct CacheMeta {
    format: u32,
    position: u64,
    catalog: Catalog,
    summary: Summary,
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

/// The opened store of one device.
pub struct Session {
    /// `journal.position` beside the store: the journal's id and the highest log position
    /// this device has confirmed. sled recovers a damaged log by cutting it short, silently;
    /// this file, written outside sled, is how such a loss is noticed instead of hidden.
    marker: PathBuf,
    store: SledStore,
    local: sled::Tree,
    cache: sled::Tree,
    cache_shifts: sled::Tree,
    /// The clock and zone.
    pub now: Now,
}

fn decode<T: for<'a> Deserialize<'a>>(bytes: &[u8]) -> Option<T> {
    postcard::from_bytes(bytes).ok()
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).context("encoding the cache")
}

fn new_change(change: &nudge_journal::automerge::Change) -> NewChange {
    NewChange {
        hash: change.hash().0,
        bytes: change.raw_bytes().to_vec(),
    }
}

impl Session {
    /// Opens the store in `home`, creating the folder if needed.
    pub fn open(home: &Path, now: Now) -> Result<Self> {
        std::fs::create_dir_all(home).with_context(|| {
            format!(
                "cannot create the data folder {}; check its permissions or pass --home",
                home.display()
            )
        })?;
        // Every write flushes before it reports success, so no background flusher is needed.
        let options = OpenOptions {
            background_flush_ms: None,
            ..OpenOptions::default()
        };
        let store = SledStore::open(&home.join("store"), &options)?;
        Ok(Self {
            marker: home.join("journal.position"),
            local: store.tree("local")?,
            cache: store.tree("cache")?,
            cache_shifts: store.tree("cache_shifts")?,
            store,
            now,
        })
    }

    /// The store's folder.
    pub fn path(&self) -> PathBuf {
        self.store.path().to_path_buf()
    }

    /// A device-local setting.
    pub fn local_get(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .local
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Sets a device-local setting (durably).
    pub fn local_set(&self, key: &str, value: &str) -> Result<()> {
        self.local.insert(key, value.as_bytes())?;
        self.store.flush()?;
        Ok(())
    }

    fn actor(&self) -> Result<ActorId> {
        if let Some(bytes) = self.local.get(local::ACTOR)? {
            return Ok(ActorId::from(bytes.as_ref()));
        }
        let actor = ActorId::random();
        self.local.insert(local::ACTOR, actor.to_bytes())?;
        Ok(actor)
    }

    /// This device's name (default: the host name).
    pub fn device_name(&self) -> Result<String> {
        Ok(self
            .local_get(local::DEVICE_NAME)?
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
        match (stored, self.read_marker()?) {
            (None, Some((id, _))) => bail!(
                "the store at {} has lost the journal {id} that {} names; nothing was changed: restore the folder from a backup (to start over instead, remove both)",
                self.path().display(),
                self.marker.display()
            ),
            (Some(a), Some((b, _))) if a != b => bail!(
                "the store at {} holds journal {a} but {} names {b}; nothing was changed: restore the folder from a backup",
                self.path().display(),
                self.marker.display()
            ),
            (id, _) => Ok(id),
        }
    }

    fn read_marker(&self) -> Result<Option<(DocumentId, u64)>> {
        let text = match std::fs::read_to_string(&self.marker) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.marker.display()));
            }
        };
        let mut parts = text.split_whitespace();
        let parsed = (|| Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?)))();
        parsed.map(Some).ok_or_else(|| {
            anyhow!(
                "{} is damaged; restore the folder from a backup",
                self.marker.display()
            )
        })
    }

    /// Records the journal's confirmed position, atomically (temporary file, then rename).
    fn write_marker(&self, id: &DocumentId, position: u64) -> Result<()> {
        use std::io::Write;
        let tmp = self.marker.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        writeln!(file, "{id} {position}")?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.marker)
            .with_context(|| format!("cannot write {}", self.marker.display()))?;
        Ok(())
    }

    /// The journal's log position, checked against the marker: a store that went back lost
    /// changes, and must not be used (or written to) as if nothing happened.
    fn checked_position(&self, id: &DocumentId) -> Result<u64> {
        let position = self.store.position(id)?;
        if let Some((_, confirmed)) = self.read_marker()?
            && position < confirmed
        {
            bail!(
                "the store at {} has lost changes (it ends at {position}, {} confirmed {confirmed}); nothing was changed: restore the folder from a backup or re-sync",
                self.path().display(),
                self.marker.display()
            );
        }
        Ok(position)
    }

    fn load_doc(&self, id: &DocumentId) -> Result<Option<Vec<u8>>> {
        Ok(self.store.load(id)?.map(|stored| stored.concat()))
    }

    /// Loads the journal document (for writes, history and export).
    pub fn load_journal(&self) -> Result<Option<Journal>> {
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
        Ok(Some(journal))
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
        Ok(self.store.append(id, &changes)?)
    }

    /// Stores a whole new document (all its changes), not yet flushed.
    pub fn store_new_doc(&self, id: &DocumentId, doc: &Automerge) -> Result<()> {
        self.append_since(id, doc, &[])?;
        Ok(())
    }

    /// Removes a document from this device.
    pub fn remove_doc(&self, id: &DocumentId) -> Result<()> {
        self.store.remove(id)?;
        Ok(())
    }

    /// Makes everything written durable.
    pub fn flush(&self) -> Result<()> {
        self.store.flush()?;
        Ok(())
    }

    /// The derived state, from the cache or rebuilt. `None` before the first journal.
    pub fn view(&self) -> Result<Option<View>> {
        let Some(id) = self.journal_id()? else {
            return Ok(None);
        };
        let position = self.checked_position(&id)?;
        if let Some(meta) = self.cached_meta(position)? {
            return Ok(Some(View {
                catalog: meta.catalog,
                summary: meta.summary,
            }));
        }
        let journal = self
            .load_journal()?
            .ok_or_else(|| anyhow!("the journal disappeared"))?;
        Ok(Some(self.rebuild_cache(&journal, position)?))
    }

    fn cached_meta(&self, position: u64) -> Result<Option<CacheMeta>> {
        let Some(bytes) = self.cache.get("meta")? else {
            return Ok(None);
        };
        Ok(decode::<CacheMeta>(&bytes)
            .filter(|m| m.format == CACHE_FORMAT && m.position == position))
    }

    fn rebuild_cache(&self, journal: &Journal, position: u64) -> Result<View> {
        let catalog = journal.catalog()?;
        let shifts = journal.shifts()?;
        let summary = Summary::build(&shifts);
        self.cache_shifts.clear()?;
        let mut batch = sled::Batch::default();
        for shift in &shifts {
            batch.insert(shift.id.as_bytes(), encode(shift)?);
        }
        self.cache_shifts.apply_batch(batch)?;
        let meta = CacheMeta {
            format: CACHE_FORMAT,
            position,
            catalog,
            summary,
        };
        self.cache.insert("meta", encode(&meta)?)?;
        self.store.flush()?;
        Ok(View {
            catalog: meta.catalog,
            summary: meta.summary,
        })
    }

    /// One shift from the cache, by full id.
    pub fn cached_shift(&self, id: &str) -> Result<Option<Shift>> {
        Ok(self.cache_shifts.get(id)?.and_then(|b| decode(&b)))
    }

    /// Full ids of cached shifts starting with `prefix`.
    pub fn shift_ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        self.cache_shifts
            .scan_prefix(prefix.to_ascii_lowercase().as_bytes())
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).into_owned()))
            .collect()
    }

    /// The shortest unique prefix (at least 4) of a shift id.
    pub fn shift_short_id(&self, id: &str) -> Result<String> {
        let shared = |other: Option<(sled::IVec, sled::IVec)>| {
            other.map_or(0, |(k, _)| {
                k.iter()
                    .zip(id.as_bytes())
                    .take_while(|(a, b)| a == b)
                    .count()
            })
        };
        let len =
            shared(self.cache_shifts.get_lt(id)?).max(shared(self.cache_shifts.get_gt(id)?)) + 1;
        Ok(id[..len.max(nudge_journal::ids::MIN_PREFIX).min(id.len())].to_owned())
    }

    /// Every cached shift, in id order.
    pub fn all_shifts(&self) -> Result<Vec<Shift>> {
        let mut out = Vec::new();
        for entry in self.cache_shifts.iter().values() {
            if let Some(shift) = decode(&entry?) {
                out.push(shift);
            }
        }
        Ok(out)
    }

    /// Runs one command that changes the journal: loads it (creating it on first use),
    /// runs `f`, stores and flushes the new changes, and updates the cache.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Journal, &View) -> Result<(T, Touched)>,
    ) -> Result<T> {
        let (id, mut journal) = match self.load_journal()? {
            Some(journal) => (
                self.journal_id()?.expect("a loaded journal has an id"),
                journal,
            ),
            None => self.create_journal()?,
        };
        journal.check_writable()?;
        let before = journal.doc().get_heads();
        let mut position = self.checked_position(&id)?;
        let view = match self.cached_meta(position)? {
            Some(meta) => View {
                catalog: meta.catalog,
                summary: meta.summary,
            },
            None => self.rebuild_cache(&journal, position)?,
        };
        let device = self.device_name()?;
        if !view
            .catalog
            .devices
            .contains_key(&journal.doc().get_actor().to_hex_string())
        {
            journal.register_device(&self.now, &device)?;
        }
        let (value, touched) = f(&mut journal, &view)?;
        if self.append_since(&id, journal.doc(), &before)? == 0 {
            return Ok(value);
        }
        self.store.flush()?;
        position = self.store.position(&id)?;
        self.write_marker(&id, position)?;
        match touched {
            Touched::All => {
                self.rebuild_cache(&journal, position)?;
            }
            Touched::Shifts(ids) => {
                let mut summary = view.summary;
                for shift_id in ids {
                    let old = self.cached_shift(&shift_id)?;
                    let new = journal.shift(&shift_id)?;
                    summary.apply(old.as_ref(), new.as_ref());
                    match &new {
                        Some(shift) => self
                            .cache_shifts
                            .insert(shift_id.as_bytes(), encode(shift)?)?,
                        None => self.cache_shifts.remove(shift_id.as_bytes())?,
                    };
                }
                let meta = CacheMeta {
                    format: CACHE_FORMAT,
                    position,
                    catalog: journal.catalog()?,
                    summary,
                };
                self.cache.insert("meta", encode(&meta)?)?;
                self.store.flush()?;
            }
        }
        self.maybe_compact(&id, journal.doc())?;
        Ok(value)
    }

    fn create_journal(&self) -> Result<(DocumentId, Journal)> {
        let actor = self.actor()?;
        let contacts_id = DocumentId::random();
        let contacts = Contacts::create(actor.clone(), &self.now);
        let journal = Journal::create(
            actor,
            &self.now,
            &self.device_name()?,
            &contacts_id.to_string(),
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
        self.store_new_doc(&id, journal.doc())?;
        self.store.flush()?;
        self.maybe_compact(&id, journal.doc())?;
        // The pointers are written last: a crash before them leaves no half-made journal in use.
        self.local_set(local::JOURNAL, &id.to_string())?;
        self.write_marker(&id, self.store.position(&id)?)?;
        Ok(id)
    }

    /// This device's actor id (created on first use).
    pub fn device_actor(&self) -> Result<ActorId> {
        self.actor()
    }

    /// Writes a snapshot when enough changes have piled up since the last one.
    pub fn maybe_compact(&self, id: &DocumentId, doc: &Automerge) -> Result<()> {
        if self.store.changes_since_snapshot(id)? < COMPACT_AFTER {
            return Ok(());
        }
        let through = self.store.position(id)?;
        self.store.compact(id, &doc.save(), through)?;
        self.store.flush()?;
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

    fn session(dir: &Path) -> Session {
        let now = Now::new(jiff::Timestamp::UNIX_EPOCH, jiff::tz::TimeZone::UTC);
        Session::open(dir, now).unwrap()
    }

    #[test]
    fn ambiguous_and_unknown_prefixes_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let s = session(dir.path());
        for id in ["abcd1111", "abcd2222", "ef012345"] {
            s.cache_shifts.insert(id, encode(&()).unwrap()).unwrap();
        }
        let err = crate::resolve::shift_id(&s, "abcd")
            .unwrap_err()
            .to_string();
        assert!(err.contains("matches 2 shifts"), "{err}");
        assert!(err.contains("abcd1") && err.contains("abcd2"), "{err}");
        assert_eq!(crate::resolve::shift_id(&s, "ABCD2").unwrap(), "abcd2222");
        assert_eq!(crate::resolve::shift_id(&s, "ef01").unwrap(), "ef012345");
        let err = crate::resolve::shift_id(&s, "9999")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nudge list --all"), "{err}");
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
        s.cache.insert("meta", b"garbage".to_vec()).unwrap();
        let view = s.view().unwrap().unwrap();
        assert_eq!(view.summary.open.len(), 1);
        assert_eq!(s.all_shifts().unwrap().len(), 1);
    }
}
