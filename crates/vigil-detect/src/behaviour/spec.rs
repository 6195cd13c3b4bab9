//! Behaviour rule documents: `kind: new_terms`, `kind: outlier` and `kind: peer_outlier`, read
//! from YAML beside Sigma rules (docs/rules.md has examples of each).
//!
//! A behaviour document is a Sigma-shaped document (`title`, `id`, `level`, `tags`,
//! `logsource`, optional `detection` saying which events count) plus one section named after
//! its kind. Every key of the section is checked: a key Vigil does not know refuses the rule
//! with a reason instead of running it with part of its meaning missing.

use crate::correlation::parse_timespan;
use crate::rule::{Detection, RuleMeta, read_detection};
use crate::yaml::Yaml;

/// One day in nanoseconds.
const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// The behaviour kinds Vigil knows (the values of a document's `kind:`).
pub const KINDS: [&str; 3] = ["new_terms", "outlier", "peer_outlier"];

/// Most fields a `new_terms` tuple or a `per:`/`by:` entity may have.
pub const MAX_FIELDS: usize = 3;

/// The largest per-rule state cap a rule may ask for (`max_entries` / `max_entities`).
pub const MAX_CAP: usize = 5_000_000;

/// Most windows an outlier baseline keeps per entity.
pub const MAX_WINDOWS: usize = 1_024;

/// A behaviour rule as written.
#[derive(Debug, Clone, PartialEq)]
pub struct BehaviourRule {
    /// Descriptive fields, as for Sigma rules.
    pub meta: RuleMeta,
    /// Which events count (`None`: every event holding the rule's fields).
    pub detection: Option<Detection>,
    /// What the rule learns and when it alerts.
    pub spec: Spec,
}

/// The kind-specific part of a behaviour rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    /// `kind: new_terms` — first seen.
    NewTerms(NewTerms),
    /// `kind: outlier` or `kind: peer_outlier` (then `peers` is set).
    Outlier(Outlier),
}

/// `new_terms`: a tuple of 1–3 fields never seen before (per entity, if `per` is given)
/// within the history window.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTerms {
    /// The tuple's fields (1–3).
    pub fields: Vec<String>,
    /// Entity fields the tuple is remembered per (0–3): `source.ip` per `user.name`.
    pub per: Vec<String>,
    /// How long a tuple stays known after it was last seen (default 30 d), in nanoseconds.
    pub history_ns: i64,
    /// No alert until the rule has seen this much history (default: the history window).
    pub learning_ns: i64,
    /// Most tuples remembered; past it the oldest last-seen are evicted (default 100,000).
    pub max_entries: usize,
}

/// What an outlier rule measures per entity and window.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// Events.
    Count,
    /// Distinct values of a field.
    DistinctCount(String),
    /// Sum of a numeric field.
    Sum(String),
}

impl Metric {
    /// `count`, `distinct_count(field)`, `sum(field)`.
    pub fn describe(&self) -> String {
        match self {
            Metric::Count => "count".into(),
            Metric::DistinctCount(f) => format!("distinct_count({f})"),
            Metric::Sum(f) => format!("sum({f})"),
        }
    }
}

/// `outlier` / `peer_outlier`: a per-entity value over tumbling windows, compared with a
/// baseline — the entity's own previous windows, or (with `peers`) its group's.
#[derive(Debug, Clone, PartialEq)]
pub struct Outlier {
    /// The entity fields (1–3): `user.name`, `host.name`.
    pub by: Vec<String>,
    /// What is measured.
    pub metric: Metric,
    /// Window length in nanoseconds (default 1 h).
    pub window_ns: i64,
    /// How far back the baseline reaches (default 7 d; at most [`MAX_WINDOWS`] windows).
    pub history_ns: i64,
    /// How many robust standard deviations (1.4826 × MAD) above the median is an outlier
    /// (default 3).
    pub threshold: f64,
    /// The value must also be at least this (default 1).
    pub floor: f64,
    /// Learning: no alert until the baseline holds this many windows (own history) or
    /// peer samples (default 6).
    pub min_windows: usize,
    /// Peer deviation: the event field naming the entity's group (`user.department`).
    pub peers: Option<String>,
    /// Most entities tracked; past it the oldest last-seen are evicted (default 10,000).
    pub max_entities: usize,
}

impl Outlier {
    /// Windows in the baseline.
    pub fn windows(&self) -> usize {
        ((self.history_ns / self.window_ns.max(1)) as usize).clamp(1, MAX_WINDOWS)
    }
}

impl BehaviourRule {
    /// `new_terms`, `outlier` or `peer_outlier`.
    pub fn kind(&self) -> &'static str {
        match &self.spec {
            Spec::NewTerms(_) => "new_terms",
            Spec::Outlier(o) if o.peers.is_some() => "peer_outlier",
            Spec::Outlier(_) => "outlier",
        }
    }

    /// The event fields the rule reads (an event lacking one does not count).
    pub fn required_fields(&self) -> Vec<String> {
        match &self.spec {
            Spec::NewTerms(n) => n.per.iter().chain(&n.fields).cloned().collect(),
            Spec::Outlier(o) => {
                let mut f = o.by.clone();
                match &o.metric {
                    Metric::Count => {}
                    Metric::DistinctCount(x) | Metric::Sum(x) => f.push(x.clone()),
                }
                f.extend(o.peers.clone());
                f
            }
        }
    }

    /// A stable text of everything that decides the rule's state: when it changes, the
    /// state is built again from the ledger.
    pub fn state_key(&self) -> String {
        let id = self
            .meta
            .id
            .clone()
            .or_else(|| self.meta.name.clone())
            .unwrap_or_else(|| self.meta.title.clone());
        let det = self
            .detection
            .as_ref()
            .map(|d| format!("{:?}|{:?}", d.searches, d.conditions))
            .unwrap_or_default();
        format!(
            "{id}\u{1f}{}\u{1f}{:?}\u{1f}{:?}\u{1f}{det}",
            self.kind(),
            self.spec,
            self.meta.logsource
        )
    }
}

/// The keys a behaviour document may have at the top level besides Sigma's.
pub const TOP_KEYS: [&str; 4] = ["kind", "new_terms", "outlier", "peer_outlier"];

/// Reads a behaviour document (`kind` one of [`KINDS`]).
pub fn parse(meta: RuleMeta, doc: &Yaml, kind: &str) -> Result<BehaviourRule, String> {
    for other in KINDS {
        if other != kind && doc.get(other).is_some() {
            return Err(format!(
                "a `kind: {kind}` rule cannot have a `{other}:` section"
            ));
        }
    }
    let section = doc
        .get(kind)
        .ok_or_else(|| format!("`kind: {kind}` without a `{kind}:` section"))?;
    let Yaml::Map(entries) = section else {
        return Err(format!(
            "`{kind}` must be a map, found a {}",
            section.kind()
        ));
    };
    let detection = match doc.get("detection") {
        None | Some(Yaml::Null) => None,
        Some(d) => Some(read_detection(d, &[])?),
    };
    let spec = match kind {
        "new_terms" => Spec::NewTerms(new_terms(entries)?),
        "outlier" => Spec::Outlier(outlier(entries, kind, false)?),
        "peer_outlier" => Spec::Outlier(outlier(entries, kind, true)?),
        other => return Err(unknown_kind(other)),
    };
    Ok(BehaviourRule {
        meta,
        detection,
        spec,
    })
}

/// The reason given for a `kind:` Vigil does not know.
pub fn unknown_kind(kind: &str) -> String {
    format!(
        "unknown rule kind `{kind}`: Vigil knows {} (and Sigma rules, which have no `kind`); \
         the rule is not run rather than run as a plain selection",
        KINDS.join(", ")
    )
}

fn check_keys(entries: &[(Yaml, Yaml)], section: &str, known: &[&str]) -> Result<(), String> {
    for (k, _) in entries {
        let key = k.scalar_text().unwrap_or_default();
        if !known.contains(&key.as_str()) {
            return Err(format!(
                "`{section}.{key}` is not a setting Vigil knows (known: {})",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

fn get<'a>(entries: &'a [(Yaml, Yaml)], key: &str) -> Option<&'a Yaml> {
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
        .filter(|v| !matches!(v, Yaml::Null))
}

fn field_list(
    entries: &[(Yaml, Yaml)],
    section: &str,
    key: &str,
    min: usize,
) -> Result<Vec<String>, String> {
    let list = match get(entries, key) {
        None => Vec::new(),
        Some(Yaml::Seq(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .filter(|s| !s.trim().is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| format!("`{section}.{key}` must list field names"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(Yaml::Str(s)) if !s.trim().is_empty() => vec![s.clone()],
        Some(other) => {
            return Err(format!(
                "`{section}.{key}` must be a field name or a list of them, found a {}",
                other.kind()
            ));
        }
    };
    if list.len() < min || list.len() > MAX_FIELDS {
        return Err(format!(
            "`{section}.{key}` must name {min} to {MAX_FIELDS} fields, found {}",
            list.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for f in &list {
        if !seen.insert(f) {
            return Err(format!("`{section}.{key}` names `{f}` twice"));
        }
    }
    Ok(list)
}

fn span(entries: &[(Yaml, Yaml)], section: &str, key: &str, default: i64) -> Result<i64, String> {
    match get(entries, key) {
        None => Ok(default),
        Some(y) => {
            let text = y.scalar_text().unwrap_or_default();
            parse_timespan(&text).ok_or_else(|| {
                format!("`{section}.{key}`: `{text}` is not a duration such as 30m, 1h, 7d")
            })
        }
    }
}

fn cap(
    entries: &[(Yaml, Yaml)],
    section: &str,
    key: &str,
    default: usize,
) -> Result<usize, String> {
    match get(entries, key) {
        None => Ok(default),
        Some(Yaml::Int(n)) if *n >= 1 && (*n as u64) <= MAX_CAP as u64 => Ok(*n as usize),
        Some(_) => Err(format!(
            "`{section}.{key}` must be a whole number from 1 to {MAX_CAP}"
        )),
    }
}

fn number(entries: &[(Yaml, Yaml)], section: &str, key: &str, default: f64) -> Result<f64, String> {
    let v = match get(entries, key) {
        None => return Ok(default),
        Some(Yaml::Int(n)) => *n as f64,
        Some(Yaml::Float(f)) => *f,
        Some(_) => return Err(format!("`{section}.{key}` must be a number")),
    };
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("`{section}.{key}` must be a number of at least 0"))
    }
}

fn new_terms(entries: &[(Yaml, Yaml)]) -> Result<NewTerms, String> {
    const S: &str = "new_terms";
    check_keys(
        entries,
        S,
        &["fields", "per", "history", "learning", "max_entries"],
    )?;
    let fields = field_list(entries, S, "fields", 1)?;
    let per = field_list(entries, S, "per", 0)?;
    if let Some(f) = fields.iter().find(|f| per.contains(f)) {
        return Err(format!("`{f}` is both a term field and a `per` field"));
    }
    let history_ns = span(entries, S, "history", 30 * DAY_NS)?;
    let learning_ns = span(entries, S, "learning", history_ns)?;
    Ok(NewTerms {
        fields,
        per,
        history_ns,
        learning_ns,
        max_entries: cap(entries, S, "max_entries", 100_000)?,
    })
}

fn outlier(entries: &[(Yaml, Yaml)], section: &str, peer: bool) -> Result<Outlier, String> {
    check_keys(
        entries,
        section,
        &[
            "by",
            "metric",
            "field",
            "window",
            "history",
            "threshold",
            "floor",
            "min_windows",
            "peers",
            "max_entities",
        ],
    )?;
    let by = field_list(entries, section, "by", 1)?;
    let field = match get(entries, "field") {
        None => None,
        Some(Yaml::Str(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(_) => return Err(format!("`{section}.field` must be a field name")),
    };
    let metric_text = get(entries, "metric")
        .map(|m| m.scalar_text().unwrap_or_default())
        .unwrap_or_else(|| "count".into());
    let metric = match (metric_text.as_str(), field) {
        ("count", None) => Metric::Count,
        ("count", Some(_)) => {
            return Err(format!(
                "`{section}.field` is for distinct_count and sum; count counts events"
            ));
        }
        ("distinct_count", Some(f)) => Metric::DistinctCount(f),
        ("sum", Some(f)) => Metric::Sum(f),
        ("distinct_count" | "sum", None) => {
            return Err(format!("`{section}.metric: {metric_text}` needs `field`"));
        }
        (other, _) => {
            return Err(format!(
                "`{section}.metric`: `{other}` is not one of count, distinct_count, sum"
            ));
        }
    };
    let peers = match get(entries, "peers") {
        None => None,
        Some(Yaml::Str(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(_) => return Err(format!("`{section}.peers` must be a field name")),
    };
    if peer && peers.is_none() {
        return Err("`kind: peer_outlier` needs `peer_outlier.peers`: the group field".into());
    }
    let window_ns = span(entries, section, "window", 3_600_000_000_000)?;
    let history_ns = span(entries, section, "history", 7 * DAY_NS)?;
    if history_ns < window_ns {
        return Err(format!("`{section}.history` must be at least one `window`"));
    }
    let min_windows = cap(entries, section, "min_windows", 6)?;
    Ok(Outlier {
        by,
        metric,
        window_ns,
        history_ns,
        threshold: number(entries, section, "threshold", 3.0)?,
        floor: number(entries, section, "floor", 1.0)?,
        min_windows,
        peers,
        max_entities: cap(entries, section, "max_entities", 10_000)?,
    })
}

#[cfg(test)]
mod tests {
    use crate::rule::{Document, load_str};

    fn one(text: &str) -> Result<Document, String> {
        load_str(text, "t.yml")
            .into_iter()
            .next()
            .unwrap()
            .map_err(|e| e.reason)
    }

    #[test]
    fn reads_each_kind() {
        let d = one(
            "title: New address\nkind: new_terms\nnew_terms:\n  fields: [source.ip]\n  per: user.name\n  history: 14d\n",
        )
        .unwrap();
        let Document::Behaviour(b) = d else { panic!() };
        let super::Spec::NewTerms(n) = &b.spec else {
            panic!()
        };
        assert_eq!(n.per, vec!["user.name"]);
        assert_eq!(n.history_ns, 14 * super::DAY_NS);
        assert_eq!(n.learning_ns, n.history_ns);
        let d =
            one("title: Fails\nkind: outlier\noutlier: {by: user.name, window: 1h, floor: 20}\n")
                .unwrap();
        let Document::Behaviour(b) = d else { panic!() };
        assert_eq!(b.kind(), "outlier");
        let d = one(
            "title: Reads\nkind: peer_outlier\npeer_outlier: {by: user.name, metric: distinct_count, field: customer.id, peers: user.department, window: 1d, history: 7d}\n",
        )
        .unwrap();
        let Document::Behaviour(b) = d else { panic!() };
        assert_eq!(b.kind(), "peer_outlier");
    }

    #[test]
    fn what_is_not_understood_is_refused_with_a_reason() {
        for (text, want) in [
            (
                "title: x\nkind: anomaly\ndetection: {s: {a: 1}, condition: s}\n",
                "unknown rule kind `anomaly`",
            ),
            (
                "title: x\nnew_terms: {fields: [a]}\ndetection: {s: {a: 1}, condition: s}\n",
                "`new_terms` is not a top-level key",
            ),
            (
                "title: x\nfrobnicate: 1\ndetection: {s: {a: 1}, condition: s}\n",
                "`frobnicate` is not a top-level key",
            ),
            (
                "title: x\nkind: new_terms\nnew_terms: {fields: [a], wibble: 2}\n",
                "`new_terms.wibble` is not a setting",
            ),
            (
                "title: x\nkind: new_terms\nnew_terms: {fields: [a, b, c, d]}\n",
                "1 to 3 fields",
            ),
            (
                "title: x\nkind: new_terms\nnew_terms: {fields: []}\n",
                "1 to 3 fields",
            ),
            (
                "title: x\nkind: new_terms\nnew_terms: {fields: [a], history: forever}\n",
                "not a duration",
            ),
            (
                "title: x\nkind: new_terms\nnew_terms: {fields: [a], max_entries: 0}\n",
                "whole number",
            ),
            (
                "title: x\nkind: new_terms\n",
                "without a `new_terms:` section",
            ),
            (
                "title: x\nkind: outlier\noutlier: {by: u, metric: sum}\n",
                "needs `field`",
            ),
            (
                "title: x\nkind: outlier\noutlier: {by: u, metric: p99, field: f}\n",
                "not one of",
            ),
            (
                "title: x\nkind: peer_outlier\npeer_outlier: {by: u}\n",
                "needs `peer_outlier.peers`",
            ),
            (
                "title: x\nkind: outlier\noutlier: {by: u, threshold: -1}\n",
                "at least 0",
            ),
            (
                "title: x\nkind: outlier\noutlier: {by: u}\nnew_terms: {fields: [a]}\n",
                "cannot have a `new_terms:`",
            ),
            ("title: x\nkind: [a]\n", "`kind` must be"),
        ] {
            let e = one(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
