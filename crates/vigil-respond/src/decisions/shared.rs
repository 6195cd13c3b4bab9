//! The ban book of a cluster node: kept by the decision events every node reads from the
//! shared `sys` shard, so every node's CrowdSec endpoint streams the same decisions.

use vigil_event::Event;

use super::{DecisionBook, DecisionService, Net, Responder};

/// Ban decision ids one detector lease epoch may hand out in cluster mode: the detector of
/// epoch `E` numbers the bans its responders decide from `E × DECISION_IDS_PER_EPOCH + 1`
/// (as alert ids, `vigil_detect::alert::ALERT_IDS_PER_EPOCH`), so a deposed detector's ban
/// published after its successor took over never shares an id with the successor's.
pub const DECISION_IDS_PER_EPOCH: u64 = 1_000_000_000;

impl DecisionBook {
    /// Cluster mode: this node's detector holds the detector lease at `epoch`; the bans its
    /// responders decide from now on take ids in that epoch's own range, from
    /// `epoch × DECISION_IDS_PER_EPOCH + 1` (after any id of the range the book already
    /// holds). That counter is this node's own: ids other nodes' bans take (replayed from
    /// `sys`) never move it into another epoch's range. Bans by hand keep the book's shared
    /// counter (after every id it knows). Standalone books are never stamped.
    pub fn stamp_epoch(&mut self, epoch: u64) {
        let floor = epoch
            .saturating_mul(DECISION_IDS_PER_EPOCH)
            .saturating_add(1);
        let ceiling = floor.saturating_add(DECISION_IDS_PER_EPOCH - 1);
        let after = self
            .decisions
            .range(floor..ceiling)
            .next_back()
            .map_or(floor, |(id, _)| id + 1);
        self.epoch_next = Some(after);
    }

    /// The next id of the stamped epoch that no decision of the book holds.
    pub(super) fn take_epoch_id(&mut self) -> u64 {
        let mut id = self.epoch_next.unwrap_or(1).max(1);
        while self.decisions.contains_key(&id) {
            id += 1;
        }
        self.epoch_next = Some(id + 1);
        id
    }
}

impl DecisionService {
    /// The book of a cluster node (cluster mode): empty at start, kept by the decision events
    /// of the shared `sys` shard ([`Self::apply_events`]), never saved to a file (the stream
    /// holds it). Its decisions still go through `door` (to `sys`); expiry ends decisions
    /// on every node alike at their end time and records nothing (each node would record the
    /// same end).
    pub fn shared(
        responders: Vec<Responder>,
        allowlist: Vec<Net>,
        door: std::sync::Arc<dyn vigil_ingest::Door>,
    ) -> DecisionService {
        let book = DecisionBook {
            next_id: 1,
            allowlist,
            ..DecisionBook::default()
        };
        DecisionService {
            book: std::sync::Mutex::new(book),
            path: None,
            responders,
            ledger: door,
            submitted: std::sync::Mutex::new(Vec::new()),
            unsaved: std::sync::Mutex::new((false, std::time::Instant::now())),
            drills: super::drill::DrillDecisions::default(),
        }
    }

    /// Cluster mode: this node's detector took over at lease `epoch` (see
    /// [`DecisionBook::stamp_epoch`]).
    pub fn stamp_epoch(&self, epoch: u64) {
        self.with(|b| b.stamp_epoch(epoch));
    }

    /// Applies decision events read from the shared `sys` shard (cluster mode; other events
    /// are skipped, and a decision the book holds already — this node's own — is not applied
    /// twice). Returns how many changed the book.
    pub fn apply_events(&self, events: &[Event]) -> usize {
        self.with(|b| events.iter().filter(|e| b.apply_event(e)).count())
    }
}
