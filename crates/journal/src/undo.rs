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
use automerge::{ChangeHash, ObjId, ObjType, Prop, ReadDoc, Value};

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
        let mut replaced: HashSet<ObjId> = HashSet::new();
        let result: Result<(), Error> = (|| {
            for patch in patches {
                let inside_replaced = replaced.contains(&patch.obj)
                    || patch.path.iter().any(|(o, _)| replaced.contains(o));
                if inside_replaced {
                    continue;
                }
                let key = match &patch.action {
                    PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => key.clone(),
                    _ => continue,
                };
                if let Ok(Some((Value::Object(_), old))) = tx.get(&patch.obj, key.as_str()) {
                    replaced.insert(old);
                }
                restore(&mut tx, &patch.obj, &key, &deps)?;
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

/// Sets `obj[key]` back to its value at `heads`.
fn restore(
    tx: &mut Transaction<'_>,
    obj: &ObjId,
    key: &str,
    heads: &[ChangeHash],
) -> Result<(), Error> {
    let before = tx.get_at(obj, key, heads)?;
    match before {
        None => crate::journal::delete_if_set(tx, obj, key)?,
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
