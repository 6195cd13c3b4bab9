//! # vigil-ingest: the one door to the ledger
//!
//! Every event that enters the ledger goes through [`pipeline::Ingest`]: redaction with the
//! operator's configuration, the in-flight bound, the counters of `/metrics`
//! ([`metrics::Metrics`]) and the durability answer. [`idempotency`] keeps the keys of
//! `Idempotency-Key` batches so a sender's retry is stored once. [`decode`] holds the HTTP
//! routes' wire formats (HEC, `_bulk`, NDJSON) as pure functions. [`logsource`] sets the
//! logsource a source declares by configuration.
#![deny(missing_docs)]

pub mod batch;
pub mod decode;
pub mod door;
pub mod drill;
pub mod idempotency;
pub mod log;
pub mod logsource;
pub mod metrics;
pub mod origin;
pub mod pipeline;

pub use batch::Batch;
pub use door::Door;
pub use log::{Durability, EventLog, NodeLog};
pub use origin::{Listener, Origin};
pub use pipeline::{Ingest, IngestError, Pending};
