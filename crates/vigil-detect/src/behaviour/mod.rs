//! Behaviour rules: what Sigma cannot say because it needs memory of the past.
//!
//! * **first seen** (`kind: new_terms`): a tuple of 1–3 field values never seen before within
//!   a history window (default 30 days), globally or per entity (`source.ip` per `user.name`).
//! * **outlier** (`kind: outlier`): a per-entity count, distinct count or sum over tumbling
//!   windows, compared with the entity's own previous windows.
//! * **peer deviation** (`kind: peer_outlier`): the same value compared with the windows of the
//!   entity's group (`user.department`, `host.group`).
//!
//! The events a rule counts are chosen by an ordinary Sigma detection (compiled with every
//! other rule into the [`RuleSet`], as a rule that never alerts on its own); the [`Engine`]
//! keeps the memory and answers each chosen event in constant (amortised) time: a keyed hash
//! of the tuple and one table lookup for first-seen, one window update for outliers (a
//! baseline is computed at most once per entity and window, and only when the value reaches
//! the rule's floor).
//!
//! **Bounded**: every rule's state has a cap (`max_entries`, `max_entities`); past it, the
//! entries seen longest ago are evicted (10 % at a time, so eviction costs O(1) per insert
//! amortised) and counted ([`Stats::evicted`]). **Persisted**: [`persist`] writes the state
//! beside the detector's cursor in a versioned format; **rebuildable**: a missing, damaged or
//! outdated state is rebuilt by feeding the ledger's history through [`Engine::learn`], which
//! never alerts — also how a rule added to a server holding history starts (backfill).
//!
//! **Baselines** (outliers) are the median and the median absolute deviation (MAD) of the
//! baseline's windows, not the mean and standard deviation: one earlier burst (an attack,
//! a batch job) would drag a mean and inflate a deviation so that the next burst hides under
//! them, whereas the median ignores it; and per-window counts are skewed, which the median
//! also tolerates. A window is an outlier when its value exceeds
//! `median + threshold × max(1.4826 × MAD, √max(median, 1))` — 1.4826 × MAD estimates the
//! standard deviation of normal data, and the Poisson term keeps a baseline of identical
//! windows (MAD 0) from making every extra event an outlier — and is at least `floor`.

pub mod persist;
pub mod spec;

mod new_terms;
mod outlier;

use vigil_event::{Event, Timestamp, Value};

pub use spec::{BehaviourRule, KINDS, Metric, NewTerms, Outlier, Spec};

use crate::ruleset::{RuleId, RuleSet, Scratch};

/// A behaviour rule in a [`RuleSet`], with the hidden rule that chooses its events.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledBehaviour {
    /// The rule as written.
    pub rule: BehaviourRule,
    /// The compiled rule choosing the events it counts (never alerts by itself).
    pub filter: RuleId,
}

/// Why a behaviour alert fired: what was normal, over which period, from how much history,
/// and the value that broke it. Carried on the alert (`vigil.alert.baseline.*`) and shown in
/// the UI's alert view.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Explanation {
    /// `new_terms`, `outlier` or `peer_outlier`.
    pub kind: String,
    /// The value that broke the baseline: the new tuple (`source.ip=203.0.113.9`) or the
    /// window's value (`57`).
    pub observed: String,
    /// What was measured (`count`, `distinct_count(customer.id)`); first seen: the fields.
    pub metric: String,
    /// Baseline median (outliers).
    pub median: Option<f64>,
    /// Baseline median absolute deviation (outliers).
    pub mad: Option<f64>,
    /// The value above which a window is an outlier (outliers).
    pub threshold: Option<f64>,
    /// Windows the baseline held (outliers), or tuples remembered (first seen).
    pub windows: Option<u64>,
    /// Entities the baseline came from (peer deviation: the peers).
    pub entities: Option<u64>,
    /// The peer group (`user.department=support`), for peer deviation.
    pub peer_group: Option<String>,
    /// Start of the history the baseline covers (event time).
    pub since: Timestamp,
    /// End of that history (the start of the current window; first seen: the event's time).
    pub until: Timestamp,
    /// One sentence saying all of the above.
    pub summary: String,
}

impl Explanation {
    /// The explanation as `vigil.alert.baseline.*` fields.
    pub fn to_fields(&self) -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = vec![
            ("kind".into(), self.kind.as_str().into()),
            ("observed".into(), self.observed.as_str().into()),
            ("metric".into(), self.metric.as_str().into()),
            ("since".into(), Value::Int(self.since.as_nanos())),
            ("until".into(), Value::Int(self.until.as_nanos())),
            ("summary".into(), self.summary.as_str().into()),
        ];
        for (k, v) in [
            ("median", self.median),
            ("mad", self.mad),
            ("threshold", self.threshold),
        ] {
            if let Some(v) = v {
                out.push((k.into(), Value::Float(v)));
            }
        }
        for (k, v) in [("windows", self.windows), ("entities", self.entities)] {
            if let Some(v) = v {
                out.push((k.into(), Value::Int(v as i64)));
            }
        }
        if let Some(g) = &self.peer_group {
            out.push(("peer_group".into(), g.as_str().into()));
        }
        out.into_iter()
            .map(|(k, v)| (format!("vigil.alert.baseline.{k}"), v))
            .collect()
    }

    /// Reads an explanation back from an alert event's `vigil.alert.baseline.*` fields.
    pub fn from_event(e: &Event) -> Option<Explanation> {
        let text = |k: &str| {
            e.get_str(&format!("vigil.alert.baseline.{k}"))
                .map(str::to_owned)
        };
        let float = |k: &str| match e.get(&format!("vigil.alert.baseline.{k}")) {
            Some(Value::Float(f)) => Some(*f),
            Some(Value::Int(i)) => Some(*i as f64),
            _ => None,
        };
        let int = |k: &str| {
            e.get(&format!("vigil.alert.baseline.{k}"))
                .and_then(Value::as_i64)
        };
        Some(Explanation {
            kind: text("kind")?,
            observed: text("observed").unwrap_or_default(),
            metric: text("metric").unwrap_or_default(),
            median: float("median"),
            mad: float("mad"),
            threshold: float("threshold"),
            windows: int("windows").map(|v| v as u64),
            entities: int("entities").map(|v| v as u64),
            peer_group: text("peer_group"),
            since: Timestamp::from_nanos(int("since").unwrap_or(0)),
            until: Timestamp::from_nanos(int("until").unwrap_or(0)),
            summary: text("summary").unwrap_or_default(),
        })
    }

    /// The explanation as JSON (the `baseline` of an alert in the API).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": self.kind,
            "observed": self.observed,
            "metric": self.metric,
            "median": self.median,
            "mad": self.mad,
            "threshold": self.threshold,
            "windows": self.windows,
            "entities": self.entities,
            "peer_group": self.peer_group,
            "since": self.since.to_rfc3339(),
            "until": self.until.to_rfc3339(),
            "summary": self.summary,
        })
    }
}

/// What a behaviour rule raised for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The alert group (the entity, and for first seen the new tuple).
    pub group: Vec<(String, String)>,
    /// Why.
    pub explain: Explanation,
}

/// Sizes and counters of the engine's state, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Tuples (first seen) and entities (outliers) held now.
    pub entries: u64,
    /// Entries evicted to stay under a rule's cap (not counting history that simply expired).
    pub evicted: u64,
    /// Rough bytes held by the state (hash tables at their capacity, histories).
    pub bytes: u64,
}

/// One rule's state.
#[derive(Debug, Clone)]
pub(crate) enum State {
    NewTerms(new_terms::NewTermsState),
    Outlier(outlier::OutlierState),
}

impl State {
    fn fresh(rule: &BehaviourRule) -> State {
        match &rule.spec {
            Spec::NewTerms(_) => State::NewTerms(new_terms::NewTermsState::new()),
            Spec::Outlier(_) => State::Outlier(outlier::OutlierState::new()),
        }
    }

    fn stats(&self) -> Stats {
        match self {
            State::NewTerms(s) => s.stats(),
            State::Outlier(s) => s.stats(),
        }
    }
}

/// The memory of every behaviour rule of a [`RuleSet`].
#[derive(Debug, Clone, Default)]
pub struct Engine {
    /// Per behaviour rule (index in [`RuleSet::behaviours`]): its state key and state.
    states: Vec<(String, State)>,
    /// Evictions of states dropped since (rules removed or changed), so counters only grow.
    evicted_before: u64,
}

impl Engine {
    /// Empty state for every behaviour rule of `set`.
    pub fn new(set: &RuleSet) -> Engine {
        Engine {
            states: set
                .behaviours()
                .iter()
                .map(|b| (b.rule.state_key(), State::fresh(&b.rule)))
                .collect(),
            evicted_before: 0,
        }
    }

    /// Takes over the state of `old` (the engine of the rule set before a reload, or one read
    /// from disk) for every rule whose definition did not change. Returns the indices of the
    /// rules that start empty: they need [`Engine::learn`] over the history (backfill).
    pub fn adopt(&mut self, old: Engine) -> Vec<usize> {
        self.evicted_before = old.stats().evicted;
        let mut by_key: std::collections::HashMap<String, State> = old.states.into_iter().collect();
        let mut fresh = Vec::new();
        for (i, (key, state)) in self.states.iter_mut().enumerate() {
            match by_key.remove(key) {
                Some(s) => *state = s,
                None => fresh.push(i),
            }
        }
        fresh
    }

    /// Number of rules held.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether there are no behaviour rules.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Totals over every rule (evictions include those of states dropped at reloads).
    pub fn stats(&self) -> Stats {
        let mut total = Stats {
            evicted: self.evicted_before,
            ..Stats::default()
        };
        for (_, s) in &self.states {
            let st = s.stats();
            total.entries += st.entries;
            total.evicted += st.evicted;
            total.bytes += st.bytes;
        }
        total
    }

    /// One rule's counters.
    pub fn rule_stats(&self, behaviour: usize) -> Option<Stats> {
        self.states.get(behaviour).map(|(_, s)| s.stats())
    }

    /// Counts `event` (chosen by the rule's filter) into behaviour rule `behaviour` of `set`;
    /// with `alert`, says whether it broke the rule's baseline. Without `alert` the event only
    /// teaches (history being rebuilt or backfilled).
    pub fn observe(
        &mut self,
        set: &RuleSet,
        behaviour: usize,
        event: &Event,
        alert: bool,
    ) -> Option<Hit> {
        let compiled = set.behaviours().get(behaviour)?;
        let (_, state) = self.states.get_mut(behaviour)?;
        let read = |field: &str| set.field_value(compiled.filter, field, event);
        match (&compiled.rule.spec, state) {
            (Spec::NewTerms(spec), State::NewTerms(s)) => {
                s.observe(spec, &read, event.timestamp(), alert)
            }
            (Spec::Outlier(spec), State::Outlier(s)) => {
                s.observe(spec, &read, event.timestamp(), alert)
            }
            _ => None,
        }
    }

    /// Teaches the rules in `only` (all with `None`) one event of history, without alerting:
    /// how a state is rebuilt from the ledger and a new rule backfilled.
    pub fn learn(
        &mut self,
        set: &RuleSet,
        scratch: &mut Scratch,
        event: &Event,
        only: Option<&[usize]>,
    ) {
        if event.is_dataset(vigil_event::dataset::VIGIL_ALERT) || set.behaviours().is_empty() {
            return;
        }
        for &id in set.matches_with(event, scratch) {
            if let Some(b) = set.behaviour_of(id)
                && only.is_none_or(|o| o.contains(&b))
            {
                self.observe(set, b, event, false);
            }
        }
    }

    /// The oldest event time any rule's state needs from the ledger to be rebuilt: now minus
    /// the longest history window.
    pub fn history_start(set: &RuleSet, now: Timestamp) -> Timestamp {
        let longest = set
            .behaviours()
            .iter()
            .map(|b| match &b.rule.spec {
                Spec::NewTerms(n) => n.history_ns.max(n.learning_ns),
                Spec::Outlier(o) => o.history_ns.saturating_add(o.window_ns),
            })
            .max()
            .unwrap_or(0);
        Timestamp::from_nanos(now.as_nanos().saturating_sub(longest))
    }
}

/// The text of each leaf of a field's value (a list gives one per element, at most
/// [`MAX_LIST`]); nothing for null or a missing field.
pub(crate) fn texts(value: Option<&Value>) -> Vec<String> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::List(items)) => items
            .iter()
            .filter(|v| !matches!(v, Value::Null | Value::List(_) | Value::Map(_)))
            .take(MAX_LIST)
            .map(Value::to_string)
            .collect(),
        Some(Value::Map(_)) => Vec::new(),
        Some(v) => vec![v.to_string()],
    }
}

/// Most values of one list field a behaviour rule takes (and most tuples one event makes).
pub(crate) const MAX_LIST: usize = 16;

/// Keyed 64-bit hash of a tuple of texts (SipHash-2-4, a stable algorithm, under the rule's
/// own random key, so a sender cannot aim collisions at a tuple).
pub(crate) fn keyed_hash(key: (u64, u64), parts: &[&str]) -> u64 {
    use std::hash::Hasher;
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new_with_keys(key.0, key.1);
    for p in parts {
        h.write(p.as_bytes());
        h.write_u8(0xff); // never in UTF-8: parts cannot run into each other
    }
    h.finish()
}

/// The file checksum of [`persist`]: SipHash-2-4 under the zero key.
pub(crate) fn keyed_hash_bytes(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new_with_keys(0, 0);
    h.write(bytes);
    h.finish()
}

/// A fresh random key for [`keyed_hash`].
pub(crate) fn random_key() -> (u64, u64) {
    use std::hash::{BuildHasher, Hasher};
    let s = std::collections::hash_map::RandomState::new();
    let mut a = s.build_hasher();
    a.write_u64(1);
    let mut b = s.build_hasher();
    b.write_u64(2);
    (a.finish(), b.finish())
}

/// A hasher for keys that already are keyed hashes: passes them through.
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A hash map over already-hashed keys.
pub(crate) type HashedMap<V> =
    std::collections::HashMap<u64, V, std::hash::BuildHasherDefault<PassThrough>>;

/// Removes entries of `map` until it holds at most `keep`, oldest `age` first (ties may
/// remove a few more). Returns how many were removed. O(n): call when `map` is full, and
/// keep 90 % so that it runs once per tenth of the cap.
pub(crate) fn evict_oldest<V>(map: &mut HashedMap<V>, keep: usize, age: impl Fn(&V) -> i64) -> u64 {
    if map.len() <= keep {
        return 0;
    }
    let excess = map.len() - keep;
    let mut ages: Vec<i64> = map.values().map(&age).collect();
    let (_, &mut cutoff, _) = ages.select_nth_unstable(excess - 1);
    let before = map.len();
    map.retain(|_, v| age(v) > cutoff);
    (before - map.len()) as u64
}

/// The median of `xs` (sorted in place); 0 when empty.
pub(crate) fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_unstable_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Median and median absolute deviation of `xs`.
pub(crate) fn median_mad(xs: &mut [f64]) -> (f64, f64) {
    let m = median(xs);
    let mut dev: Vec<f64> = xs.iter().map(|x| (x - m).abs()).collect();
    (m, median(&mut dev))
}

/// The value above which a window is an outlier.
pub(crate) fn outlier_threshold(median: f64, mad: f64, threshold: f64) -> f64 {
    let scale = (1.4826 * mad).max(median.max(1.0).sqrt());
    median + threshold * scale
}

/// Formats a number for a sentence: whole numbers without decimals.
pub(crate) fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.2}")
    }
}

/// Formats a duration in nanoseconds as `30d`, `1h`, `90s`.
pub(crate) fn span_text(ns: i64) -> String {
    let s = ns / 1_000_000_000;
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s >= n && s % n == 0 {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

#[cfg(test)]
mod tests;
