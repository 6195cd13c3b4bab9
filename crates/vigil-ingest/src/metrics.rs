//! The ingest counters `/metrics` shows: events, bytes, parse errors, redactions, refusals,
//! by listener or reason. The server renders them in the Prometheus text format.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::origin::Origin;

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

    /// Every series, `(label value, count)`, in label order.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let map = self.values.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// Everything `/metrics` shows.
#[derive(Default)]
pub struct Metrics {
    /// Events made durable, by origin: every event the pipeline stored.
    pub stored: OriginCounter,
    /// Events made durable, by listener (and Vigil's own audit events as `audit`), drill
    /// events ([`crate::drill`]) not among them.
    pub events: LabeledCounter,
    /// Drill events made durable, by listener: a drill's traffic, counted apart from
    /// [`Metrics::events`] so that a drill never inflates a listener's or a source's figures.
    pub drill_events: LabeledCounter,
    /// Bytes received, by listener (drill traffic included: bytes are counted before the door
    /// knows which events are a drill's).
    pub bytes: LabeledCounter,
    /// Events stored with tag `parse_error`, by listener (drill events not among them).
    pub parse_errors: LabeledCounter,
    /// Secrets masked, by kind (in drill events not among them).
    pub redactions: LabeledCounter,
    /// Syslog datagrams dropped because the ledger was behind.
    pub udp_dropped: AtomicU64,
    /// Messages cut at the maximum message size, by listener (drill events not among them).
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

/// Events made durable, by [`Origin`]: every event in the ledger is counted here once.
#[derive(Default)]
pub struct OriginCounter {
    counts: [AtomicU64; Origin::ALL.len()],
}

impl OriginCounter {
    /// Adds `n` events stored from `origin`.
    pub fn add(&self, origin: Origin, n: u64) {
        self.counts[origin.index()].fetch_add(n, Ordering::Relaxed);
    }

    /// Events stored from `origin`.
    pub fn get(&self, origin: Origin) -> u64 {
        self.counts[origin.index()].load(Ordering::Relaxed)
    }

    /// Events stored by origin label (`input` sums every listener), in [`Origin::ALL`] order.
    pub fn by_label(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<(&'static str, u64)> = Vec::new();
        for origin in Origin::ALL {
            let n = self.get(origin);
            match out.iter_mut().find(|(l, _)| *l == origin.as_str()) {
                Some((_, total)) => *total += n,
                None => out.push((origin.as_str(), n)),
            }
        }
        out
    }
}
