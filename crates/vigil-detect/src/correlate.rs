//! Evaluating Sigma v2 correlations over the stream of rule matches, in event time.
//!
//! For each correlation, state is kept per group (the values of its `group-by` fields, through
//! `aliases` where given): the entries of the sliding window, newest last. An entry is kept while
//! `newest − entry ≤ timespan` (the edge is inclusive); events may arrive slightly out of order
//! and are inserted in time order. After every new entry the condition is evaluated:
//!
//! | type | measure compared with `condition` |
//! |---|---|
//! | `event_count` | entries in the window |
//! | `value_count` | distinct values of `condition.field` in the window |
//! | `value_sum` / `value_avg` | sum / mean of the numeric `condition.field` |
//! | `value_percentile` | share (%) of the window's entries whose field has the new entry's value — `lte: 1` finds values rarer than 1% |
//! | `temporal` | distinct referenced rules in the window (default condition: all of them) |
//! | `temporal_ordered` | the referenced rules appear in the listed order within the window |
//!
//! When the condition holds the correlation fires once and the group's window starts afresh
//! (so a burst is one hit, not one per event), and the hit is fed to correlations that reference
//! this one (chains). Events lacking a `group-by` field (or the measured field) are not counted.
//!
//! Memory is bounded: at most [`Limits::max_groups`] groups per correlation (the least recently
//! seen group is evicted, and counted) and [`Limits::max_entries`] entries per group (the oldest
//! are dropped, and counted). Groups whose window has passed are removed as time moves on.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use vigil_event::{Event, Timestamp, Value, field};

use crate::correlation::CorrelationType;
use crate::partition::DetectorPartition;
use crate::ruleset::{CorrelationRef, RuleId, RuleSet};

/// Bounds on correlation state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Groups kept per correlation.
    pub max_groups: usize,
    /// Entries kept per group.
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_groups: 10_000,
            max_entries: 10_000,
        }
    }
}

/// A correlation that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationHit {
    /// Index in [`RuleSet::correlations`].
    pub correlation: usize,
    /// `(group-by name, value)` pairs.
    pub group: Vec<(String, String)>,
    /// The measure that met the condition (count, distinct count, sum, average, share, or the
    /// number of distinct rules).
    pub value: f64,
    /// Time of the oldest entry in the window.
    pub first: Timestamp,
    /// Time of the newest entry.
    pub last: Timestamp,
    /// Entries in the window when it fired.
    pub events: usize,
}

/// Per-correlation counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CorrelationStats {
    /// Groups currently held.
    pub groups: usize,
    /// Groups evicted because of [`Limits::max_groups`].
    pub evicted_groups: u64,
    /// Entries dropped because of [`Limits::max_entries`].
    pub dropped_entries: u64,
    /// Times fired.
    pub hits: u64,
}

#[derive(Debug, Clone)]
enum Measured {
    None,
    Text(String),
    Number(f64),
}

#[derive(Debug, Clone)]
struct Entry {
    t: i64,
    source: usize,
    value: Measured,
}

#[derive(Debug, Default)]
struct Group {
    entries: VecDeque<Entry>,
    order: (i64, u64),
}

#[derive(Debug, Default)]
struct State {
    groups: HashMap<Vec<String>, Group>,
    lru: BTreeMap<(i64, u64), Vec<String>>,
    serial: u64,
    newest: i64,
    stats: CorrelationStats,
}

/// What a correlation is fed: an event a rule matched, or a hit of a referenced correlation.
enum Item<'a> {
    Event {
        event: &'a Event,
        rule: RuleId,
    },
    Hit {
        hit: &'a CorrelationHit,
        child: usize,
    },
}

/// The correlation engine: feed it every event with the rules it matched.
#[derive(Debug)]
pub struct CorrelationEngine {
    limits: Limits,
    states: Vec<State>,
    /// rule → (correlation, index of the reference).
    by_rule: HashMap<RuleId, Vec<(usize, usize)>>,
    /// correlation → (parent correlation, index of the reference).
    by_corr: Vec<Vec<(usize, usize)>>,
    /// What this engine keeps of each correlation (all of it, unless partitioned).
    keep: Vec<Keep>,
}

/// What a partitioned engine keeps of one correlation ([`CorrelationEngine::partition`]).
#[derive(Debug, Clone)]
enum Keep {
    /// Every group.
    All,
    /// No group (a chain with different `group-by`, kept by partition 0).
    Nothing,
    /// The groups the partition keeps, hashed with this rule id (the correlation's alert
    /// rule id, or its chain's smallest).
    Groups(DetectorPartition, String),
}

impl CorrelationEngine {
    /// An engine for the correlations of `set`.
    pub fn new(set: &RuleSet, limits: Limits) -> CorrelationEngine {
        let n = set.correlations().len();
        let mut by_rule: HashMap<RuleId, Vec<(usize, usize)>> = HashMap::new();
        let mut by_corr = vec![Vec::new(); n];
        for (ci, c) in set.correlations().iter().enumerate() {
            for (ri, r) in c.refs.iter().enumerate() {
                match *r {
                    CorrelationRef::Rule(id) => by_rule.entry(id).or_default().push((ci, ri)),
                    CorrelationRef::Correlation(child) => {
                        if let Some(list) = by_corr.get_mut(child) {
                            list.push((ci, ri));
                        }
                    }
                }
            }
        }
        CorrelationEngine {
            limits: Limits {
                max_groups: limits.max_groups.max(1),
                max_entries: limits.max_entries.max(1),
            },
            states: (0..n).map(|_| State::default()).collect(),
            by_rule,
            by_corr,
            keep: vec![Keep::All; n],
        }
    }

    /// Keeps only `partition`'s share of the correlations' groups (cluster mode, see
    /// [`crate::partition`]): a group of a correlation is kept (counted, and its hit returned)
    /// only by the partition its `group-by` values hash to. A chain (correlations feeding
    /// correlations) whose members all have the same `group-by` hashes by the chain's
    /// smallest alert rule id, so a child's group and its parent's land in one partition; a
    /// chain whose `group-by` differ is kept whole by partition 0.
    /// [`DetectorPartition::WHOLE`] keeps everything.
    pub fn partition(&mut self, set: &RuleSet, partition: DetectorPartition) {
        let n = set.correlations().len();
        // Chains: connected components of the correlation references (union-find).
        let mut root: Vec<usize> = (0..n).collect();
        fn find(root: &mut [usize], mut i: usize) -> usize {
            while root[i] != i {
                root[i] = root[root[i]];
                i = root[i];
            }
            i
        }
        for (child, parents) in self.by_corr.iter().enumerate() {
            for &(parent, _) in parents {
                if child < n && parent < n {
                    let (a, b) = (find(&mut root, child), find(&mut root, parent));
                    root[a] = b;
                }
            }
        }
        let ids: Vec<String> = set
            .correlations()
            .iter()
            .map(|c| crate::evaluate::alert_rule(&c.rule.meta).id)
            .collect();
        for ci in 0..n {
            let component = find(&mut root, ci);
            let members: Vec<usize> = (0..n)
                .filter(|&j| find(&mut root, j) == component)
                .collect();
            let group_by = |j: usize| &set.correlations()[j].rule.group_by;
            let keep = if partition.is_whole() {
                Keep::All
            } else if members.iter().all(|&j| group_by(j) == group_by(ci)) {
                let id = members
                    .iter()
                    .map(|&j| &ids[j])
                    .min()
                    .cloned()
                    .unwrap_or_default();
                Keep::Groups(partition, id)
            } else if partition.keeps_unsplit() {
                Keep::All
            } else {
                Keep::Nothing
            };
            if let Some(k) = self.keep.get_mut(ci) {
                *k = keep;
            }
        }
    }

    /// The rule id a partitioned engine hashes correlation `ci`'s groups by (its own alert
    /// rule id, or its chain's smallest), or `None` when it keeps all or none of its groups.
    pub fn partition_key(&self, ci: usize) -> Option<&str> {
        match self.keep.get(ci)? {
            Keep::Groups(_, id) => Some(id),
            _ => None,
        }
    }

    /// Feeds one event and the rules it matched (from [`RuleSet::matches`]); returns the
    /// correlations that fired, chained ones included.
    pub fn observe(
        &mut self,
        set: &RuleSet,
        event: &Event,
        matched: &[RuleId],
    ) -> Vec<CorrelationHit> {
        let mut out = Vec::new();
        let t = event.timestamp().as_nanos();
        for &rule in matched {
            let Some(targets) = self.by_rule.get(&rule).cloned() else {
                continue;
            };
            for (ci, ri) in targets {
                self.feed(set, ci, ri, &Item::Event { event, rule }, t, &mut out, 0);
            }
        }
        out
    }

    /// Counters of one correlation.
    pub fn stats(&self, correlation: usize) -> CorrelationStats {
        self.states
            .get(correlation)
            .map(|s| CorrelationStats {
                groups: s.groups.len(),
                ..s.stats
            })
            .unwrap_or_default()
    }

    #[allow(clippy::too_many_arguments)]
    fn feed(
        &mut self,
        set: &RuleSet,
        ci: usize,
        ri: usize,
        item: &Item<'_>,
        t: i64,
        out: &mut Vec<CorrelationHit>,
        depth: usize,
    ) {
        if depth > 32 {
            return;
        }
        let Some(hit) = self.update(set, ci, ri, item, t) else {
            return;
        };
        out.push(hit.clone());
        let parents = self.by_corr.get(ci).cloned().unwrap_or_default();
        for (pi, pri) in parents {
            self.feed(
                set,
                pi,
                pri,
                &Item::Hit {
                    hit: &hit,
                    child: ci,
                },
                t,
                out,
                depth + 1,
            );
        }
    }

    fn update(
        &mut self,
        set: &RuleSet,
        ci: usize,
        ri: usize,
        item: &Item<'_>,
        t: i64,
    ) -> Option<CorrelationHit> {
        let corr = set.correlations().get(ci)?;
        let rule = &corr.rule;
        let span = rule.timespan_ns;
        // Group key.
        let mut key = Vec::with_capacity(rule.group_by.len() + 1);
        for name in &rule.group_by {
            key.push(lookup(set, corr, name, item)?);
        }
        // A drill's events count only among themselves: its run is part of every group key,
        // so a drill never completes, nor hides inside, a real correlation.
        let drill = item_drill_run(item);
        if let Some(run) = &drill {
            key.push(run.clone());
        }
        match self.keep.get(ci) {
            Some(Keep::Nothing) => return None,
            Some(Keep::Groups(p, id)) if !p.keeps(id, key.iter().map(String::as_str)) => {
                return None;
            }
            _ => {}
        }
        // Measured value.
        let value = match rule.kind {
            CorrelationType::ValueCount | CorrelationType::ValuePercentile => {
                let mut parts = Vec::with_capacity(rule.fields.len());
                for f in &rule.fields {
                    parts.push(lookup(set, corr, f, item)?);
                }
                Measured::Text(parts.join("\u{1f}"))
            }
            CorrelationType::ValueSum | CorrelationType::ValueAvg => {
                let f = rule.fields.first()?;
                let text = lookup(set, corr, f, item)?;
                let n: f64 = text.trim().parse().ok().filter(|n: &f64| n.is_finite())?;
                Measured::Number(n)
            }
            _ => Measured::None,
        };
        let limits = self.limits;
        let state = self.states.get_mut(ci)?;
        state.newest = state.newest.max(t);
        // Groups whose newest entry left the window are gone.
        let horizon = state.newest.saturating_sub(span);
        while let Some((&(last, serial), _)) = state.lru.first_key_value() {
            if last >= horizon {
                break;
            }
            if let Some(k) = state.lru.remove(&(last, serial)) {
                state.groups.remove(&k);
            }
        }
        if !state.groups.contains_key(&key)
            && state.groups.len() >= limits.max_groups
            && let Some((_, k)) = state.lru.pop_first()
        {
            state.groups.remove(&k);
            state.stats.evicted_groups += 1;
        }
        let group = state.groups.entry(key.clone()).or_default();
        let entry = Entry {
            t,
            source: ri,
            value,
        };
        let pos = group
            .entries
            .iter()
            .rposition(|e| e.t <= t)
            .map_or(0, |p| p + 1);
        group.entries.insert(pos, entry);
        while group.entries.len() > limits.max_entries {
            group.entries.pop_front();
            state.stats.dropped_entries += 1;
        }
        let newest = group.entries.back().map_or(t, |e| e.t);
        while group.entries.front().is_some_and(|e| newest - e.t > span) {
            group.entries.pop_front();
        }
        // LRU position.
        state.lru.remove(&group.order);
        state.serial += 1;
        group.order = (newest, state.serial);
        state.lru.insert(group.order, key.clone());
        if group.entries.is_empty() || newest - t > span {
            // The new entry arrived late, already outside the window.
            return None;
        }
        let measure = measure(rule.kind, corr.refs.len(), &group.entries, t, ri);
        let holds = match rule.kind {
            CorrelationType::Temporal | CorrelationType::TemporalOrdered
                if rule.threshold.is_empty() =>
            {
                measure >= corr.refs.len() as f64
            }
            _ => rule.threshold.holds(measure),
        };
        if !holds {
            return None;
        }
        let first = group.entries.front().map_or(t, |e| e.t);
        let events = group.entries.len();
        group.entries.clear();
        state.stats.hits += 1;
        Some(CorrelationHit {
            correlation: ci,
            group: rule
                .group_by
                .iter()
                .cloned()
                .zip(key)
                .chain(drill.map(|run| (field::VIGIL_DRILL_RUN.to_owned(), run)))
                .collect(),
            value: measure,
            first: Timestamp::from_nanos(first),
            last: Timestamp::from_nanos(newest),
            events,
        })
    }
}

/// The measure of a window (see the module table).
fn measure(
    kind: CorrelationType,
    n_refs: usize,
    entries: &VecDeque<Entry>,
    t: i64,
    ri: usize,
) -> f64 {
    match kind {
        CorrelationType::EventCount => entries.len() as f64,
        CorrelationType::ValueCount => entries
            .iter()
            .filter_map(|e| match &e.value {
                Measured::Text(s) => Some(s.as_str()),
                _ => None,
            })
            .collect::<HashSet<_>>()
            .len() as f64,
        CorrelationType::ValueSum | CorrelationType::ValueAvg => {
            let nums: Vec<f64> = entries
                .iter()
                .filter_map(|e| match e.value {
                    Measured::Number(n) => Some(n),
                    _ => None,
                })
                .collect();
            let sum: f64 = nums.iter().sum();
            if kind == CorrelationType::ValueSum {
                sum
            } else if nums.is_empty() {
                0.0
            } else {
                sum / nums.len() as f64
            }
        }
        CorrelationType::ValuePercentile => {
            let new = entries
                .iter()
                .rev()
                .find(|e| e.t == t && e.source == ri)
                .and_then(|e| match &e.value {
                    Measured::Text(s) => Some(s.clone()),
                    _ => None,
                });
            let Some(new) = new else { return 100.0 };
            let same = entries
                .iter()
                .filter(|e| matches!(&e.value, Measured::Text(s) if *s == new))
                .count();
            same as f64 * 100.0 / entries.len() as f64
        }
        CorrelationType::Temporal => entries
            .iter()
            .map(|e| e.source)
            .collect::<HashSet<_>>()
            .len() as f64,
        CorrelationType::TemporalOrdered => {
            // Longest prefix of the reference list found in order (greedy, earliest first).
            let mut next = 0;
            for e in entries {
                if next < n_refs && e.source == next {
                    next += 1;
                }
            }
            next as f64
        }
    }
}

/// The drill run an item belongs to: its event's, or the one in a child hit's group.
fn item_drill_run(item: &Item<'_>) -> Option<String> {
    match item {
        Item::Event { event, .. } => event.drill_run().map(str::to_owned),
        Item::Hit { hit, .. } => hit
            .group
            .iter()
            .find(|(k, _)| k == field::VIGIL_DRILL_RUN)
            .map(|(_, v)| v.clone()),
    }
}

/// A group-by or measured field's value for an item, through the correlation's aliases.
fn lookup(
    set: &RuleSet,
    corr: &crate::ruleset::CompiledCorrelation,
    name: &str,
    item: &Item<'_>,
) -> Option<String> {
    let alias = corr.rule.aliases.get(name);
    match item {
        Item::Event { event, rule } => {
            let info = set.rule(*rule)?;
            let field = alias
                .and_then(|m| {
                    info.meta
                        .name
                        .as_ref()
                        .and_then(|n| m.get(n))
                        .or_else(|| info.meta.id.as_ref().and_then(|i| m.get(i)))
                })
                .map_or(name, String::as_str);
            set.field_value(*rule, field, event).and_then(first_text)
        }
        Item::Hit { hit, child } => {
            let child_meta = &set.correlations().get(*child)?.rule.meta;
            let field = alias
                .and_then(|m| {
                    child_meta
                        .name
                        .as_ref()
                        .and_then(|n| m.get(n))
                        .or_else(|| child_meta.id.as_ref().and_then(|i| m.get(i)))
                })
                .map_or(name, String::as_str);
            hit.group
                .iter()
                .find(|(k, _)| k == field)
                .map(|(_, v)| v.clone())
        }
    }
}

fn first_text(v: &Value) -> Option<String> {
    match v {
        Value::Null | Value::Map(_) => None,
        Value::Str(s) => Some(s.clone()),
        Value::List(items) => items.iter().find_map(first_text),
        other => Some(other.to_string()),
    }
}
