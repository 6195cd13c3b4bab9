//! Evaluating a rule set over an event stream, in order: single-event rules grouped by the
//! event's main entity, then the correlations over the matches. `vigil serve` and `vigil hunt`
//! both evaluate through this, so the same events give the same alerts.

use vigil_event::{Event, Timestamp, Value, dataset, field};

use crate::alert::{Level, RuleInfo as AlertRule};
use crate::correlate::{CorrelationEngine, Limits};
use crate::partition::DetectorPartition;
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

/// Adds the event's drill run to an alert group: a drill's alerts are their own (the alert
/// book keys alerts by rule and group), never merged with real alerts of the same entity, and
/// they say they are drills ([`crate::alert::Alert::drill_run`]).
pub fn with_drill_run(group: &mut Vec<(String, String)>, event: &Event) {
    if let Some(run) = event.drill_run() {
        group.push((field::VIGIL_DRILL_RUN.to_owned(), run.to_owned()));
    }
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
    /// A behaviour rule's reason: the baseline and the value that broke it.
    pub explain: Option<crate::behaviour::Explanation>,
}

/// Scratch memory and correlation windows for evaluating one rule set over a stream.
pub struct Evaluator {
    scratch: Scratch,
    engine: CorrelationEngine,
    behaviour: crate::behaviour::Engine,
    /// Rule matches so far (alerting or not).
    pub matches: u64,
    /// Matches dropped by an `exclude` exception.
    pub excluded: u64,
    /// Alerts not raised because of a `suppress` exception.
    pub suppressed: u64,
    /// The share of the alert groups this evaluator keeps (all of them unless partitioned).
    partition: DetectorPartition,
    /// Whether events feed the behaviour rules ([`Evaluator::feed`]).
    feed_behaviour: bool,
    /// Whether events feed the single-event rules and the correlations ([`Evaluator::feed`]).
    feed_others: bool,
}

impl Evaluator {
    /// An evaluator for `set` (correlation state bounded by `limits`).
    pub fn new(set: &RuleSet, limits: Limits) -> Evaluator {
        Evaluator {
            scratch: Scratch::new(set),
            engine: CorrelationEngine::new(set, limits),
            behaviour: crate::behaviour::Engine::new(set),
            matches: 0,
            excluded: 0,
            suppressed: 0,
            partition: DetectorPartition::WHOLE,
            feed_behaviour: true,
            feed_others: true,
        }
    }

    /// Chooses what the next events feed (both, by default): the behaviour rules' memory,
    /// and the rest (single-event rules' alerts and the correlation windows). A cluster
    /// detector taking a partition over re-reads a stretch of the stream its restored state
    /// already holds: the part of it before the behaviour checkpoint must not be learnt twice,
    /// and the part before the correlation re-read must not enter the windows.
    pub fn feed(&mut self, behaviour: bool, others: bool) {
        self.feed_behaviour = behaviour;
        self.feed_others = others;
    }

    /// An evaluator that keeps only `partition`'s share of the alert groups (cluster mode,
    /// see [`crate::partition`]): a single-event rule's alert only when its (rule id, main
    /// entity) hashes to it, a behaviour rule's hit only when its (rule id, group) does, a correlation's group only when its (correlation id, `group-by`
    /// values) does, a chained correlation only in partition 0. `K` evaluators of the `K`
    /// partitions over the same stream raise, together, exactly what one whole evaluator
    /// raises, each once.
    pub fn partitioned(set: &RuleSet, limits: Limits, partition: DetectorPartition) -> Evaluator {
        let mut e = Evaluator::new(set, limits);
        e.engine.partition(set, partition);
        e.partition = partition;
        e
    }

    /// The share of the alert groups this evaluator keeps.
    pub fn partition(&self) -> DetectorPartition {
        self.partition
    }

    /// The behaviour rules' memory.
    pub fn behaviour(&self) -> &crate::behaviour::Engine {
        &self.behaviour
    }

    /// The behaviour rules' memory, to rebuild or backfill it ([`Engine::learn`]).
    ///
    /// [`Engine::learn`]: crate::behaviour::Engine::learn
    pub fn behaviour_mut(&mut self) -> &mut crate::behaviour::Engine {
        &mut self.behaviour
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
        // Exceptions (crate::exceptions): an excluded event does not match the rule at all,
        // so it raises no alert and counts into no correlation; then suppressed groups raise
        // nothing. Expiry is by the wall clock.
        let exceptions = set.exceptions();
        let now = if exceptions.is_empty() {
            Timestamp::default()
        } else {
            Timestamp::now()
        };
        let kept: std::borrow::Cow<'_, [crate::RuleId]> = if exceptions.is_empty() {
            std::borrow::Cow::Borrowed(matched)
        } else {
            let kept: Vec<crate::RuleId> = matched
                .iter()
                .copied()
                .filter(|&id| {
                    set.rule(id).is_none_or(|info| {
                        // The alert's rule id (as `alert_rule` makes it), without allocating.
                        let m = &info.meta;
                        let rid = m.id.as_deref().or(m.name.as_deref()).unwrap_or(&m.title);
                        exceptions.excludes(rid, event, now).is_none()
                    })
                })
                .collect();
            self.excluded += (matched.len() - kept.len()) as u64;
            if kept.is_empty() {
                return Vec::new();
            }
            std::borrow::Cow::Owned(kept)
        };
        let matched: &[crate::RuleId] = &kept;
        self.matches += matched.len() as u64;
        let mut out = Vec::new();
        for &id in matched {
            if let Some(b) = set.behaviour_of(id) {
                if !self.feed_behaviour {
                    continue;
                }
                // Every partition observes every event (the baselines are the same
                // everywhere); only the owner of the hit's (rule id, group) raises it, as for a
                // single-event rule's alert group.
                if let Some(hit) = self.behaviour.observe(set, b, event, true)
                    && let Some(info) = set.rule(id)
                {
                    let rule = alert_rule(&info.meta);
                    let mut group = hit.group;
                    with_drill_run(&mut group, event);
                    if !self
                        .partition
                        .keeps(&rule.id, group.iter().map(|(_, v)| v.as_str()))
                    {
                        continue;
                    }
                    out.push(Raised {
                        rule,
                        group,
                        time: event.timestamp(),
                        explain: Some(hit.explain),
                    });
                }
                continue;
            }
            if let Some(info) = set.rule(id)
                && info.generate
                && self.feed_others
            {
                let mut rule = alert_rule(&info.meta);
                rule.level = crate::criticality::raise(rule.level, event);
                let mut group = main_entity(event);
                with_drill_run(&mut group, event);
                if !self
                    .partition
                    .keeps(&rule.id, group.iter().map(|(_, v)| v.as_str()))
                {
                    continue;
                }
                out.push(Raised {
                    rule,
                    group,
                    time: event.timestamp(),
                    explain: None,
                });
            }
        }
        // The correlation windows (not fed while a takeover re-reads what they need not hold).
        let hits = if self.feed_others {
            self.engine.observe(set, event, matched)
        } else {
            Vec::new()
        };
        for hit in hits {
            if let Some(c) = set.correlations().get(hit.correlation) {
                let mut rule = alert_rule(&c.rule.meta);
                rule.level = crate::criticality::raise(rule.level, event);
                out.push(Raised {
                    rule,
                    group: hit.group,
                    time: hit.last,
                    explain: None,
                });
            }
        }
        if !exceptions.is_empty() {
            let before = out.len();
            out.retain(|r| exceptions.suppresses(&r.rule.id, &r.group, now).is_none());
            self.suppressed += (before - out.len()) as u64;
        }
        out
    }
}
