//! nudge-store: where nudge keeps its Automerge documents.
//!
//! Every document is stored event-sourced: an append-only log of the Automerge changes made
//! to it, content-addressed by change hash and kept in append order ([`DocStore::append`]),
//! plus snapshots written by compaction ([`DocStore::compact`]), which re-encode the same
//! changes and only then drop the log entries they cover. Loading is the snapshot followed by
//! the later changes ([`StoredDoc::concat`]).
//!
//! - [`DocStore`]: the storage trait, with its durability rule (nothing counts before `flush`).
//! - [`Records`]: the second trait, small records by table and key (accounts, tokens,
//!   devices, shares, a device's settings), durable by the same `flush`; its suite is
//!   [`records_conformance!`].
//! - [`Store`]: one database's documents and records behind one handle, opened by its
//!   [`Location`]; what the server and the admin commands use.
//! - [`Shared`]: what the nodes on one database tell each other ([`Signal`]), for a
//!   store that several processes serve at once.
//! - [`SledStore`]: the backend on sled, used by the CLI and the server.
//! - [`MemoryStore`]: an in-memory backend for tests of code above the store.
//! - [`doc_store_conformance!`]: the test suite every backend runs.
//! - [`DocumentId`]: automerge-repo compatible document ids.

mod backend;
mod conformance;
mod doc_id;
mod error;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
mod postgres_records;
#[cfg(feature = "postgres")]
mod postgres_signal;
#[cfg(feature = "sled")]
mod pristine;
mod records;
#[cfg(feature = "sled")]
mod seal;
mod signal;
#[cfg(feature = "sled")]
mod sled_records;
#[cfg(feature = "sled")]
mod sled_store;
mod store;

pub use backend::{Backend, Check, Location, OpenOptions, Store};
pub use doc_id::{BadDocumentId, DocumentId};
pub use error::Error;
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
pub use records::{Record, Records, Table, Update, counter};
pub use signal::{Listener, Shared, Signal};
#[cfg(feature = "sled")]
pub use sled_store::SledStore;
pub use store::{ChangeHash, DocStore, NewChange, StoredDoc};
