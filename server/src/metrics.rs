//! What `GET /metrics` reports, in the OpenMetrics text format Prometheus scrapes
//! (`prometheus-client`).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The server's counters, server by every connection and document actor.
pub struct Metrics {
    registry: Registry,
    /// Websocket connections open now.
    pub connections: Gauge,
    /// Documents loaded in memory now.
    pub documents_loaded: Gauge,
    /// Protocol messages received.
    pub messages_in: Counter,
    /// Protocol messages sent.
    pub messages_out: Counter,
    /// Bytes of protocol messages received.
    pub bytes_in: Counter,
    /// Bytes of protocol messages sent.
    pub bytes_out: Counter,
    /// From receiving changes to their being durable (and so acknowledgeable), in seconds:
    /// the flush before theirs, if one was under way, and theirs.
    pub ack_latency: Histogram,
    /// How long one store and flush took, in seconds.
    pub flush_seconds: Histogram,
    /// Storage flushes done for acknowledgements.
    pub flushes: Counter,
    /// Changes stored by one flush (group commit: what arrived together is flushed once).
    pub batched_changes: Histogram,
    /// Logs compacted into snapshots.
    pub compactions: Counter,
    /// Loaded documents brought up to what other nodes stored (a shared database).
    pub caught_up: Counter,
    /// Cheers buddies sent (stored).
    pub cheers: Counter,
    /// Inbound messages the guard refused.
    pub guard_rejections: Counter,
    /// Connections refused at the HTTP handshake for a missing, unknown or revoked token.
    pub auth_failures: Counter,
    /// Sockets closed at once for want of room (`capacity.rs`).
    pub connections_refused: Counter,
    /// The process's resident memory, read from /proc at each scrape.
    resident_bytes: Gauge,
    /// CPU seconds the process used, user and system.
    cpu_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// File descriptors the process has open.
    open_fds: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("nudge");
        let connections = Gauge::default();
        let documents_loaded = Gauge::default();
        let messages_in = Counter::default();
        let messages_out = Counter::default();
        let bytes_in = Counter::default();
        let bytes_out = Counter::default();
        // 0.5 ms to about 16 s.
        let ack_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let flush_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let flushes = Counter::default();
        let compactions = Counter::default();
        let caught_up = Counter::default();
        let cheers = Counter::default();
        // 1 to 4,096 changes.
        let batched_changes = Histogram::new(exponential_buckets(1.0, 2.0, 13));
        let guard_rejections = Counter::default();
        let auth_failures = Counter::default();
        let connections_refused = Counter::default();
        let resident_bytes = Gauge::default();
        let cpu_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let open_fds = Gauge::default();
        let build_info =
            prometheus_client::metrics::family::Family::<Vec<(String, String)>, Gauge>::default();
        build_info
            .get_or_create(&vec![(
                "version".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            )])
            .set(1);
        registry.register("build_info", "The server's version (always 1)", build_info);
        registry.register(
            "connections_refused",
            "Sockets closed at once: their address, the unauthenticated, or the share links were at their cap",
            connections_refused.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the server process",
            resident_bytes.clone(),
        );
        registry.register(
            "process_cpu_seconds",
            "CPU time the server process used (user and system)",
            cpu_seconds.clone(),
        );
        registry.register(
            "process_open_fds",
            "File descriptors the server process has open",
            open_fds.clone(),
        );
        registry.register(
            "connections",
            "Websocket connections open",
            connections.clone(),
        );
        registry.register(
            "documents_loaded",
            "Documents loaded in memory",
            documents_loaded.clone(),
        );
        registry.register(
            "messages_in",
            "Protocol messages received",
            messages_in.clone(),
        );
        registry.register(
            "messages_out",
            "Protocol messages sent",
            messages_out.clone(),
        );
        registry.register(
            "bytes_in",
            "Bytes of protocol messages received",
            bytes_in.clone(),
        );
        registry.register(
            "bytes_out",
            "Bytes of protocol messages sent",
            bytes_out.clone(),
        );
        registry.register(
            "ack_latency_seconds",
            "Time from receiving changes to their being durable and acknowledgeable",
            ack_latency.clone(),
        );
        registry.register(
            "flush_seconds",
            "Time one store and flush of a document's changes took",
            flush_seconds.clone(),
        );
        registry.register(
            "flushes",
            "Storage flushes for acknowledgements",
            flushes.clone(),
        );
        registry.register(
            "compactions",
            "Document logs compacted into snapshots",
            compactions.clone(),
        );
        registry.register(
            "catch_ups",
            "Loaded documents brought up to what other nodes stored",
            caught_up.clone(),
        );
        registry.register("cheers", "Cheers buddies sent", cheers.clone());
        registry.register(
            "changes_per_flush",
            "Changes stored by one flush (those that arrived together)",
            batched_changes.clone(),
        );
        registry.register(
            "guard_rejections",
            "Inbound messages refused by the guard",
            guard_rejections.clone(),
        );
        registry.register(
            "auth_failures",
            "Requests refused for a missing, unknown or revoked token",
            auth_failures.clone(),
        );
        Self {
            registry,
            connections,
            documents_loaded,
            messages_in,
            messages_out,
            bytes_in,
            bytes_out,
            ack_latency,
            flush_seconds,
            flushes,
            batched_changes,
            compactions,
            caught_up,
            cheers,
            guard_rejections,
            auth_failures,
            connections_refused,
            resident_bytes,
            cpu_seconds,
            open_fds,
        }
    }
}

impl Metrics {
    /// Updates the process figures from /proc (Linux; elsewhere they stay 0).
    fn read_process(&self) {
        if let Ok(status) = std::fs::read_to_string("/proc/self/status")
            && let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        {
            self.resident_bytes.set(kib * 1024);
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name (which may hold spaces): utime, stime are the
            // 12th and 13th; clock ticks of 1/100 s on Linux.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            let ticks: u64 = [11, 12]
                .iter()
                .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
                .sum();
            self.cpu_seconds.set(ticks as f64 / 100.0);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(fds.count() as i64);
        }
    }

    /// Everything, in the OpenMetrics text format.
    pub fn render(&self) -> String {
        self.read_process();
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
