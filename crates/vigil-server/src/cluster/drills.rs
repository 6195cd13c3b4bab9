//! Drills in cluster mode (docs/cluster.md, "Drills"): what a node learns of drills from the
//! `sys` shard, which it follows in stream order like the alert and ban books ([`super::state`]).
//!
//! A drill runs on the node it was started on (`POST /api/v1/drills`, or that node's `[drills]`
//! schedule): it sends its scenario through that node's own listeners, and that node's door
//! marks the events (one-time nonces registered in that node's
//! [`vigil_ingest::drill::DrillRegistry`]) and journals them once JetStream acknowledged them.
//! Its events then go to the data shard of their (documentation) address, owned by any node,
//! and its alert, ban decision and notifications are raised by whichever node holds the
//! detector partition of the alert's group — on another node, into `sys`. This book closes that
//! gap:
//!
//! - **the run's own events from `sys`**: every `vigil.*` event of `sys` carrying the mark of a
//!   run this node is tracking (its alerts, drill decisions, notifications, bouncer fetches,
//!   whichever node wrote them) is journaled into this node's registry, so the report — a pure
//!   function of the journal (`crate::drill::report`) — sees the whole drill;
//! - **reports are shared**: every node keeps the drill reports (`vigil.drill` events,
//!   action `drill-run`) it reads from `sys`, so `GET /api/v1/drills` lists every node's
//!   drills on every node, as alerts and cases are listed.
//!
//! Only Vigil's own events reach `sys` (a sender's event claiming a `vigil.*` dataset is
//! quarantined by the parsers and goes to a data shard), and the door drops any drill mark an
//! input claims: a sender can neither add an event to a drill's journal nor list a report.

use std::sync::{Arc, OnceLock};

use vigil_event::{Event, dataset, field};
use vigil_ingest::drill::DrillRegistry;

use crate::drill::KeptReports;
use crate::drill::report::DrillReport;

/// The drill side of a node's books: its registry (to journal its runs' events from `sys`) and
/// the reports of every node's drills.
#[derive(Default)]
pub struct DrillBook {
    registry: OnceLock<Arc<DrillRegistry>>,
    /// Every node's drill reports, as read from `sys` (newest kept).
    pub reports: Arc<KeptReports>,
}

impl DrillBook {
    /// Journals this node's runs' events from `sys` into `registry` (called once at start).
    pub fn attach(&self, registry: Arc<DrillRegistry>) {
        let _ = self.registry.set(registry);
    }

    /// Applies the events of `sys` message `seq`.
    pub fn apply(&self, seq: u64, events: &[Event]) {
        let own = |e: &&Event| {
            e.dataset()
                .is_some_and(|d| d.starts_with(field::VIGIL_PREFIX))
        };
        if let Some(registry) = self.registry.get().filter(|r| r.is_active()) {
            let of_runs: Vec<(u64, Event)> = events
                .iter()
                .filter(own)
                .filter(|e| e.drill_run().is_some_and(|run| registry.tracks(run)))
                .map(|e| (seq, e.clone()))
                .collect();
            if !of_runs.is_empty() {
                registry.record(of_runs);
            }
        }
        for e in events {
            if e.is_dataset(dataset::VIGIL_DRILL)
                && e.get_str(field::EVENT_ACTION) == Some("drill-run")
                && let Some(mut report) = DrillReport::json_from_event(e)
            {
                // Where it is: the stream sequence of its `sys` message.
                report["seq"] = serde_json::json!(seq);
                self.reports.keep(report);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use vigil_event::Timestamp;

    fn alert(run: Option<&str>, ds: &str) -> Event {
        let mut e = Event::new(Timestamp::from_secs(1_800_000_000));
        e.insert(field::EVENT_DATASET, ds);
        e.insert(field::EVENT_ACTION, "alert-created");
        e.insert("vigil.alert.id", 7i64);
        if let Some(run) = run {
            e.insert(field::VIGIL_DRILL_RUN, run);
        }
        e
    }

    #[test]
    fn a_tracked_runs_own_events_are_journaled_and_nothing_else() {
        let registry = Arc::new(DrillRegistry::default());
        registry
            .begin("run1", &[], Duration::from_secs(60))
            .unwrap();
        let book = DrillBook::default();
        book.attach(Arc::clone(&registry));
        book.apply(
            5,
            &[
                alert(Some("run1"), dataset::VIGIL_ALERT),
                // Another node's run, a real alert, and an input-like event claiming the run.
                alert(Some("run2"), dataset::VIGIL_ALERT),
                alert(None, dataset::VIGIL_ALERT),
                alert(Some("run1"), "syslog"),
            ],
        );
        let journal = registry.finish("run1");
        assert_eq!(journal.stored.len(), 1, "{journal:?}");
        assert_eq!(journal.stored[0].seq, 5);
        assert_eq!(
            journal.stored[0].event.get_str(field::EVENT_DATASET),
            Some(dataset::VIGIL_ALERT)
        );
    }

    #[test]
    fn reports_are_kept_once_per_run_with_their_stream_sequence() {
        let book = DrillBook::default();
        let report = DrillReport {
            run: "drill-1".into(),
            scenario: "ssh-brute-force".into(),
            title: "t".into(),
            by: "ana".into(),
            started: Timestamp::from_secs(1),
            finished: Timestamp::from_secs(2),
            steps: Vec::new(),
            alerts: Vec::new(),
            seq: None,
        };
        let e = report.to_event();
        book.apply(9, std::slice::from_ref(&e));
        book.apply(12, &[e]);
        let kept = book.reports.newest_first();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0]["run"], "drill-1");
        assert_eq!(kept[0]["seq"], 9);
        // Not a report: another action of the dataset.
        let mut other = report.to_event();
        other.insert(field::EVENT_ACTION, "something-else");
        book.apply(13, &[other]);
        assert_eq!(book.reports.newest_first().len(), 1);
    }
}
