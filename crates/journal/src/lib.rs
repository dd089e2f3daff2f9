//! nudge-journal: the journal of micro shifts, ideas and people, as one Automerge document.
//!
//! No I/O happens here: callers load and store the document's bytes (see `nudge-store`) and
//! pass in the clock ([`Now`]).
//!
//! - [`Journal`] (`journal.rs`): the schema and reading it ([`Journal::catalog`],
//!   [`Journal::shifts`]); `commands.rs`: the commands, each one Automerge change with a
//!   message.
//! - [`Catalog`] (`catalog.rs`): settings, ideas, people and devices, with same-named records
//!   (created on two devices at once) merged into one.
//! - [`Summary`] (`summary.rs`): per-day aggregates and planned shifts, maintained one shift
//!   at a time so that a cache of it answers `list` and `week` without the document.
//! - [`week`], [`streak`] (`week.rs`): the weekly view.
//! - [`share`]: share views, what an accountability buddy sees, at a scope.
//! - `adopt.rs`: a device's own records carried into its account's journal.
//! - [`import`]: `nudge import` of an export or of Taskwarrior's tasks, idempotent.
//! - `undo.rs`, `history.rs`, `contacts.rs`, `export.rs`, `suggest.rs`,
//!   `next.rs`, `review.rs`, `pause.rs`: one command each.
//! - [`reauthor`]: a restored device's changes made again by a fresh actor.
//! - [`limits`]: one length limit per text field, for commands and import alike.
//! - [`when`]: the clock, date words, relative times; [`ids`]: random ids and short prefixes.

mod adopt;
mod catalog;
pub mod cheers;
mod commands;
mod contacts;
mod export;
mod history;
pub mod ids;
pub mod import;
mod journal;
pub mod limits;
mod model;
mod next;
mod pause;
mod reauthor;
mod review;
pub mod share;
mod suggest;
mod summary;
mod undo;
mod values;
mod week;
pub mod when;

pub use adopt::Carried;
pub use automerge;
pub use catalog::{Catalog, Resolved, normalize};
pub use commands::{Created, NewShift, PersonEdit, ShiftEdit, TagRef};
pub use contacts::Contacts;
pub use export::export;
pub use history::{HistoryEntry, history};
pub use journal::{Journal, SCHEMA_MAJOR, SCHEMA_MINOR};
pub use model::{
    Contact, DoneAt, Idea, IdeaStatus, Kind, Person, PersonStatus, Scope, Settings, Shift,
    ShiftStatus, WeekStart,
};
pub use next::{Next, STALLED_AFTER_DAYS, next, waiting_days};
pub use pause::{Counted, MAX_PAUSED_DAYS, PAUSE_WINDOW_DAYS, Pause, paused_days};
pub use reauthor::reauthor;
pub use review::{DoorClosed, LittleYes, METHOD_TOTAL, Pace, Review, pace, review, versus};
pub use suggest::{Suggestion, suggest};
pub use summary::Summary;
pub use undo::Undone;
pub use week::{DayCount, IdeaCount, Week, streak, week, weeks};
pub use when::Now;

/// What can go wrong with a journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not an Automerge document.
    #[error("the journal data is damaged: {0}")]
    Corrupt(String),
    /// The document is not a nudge journal.
    #[error("this document is not a nudge journal: {0}")]
    NotAJournal(String),
    /// A newer nudge wrote this journal.
    #[error(
        "this journal uses schema version {found}, newer than this nudge understands ({supported}); upgrade nudge to change it (reading still works)"
    )]
    NewerSchema {
        /// The journal's version.
        found: u64,
        /// This code's version.
        supported: u64,
    },
    /// No shift has that id.
    #[error("no such shift")]
    NoSuchShift,
    /// No idea has that id.
    #[error("no such idea")]
    NoSuchIdea,
    /// No person has that id.
    #[error("no such person")]
    NoSuchPerson,
    /// A value the user gave is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Nothing to undo.
    #[error("nothing to undo: this device has made no change that is not undone yet")]
    NothingToUndo,
    /// Automerge refused an operation.
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
}
