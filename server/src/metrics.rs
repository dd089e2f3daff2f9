//! What `GET /metrics` reports, in the OpenMetrics text format Prometheus scrapes
//! (`prometheus-client`).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The server's counters, shared by every connection and document actor.
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
    /// Inbound messages the guard refused.
    pub guard_rejections: Counter,
    /// Connections refused at the HTTP handshake for a missing, unknown or revoked token.
    pub auth_failures: Counter,
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
        // 1 to 4,096 changes.
        let batched_changes = Histogram::new(exponential_buckets(1.0, 2.0, 13));
        let guard_rejections = Counter::default();
        let auth_failures = Counter::default();
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
            guard_rejections,
            auth_failures,
        }
    }
}

impl Metrics {
    /// Everything, in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
