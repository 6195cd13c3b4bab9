//! The detector's counters for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters for `/metrics`.
#[derive(Default)]
pub struct DetectProgress {
    /// Events evaluated.
    pub events: AtomicU64,
    /// Rule matches.
    pub matches: AtomicU64,
    /// Alerts raised.
    pub alerts: AtomicU64,
    /// Next sequence number to evaluate.
    pub next_seq: AtomicU64,
    /// Failures (ledger reads, writes).
    pub errors: AtomicU64,
    /// Correlation groups evicted to stay within the per-rule cap.
    pub evicted_groups: AtomicU64,
    /// Correlation window entries dropped to stay within the per-group cap.
    pub dropped_entries: AtomicU64,
    /// Correlation groups held now.
    pub correlation_groups: AtomicU64,
    /// Behaviour rules' tuples and entities held now.
    pub behaviour_entries: AtomicU64,
    /// Behaviour rules' entries evicted to stay under their caps.
    pub behaviour_evicted: AtomicU64,
    /// Rough bytes of the behaviour rules' state.
    pub behaviour_bytes: AtomicU64,
    /// Sources the silence watch tracks (`crate::silence`).
    pub silence_sources: AtomicU64,
    /// Sources the silence watch evicted to stay under its cap.
    pub silence_evicted: AtomicU64,
}

impl DetectProgress {
    /// The behaviour rules' samples for `/metrics`: `(name, type, help, value)`.
    pub fn behaviour_samples(&self) -> [(&'static str, &'static str, &'static str, u64); 3] {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            (
                "vigil_behaviour_entries",
                "gauge",
                "Tuples (first seen) and entities (outliers) behaviour rules hold now.",
                load(&self.behaviour_entries),
            ),
            (
                "vigil_behaviour_evicted_total",
                "counter",
                "Behaviour rule entries evicted (oldest last-seen first) to stay under a rule's cap.",
                load(&self.behaviour_evicted),
            ),
            (
                "vigil_behaviour_state_bytes",
                "gauge",
                "Rough bytes held by behaviour rules' state.",
                load(&self.behaviour_bytes),
            ),
        ]
    }

    /// The correlation engine's samples for `/metrics`: `(name, type, help, value)`.
    pub fn correlation_samples(&self) -> [(&'static str, &'static str, &'static str, u64); 3] {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            (
                "vigil_correlation_groups",
                "gauge",
                "Correlation groups held now.",
                load(&self.correlation_groups),
            ),
            (
                "vigil_correlation_groups_evicted_total",
                "counter",
                "Correlation groups evicted to stay within the per-rule group limit.",
                load(&self.evicted_groups),
            ),
            (
                "vigil_correlation_entries_dropped_total",
                "counter",
                "Correlation window entries dropped to stay within the per-group limit.",
                load(&self.dropped_entries),
            ),
        ]
    }
}
