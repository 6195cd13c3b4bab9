//! The ban book of a cluster node: kept by the decision events every node reads from the
//! shared `sys` shard, so every node's CrowdSec endpoint streams the same decisions.

use vigil_event::Event;

use super::{DecisionBook, DecisionService, Net, Responder};

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
        }
    }

    /// Applies decision events read from the shared `sys` shard (cluster mode; other events
    /// are skipped, and a decision the book holds already — this node's own — is not applied
    /// twice). Returns how many changed the book.
    pub fn apply_events(&self, events: &[Event]) -> usize {
        self.with(|b| events.iter().filter(|e| b.apply_event(e)).count())
    }
}
