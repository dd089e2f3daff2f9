//! Opening a [`SledStore`]: the folder made private, the lock waited for, sled's files
//! copied before sled may touch them and put back if what it recovered fails the check
//! (`pristine.rs`, `seal.rs`), and snapshot files a killed process left unfinished
//! cleared away.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{SledStore, io_error};
use crate::pristine::{self, Pristine};
use crate::seal::{self, Seal};
use crate::{Check, Error, OpenOptions};

impl SledStore {
    /// Opens (or creates) the store in `path`, waiting up to `options.lock_wait` while
    /// another process holds it.
    pub fn open(path: &Path, options: &OpenOptions) -> Result<Self, Error> {
        private_folder(path)?;
        let started = Instant::now();
        loop {
            match Self::open_checked(path, options) {
                Err(Error::Locked { .. }) if started.elapsed() < options.lock_wait => {
                    tracing::debug!(path = %path.display(), "store in use by another process; waiting");
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    /// One attempt: copy sled's files, let sled open (and recover) them, check what it
    /// recovered; a store that fails is dropped and its files put back from the copy.
    fn open_checked(path: &Path, options: &OpenOptions) -> Result<Self, Error> {
        // One opener at a time from the copy to the check: sled's lock is let go between
        // the two, and the copy is shared.
        let _opening = pristine::opening_lock(path)?;
        // Another process holding the store: wait for it (sled is not let near files that
        // were not copied first).
        let pristine = with_store_lock(path, || {
            clear_unfinished_snapshots(path)?;
            Pristine::take(path)
        })?
        .ok_or_else(|| Error::Locked {
            path: path.to_path_buf(),
        })?;
        let opened = open_db(path, options)
            .and_then(|db| Self::from_db(path, db))
            .and_then(|store| store.checked(options.check));
        match (opened, pristine) {
            (opened @ (Ok(_) | Err(Error::Locked { .. })), pristine) => {
                if let Some(pristine) = pristine {
                    pristine.discard();
                }
                opened
            }
            (Err(e), Some(pristine)) => {
                tracing::error!(path = %path.display(), "refusing the store, its files put back as they were: {e}");
                pristine.restore()?;
                Err(e)
            }
            (Err(e), None) => Err(e),
        }
    }

    /// The store, once it passed `check`.
    fn checked(self, check: Check) -> Result<Self, Error> {
        if check == Check::Everything {
            for name in self.db.tree_names() {
                let tree = self.db.open_tree(&name).map_err(|e| self.io(e))?;
                for entry in tree.iter() {
                    entry.map_err(|e| self.io(e))?;
                }
            }
        }
        Ok(self)
    }

    fn from_db(path: &Path, db: sled::Db) -> Result<Self, Error> {
        let open = |name: &str| db.open_tree(name).map_err(|e| io_error(path, e));
        Ok(Self {
            seal: std::sync::Arc::new(Seal::check(path, open(seal::TREE)?)?),
            path: path.to_path_buf(),
            log: open("log")?,
            hashes: open("hashes")?,
            snapshot_hashes: open("snapshot_hashes")?,
            snapshots: open("snapshots")?,
            snapshot_through: open("snapshot_through")?,
            append_lock: Default::default(),
            tables: Default::default(),
            db,
        })
    }
}

/// Removes the snapshot files a killed process left half-written, so that sled can open
/// the store.
///
/// sled 0.34 writes its snapshot (the page table it recovers from) to
/// `snap.<lsn>.generating`, syncs it, and only then renames it to `snap.<lsn>`; the
/// previous snapshot is removed after the rename. But when it opens a store it reads the
/// last of the `snap.` files by name, and the unfinished `.generating` one sorts last, so
/// a process killed while writing it (sled writes one whenever it opens a store) left a
/// store sled refused to open ("Read corrupted data at file offset None"). Without the
/// unfinished file, sled recovers from the previous snapshot and its log, as it does after
/// any crash before the snapshot was begun; no data lives only in that file.
///
/// Only with the store's lock held: then no process is writing one. Another process
/// holding the store leaves the files alone, and sled's own lock error follows.
fn clear_unfinished_snapshots(path: &Path) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            tracing::warn!(path = %path.display(), file = %name, "removing a snapshot file a killed process left unfinished");
            std::fs::remove_file(entry.path()).map_err(io)?;
        }
    }
    Ok(())
}

/// Runs `f` holding the lock sled takes on the store's `db` file, and releases it for sled
/// to take: `None` for a store another process holds (sled's own lock error follows), and
/// `f` runs at once for a store without a `db` file yet.
fn with_store_lock<T>(
    path: &Path,
    f: impl FnOnce() -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let db = match std::fs::File::open(path.join("db")) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return f().map(Some),
        Err(e) => return Err(io(e)),
    };
    match db.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    let result = f();
    // Dropping the file releases the lock, for sled to take.
    drop(db);
    result.map(Some)
}

/// Creates the store's folder if missing and makes it its owner's alone (0700 on Unix): it
/// holds every journal and contact detail, and sled creates its files with the umask's mode.
fn private_folder(path: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(0o700);
        let is_private = std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777 == 0o700)
            .unwrap_or(false);
        if !is_private && let Err(e) = std::fs::set_permissions(path, private) {
            // Not the folder's owner: the store still works; say so.
            tracing::warn!(path = %path.display(), "cannot make the store's folder private (0700): {e}");
        }
    }
    Ok(())
}

fn open_db(path: &Path, options: &OpenOptions) -> Result<sled::Db, Error> {
    // sled can panic on some damaged files; a damaged store must be an error, not a crash.
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(options.cache_bytes)
        .flush_every_ms(options.background_flush_ms);
    let opened = catch_unwind(AssertUnwindSafe(|| config.open()));
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(sled::Error::Io(e))) if e.to_string().contains("could not acquire lock") => {
            Err(Error::Locked {
                path: path.to_path_buf(),
            })
        }
        Ok(Err(e @ (sled::Error::Corruption { .. } | sled::Error::Unsupported(_)))) => {
            Err(Error::Corrupt {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })
        }
        Ok(Err(e)) => Err(Error::Io {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
        Err(_) => Err(Error::Corrupt {
            path: path.to_path_buf(),
            detail: "sled could not recover its files".into(),
        }),
    }
}
