//! One store, whatever its backend: the documents ([`DocStore`]) and the records
//! ([`Records`]) of one database, made durable by one `flush`, behind a cloneable handle.
//! The server and the admin commands open their store here by where it lives
//! ([`Location`]), so that no code above this crate names a backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::records::Records;
use crate::signal::{Shared, Signal};
use crate::store::DocStore;

/// How to open a [`Store`] (what a folder's embedded database needs; other backends
/// take what applies to them).
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// How long to wait for another process to release the store before giving up.
    pub lock_wait: Duration,
    /// Let sled flush in the background every this many milliseconds, besides the explicit
    /// [`DocStore::flush`] calls. A short-lived process that flushes before it reports
    /// success needs none (and starts faster without the flusher thread).
    pub background_flush_ms: Option<u64>,
    /// Bytes of sled's page cache (sled's own default is 1 GiB, all of it resident once
    /// the data has been read or written).
    pub cache_bytes: u64,
    /// What to check before the store is handed out (a store that fails is refused, and
    /// its files are put back as they were).
    pub check: Check,
}

/// How much an open checks of a store's files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Check {
    /// That sled kept every write a flush confirmed (the seal, `seal.rs`): cheap, for
    /// every open.
    #[default]
    Seal,
    /// That too, and that every entry of every tree reads back (sled checks each page's
    /// CRC as it reads it): a read of the whole store, for a server's start.
    Everything,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            lock_wait: Duration::from_secs(3),
            background_flush_ms: Some(500),
            cache_bytes: 64 << 20,
            check: Check::default(),
        }
    }
}

/// Both storage traits over one database.
pub trait Backend: DocStore + Records {}

impl<T: DocStore + Records + ?Sized> Backend for T {}

/// Where a store lives, as an operator names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// The embedded database in a folder (sled): nudge's default, nothing else to run.
    Folder(PathBuf),
    /// A PostgreSQL database (`postgres://USER@HOST:PORT/DB`): for a server on several
    /// machines; needs the `postgres` feature.
    Postgres(String),
    /// In memory only, gone when the process ends (tests).
    Memory,
}

impl Location {
    /// What an operator wrote: a `postgres://` (or `postgresql://`) URL, else a folder.
    pub fn parse(spec: &str) -> Self {
        let spec = spec.trim();
        if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
            Location::Postgres(spec.to_owned())
        } else {
            Location::Folder(PathBuf::from(spec))
        }
    }

    /// Whether a store was ever created here (an admin command run against the wrong
    /// folder must not create an empty store there).
    pub fn holds_a_store(&self) -> bool {
        match self {
            // sled writes `conf` and `db` when it creates a database.
            Location::Folder(dir) => dir.join("conf").exists() || dir.join("db").exists(),
            // Opening tells (a database that is not there does not connect).
            Location::Postgres(_) => true,
            Location::Memory => false,
        }
    }

    /// The folder, for a store kept in one.
    pub fn folder(&self) -> Option<&Path> {
        match self {
            Location::Folder(dir) => Some(dir),
            Location::Postgres(_) | Location::Memory => None,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Folder(dir) => write!(f, "{}", dir.display()),
            Location::Postgres(url) => f.write_str(&without_password(url)),
            Location::Memory => f.write_str("memory"),
        }
    }
}

/// An open store: cheap to clone, every clone the same database.
#[derive(Clone)]
pub struct Store {
    docs: Arc<dyn Backend>,
    location: Location,
    /// What the processes sharing the database tell each other; `None`: this process is
    /// the only one (sled, memory).
    shared: Option<Arc<dyn Shared>>,
}

impl Store {
    /// Opens (or creates) the store at `location`; `options` say how (for a folder: how
    /// long to wait for another process, the cache, what to check).
    pub fn open(location: &Location, options: &crate::OpenOptions) -> Result<Self, Error> {
        let (docs, shared): (Arc<dyn Backend>, Option<Arc<dyn Shared>>) = match location {
            #[cfg(feature = "sled")]
            Location::Folder(dir) => (Arc::new(crate::SledStore::open(dir, options)?), None),
            #[cfg(not(feature = "sled"))]
            Location::Folder(dir) => {
                let _ = options;
                return Err(Error::Io {
                    path: dir.clone(),
                    detail: "this build has no embedded store (the `sled` feature)".into(),
                });
            }
            #[cfg(feature = "postgres")]
            Location::Postgres(url) => {
                let pg = Arc::new(crate::PgStore::open(url)?);
                (pg.clone(), Some(pg))
            }
            #[cfg(not(feature = "postgres"))]
            Location::Postgres(url) => {
                return Err(Error::Io {
                    path: PathBuf::from(without_password(url)),
                    detail: "this build has no PostgreSQL backend (the `postgres` feature)".into(),
                });
            }
            Location::Memory => (Arc::new(crate::MemoryStore::new()), None),
        };
        Ok(Self {
            docs,
            location: location.clone(),
            shared,
        })
    }

    /// A store over `backend` (tests wrap a real one to inject faults).
    pub fn from_backend(backend: Arc<dyn Backend>, location: Location) -> Self {
        Self {
            docs: backend,
            location,
            shared: None,
        }
    }

    /// What the processes sharing this database tell each other, if several may (a
    /// server then catches its documents up with the others' writes); `None`: this
    /// process is the only one that writes here.
    pub fn shared(&self) -> Option<&Arc<dyn Shared>> {
        self.shared.as_ref()
    }

    /// Tells the other processes on this database `signal`; nothing to do when there
    /// are none.
    pub fn announce(&self, signal: &Signal) -> Result<(), Error> {
        match &self.shared {
            Some(shared) => shared.announce(signal),
            None => Ok(()),
        }
    }

    /// The documents.
    pub fn docs(&self) -> Arc<dyn DocStore> {
        self.docs.clone()
    }

    /// The records.
    pub fn records(&self) -> Arc<dyn Records> {
        self.docs.clone()
    }

    /// Makes everything written so far, documents and records, durable.
    pub fn flush(&self) -> Result<(), Error> {
        self.docs.flush()
    }

    /// Where it lives.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Whether it holds no document and no record (a restore or a copy goes only into
    /// such a store).
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.docs.documents()?.is_empty() && self.docs.tables()?.is_empty())
    }
}

impl std::ops::Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.docs
    }
}

/// `postgres://user:secret@host/db` without the secret, for messages and logs.
pub(crate) fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_is_a_url_or_a_folder_and_never_shows_a_password() {
        let pg = Location::parse(" postgres://nudge:hunter2@db.example:5432/nudge ");
        assert_eq!(
            pg,
            Location::Postgres("postgres://nudge:hunter2@db.example:5432/nudge".into())
        );
        assert_eq!(pg.to_string(), "postgres://nudge@db.example:5432/nudge");
        assert_eq!(
            Location::parse("postgresql://db/nudge").to_string(),
            "postgresql://db/nudge"
        );
        assert_eq!(
            Location::parse("./nudge-data"),
            Location::Folder("./nudge-data".into())
        );
    }

    #[test]
    fn a_memory_store_is_empty_until_written() {
        let store = Store::open(&Location::Memory, &crate::OpenOptions::default()).unwrap();
        assert!(store.is_empty().unwrap());
        store.records().put("t", b"k", b"v").unwrap();
        assert!(!store.is_empty().unwrap());
        assert!(!Location::Memory.holds_a_store());
    }

    #[cfg(feature = "sled")]
    #[test]
    fn a_folder_holds_a_store_once_one_is_opened_there() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::Folder(dir.path().join("data"));
        assert!(!location.holds_a_store());
        let store = Store::open(&location, &crate::OpenOptions::default()).unwrap();
        store.flush().unwrap();
        assert!(location.holds_a_store());
        assert_eq!(location.folder(), Some(dir.path().join("data").as_path()));
    }
}
