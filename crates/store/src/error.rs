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
    /// sled cut its log short at damage and lost writes it had confirmed (`seal.rs`).
    #[error(
        "the store at {} has lost writes it had confirmed (it holds generation {held}, its seal {sealed}): its files are damaged; nothing was changed: restore the folder from a backup or re-sync (docs/storage.md, \"Damage and recovery\")",
        path.display()
    )]
    Lost {
        /// The store's folder.
        path: PathBuf,
        /// The generation the store holds.
        held: u64,
        /// The generation its seal file confirmed.
        sealed: u64,
    },
    /// The seal file itself is damaged.
    #[error(
        "{} is damaged; nothing was changed: delete that file and try again (it only guards against a store that lost writes; see docs/storage.md)",
        path.display()
    )]
    BadSeal {
        /// The seal file.
        path: PathBuf,
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
