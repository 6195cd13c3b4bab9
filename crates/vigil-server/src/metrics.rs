//! Counters for `/metrics`, in the Prometheus text exposition format.
//!
//! A handful of fixed counters and small labelled maps; hand-written rather than pulling an
//! exporter stack in, since the whole exposition is a few lines of text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::search::IndexProgress;

/// A counter with one label, e.g. `listener="udp"`.
#[derive(Default)]
pub struct LabeledCounter {
    values: Mutex<BTreeMap<String, u64>>,
}

impl LabeledCounter {
    /// Adds `n` to the series with this label value.
    pub fn add(&self, label: &str, n: u64) {
        if n == 0 {
            return;
        }
        let mut map = self.values.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(label) {
            Some(v) => *v += n,
            None => {
                map.insert(label.to_owned(), n);
            }
        }
    }

    /// Current value of one series.
    pub fn get(&self, label: &str) -> u64 {
        self.values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(label)
            .copied()
            .unwrap_or(0)
    }

    fn render(&self, out: &mut String, name: &str, label: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        let map = self.values.lock().unwrap_or_else(|p| p.into_inner());
        for (value, n) in map.iter() {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(out, "{name}{{{label}=\"{escaped}\"}} {n}");
        }
    }
}

/// Writes unlabelled samples `(name, counter|gauge, help, value)` with their HELP and TYPE.
fn write_samples<V: std::fmt::Display>(out: &mut String, samples: &[(&str, &str, &str, V)]) {
    for (name, kind, help, value) in samples {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

/// Everything `/metrics` shows.
#[derive(Default)]
pub struct Metrics {
    /// Events made durable, by listener.
    pub events: LabeledCounter,
    /// Bytes received, by listener.
    pub bytes: LabeledCounter,
    /// Events stored with tag `parse_error`, by listener.
    pub parse_errors: LabeledCounter,
    /// Secrets masked, by kind.
    pub redactions: LabeledCounter,
    /// Syslog datagrams dropped because the ledger was behind.
    pub udp_dropped: AtomicU64,
    /// Messages cut at the maximum message size.
    pub truncated: LabeledCounter,
    /// HTTP requests refused, by reason.
    pub http_rejected: LabeledCounter,
    /// Failed authentications.
    pub auth_failures: AtomicU64,
    /// Audit events not stored because the ledger was behind.
    pub audit_dropped: AtomicU64,
    /// Events, last arrival and rate per source (`vigil.source`).
    pub sources: SourceBook,
    /// TCP connections closed at once because their listener or address was at its limit,
    /// by listener.
    pub connections_refused: LabeledCounter,
    /// TCP connections closed because the peer was idle or slow too long, by listener.
    pub connection_timeouts: LabeledCounter,
    /// Empty syslog datagrams dropped.
    pub udp_empty: AtomicU64,
}

/// What is known of one source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStat {
    /// The source (`vigil.source`: listener and sender, token name, file).
    pub source: String,
    /// Events stored since the server started.
    pub events: u64,
    /// When it last sent.
    pub last_seen: vigil_event::Timestamp,
    /// Events per minute over about the last minute.
    pub per_minute: f64,
}

#[derive(Debug, Clone)]
struct SourceCounts {
    events: u64,
    last_seen: vigil_event::Timestamp,
    /// Minute number (since the epoch) of `current`.
    minute: i64,
    current: u64,
    previous: u64,
}

/// Per-source counters, bounded to [`SourceBook::MAX_SOURCES`] (the least recently seen source
/// is forgotten first).
#[derive(Debug, Default)]
pub struct SourceBook {
    map: std::sync::Mutex<std::collections::HashMap<String, SourceCounts>>,
}

impl SourceBook {
    /// Sources remembered at once.
    pub const MAX_SOURCES: usize = 10_000;

    /// Counts `n` events from `source`, arrived now.
    pub fn add(&self, source: &str, n: u64) {
        let now = vigil_event::Timestamp::now();
        let minute = now.as_nanos().div_euclid(60_000_000_000);
        let Ok(mut map) = self.map.lock() else { return };
        if !map.contains_key(source)
            && map.len() >= Self::MAX_SOURCES
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, c)| c.last_seen)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        let c = map.entry(source.to_owned()).or_insert(SourceCounts {
            events: 0,
            last_seen: now,
            minute,
            current: 0,
            previous: 0,
        });
        if c.minute != minute {
            c.previous = if c.minute + 1 == minute { c.current } else { 0 };
            c.current = 0;
            c.minute = minute;
        }
        c.events += n;
        c.current += n;
        c.last_seen = now;
    }

    /// Every source, most recently seen first.
    pub fn snapshot(&self) -> Vec<SourceStat> {
        let now = vigil_event::Timestamp::now().as_nanos();
        let minute = now.div_euclid(60_000_000_000);
        let into_minute = now.rem_euclid(60_000_000_000) as f64 / 60e9;
        let Ok(map) = self.map.lock() else {
            return Vec::new();
        };
        let mut out: Vec<SourceStat> = map
            .iter()
            .map(|(source, c)| {
                // A sliding minute: the part of the previous minute still inside it, plus this one.
                let (current, previous) = match minute - c.minute {
                    0 => (c.current, c.previous),
                    1 => (0, c.current),
                    _ => (0, 0),
                };
                SourceStat {
                    source: source.clone(),
                    events: c.events,
                    last_seen: c.last_seen,
                    per_minute: current as f64 + previous as f64 * (1.0 - into_minute),
                }
            })
            .collect();
        out.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.source.cmp(&b.source)));
        out
    }
}

impl Metrics {
    /// The exposition text; `ledger_end` and `ledger_checkpointed` are read from the ledger,
    /// `index` is the search index's progress when it is on.
    pub fn render(
        &self,
        ledger_end: u64,
        ledger_checkpointed: u64,
        in_flight: u64,
        index: Option<&IndexProgress>,
        detect: Option<(&crate::detect::DetectProgress, &crate::notify::NotifyStats)>,
    ) -> String {
        let mut out = String::new();
        self.events.render(
            &mut out,
            "vigil_ingest_events_total",
            "listener",
            "Events made durable in the ledger.",
        );
        self.bytes.render(
            &mut out,
            "vigil_ingest_bytes_total",
            "listener",
            "Bytes received.",
        );
        self.parse_errors.render(
            &mut out,
            "vigil_parse_errors_total",
            "listener",
            "Events stored with tag parse_error.",
        );
        self.redactions.render(
            &mut out,
            "vigil_redactions_total",
            "kind",
            "Secrets masked before storage.",
        );
        self.truncated.render(
            &mut out,
            "vigil_messages_truncated_total",
            "listener",
            "Messages cut at the maximum message size.",
        );
        self.http_rejected.render(
            &mut out,
            "vigil_http_rejected_total",
            "reason",
            "HTTP requests refused.",
        );
        self.connections_refused.render(
            &mut out,
            "vigil_connections_refused_total",
            "listener",
            "TCP connections closed at once: the listener or the address was at its connection limit.",
        );
        self.connection_timeouts.render(
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
                self.udp_empty.load(Ordering::Relaxed),
            ),
            (
                "vigil_udp_dropped_total",
                "counter",
                "Syslog datagrams dropped because the ledger was behind.",
                self.udp_dropped.load(Ordering::Relaxed),
            ),
            (
                "vigil_auth_failures_total",
                "counter",
                "Requests with missing or invalid credentials.",
                self.auth_failures.load(Ordering::Relaxed),
            ),
            (
                "vigil_audit_dropped_total",
                "counter",
                "Audit events not stored because the ledger was behind.",
                self.audit_dropped.load(Ordering::Relaxed),
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
}
