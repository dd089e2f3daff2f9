//! nudge-replica: a device's replica of its journal, as every command sees it.
//!
//! - [`Replica`]: the device's store opened for one command (or, for a sync, opened and let
//!   go around network waits): the journal and its contacts document, the unit-of-work
//!   [`Replica::write`], views read from the derived-state cache, sync positions, this
//!   device's own settings, and the integrity checks that refuse a store that lost
//!   changes (`marker.rs`).
//! - `cache.rs`: derived state (catalog, summary, shifts by bucket) beside the store,
//!   keyed by the journal's log position, so reads skip loading the document.
//!
//! The CLI, the benchmarks and the load tool use it; it knows nothing of the command line.

mod cache;
mod marker;
mod replica;

pub use replica::{ActorMove, Defaults, Replica, Touched, View, local};
