//! The small trait the pipeline writes into: append with a durability answer, and a reader
//! that follows the durable end. [`vigil_ledger::Ledger`] implements it today; a replicated
//! shard (cluster mode) plugs in the same way.

use std::ops::Range;

use vigil_event::Event;
use vigil_ledger::{Ledger, LedgerError, LedgerReader};

/// The answer to one append: the events' sequence numbers once durable, or why not.
pub type Durability = Result<Range<u64>, LedgerError>;

/// Called once with the [`Durability`] of an append.
pub type OnDurable = Box<dyn FnOnce(Durability) + Send + 'static>;

/// An append-only log of events with a durable end: what the ingest pipeline writes into.
///
/// Implementations must store the events of one [`EventLog::append`] whole or not at all, with
/// consecutive sequence numbers, and call `done` exactly once, after the events are durable
/// (they survive a crash and will never be undone) or with the error. `append` may block while
/// the log's queue is full (backpressure), never for durability.
pub trait EventLog: Send + Sync + 'static {
    /// Queues `events`; `done` answers when they are durable.
    fn append(&self, events: &[Event], done: OnDurable);

    /// One past the last durable sequence number.
    fn durable_end(&self) -> u64;

    /// A reader that never sees past the durable end (and follows it as it grows, after a
    /// `refresh`): what followers (indexing, detection, searches) read.
    fn follower(&self) -> Result<LedgerReader, LedgerError>;
}

impl EventLog for Ledger {
    fn append(&self, events: &[Event], done: OnDurable) {
        self.append_with(events, done);
    }

    fn durable_end(&self) -> u64 {
        self.end_seq()
    }

    fn follower(&self) -> Result<LedgerReader, LedgerError> {
        self.reader()
    }
}
