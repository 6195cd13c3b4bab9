//! `[drills]`: incident-response drills run on a schedule (`vigil drill`, docs/drills.md).

use serde::{Deserialize, Serialize};

use crate::Duration;

/// `[drills]`: scenarios run on a schedule; a failed drill raises an alert (file only).
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct DrillsSection {
    /// Scenario names run on the schedule, one after another (none: no schedule).
    #[arg(skip)]
    pub scenarios: Vec<String>,
    /// How often the scheduled scenarios run.
    #[arg(skip = Duration::secs(86_400))]
    pub every: Duration,
    /// How long a drill waits for its alerts, notifications and bans before it reports what
    /// is missing.
    #[arg(skip = Duration::secs(60))]
    pub timeout: Duration,
}

impl Default for DrillsSection {
    fn default() -> Self {
        DrillsSection {
            scenarios: Vec::new(),
            every: Duration::secs(86_400),
            timeout: Duration::secs(60),
        }
    }
}
