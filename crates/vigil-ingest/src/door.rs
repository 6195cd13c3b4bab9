//! What Vigil's own writers (the detector, the ban book) need of the one door, as a trait
//! object: submit own events, know the durable end, follow the durable events. Every
//! [`Ingest`] is one, whatever [`EventLog`] it writes into, so the same detector and ban book
//! run over the local ledger (standalone) or over the replicated stream (cluster mode, where
//! there is no local ledger to follow and the events come from JetStream instead).

use vigil_event::Event;
use vigil_ledger::{LedgerError, LedgerReader};

use crate::{EventLog, Ingest, NodeLog, Origin, Pending};

/// The one door as Vigil's own writers see it ([`Ingest`] behind a `dyn`).
pub trait Door: Send + Sync {
    /// [`Ingest::submit`]: hands own events to the door without waiting.
    fn submit_own(&self, events: Vec<Event>, origin: Origin) -> Pending;

    /// One past the last durable sequence number of the log behind the door.
    fn durable_end(&self) -> u64;

    /// A reader of the durable events ([`EventLog::follower`]); an error where the log is
    /// not local (cluster mode).
    fn follower(&self) -> Result<LedgerReader, LedgerError>;
}

impl Door for Ingest<NodeLog> {
    fn submit_own(&self, events: Vec<Event>, origin: Origin) -> Pending {
        self.submit(events, origin)
    }

    fn durable_end(&self) -> u64 {
        self.ledger().durable_end()
    }

    fn follower(&self) -> Result<LedgerReader, LedgerError> {
        self.ledger().reader()
    }
}
