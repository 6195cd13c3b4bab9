//! Query rules: scheduled pipeline queries whose result rows are alerts.

use std::time::Duration;

use vigil_detect::alert::Level;

/// A query rule: a pipeline query run on a schedule over a recent window; every result row is an
/// alert (grouped by the row's first column when the result has more than one), the threshold
/// rule habit of Splunk and Elastic.
#[derive(Debug, Clone)]
pub struct QueryRule {
    /// Its name (the alert's rule id and title).
    pub name: String,
    /// The pipeline query, e.g. `event.outcome=failure | stats count by source.ip | where count > 20`.
    pub query: String,
    /// How often it runs.
    pub every: Duration,
    /// How far back each run looks.
    pub window: Duration,
    /// Alert level.
    pub level: Level,
    /// Tags (ATT&CK).
    pub tags: Vec<String>,
}

/// The alert groups of a query result: one per row, named by the first column when there are
/// several (`source.ip=203.0.113.5`), else no group.
pub fn query_rule_groups(result: &vigil_query::QueryResult) -> Vec<Vec<(String, String)>> {
    result
        .rows
        .iter()
        .map(|row| {
            if result.columns.len() > 1 {
                vec![(result.columns[0].clone(), row[0].to_string())]
            } else {
                Vec::new()
            }
        })
        .collect()
}
