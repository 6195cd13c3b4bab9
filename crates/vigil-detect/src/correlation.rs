//! Sigma v2 correlation rules: the model and its loading.

use std::collections::BTreeMap;

use crate::rule::RuleMeta;
use crate::yaml::Yaml;

/// The kind of correlation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrelationType {
    /// Number of matching events per group in the window.
    EventCount,
    /// Number of distinct values of a field per group in the window.
    ValueCount,
    /// All referenced rules matched (any order) per group in the window.
    Temporal,
    /// All referenced rules matched in the listed order per group in the window.
    TemporalOrdered,
    /// Sum of a numeric field per group in the window.
    ValueSum,
    /// Average of a numeric field per group in the window.
    ValueAvg,
    /// Share (percent) of the group's events in the window whose field has the new event's value.
    ValuePercentile,
}

impl CorrelationType {
    fn parse(s: &str) -> Option<CorrelationType> {
        Some(match s {
            "event_count" => CorrelationType::EventCount,
            "value_count" => CorrelationType::ValueCount,
            "temporal" => CorrelationType::Temporal,
            "temporal_ordered" => CorrelationType::TemporalOrdered,
            "value_sum" => CorrelationType::ValueSum,
            "value_avg" => CorrelationType::ValueAvg,
            "value_percentile" => CorrelationType::ValuePercentile,
            _ => return None,
        })
    }
}

/// A numeric condition: every bound given must hold.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Threshold {
    /// `gt`.
    pub gt: Option<f64>,
    /// `gte`.
    pub gte: Option<f64>,
    /// `lt`.
    pub lt: Option<f64>,
    /// `lte`.
    pub lte: Option<f64>,
    /// `eq`.
    pub eq: Option<f64>,
    /// `neq`.
    pub neq: Option<f64>,
}

impl Threshold {
    /// Whether `x` satisfies every bound.
    pub fn holds(&self, x: f64) -> bool {
        self.gt.is_none_or(|v| x > v)
            && self.gte.is_none_or(|v| x >= v)
            && self.lt.is_none_or(|v| x < v)
            && self.lte.is_none_or(|v| x <= v)
            && self.eq.is_none_or(|v| x == v)
            && self.neq.is_none_or(|v| x != v)
    }

    /// Whether no bound is given.
    pub fn is_empty(&self) -> bool {
        *self == Threshold::default()
    }
}

/// A correlation rule.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CorrelationRule {
    /// Descriptive fields.
    pub meta: RuleMeta,
    /// The kind.
    pub kind: CorrelationType,
    /// Referenced rules or correlations (by id or name), in order.
    pub rules: Vec<String>,
    /// Group-by fields (or aliases).
    pub group_by: Vec<String>,
    /// The window, in nanoseconds.
    pub timespan_ns: i64,
    /// The condition on the count/sum/average/share (temporal: on the number of distinct rules
    /// seen; default all of them).
    pub threshold: Threshold,
    /// The field(s) of `condition.field` (value_* types).
    pub fields: Vec<String>,
    /// Aliases: alias → (rule id or name → event field).
    pub aliases: BTreeMap<String, BTreeMap<String, String>>,
    /// Whether the referenced rules also alert on their own (`generate`, default false).
    pub generate: bool,
}

/// Parses a timespan (`30s`, `5m`, `1h`, `2d`, `1w`) into nanoseconds.
pub fn parse_timespan(s: &str) -> Option<i64> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].trim().parse().ok()?;
    let secs: i64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        'M' => 2_592_000,
        'y' => 31_536_000,
        _ => return None,
    };
    if n <= 0 {
        return None;
    }
    n.checked_mul(secs)?.checked_mul(1_000_000_000)
}

fn number(y: &Yaml) -> Option<f64> {
    match y {
        Yaml::Int(i) => Some(*i as f64),
        Yaml::Float(f) => Some(*f),
        Yaml::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn strings(y: Option<&Yaml>) -> Result<Vec<String>, String> {
    match y {
        None | Some(Yaml::Null) => Ok(Vec::new()),
        Some(Yaml::Seq(items)) => items
            .iter()
            .map(|i| {
                i.scalar_text()
                    .ok_or_else(|| "expected a list of names".to_owned())
            })
            .collect(),
        Some(other) => other
            .scalar_text()
            .map(|s| vec![s])
            .ok_or_else(|| "expected a name or a list of names".to_owned()),
    }
}

/// Reads the `correlation` section of a document.
pub fn parse(meta: RuleMeta, c: &Yaml) -> Result<CorrelationRule, String> {
    let kind_text = c
        .get("type")
        .and_then(Yaml::as_str)
        .ok_or("correlation without `type`")?;
    let kind = CorrelationType::parse(kind_text)
        .ok_or_else(|| format!("unknown correlation type `{kind_text}`"))?;
    let rules = strings(c.get("rules")).map_err(|e| format!("correlation.rules: {e}"))?;
    if rules.is_empty() {
        return Err("correlation without `rules`".into());
    }
    let group_by = strings(c.get("group-by")).map_err(|e| format!("correlation.group-by: {e}"))?;
    let span_text = c
        .get("timespan")
        .or_else(|| c.get("timeframe"))
        .and_then(Yaml::scalar_text)
        .ok_or("correlation without `timespan`")?;
    let timespan_ns =
        parse_timespan(&span_text).ok_or_else(|| format!("bad timespan `{span_text}`"))?;
    let mut threshold = Threshold::default();
    let mut fields = Vec::new();
    match c.get("condition") {
        Some(Yaml::Map(entries)) => {
            for (k, v) in entries {
                let key = k.scalar_text().unwrap_or_default();
                if key == "field" {
                    fields = strings(Some(v)).map_err(|e| format!("condition.field: {e}"))?;
                    continue;
                }
                let n = number(v).ok_or_else(|| format!("condition.{key}: expected a number"))?;
                let slot = match key.as_str() {
                    "gt" => &mut threshold.gt,
                    "gte" => &mut threshold.gte,
                    "lt" => &mut threshold.lt,
                    "lte" => &mut threshold.lte,
                    "eq" => &mut threshold.eq,
                    "neq" => &mut threshold.neq,
                    other => return Err(format!("unknown condition operator `{other}`")),
                };
                *slot = Some(n);
            }
        }
        None | Some(Yaml::Null) => {}
        Some(other) => {
            return Err(format!(
                "correlation.condition must be a map, found a {}",
                other.kind()
            ));
        }
    }
    let needs_condition = !matches!(
        kind,
        CorrelationType::Temporal | CorrelationType::TemporalOrdered
    );
    if needs_condition && threshold.is_empty() {
        return Err(format!("{kind_text} correlation without a condition"));
    }
    let needs_field = matches!(
        kind,
        CorrelationType::ValueCount
            | CorrelationType::ValueSum
            | CorrelationType::ValueAvg
            | CorrelationType::ValuePercentile
    );
    if needs_field && fields.is_empty() {
        return Err(format!("{kind_text} correlation without `condition.field`"));
    }
    let mut aliases = BTreeMap::new();
    match c.get("aliases") {
        Some(Yaml::Map(entries)) => {
            for (alias, per_rule) in entries {
                let alias = alias.scalar_text().ok_or("alias names must be text")?;
                let Yaml::Map(per_rule) = per_rule else {
                    return Err(format!("alias `{alias}` must map rule names to fields"));
                };
                let mut m = BTreeMap::new();
                for (r, f) in per_rule {
                    let r = r.scalar_text().ok_or("alias rule names must be text")?;
                    let f = f.scalar_text().ok_or("alias fields must be text")?;
                    m.insert(r, f);
                }
                aliases.insert(alias, m);
            }
        }
        None | Some(Yaml::Null) => {}
        Some(_) => return Err("correlation.aliases must be a map".into()),
    }
    let generate = matches!(c.get("generate"), Some(Yaml::Bool(true)));
    Ok(CorrelationRule {
        meta,
        kind,
        rules,
        group_by,
        timespan_ns,
        threshold,
        fields,
        aliases,
        generate,
    })
}
