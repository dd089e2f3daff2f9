//! nudge-server: a peer with storage that keeps every journal and syncs it with the
//! account's devices over automerge-repo's websocket protocol.
//!
//! - [`run`]: accept loop and graceful shutdown; the caller binds the listener.
//! - `server.rs`: the running server as one handle whose methods are the operations
//!   (admit a document, revoke, remove an account...); `state.rs`: everything it keeps
//!   over one store, the same code the admin commands use with the server stopped.
//! - `connection.rs`: one websocket: token check before the upgrade, the `join`/`peer`
//!   handshake, every message through `nudge_protocol::inspect`, routing to documents.
//! - `documents/`: one actor task per loaded document, owning a `DocSession`; changes
//!   are appended and flushed before any sync message can acknowledge them.
//! - `http.rs`: the HTTP routes and the websocket upgrade; `admin.rs`: accounts and
//!   tokens while the server runs; `metrics.rs`: `/metrics`.
//! - `accounts.rs`: accounts, token hashes and document ownership in the store's records.

mod accounts;
mod admin;
pub mod backup;
mod capacity;
mod cheers;
pub mod clock;
mod connection;
mod device_routes;
mod devices;
mod documents;
mod http;
mod metrics;
pub mod migrate;
mod nodes;
mod respond;
mod revocation;
mod server;
mod share_routes;
mod share_views;
mod shares;
mod state;
mod table;
mod throttle;
mod usage;
mod view_page;
mod view_render;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use nudge_protocol::Limits;
use nudge_store::{DocStore, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use accounts::{AccountError, Accounts, Principal, Registered, Removed, TokenInfo};
use server::Server;
pub use state::State;

/// Server settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Limits on inbound messages.
    pub limits: Limits,
    /// How long a client has to complete the websocket and protocol handshakes.
    pub handshake_timeout: Duration,
    /// Silence after which a connection is pinged; as long again without any frame and it
    /// is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; more are closed as soon as they are accepted. Of
    /// these, a quarter at most may be unauthenticated and a quarter at most share links'
    /// (`capacity.rs`): the rest stays for devices.
    pub max_connections: usize,
    /// Connections one address may hold at once (0: no cap); a trusted proxy has none.
    pub max_connections_per_address: usize,
    /// The secret the admin routes (`/v1/admin/...`) require, from this host only; `None`
    /// turns them off. `nudge-server serve` makes one per run and writes it, with the
    /// address, to `admin.json` in the data folder (mode 0600).
    pub admin_secret: Option<String>,
    /// The address devices use to reach this server, for links (`https://nudge.example`);
    /// without it, links are built from the `Host` the asking device used.
    pub public_url: Option<String>,
    /// How long a device link stays valid unless the asking device says otherwise.
    pub link_ttl: Duration,
    /// How long one outbound message may take to reach the socket before the peer counts
    /// as stalled (it stopped reading) and is disconnected.
    pub send_timeout: Duration,
    /// How long one storage call (store and flush, load, compact) may take; one that
    /// takes longer counts as a storage failure and stops the server.
    pub storage_timeout: Duration,
    /// How long a document nobody has open stays in memory; it is loaded again from
    /// storage when next opened.
    pub unload_after: Duration,
    /// Where `/metrics` is served instead of the main port (`--metrics-listen`), so that it
    /// need not be public; `None` serves it on the main port.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` headers name the client (for
    /// the failed-attempt limit); from anyone else those headers are ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The bytes one account's documents may take in the store (`None`: no limit);
    /// changes that would go past it are refused (`usage.rs`, `admission::within_quota`).
    pub quota_bytes: Option<u64>,
    /// The wall clock expiry and recorded times are read from (`clock.rs`).
    pub clock: std::sync::Arc<dyn clock::Clock>,
}

impl Config {
    /// Connections served at once: `max_connections`, at least 1 (and small enough for
    /// a semaphore).
    pub(crate) fn connections_allowed(&self) -> usize {
        self.max_connections.clamp(1, u32::MAX as usize >> 4)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_connections_per_address: 32,
            admin_secret: None,
            public_url: None,
            link_ttl: Duration::from_secs(15 * 60),
            send_timeout: Duration::from_secs(10),
            storage_timeout: Duration::from_secs(30),
            unload_after: Duration::from_secs(300),
            trusted_proxies: Vec::new(),
            metrics_addr: None,
            quota_bytes: Some(DEFAULT_QUOTA_MIB << 20),
            clock: clock::system(),
        }
    }
}

/// An account's storage quota unless `--quota-mib` says otherwise: a 100,000-shift journal
/// takes a few MiB, so this is room for decades of use, not for a disk filled on purpose.
pub const DEFAULT_QUOTA_MIB: u64 = 256;

/// Closes a connection refused at the door with a reset: nothing was said on it, and a
/// flood of them leaves no `TIME_WAIT` sockets behind (each one kernel memory and work
/// for a minute), so the server's cost of turning an attacker away stays small.
fn refuse(stream: tokio::net::TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Why every connection is closed when storage fails and the server stops.
pub(crate) const STORAGE_FAILED: &str = "server stopping: storage failed";

/// Serves HTTP and websocket connections from `listener` until `shutdown` completes, then closes
/// every connection with a close frame, flushes storage and returns.
pub async fn run(
    listener: TcpListener,
    store: Store,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let documents: Arc<dyn DocStore> = store.docs();
    run_with(listener, store, documents, config, shutdown).await
}

/// [`run`], with the documents kept in `documents` (the same database as `store`, seen
/// through a wrapper: tests use one that slows every flush down).
pub async fn run_with(
    listener: TcpListener,
    store: Store,
    documents: Arc<dyn DocStore>,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let server = Arc::new(Server::new(&store, documents, config)?);
    let max_connections = server.config().connections_allowed();
    let permits = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let (stop, stopped) = watch::channel(false);
    if let Some(addr) = server.config().metrics_addr {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for --metrics-listen: {e}"))?;
        tracing::info!(addr = %listener.local_addr()?, "metrics on {}", listener.local_addr()?);
        tokio::spawn(http::serve_metrics(
            listener,
            server.metrics().clone(),
            stopped.clone(),
        ));
    }
    let following = nodes::follow(&server);
    let storage_failed = server.documents().failed.clone();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = storage_failed.notified() => {
                server.stop_because(STORAGE_FAILED);
                break;
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        tracing::warn!(%addr, "connection limit reached; closing a new connection");
                        refuse(stream);
                        continue;
                    };
                    let proxy = server.config().trusted_proxies.iter().any(|net| net.contains(&addr.ip()));
                    let socket = match server.capacity().accept((!proxy).then_some(addr.ip())) {
                        Ok(socket) => Arc::new(socket),
                        Err(full) => {
                            tracing::debug!(%addr, "{full}; closing a new connection");
                            server.metrics().connections_refused.inc();
                            refuse(stream);
                            continue;
                        }
                    };
                    tracing::debug!(%addr, "accepted");
                    let _ = stream.set_nodelay(true);
                    let (server, stopped) = (server.clone(), stopped.clone());
                    let same_host = stream
                        .local_addr()
                        .is_ok_and(|local| addr.ip().is_loopback() || addr.ip() == local.ip());
                    tokio::spawn(http::serve(stream, server, (Arc::new(permit), socket), stopped, same_host, addr.ip()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    tracing::info!("shutting down");
    if let Some(following) = following {
        following.abort();
    }
    let _ = stop.send(true);
    // Every connection holds a permit until it has closed its socket.
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        permits.acquire_many(max_connections as u32),
    )
    .await;
    let failure = server.documents().failure();
    let storage_timeout = server.config().storage_timeout;
    let location = store.location().clone();
    let flushed = tokio::time::timeout(
        storage_timeout,
        tokio::task::spawn_blocking(move || store.flush()),
    )
    .await;
    if let Some(failure) = failure {
        anyhow::bail!(
            "storage failed ({failure}){}; stopped without acknowledging what it could not store: fix the disk, then start the server again",
            space_note(&location)
        );
    }
    match flushed {
        Ok(joined) => joined??,
        Err(_) => anyhow::bail!(
            "storage did not answer within {} s while flushing at shutdown{}; everything acknowledged was flushed before",
            storage_timeout.as_secs_f64(),
            space_note(&location)
        ),
    }
    Ok(())
}

/// "; the disk holding DIR is full (N KiB free)" when it nearly is, else nothing.
fn space_note(location: &nudge_store::Location) -> String {
    let Some(path) = location.folder() else {
        return String::new();
    };
    match fs2::available_space(path) {
        Ok(free) if free < 16 << 20 => format!(
            "; the disk holding {} is full ({} KiB free)",
            path.display(),
            free >> 10
        ),
        _ => String::new(),
    }
}
