//! The compliance mapping: which events each control of each framework asks for, as data
//! (`mappings/v1.toml`, built in; `vigil report --mapping FILE` replaces it). Format version
//! [`MAPPING_VERSION`]; the file's own comments describe every key.

use std::collections::BTreeMap;

use serde::Deserialize;
use vigil_event::{Event, Value};

/// The mapping format version this Vigil reads.
pub const MAPPING_VERSION: u64 = 1;

/// The mapping shipped with Vigil.
pub const BUILTIN: &str = include_str!("../mappings/v1.toml");

/// Which part of the report a control's numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// Which sources emit the control's event classes.
    Coverage,
    /// Share of events carrying the six fields of PCI DSS 10.2.2.
    Completeness,
    /// Rules, alerts and their triage.
    Review,
    /// The ledger's verification, checkpoints and consistency.
    Integrity,
    /// How long events are kept, pruning, legal holds.
    Retention,
    /// Silent sources, unclean stops, parse failures, reads of the audit trail.
    Failures,
}

/// One alternative of a class: every field must have one of the values.
pub type Alternative = BTreeMap<String, Vec<String>>;

/// A compliance mapping.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Format version ([`MAPPING_VERSION`]).
    pub version: u64,
    /// Share of events a source must have with each field for completeness to be met.
    pub completeness_threshold: f64,
    /// Days of events retention must keep.
    pub retention_days: u64,
    /// Days of the newest events that must be immediately available (searchable).
    pub immediately_available_days: u64,
    /// Event classes by name.
    pub classes: BTreeMap<String, Vec<Alternative>>,
    /// The frameworks.
    #[serde(rename = "framework")]
    pub frameworks: Vec<Framework>,
}

/// A compliance framework.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Framework {
    /// What `vigil report` is given (`pci-dss`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its controls, in report order.
    #[serde(rename = "control")]
    pub controls: Vec<Control>,
}

/// One control of a framework.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Its number (`10.2.1.4`).
    pub id: String,
    /// What it asks, in short.
    pub title: String,
    /// Where its numbers come from.
    pub section: Section,
    /// Event classes it requires (coverage).
    #[serde(default)]
    pub classes: Vec<String>,
    /// Sigma rule tags that map a rule to it.
    #[serde(default)]
    pub tags: Vec<String>,
    /// ATT&CK tags that map a rule to it.
    #[serde(default)]
    pub attack: Vec<String>,
    /// Sigma logsources it asks for: the report says, for each, which sources sent events of
    /// it and which enabled rules watch it.
    #[serde(default)]
    pub logsources: Vec<Logsource>,
}

/// A Sigma logsource a control asks for. A field left out matches any value: `{ category =
/// "firewall" }` is covered by a rule on `product: fortigate, category: firewall`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Logsource {
    /// `product` (linux, windows, …).
    pub product: Option<String>,
    /// `category` (firewall, webserver, process_creation, …).
    pub category: Option<String>,
    /// `service` (sshd, security, …).
    pub service: Option<String>,
}

impl Logsource {
    /// How the report names it: `product: linux, service: sshd`.
    pub fn key(&self) -> String {
        [
            ("product", &self.product),
            ("category", &self.category),
            ("service", &self.service),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
        .collect::<Vec<_>>()
        .join(", ")
    }

    /// Whether a rule on `rule` watches this logsource: every field this one names, the rule
    /// names with the same value (case-insensitively).
    pub fn covered_by(&self, rule: &Logsource) -> bool {
        let same = |want: &Option<String>, have: &Option<String>| match (want, have) {
            (None, _) => true,
            (Some(w), Some(h)) => w.eq_ignore_ascii_case(h),
            (Some(_), None) => false,
        };
        same(&self.product, &rule.product)
            && same(&self.category, &rule.category)
            && same(&self.service, &rule.service)
    }
}

/// Why a mapping cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// Not TOML of the expected shape.
    #[error("mapping: {0}")]
    Parse(String),
    /// A version this Vigil does not read.
    #[error("mapping version {0} (this Vigil reads version {MAPPING_VERSION})")]
    Version(u64),
    /// A control names a class that is not defined.
    #[error(
        "mapping: control {control} of {framework} requires class {class:?}, which [classes] does not define"
    )]
    UnknownClass {
        /// The framework.
        framework: String,
        /// The control.
        control: String,
        /// The missing class.
        class: String,
    },
    /// A coverage control without classes, or a threshold out of range.
    #[error("mapping: {0}")]
    Invalid(String),
}

impl Mapping {
    /// The built-in mapping.
    pub fn builtin() -> Mapping {
        Mapping::parse(BUILTIN).expect("the built-in mapping parses (tested)")
    }

    /// Parses and checks a mapping file's text.
    pub fn parse(text: &str) -> Result<Mapping, MappingError> {
        let mapping: Mapping =
            toml::from_str(text).map_err(|e| MappingError::Parse(e.to_string()))?;
        if mapping.version != MAPPING_VERSION {
            return Err(MappingError::Version(mapping.version));
        }
        if !(0.0..=1.0).contains(&mapping.completeness_threshold) {
            return Err(MappingError::Invalid(
                "completeness_threshold must be between 0 and 1".into(),
            ));
        }
        for f in &mapping.frameworks {
            for c in &f.controls {
                if c.section == Section::Coverage && c.classes.is_empty() {
                    return Err(MappingError::Invalid(format!(
                        "coverage control {} of {} names no classes",
                        c.id, f.id
                    )));
                }
                if c.logsources.iter().any(|l| l.key().is_empty()) {
                    return Err(MappingError::Invalid(format!(
                        "control {} of {} names a logsource without product, category or service",
                        c.id, f.id
                    )));
                }
                if let Some(class) = c.classes.iter().find(|k| !mapping.classes.contains_key(*k)) {
                    return Err(MappingError::UnknownClass {
                        framework: f.id.clone(),
                        control: c.id.clone(),
                        class: class.clone(),
                    });
                }
            }
        }
        Ok(mapping)
    }

    /// The framework `id`.
    pub fn framework(&self, id: &str) -> Option<&Framework> {
        self.frameworks.iter().find(|f| f.id == id)
    }

    /// Every logsource the controls of `framework` ask for.
    pub fn logsources(framework: &Framework) -> Vec<Logsource> {
        let mut all: Vec<Logsource> = framework
            .controls
            .iter()
            .flat_map(|c| c.logsources.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// The names of the classes `event` belongs to.
    pub fn classes_of(&self, event: &Event) -> Vec<&str> {
        self.classes
            .iter()
            .filter(|(_, alternatives)| alternatives.iter().any(|a| matches(a, event)))
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

/// Whether every field of `alternative` has one of its values in `event` (for a list field,
/// any element).
pub fn matches(alternative: &Alternative, event: &Event) -> bool {
    alternative.iter().all(|(field, allowed)| {
        let has = |v: &Value| v.as_str().is_some_and(|s| allowed.iter().any(|a| a == s));
        match event.get(field) {
            Some(Value::List(items)) => items.iter().any(has),
            Some(v) => has(v),
            None => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::Timestamp;

    #[test]
    fn the_builtin_mapping_parses_and_names_every_framework_of_the_issue() {
        let m = Mapping::builtin();
        for id in ["pci-dss", "hipaa", "iso27001", "soc2"] {
            assert!(m.framework(id).is_some(), "{id}");
        }
        let pci = m.framework("pci-dss").unwrap();
        assert_eq!(pci.version, "4.0.1");
        for id in [
            "10.2.1.1", "10.2.1.7", "10.2.2", "10.3.2", "10.4.1", "10.5.1", "10.7.2",
        ] {
            assert!(pci.controls.iter().any(|c| c.id == id), "{id}");
        }
    }

    #[test]
    fn events_fall_in_classes_by_their_ecs_fields_lists_included() {
        let m = Mapping::builtin();
        let mut e = Event::new(Timestamp::from_secs(0));
        e.insert(
            "event.category",
            Value::List(vec![Value::from("authentication")]),
        );
        e.insert("event.outcome", "failure");
        let classes = m.classes_of(&e);
        assert!(classes.contains(&"invalid_access"), "{classes:?}");
        assert!(classes.contains(&"user_access"), "{classes:?}");
        assert!(!classes.contains(&"admin_action"), "{classes:?}");
    }

    #[test]
    fn a_logsource_is_covered_by_rules_as_specific_or_more() {
        let m = Mapping::builtin();
        let pci = m.framework("pci-dss").unwrap();
        let all = Mapping::logsources(pci);
        assert!(
            all.iter().any(|l| l.key() == "category: firewall"),
            "{all:?}"
        );
        let firewall = Logsource {
            category: Some("firewall".into()),
            ..Logsource::default()
        };
        let fortigate = Logsource {
            product: Some("fortigate".into()),
            category: Some("Firewall".into()),
            service: None,
        };
        assert!(firewall.covered_by(&fortigate));
        assert!(!fortigate.covered_by(&firewall));
        let bad = BUILTIN.replacen(
            "logsources = [",
            "logsources = [{ product = \"x\" }, {},",
            1,
        );
        let err = Mapping::parse(&bad).unwrap_err().to_string();
        assert!(err.contains("without product"), "{err}");
    }

    #[test]
    fn a_bad_mapping_is_refused_with_the_reason() {
        let bad_version = BUILTIN.replacen("version = 1", "version = 2", 1);
        assert!(matches!(
            Mapping::parse(&bad_version),
            Err(MappingError::Version(2))
        ));
        let unknown = BUILTIN.replacen("classes = [\"user_access\"]", "classes = [\"nope\"]", 1);
        let err = Mapping::parse(&unknown).unwrap_err().to_string();
        assert!(err.contains("\"nope\""), "{err}");
        assert!(Mapping::parse("version = 1\nsurprise = true").is_err());
    }
}
