//! The small trait the pipeline writes into: append with a durability answer. The log a node
//! writes into is a [`NodeLog`]: its local [`vigil_ledger::Ledger`] (standalone), or the
//! cluster's replicated stream (cluster mode, `vigil_server::cluster::door`).

use std::ops::Range;
use std::sync::Arc;

use vigil_event::Event;
use vigil_ledger::{Ledger, LedgerError, LedgerReader};

/// The answer to one append: the events' sequence numbers once durable, or why not.
pub type Durability = Result<Range<u64>, LedgerError>;

/// Called once with the [`Durability`] of an append.
pub type OnDurable = Box<dyn FnOnce(Durability) + Send + 'static>;

/// An append-only log of events: what the ingest pipeline writes into.
///
/// Implementations must store the events of one [`EventLog::append`] whole or not at all and
/// call `done` exactly once, after the events are durable (they survive a crash and will never
/// be undone) or with the error. `append` may block while the log's queue is full
/// (backpressure), never for durability; it may be called on an async runtime's worker.
///
/// A local ledger gives one append consecutive sequence numbers; the cluster's stream gives
/// each message of an append its stream sequence (the range then spans the first and last).
/// Reading back is not part of the trait: a stream's events are read from the shards.
pub trait EventLog: Send + Sync + 'static {
    /// Queues `events`; `done` answers when they are durable.
    fn append(&self, events: &[Event], done: OnDurable);

    /// One past the last durable sequence number (for a stream: its last acknowledged
    /// sequence + 1).
    fn durable_end(&self) -> u64;

    /// Why the log cannot store events right now (it retries by itself), if it cannot.
    fn degraded(&self) -> Option<String> {
        None
    }
}

impl EventLog for Ledger {
    fn append(&self, events: &[Event], done: OnDurable) {
        self.append_with(events, done);
    }

    fn durable_end(&self) -> u64 {
        self.end_seq()
    }

    fn degraded(&self) -> Option<String> {
        Ledger::degraded(self)
    }
}

/// The log a node's one door writes into: the local ledger (standalone, the default: its
/// appends are a direct call) or the cluster's stream (cluster mode).
#[derive(Clone)]
pub enum NodeLog {
    /// The node's own ledger.
    Local(Ledger),
    /// The cluster's replicated event stream.
    Stream(Arc<dyn EventLog>),
}

impl From<Ledger> for NodeLog {
    fn from(ledger: Ledger) -> NodeLog {
        NodeLog::Local(ledger)
    }
}

/// What the parts that read the local ledger get in cluster mode, until they read shards.
const NOT_IN_CLUSTER_MODE: &str = "not available in cluster mode yet";

impl NodeLog {
    /// The local ledger, if this node writes into one (standalone).
    pub fn local(&self) -> Option<&Ledger> {
        match self {
            NodeLog::Local(ledger) => Some(ledger),
            NodeLog::Stream(_) => None,
        }
    }

    /// A reader of the local ledger that never sees past its durable end; in cluster mode
    /// [`LedgerError::Unavailable`] (the events are in the shards).
    pub fn reader(&self) -> Result<LedgerReader, LedgerError> {
        match self {
            NodeLog::Local(ledger) => ledger.reader(),
            NodeLog::Stream(_) => Err(LedgerError::Unavailable(format!(
                "reading the ledger: {NOT_IN_CLUSTER_MODE}"
            ))),
        }
    }

    /// A reader of the local ledger, or `None` on a cluster node (which has no node ledger).
    pub fn local_reader(&self) -> Result<Option<LedgerReader>, LedgerError> {
        self.local().map(Ledger::reader).transpose()
    }

    /// One past the last durable sequence number of the local ledger (of the stream in
    /// cluster mode).
    pub fn end_seq(&self) -> u64 {
        self.durable_end()
    }

    /// Why the log cannot store events right now, if it cannot.
    pub fn degraded(&self) -> Option<String> {
        EventLog::degraded(self)
    }

    /// Events covered by the local ledger's last signed checkpoint (0 in cluster mode).
    pub fn checkpointed_size(&self) -> u64 {
        self.local().map_or(0, Ledger::checkpointed_size)
    }
}

impl EventLog for NodeLog {
    #[inline]
    fn append(&self, events: &[Event], done: OnDurable) {
        match self {
            NodeLog::Local(ledger) => ledger.append_with(events, done),
            NodeLog::Stream(stream) => stream.append(events, done),
        }
    }

    fn durable_end(&self) -> u64 {
        match self {
            NodeLog::Local(ledger) => ledger.end_seq(),
            NodeLog::Stream(stream) => stream.durable_end(),
        }
    }

    fn degraded(&self) -> Option<String> {
        match self {
            NodeLog::Local(ledger) => ledger.degraded(),
            NodeLog::Stream(stream) => stream.degraded(),
        }
    }
}
