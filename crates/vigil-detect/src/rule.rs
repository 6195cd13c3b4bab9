//! The Sigma document model (detection rules, filters, correlations) and loading from YAML.
//!
//! Loading checks structure only: every search identifier, field, modifier chain and value is
//! read into plain data, with a precise reason when something cannot be. What the values *mean*
//! (and whether Vigil can match them) is decided by `compile`.

use crate::correlation::CorrelationRule;
use crate::modifiers::{self, Modifier};
use crate::yaml::{self, Yaml};

/// Where a rule says its events come from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct LogSource {
    /// `product` (windows, linux, …).
    pub product: Option<String>,
    /// `category` (process_creation, webserver, …).
    pub category: Option<String>,
    /// `service` (security, sshd, …).
    pub service: Option<String>,
}

impl std::fmt::Display for LogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (k, v) in [
            ("product", &self.product),
            ("category", &self.category),
            ("service", &self.service),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}: {v}"));
            }
        }
        if parts.is_empty() {
            f.write_str("(none)")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// A rule's descriptive fields.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RuleMeta {
    /// `title`.
    pub title: String,
    /// `id` (a UUID by convention).
    pub id: Option<String>,
    /// `name` (v2: a stable name other rules may reference).
    pub name: Option<String>,
    /// `status` (stable, test, experimental, …).
    pub status: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `level` (informational, low, medium, high, critical).
    pub level: Option<String>,
    /// `tags` (`attack.t1059.001`, `attack.execution`, `cve.2021-44228`, …).
    pub tags: Vec<String>,
    /// `author`.
    pub author: Option<String>,
    /// `references`.
    pub references: Vec<String>,
    /// `falsepositives`.
    pub falsepositives: Vec<String>,
    /// `logsource`.
    pub logsource: LogSource,
    /// Where the rule was read from (file path and document number), if known.
    pub source: Option<String>,
}

impl RuleMeta {
    /// The ATT&CK technique ids among the tags (`attack.t1059.001` → `T1059.001`).
    pub fn attack_techniques(&self) -> Vec<String> {
        self.tags
            .iter()
            .filter_map(|t| t.strip_prefix("attack."))
            .filter(|t| {
                let mut c = t.chars();
                matches!(c.next(), Some('t' | 'T')) && c.next().is_some_and(|d| d.is_ascii_digit())
            })
            .map(str::to_uppercase)
            .collect()
    }

    /// The ATT&CK tactics among the tags (`attack.execution` → `execution`).
    pub fn attack_tactics(&self) -> Vec<String> {
        self.tags
            .iter()
            .filter_map(|t| t.strip_prefix("attack."))
            .filter(|t| {
                t.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_')
            })
            .filter(|t| !matches!(*t, "g" | "s"))
            .map(str::to_owned)
            .collect()
    }
}

/// A value written in a detection.
#[derive(Debug, Clone, PartialEq)]
pub enum SigmaValue {
    /// `null`: the field is absent or null.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string (Sigma wildcard syntax unless a modifier says otherwise).
    Str(String),
}

impl SigmaValue {
    /// The value as text (`None` for null).
    pub fn text(&self) -> Option<String> {
        match self {
            SigmaValue::Null => None,
            SigmaValue::Bool(b) => Some(b.to_string()),
            SigmaValue::Int(i) => Some(i.to_string()),
            SigmaValue::Float(f) => Some(f.to_string()),
            SigmaValue::Str(s) => Some(s.clone()),
        }
    }
}

/// One `field|modifiers: values` entry (or a keyword list, where `field` is `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    /// The Sigma field name; `None` for keywords (searched in the event's text).
    pub field: Option<String>,
    /// The modifier chain, in order.
    pub modifiers: Vec<Modifier>,
    /// The values (OR-linked unless `all`).
    pub values: Vec<SigmaValue>,
}

/// A map of field specs, all of which must hold (AND).
pub type Selection = Vec<FieldSpec>;

/// A named search identifier: one or more selections, any of which may hold (OR).
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// The identifier's name as used in the condition.
    pub name: String,
    /// The alternatives.
    pub alternatives: Vec<Selection>,
}

/// A rule's `detection` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Detection {
    /// The search identifiers, in document order.
    pub searches: Vec<Search>,
    /// The condition(s); several are OR-linked.
    pub conditions: Vec<String>,
    /// The legacy `timeframe` (used only by v1 aggregations, which are not supported).
    pub timeframe: Option<String>,
}

/// A Sigma detection rule.
#[derive(Debug, Clone, PartialEq)]
pub struct SigmaRule {
    /// Descriptive fields.
    pub meta: RuleMeta,
    /// The detection.
    pub detection: Detection,
}

/// A Sigma v2 filter: a detection that suppresses matches of the rules it names.
#[derive(Debug, Clone, PartialEq)]
pub struct SigmaFilter {
    /// Descriptive fields (`title`, `id`, `logsource`…).
    pub meta: RuleMeta,
    /// The rules (by id or name) the filter applies to.
    pub rules: Vec<String>,
    /// The filter's selections and condition: when it holds, the rule's match is dropped.
    pub detection: Detection,
}

/// One YAML document of a rule file.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    /// A detection rule.
    Rule(SigmaRule),
    /// A filter.
    Filter(SigmaFilter),
    /// A correlation rule.
    Correlation(Box<CorrelationRule>),
    /// A behaviour rule (`kind: new_terms`, `outlier`, `peer_outlier`).
    Behaviour(Box<crate::behaviour::BehaviourRule>),
}

impl Document {
    /// The document's descriptive fields.
    pub fn meta(&self) -> &RuleMeta {
        match self {
            Document::Rule(r) => &r.meta,
            Document::Filter(f) => &f.meta,
            Document::Correlation(c) => &c.meta,
            Document::Behaviour(b) => &b.meta,
        }
    }
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{source_name}: {reason}")]
pub struct LoadError {
    /// File path and document number (or whatever name the caller gave).
    pub source_name: String,
    /// The document's `title`, if it could be read.
    pub title: Option<String>,
    /// The document's `id`, if it could be read.
    pub id: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// Reads every document of a YAML text (`source` names it in messages). A YAML syntax error
/// fails the whole text; a document with a bad structure fails alone.
pub fn load_str(text: &str, source: &str) -> Vec<Result<Document, LoadError>> {
    let docs = match yaml::parse_documents(text) {
        Ok(d) => d,
        Err(reason) => {
            return vec![Err(LoadError {
                source_name: source.to_owned(),
                title: None,
                id: None,
                reason: format!("YAML: {reason}"),
            })];
        }
    };
    let docs = yaml::resolve_collection(docs);
    let many = docs.len() > 1;
    docs.iter()
        .enumerate()
        .map(|(i, doc)| {
            let name = if many {
                format!("{source}#{}", i + 1)
            } else {
                source.to_owned()
            };
            document_from_yaml(doc, &name).map_err(|reason| LoadError {
                source_name: name.clone(),
                title: doc.get("title").and_then(Yaml::scalar_text),
                id: doc.get("id").and_then(Yaml::scalar_text),
                reason,
            })
        })
        .collect()
}

/// Interprets one YAML document.
pub fn document_from_yaml(doc: &Yaml, source: &str) -> Result<Document, String> {
    if !matches!(doc, Yaml::Map(_)) {
        return Err(format!("a rule must be a map, found a {}", doc.kind()));
    }
    check_top_keys(doc)?;
    let mut meta = read_meta(doc)?;
    meta.source = Some(source.to_owned());
    match doc.get("kind") {
        None => {}
        Some(Yaml::Str(kind)) if crate::behaviour::KINDS.contains(&kind.as_str()) => {
            return crate::behaviour::spec::parse(meta, doc, kind)
                .map(|b| Document::Behaviour(Box::new(b)));
        }
        Some(Yaml::Str(kind)) => return Err(crate::behaviour::spec::unknown_kind(kind)),
        Some(other) => {
            return Err(format!(
                "`kind` must be one of {}, found a {}",
                crate::behaviour::KINDS.join(", "),
                other.kind()
            ));
        }
    }
    if let Some(c) = doc.get("correlation") {
        let top_generate = matches!(doc.get("generate"), Some(Yaml::Bool(true)));
        return crate::correlation::parse(meta, c).map(|mut c| {
            c.generate |= top_generate;
            Document::Correlation(Box::new(c))
        });
    }
    if let Some(f) = doc.get("filter") {
        let rules = match f.get("rules") {
            Some(Yaml::Seq(items)) => items
                .iter()
                .map(|i| {
                    i.scalar_text()
                        .ok_or_else(|| "filter.rules must list rule ids or names".to_owned())
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(y) => vec![
                y.scalar_text()
                    .ok_or_else(|| "filter.rules must list rule ids or names".to_owned())?,
            ],
            None => return Err("filter without `rules`".into()),
        };
        let detection = read_detection(f, &["rules"])?;
        return Ok(Document::Filter(SigmaFilter {
            meta,
            rules,
            detection,
        }));
    }
    let Some(det) = doc.get("detection") else {
        return Err("no `detection`, `filter` or `correlation` section".into());
    };
    let detection = read_detection(det, &[])?;
    Ok(Document::Rule(SigmaRule { meta, detection }))
}

/// The top-level keys of a Sigma document (the specification's, SigmaHQ's repository
/// conventions, and Hayabusa's descriptive `ruletype`, `sample-evtx`, `sample-message` and
/// `details`); v1 collections' `action` is read by the loader.
pub const SIGMA_TOP_KEYS: [&str; 29] = [
    "title",
    "id",
    "name",
    "related",
    "status",
    "description",
    "references",
    "author",
    "date",
    "modified",
    "tags",
    "logsource",
    "detection",
    "fields",
    "falsepositives",
    "level",
    "license",
    "taxonomy",
    "scope",
    "correlation",
    "filter",
    "generate",
    "regression_tests_path",
    // Vigil's inline test cases (`vigil rules test`, crate::ruletest).
    "tests",
    "simulation",
    "ruletype",
    "sample-evtx",
    "sample-message",
    "details",
];

/// Refuses a document with a top-level key Vigil does not know: run without the meaning of
/// that key, the rule could alert on what its author meant to exclude (a first-seen rule
/// written before Vigil knew `kind` would alert on every matching event).
fn check_top_keys(doc: &Yaml) -> Result<(), String> {
    let Yaml::Map(entries) = doc else {
        return Ok(());
    };
    let kind = doc.get("kind").and_then(Yaml::as_str);
    for (k, _) in entries {
        let Some(key) = k.scalar_text() else {
            return Err(format!(
                "a top-level key must be a name, found a {}",
                k.kind()
            ));
        };
        if SIGMA_TOP_KEYS.contains(&key.as_str()) || key == "action" || key == "kind" {
            continue;
        }
        // A behaviour section is known only in a document of that kind; a section of another
        // kind is refused by the behaviour reader with its own reason.
        if crate::behaviour::spec::TOP_KEYS.contains(&key.as_str())
            && kind.is_some_and(|k| crate::behaviour::KINDS.contains(&k))
        {
            continue;
        }
        let hint = if crate::behaviour::KINDS.contains(&key.as_str()) {
            format!(" (a `{key}:` section needs `kind: {key}`)")
        } else {
            String::new()
        };
        return Err(format!(
            "`{key}` is not a top-level key Vigil knows{hint}: the rule is refused rather than \
             run without it"
        ));
    }
    Ok(())
}

fn string_list(y: Option<&Yaml>) -> Vec<String> {
    match y {
        Some(Yaml::Seq(items)) => items.iter().filter_map(Yaml::scalar_text).collect(),
        Some(other) => other.scalar_text().into_iter().collect(),
        None => Vec::new(),
    }
}

fn read_meta(doc: &Yaml) -> Result<RuleMeta, String> {
    // `title` is mandatory in the spec; a document with only a `name` or `id` is still usable.
    let title = doc
        .get("title")
        .or_else(|| doc.get("name"))
        .or_else(|| doc.get("id"))
        .and_then(Yaml::scalar_text)
        .ok_or("no `title`")?;
    let text = |k: &str| doc.get(k).and_then(Yaml::scalar_text);
    let logsource = match doc.get("logsource") {
        Some(ls @ Yaml::Map(_)) => LogSource {
            product: ls.get("product").and_then(Yaml::scalar_text),
            category: ls.get("category").and_then(Yaml::scalar_text),
            service: ls.get("service").and_then(Yaml::scalar_text),
        },
        Some(Yaml::Null) | None => LogSource::default(),
        Some(other) => {
            return Err(format!(
                "`logsource` must be a map, found a {}",
                other.kind()
            ));
        }
    };
    Ok(RuleMeta {
        title,
        id: text("id"),
        name: text("name"),
        status: text("status"),
        description: text("description"),
        level: text("level"),
        tags: string_list(doc.get("tags")),
        author: text("author"),
        references: string_list(doc.get("references")),
        falsepositives: string_list(doc.get("falsepositives")),
        logsource,
        source: None,
    })
}

/// Reads a `detection` (or `filter`) map; `skip` names keys that are not search identifiers.
pub fn read_detection(det: &Yaml, skip: &[&str]) -> Result<Detection, String> {
    let Yaml::Map(entries) = det else {
        return Err(format!("`detection` must be a map, found a {}", det.kind()));
    };
    let mut detection = Detection::default();
    for (k, v) in entries {
        let key = k
            .scalar_text()
            .ok_or_else(|| format!("detection key must be a name, found a {}", k.kind()))?;
        if skip.contains(&key.as_str()) {
            continue;
        }
        match key.as_str() {
            "condition" => {
                detection.conditions = match v {
                    Yaml::Seq(items) => items
                        .iter()
                        .map(|i| i.scalar_text().ok_or("condition list items must be text"))
                        .collect::<Result<_, _>>()?,
                    other => vec![other.scalar_text().ok_or("condition must be text")?],
                };
            }
            "timeframe" => detection.timeframe = v.scalar_text(),
            _ => detection.searches.push(Search {
                alternatives: read_search(&key, v)?,
                name: key,
            }),
        }
    }
    if detection.conditions.is_empty() {
        return Err("detection has no `condition`".into());
    }
    Ok(detection)
}

fn read_search(name: &str, v: &Yaml) -> Result<Vec<Selection>, String> {
    match v {
        Yaml::Map(entries) => Ok(vec![read_selection(name, entries)?]),
        Yaml::Seq(items) => {
            let mut out = Vec::new();
            let mut keywords = Vec::new();
            for item in items {
                match item {
                    Yaml::Map(entries) => out.push(read_selection(name, entries)?),
                    Yaml::Seq(_) => {
                        return Err(format!("search `{name}`: a list inside a list"));
                    }
                    scalar => keywords.push(scalar_value(scalar)),
                }
            }
            if !keywords.is_empty() {
                out.push(vec![FieldSpec {
                    field: None,
                    modifiers: Vec::new(),
                    values: keywords,
                }]);
            }
            if out.is_empty() {
                return Err(format!("search `{name}` is an empty list"));
            }
            Ok(out)
        }
        Yaml::Null => Err(format!("search `{name}` is empty")),
        scalar => Ok(vec![vec![FieldSpec {
            field: None,
            modifiers: Vec::new(),
            values: vec![scalar_value(scalar)],
        }]]),
    }
}

fn scalar_value(y: &Yaml) -> SigmaValue {
    match y {
        Yaml::Null => SigmaValue::Null,
        Yaml::Bool(b) => SigmaValue::Bool(*b),
        Yaml::Int(i) => SigmaValue::Int(*i),
        Yaml::Float(f) => SigmaValue::Float(*f),
        Yaml::Str(s) => SigmaValue::Str(s.clone()),
        Yaml::Seq(_) | Yaml::Map(_) => SigmaValue::Null,
    }
}

fn read_selection(name: &str, entries: &[(Yaml, Yaml)]) -> Result<Selection, String> {
    if entries.is_empty() {
        return Err(format!("search `{name}` is an empty map"));
    }
    let mut out = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let key = k
            .scalar_text()
            .ok_or_else(|| format!("search `{name}`: a field name must be text"))?;
        let mut pieces = key.split('|');
        let field = pieces.next().unwrap_or("").trim().to_owned();
        let mut mods = Vec::new();
        for m in pieces {
            let m = m.trim();
            let parsed = Modifier::parse(m)
                .ok_or_else(|| format!("search `{name}`: unknown modifier `{m}` in `{key}`"))?;
            mods.push(parsed);
        }
        modifiers::validate(&mods).map_err(|e| format!("search `{name}`, `{key}`: {e}"))?;
        let values = match v {
            Yaml::Seq(items) => {
                if items.is_empty() {
                    return Err(format!("search `{name}`, `{key}`: empty value list"));
                }
                items
                    .iter()
                    .map(|i| match i {
                        Yaml::Seq(_) | Yaml::Map(_) => Err(format!(
                            "search `{name}`, `{key}`: a value must be a scalar, found a {}",
                            i.kind()
                        )),
                        s => Ok(scalar_value(s)),
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            Yaml::Map(_) => {
                return Err(format!(
                    "search `{name}`, `{key}`: a value must be a scalar or list, found a map"
                ));
            }
            s => vec![scalar_value(s)],
        };
        out.push(FieldSpec {
            field: if field.is_empty() { None } else { Some(field) },
            modifiers: mods,
            values,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<Document, LoadError> {
        load_str(text, "t.yml").into_iter().next().unwrap()
    }

    #[test]
    fn reads_a_rule() {
        let d = one(r"
title: Test
id: 1234
level: high
tags: [attack.execution, attack.t1059.001, cve.2021-1]
logsource: {product: windows, category: process_creation}
detection:
    selection:
        Image|endswith: '\cmd.exe'
        CommandLine|contains|all: [' /c ', 'whoami']
    keywords:
        - evil
        - 42
    filter:
        - User: null
        - User: SYSTEM
    condition: selection and not filter or keywords
")
        .unwrap();
        let Document::Rule(r) = d else { panic!() };
        assert_eq!(r.meta.id.as_deref(), Some("1234"));
        assert_eq!(r.meta.attack_techniques(), vec!["T1059.001"]);
        assert_eq!(r.meta.attack_tactics(), vec!["execution"]);
        assert_eq!(r.detection.searches.len(), 3);
        let sel = &r.detection.searches[0].alternatives[0];
        assert_eq!(sel[1].modifiers, vec![Modifier::Contains, Modifier::All]);
        let kw = &r.detection.searches[1].alternatives[0][0];
        assert_eq!(kw.field, None);
        assert_eq!(kw.values[1], SigmaValue::Int(42));
        assert_eq!(r.detection.searches[2].alternatives.len(), 2);
    }

    #[test]
    fn structural_errors_are_reasons() {
        for (text, want) in [
            ("title: x\nlogsource: {}\n", "no `detection`"),
            ("title: x\ndetection: {s: {a: 1}}\n", "no `condition`"),
            (
                "title: x\ndetection: {s: {a|nope: 1}, condition: s}\n",
                "unknown modifier",
            ),
            (
                "title: x\ndetection: {s: {a: {b: 1}}, condition: s}\n",
                "found a map",
            ),
            ("- 1\n- 2\n", "must be a map"),
            ("title: [unclosed\n", "YAML"),
        ] {
            let e = one(text).unwrap_err();
            assert!(e.reason.contains(want), "{text:?}: {}", e.reason);
        }
    }

    #[test]
    fn reads_a_filter() {
        let d = one(
            "title: F\nlogsource: {product: windows}\nfilter:\n  rules: [abc, def]\n  selection: {User|startswith: adm_}\n  condition: selection\n",
        )
        .unwrap();
        let Document::Filter(f) = d else { panic!() };
        assert_eq!(f.rules, vec!["abc", "def"]);
        assert_eq!(f.detection.searches.len(), 1);
    }
}
