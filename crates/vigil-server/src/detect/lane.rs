//! A detector's lane: what one detector partition evaluates with (its reader, its evaluator
//! and correlation windows, its cursor). Standalone runs one lane over the ledger; a cluster
//! node has one lane per detector partition, each active while the node holds that
//! partition's lease, all sharing the node's rules, alert book and responders.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use vigil_detect::Evaluator;

use super::{DetectService, EventSource};
use crate::cluster::detect::ClusterRole;

/// One detector partition's evaluation state (owned by the detector's thread).
pub(super) struct Lane {
    /// Cluster mode: the partition's lease and stream (none standalone).
    pub(super) role: Option<Arc<ClusterRole>>,
    /// Where events come from (opened when the lane starts evaluating).
    pub(super) reader: Option<Box<dyn EventSource>>,
    /// The evaluator (rules' key, evaluator): correlation windows and behaviour state.
    pub(super) scratch: Option<(usize, Evaluator)>,
    /// The next position to evaluate.
    pub(super) next_seq: u64,
    /// Positions below this were evaluated before the book was rebuilt (or the lane took
    /// over): their matches only count into open alerts that have not counted them (0: none).
    pub(super) recount_until: u64,
    /// Positions below this may have been counted by an alert of the book (one past the
    /// latest `last_seq`): a match there raises nothing if an alert of its rule and group,
    /// even a closed one, counted it.
    pub(super) seen_through: u64,
    /// Positions below this do not feed the behaviour rules: the state restored at a takeover
    /// already holds them (0: every position feeds them).
    pub(super) behaviour_from: u64,
    /// Positions below this feed only the behaviour rules (the takeover's re-read before the
    /// correlation windows' stretch; 0: every position feeds everything).
    pub(super) others_from: u64,
    /// The behaviour state restored at a takeover, adopted when the lane's evaluator is built.
    pub(super) restored: Option<vigil_detect::behaviour::Engine>,
    /// Takeovers retried because a behaviour checkpoint could not be read.
    pub(super) behaviour_tries: u32,
}

impl Lane {
    /// The standalone lane, resuming at `next_seq`.
    pub(super) fn standalone(next_seq: u64, recount_until: u64, seen_through: u64) -> Lane {
        Lane {
            role: None,
            reader: None,
            scratch: None,
            next_seq,
            recount_until,
            seen_through,
            behaviour_from: 0,
            others_from: 0,
            restored: None,
            behaviour_tries: 0,
        }
    }

    /// The lane of a cluster detector partition (idle until its lease is held).
    pub(super) fn cluster(role: Arc<ClusterRole>) -> Lane {
        Lane {
            role: Some(role),
            ..Lane::standalone(0, 0, 0)
        }
    }

    /// What this lane's new alerts record as their partition (none standalone and with one
    /// detector partition).
    pub(super) fn tag(&self) -> Option<u32> {
        self.role.as_ref().and_then(|r| r.tag())
    }

    /// The share of the alert groups this lane keeps.
    pub(super) fn partition(&self) -> vigil_detect::DetectorPartition {
        self.role
            .as_ref()
            .map_or(vigil_detect::DetectorPartition::WHOLE, |r| r.partition())
    }

    /// Forgets the reader and the evaluator (a lost lease, a takeover).
    pub(super) fn reset(&mut self) {
        self.reader = None;
        self.scratch = None;
        self.restored = None;
    }
}

impl DetectService {
    /// One turn of an active lane: opens its reader if needed and evaluates what is new.
    /// Returns how many events it evaluated.
    pub(super) fn turn(&self, lane: &mut Lane) -> u64 {
        if lane.reader.is_none() {
            // Only durable events: never alert (or ban) on a write that is undone.
            lane.reader = match &lane.role {
                None => self
                    .door
                    .follower()
                    .ok()
                    .map(|r| Box::new(r) as Box<dyn EventSource>),
                Some(role) => Some(role.source(lane.next_seq)),
            };
        }
        if lane.reader.is_none() {
            return 0;
        }
        match self.step(lane) {
            Ok(n) => n,
            Err(e) => {
                self.progress.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!("detection: {e}");
                lane.reader = None;
                std::thread::sleep(Duration::from_secs(1));
                0
            }
        }
    }
}
