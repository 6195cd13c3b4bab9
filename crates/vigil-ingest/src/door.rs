//! What Vigil's own writers (the detector, the ban book) need of the one door, as a trait
//! object: submit own events, know the durable end, follow the durable events. Every
//! [`Ingest`] is one, whatever [`EventLog`] it writes into, so the same detector and ban book
//! run over the local ledger (standalone) or over the replicated stream (cluster mode, where
//! there is no local ledger to follow and the events come from JetStream instead).

use std::time::Duration;

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

    /// Waits until the durable end is past `seq` or `timeout` has elapsed, and returns the
    /// durable end: woken by the local ledger's group commit; where the log cannot signal
    /// (cluster mode), a plain sleep of `timeout`, the poll it replaces.
    fn wait_durable(&self, seq: u64, timeout: Duration) -> u64 {
        std::thread::sleep(timeout);
        let _ = seq;
        self.durable_end()
    }
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

    fn wait_durable(&self, seq: u64, timeout: Duration) -> u64 {
        match self.ledger().local() {
            Some(ledger) => ledger.wait_durable(seq, timeout),
            None => {
                std::thread::sleep(timeout);
                self.durable_end()
            }
        }
    }
}
