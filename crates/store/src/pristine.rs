//! A copy of sled's files taken before sled opens them, so that a refused open leaves every
//! byte as it was.
//!
//! sled has no read-only mode: opening a store recovers it in place, and on a damaged log
//! that recovery zeroes everything after the first bad record (99.8% of one damaged file
//! in a test) before nudge can look. So the store's files are copied into
//! `nudge-pristine/` in the store's folder first; if the opened store then fails its checks
//! the copy is moved back over what sled left, and if it passes the copy is deleted. The
//! copy is scratch, never synced: a process that dies holding one leaves it behind, and the
//! next open deletes it (the seal still catches what sled lost; see `seal.rs`).

use std::path::{Path, PathBuf};

use crate::Error;

/// The folder of the copy, inside the store's folder.
pub(crate) const DIR: &str = "nudge-pristine";

/// sled's own files: `conf`, `db`, its snapshots `snap.*` and large values under `blobs/`.
fn is_sleds(name: &str) -> bool {
    matches!(name, "conf" | "db" | "blobs") || name.starts_with("snap.")
}

/// The lock file that makes one process at a time open the store (from the copy to the
/// check), beside sled's files.
const LOCK: &str = "nudge-open.lock";

/// Takes the opening lock of the store at `store`, held until the returned file drops;
/// [`Error::Locked`] while another process opens it.
pub(crate) fn opening_lock(store: &Path) -> Result<std::fs::File, Error> {
    let path = store.join(LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
            path: store.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io(&path, e)),
    }
}

/// A copy of a store's sled files.
pub(crate) struct Pristine {
    store: PathBuf,
    dir: PathBuf,
}

impl Pristine {
    /// Copies the sled files of the store at `store` (whose lock the caller holds); `None`
    /// for a new store, which has nothing to keep.
    pub(crate) fn take(store: &Path) -> Result<Option<Self>, Error> {
        let dir = store.join(DIR);
        if dir.exists() {
            tracing::warn!(path = %dir.display(), "removing the copy a process that died while opening the store left");
            std::fs::remove_dir_all(&dir).map_err(|e| io(&dir, e))?;
        }
        if !store.join("db").exists() {
            return Ok(None);
        }
        let copied = Self {
            store: store.to_path_buf(),
            dir,
        };
        let made =
            std::fs::create_dir(&copied.dir).and_then(|()| copy_tree(store, &copied.dir, true));
        match made {
            Ok(()) => Ok(Some(copied)),
            // A full disk must not lock the user out of their store: it opens without the
            // copy (the seal still refuses a store that lost writes; only putting sled's
            // files back after a refusal is given up).
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                ) =>
            {
                tracing::warn!(path = %store.display(), "no room to copy the store before opening it; opening it without the copy");
                copied.discard();
                Ok(None)
            }
            Err(e) => {
                let dir = copied.dir.clone();
                copied.discard();
                Err(io(&dir, e))
            }
        }
    }

    /// The store passed its checks: the copy goes.
    pub(crate) fn discard(self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(path = %self.dir.display(), "cannot remove the store's scratch copy: {e}");
        }
    }

    /// The store failed its checks: its sled files are put back as they were before sled
    /// opened them (sled must have let go of them).
    pub(crate) fn restore(self) -> Result<(), Error> {
        for entry in std::fs::read_dir(&self.store).map_err(|e| io(&self.store, e))? {
            let entry = entry.map_err(|e| io(&self.store, e))?;
            let name = entry.file_name();
            if is_sleds(&name.to_string_lossy()) && !self.dir.join(&name).exists() {
                remove(&entry.path())?;
            }
        }
        for entry in std::fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))? {
            let entry = entry.map_err(|e| io(&self.dir, e))?;
            let target = self.store.join(entry.file_name());
            if entry.path().is_dir() {
                remove(&target)?;
            }
            std::fs::rename(entry.path(), &target).map_err(|e| io(&target, e))?;
        }
        std::fs::remove_dir_all(&self.dir).map_err(|e| io(&self.dir, e))
    }
}

fn remove(path: &Path) -> Result<(), Error> {
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path, e)),
        _ => Ok(()),
    }
}

/// Copies `from`'s sled files (all of them, below the top level) into `to`.
fn copy_tree(from: &Path, to: &Path, top: bool) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if top && (!is_sleds(&text) || text.ends_with(".generating")) {
            continue;
        }
        let target = to.join(&name);
        let kind = entry.file_type()?;
        if kind.is_dir() {
            std::fs::create_dir(&target)?;
            copy_tree(&entry.path(), &target, false)?;
        } else if kind.is_file() {
            // copy_file_range on Linux: in the kernel, and a reflink where the file system
            // has them.
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_puts_back_every_sled_file_and_removes_what_came_after() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path();
        std::fs::write(store.join("db"), b"before").unwrap();
        std::fs::write(store.join("conf"), b"conf").unwrap();
        std::fs::write(store.join("snap.0001"), b"old snapshot").unwrap();
        std::fs::create_dir(store.join("blobs")).unwrap();
        std::fs::write(store.join("blobs").join("7"), b"blob").unwrap();
        std::fs::write(store.join("admin.json"), b"not sled's").unwrap();
        let copy = Pristine::take(store).unwrap().unwrap();
        assert!(!store.join(DIR).join("admin.json").exists());
        // What an opening sled does: rewrite the log, a new snapshot, the old one gone.
        std::fs::write(store.join("db"), b"zeroed").unwrap();
        std::fs::write(store.join("snap.0002"), b"new snapshot").unwrap();
        std::fs::remove_file(store.join("snap.0001")).unwrap();
        std::fs::write(store.join("blobs").join("8"), b"new blob").unwrap();
        copy.restore().unwrap();
        assert_eq!(std::fs::read(store.join("db")).unwrap(), b"before");
        assert_eq!(
            std::fs::read(store.join("snap.0001")).unwrap(),
            b"old snapshot"
        );
        assert!(!store.join("snap.0002").exists());
        assert!(!store.join("blobs").join("8").exists());
        assert_eq!(
            std::fs::read(store.join("blobs").join("7")).unwrap(),
            b"blob"
        );
        assert_eq!(
            std::fs::read(store.join("admin.json")).unwrap(),
            b"not sled's"
        );
        assert!(!store.join(DIR).exists());
    }

    #[test]
    fn a_new_store_has_nothing_to_copy_and_a_stale_copy_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(DIR)).unwrap();
        assert!(Pristine::take(dir.path()).unwrap().is_none());
        assert!(!dir.path().join(DIR).exists());
    }
}
