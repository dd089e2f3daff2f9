//! `nudge-server migrate`: copies a whole store into another (a data folder into a
//! PostgreSQL database, when a server outgrows one machine): every document, then every
//! record (accounts, token hashes, devices, shares, ownership), then checks that each
//! document in the target holds the heads it has in the source. Tokens are records, so
//! devices and buddies keep working against the new store without re-linking.
//!
//! The target must hold nothing, unless told otherwise: then a document it holds already
//! gains the changes it lacks (nothing of its own is lost), and a record under the same
//! key is replaced by the source's.

use automerge::{Automerge, ReadDoc};
use nudge_store::{DocumentId, NewChange, Store};

/// What a migration copied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Documents, each with its heads checked in the target.
    pub documents: u64,
    /// Of them, documents the target held already, which gained what they lacked.
    pub merged: u64,
    /// Records of the server's tables.
    pub records: u64,
}

/// A document as the source stores it, loaded.
fn loaded(store: &Store, id: &DocumentId) -> anyhow::Result<Option<Automerge>> {
    match store.load(id)? {
        Some(stored) => Ok(Some(Automerge::load(&stored.concat()).map_err(|e| {
            anyhow::anyhow!("document {id} in {} cannot be read: {e}", store.location())
        })?)),
        None => Ok(None),
    }
}

/// Copies everything in `from` into `to`; `into_nonempty`: `to` may hold data already.
pub fn copy(from: &Store, to: &Store, into_nonempty: bool) -> anyhow::Result<Copied> {
    if !into_nonempty && !to.is_empty()? {
        anyhow::bail!(
            "{} already holds data; migrate into an empty database, or add --into-nonempty to add this store's data to it",
            to.location()
        );
    }
    let mut copied = Copied::default();
    let documents = from.documents()?;
    for id in &documents {
        let Some(doc) = loaded(from, id)? else {
            continue;
        };
        match loaded(to, id)? {
            None => {
                let hashes: Vec<[u8; 32]> =
                    doc.get_changes(&[]).iter().map(|c| c.hash().0).collect();
                to.import(id, &doc.save(), &hashes)?;
            }
            Some(there) => {
                let lacking: Vec<NewChange> = doc
                    .get_changes(&[])
                    .iter()
                    .filter(|c| there.get_change_by_hash(&c.hash()).is_none())
                    .map(|c| NewChange {
                        hash: c.hash().0,
                        bytes: c.raw_bytes().to_vec(),
                    })
                    .collect();
                to.append(id, &lacking)?;
                copied.merged += 1;
            }
        }
        copied.documents += 1;
    }
    for table in from.tables()? {
        for (key, value) in from.scan(&table, b"")? {
            to.put(&table, &key, &value)?;
            copied.records += 1;
        }
    }
    to.flush()?;
    // Read back from the target: every document holds what it held in the source.
    for id in &documents {
        let (Some(source), Some(target)) = (loaded(from, id)?, loaded(to, id)?) else {
            anyhow::bail!("document {id} did not reach {}", to.location());
        };
        let missing = source
            .get_heads()
            .iter()
            .filter(|head| target.get_change_by_hash(head).is_none())
            .count();
        anyhow::ensure!(
            missing == 0,
            "document {id} reached {} without {missing} of its heads; the source is unchanged, and the copy can be run again with --into-nonempty",
            to.location()
        );
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use nudge_store::{Location, OpenOptions};

    fn memory() -> Store {
        Store::open(&Location::Memory, &OpenOptions::default()).unwrap()
    }

    /// Stores a document of `n` changes, one key each, in `store`.
    fn write(store: &Store, id: &DocumentId, keys: &[&str]) -> Automerge {
        let mut doc = match loaded(store, id).unwrap() {
            Some(doc) => doc,
            None => Automerge::new(),
        };
        let before = doc.get_heads();
        for key in keys {
            let mut tx = doc.transaction();
            tx.put(automerge::ROOT, *key, 1).unwrap();
            tx.commit();
        }
        let new: Vec<NewChange> = doc
            .get_changes(&before)
            .iter()
            .map(|c| NewChange {
                hash: c.hash().0,
                bytes: c.raw_bytes().to_vec(),
            })
            .collect();
        store.append(id, &new).unwrap();
        doc
    }

    #[test]
    fn everything_is_copied_and_a_nonempty_target_is_refused_unless_told() {
        let (from, to) = (memory(), memory());
        let (a, b) = (DocumentId::random(), DocumentId::random());
        let doc_a = write(&from, &a, &["x", "y"]);
        write(&from, &b, &["z"]);
        from.put("accounts", b"ana", b"1").unwrap();
        from.put("tokens", b"t1", b"hash").unwrap();
        let copied = copy(&from, &to, false).unwrap();
        assert_eq!(
            copied,
            Copied {
                documents: 2,
                merged: 0,
                records: 2
            }
        );
        assert_eq!(
            loaded(&to, &a).unwrap().unwrap().get_heads(),
            doc_a.get_heads()
        );
        assert_eq!(
            to.get("tokens", b"t1").unwrap().as_deref(),
            Some(&b"hash"[..])
        );

        let again = copy(&from, &to, false).unwrap_err().to_string();
        assert!(again.contains("--into-nonempty"), "{again}");
        // Told to: the target's own changes stay, and it gains the source's new ones.
        write(&to, &a, &["only in the target"]);
        write(&from, &a, &["only in the source"]);
        let merged = copy(&from, &to, true).unwrap();
        assert_eq!(merged.merged, 2);
        let there = loaded(&to, &a).unwrap().unwrap();
        for key in ["x", "y", "only in the target", "only in the source"] {
            assert!(there.get(automerge::ROOT, key).unwrap().is_some(), "{key}");
        }
    }
}
