//! Storage errors.

use std::path::PathBuf;

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process has the store open.
    #[error(
        "the store at {} is in use by another process; wait for it to finish and try again",
        path.display()
    )]
    Locked {
        /// The store's folder.
        path: PathBuf,
    },
    /// The store's files could not be read as a store.
    #[error(
        "the store at {} is corrupt or unreadable ({detail}); nothing was changed: move the folder aside and restore it from a backup or a re-sync",
        path.display()
    )]
    Corrupt {
        /// The store's folder.
        path: PathBuf,
        /// What the backend reported.
        detail: String,
    },
    /// A read or write failed.
    #[error("storage failed at {}: {detail}", path.display())]
    Io {
        /// The store's folder.
        path: PathBuf,
        /// What the backend reported.
        detail: String,
    },
    /// An entry had a shape the store never writes.
    #[error("malformed entry in the store at {}: {detail}", path.display())]
    Malformed {
        /// The store's folder.
        path: PathBuf,
        /// Which entry.
        detail: String,
    },
}
