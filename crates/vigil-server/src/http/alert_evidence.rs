//! An alert's evidence beyond its samples: for a correlation, every event that contributed
//! to it. The book keeps an alert's first matches as samples (a correlation's sample is only the
//! event that completed it), so the contributing events are found again: the search path
//! (`crate::cases::query`) selects the events of the alert's group in its window (from the
//! correlation's timespan before its first match to its last), and each is kept only if one of
//! the rules the correlation counts matches it (`RuleSet::matches`).

#[allow(unused_imports)]
use super::*;

use vigil_detect::ruleset::CorrelationRef;

/// Contributing events read at most.
pub(super) const MAX_CONTRIBUTING: usize = 500;

/// The detection rules a correlation counts, through chains (bounded by the number of
/// correlations, so a cycle cannot loop).
fn counted_rules(set: &vigil_detect::RuleSet, start: usize) -> Vec<vigil_detect::RuleId> {
    let mut rules = Vec::new();
    let mut todo = vec![start];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(i) = todo.pop() {
        if !seen.insert(i) || seen.len() > set.correlations().len() {
            continue;
        }
        for r in &set.correlations()[i].refs {
            match r {
                CorrelationRef::Rule(id) => rules.push(*id),
                CorrelationRef::Correlation(j) => todo.push(*j),
            }
        }
    }
    rules
}

/// Whether `event` has `value` in `field` (as text, or as one item of a list).
fn holds(event: &vigil_event::Event, field: &str, value: &str) -> bool {
    let text = |v: &Value| match v {
        Value::Str(s) => s == value,
        other => other.to_string() == value,
    };
    match event.get(field) {
        Some(Value::List(items)) => items.iter().any(text),
        Some(v) => text(v),
        None => false,
    }
}

/// The events that contributed to correlation alert `alert` (JSON, oldest first, each with
/// `vigil.seq`), and whether the list was cut at [`MAX_CONTRIBUTING`]; `None` when the alert's
/// rule is not a loaded correlation.
pub(super) async fn contributing(
    state: &Shared,
    alert: &vigil_detect::alert::Alert,
) -> Option<(Vec<JsonValue>, bool)> {
    let detect = state.detect.clone()?;
    let loaded = detect.rules();
    let index = loaded
        .set
        .correlations()
        .iter()
        .position(|c| crate::detect::alert_rule(&c.rule.meta).id == alert.rule.id)?;
    let correlation = &loaded.set.correlations()[index];
    let rules = counted_rules(&loaded.set, index);
    // The group's values, on the fields events carry them in (aliased names differ per rule and
    // are left to the rule check below).
    let exact: Vec<&(String, String)> = alert
        .group
        .iter()
        .filter(|(f, _)| !correlation.rule.aliases.contains_key(f))
        .collect();
    // A value holding `*` would be a wildcard in the search: it is left to the exact check
    // below, which every event must pass.
    let terms: Vec<String> = exact
        .iter()
        .filter(|(_, v)| !v.contains('*'))
        .map(|(f, v)| format!("{f}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    let text = if terms.is_empty() {
        "*".to_owned()
    } else {
        terms.join(" ")
    };
    let limits = vigil_query::Limits {
        from: Some(Timestamp::from_nanos(
            alert
                .first_seen
                .as_nanos()
                .saturating_sub(correlation.rule.timespan_ns),
        )),
        to: Some(Timestamp::from_nanos(
            alert.last_seen.as_nanos().saturating_add(1),
        )),
        max_rows: MAX_CONTRIBUTING,
        now: Timestamp::now(),
    };
    let found = crate::cases::query(state, &text, limits).await.ok()?;
    let truncated = found.truncated;
    let events = if state.cluster.is_some() {
        // A cluster's search answers the events themselves (from every shard's owner).
        let mut events = crate::cases::events_of_rows(&found);
        events.sort_by_key(|(_, e)| e.timestamp());
        events
    } else {
        crate::cases::read_events_async(state, crate::cases::seqs_of(&found))
            .await
            .ok()?
    };
    let out = events
        .into_iter()
        .filter(|(_, e)| exact.iter().all(|(f, v)| holds(e, f, v)))
        .filter(|(_, e)| {
            let hits = loaded.set.matches(e);
            hits.iter().any(|h| rules.contains(h))
        })
        .map(|(seq, e)| {
            let mut j = e.to_json();
            j["vigil.seq"] = json!(seq);
            j
        })
        .collect();
    Some((out, truncated))
}
