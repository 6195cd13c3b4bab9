//! The detector in cluster mode: the alert book every node keeps from the shared `sys` shard,
//! and the takeover of a node that has just acquired the detector lease.

use std::sync::atomic::Ordering;

use vigil_detect::alert::{Status, Triage};
use vigil_event::{Event, Timestamp, Value, dataset};

use super::DetectService;
use super::lane::Lane;

/// The longest stretch of the stream a new detector re-reads to rebuild its correlation
/// windows (a longer correlation's window is rebuilt only over this much).
const MAX_REBUILD: std::time::Duration = std::time::Duration::from_secs(3600);
use crate::cluster::detect::ClusterRole;

impl DetectService {
    /// Applies alert events read from the shared `sys` shard to this node's book. A node that
    /// does not detect takes each event's snapshot of its alert (as a book rebuilt from the
    /// ledger does), so its book names the same alerts, with the same ids, as the detector's.
    /// The detector's own book is ahead of its events (it counts throttled updates that are
    /// not written one by one): for the alerts of a detector partition this node detects now
    /// (`vigil.alert.partition`, none with one partition), it takes only the triage made on
    /// other nodes; other partitions' alerts it replays as any node does.
    pub fn apply_shared(&self, events: &[Event]) {
        let detecting: Vec<Option<u32>> = self
            .cluster
            .iter()
            .filter(|c| c.detecting())
            .map(|c| c.tag())
            .collect();
        let mut book = self.book.lock().unwrap_or_else(|p| p.into_inner());
        for e in events.iter().filter(|e| e.is_dataset(dataset::VIGIL_ALERT)) {
            if !detecting.contains(&partition_of(e)) {
                book.replay(std::iter::once(e));
                continue;
            }
            if e.get_str("event.action") != Some("alert-triaged") {
                continue;
            }
            let Some((id, change)) = triage_of(e) else {
                continue;
            };
            let known = book
                .get(id)
                .is_some_and(|a| a.history.last() != Some(&change));
            if known && book.triage(id, change).is_ok() {
                self.dirty.store(true, Ordering::Relaxed);
                // A count snapshot this detector wrote before it saw the triage may follow the
                // triage on `sys` and re-open the alert on every follower: the next save writes
                // a fresh snapshot, with the triage, after it.
                self.note_unwritten(id);
            }
        }
    }

    /// Cluster mode: an alert counted a match without writing an event (a throttled update).
    pub(super) fn note_unwritten(&self, id: u64) {
        if !self.cluster.is_empty() {
            self.unwritten
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id);
        }
    }

    /// Cluster mode, before each save of the cursor: an `alert-updated` event for every alert
    /// that counted matches since its last event (at most one per alert per save). So every
    /// node's book shows the detector's counts within a save, and a takeover knows every
    /// match counted before the cursor (standalone keeps them in `state.json` instead).
    pub(super) fn write_counts(&self) {
        let ids = std::mem::take(&mut *self.unwritten.lock().unwrap_or_else(|p| p.into_inner()));
        if ids.is_empty() {
            return;
        }
        let now = Timestamp::now();
        // Only the partitions this node still detects: a partition handed over is its new
        // holder's to write.
        let detecting: Vec<Option<u32>> = self
            .cluster
            .iter()
            .filter(|c| c.detecting())
            .map(|c| c.tag())
            .collect();
        let events = self.with_book(|book| {
            ids.iter()
                .filter_map(|id| book.get(*id))
                .filter(|a| detecting.contains(&a.partition))
                .map(|a| a.to_event("updated", now))
                .collect()
        });
        self.submit(events, vigil_ingest::Origin::Alert, Vec::new());
    }

    /// Cluster mode: whether `lane` (detector partition `role`) detects now. A node that has
    /// just acquired the partition's lease takes over (its book caught up with `sys`, the
    /// partition's cursor read) before it evaluates anything. A lane detects only while the
    /// lease is held at the epoch it began with: one whose lease was lost (expired, taken, or
    /// lost and acquired again at a new epoch) stops at once and writes nothing more for the
    /// partition (its holder now may be another node); one whose lease was stepped down for a
    /// hand-over (or given up by a clean stop) first writes its counts and waits for the
    /// alerts and bans it submitted to be acknowledged (so the successor finds them in `sys`),
    /// and stays detecting — the hand-over does not delete the lease — until they are.
    pub(super) fn lead(&self, role: &ClusterRole, lane: &mut Lane) -> bool {
        let held = role.lease().held();
        if role.detecting() {
            if held.is_some() && held == Some(role.begun()) {
                return true;
            }
            // Voluntary: stepped down for a hand-over, or given up by this node's clean stop.
            let voluntary = held.is_none() && (role.handing_over() || role.lease().released());
            if voluntary {
                self.write_counts();
                if !self.dispatch_durable(true) {
                    tracing::warn!(
                        "detection: alerts of detector partition {} not acknowledged at its \
                         hand-over; submitted again, the hand-over waits",
                        role.partition().index()
                    );
                    return false;
                }
            }
            role.set_detecting(false);
            lane.reset();
            tracing::warn!(
                "detection: the lease of detector partition {} is {}; this node stops \
                 detecting it",
                role.partition().index(),
                if voluntary {
                    "handed over"
                } else {
                    "lost (or held again at a new epoch: taken over again)"
                }
            );
            return false;
        }
        if held.is_none() {
            return false;
        }
        // The longest correlation window (bounded): re-read so the windows hold what the
        // previous detector's held.
        let window = self
            .rules()
            .set
            .correlations()
            .iter()
            .map(|c| c.rule.timespan_ns.max(0) as u64)
            .max()
            .map(|ns| std::time::Duration::from_nanos(ns).min(MAX_REBUILD));
        // New alerts and bans are numbered in this lease epoch's own range (unique across
        // hand-overs and across detector partitions: epochs are reserved cluster-wide).
        let Some(epoch) = role.lease().held() else {
            return false;
        };
        let (next, rebuild, end) = match role.take_over(window) {
            Ok(positions) => positions,
            Err(e) => {
                tracing::warn!("detection: taking over: {e}");
                return false;
            }
        };
        // The behaviour rules' memory as the partition's last checkpoint holds it (valid at
        // `restored_at`): fed only the events from there on, so nothing is learnt twice and
        // nothing missed (the checkpoint is never written before the cursor that covers it).
        let (restored, restored_at) =
            match self.restore_behaviour(role, end, epoch, &mut lane.behaviour_tries) {
                super::behaviour::Restore::Retry => return false,
                super::behaviour::Restore::Empty => (None, 0),
                super::behaviour::Restore::State(engine, at) => (Some(engine), at),
            };
        lane.behaviour_tries = 0;
        // Re-read from the correlations' stretch, or from the checkpoint if it is older (then
        // the stretch before the correlations' feeds only the behaviour rules).
        let start = if restored.is_some() {
            rebuild.min(restored_at)
        } else {
            rebuild
        };
        {
            let mut book = self.book.lock().unwrap_or_else(|p| p.into_inner());
            book.stamp_epoch_in(role.tag(), epoch);
            // As after a restart without state.json: what the previous holder of this
            // partition raised past its cursor is in the book; matches it counted raise
            // nothing again. The window re-read before the cursor only feeds correlation
            // windows and counts into open alerts what they have not counted: it was
            // evaluated before. (Only this partition's alerts say how far it got: another
            // partition's progress says nothing of this one's.)
            // An alert event claiming to have counted past the stream's end is forged (any
            // NATS client can publish to `sys`): it must not silence the partition.
            let counted = match book.counted_through_in(role.tag()) {
                Some(c) if c > end => {
                    tracing::warn!(
                        "detection: an alert of detector partition {} claims to have counted \
                         stream position {c}, past the stream's end ({end}); ignored",
                        role.partition().index()
                    );
                    0
                }
                c => c.unwrap_or(0),
            };
            let recount = if counted > next { counted } else { 0 };
            let recount = if start < next {
                recount.max(next)
            } else {
                recount
            };
            lane.recount_until = recount;
            lane.seen_through = book.seen_through().unwrap_or(0);
            lane.next_seq = start;
        }
        // Bans its responders decide too (unique across hand-overs, as alert ids; stamped
        // outside the alert book's lock).
        if let Some(decisions) = &self.decisions {
            decisions.stamp_epoch(epoch);
        }
        lane.reset();
        lane.others_from = rebuild;
        lane.behaviour_from = restored_at;
        lane.restored = restored;
        role.behaviour_restart();
        if !role.begin(epoch) {
            tracing::info!(
                "detection: detector partition {} was handed over during its takeover",
                role.partition().index()
            );
            return false;
        }
        tracing::info!(
            "detection: this node detects partition {} of {} now (epoch {epoch}), from stream \
             sequence {} (correlation windows rebuilt from {})",
            role.partition().index(),
            role.partition().count(),
            vigil_cluster::follow::message_of(next),
            vigil_cluster::follow::message_of(rebuild)
        );
        true
    }
}

/// The detector partition an alert event records (none: standalone, one partition).
fn partition_of(e: &Event) -> Option<u32> {
    e.get("vigil.alert.partition")
        .and_then(Value::as_i64)
        .and_then(|p| u32::try_from(p).ok())
}

/// The alert id and triage change an `alert-triaged` event records.
fn triage_of(e: &Event) -> Option<(u64, Triage)> {
    let id = u64::try_from(e.get("vigil.alert.id").and_then(Value::as_i64)?).ok()?;
    let status = Status::parse(e.get_str("vigil.alert.status")?)?;
    let at = e
        .get("vigil.alert.triaged_at")
        .and_then(Value::as_i64)
        .map_or(e.timestamp(), Timestamp::from_nanos);
    Some((
        id,
        Triage {
            status,
            by: e.get_str("user.name").unwrap_or("").to_owned(),
            at,
            comment: e.get_str("vigil.alert.comment").unwrap_or("").to_owned(),
        },
    ))
}
