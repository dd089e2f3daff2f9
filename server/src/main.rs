//! The `nudge-server` binary: parses arguments and hands over to the library.

/// jemalloc hands freed memory back to the system after a while (glibc's malloc keeps it
/// in per-thread arenas), so the server shrinks again when idle documents leave memory.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use nudge_store::{Location, OpenOptions, Store};

mod admin_client;
use admin_client as admin;

/// nudge's sync server.
#[derive(Parser)]
#[command(name = "nudge-server", version, about)]
struct Cli {
    /// How log lines are written to stderr: `text` for people, `json` (one object a line)
    /// for log shippers. RUST_LOG sets what is logged (default: info for nudge, warn for
    /// the libraries it uses).
    #[arg(long, global = true, env = "NUDGE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// `--log-format`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines, coloured only on a terminal.
    Text,
    /// One JSON object a line.
    Json,
}

/// What is logged when RUST_LOG does not say: nudge's own events from info up, the
/// libraries' (the store's database, hyper, tungstenite) only from warn.
const DEFAULT_LOG: &str = "warn,nudge_server=info,nudge_store=info,nudge_protocol=info";

fn init_logs(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve websocket sync at /v1/sync (and /).
    Serve {
        /// Address to listen on (port 0 picks a free one; the real address is printed).
        #[arg(long, env = "NUDGE_LISTEN", default_value = "127.0.0.1:3030")]
        listen: SocketAddr,
        /// Where the store is: --data DIR (the embedded store), or --store.
        #[command(flatten)]
        at: Where,
        /// Seconds a client has to finish the websocket and protocol handshakes.
        #[arg(long, env = "NUDGE_HANDSHAKE_TIMEOUT", default_value_t = 10)]
        handshake_timeout: u64,
        /// Seconds of silence before a connection is pinged (and as long again before it is
        /// closed).
        #[arg(long, env = "NUDGE_IDLE_TIMEOUT", default_value_t = 60)]
        idle_timeout: u64,
        /// Connections served at once (a quarter at most unauthenticated, a quarter at most
        /// buddies' share links; the rest stays for devices).
        #[arg(long, env = "NUDGE_MAX_CONNECTIONS", default_value_t = 1024)]
        max_connections: usize,
        /// Connections one address may hold at once, 0 for no cap (a --trusted-proxy has
        /// none). Raise it for many devices behind one address.
        #[arg(long, env = "NUDGE_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 32)]
        max_connections_per_address: usize,
        /// Largest message accepted, in bytes; a bigger one closes its connection.
        #[arg(long, env = "NUDGE_MAX_MESSAGE_BYTES", default_value_t = 16 << 20)]
        max_message_bytes: usize,
        /// MiB one account's documents may take in the store, 0 for no limit; changes
        /// past it are refused (reading goes on).
        #[arg(long, env = "NUDGE_QUOTA_MIB", default_value_t = nudge_server::DEFAULT_QUOTA_MIB)]
        quota_mib: u64,
        /// For tests: a file whose number (milliseconds) moves the server's wall clock
        /// forward, read at every use, so that a test ages links and shares without waiting.
        #[arg(long, value_name = "FILE", hide = true)]
        test_clock: Option<PathBuf>,

        /// The address devices use to reach this server (e.g. https://nudge.example.org),
        /// for device links; default: the address the asking device used.
        #[arg(long, env = "NUDGE_PUBLIC_URL", value_name = "URL")]
        public_url: Option<String>,
        /// Seconds a device link stays valid unless the asking device says otherwise.
        #[arg(long, env = "NUDGE_LINK_TTL", default_value_t = 15 * 60)]
        link_ttl: u64,

        /// Seconds one outbound message may take before a peer that stopped reading is
        /// disconnected.
        #[arg(long, env = "NUDGE_SEND_TIMEOUT", default_value_t = 10)]
        send_timeout: u64,
        /// Seconds one storage call may take; a longer one counts as a storage failure
        /// (a disk that fills can make the store hang rather than fail) and stops the server.
        #[arg(long, env = "NUDGE_STORAGE_TIMEOUT", default_value_t = 30)]
        storage_timeout: u64,
        /// Seconds a document nobody has open stays in memory (it is loaded again when
        /// next opened).
        #[arg(long, env = "NUDGE_UNLOAD_AFTER", default_value_t = 300)]
        unload_after: u64,
        /// MiB of the store's page cache (stored changes and snapshots kept in memory).
        #[arg(long, env = "NUDGE_CACHE_MIB", default_value_t = 64)]
        cache_mib: u64,
        /// A reverse proxy in front of this server (an address or CIDR range, repeatable):
        /// its X-Forwarded-For / Forwarded headers name the client for the failed-attempt
        /// limit. Without it those headers are ignored and the socket's address counts.
        #[arg(long = "trusted-proxy", env = "NUDGE_TRUSTED_PROXY", value_delimiter = ',', value_name = "ADDR_OR_CIDR", value_parser = parse_net)]
        trusted_proxies: Vec<ipnet::IpNet>,
        /// Serve /metrics on this address only (e.g. 127.0.0.1:9090), not on --listen,
        /// so that it need not be public.
        #[arg(long, env = "NUDGE_METRICS_LISTEN", value_name = "ADDR")]
        metrics_listen: Option<SocketAddr>,
    },
    /// Back up the data folder (or database) into one file, while the server runs or not;
    /// the file is checked before it replaces FILE.
    Backup {
        /// Where the store is.
        #[command(flatten)]
        at: Where,
        /// The backup file to write (written beside it first, then renamed into place).
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into a new, empty data folder (no server may run on it) or an
    /// empty database; then start the server on it.
    Restore {
        /// Where to restore: a new data folder (created if missing; must be empty), or
        /// with --store an empty database.
        #[command(flatten)]
        at: Where,
        /// The backup file, from `nudge-server backup`.
        #[arg(long)]
        from: PathBuf,
    },
    /// Copy a whole store into another: a data folder into a PostgreSQL database, when
    /// the server outgrows one machine. Stop the server on --from first; then start the
    /// nodes with `serve --store` the target. Every document's heads are checked in the
    /// target; devices and buddies keep their tokens.
    Migrate {
        /// The store to copy: a data folder (no server may run on it).
        #[arg(long, value_name = "DIR|URL")]
        from: String,
        /// Where to copy it: postgres://USER@HOST:PORT/DB (or a new data folder).
        #[arg(long, value_name = "URL|DIR")]
        to: String,
        /// Copy into a store that holds data already: its documents gain what they lack,
        /// and its records under the same keys are replaced.
        #[arg(long)]
        into_nonempty: bool,
    },
    /// Manage accounts (whether or not a server runs on the data folder).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage tokens (whether or not a server runs on the data folder).
    #[command(subcommand)]
    Token(TokenCommand),
}

/// Where the store is: a data folder (sled, nudge's default: nothing else to run), or,
/// with `--store`, a PostgreSQL database that several servers can share.
#[derive(clap::Args, Clone, Debug)]
struct Where {
    /// Data folder (the embedded store).
    #[arg(long, env = "NUDGE_DATA", default_value = "./nudge-data")]
    data: PathBuf,
    /// The store instead of --data: postgres://USER@HOST:PORT/DB (a PostgreSQL database),
    /// or a data folder.
    #[arg(long, env = "NUDGE_STORE", value_name = "URL|DIR")]
    store: Option<String>,
}

impl Where {
    fn location(&self) -> Location {
        match &self.store {
            Some(spec) => Location::parse(spec),
            None => Location::Folder(self.data.clone()),
        }
    }
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account; prints its token once, alone on the last line.
    Add {
        /// The account's name.
        name: String,
        /// Where the store is.
        #[command(flatten)]
        at: Where,
    },
    /// List accounts.
    List {
        /// Where the store is.
        #[command(flatten)]
        at: Where,
    },
    /// Issue a new account token (for a token that leaked); the old one stops working at
    /// once. Devices and shares keep working. Prints the new token, alone on the last line.
    Token {
        /// The account's name.
        name: String,
        /// Where the store is.
        #[command(flatten)]
        at: Where,
    },
    /// Remove an account: revokes its tokens and deletes its documents.
    Remove {
        /// The account's name.
        name: String,
        /// Where the store is.
        #[command(flatten)]
        at: Where,
        /// Confirm: the account's journals are deleted from the server for good.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// List tokens (ids only; secrets are never stored).
    List {
        /// Where the store is.
        #[command(flatten)]
        at: Where,
    },
    /// Revoke a token: it stops working at once and its open connections are closed.
    Revoke {
        /// The token's id (the part after `nudge_acct_`, as `token list` shows it).
        id: String,
        /// Where the store is.
        #[command(flatten)]
        at: Where,
    },
}

/// A listening socket with a deep accept queue: under a flood of connections (most closed
/// at once by the connection caps) an honest device's connection waits in the queue
/// instead of being dropped and retried a second later.
fn bind(listen: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if listen.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(listen)?;
    socket.listen(4096)
}

/// `--trusted-proxy`: `10.0.0.5`, `10.0.0.0/8` or `fd00::/8`.
fn parse_net(text: &str) -> std::result::Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            format!("{text:?} is not an address or CIDR range (e.g. 10.0.0.5 or 10.0.0.0/8)")
        })
}

fn open(location: &Location, cache_mib: u64) -> Result<Store> {
    if let Location::Folder(data) = location {
        std::fs::create_dir_all(data)
            .with_context(|| format!("cannot create the data folder {}", data.display()))?;
    }
    // A server reads its whole store once as it starts: a damaged page refuses the start
    // instead of a document later (docs/storage.md, "Damage and recovery").
    let options = OpenOptions {
        cache_bytes: cache_mib.max(1) << 20,
        check: nudge_store::Check::Everything,
        ..OpenOptions::default()
    };
    Ok(Store::open(location, &options)?)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// A byte count as `account list` shows it.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} B"),
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            at,
            handshake_timeout,
            idle_timeout,
            max_connections,
            max_connections_per_address,
            max_message_bytes,
            quota_mib,
            test_clock,
            public_url,
            link_ttl,
            send_timeout,
            storage_timeout,
            unload_after,
            cache_mib,
            trusted_proxies,
            metrics_listen,
        } => {
            let config = nudge_server::Config {
                limits: nudge_protocol::Limits {
                    max_message_bytes: max_message_bytes.max(1024),
                    ..nudge_protocol::Limits::default()
                },
                handshake_timeout: std::time::Duration::from_secs(handshake_timeout.max(1)),
                idle_timeout: std::time::Duration::from_secs(idle_timeout.max(1)),
                max_connections: max_connections.max(1),
                max_connections_per_address,
                public_url,
                link_ttl: std::time::Duration::from_secs(link_ttl.max(1)),
                send_timeout: std::time::Duration::from_secs(send_timeout.max(1)),
                storage_timeout: std::time::Duration::from_secs(storage_timeout.max(1)),
                unload_after: std::time::Duration::from_secs(unload_after.max(1)),
                trusted_proxies,
                metrics_addr: metrics_listen,
                quota_bytes: (quota_mib > 0).then(|| quota_mib.saturating_mul(1 << 20)),
                clock: match test_clock {
                    Some(file) => {
                        std::sync::Arc::new(nudge_server::clock::OffsetFileClock::new(file))
                    }
                    None => nudge_server::clock::system(),
                },
                ..nudge_server::Config::default()
            };
            let location = at.location();
            let store = open(&location, cache_mib).map_err(|e| {
                match e.downcast_ref::<nudge_store::Error>() {
                    Some(nudge_store::Error::Locked { .. }) => anyhow::anyhow!(
                        "{e:#} (another server runs on this data folder; stop it first)"
                    ),
                    _ => e,
                }
            })?;
            let runtime = tokio::runtime::Runtime::new()?;
            // The admin routes serve `account` and `token` while a server holds a data
            // folder; a database needs no go-between (they open it alongside).
            let folder = location.folder().map(std::path::Path::to_path_buf);
            let admin_file = folder.as_deref().map(admin::path);
            let served = runtime.block_on(async move {
                let listener = bind(listen).with_context(|| {
                    format!("cannot listen on {listen}; is another server running there?")
                })?;
                let addr = listener.local_addr()?;
                let secret = match &folder {
                    Some(data) => Some(admin::write(data, addr)?),
                    None => None,
                };
                let config = nudge_server::Config {
                    admin_secret: secret,
                    ..config
                };
                println!("listening on {addr}");
                std::io::stdout().flush()?;
                tracing::info!(%addr, store = %location, "listening on {addr}");
                nudge_server::run(listener, store, config, shutdown_signal()).await
            });
            if let Some(admin_file) = admin_file {
                let _ = std::fs::remove_file(admin_file);
            }
            // A storage call stuck in the store's own threads must not keep the process:
            // everything acknowledged is on disk already.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            served
        }
        Command::Backup { at, out } => {
            let location = at.location();
            let summary = admin::backup(&location, &out)?;
            println!(
                "backup of {location} written to {} ({summary}; checked)",
                out.display()
            );
            Ok(())
        }
        Command::Restore { at, from } => {
            let location = at.location();
            let summary = admin::restore(&location, &from)?;
            let flag = match location {
                Location::Folder(_) => "--data",
                _ => "--store",
            };
            println!(
                "restored {} into {location} ({summary}); start the server with: nudge-server serve {flag} {location}",
                from.display(),
            );
            Ok(())
        }
        Command::Migrate {
            from,
            to,
            into_nonempty,
        } => {
            let (from, to) = (Location::parse(&from), Location::parse(&to));
            anyhow::ensure!(
                from.holds_a_store(),
                "{from} holds no nudge-server data (no store was ever created there); check --from"
            );
            let options = OpenOptions {
                lock_wait: std::time::Duration::ZERO,
                background_flush_ms: None,
                ..OpenOptions::default()
            };
            let source = Store::open(&from, &options).with_context(|| {
                format!("cannot open {from} (stop the server that uses it first)")
            })?;
            let target = Store::open(&to, &options).with_context(|| format!("cannot open {to}"))?;
            let copied = nudge_server::migrate::copy(&source, &target, into_nonempty)?;
            println!(
                "copied {} documents ({} merged into ones {to} held) and {} records from {from} into {to}; every document's heads checked",
                copied.documents, copied.merged, copied.records
            );
            println!("start the server with: nudge-server serve --store {to}");
            Ok(())
        }
        Command::Account(AccountCommand::Add { name, at }) => {
            let (id, token) =
                admin::Admin::open_or_create(&at.location(), true)?.add_account(&name)?;
            println!("account {name} ({id}) created; its token (shown only now):");
            println!("{token}");
            Ok(())
        }
        Command::Account(AccountCommand::Token { name, at }) => {
            let (token, closed) =
                admin::Admin::open_or_create(&at.location(), false)?.reissue(&name)?;
            println!(
                "account {name}: a new token (shown only now); the old one no longer works ({closed}):"
            );
            println!("{token}");
            Ok(())
        }
        Command::Account(AccountCommand::List { at }) => {
            for (id, name, used) in
                admin::Admin::open_or_create(&at.location(), false)?.accounts()?
            {
                println!("{id}  {name}  {} used", size(used));
            }
            Ok(())
        }
        Command::Account(AccountCommand::Remove { name, at, yes }) => {
            if !yes {
                anyhow::bail!(
                    "removing {name:?} deletes its journals from the server for good; add --yes to confirm"
                );
            }
            let removed =
                admin::Admin::open_or_create(&at.location(), false)?.remove_account(&name)?;
            println!("{removed}");
            Ok(())
        }
        Command::Token(TokenCommand::List { at }) => {
            for (id, kind, account) in
                admin::Admin::open_or_create(&at.location(), false)?.tokens()?
            {
                println!("{id}  {kind:<5}  {account}");
            }
            Ok(())
        }
        Command::Token(TokenCommand::Revoke { id, at }) => {
            let revoked = admin::Admin::open_or_create(&at.location(), false)?.revoke(&id)?;
            println!("{revoked}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logs(cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nudge-server: {e:#}");
            ExitCode::from(1)
        }
    }
}
