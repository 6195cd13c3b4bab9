//! # vigil-report: compliance reports computed from the ledger
//!
//! `vigil report pci-dss|hipaa|iso27001|soc2` reads the period's events once into a
//! [`tally::Tally`] (what each source sent, alerts and their triage, Vigil's own audit trail),
//! takes the facts only the edges can read (ledger verification, checkpoints, retention
//! records: [`build::IntegrityFacts`], [`build::RetentionFacts`]), and builds one report per
//! framework from the [`mapping::Mapping`] — which controls exist and what each asks of the
//! logs, as data (`mappings/v1.toml`, overridable). [`html::render`] draws it for people.
//! [`signature`] states the report's signature format and checks a report file's digest.
//! Everything here is pure; the CLI (`crates/vigil/src/report.rs`) does the I/O and signs.
#![deny(missing_docs)]

pub mod build;
pub mod cadence;
pub mod html;
pub mod mapping;
pub mod signature;
pub mod tally;

pub use build::{EnabledRule, IntegrityFacts, Period, RetentionFacts, Status, report};
pub use mapping::{Framework, Logsource, Mapping};
pub use tally::Tally;
