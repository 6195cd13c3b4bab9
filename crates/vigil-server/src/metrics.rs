//! Counters for `/metrics`, in the Prometheus text exposition format.
//!
//! A handful of fixed counters and small labelled maps; hand-written rather than pulling an
//! exporter stack in, since the whole exposition is a few lines of text.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::search::IndexProgress;

pub use vigil_ingest::metrics::{LabeledCounter, Metrics, SourceBook, SourceStat};

/// Writes unlabelled samples `(name, counter|gauge, help, value)` with their HELP and TYPE.
fn write_samples<V: std::fmt::Display>(out: &mut String, samples: &[(&str, &str, &str, V)]) {
    for (name, kind, help, value) in samples {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

/// Writes one labelled counter with its HELP and TYPE.
fn render_labeled(counter: &LabeledCounter, out: &mut String, name: &str, label: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (value, n) in counter.snapshot() {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(out, "{name}{{{label}=\"{escaped}\"}} {n}");
    }
}

/// The exposition text; `ledger_end` and `ledger_checkpointed` are read from the ledger,
/// `index` is the search index's progress when it is on.
pub fn render(
    metrics: &Metrics,
    ledger_end: u64,
    ledger_checkpointed: u64,
    in_flight: u64,
    index: Option<&IndexProgress>,
    detect: Option<(&crate::detect::DetectProgress, &crate::notify::NotifyStats)>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP vigil_stored_events_total Events made durable in the ledger, by origin (every event stored goes through the ingest pipeline).\n# TYPE vigil_stored_events_total counter"
    );
    for (origin, n) in metrics.stored.by_label() {
        let _ = writeln!(out, "vigil_stored_events_total{{origin=\"{origin}\"}} {n}");
    }
    render_labeled(
        &metrics.events,
        &mut out,
        "vigil_ingest_events_total",
        "listener",
        "Events made durable in the ledger (drill events not among them).",
    );
    render_labeled(
        &metrics.drill_events,
        &mut out,
        "vigil_drill_events_total",
        "listener",
        "Drill events made durable in the ledger, counted apart from vigil_ingest_events_total.",
    );
    render_labeled(
        &metrics.bytes,
        &mut out,
        "vigil_ingest_bytes_total",
        "listener",
        "Bytes received (drill traffic included).",
    );
    render_labeled(
        &metrics.parse_errors,
        &mut out,
        "vigil_parse_errors_total",
        "listener",
        "Events stored with tag parse_error.",
    );
    render_labeled(
        &metrics.redactions,
        &mut out,
        "vigil_redactions_total",
        "kind",
        "Secrets masked before storage.",
    );
    render_labeled(
        &metrics.truncated,
        &mut out,
        "vigil_messages_truncated_total",
        "listener",
        "Messages cut at the maximum message size.",
    );
    render_labeled(
        &metrics.http_rejected,
        &mut out,
        "vigil_http_rejected_total",
        "reason",
        "HTTP requests refused.",
    );
    render_labeled(
        &metrics.connections_refused,
        &mut out,
        "vigil_connections_refused_total",
        "listener",
        "TCP connections closed at once: the listener or the address was at its connection limit.",
    );
    render_labeled(
        &metrics.connection_timeouts,
        &mut out,
        "vigil_connection_timeouts_total",
        "listener",
        "TCP connections closed because the peer was idle or slow too long.",
    );
    let gauges = [
        (
            "vigil_udp_empty_total",
            "counter",
            "Empty syslog datagrams dropped.",
            metrics.udp_empty.load(Ordering::Relaxed),
        ),
        (
            "vigil_udp_dropped_total",
            "counter",
            "Syslog datagrams dropped because the ledger was behind.",
            metrics.udp_dropped.load(Ordering::Relaxed),
        ),
        (
            "vigil_auth_failures_total",
            "counter",
            "Requests with missing or invalid credentials.",
            metrics.auth_failures.load(Ordering::Relaxed),
        ),
        (
            "vigil_audit_dropped_total",
            "counter",
            "Audit events not stored because the ledger was behind.",
            metrics.audit_dropped.load(Ordering::Relaxed),
        ),
        (
            "vigil_ledger_events",
            "gauge",
            "Events in the ledger (one past the last sequence number).",
            ledger_end,
        ),
        (
            "vigil_ledger_checkpointed_events",
            "gauge",
            "Tree size of the latest signed checkpoint.",
            ledger_checkpointed,
        ),
        (
            "vigil_ingest_in_flight_events",
            "gauge",
            "Events accepted but not yet durable.",
            in_flight,
        ),
    ];
    write_samples(&mut out, &gauges);
    if let Some((d, n)) = detect {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let lines = [
            (
                "vigil_detect_events_total",
                "counter",
                "Events evaluated by the detection rules.",
                load(&d.events),
            ),
            (
                "vigil_detect_rule_matches_total",
                "counter",
                "Rule matches.",
                load(&d.matches),
            ),
            (
                "vigil_alerts_total",
                "counter",
                "Alerts raised.",
                load(&d.alerts),
            ),
            (
                "vigil_detect_lag_events",
                "gauge",
                "Events in the ledger not yet evaluated by the rules.",
                ledger_end.saturating_sub(load(&d.next_seq)),
            ),
            (
                "vigil_detect_errors_total",
                "counter",
                "Detection failures (ledger reads or writes).",
                load(&d.errors),
            ),
            (
                "vigil_notifications_delivered_total",
                "counter",
                "Notifications delivered.",
                load(&n.delivered),
            ),
            (
                "vigil_notification_attempts_failed_total",
                "counter",
                "Notification attempts that failed (each retry counts).",
                load(&n.failed_attempts),
            ),
            (
                "vigil_notifications_failed_total",
                "counter",
                "Notifications given up after every retry (also written to the ledger).",
                load(&n.failed),
            ),
        ];
        write_samples(&mut out, &lines);
        write_samples(&mut out, &d.correlation_samples());
        write_samples(&mut out, &d.behaviour_samples());
        write_samples(&mut out, &d.silence_samples());
        n.write_dropped(&mut out);
    }
    if let Some(index) = index {
        let indexed = index.indexed_end.load(Ordering::Relaxed);
        let lag_events = ledger_end.saturating_sub(indexed);
        let lines = [
            (
                "vigil_index_events",
                "gauge",
                "Events searchable through the index (one past the last indexed sequence number).",
                indexed.to_string(),
            ),
            (
                "vigil_index_lag_events",
                "gauge",
                "Events in the ledger not yet in the index (searches scan them from the ledger).",
                lag_events.to_string(),
            ),
            (
                "vigil_index_lag_seconds",
                "gauge",
                "Seconds since the index last matched the ledger's end (0 when it does).",
                format!("{:.3}", index.lag_seconds(ledger_end)),
            ),
            (
                "vigil_indexed_events_total",
                "counter",
                "Events indexed since start.",
                index.indexed_total.load(Ordering::Relaxed).to_string(),
            ),
            (
                "vigil_index_errors_total",
                "counter",
                "Indexing failures since start.",
                index.errors.load(Ordering::Relaxed).to_string(),
            ),
        ];
        write_samples(&mut out, &lines);
    }
    out
}
