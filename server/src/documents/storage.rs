//! The storage calls of the document actors, each off the runtime and bounded by the
//! storage timeout: loading is the registry's (`registry.rs`); here a batch is stored and
//! flushed ([`Documents::persist`], the owner's usage figure in the same flush), and a
//! document compacted ([`Documents::compact`]).

use nudge_protocol::DocSession;
use nudge_store::{DocumentId, NewChange};

use super::Documents;

/// A storage call that did not come back within the storage timeout.
#[derive(Debug, thiserror::Error)]
#[error("storage did not answer within {seconds} s while {what} (is the disk full or failing?)")]
pub(super) struct StorageStuck {
    what: &'static str,
    seconds: f64,
}

/// Runs `f`, which blocks for a while, without holding up the other tasks of this runtime
/// thread: on the multi-threaded runtime the server runs, tokio first hands them to
/// another thread. (On a single-threaded runtime, as in some tests, `f` just runs.)
pub(super) fn off_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl Documents {
    /// Runs a storage call off the runtime, bounded by the storage timeout: the embedded
    /// database can spin for ever instead of failing when its disk fills (seen with a real
    /// full file system), and a call that never returns must stop the server like one that
    /// fails.
    pub(super) async fn storage<T: Send + 'static, E: Into<anyhow::Error> + Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce() -> Result<T, E> + Send + 'static,
    ) -> anyhow::Result<T> {
        match tokio::time::timeout(self.storage_timeout, tokio::task::spawn_blocking(f)).await {
            Ok(joined) => joined?.map_err(Into::into),
            Err(_) => Err(StorageStuck {
                what,
                seconds: self.storage_timeout.as_secs_f64(),
            }
            .into()),
        }
    }

    /// Replaces the log with a snapshot of the document, off the runtime: called once
    /// [`COMPACT_AFTER`] changes follow the last snapshot and everything applied is stored.
    /// A failure here loses nothing: the log is still there; only storage that stops
    /// answering is an error.
    /// `through`: the position the session holds everything through (a shared
    /// database); `None`: this process is the only writer, and its session holds
    /// everything stored.
    pub(super) async fn compact(
        &self,
        doc: DocumentId,
        session: &DocSession,
        through: Option<u64>,
    ) -> anyhow::Result<()> {
        let (store, accounts) = (self.store.clone(), self.accounts.clone());
        // Saving a 100,000-change journal takes about 60 ms: long enough that the other
        // tasks of this runtime thread should not wait behind it.
        let snapshot = off_the_runtime(|| session.snapshot());
        let result = self
            .storage("compacting a document", move || -> anyhow::Result<()> {
                let through = match through {
                    Some(through) => through,
                    None => store.position(&doc)?,
                };
                store.compact(&doc, &snapshot, through)?;
                // Flushed with the next batch: a figure a crash loses is only too high.
                accounts.resized(&doc, snapshot.len() as u64)?;
                Ok(())
            })
            .await;
        match result {
            Ok(()) => {
                self.metrics.compactions.inc();
                tracing::debug!(%doc, "log compacted into a snapshot");
            }
            Err(e) if e.is::<StorageStuck>() => return Err(e),
            Err(e) => tracing::warn!(%doc, "compaction failed (the log is intact): {e:#}"),
        }
        Ok(())
    }

    pub(super) async fn persist(
        &self,
        doc: DocumentId,
        snapshot: Option<(Vec<u8>, Vec<automerge::ChangeHash>)>,
        changes: Vec<automerge::Change>,
    ) -> anyhow::Result<usize> {
        let store = self.store.clone();
        let accounts = self.accounts.clone();
        let started = std::time::Instant::now();
        let count = changes.len() + snapshot.as_ref().map_or(0, |(_, new)| new.len());
        let pending = self
            .storage("storing changes", move || -> anyhow::Result<usize> {
                let snapshot_size = match snapshot {
                    Some((bytes, new)) => {
                        let hashes: Vec<[u8; 32]> = new.iter().map(|h| h.0).collect();
                        store.append_snapshot(&doc, &bytes, &hashes)?;
                        Some(bytes.len() as u64)
                    }
                    None => None,
                };
                let new: Vec<NewChange> = changes
                    .iter()
                    .map(|c| NewChange {
                        hash: c.hash().0,
                        bytes: c.raw_bytes().to_vec(),
                    })
                    .collect();
                store.append(&doc, &new)?;
                // The owner's figure for the quota, in the same flush.
                if let Some(size) = snapshot_size {
                    accounts.resized(&doc, size)?;
                }
                accounts.grew(&doc, new.iter().map(|c| c.bytes.len() as u64).sum())?;
                store.flush()?;
                // Whether to compact, asked here to save a trip to a blocking thread. The
                // changes are durable: a count that fails only skips compaction this time.
                Ok(store.changes_since_snapshot(&doc).unwrap_or(0))
            })
            .await?;
        self.metrics.flushes.inc();
        self.metrics
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        tracing::debug!(%doc, count, us = started.elapsed().as_micros() as u64, "changes stored and flushed");
        Ok(pending)
    }
}
