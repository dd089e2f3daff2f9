//! `undo`: reverts this device's most recent change that is not undone yet, with a new
//! change (history is never rewritten).
//!
//! For every map key the undone change touched, the key is set back to its value just
//! before that change (or deleted, if it had none); objects it deleted are rebuilt from
//! their state at that time. Later changes to other keys, from any device, stay.

use std::collections::HashSet;

use automerge::hydrate::Value as HValue;
use automerge::patches::PatchAction;
use automerge::transaction::{CommitOptions, Transactable, Transaction};
use automerge::{ChangeHash, ObjId, ObjType, Prop, ROOT, ReadDoc, Value};

use crate::journal::Journal;
use crate::{Error, Now};

const MARK: &str = " [undoes ";

/// What `undo` reverted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undone {
    /// The message of the change that was undone.
    pub message: String,
    /// Its hash.
    pub hash: String,
}

impl Journal {
    /// Undoes this device's latest change that is not an undo and is not undone yet.
    pub fn undo(&mut self, now: &Now) -> Result<Undone, Error> {
        self.check_writable()?;
        let actor = self.doc.get_actor().clone();
        let mine: Vec<_> = self
            .doc
            .get_changes_meta(&[])
            .into_iter()
            .filter(|c| *c.actor == actor)
            .map(|c| {
                (
                    c.hash,
                    c.deps.clone(),
                    c.message.map(|m| m.into_owned()).unwrap_or_default(),
                )
            })
            .collect();
        let undone: HashSet<String> = mine
            .iter()
            .filter_map(|(_, _, m)| {
                m.split_once(MARK)
                    .map(|(_, rest)| rest.trim_end_matches(']').to_owned())
            })
            .collect();
        let (hash, deps, message) = mine
            .into_iter()
            .rev()
            .find(|(h, deps, m)| {
                !m.contains(MARK)
                    && !undone.contains(&h.to_string())
                    && !deps.is_empty()
                    && !m.starts_with("Name this device")
            })
            .ok_or(Error::NothingToUndo)?;
        let patches = self.doc.diff(&deps, &[hash]);
        let mut tx = self.doc.transaction();
        let result: Result<(), Error> = (|| {
            for patch in patches {
                let key = match &patch.action {
                    PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => key.clone(),
                    _ => continue,
                };
                // The object at the same path now: an object the change deleted may have
                // been rebuilt (by an earlier undo) under a new id since.
                let Some(target) = current_obj(&tx, &patch.path) else {
                    continue;
                };
                restore(&mut tx, &patch.obj, &target, &key, &deps)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            tx.rollback();
            return Err(e);
        }
        tx.commit_with(
            CommitOptions::default()
                .with_message(format!("Undo: {message}{MARK}{hash}]"))
                .with_time(now.ms().div_euclid(1000)),
        );
        Ok(Undone {
            message,
            hash: hash.to_string(),
        })
    }
}

/// The object found by following `path`'s keys from the root of the current document.
fn current_obj(tx: &Transaction<'_>, path: &[(ObjId, Prop)]) -> Option<ObjId> {
    let mut obj = ROOT;
    for (_, prop) in path {
        match tx.get(&obj, prop.clone()).ok()?? {
            (Value::Object(_), id) => obj = id,
            _ => return None,
        }
    }
    Some(obj)
}

/// Sets `target[key]` to what `old[key]` held at `heads`. `old` and `target` are the same
/// object unless it was rebuilt (by an earlier undo) since.
fn restore(
    tx: &mut Transaction<'_>,
    old: &ObjId,
    target: &ObjId,
    key: &str,
    heads: &[ChangeHash],
) -> Result<(), Error> {
    let obj = target;
    let before = tx.get_at(old, key, heads)?;
    match before {
        None => crate::commands::delete_if_set(tx, obj, key)?,
        Some((Value::Scalar(s), _)) => {
            tx.put(obj, key, s.into_owned())?;
        }
        Some((Value::Object(ObjType::Map), old)) => {
            let value = tx.hydrate(&old, Some(heads))?;
            let new = tx.put_object(obj, key, ObjType::Map)?;
            write_value(tx, &new, &value)?;
        }
        Some((Value::Object(_), _)) => {
            // The journal's schema has only maps and scalars; leave anything else alone.
        }
    }
    Ok(())
}

fn write_value(tx: &mut Transaction<'_>, obj: &ObjId, value: &HValue) -> Result<(), Error> {
    let HValue::Map(map) = value else {
        return Ok(());
    };
    for (key, v) in map.iter() {
        match &v.value {
            HValue::Scalar(s) => {
                tx.put(obj, key.as_str(), s.clone())?;
            }
            HValue::Map(_) => {
                let child = tx.put_object(obj, Prop::Map(key.clone()), ObjType::Map)?;
                write_value(tx, &child, &v.value)?;
            }
            HValue::Text(t) => {
                tx.put(obj, key.as_str(), t.to_string())?;
            }
            HValue::List(_) => {}
        }
    }
    Ok(())
}
