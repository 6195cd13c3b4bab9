//! Why an event did or did not match a rule: which logsource, which search identifier, which
//! field, which modifier.
//!
//! [`explain`] is a pure function. It does not re-implement matching: it compiles the rule, each
//! of its search identifiers on its own, and each of their `field|modifiers: values` entries on
//! its own as small rules through the same compiler ([`RuleSet::compile_with`]) and matches the
//! event against them with the same matcher. So the explanation cannot disagree with what
//! detection does; it only splits the rule into the pieces a reader needs.

use serde::Serialize;
use vigil_event::{Event, Value};

use crate::compile::CompileOptions;
use crate::rule::{Detection, Document, FieldSpec, Search, SigmaFilter, SigmaRule};
use crate::ruleset::RuleSet;

/// Longest event value shown in a trace (longer ones are cut, marked with `…`).
const MAX_SHOWN: usize = 200;
/// Most values of one field shown (a list field may hold many).
const MAX_VALUES: usize = 8;
/// Most field entries traced in one rule: past this, entries are reported as not traced
/// (a rule with thousands of entries would otherwise cost a compile per entry).
pub const MAX_TRACED_FIELDS: usize = 256;

/// Why an event did or did not match a rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    /// The rule's title.
    pub title: String,
    /// The rule's id, if it has one.
    pub id: Option<String>,
    /// Whether the rule (its filters included) matches the event.
    pub matched: bool,
    /// Whether the rule's condition holds, before filters.
    pub condition_held: bool,
    /// The rule's logsource and whether the event belongs to it.
    pub logsource: LogsourceTrace,
    /// The condition(s) as written (several are OR-linked).
    pub condition: Vec<String>,
    /// Each search identifier.
    pub searches: Vec<SearchTrace>,
    /// Filters (Sigma v2 `filter` documents) that hold for the event and so drop the match.
    pub filters_held: Vec<String>,
    /// One sentence saying why.
    pub summary: String,
    /// Set when the rule cannot be compiled at all (then nothing else is meaningful).
    pub unsupported: Option<String>,
}

/// The rule's logsource against the event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogsourceTrace {
    /// `product/category/service`, as written (missing parts left out).
    pub logsource: String,
    /// Whether the event belongs to it (it is only then that the detection is looked at).
    pub applies: bool,
}

/// One search identifier (`selection`, `filter_main`, `keywords` …).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchTrace {
    /// The identifier, as the condition names it.
    pub name: String,
    /// Whether it holds for the event.
    pub matched: bool,
    /// Its alternatives (a list of maps is OR-linked); each is a list of entries, all of which
    /// must hold.
    pub alternatives: Vec<Vec<FieldTrace>>,
}

/// One `field|modifiers: values` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldTrace {
    /// The Sigma field (`None`: keywords, searched in the event's text).
    pub field: Option<String>,
    /// The event field it reads under the logsource's field mapping, when it differs.
    pub event_field: Option<String>,
    /// The modifier chain, in order.
    pub modifiers: Vec<String>,
    /// The values as written (at most [`MAX_VALUES`] shown).
    pub values: Vec<String>,
    /// The event's value(s) of the field (cut to [`MAX_SHOWN`] characters), empty if absent.
    pub event_values: Vec<String>,
    /// Whether the entry holds; `None` when it could not be traced on its own (see `note`).
    pub matched: Option<bool>,
    /// Why the entry could not be traced, if so.
    pub note: Option<String>,
}

const RULE_ID: &str = "vigil-trace:rule";
const BARE_ID: &str = "vigil-trace:bare";

fn search_id(i: usize) -> String {
    format!("vigil-trace:s{i}")
}

fn field_id(i: usize, j: usize, k: usize) -> String {
    format!("vigil-trace:s{i}a{j}f{k}")
}

/// A copy of `rule` with another id and detection, its logsource kept (so field mapping and
/// logsource matching are the rule's own).
fn piece(rule: &SigmaRule, id: String, detection: Detection) -> Document {
    let mut meta = rule.meta.clone();
    meta.id = Some(id);
    meta.name = None;
    Document::Rule(SigmaRule { meta, detection })
}

/// Explains whether `event` matches `rule`, with `filters` (Sigma v2 filters; only those that
/// name the rule are applied), compiled with `opts` as detection compiles it.
pub fn explain(
    rule: &SigmaRule,
    filters: &[SigmaFilter],
    event: &Event,
    opts: &CompileOptions,
) -> Trace {
    let rule_names: Vec<&str> = [rule.meta.id.as_deref(), rule.meta.name.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let mut docs = Vec::new();
    docs.push(piece(rule, RULE_ID.into(), rule.detection.clone()));
    docs.push(piece(rule, BARE_ID.into(), rule.detection.clone()));
    for f in filters {
        if f.rules.iter().any(|r| rule_names.contains(&r.as_str())) {
            let mut f = f.clone();
            f.rules = vec![RULE_ID.into()];
            docs.push(Document::Filter(f));
        }
    }
    let mut traced = 0usize;
    for (i, s) in rule.detection.searches.iter().enumerate() {
        docs.push(piece(
            rule,
            search_id(i),
            Detection {
                searches: vec![s.clone()],
                conditions: vec![s.name.clone()],
                timeframe: None,
            },
        ));
        for (j, alt) in s.alternatives.iter().enumerate() {
            for (k, spec) in alt.iter().enumerate() {
                traced += 1;
                if traced > MAX_TRACED_FIELDS {
                    continue;
                }
                docs.push(piece(
                    rule,
                    field_id(i, j, k),
                    Detection {
                        searches: vec![Search {
                            name: "entry".into(),
                            alternatives: vec![vec![spec.clone()]],
                        }],
                        conditions: vec!["entry".into()],
                        timeframe: None,
                    },
                ));
            }
        }
    }
    // Each filter is traced as a whole too: does it hold for the event?
    let filter_pieces: Vec<(String, String)> = filters
        .iter()
        .filter(|f| f.rules.iter().any(|r| rule_names.contains(&r.as_str())))
        .enumerate()
        .map(|(n, f)| {
            let id = format!("vigil-trace:filter{n}");
            docs.push(Document::Rule(SigmaRule {
                meta: {
                    let mut m = rule.meta.clone();
                    m.id = Some(id.clone());
                    m.name = None;
                    m
                },
                detection: f.detection.clone(),
            }));
            (
                id,
                f.meta.id.clone().unwrap_or_else(|| f.meta.title.clone()),
            )
        })
        .collect();

    let (set, issues) = RuleSet::compile_with(docs, opts);
    let logsource = logsource_text(rule);
    let Some(bare) = set.find(BARE_ID) else {
        let reason = issues
            .iter()
            .find(|i| i.id.as_deref() == Some(BARE_ID))
            .map_or_else(
                || "the rule does not compile".to_owned(),
                |i| i.reason.clone(),
            );
        return Trace {
            title: rule.meta.title.clone(),
            id: rule.meta.id.clone(),
            matched: false,
            condition_held: false,
            logsource: LogsourceTrace {
                logsource,
                applies: false,
            },
            condition: rule.detection.conditions.clone(),
            searches: Vec::new(),
            filters_held: Vec::new(),
            summary: format!("not matched: the rule is not supported: {reason}"),
            unsupported: Some(reason),
        };
    };
    let hits = set.matches(event);
    let hit = |id: &str| set.find(id).map(|r| hits.contains(&r));
    let alt = set.logsource_applies(bare, event);
    let applies = alt.is_some();
    let table = alt.map(|a| set.alts[a as usize].fields);

    let mut searches = Vec::new();
    for (i, s) in rule.detection.searches.iter().enumerate() {
        let mut alternatives = Vec::new();
        for (j, a) in s.alternatives.iter().enumerate() {
            let mut entries = Vec::new();
            for (k, spec) in a.iter().enumerate() {
                let id = field_id(i, j, k);
                let (matched, note) = match hit(&id) {
                    Some(m) => (Some(m), None),
                    None => {
                        let why = issues
                            .iter()
                            .find(|x| x.id.as_deref() == Some(id.as_str()))
                            .map_or_else(
                                || {
                                    format!(
                                        "not traced (a rule traces at most {MAX_TRACED_FIELDS} entries)"
                                    )
                                },
                                |x| x.reason.clone(),
                            );
                        (None, Some(why))
                    }
                };
                entries.push(field_trace(spec, table, event, matched, note));
            }
            alternatives.push(entries);
        }
        searches.push(SearchTrace {
            name: s.name.clone(),
            matched: hit(&search_id(i)).unwrap_or(false),
            alternatives,
        });
    }
    let condition_held = hits.contains(&bare);
    let matched = hit(RULE_ID).unwrap_or(false);
    let filters_held: Vec<String> = filter_pieces
        .iter()
        .filter(|(id, _)| hit(id) == Some(true))
        .map(|(_, name)| name.clone())
        .collect();
    let summary = summarise(
        rule,
        applies,
        &logsource,
        condition_held,
        matched,
        &searches,
        &filters_held,
    );
    Trace {
        title: rule.meta.title.clone(),
        id: rule.meta.id.clone(),
        matched,
        condition_held,
        logsource: LogsourceTrace { logsource, applies },
        condition: rule.detection.conditions.clone(),
        searches,
        filters_held,
        summary,
        unsupported: None,
    }
}

fn logsource_text(rule: &SigmaRule) -> String {
    let ls = &rule.meta.logsource;
    let parts: Vec<&str> = [&ls.product, &ls.category, &ls.service]
        .into_iter()
        .filter_map(|p| p.as_deref())
        .collect();
    if parts.is_empty() {
        "(any)".to_owned()
    } else {
        parts.join("/")
    }
}

fn field_trace(
    spec: &FieldSpec,
    table: Option<crate::mapping::FieldTable>,
    event: &Event,
    matched: Option<bool>,
    note: Option<String>,
) -> FieldTrace {
    let mapped = spec
        .field
        .as_deref()
        .map(|f| table.map_or_else(|| f.to_owned(), |t| t.map(f)));
    let event_field = match (&spec.field, &mapped) {
        (Some(f), Some(m)) if f != m => Some(m.clone()),
        _ => None,
    };
    let mut event_values = Vec::new();
    if let Some(name) = mapped.as_deref() {
        let value = event
            .get(name)
            .or_else(|| spec.field.as_deref().and_then(|f| event.get(f)));
        if let Some(v) = value {
            leaf_texts(v, &mut event_values);
        }
    }
    FieldTrace {
        field: spec.field.clone(),
        event_field,
        modifiers: spec.modifiers.iter().map(|m| m.name().to_owned()).collect(),
        values: spec
            .values
            .iter()
            .take(MAX_VALUES)
            .map(|v| v.text().unwrap_or_else(|| "null".to_owned()))
            .collect(),
        event_values,
        matched,
        note,
    }
}

fn cut(s: &str) -> String {
    if s.chars().count() <= MAX_SHOWN {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_SHOWN).collect();
    out.push('…');
    out
}

fn leaf_texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::List(items) => {
            for i in items {
                if out.len() >= MAX_VALUES {
                    return;
                }
                // Lists hold no lists (the model allows maps only inside lists).
                if !matches!(i, Value::List(_)) {
                    leaf_texts(i, out);
                }
            }
        }
        Value::Null => out.push("null".to_owned()),
        Value::Map(_) => out.push("(map)".to_owned()),
        other => {
            if out.len() < MAX_VALUES {
                out.push(cut(&other.to_string()));
            }
        }
    }
}

fn spec_text(f: &FieldTrace) -> String {
    let mut s = f.field.clone().unwrap_or_else(|| "keywords".to_owned());
    for m in &f.modifiers {
        s.push('|');
        s.push_str(m);
    }
    s
}

fn summarise(
    rule: &SigmaRule,
    applies: bool,
    logsource: &str,
    condition_held: bool,
    matched: bool,
    searches: &[SearchTrace],
    filters_held: &[String],
) -> String {
    if !applies {
        return format!(
            "not matched: the event is not from the rule's logsource ({logsource}), so its detection is not looked at"
        );
    }
    let held: Vec<&str> = searches
        .iter()
        .filter(|s| s.matched)
        .map(|s| s.name.as_str())
        .collect();
    let held_text = if held.is_empty() {
        "none of its search identifiers holds".to_owned()
    } else {
        format!("{} held", held.join(", "))
    };
    let condition = rule.detection.conditions.join(" | ");
    if matched {
        return format!("matched: condition `{condition}` holds ({held_text})");
    }
    if condition_held {
        return format!(
            "not matched: condition `{condition}` holds ({held_text}) but filter {} drops the match",
            filters_held.join(", ")
        );
    }
    // Name the first entry that failed in each search that did not hold.
    let mut why = Vec::new();
    for s in searches.iter().filter(|s| !s.matched) {
        let failed = s
            .alternatives
            .iter()
            .flatten()
            .find(|f| f.matched == Some(false));
        match failed {
            Some(f) if f.event_values.is_empty() && f.field.is_some() => why.push(format!(
                "{}: {} — the event has no {}",
                s.name,
                spec_text(f),
                f.event_field
                    .as_deref()
                    .or(f.field.as_deref())
                    .unwrap_or("")
            )),
            Some(f) => why.push(format!(
                "{}: {} matches none of [{}] (event: {})",
                s.name,
                spec_text(f),
                f.values.join(", "),
                f.event_values.join(", ")
            )),
            None => why.push(format!("{} does not hold", s.name)),
        }
    }
    format!(
        "not matched: condition `{condition}` does not hold ({held_text}); {}",
        if why.is_empty() {
            "a search identifier that holds is negated".to_owned()
        } else {
            why.join("; ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::load_str;
    use vigil_event::Timestamp;

    fn docs(text: &str) -> (SigmaRule, Vec<SigmaFilter>) {
        let mut rule = None;
        let mut filters = Vec::new();
        for d in load_str(text, "t") {
            match d.unwrap() {
                Document::Rule(r) => rule = Some(r),
                Document::Filter(f) => filters.push(f),
                Document::Correlation(_) | Document::Behaviour(_) => {}
            }
        }
        (rule.unwrap(), filters)
    }

    const WHOAMI: &str = r#"
title: Whoami
id: 11111111-2222-3333-4444-555555555555
logsource: {product: windows, category: process_creation}
detection:
    selection:
        Image|endswith: '\whoami.exe'
        CommandLine|contains: '/all'
    filter:
        User: SYSTEM
    condition: selection and not filter
"#;

    fn sysmon(image: &str, cmd: &str, user: &str) -> Event {
        let mut e = Event::new(Timestamp::default());
        e.insert("Channel", "Microsoft-Windows-Sysmon/Operational");
        e.insert("EventID", 1i64);
        e.insert("Image", image);
        e.insert("CommandLine", cmd);
        e.insert("User", user);
        e
    }

    #[test]
    fn a_match_names_the_selection_that_held() {
        let (rule, _) = docs(WHOAMI);
        let t = explain(
            &rule,
            &[],
            &sysmon("C:\\Windows\\System32\\whoami.exe", "whoami /all", "bob"),
            &CompileOptions::default(),
        );
        assert!(
            t.matched && t.condition_held && t.logsource.applies,
            "{t:?}"
        );
        assert!(t.searches[0].matched);
        assert!(!t.searches[1].matched);
        assert_eq!(t.searches[0].alternatives[0][0].modifiers, ["endswith"]);
        assert_eq!(t.searches[0].alternatives[0][0].matched, Some(true));
        assert!(t.summary.starts_with("matched"), "{}", t.summary);
    }

    #[test]
    fn a_miss_names_the_field_and_modifier_that_failed() {
        let (rule, _) = docs(WHOAMI);
        let t = explain(
            &rule,
            &[],
            &sysmon("C:\\Windows\\System32\\whoami.exe", "whoami /groups", "bob"),
            &CompileOptions::default(),
        );
        assert!(!t.matched);
        let entries = &t.searches[0].alternatives[0];
        assert_eq!(entries[0].matched, Some(true), "the Image entry held");
        assert_eq!(
            entries[1].matched,
            Some(false),
            "the CommandLine entry did not"
        );
        assert_eq!(entries[1].event_values, ["whoami /groups"]);
        assert!(
            t.summary.contains("CommandLine|contains") && t.summary.contains("/all"),
            "{}",
            t.summary
        );
    }

    #[test]
    fn a_negated_search_that_holds_is_the_reason() {
        let (rule, _) = docs(WHOAMI);
        let t = explain(
            &rule,
            &[],
            &sysmon("C:\\x\\whoami.exe", "whoami /all", "SYSTEM"),
            &CompileOptions::default(),
        );
        assert!(!t.matched);
        assert!(t.searches[0].matched && t.searches[1].matched);
    }

    #[test]
    fn another_logsource_is_said_first() {
        let (rule, _) = docs(WHOAMI);
        let mut e = sysmon("C:\\x\\whoami.exe", "whoami /all", "bob");
        e.insert("Channel", "Security");
        let t = explain(&rule, &[], &e, &CompileOptions::default());
        assert!(!t.matched && !t.logsource.applies);
        assert!(t.summary.contains("logsource"), "{}", t.summary);
    }

    #[test]
    fn a_v2_filter_that_holds_is_named() {
        let text = format!(
            "{WHOAMI}\n---\ntitle: Not the admin box\nid: f1\nlogsource: {{product: windows, category: process_creation}}\nfilter:\n    rules: [11111111-2222-3333-4444-555555555555]\n    selection:\n        Computer: adminbox\n    condition: selection\n"
        );
        let (rule, filters) = docs(&text);
        let mut e = sysmon("C:\\x\\whoami.exe", "whoami /all", "bob");
        e.insert("Computer", "adminbox");
        let t = explain(&rule, &filters, &e, &CompileOptions::default());
        assert!(t.condition_held && !t.matched, "{t:?}");
        assert_eq!(t.filters_held, ["f1"]);
        assert!(t.summary.contains("f1"), "{}", t.summary);
        // Elsewhere the filter does not hold and the rule matches.
        e.insert("Computer", "laptop");
        assert!(explain(&rule, &filters, &e, &CompileOptions::default()).matched);
    }

    #[test]
    fn an_unsupported_rule_says_why() {
        let (rule, _) = docs(
            "title: Bad\nid: b\nlogsource: {product: linux}\ndetection:\n    sel:\n        a|re: '(?<=x)y'\n    condition: sel\n",
        );
        let t = explain(
            &rule,
            &[],
            &Event::new(Timestamp::default()),
            &CompileOptions::default(),
        );
        assert!(t.unsupported.is_some() && !t.matched, "{t:?}");
    }
}
