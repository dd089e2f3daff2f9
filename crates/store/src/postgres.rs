//! The PostgreSQL backend: documents and records in one database, for a server that grows
//! past one machine (several nodes on one database).
//!
//! Tables (schema version 1, applied at open under an advisory lock, so that nodes starting
//! together apply it once):
//! - `nudge_docs`: document id -> its log position (`next`), the latest snapshot and the
//!   position it covers (`through`);
//! - `nudge_log`: (document, position) -> change bytes, the append-only log after the
//!   snapshot;
//! - `nudge_hashes`: (document, change hash): every change ever stored, so none is stored
//!   twice;
//! - `nudge_records`: (table, key) -> value, the [`Records`](crate::Records) of the
//!   server (`postgres_records.rs`).
//!
//! Every call is one transaction; a document's writes lock its `nudge_docs` row first, so
//! appends to one document are serialised across nodes. A COMMIT returns once the WAL is
//! on disk (PostgreSQL's default `synchronous_commit`), so every call is durable when it
//! returns and `flush` has nothing left to do.
//!
//! The client is tokio-postgres with a deadpool pool, driven by a small runtime of the
//! store's own: the storage traits are synchronous (the server calls them off its runtime,
//! and some record look-ups on it), and a call hands its query to that runtime and waits on
//! a channel, which works from any thread, inside a tokio runtime or not.

use std::future::Future;
use std::path::PathBuf;
use std::sync::mpsc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::backend::without_password;
use crate::postgres_signal::{CHANNEL, Hub, encode};
use crate::signal::Signal;
use crate::store::{ChangeHash, DocStore, NewChange, StoredDoc};
use crate::{DocumentId, Error};

/// How long connecting may take, unless the URL says (`connect_timeout`).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connections the pool keeps at most.
const POOL_SIZE: usize = 16;

/// The schema, version by version; `MIGRATIONS[i]` brings version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE nudge_docs (
        doc bytea PRIMARY KEY,
        next bigint NOT NULL DEFAULT 0,
        snapshot bytea,
        through bigint
    );
    CREATE TABLE nudge_log (
        doc bytea NOT NULL,
        seq bigint NOT NULL,
        bytes bytea NOT NULL,
        PRIMARY KEY (doc, seq)
    );
    CREATE TABLE nudge_hashes (
        doc bytea NOT NULL,
        hash bytea NOT NULL,
        PRIMARY KEY (doc, hash)
    );
    CREATE TABLE nudge_records (
        tbl text NOT NULL,
        key bytea NOT NULL,
        value bytea NOT NULL,
        PRIMARY KEY (tbl, key)
    );
"];

/// Any number: the advisory lock migrations are applied under.
const MIGRATION_LOCK: i64 = 0x6e75_6467_6501;

/// A [`DocStore`] and [`Records`] on a PostgreSQL database.
pub struct PgStore {
    pub(crate) pool: Pool,
    /// The client's runtime; `None` only while the store is dropped.
    runtime: Option<tokio::runtime::Runtime>,
    /// Where its tasks go.
    handle: tokio::runtime::Handle,
    /// Announcements to and from the other nodes (`postgres_signal.rs`).
    pub(crate) hub: std::sync::Arc<Hub>,
    /// The database's URL without its password, for messages.
    shown: String,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://USER@HOST:PORT/DB`) and brings its
    /// schema up to date.
    pub fn open(url: &str) -> Result<Self, Error> {
        let shown = without_password(url);
        let fail = |detail: String| Error::Io {
            path: PathBuf::from(&shown),
            detail,
        };
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            fail(format!(
                "not a PostgreSQL URL ({e}); use postgres://USER@HOST:PORT/DB"
            ))
        })?;
        let mut config = config;
        // An unreachable database must fail a call, not hold it for the system's minutes.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let hub = std::sync::Arc::new(Hub::new(config.clone()));
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("nudge-postgres")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the database client: {e}")))?;
        let store = Self {
            pool,
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            hub,
            shown,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Runs `work` on the store's runtime and waits for its answer.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, Failure>> + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(work.await);
        });
        let answer = rx.recv().map_err(|_| Failure::Stopped);
        answer.and_then(|a| a).map_err(|e| Error::Io {
            path: PathBuf::from(&self.shown),
            detail: e.to_string(),
        })
    }

    /// Runs `task` on the store's runtime for as long as the store is open.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.handle.spawn(task);
    }

    /// The value one statement about the record (`$1` table, `$2` key) returns, if any.
    pub(crate) fn value_of(
        &self,
        sql: &'static str,
        table: &str,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, Error> {
        let (pool, table, key) = (self.pool.clone(), table.to_owned(), key.to_vec());
        self.run(async move {
            let client = pool.get().await?;
            let row = client.query_opt(sql, &[&table, &key]).await?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn migrate(&self) -> Result<(), Error> {
        let pool = self.pool.clone();
        self.run(async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS nudge_schema (version integer NOT NULL)")
                .await?;
            let version: i32 = match tx
                .query_opt("SELECT version FROM nudge_schema", &[])
                .await?
            {
                Some(row) => row.get(0),
                None => {
                    tx.execute("INSERT INTO nudge_schema VALUES (0)", &[])
                        .await?;
                    0
                }
            };
            let known = MIGRATIONS.len() as i32;
            if version > known {
                return Err(Failure::Newer(version));
            }
            for migration in &MIGRATIONS[version as usize..] {
                tx.batch_execute(migration).await?;
            }
            tx.execute("UPDATE nudge_schema SET version = $1", &[&known])
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }
}

impl Drop for PgStore {
    /// The store's runtime stops without waiting for its tasks: a store may be dropped
    /// on a runtime thread (the server's), where waiting is not allowed.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("{0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("cannot reach the database: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("the database client stopped")]
    Stopped,
    #[error(
        "the database holds schema version {0}, newer than this build knows; upgrade nudge-server"
    )]
    Newer(i32),
}

/// A stored integer as the `u64` positions are.
fn unsigned(n: i64) -> u64 {
    n.max(0) as u64
}

/// A read-only transaction that sees one snapshot of the database for all its reads
/// (compaction may run meanwhile on another connection).
async fn read_snapshot(
    client: &mut deadpool_postgres::Client,
) -> Result<deadpool_postgres::Transaction<'_>, Failure> {
    Ok(client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

/// The two halves of the advisory lock that compaction of `doc` takes (of its id's first
/// eight bytes: distinct enough that two documents sharing one is merely a skipped
/// compaction).
fn lock_key(doc: &[u8]) -> (i32, i32) {
    let half = |range: std::ops::Range<usize>| {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(doc.get(range).unwrap_or(&[0; 4]));
        i32::from_be_bytes(bytes)
    };
    (half(0..4), half(4..8))
}

/// The document's row, locked for this transaction (created, at position 0, if missing);
/// returns its position.
async fn lock_doc(tx: &tokio_postgres::Transaction<'_>, doc: &[u8]) -> Result<i64, Failure> {
    tx.execute(
        "INSERT INTO nudge_docs (doc) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&doc],
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT next FROM nudge_docs WHERE doc = $1 FOR UPDATE",
            &[&doc],
        )
        .await?;
    Ok(row.get(0))
}

/// Tells the other nodes, once `tx` commits, that `doc` reached `position`.
async fn notify(
    tx: &tokio_postgres::Transaction<'_>,
    origin: u64,
    doc: DocumentId,
    position: i64,
) -> Result<(), Failure> {
    let position = unsigned(position);
    for line in encode(&Signal::Changed { doc, position }, origin) {
        tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &line])
            .await?;
    }
    Ok(())
}

/// Records `hashes` as stored for `doc`; returns those that were new, in order.
async fn new_hashes<'h>(
    tx: &tokio_postgres::Transaction<'_>,
    doc: &[u8],
    hashes: impl Iterator<Item = &'h ChangeHash>,
) -> Result<Vec<&'h ChangeHash>, Failure> {
    let insert = tx
        .prepare("INSERT INTO nudge_hashes (doc, hash) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .await?;
    let mut new = Vec::new();
    for hash in hashes {
        if tx.execute(&insert, &[&doc, &&hash[..]]).await? == 1 {
            new.push(hash);
        }
    }
    Ok(new)
}

impl DocStore for PgStore {
    fn append(&self, doc: &DocumentId, changes: &[NewChange]) -> Result<usize, Error> {
        let (origin, id) = (self.hub.origin, *doc);
        let (pool, doc, changes) = (self.pool.clone(), doc.as_bytes().to_vec(), changes.to_vec());
        self.run(async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let mut next = lock_doc(&tx, &doc).await?;
            let new = new_hashes(&tx, &doc, changes.iter().map(|c| &c.hash)).await?;
            let log = tx
                .prepare("INSERT INTO nudge_log (doc, seq, bytes) VALUES ($1, $2, $3)")
                .await?;
            let mut added = 0;
            for change in &changes {
                if new.iter().any(|h| **h == change.hash) {
                    next += 1;
                    added += 1;
                    tx.execute(&log, &[&doc, &next, &change.bytes]).await?;
                }
            }
            tx.execute(
                "UPDATE nudge_docs SET next = $2 WHERE doc = $1",
                &[&doc, &next],
            )
            .await?;
            if added > 0 {
                notify(&tx, origin, id, next).await?;
            }
            tx.commit().await?;
            Ok(added)
        })
    }

    fn load(&self, doc: &DocumentId) -> Result<Option<StoredDoc>, Error> {
        let (pool, doc) = (self.pool.clone(), doc.as_bytes().to_vec());
        self.run(async move {
            let mut client = pool.get().await?;
            let tx = read_snapshot(&mut client).await?;
            let Some(row) = tx
                .query_opt(
                    "SELECT next, snapshot FROM nudge_docs WHERE doc = $1",
                    &[&doc],
                )
                .await?
            else {
                return Ok(None);
            };
            let snapshot: Option<Vec<u8>> = row.get(1);
            let changes: Vec<Vec<u8>> = tx
                .query(
                    "SELECT bytes FROM nudge_log WHERE doc = $1 ORDER BY seq",
                    &[&doc],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            tx.commit().await?;
            if snapshot.is_none() && changes.is_empty() {
                return Ok(None);
            }
            Ok(Some(StoredDoc {
                snapshot,
                changes,
                position: unsigned(row.get(0)),
            }))
        })
    }

    fn changes_after(
        &self,
        doc: &DocumentId,
        position: u64,
    ) -> Result<Option<Vec<Vec<u8>>>, Error> {
        let (pool, doc) = (self.pool.clone(), doc.as_bytes().to_vec());
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        self.run(async move {
            let mut client = pool.get().await?;
            let tx = read_snapshot(&mut client).await?;
            let through: Option<i64> = tx
                .query_opt("SELECT through FROM nudge_docs WHERE doc = $1", &[&doc])
                .await?
                .and_then(|r| r.get(0));
            if through.is_some_and(|t| t > position) {
                return Ok(None);
            }
            let changes = tx
                .query(
                    "SELECT bytes FROM nudge_log WHERE doc = $1 AND seq > $2 ORDER BY seq",
                    &[&doc, &position],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            tx.commit().await?;
            Ok(Some(changes))
        })
    }

    fn position(&self, doc: &DocumentId) -> Result<u64, Error> {
        let (pool, doc) = (self.pool.clone(), doc.as_bytes().to_vec());
        self.run(async move {
            let client = pool.get().await?;
            let row = client
                .query_opt("SELECT next FROM nudge_docs WHERE doc = $1", &[&doc])
                .await?;
            Ok(row.map_or(0, |r| unsigned(r.get(0))))
        })
    }

    fn contains(&self, doc: &DocumentId, hash: &ChangeHash) -> Result<bool, Error> {
        let (pool, doc, hash) = (self.pool.clone(), doc.as_bytes().to_vec(), hash.to_vec());
        self.run(async move {
            let client = pool.get().await?;
            let row = client
                .query_opt(
                    "SELECT 1 FROM nudge_hashes WHERE doc = $1 AND hash = $2",
                    &[&doc, &hash],
                )
                .await?;
            Ok(row.is_some())
        })
    }

    fn changes_since_snapshot(&self, doc: &DocumentId) -> Result<usize, Error> {
        let (pool, doc) = (self.pool.clone(), doc.as_bytes().to_vec());
        self.run(async move {
            let client = pool.get().await?;
            let row = client
                .query_one("SELECT count(*) FROM nudge_log WHERE doc = $1", &[&doc])
                .await?;
            Ok(unsigned(row.get(0)) as usize)
        })
    }

    fn compact(&self, doc: &DocumentId, snapshot: &[u8], through: u64) -> Result<(), Error> {
        let (pool, doc, snapshot) = (
            self.pool.clone(),
            doc.as_bytes().to_vec(),
            snapshot.to_vec(),
        );
        let through = i64::try_from(through).unwrap_or(i64::MAX);
        self.run(async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            // One node compacts a document at a time; another that tries meanwhile skips.
            let (high, low) = lock_key(&doc);
            let ours: bool = tx
                .query_one("SELECT pg_try_advisory_xact_lock($1, $2)", &[&high, &low])
                .await?
                .get(0);
            if !ours {
                return Ok(());
            }
            let next = lock_doc(&tx, &doc).await?;
            // A node whose copy lagged behind another's compaction must not put an older
            // snapshot back: the log entries the newer one covers are gone.
            let covered: Option<i64> = tx
                .query_one("SELECT through FROM nudge_docs WHERE doc = $1", &[&doc])
                .await?
                .get(0);
            if covered.is_some_and(|c| c >= through) {
                return Ok(());
            }
            tx.execute(
                "UPDATE nudge_docs SET snapshot = $2, through = $3, next = $4 WHERE doc = $1",
                &[&doc, &snapshot, &through, &next.max(through)],
            )
            .await?;
            tx.execute(
                "DELETE FROM nudge_log WHERE doc = $1 AND seq <= $2",
                &[&doc, &through],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn import(
        &self,
        doc: &DocumentId,
        snapshot: &[u8],
        hashes: &[ChangeHash],
    ) -> Result<(), Error> {
        let (origin, id) = (self.hub.origin, *doc);
        let (pool, doc, snapshot, hashes) = (
            self.pool.clone(),
            doc.as_bytes().to_vec(),
            snapshot.to_vec(),
            hashes.to_vec(),
        );
        self.run(async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            lock_doc(&tx, &doc).await?;
            tx.execute("DELETE FROM nudge_log WHERE doc = $1", &[&doc])
                .await?;
            tx.execute("DELETE FROM nudge_hashes WHERE doc = $1", &[&doc])
                .await?;
            new_hashes(&tx, &doc, hashes.iter()).await?;
            let position = hashes.len() as i64;
            tx.execute(
                "UPDATE nudge_docs SET snapshot = $2, through = $3, next = $3 WHERE doc = $1",
                &[&doc, &snapshot, &position],
            )
            .await?;
            notify(&tx, origin, id, position).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn append_snapshot(
        &self,
        doc: &DocumentId,
        snapshot: &[u8],
        new: &[ChangeHash],
    ) -> Result<usize, Error> {
        let (origin, id) = (self.hub.origin, *doc);
        let (pool, doc, snapshot, new) = (
            self.pool.clone(),
            doc.as_bytes().to_vec(),
            snapshot.to_vec(),
            new.to_vec(),
        );
        self.run(async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let next = lock_doc(&tx, &doc).await?;
            let added = new_hashes(&tx, &doc, new.iter()).await?.len();
            let next = next + added as i64;
            tx.execute(
                "UPDATE nudge_docs SET snapshot = $2, through = $3, next = $3 WHERE doc = $1",
                &[&doc, &snapshot, &next],
            )
            .await?;
            tx.execute("DELETE FROM nudge_log WHERE doc = $1", &[&doc])
                .await?;
            if added > 0 {
                notify(&tx, origin, id, next).await?;
            }
            tx.commit().await?;
            Ok(added)
        })
    }

    fn remove(&self, doc: &DocumentId) -> Result<(), Error> {
        let (pool, doc) = (self.pool.clone(), doc.as_bytes().to_vec());
        self.run(async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            for table in ["nudge_log", "nudge_hashes", "nudge_docs"] {
                tx.execute(&format!("DELETE FROM {table} WHERE doc = $1"), &[&doc])
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn documents(&self) -> Result<Vec<DocumentId>, Error> {
        let pool = self.pool.clone();
        let ids: Vec<Vec<u8>> = self.run(async move {
            let client = pool.get().await?;
            let rows = client
                .query("SELECT doc FROM nudge_docs ORDER BY doc", &[])
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        ids.into_iter()
            .map(|bytes| {
                <[u8; 16]>::try_from(bytes.as_slice())
                    .map(DocumentId::from_bytes)
                    .map_err(|_| Error::Malformed {
                        path: PathBuf::from(&self.shown),
                        detail: "a document id that is not 16 bytes".into(),
                    })
            })
            .collect()
    }

    fn flush(&self) -> Result<(), Error> {
        // Every call committed, and a COMMIT returns once its WAL is on disk.
        Ok(())
    }
}
