//! The ban book of a cluster node: kept by the decision events every node reads from the
//! shared `sys` shard, so every node's CrowdSec endpoint streams the same decisions.

use vigil_event::Event;

use super::{Decision, DecisionBook, DecisionService, Net, Responder};

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

    /// The highest id the book holds below the first detector epoch's range (0 if none): a
    /// cluster numbers its bans by hand there, from a cluster-wide counter
    /// ([`DecisionService::ban_by_hand_numbered`]).
    pub fn highest_by_hand_id(&self) -> u64 {
        self.decisions
            .range(..DECISION_IDS_PER_EPOCH)
            .next_back()
            .map_or(0, |(id, _)| *id)
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

    /// Cluster mode: a ban by hand numbered `id`, an id the caller reserved cluster-wide (a
    /// counter in the cluster's state bucket), so that bans made by hand on two nodes at the
    /// same instant never share an id (the book's own counter only knows the bans this node
    /// has applied so far). `id` must lie below the detectors' epoch ranges
    /// ([`DECISION_IDS_PER_EPOCH`]). `None`, and nothing banned, when `id` is out of that
    /// range or the book holds it already: reserve another.
    pub fn ban_by_hand_numbered(
        &self,
        id: u64,
        value: &str,
        duration: std::time::Duration,
        reason: &str,
        by: &str,
    ) -> Option<Result<Decision, super::DecisionError>> {
        let net = match Net::parse(value) {
            Ok(net) => net,
            Err(e) => return Some(Err(e)),
        };
        let now = vigil_event::Timestamp::now();
        let d = self.with(|b| {
            if id == 0 || id >= DECISION_IDS_PER_EPOCH || b.decisions.contains_key(&id) {
                return None;
            }
            // `ban` numbers a ban without an alert with the book's counter: lend it `id`.
            let counter = b.next_id;
            b.next_id = id;
            let banned = b.ban(net, duration, duration, reason, None, by, now);
            b.next_id = counter.max(b.next_id);
            Some(banned)
        })?;
        Some(d.inspect(|d| {
            self.record(
                vec![d.to_event("ban", &format!("by hand: {reason}"), now)],
                false,
            )
        }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn service(dir: &std::path::Path) -> DecisionService {
        let (ledger, _) =
            vigil_ledger::Ledger::open(dir, vigil_ledger::LedgerConfig::default()).unwrap();
        let door = Arc::new(vigil_ingest::Ingest::new(
            vigil_ingest::NodeLog::from(ledger),
            vigil_parse::redact::Redactor::disabled(),
            Arc::default(),
        ));
        DecisionService::shared(Vec::new(), Vec::new(), door)
    }

    #[test]
    fn a_ban_by_hand_takes_the_reserved_id_and_never_one_held_or_out_of_range() {
        let dir = tempfile::tempdir().unwrap();
        let s = service(dir.path());
        let h = Duration::from_secs(3600);
        // Another node's ban by hand, numbered 7, applied here before this node's.
        let other = s
            .ban_by_hand_numbered(7, "192.0.2.1", h, "other node", "alice")
            .unwrap()
            .unwrap();
        assert_eq!(other.id, 7);
        assert_eq!(s.read(|b| b.highest_by_hand_id()), 7);
        // This node's reserved id 8 is used as given, not the book's own counter.
        let mine = s
            .ban_by_hand_numbered(8, "192.0.2.2", h, "this node", "bob")
            .unwrap()
            .unwrap();
        assert_eq!(mine.id, 8);
        // An id the book holds, 0, and an id of a detector epoch's range ban nothing.
        for id in [7, 0, DECISION_IDS_PER_EPOCH, 3 * DECISION_IDS_PER_EPOCH + 1] {
            assert!(
                s.ban_by_hand_numbered(id, "192.0.2.3", h, "r", "bob")
                    .is_none()
            );
        }
        assert!(s.read(|b| {
            b.active_on(
                &Net::parse("192.0.2.3").unwrap(),
                vigil_event::Timestamp::now(),
            )
            .is_none()
        }));
        // Bad input is still a typed refusal, and a banned network stays refused.
        assert!(matches!(
            s.ban_by_hand_numbered(9, "not an address", h, "r", "bob"),
            Some(Err(crate::decisions::DecisionError::NotANetwork { .. }))
        ));
        assert!(matches!(
            s.ban_by_hand_numbered(9, "192.0.2.2", h, "r", "bob"),
            Some(Err(crate::decisions::DecisionError::AlreadyBanned {
                id: 8,
                ..
            }))
        ));
        // Ids above the by-hand range do not count as by-hand ids.
        s.stamp_epoch(2);
        assert_eq!(s.read(|b| b.highest_by_hand_id()), 8);
    }
}
