//! [`Records`] on sled: each table a tree of the store's database, so that one
//! [`DocStore::flush`](crate::DocStore::flush) makes records and documents durable
//! together. The trees are the ones nudge always used (`accounts`, `tokens`, `local`...),
//! so stores written before the trait read as they are.

use crate::records::{Record, Records, Update};
use crate::{Error, SledStore};

impl Records for SledStore {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let found = self.table(table)?.get(key).map_err(|e| self.io(e))?;
        Ok(found.map(|v| v.to_vec()))
    }

    fn put(&self, table: &str, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let old = self
            .table(table)?
            .insert(key, value)
            .map_err(|e| self.io(e))?;
        Ok(old.map(|v| v.to_vec()))
    }

    fn delete(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let old = self.table(table)?.remove(key).map_err(|e| self.io(e))?;
        Ok(old.map(|v| v.to_vec()))
    }

    fn swap(
        &self,
        table: &str,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, Error> {
        let swapped = self
            .table(table)?
            .compare_and_swap(key, expected, new)
            .map_err(|e| self.io(e))?;
        Ok(swapped.is_ok())
    }

    fn update(&self, table: &str, key: &[u8], f: Update<'_>) -> Result<Option<Vec<u8>>, Error> {
        let new = self
            .table(table)?
            .update_and_fetch(key, f)
            .map_err(|e| self.io(e))?;
        Ok(new.map(|v| v.to_vec()))
    }

    fn scan(&self, table: &str, prefix: &[u8]) -> Result<Vec<Record>, Error> {
        self.table(table)?
            .scan_prefix(prefix)
            .map(|entry| {
                let (k, v) = entry.map_err(|e| self.io(e))?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn tables(&self) -> Result<Vec<String>, Error> {
        let mut names = Vec::new();
        for name in self.application_trees()? {
            if !self.tree(&name)?.is_empty() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use crate::OpenOptions;

    crate::records_conformance!(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SledStore::open(dir.path(), &OpenOptions::default()).unwrap();
        (dir, store)
    });
}
