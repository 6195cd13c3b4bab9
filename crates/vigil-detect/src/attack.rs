//! MITRE ATT&CK Enterprise as data: the tactics in the matrix's order and every technique's
//! name and tactics (`data/attack-enterprise.tsv`, ATT&CK v18.1, generated from MITRE's STIX
//! bundle; its header says how), and the coverage matrix of a rule set
//! ([`coverage`]): which techniques the enabled rules detect, counting only rules whose
//! logsource Vigil is actually receiving, with its ATT&CK Navigator layer ([`navigator_layer`]).
//!
//! Pure: what is being received is the caller's question (the server asks its index).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use serde_json::{Value as Json, json};

/// The ATT&CK version of the bundled data.
pub const ATTACK_VERSION: &str = "18";
/// The ATT&CK Navigator layer format written by [`navigator_layer`].
pub const LAYER_VERSION: &str = "4.5";

/// One ATT&CK tactic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tactic {
    /// `TA0006`.
    pub id: &'static str,
    /// `credential-access` (the name ATT&CK's data and the Navigator use).
    pub short: &'static str,
    /// `Credential Access`.
    pub name: &'static str,
}

const fn tactic(id: &'static str, short: &'static str, name: &'static str) -> Tactic {
    Tactic { id, short, name }
}

/// The Enterprise tactics, in the matrix's order.
pub const TACTICS: [Tactic; 14] = [
    tactic("TA0043", "reconnaissance", "Reconnaissance"),
    tactic("TA0042", "resource-development", "Resource Development"),
    tactic("TA0001", "initial-access", "Initial Access"),
    tactic("TA0002", "execution", "Execution"),
    tactic("TA0003", "persistence", "Persistence"),
    tactic("TA0004", "privilege-escalation", "Privilege Escalation"),
    tactic("TA0005", "defense-evasion", "Defense Evasion"),
    tactic("TA0006", "credential-access", "Credential Access"),
    tactic("TA0007", "discovery", "Discovery"),
    tactic("TA0008", "lateral-movement", "Lateral Movement"),
    tactic("TA0009", "collection", "Collection"),
    tactic("TA0011", "command-and-control", "Command and Control"),
    tactic("TA0010", "exfiltration", "Exfiltration"),
    tactic("TA0040", "impact", "Impact"),
];

/// One technique or sub-technique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Technique {
    /// `T1110.001`.
    pub id: &'static str,
    /// `Password Guessing`.
    pub name: &'static str,
    /// The tactics it serves (short names).
    pub tactics: Vec<&'static str>,
}

const DATA: &str = include_str!("../data/attack-enterprise.tsv");

fn table() -> &'static HashMap<&'static str, Technique> {
    static TABLE: OnceLock<HashMap<&'static str, Technique>> = OnceLock::new();
    TABLE.get_or_init(|| {
        DATA.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let mut cols = l.split('\t');
                let (id, name, tactics) = (cols.next()?, cols.next()?, cols.next().unwrap_or(""));
                Some((
                    id,
                    Technique {
                        id,
                        name,
                        tactics: tactics.split(',').filter(|t| !t.is_empty()).collect(),
                    },
                ))
            })
            .collect()
    })
}

/// A technique by id (`T1110.001`, any case).
pub fn technique(id: &str) -> Option<&'static Technique> {
    table().get(id.to_ascii_uppercase().as_str())
}

/// How many techniques the bundled data knows.
pub fn technique_count() -> usize {
    table().len()
}

/// A tactic by its short name, its Sigma tag spelling (`credential_access`) or id.
pub fn tactic_of(name: &str) -> Option<&'static Tactic> {
    let n = name.to_ascii_lowercase().replace('_', "-");
    TACTICS
        .iter()
        .find(|t| t.short == n || t.id.eq_ignore_ascii_case(&n))
}

/// What an ATT&CK tag names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum AttackTag {
    /// A technique id, upper case (`T1110.001`).
    Technique(String),
    /// A tactic (short name).
    Tactic(&'static str),
}

/// Reads a rule tag: `attack.t1110.001` and `t1110.001` are the same technique,
/// `attack.credential_access` a tactic; anything else (groups, software, other tags) is `None`.
pub fn parse_tag(tag: &str) -> Option<AttackTag> {
    let lower = tag.to_ascii_lowercase();
    let t = lower.strip_prefix("attack.").unwrap_or(&lower);
    let mut chars = t.chars();
    if chars.next() == Some('t') && t.len() >= 5 && t[1..5].chars().all(|c| c.is_ascii_digit()) {
        let ok = t.len() == 5
            || (t.len() == 9 && &t[5..6] == "." && t[6..].chars().all(|c| c.is_ascii_digit()));
        return ok.then(|| AttackTag::Technique(t.to_ascii_uppercase()));
    }
    if lower.starts_with("attack.") {
        return tactic_of(t).map(|x| AttackTag::Tactic(x.short));
    }
    None
}

/// One enabled rule as coverage sees it.
#[derive(Debug, Clone)]
pub struct CoverageRule {
    /// The rule's id (as alerts show it).
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Whether events of its logsource are being received.
    pub received: bool,
}

/// One cell of the matrix: a technique under a tactic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The technique id.
    pub technique: String,
    /// Its name (from the bundled data; the id when ATT&CK does not know it).
    pub name: String,
    /// Rules detecting it whose logsource is being received.
    pub active: Vec<String>,
    /// Rules detecting it whose logsource is not being received (they count for nothing).
    pub idle: Vec<String>,
}

/// The matrix: per tactic (in [`TACTICS`] order), the techniques the rules name.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// `(tactic short name, cells)`.
    pub tactics: Vec<(&'static str, Vec<Cell>)>,
    /// Rules with no ATT&CK technique tag.
    pub untagged: usize,
    /// Rules considered.
    pub rules: usize,
}

/// The rules of one cell: with data, without.
type RuleSets = (BTreeSet<String>, BTreeSet<String>);

/// Builds the matrix. A technique goes under the tactics its rule is tagged with when the rule
/// names any, else under the tactics ATT&CK lists for it. A technique's cell counts the rules
/// whose logsource is received (`active`) apart from the rest (`idle`): a rule for Sysmon with
/// no Sysmon data does not cover anything.
pub fn coverage(rules: &[CoverageRule]) -> Coverage {
    // (tactic, technique) → (active, idle)
    let mut cells: BTreeMap<(&'static str, String), RuleSets> = BTreeMap::new();
    let mut untagged = 0;
    for rule in rules {
        let tags: BTreeSet<AttackTag> = rule.tags.iter().filter_map(|t| parse_tag(t)).collect();
        let tactics: Vec<&'static str> = tags
            .iter()
            .filter_map(|t| match t {
                AttackTag::Tactic(x) => Some(*x),
                AttackTag::Technique(_) => None,
            })
            .collect();
        let techniques: Vec<&String> = tags
            .iter()
            .filter_map(|t| match t {
                AttackTag::Technique(x) => Some(x),
                AttackTag::Tactic(_) => None,
            })
            .collect();
        if techniques.is_empty() {
            untagged += 1;
            continue;
        }
        for tech in techniques {
            let known: Vec<&'static str> = technique(tech)
                .map(|t| t.tactics.clone())
                .unwrap_or_default();
            // The rule's own tactics, where ATT&CK agrees or does not know the technique.
            let mut under: Vec<&'static str> = tactics
                .iter()
                .copied()
                .filter(|t| known.is_empty() || known.contains(t))
                .collect();
            if under.is_empty() {
                under = known;
            }
            if under.is_empty() {
                under.push("unknown");
            }
            for tactic in under {
                let entry = cells.entry((tactic, tech.clone())).or_default();
                let label = format!("{} ({})", rule.title, rule.id);
                if rule.received {
                    entry.0.insert(label);
                } else {
                    entry.1.insert(label);
                }
            }
        }
    }
    let mut out = Coverage {
        untagged,
        rules: rules.len(),
        ..Coverage::default()
    };
    let order = TACTICS.iter().map(|t| t.short).chain(["unknown"]);
    for tactic in order {
        let list: Vec<Cell> = cells
            .iter()
            .filter(|((t, _), _)| *t == tactic)
            .map(|((_, tech), (active, idle))| Cell {
                technique: tech.clone(),
                name: technique(tech).map_or_else(|| tech.clone(), |t| t.name.to_owned()),
                active: active.iter().cloned().collect(),
                idle: idle.iter().cloned().collect(),
            })
            .collect();
        if !list.is_empty() || tactic != "unknown" {
            out.tactics.push((tactic, list));
        }
    }
    out
}

impl Coverage {
    /// The matrix as `GET /api/v1/coverage` answers it.
    pub fn to_json(&self) -> Json {
        let tactics: Vec<Json> = self
            .tactics
            .iter()
            .map(|(short, cells)| {
                let t = tactic_of(short);
                json!({
                    "tactic": short,
                    "id": t.map(|t| t.id),
                    "name": t.map_or("Unknown tactic", |t| t.name),
                    "techniques": cells.iter().map(|c| json!({
                        "id": c.technique,
                        "name": c.name,
                        "rules": c.active.len(),
                        "idle_rules": c.idle.len(),
                        "active": c.active,
                        "idle": c.idle,
                        "url": url(&c.technique),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let covered: BTreeSet<&str> = self
            .tactics
            .iter()
            .flat_map(|(_, cells)| cells.iter())
            .filter(|c| !c.active.is_empty())
            .map(|c| c.technique.as_str())
            .collect();
        let named: BTreeSet<&str> = self
            .tactics
            .iter()
            .flat_map(|(_, cells)| cells.iter())
            .map(|c| c.technique.as_str())
            .collect();
        json!({
            "attack_version": ATTACK_VERSION,
            "tactics": tactics,
            "rules": self.rules,
            "untagged_rules": self.untagged,
            "techniques_named": named.len(),
            "techniques_covered": covered.len(),
        })
    }
}

/// The technique's page on attack.mitre.org.
pub fn url(id: &str) -> String {
    format!(
        "https://attack.mitre.org/techniques/{}/",
        id.to_ascii_uppercase().replace('.', "/")
    )
}

/// The matrix as an ATT&CK Navigator layer (format 4.5): one technique entry per (technique,
/// tactic) cell, `score` the number of rules whose logsource is received, the rules in the
/// comment and metadata; techniques whose rules all lack data are listed with score 0 and
/// greyed out.
pub fn navigator_layer(c: &Coverage, name: &str) -> Json {
    let mut techniques = Vec::new();
    let mut max = 0;
    for (tactic, cells) in &c.tactics {
        if *tactic == "unknown" {
            continue;
        }
        for cell in cells {
            max = max.max(cell.active.len());
            let mut metadata: Vec<Json> = cell
                .active
                .iter()
                .map(|r| json!({"name": "rule", "value": r}))
                .collect();
            metadata.extend(
                cell.idle
                    .iter()
                    .map(|r| json!({"name": "rule without data", "value": r})),
            );
            techniques.push(json!({
                "techniqueID": cell.technique,
                "tactic": tactic,
                "score": cell.active.len(),
                "enabled": !cell.active.is_empty(),
                "color": if cell.active.is_empty() { "#d0d0d0" } else { "" },
                "comment": format!("{} rule(s) with data, {} without", cell.active.len(), cell.idle.len()),
                "metadata": metadata,
                "showSubtechniques": false,
            }));
        }
    }
    json!({
        "name": name,
        "versions": {"attack": ATTACK_VERSION, "navigator": "5.1.0", "layer": LAYER_VERSION},
        "domain": "enterprise-attack",
        "description": "Techniques detected by Vigil's enabled rules; score = rules whose logsource is being received.",
        "sorting": 3,
        "layout": {"layout": "side", "showID": true, "showName": true},
        "hideDisabled": false,
        "techniques": techniques,
        "gradient": {"colors": ["#ffe766", "#8ec843"], "minValue": 0, "maxValue": max.max(1)},
        "legendItems": [],
        "metadata": [],
        "showTacticRowBackground": false,
        "selectTechniquesAcrossTactics": false,
        "selectSubtechniquesWithParent": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_data_names_techniques_and_their_tactics() {
        assert!(technique_count() > 600, "{}", technique_count());
        let t = technique("t1110.001").unwrap();
        assert_eq!(t.name, "Password Guessing");
        assert_eq!(t.tactics, ["credential-access"]);
        assert!(technique("T9999").is_none());
    }

    #[test]
    fn tags_read_once_per_fact() {
        assert_eq!(
            parse_tag("attack.t1110.001"),
            Some(AttackTag::Technique("T1110.001".into()))
        );
        assert_eq!(parse_tag("t1110.001"), parse_tag("attack.T1110.001"));
        assert_eq!(
            parse_tag("attack.credential_access"),
            Some(AttackTag::Tactic("credential-access"))
        );
        assert_eq!(parse_tag("attack.g0007"), None);
        assert_eq!(parse_tag("cve.2021-44228"), None);
        assert_eq!(parse_tag("attack.t1110.1"), None);
    }

    #[test]
    fn only_rules_with_data_cover_a_technique() {
        let rules = vec![
            CoverageRule {
                id: "a".into(),
                title: "SSH brute force".into(),
                tags: vec!["attack.credential_access".into(), "attack.t1110.001".into()],
                received: true,
            },
            CoverageRule {
                id: "b".into(),
                title: "Another guesser".into(),
                tags: vec!["t1110.001".into(), "attack.t1110.001".into()],
                received: true,
            },
            CoverageRule {
                id: "c".into(),
                title: "Sysmon LSASS".into(),
                tags: vec!["attack.t1003.001".into()],
                received: false,
            },
            CoverageRule {
                id: "d".into(),
                title: "No tags".into(),
                tags: vec![],
                received: true,
            },
        ];
        let c = coverage(&rules);
        assert_eq!(c.untagged, 1);
        let cred = &c
            .tactics
            .iter()
            .find(|(t, _)| *t == "credential-access")
            .unwrap()
            .1;
        let guess = cred.iter().find(|x| x.technique == "T1110.001").unwrap();
        assert_eq!(guess.active.len(), 2, "two rules, once each");
        assert_eq!(guess.name, "Password Guessing");
        let lsass = cred.iter().find(|x| x.technique == "T1003.001").unwrap();
        assert!(lsass.active.is_empty());
        assert_eq!(lsass.idle.len(), 1);
        let j = c.to_json();
        assert_eq!(j["techniques_covered"], 1);
        assert_eq!(j["techniques_named"], 2);
        let layer = navigator_layer(&c, "x");
        assert_eq!(layer["versions"]["layer"], "4.5");
        let t: Vec<&Json> = layer["techniques"].as_array().unwrap().iter().collect();
        assert_eq!(t.len(), 2);
        assert!(
            t.iter()
                .any(|x| x["techniqueID"] == "T1110.001" && x["score"] == 2)
        );
        assert!(
            t.iter()
                .any(|x| x["techniqueID"] == "T1003.001" && x["score"] == 0)
        );
    }
}
