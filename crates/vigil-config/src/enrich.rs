//! `[intel]` and `[enrich]`: what Vigil adds to events from outside before storing them
//! (docs/intel.md).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Duration;

/// `[intel]`: threat-intelligence indicator feeds, matched at ingest.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct IntelSection {
    /// A threat-intelligence feed (repeatable): a file of indicators — plain list, CSV, STIX 2.1
    /// bundle or MISP event/feed — or a directory of them; reloaded when it changes.
    #[arg(long = "intel", id = "intel_feeds", value_name = "FILE|DIR")]
    pub feeds: Vec<PathBuf>,
    /// Most indicators over all feeds; a feed that would pass it is refused (file only).
    #[arg(skip = 1_000_000usize)]
    pub max_indicators: usize,
}

impl Default for IntelSection {
    fn default() -> Self {
        IntelSection {
            feeds: Vec::new(),
            max_indicators: 1_000_000,
        }
    }
}

/// `[enrich]`: user and host tables and GeoIP/ASN, joined at ingest.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct EnrichSection {
    /// An enrichment table (repeatable): CSV keyed by `user.name`, `host.name`, …, setting
    /// `user.*` or `host.*` fields; reloaded when it changes.
    #[arg(long = "enrich-table", id = "enrich_tables", value_name = "CSV")]
    pub tables: Vec<PathBuf>,
    /// A MaxMind DB file (repeatable: a City and an ASN database) for `source.geo.*` and
    /// `source.as.*`.
    #[arg(long = "geoip", id = "geoip", value_name = "MMDB")]
    pub geoip: Vec<PathBuf>,
    /// Most rows of one table (file only).
    #[arg(skip = 1_000_000usize)]
    pub max_rows: usize,
    /// How often feeds, tables and databases are checked for changes (file only).
    #[arg(skip = Duration::secs(5))]
    pub reload: Duration,
}

impl Default for EnrichSection {
    fn default() -> Self {
        EnrichSection {
            tables: Vec::new(),
            geoip: Vec::new(),
            max_rows: 1_000_000,
            reload: Duration::secs(5),
        }
    }
}
