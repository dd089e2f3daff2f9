//! The batching and flush policy of a document's actor, without I/O: what a batch gathers
//! ([`Pending`]), how much it may gather, when the actor takes more commands, and when the
//! next flush takes none until it lands (compaction due, or a writer starved of its
//! acknowledgement). The actor (`actor.rs`) asks; the tests below check the answers
//! without a runtime or a clock.

use nudge_protocol::Action;

/// Compact a document's log into a snapshot once it has this many changes since the last.
pub(super) const COMPACT_AFTER: usize = 1000;

/// Commands handled before one store and flush covers what they delivered.
pub(super) const BATCH: usize = 256;

/// How many bytes of changes a document gathers while a flush is under way before it waits
/// for that flush to land (what a slow disk may leave waiting in memory). Tests use less.
pub(super) const PENDING_BYTES: usize = if cfg!(test) { 64 << 10 } else { 8 << 20 };

/// How many flushes may land while a peer that keeps writing waits for its
/// acknowledgement, before the next flush takes no new commands so that it gets it.
pub(super) const STARVED_AFTER: u32 = 32;

/// Changes handled and not yet handed to a flush.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) changes: Vec<automerge::Change>,
    /// A big batch, as the whole document: it holds the `changes` before it.
    pub(super) snapshot: Option<(Vec<u8>, Vec<automerge::ChangeHash>)>,
    /// The bytes of `changes` and `snapshot`.
    pub(super) bytes: usize,
    /// When the first of them arrived (`nudge_ack_latency_seconds`).
    pub(super) since: Option<std::time::Instant>,
}

impl Pending {
    pub(super) fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.snapshot.is_none()
    }

    /// Takes a persist request into the batch; hands back any other action, for the
    /// caller to carry out.
    pub(super) fn gather(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::Persist(new) => {
                self.bytes += new.iter().map(|c| c.raw_bytes().len()).sum::<usize>();
                self.changes.extend(new);
            }
            Action::PersistSnapshot {
                snapshot: bytes,
                new,
            } => {
                // Everything this batch applied so far is in the snapshot (and everything
                // before it, stored or being stored, too).
                let mut covered: Vec<automerge::ChangeHash> = self
                    .snapshot
                    .take()
                    .map(|(_, hashes)| hashes)
                    .unwrap_or_default();
                covered.extend(self.changes.drain(..).map(|c| c.hash()));
                covered.extend(new);
                self.bytes = bytes.len();
                self.snapshot = Some((bytes, covered));
            }
            other => return Some(other),
        }
        self.since.get_or_insert_with(std::time::Instant::now);
        None
    }
}

/// Whether the actor takes another command now: not once every sender is gone, and not
/// while a flush is under way that drains (takes nothing until it lands) or while as many
/// bytes wait for the next flush as a slow disk may leave in memory. `flight_drains`:
/// `None` when no flush is under way.
pub(super) fn accepting(closed: bool, flight_drains: Option<bool>, pending_bytes: usize) -> bool {
    !closed && flight_drains.is_none_or(|drains| !drains && pending_bytes < PENDING_BYTES)
}

/// Whether a group commit takes one more waiting command before its flush, `handled`
/// commands in.
pub(super) fn take_more(handled: usize, pending_bytes: usize) -> bool {
    handled < BATCH && pending_bytes < PENDING_BYTES
}

/// When a flush lands, with `since_snapshot` changes stored since the last snapshot and a
/// writer waiting through `longest_wait` flushes: whether compaction is due, and whether
/// the next flush drains (so that the snapshot holds only stored changes, or so that the
/// starved writer hears its acknowledgement).
pub(super) fn after_landing(since_snapshot: usize, longest_wait: u32) -> Landing {
    let compact = since_snapshot >= COMPACT_AFTER;
    let starved = longest_wait >= STARVED_AFTER;
    Landing {
        compact,
        starved,
        drain: compact || starved,
    }
}

/// What [`after_landing`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Landing {
    /// Compaction is due.
    pub(super) compact: bool,
    /// A writer waited through too many flushes.
    pub(super) starved: bool,
    /// The next flush takes no command until it lands.
    pub(super) drain: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    fn changes(n: usize) -> Vec<automerge::Change> {
        let mut doc = automerge::Automerge::new();
        for i in 0..n {
            let mut tx = doc.transaction();
            tx.put(automerge::ROOT, "k", i as i64).unwrap();
            tx.commit();
        }
        doc.get_changes(&[]).into_iter().collect()
    }

    #[test]
    fn a_batch_gathers_changes_and_a_snapshot_replaces_what_it_covers() {
        let mut pending = Pending::default();
        assert!(pending.is_empty());
        let all = changes(3);
        let bytes: usize = all[..2].iter().map(|c| c.raw_bytes().len()).sum();
        assert!(pending.gather(Action::Persist(all[..2].to_vec())).is_none());
        assert_eq!(pending.bytes, bytes);
        pending.gather(Action::Persist(all[2..].to_vec()));
        let snapshot = vec![1u8; 40];
        let new = vec![automerge::ChangeHash([9; 32])];
        pending.gather(Action::PersistSnapshot {
            snapshot: snapshot.clone(),
            new: new.clone(),
        });
        assert!(pending.changes.is_empty(), "the snapshot holds them");
        let (bytes, covered) = pending.snapshot.clone().unwrap();
        assert_eq!(bytes, snapshot);
        assert_eq!(covered.len(), 4, "three changes gathered and one new");
        assert_eq!(pending.bytes, 40);
        assert!(pending.since.is_some());
    }

    #[test]
    fn other_actions_are_handed_back() {
        let mut pending = Pending::default();
        let back = pending.gather(Action::Reject(7, "no".into()));
        assert!(matches!(back, Some(Action::Reject(7, _))));
        assert!(pending.is_empty());
        assert!(pending.since.is_none());
    }

    #[test]
    fn commands_are_taken_until_a_batch_or_the_memory_bound_is_full() {
        assert!(accepting(false, None, usize::MAX), "no flush under way");
        assert!(accepting(false, Some(false), 0));
        assert!(!accepting(false, Some(false), PENDING_BYTES));
        assert!(
            !accepting(false, Some(true), 0),
            "a draining flush takes none"
        );
        assert!(!accepting(true, None, 0), "every sender is gone");
        assert!(take_more(1, 0));
        assert!(!take_more(BATCH, 0));
        assert!(!take_more(1, PENDING_BYTES));
    }

    #[test]
    fn compaction_or_a_starved_writer_makes_the_next_flush_drain() {
        let quiet = after_landing(COMPACT_AFTER - 1, STARVED_AFTER - 1);
        assert!(!quiet.compact && !quiet.starved && !quiet.drain);
        let compact = after_landing(COMPACT_AFTER, 0);
        assert!(compact.compact && compact.drain && !compact.starved);
        let starved = after_landing(0, STARVED_AFTER);
        assert!(starved.starved && starved.drain && !starved.compact);
    }
}
