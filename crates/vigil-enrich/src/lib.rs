//! # vigil-enrich: what Vigil adds to an event before it is stored
//!
//! Pure tables and matching, no threads and no network (the files are read by
//! [`Enricher::reload`], which the server calls on a timer):
//!
//! * **threat intelligence** ([`feed`], [`intel`]): indicator lists — addresses and networks,
//!   domains, URLs, file hashes — from plain lists, CSV, STIX 2.1 bundles and MISP events or
//!   feeds, matched in a fixed number of hash lookups per event; a match adds ECS
//!   `threat.enrichments`, `threat.indicator.*` and Vigil's own `vigil.intel.matches`, on which
//!   the bundled rule [`BUNDLED_RULE`] alerts;
//! * **enrichment tables** ([`table`]): user → department, roles; host → owner, criticality;
//!   from CSV;
//! * **GeoIP/ASN** ([`geo`]): `source.geo.*`, `source.as.*` (and `destination.*`, …) from a
//!   user-supplied MaxMind DB.
//!
//! The ingest pipeline (`vigil-ingest`) runs [`Snapshot::enrich`] on every event from outside
//! before the ledger, so the enrichment is proven with the event. The names enrichment writes
//! belong to Vigil: a sender's own `threat.indicator.*`, table columns or geo fields are moved
//! under `external.` first, so a sender cannot forge a match, a department or a criticality.
//! Every reader is bounded (file size, indicators, rows, JSON depth) and refuses a bad file
//! with a reason, the previous contents staying in force.
#![deny(missing_docs)]

pub mod enricher;
pub mod feed;
pub mod fields;
pub mod geo;
pub mod indicator;
pub mod intel;
pub mod table;

pub use enricher::{Enricher, Settings, Snapshot, SourceStatus, Stats};
pub use indicator::{Indicator, Kind};
pub use intel::IntelSet;
pub use table::Table;

/// Default cap on indicators over all feeds.
pub const DEFAULT_MAX_INDICATORS: usize = 1_000_000;
/// Default cap on rows of one table.
pub const DEFAULT_MAX_ROWS: usize = 1_000_000;

/// The bundled Sigma rule (file name, text): an event from outside matched a threat
/// intelligence indicator. It reads `vigil.intel.matches`, which only Vigil writes.
pub const BUNDLED_RULE: (&str, &str) = (
    "vigil-intel.yml",
    r#"title: Threat intelligence indicator matched
id: 4f1d2c3b-7a6e-4b0a-9c1d-76696769c0a1
name: vigil_intel_match
status: stable
description: >
    An event carries an address, domain, URL or file hash listed by a configured threat
    intelligence feed ([intel] feeds). The event's threat.enrichments name the indicator, its
    feed and the field that matched.
logsource: {product: vigil, service: ingest}
detection:
    selection:
        vigil.intel.matches|gte: 1
    condition: selection
fields: [threat.indicator.type, threat.feed.name, vigil.intel.indicator]
level: high
tags: [attack.command_and_control]
"#,
);
