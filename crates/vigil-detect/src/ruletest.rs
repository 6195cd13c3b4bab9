//! Rule test cases: what a rule file says its rule must (or must not) match, and checking a
//! rule set against them. `vigil rules test DIR` reads the cases here, parses their inputs
//! through the real parsers, and checks them with [`check`].
//!
//! Two kinds of cases:
//!
//! * **SigmaHQ regression cases**: a rule's `regression_tests_path` names an `info.yml`
//!   (relative to the rules repository's root) whose `regression_tests_info` lists sample files
//!   (`type: evtx`, or `json`: the same records as the EVTX crate's JSON) and optionally a
//!   `match_count`. Read with [`read_info`].
//! * **Vigil's inline cases**: a `tests:` list in the rule document itself —
//!
//!   ```yaml
//!   tests:
//!     - name: a failed root login matches
//!       log: "<38>Dec  6 10:00:01 web1 sshd[812]: Failed password for root from 203.0.113.5 port 52110 ssh2"
//!       match: true
//!     - name: a success does not
//!       events:
//!         - {event.category: authentication, event.outcome: success, source.ip: 203.0.113.5}
//!       match_count: 0
//!   ```
//!
//!   `log` (one line or a list) is parsed as a listener would parse it; `events` are JSON-like
//!   maps (dotted or nested names, `@timestamp` for the time). `match: true` wants at least one
//!   match, `match: false` none, `match_count: N` exactly N. For a correlation rule a "match"
//!   is an alert the correlation raises over the case's events in order. Other keys of a case
//!   are refused, so a misspelt expectation cannot pass silently.

use serde::Serialize;
use vigil_event::Event;

use crate::correlate::Limits;
use crate::evaluate::Evaluator;
use crate::ruleset::RuleSet;
use crate::yaml::{self, Yaml};

/// Most inline cases read from one rule, and most inputs (lines or events) in one case.
pub const MAX_CASES: usize = 1_000;

/// The tests one rule document declares.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleTests {
    /// File and document (as [`crate::load_str`] names them).
    pub source: String,
    /// The rule's `id`, or `name`, or title: what [`RuleSet::find`] (or the correlations) know
    /// it by.
    pub rule: String,
    /// The rule's title.
    pub title: String,
    /// SigmaHQ's `regression_tests_path`, as written.
    pub regression_tests_path: Option<String>,
    /// Vigil's inline cases.
    pub cases: Vec<InlineCase>,
    /// What is wrong with the `tests:` block (each is a failure of the rule's tests).
    pub errors: Vec<String>,
}

/// One inline case.
#[derive(Debug, Clone, PartialEq)]
pub struct InlineCase {
    /// Its name (`case N` when unnamed).
    pub name: String,
    /// What to feed the rule.
    pub input: CaseInput,
    /// What must come out.
    pub expect: Expect,
}

/// The input of an inline case.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseInput {
    /// Raw log lines, to be parsed as a listener would.
    Log(Vec<String>),
    /// Events as JSON objects (for [`Event::from_json`]).
    Events(Vec<serde_json::Value>),
}

/// What a case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// At least one match (`true`) or none (`false`).
    Match(bool),
    /// Exactly this many.
    Count(u64),
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Match(true) => f.write_str("a match"),
            Expect::Match(false) => f.write_str("no match"),
            Expect::Count(n) => write!(f, "{n} match(es)"),
        }
    }
}

/// The tests declared by every document of a rule file's text (documents without tests are
/// left out; a file that is not YAML gives nothing: `vigil rules check` reports it).
pub fn read_tests(text: &str, source: &str) -> Vec<RuleTests> {
    let Ok(docs) = yaml::parse_documents(text) else {
        return Vec::new();
    };
    let docs = yaml::resolve_collection(docs);
    let many = docs.len() > 1;
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let regression = doc.get("regression_tests_path").and_then(Yaml::scalar_text);
        let tests = doc.get("tests");
        if regression.is_none() && tests.is_none() {
            continue;
        }
        let text_of = |k: &str| doc.get(k).and_then(Yaml::scalar_text);
        let title = text_of("title").unwrap_or_default();
        let rule = text_of("id")
            .or_else(|| text_of("name"))
            .unwrap_or_else(|| title.clone());
        let mut t = RuleTests {
            source: if many {
                format!("{source}#{}", i + 1)
            } else {
                source.to_owned()
            },
            rule,
            title,
            regression_tests_path: regression,
            cases: Vec::new(),
            errors: Vec::new(),
        };
        match tests {
            None => {}
            Some(Yaml::Seq(items)) => {
                if items.len() > MAX_CASES {
                    t.errors
                        .push(format!("more than {MAX_CASES} cases ({})", items.len()));
                }
                for (n, item) in items.iter().take(MAX_CASES).enumerate() {
                    match read_case(item, n + 1) {
                        Ok(c) => t.cases.push(c),
                        Err(e) => t.errors.push(format!("tests[{}]: {e}", n + 1)),
                    }
                }
            }
            Some(other) => t
                .errors
                .push(format!("`tests` must be a list, found a {}", other.kind())),
        }
        out.push(t);
    }
    out
}

fn read_case(item: &Yaml, n: usize) -> Result<InlineCase, String> {
    let Yaml::Map(entries) = item else {
        return Err(format!("a case must be a map, found a {}", item.kind()));
    };
    let mut name = format!("case {n}");
    let mut input = None;
    let mut expect = None;
    for (k, v) in entries {
        let key = k.scalar_text().unwrap_or_default();
        match key.as_str() {
            "name" => name = v.scalar_text().ok_or("`name` must be text")?,
            "log" => {
                let lines = match v {
                    Yaml::Seq(items) => items
                        .iter()
                        .map(|i| {
                            i.scalar_text()
                                .ok_or("`log` must be text or a list of text")
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                    other => vec![other.scalar_text().ok_or("`log` must be text")?],
                };
                if lines.len() > MAX_CASES {
                    return Err(format!("more than {MAX_CASES} lines"));
                }
                set_once(&mut input, CaseInput::Log(lines))?;
            }
            "events" => {
                let Yaml::Seq(items) = v else {
                    return Err("`events` must be a list of maps".into());
                };
                if items.len() > MAX_CASES {
                    return Err(format!("more than {MAX_CASES} events"));
                }
                let events = items
                    .iter()
                    .map(|i| match i {
                        Yaml::Map(_) => Ok(to_json(i)),
                        other => Err(format!("an event must be a map, found a {}", other.kind())),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                set_once(&mut input, CaseInput::Events(events))?;
            }
            "match" => match v {
                Yaml::Bool(b) => set_once(&mut expect, Expect::Match(*b))?,
                _ => return Err("`match` must be true or false".into()),
            },
            "match_count" => match v {
                Yaml::Int(i) if *i >= 0 => set_once(&mut expect, Expect::Count(*i as u64))?,
                _ => return Err("`match_count` must be a whole number".into()),
            },
            other => {
                return Err(format!(
                    "unknown key `{other}` (name, log, events, match, match_count)"
                ));
            }
        }
    }
    Ok(InlineCase {
        name,
        input: input.ok_or("no input: give `log` or `events`")?,
        expect: expect.ok_or("no expectation: give `match` or `match_count`")?,
    })
}

fn set_once<T>(slot: &mut Option<T>, v: T) -> Result<(), String> {
    if slot.is_some() {
        return Err(
            "give one input (`log` or `events`) and one expectation (`match` or `match_count`)"
                .into(),
        );
    }
    *slot = Some(v);
    Ok(())
}

fn to_json(y: &Yaml) -> serde_json::Value {
    use serde_json::Value as J;
    match y {
        Yaml::Null => J::Null,
        Yaml::Bool(b) => J::Bool(*b),
        Yaml::Int(i) => J::from(*i),
        Yaml::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Yaml::Str(s) => J::String(s.clone()),
        Yaml::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        Yaml::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (k.scalar_text().unwrap_or_default(), to_json(v)))
                .collect(),
        ),
    }
}

/// A SigmaHQ `info.yml`.
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionInfo {
    /// The rules it tests (`rule_metadata[].id`).
    pub rule_ids: Vec<String>,
    /// Its sample files.
    pub tests: Vec<RegressionTest>,
}

/// One entry of `regression_tests_info`.
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionTest {
    /// Its name (`Positive Detection Test` …).
    pub name: String,
    /// `evtx` or `json`.
    pub kind: String,
    /// The sample file, relative to the rules repository's root.
    pub path: String,
    /// How many records must match; at least one when absent.
    pub match_count: Option<u64>,
}

impl RegressionTest {
    /// What the case expects.
    pub fn expect(&self) -> Expect {
        self.match_count.map_or(Expect::Match(true), Expect::Count)
    }
}

/// Reads a SigmaHQ `info.yml`.
pub fn read_info(text: &str) -> Result<RegressionInfo, String> {
    let docs = yaml::parse_documents(text).map_err(|e| format!("YAML: {e}"))?;
    let doc = docs.first().ok_or("empty info.yml")?;
    let rule_ids = match doc.get("rule_metadata") {
        Some(Yaml::Seq(items)) => items
            .iter()
            .filter_map(|i| i.get("id").and_then(Yaml::scalar_text))
            .collect(),
        _ => Vec::new(),
    };
    let Some(Yaml::Seq(items)) = doc.get("regression_tests_info") else {
        return Err("no `regression_tests_info` list".into());
    };
    let mut tests = Vec::new();
    for (n, i) in items.iter().enumerate() {
        let text_of = |k: &str| i.get(k).and_then(Yaml::scalar_text);
        let path = text_of("path")
            .ok_or_else(|| format!("regression_tests_info[{}] has no `path`", n + 1))?;
        let match_count = match i.get("match_count") {
            None | Some(Yaml::Null) => None,
            Some(Yaml::Int(c)) if *c >= 0 => Some(*c as u64),
            Some(_) => {
                return Err(format!(
                    "regression_tests_info[{}]: `match_count` must be a whole number",
                    n + 1
                ));
            }
        };
        tests.push(RegressionTest {
            name: text_of("name").unwrap_or_else(|| format!("test {}", n + 1)),
            kind: text_of("type")
                .unwrap_or_else(|| "evtx".into())
                .to_ascii_lowercase(),
            path,
            match_count,
        });
    }
    Ok(RegressionInfo { rule_ids, tests })
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// Whether the expectation held.
    pub passed: bool,
    /// Matches (a correlation: alerts raised).
    pub matched: u64,
    /// Events fed.
    pub events: u64,
    /// What was expected.
    pub expect: Expect,
    /// Why it failed, if it did.
    pub reason: Option<String>,
    /// For a detection rule, the index of the first event whose outcome went against the
    /// expectation (one that did not match when a match was wanted, or one that matched when
    /// none was), to explain with [`crate::trace::explain`].
    pub culprit: Option<usize>,
}

/// Checks `events` against the rule (or correlation) named `rule` in `set`: a detection rule
/// counts the events it matches (through [`RuleSet::matches`], filters applied); a correlation
/// counts the alerts it raises over the events in order (through [`Evaluator`]).
pub fn check(set: &RuleSet, rule: &str, events: &[Event], expect: Expect) -> Outcome {
    let mut culprit = None;
    let matched = if let Some(id) = set.find(rule) {
        let mut n = 0u64;
        for (i, e) in events.iter().enumerate() {
            let hit = set.matches(e).contains(&id);
            n += u64::from(hit);
            let against = match expect {
                Expect::Match(true) | Expect::Count(1..) => !hit,
                Expect::Match(false) | Expect::Count(0) => hit,
            };
            if against && culprit.is_none() {
                culprit = Some(i);
            }
        }
        n
    } else if let Some(c) = set.correlations().iter().find(|c| {
        c.rule.meta.id.as_deref() == Some(rule)
            || c.rule.meta.name.as_deref() == Some(rule)
            || c.rule.meta.title == rule
    }) {
        let want = crate::evaluate::alert_rule(&c.rule.meta).id;
        let mut ev = Evaluator::new(set, Limits::default());
        let mut n = 0u64;
        for e in events {
            n += ev
                .evaluate(set, e)
                .iter()
                .filter(|r| r.rule.id == want)
                .count() as u64;
        }
        n
    } else {
        return Outcome {
            passed: false,
            matched: 0,
            events: events.len() as u64,
            expect,
            reason: Some(
                "the rule is not in the compiled set (unsupported: see `vigil rules check`)".into(),
            ),
            culprit: None,
        };
    };
    let passed = match expect {
        Expect::Match(true) => matched > 0,
        Expect::Match(false) => matched == 0,
        Expect::Count(n) => matched == n,
    };
    Outcome {
        passed,
        matched,
        events: events.len() as u64,
        expect,
        reason: (!passed).then(|| {
            format!(
                "expected {expect}, got {matched} in {} event(s)",
                events.len()
            )
        }),
        culprit: if passed { None } else { culprit },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::Timestamp;

    const RULE: &str = r#"
title: Root login failure
id: r1
logsource: {product: vigil, service: ingest}
detection:
    sel:
        user.name: root
        event.outcome: failure
    condition: sel
tests:
    - name: root fails
      events:
        - {user.name: root, event.outcome: failure}
      match: true
    - log: "<38>Dec  6 10:00:01 web1 sshd[812]: Accepted password for root from 203.0.113.5 port 52110 ssh2"
      match_count: 0
"#;

    #[test]
    fn inline_cases_are_read() {
        let t = read_tests(RULE, "f.yml");
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].rule, "r1");
        assert!(t[0].errors.is_empty(), "{:?}", t[0].errors);
        assert_eq!(t[0].cases.len(), 2);
        assert_eq!(t[0].cases[0].name, "root fails");
        assert_eq!(t[0].cases[0].expect, Expect::Match(true));
        assert!(matches!(&t[0].cases[1].input, CaseInput::Log(l) if l.len() == 1));
        assert_eq!(t[0].cases[1].expect, Expect::Count(0));
    }

    #[test]
    fn a_bad_case_is_an_error_not_a_pass() {
        for (case, want) in [
            ("- {log: x}", "no expectation"),
            ("- {match: true}", "no input"),
            (
                "- {log: x, match: true, macth_count: 2}",
                "unknown key `macth_count`",
            ),
            ("- {log: x, match: yes}", "`match` must be true or false"),
            ("- {log: x, events: [], match: true}", "one input"),
            ("- {events: [1], match: true}", "must be a map"),
        ] {
            let text = format!("title: t\nid: i\ntests:\n  {case}\n");
            let t = read_tests(&text, "f");
            assert!(
                t[0].errors.iter().any(|e| e.contains(want)),
                "{case}: {:?}",
                t[0].errors
            );
        }
        let t = read_tests("title: t\ntests: 3\n", "f");
        assert!(t[0].errors[0].contains("must be a list"));
    }

    #[test]
    fn info_yml_is_read() {
        let info = read_info(
            "id: x\nrule_metadata:\n    - id: abc\n      title: T\nregression_tests_info:\n    - name: Positive\n      type: evtx\n      match_count: 7\n      path: regression_data/a/b.evtx\n",
        )
        .unwrap();
        assert_eq!(info.rule_ids, ["abc"]);
        assert_eq!(info.tests[0].path, "regression_data/a/b.evtx");
        assert_eq!(info.tests[0].expect(), Expect::Count(7));
        assert!(read_info("id: x\n").is_err());
    }

    #[test]
    fn check_counts_matches_and_names_the_culprit() {
        let docs: Vec<_> = crate::load_str(RULE, "f")
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let (set, _) = RuleSet::compile(docs);
        let ev = |user: &str| {
            let mut e = Event::new(Timestamp::default());
            e.insert("user.name", user);
            e.insert("event.outcome", "failure");
            e
        };
        let events = [ev("bob"), ev("root"), ev("root")];
        assert!(check(&set, "r1", &events, Expect::Count(2)).passed);
        let o = check(&set, "r1", &events, Expect::Count(3));
        assert!(!o.passed);
        assert_eq!(o.culprit, Some(0));
        assert!(o.reason.unwrap().contains("got 2 in 3"));
        let o = check(&set, "r1", &events, Expect::Match(false));
        assert_eq!(o.culprit, Some(1));
        assert!(!check(&set, "nope", &events, Expect::Match(true)).passed);
    }
}
