//! Evaluating a rule set over an event stream, in order: single-event rules grouped by the
//! event's main entity, then the correlations over the matches. `vigil serve` and `vigil hunt`
//! both evaluate through this, so the same events give the same alerts.

use vigil_event::{Event, Timestamp, Value, dataset};

use crate::alert::{Level, RuleInfo as AlertRule};
use crate::correlate::{CorrelationEngine, Limits};
use crate::rule::RuleMeta;
use crate::ruleset::{RuleSet, Scratch};

/// The alert's view of a rule: id (Sigma `id`, else `name`, else the title), title, level, tags.
pub fn alert_rule(meta: &RuleMeta) -> AlertRule {
    AlertRule {
        id: meta
            .id
            .clone()
            .or_else(|| meta.name.clone())
            .unwrap_or_else(|| meta.title.clone()),
        title: meta.title.clone(),
        level: Level::parse(meta.level.as_deref().unwrap_or("medium")),
        tags: meta.tags.clone(),
    }
}

/// The group of a single-event rule's alert: the event's main entity — `source.ip` if present,
/// else `user.name`, else `host.name` (DESIGN §7) — or nothing.
pub fn main_entity(event: &Event) -> Vec<(String, String)> {
    for field in ["source.ip", "user.name", "host.name"] {
        if let Some(v) = event.get(field)
            && !matches!(v, Value::Null)
        {
            return vec![(field.to_string(), v.to_string())];
        }
    }
    Vec::new()
}

/// What one event raised: a rule (or correlation), the alert group, and the time to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Raised {
    /// The rule or correlation.
    pub rule: AlertRule,
    /// The alert group.
    pub group: Vec<(String, String)>,
    /// Event time (a correlation: its newest event).
    pub time: Timestamp,
}

/// Scratch memory and correlation windows for evaluating one rule set over a stream.
pub struct Evaluator {
    scratch: Scratch,
    engine: CorrelationEngine,
    /// Rule matches so far (alerting or not).
    pub matches: u64,
}

impl Evaluator {
    /// An evaluator for `set` (correlation state bounded by `limits`).
    pub fn new(set: &RuleSet, limits: Limits) -> Evaluator {
        Evaluator {
            scratch: Scratch::new(set),
            engine: CorrelationEngine::new(set, limits),
            matches: 0,
        }
    }

    /// The correlation engine (for its counters).
    pub fn correlations(&self) -> &CorrelationEngine {
        &self.engine
    }

    /// Evaluates the next event of the stream. Vigil's own alert events are skipped (they are
    /// not evidence).
    pub fn evaluate(&mut self, set: &RuleSet, event: &Event) -> Vec<Raised> {
        if event.is_dataset(dataset::VIGIL_ALERT) {
            return Vec::new();
        }
        let matched = set.matches_with(event, &mut self.scratch);
        if matched.is_empty() {
            return Vec::new();
        }
        let matched = matched.to_vec();
        self.evaluate_matched(set, event, &matched)
    }

    /// The second half of [`Evaluator::evaluate`], for an event whose single-event matches
    /// (`matched`, from [`RuleSet::matches_with`]) were found elsewhere — on another thread,
    /// as `vigil hunt` does: alerts of the matched rules, then the correlations, in stream
    /// order. An event that matched nothing changes nothing and need not be passed.
    pub fn evaluate_matched(
        &mut self,
        set: &RuleSet,
        event: &Event,
        matched: &[crate::RuleId],
    ) -> Vec<Raised> {
        if matched.is_empty() || event.is_dataset(dataset::VIGIL_ALERT) {
            return Vec::new();
        }
        self.matches += matched.len() as u64;
        let mut out = Vec::new();
        for &id in matched {
            if let Some(info) = set.rule(id)
                && info.generate
            {
                let mut rule = alert_rule(&info.meta);
                rule.level = crate::criticality::raise(rule.level, event);
                out.push(Raised {
                    rule,
                    group: main_entity(event),
                    time: event.timestamp(),
                });
            }
        }
        for hit in self.engine.observe(set, event, matched) {
            if let Some(c) = set.correlations().get(hit.correlation) {
                let mut rule = alert_rule(&c.rule.meta);
                rule.level = crate::criticality::raise(rule.level, event);
                out.push(Raised {
                    rule,
                    group: hit.group,
                    time: hit.last,
                });
            }
        }
        out
    }
}
