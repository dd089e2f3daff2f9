//! Moving a device's changes to a fresh actor.
//!
//! A device restored from a copy of its home goes on writing as the actor it had when the
//! copy was made, numbering its changes from there; but the server already holds that
//! actor's later changes, made before the restore. Automerge identifies a change by actor
//! and sequence number as well as by hash, so each side refuses the other's ("duplicate
//! seq"), and the restored device's new changes could never leave it. [`reauthor`] makes
//! them again as a new actor: the same operations, times and messages, so the same effect,
//! under new hashes that nobody has seen. No I/O; the caller stores the result.

use std::collections::{HashMap, HashSet};

use automerge::legacy::{ElementId, Key, ObjectId, OpId};
use automerge::{ActorId, Automerge, Change, ChangeHash, ExpandedChange};

use crate::Error;

/// Rebuilds `doc` with `old`'s changes from sequence number `from_seq` on, and every change
/// that depends on them, made again by `new` (numbered after `new`'s own changes); the
/// result writes as `new`. Returns it and how many changes moved.
pub fn reauthor(
    doc: &Automerge,
    old: &ActorId,
    from_seq: u64,
    new: &ActorId,
) -> Result<(Automerge, usize), Error> {
    let all = doc.get_changes(&[]);
    // What moves: the old actor's changes from `from_seq`, then whatever depends on them.
    let mut moving: HashSet<ChangeHash> = HashSet::new();
    for change in &all {
        let from_old = change.actor_id() == old && change.seq() >= from_seq;
        if from_old || change.deps().iter().any(|d| moving.contains(d)) {
            moving.insert(change.hash());
        }
    }
    // Operations of the old actor numbered from the first moved change of it on were made
    // by the moved changes (an actor's counters only grow); earlier ones stay its own.
    let first_counter = all
        .iter()
        .filter(|c| c.actor_id() == old && moving.contains(&c.hash()))
        .map(|c| c.start_op().get())
        .min();
    let mut out = Automerge::new().with_actor(new.clone());
    let kept: Vec<Change> = all
        .iter()
        .filter(|c| !moving.contains(&c.hash()))
        .map(|c| (*c).clone())
        .collect();
    let mut seq = kept
        .iter()
        .filter(|c| c.actor_id() == new)
        .map(Change::seq)
        .max()
        .unwrap_or(0);
    out.apply_changes(kept).map_err(Error::Automerge)?;
    let Some(first_counter) = first_counter else {
        return Ok((out, 0));
    };
    let mut renamed: HashMap<ChangeHash, ChangeHash> = HashMap::new();
    let rename = |id: &mut OpId| {
        if id.1 == *old && id.0 >= first_counter {
            id.1 = new.clone();
        }
    };
    let mut moved = 0;
    for change in all.iter().filter(|c| moving.contains(&c.hash())) {
        let mut expanded: ExpandedChange = change.decode();
        seq += 1;
        expanded.actor_id = new.clone();
        expanded.seq = seq;
        expanded.hash = None;
        expanded.author = None;
        for dep in &mut expanded.deps {
            if let Some(to) = renamed.get(dep) {
                *dep = *to;
            }
        }
        expanded.deps.sort();
        for op in &mut expanded.operations {
            if let ObjectId::Id(id) = &mut op.obj {
                rename(id);
            }
            if let Key::Seq(ElementId::Id(id)) = &mut op.key {
                rename(id);
            }
            let pred: Vec<OpId> = op
                .pred
                .iter()
                .map(|id| {
                    let mut id = id.clone();
                    rename(&mut id);
                    id
                })
                .collect();
            op.pred = pred.into();
        }
        let remade = Change::from(expanded);
        renamed.insert(change.hash(), remade.hash());
        out.apply_changes([remade]).map_err(Error::Automerge)?;
        moved += 1;
    }
    Ok((out, moved))
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT, ReadDoc};

    fn put(doc: &mut Automerge, key: &str, value: &str) {
        let mut tx = doc.transaction();
        tx.put(ROOT, key, value).unwrap();
        tx.commit();
    }

    #[test]
    fn a_restored_copys_new_changes_move_to_a_fresh_actor_and_merge_with_the_original() {
        let me = ActorId::random();
        let mut original = Automerge::new().with_actor(me.clone());
        put(&mut original, "before", "the backup");
        {
            let mut tx = original.transaction();
            let list = tx.put_object(ROOT, "list", ObjType::List).unwrap();
            tx.insert(&list, 0, "first").unwrap();
            tx.commit();
        }
        let mut restored = original.clone();
        // Both go on as the same actor: the copy's changes clash with the original's.
        put(&mut original, "original", "after the backup");
        put(&mut restored, "restored", "after the restore");
        {
            let list = restored.get(ROOT, "list").unwrap().unwrap().1;
            let mut tx = restored.transaction();
            tx.insert(&list, 1, "second").unwrap();
            tx.put(ROOT, "before", "edited after the restore").unwrap();
            tx.commit();
        }
        let clash = original.get_changes(&[]).last().unwrap().seq();
        assert!(
            original
                .clone()
                .apply_changes(restored.get_changes(&[]))
                .is_err()
        );

        let fresh = ActorId::random();
        let (mut moved, count) = reauthor(&restored, &me, clash, &fresh).unwrap();
        assert_eq!(count, 2);
        assert_eq!(moved.get_actor(), &fresh);
        moved.apply_changes(original.get_changes(&[])).unwrap();
        let text = |doc: &Automerge, key: &str| doc.get(ROOT, key).unwrap().unwrap().0.to_string();
        assert_eq!(text(&moved, "original"), "\"after the backup\"");
        assert_eq!(text(&moved, "restored"), "\"after the restore\"");
        assert_eq!(text(&moved, "before"), "\"edited after the restore\"");
        let list = moved.get(ROOT, "list").unwrap().unwrap().1;
        assert_eq!(moved.length(&list), 2);
        // And the original takes the moved changes too: both converge.
        original.apply_changes(moved.get_changes(&[])).unwrap();
        assert_eq!(original.get_heads(), moved.get_heads());
    }

    #[test]
    fn nothing_from_that_sequence_number_moves_nothing() {
        let me = ActorId::random();
        let mut doc = Automerge::new().with_actor(me.clone());
        put(&mut doc, "a", "b");
        let (same, count) = reauthor(&doc, &me, 5, &ActorId::random()).unwrap();
        assert_eq!(count, 0);
        assert_eq!(same.get_heads(), doc.get_heads());
    }
}
