//! `vigil rules test DIR…`: every rule's test cases through the real parse → detect path.
//!
//! The rules under the directories are loaded and compiled together, as `serve` and `hunt`
//! load them; each rule's cases (SigmaHQ `regression_tests_path` → `info.yml` → EVTX or JSON
//! samples, and Vigil's inline `tests:`; see `vigil_detect::ruletest`) are parsed by Vigil's
//! own parsers and checked with `vigil_detect::ruletest::check`. A failing case says why: the
//! counts, and for a detection rule the trace of the first event that went against the
//! expectation (`vigil_detect::trace::explain`). Regression data a rule names but that is not
//! on disk is reported as skipped (the public corpus holds a third of SigmaHQ's), not passed.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::json;
use vigil_detect::ruletest::{self, CaseInput, Expect, Outcome, RuleTests};
use vigil_detect::{CompileOptions, Document, RuleSet, SigmaRule};
use vigil_event::{Event, Timestamp};

use crate::hunt::OutputFormat;

/// Largest sample file read (EVTX or JSON).
const MAX_SAMPLE_BYTES: u64 = 256 << 20;

/// What happened to one case.
#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Status {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, Serialize)]
struct CaseResult {
    name: String,
    /// `regression:evtx`, `regression:json` or `inline`.
    kind: String,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Why the first event against the expectation did (not) match.
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<vigil_detect::trace::Trace>,
}

#[derive(Debug, Serialize)]
struct RuleResult {
    rule: String,
    title: String,
    source: String,
    status: Status,
    cases: Vec<CaseResult>,
}

/// The loaded rules: the compiled set, the documents (for traces) and the tests.
struct Loaded {
    set: RuleSet,
    rules: HashMap<String, SigmaRule>,
    filters: Vec<vigil_detect::rule::SigmaFilter>,
    tests: Vec<(PathBuf, RuleTests)>,
}

fn load(dirs: &[PathBuf]) -> Result<Loaded> {
    let mut docs = Vec::new();
    let mut tests = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            bail!("{}: no such directory", dir.display());
        }
        for (path, results) in vigil_detect::report::load_dir(dir) {
            docs.extend(results.into_iter().flatten());
            if let Ok(text) = std::fs::read_to_string(&path) {
                let source = path.display().to_string();
                for t in ruletest::read_tests(&text, &source) {
                    tests.push((path.clone(), t));
                }
            }
        }
    }
    let mut rules = HashMap::new();
    let mut filters = Vec::new();
    for d in &docs {
        match d {
            Document::Rule(r) => {
                let key = r
                    .meta
                    .id
                    .clone()
                    .or_else(|| r.meta.name.clone())
                    .unwrap_or_else(|| r.meta.title.clone());
                rules.insert(key, r.clone());
            }
            Document::Filter(f) => filters.push(f.clone()),
            Document::Correlation(_) | Document::Behaviour(_) => {}
        }
    }
    let (set, _) = RuleSet::compile_with(docs, &CompileOptions::default());
    Ok(Loaded {
        set,
        rules,
        filters,
        tests,
    })
}

/// `path` relative to the first of `bases` under which it exists.
fn resolve(path: &str, bases: &[PathBuf]) -> Option<(PathBuf, PathBuf)> {
    let rel = Path::new(path);
    if rel.is_absolute() {
        return rel
            .exists()
            .then(|| (rel.to_path_buf(), PathBuf::from("/")));
    }
    bases
        .iter()
        .map(|b| (b.join(rel), b.clone()))
        .find(|(p, _)| p.exists())
}

/// The directories a rule's relative paths may be relative to: the rule file's directory and
/// each of its ancestors (SigmaHQ's paths are relative to the repository root), then `roots`.
fn bases(rule_file: &Path, roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = rule_file
        .ancestors()
        .skip(1)
        .map(Path::to_path_buf)
        .collect();
    out.extend(roots.iter().cloned());
    out
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_SAMPLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_SAMPLE_BYTES {
        return Err(format!(
            "{}: larger than {} MiB",
            path.display(),
            MAX_SAMPLE_BYTES >> 20
        ));
    }
    Ok(bytes)
}

/// The records of a sample: EVTX through Vigil's EVTX reader, JSON (one record, an array of
/// them, or several one after the other, as the `evtx` crate writes them) through the same
/// record conversion.
fn sample_events(kind: &str, path: &Path) -> Result<Vec<Event>, String> {
    let bytes = read_bounded(path)?;
    match kind {
        "evtx" => {
            let records = vigil_parse::evtx::parse_file(bytes)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let mut out = Vec::new();
            for r in records {
                out.push(r.map_err(|e| format!("{}: {e}", path.display()))?);
            }
            Ok(out)
        }
        "json" => {
            let mut out = Vec::new();
            for v in serde_json::Deserializer::from_slice(&bytes).into_iter::<serde_json::Value>() {
                let v = v.map_err(|e| format!("{}: {e}", path.display()))?;
                match v {
                    serde_json::Value::Array(items) => out.extend(
                        items
                            .iter()
                            .map(|i| vigil_parse::evtx::record_to_event(i, None)),
                    ),
                    other => out.push(vigil_parse::evtx::record_to_event(&other, None)),
                }
            }
            Ok(out)
        }
        other => Err(format!("unknown sample type `{other}` (evtx or json)")),
    }
}

fn inline_events(input: &CaseInput) -> Result<Vec<Event>, String> {
    let now = Timestamp::now();
    let ctx = vigil_parse::ParseContext::new(now, "rules-test");
    match input {
        CaseInput::Log(lines) => Ok(lines
            .iter()
            .map(|l| vigil_parse::parse_line(l.as_bytes(), vigil_parse::Format::Auto, &ctx))
            .collect()),
        CaseInput::Events(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                Event::from_json_value(v.clone(), now)
                    .map_err(|e| format!("events[{}]: {e}", i + 1))
            })
            .collect(),
    }
}

impl Loaded {
    fn run_case(
        &self,
        rule: &str,
        name: String,
        kind: &str,
        events: Result<Vec<Event>, String>,
        expect: Expect,
    ) -> CaseResult {
        let events = match events {
            Ok(e) => e,
            Err(reason) => {
                return CaseResult {
                    name,
                    kind: kind.into(),
                    status: Status::Fail,
                    outcome: None,
                    reason: Some(reason),
                    trace: None,
                };
            }
        };
        let outcome = ruletest::check(&self.set, rule, &events, expect);
        let trace = outcome.culprit.and_then(|i| {
            let r = self.rules.get(rule)?;
            Some(vigil_detect::trace::explain(
                r,
                &self.filters,
                events.get(i)?,
                &CompileOptions::default(),
            ))
        });
        let reason = outcome.reason.clone().map(|r| match &trace {
            Some(t) => format!(
                "{r}; event {}: {}",
                outcome.culprit.unwrap_or(0) + 1,
                t.summary
            ),
            None => r,
        });
        CaseResult {
            name,
            kind: kind.into(),
            status: if outcome.passed {
                Status::Pass
            } else {
                Status::Fail
            },
            outcome: Some(outcome),
            reason,
            trace,
        }
    }

    fn run_rule(&self, file: &Path, t: &RuleTests, roots: &[PathBuf]) -> RuleResult {
        let mut cases = Vec::new();
        for e in &t.errors {
            cases.push(CaseResult {
                name: "tests".into(),
                kind: "inline".into(),
                status: Status::Fail,
                outcome: None,
                reason: Some(e.clone()),
                trace: None,
            });
        }
        if let Some(path) = &t.regression_tests_path {
            self.regression(file, t, path, roots, &mut cases);
        }
        for c in &t.cases {
            cases.push(self.run_case(
                &t.rule,
                c.name.clone(),
                "inline",
                inline_events(&c.input),
                c.expect,
            ));
        }
        let status = if cases.iter().any(|c| c.status == Status::Fail) {
            Status::Fail
        } else if cases.iter().any(|c| c.status == Status::Pass) {
            Status::Pass
        } else {
            Status::Skip
        };
        RuleResult {
            rule: t.rule.clone(),
            title: t.title.clone(),
            source: t.source.clone(),
            status,
            cases,
        }
    }

    fn regression(
        &self,
        file: &Path,
        t: &RuleTests,
        path: &str,
        roots: &[PathBuf],
        cases: &mut Vec<CaseResult>,
    ) {
        let fail = |reason: String| CaseResult {
            name: "regression_tests_path".into(),
            kind: "regression".into(),
            status: Status::Fail,
            outcome: None,
            reason: Some(reason),
            trace: None,
        };
        let Some((info_path, root)) = resolve(path, &bases(file, roots)) else {
            cases.push(CaseResult {
                name: "regression_tests_path".into(),
                kind: "regression".into(),
                status: Status::Skip,
                outcome: None,
                reason: Some(format!("regression data not found: {path}")),
                trace: None,
            });
            return;
        };
        let info = match std::fs::read_to_string(&info_path)
            .map_err(|e| e.to_string())
            .and_then(|text| ruletest::read_info(&text))
        {
            Ok(i) => i,
            Err(e) => {
                cases.push(fail(format!("{}: {e}", info_path.display())));
                return;
            }
        };
        if !info.rule_ids.is_empty() && !info.rule_ids.contains(&t.rule) {
            cases.push(fail(format!(
                "{} is for rule(s) {}, not {}",
                info_path.display(),
                info.rule_ids.join(", "),
                t.rule
            )));
            return;
        }
        for test in &info.tests {
            let sample = root.join(&test.path);
            // The JSON twin SigmaHQ ships beside each EVTX sample runs too: the same records
            // through Vigil's JSON path must give the same count.
            let mut samples = vec![(test.kind.clone(), sample.clone())];
            if test.kind == "evtx" {
                let twin = sample.with_extension("json");
                if twin.is_file() {
                    samples.push(("json".into(), twin));
                }
            }
            for (kind, p) in samples {
                cases.push(self.run_case(
                    &t.rule,
                    format!("{} ({})", test.name, p.display()),
                    &format!("regression:{kind}"),
                    sample_events(&kind, &p),
                    test.expect(),
                ));
            }
        }
    }
}

/// `vigil rules test`.
pub fn run(dirs: &[PathBuf], roots: &[PathBuf], format: OutputFormat) -> Result<ExitCode> {
    let loaded = load(dirs)?;
    let results: Vec<RuleResult> = loaded
        .tests
        .iter()
        .map(|(file, t)| loaded.run_rule(file, t, roots))
        .collect();
    let count = |s: Status| results.iter().filter(|r| r.status == s).count();
    let (passed, failed, skipped) = (
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Skip),
    );
    let mut out = io::stdout().lock();
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &json!({"rules": results, "passed": passed, "failed": failed, "skipped": skipped}),
            )?;
            writeln!(out)?;
        }
        OutputFormat::Table => {
            for r in &results {
                let word = match r.status {
                    Status::Pass => "PASS",
                    Status::Fail => "FAIL",
                    Status::Skip => "SKIP",
                };
                writeln!(out, "{word}  {}  ({})  {}", r.title, r.rule, r.source)?;
                for c in &r.cases {
                    if c.status == Status::Pass {
                        if let Some(o) = &c.outcome {
                            writeln!(
                                out,
                                "      ok    {}: {} of {} events matched",
                                c.name, o.matched, o.events
                            )?;
                        }
                    } else {
                        let w = if c.status == Status::Fail {
                            "FAIL"
                        } else {
                            "skip"
                        };
                        writeln!(
                            out,
                            "      {w}  {}: {}",
                            c.name,
                            c.reason.as_deref().unwrap_or("")
                        )?;
                    }
                }
            }
            writeln!(
                out,
                "{} rules with tests: {passed} passed, {failed} failed, {skipped} skipped (test data not on disk)",
                results.len()
            )?;
        }
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
