//! `[[report]]`: a compliance report computed on a schedule and sent through `[[notify]]`
//! entries (the server's `report_schedule` runs them; `docs/compliance.md`).

use serde::{Deserialize, Serialize};

use crate::Duration;

/// `[[report]]`: one scheduled compliance report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSection {
    /// A name for logs, the ledger and its schedule's state [default: FRAMEWORK-N].
    pub name: Option<String>,
    /// The framework: `pci-dss`, `hipaa`, `iso27001` or `soc2`.
    pub framework: String,
    /// How long a period each report covers, ending when it runs [default: 7d].
    #[serde(default = "default_period")]
    pub period: Duration,
    /// How often it runs [default: 7d]; the first run is at the first start with it.
    #[serde(default = "default_period")]
    pub every: Duration,
    /// Only events this search selects count (Vigil's own always do).
    pub scope: Option<String>,
    /// The `[[notify]]` entries (by name) it is sent to: email attaches the HTML page, a
    /// webhook receives the JSON report, syslog a one-line summary with the digest.
    pub notify: Vec<String>,
}

fn default_period() -> Duration {
    Duration::secs(7 * 86_400)
}
