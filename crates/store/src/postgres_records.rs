//! [`Records`] on PostgreSQL: table `nudge_records` of the same database as the documents
//! (`postgres.rs`). Writes are compare and swap, one statement each, so that a value is
//! never lost between two nodes writing the same key; `put` and `update` retry until no
//! other writer came in between.

use crate::Error;
use crate::PgStore;
use crate::records::{Record, Records, Update};

impl Records for PgStore {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.value_of(
            "SELECT value FROM nudge_records WHERE tbl = $1 AND key = $2",
            table,
            key,
        )
    }

    fn put(&self, table: &str, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        // What it replaced, exactly, however many nodes write the same key.
        loop {
            let old = self.get(table, key)?;
            if self.swap(table, key, old.as_deref(), Some(value))? {
                return Ok(old);
            }
        }
    }

    fn delete(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.value_of(
            "DELETE FROM nudge_records WHERE tbl = $1 AND key = $2 RETURNING value",
            table,
            key,
        )
    }

    fn swap(
        &self,
        table: &str,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, Error> {
        let (pool, table, key) = (self.pool.clone(), table.to_owned(), key.to_vec());
        let (expected, new) = (expected.map(<[u8]>::to_vec), new.map(<[u8]>::to_vec));
        self.run(async move {
            let client = pool.get().await?;
            // One statement each, so that the comparison and the write are one step.
            let changed =
                match (&expected, &new) {
                    (None, Some(new)) => {
                        client
                            .execute(
                                "INSERT INTO nudge_records (tbl, key, value) VALUES ($1, $2, $3)
                             ON CONFLICT DO NOTHING",
                                &[&table, &key, new],
                            )
                            .await?
                    }
                    (Some(old), Some(new)) => {
                        client
                            .execute(
                                "UPDATE nudge_records SET value = $4
                             WHERE tbl = $1 AND key = $2 AND value = $3",
                                &[&table, &key, old, new],
                            )
                            .await?
                    }
                    (Some(old), None) => client
                        .execute(
                            "DELETE FROM nudge_records WHERE tbl = $1 AND key = $2 AND value = $3",
                            &[&table, &key, old],
                        )
                        .await?,
                    (None, None) => {
                        let present = client
                            .query_opt(
                                "SELECT 1 FROM nudge_records WHERE tbl = $1 AND key = $2",
                                &[&table, &key],
                            )
                            .await?;
                        u64::from(present.is_none())
                    }
                };
            Ok(changed == 1)
        })
    }

    fn update(&self, table: &str, key: &[u8], f: Update<'_>) -> Result<Option<Vec<u8>>, Error> {
        // Compare and swap until no other writer came in between (`f` may run again).
        loop {
            let old = self.get(table, key)?;
            let new = f(old.as_deref());
            if self.swap(table, key, old.as_deref(), new.as_deref())? {
                return Ok(new);
            }
        }
    }

    fn scan(&self, table: &str, prefix: &[u8]) -> Result<Vec<Record>, Error> {
        let (pool, table, prefix) = (self.pool.clone(), table.to_owned(), prefix.to_vec());
        self.run(async move {
            let client = pool.get().await?;
            let len = prefix.len() as i32;
            let rows = client
                .query(
                    "SELECT key, value FROM nudge_records
                     WHERE tbl = $1 AND substring(key from 1 for $3) = $2 ORDER BY key",
                    &[&table, &prefix, &len],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn tables(&self) -> Result<Vec<String>, Error> {
        let pool = self.pool.clone();
        self.run(async move {
            let client = pool.get().await?;
            let rows = client
                .query("SELECT DISTINCT tbl FROM nudge_records ORDER BY tbl", &[])
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }
}
