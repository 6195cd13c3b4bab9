//! The support report behind `vigil rules check DIR`: every rule file under a directory, each
//! document supported or not, with the reason.

use std::path::{Path, PathBuf};

use crate::compile::{CompileOptions, IssueKind, RuleIssue};
use crate::mapping;
use crate::rule::{Document, load_str};
use crate::ruleset::RuleSet;

/// Whether a document will run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Support {
    /// Compiled and will run.
    Supported,
    /// Not in the rule set.
    Unsupported,
}

/// One document of a rule file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DocumentReport {
    /// `rule`, `filter`, `correlation`, or `unknown` (when it could not be read).
    pub kind: &'static str,
    /// The document's title, if readable.
    pub title: Option<String>,
    /// The document's id, if any.
    pub id: Option<String>,
    /// Supported or not.
    pub support: Support,
    /// Why not (unsupported), or caveats (supported).
    pub reasons: Vec<String>,
}

/// One rule file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Its documents.
    pub documents: Vec<DocumentReport>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SupportReport {
    /// Per file, in path order.
    pub files: Vec<FileReport>,
    /// Documents supported.
    pub supported: usize,
    /// Documents not supported.
    pub unsupported: usize,
}

/// One document in the `vigil rules check --format json` list (DESIGN §5).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleEntry {
    /// The rule file.
    pub path: PathBuf,
    /// The document's id, if any.
    pub id: Option<String>,
    /// The document's title, if readable.
    pub title: Option<String>,
    /// `rule`, `filter`, `correlation`, or `unknown`.
    pub kind: &'static str,
    /// Whether Vigil runs it.
    pub supported: bool,
    /// Why not (the reasons joined with `; `), or `None` when supported without caveat.
    pub reason: Option<String>,
    /// Every reason or caveat, one per entry.
    pub reasons: Vec<String>,
}

/// `vigil rules check --format json`: the counts at the top level, then every document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RulesCheck {
    /// Documents seen.
    pub total: usize,
    /// Documents supported.
    pub supported: usize,
    /// Documents not supported.
    pub unsupported: usize,
    /// Every document, in path order.
    pub rules: Vec<RuleEntry>,
}

impl SupportReport {
    /// The report in the shape DESIGN §5 states for `vigil rules check --format json`.
    pub fn rules_check(&self) -> RulesCheck {
        let rules = self
            .files
            .iter()
            .flat_map(|f| {
                f.documents.iter().map(|d| RuleEntry {
                    path: f.path.clone(),
                    id: d.id.clone(),
                    title: d.title.clone(),
                    kind: d.kind,
                    supported: d.support == Support::Supported,
                    reason: (!d.reasons.is_empty()).then(|| d.reasons.join("; ")),
                    reasons: d.reasons.clone(),
                })
            })
            .collect();
        RulesCheck {
            total: self.supported + self.unsupported,
            supported: self.supported,
            unsupported: self.unsupported,
            rules,
        }
    }

    /// Supported share of all documents (1.0 when there are none).
    pub fn ratio(&self) -> f64 {
        let total = self.supported + self.unsupported;
        if total == 0 {
            1.0
        } else {
            self.supported as f64 / total as f64
        }
    }
}

/// Every `.yml`/`.yaml` file under `dir` (recursively, sorted). Unreadable directories are
/// skipped; symlinks are not followed into loops (only regular files and directories count).
pub fn rule_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            let p = e.path();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() && p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                out.push(p);
            }
        }
    }
    if dir.is_file() {
        out.push(dir.to_path_buf());
    }
    out.sort();
    out
}

/// Loads every rule file under `dir` (or `dir` itself if it is a file).
/// Returns each file's documents (or load errors), in path order.
pub fn load_dir(dir: &Path) -> Vec<(PathBuf, Vec<Result<Document, crate::rule::LoadError>>)> {
    rule_files(dir)
        .into_iter()
        .map(|p| {
            let source = p.display().to_string();
            let docs = match std::fs::read(&p) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => load_str(&text, &source),
                    Err(_) => vec![Err(crate::rule::LoadError {
                        source_name: source.clone(),
                        title: None,
                        id: None,
                        reason: "not UTF-8 text".into(),
                    })],
                },
                Err(e) => vec![Err(crate::rule::LoadError {
                    source_name: source.clone(),
                    title: None,
                    id: None,
                    reason: format!("cannot read: {e}"),
                })],
            };
            (p, docs)
        })
        .collect()
}

/// Walks `dir`, loads and compiles every rule together (filters and correlations may name rules
/// in other files), and reports each document.
pub fn check_dir(dir: &Path, opts: &CompileOptions) -> SupportReport {
    let loaded = load_dir(dir);
    let mut all_docs = Vec::new();
    let mut files: Vec<FileReport> = Vec::new();
    // (file index, document index) of every loaded document, in the order given to compile.
    let mut places = Vec::new();
    // (file index, document index, logsource) of rules no source declares.
    let mut no_source = Vec::new();
    for (fi, (path, docs)) in loaded.into_iter().enumerate() {
        let mut reports = Vec::new();
        for (di, d) in docs.into_iter().enumerate() {
            match d {
                Ok(doc) => {
                    let meta = doc.meta();
                    if let Document::Rule(rule) = &doc
                        && !mapping::has_declared_source(&meta.logsource)
                    {
                        no_source.push((fi, reports.len(), rule.meta.logsource.to_string()));
                    }
                    reports.push(DocumentReport {
                        kind: match &doc {
                            Document::Rule(_) => "rule",
                            Document::Filter(_) => "filter",
                            Document::Correlation(_) => "correlation",
                            Document::Behaviour(b) => b.kind(),
                        },
                        title: Some(meta.title.clone()),
                        id: meta.id.clone(),
                        support: Support::Supported,
                        reasons: Vec::new(),
                    });
                    places.push((fi, di, meta.source.clone()));
                    all_docs.push(doc);
                }
                Err(e) => reports.push(DocumentReport {
                    kind: "unknown",
                    title: e.title,
                    id: e.id,
                    support: Support::Unsupported,
                    reasons: vec![e.reason],
                }),
            }
        }
        files.push(FileReport {
            path,
            documents: reports,
        });
    }
    let (_, issues) = RuleSet::compile_with(all_docs, opts);
    for issue in issues {
        attach(&mut files, &places, &issue);
    }
    // DESIGN §4: a rule whose logsource no source declares matches nothing Vigil has.
    for (fi, di, logsource) in no_source {
        if let Some(doc) = files.get_mut(fi).and_then(|f| f.documents.get_mut(di)) {
            doc.support = Support::Unsupported;
            doc.reasons
                .retain(|r| !r.contains("no parser declares logsource"));
            doc.reasons.insert(
                0,
                format!(
                    "runs on no declared source: no parser declares logsource ({logsource}); \
                     serve and hunt run it on no event until a listener, token or agent input \
                     declares it"
                ),
            );
        }
    }
    let (mut supported, mut unsupported) = (0, 0);
    for f in &files {
        for d in &f.documents {
            match d.support {
                Support::Supported => supported += 1,
                Support::Unsupported => unsupported += 1,
            }
        }
    }
    SupportReport {
        files,
        supported,
        unsupported,
    }
}

fn attach(files: &mut [FileReport], places: &[(usize, usize, Option<String>)], issue: &RuleIssue) {
    let Some(source) = &issue.source else { return };
    let Some((fi, di, _)) = places
        .iter()
        .find(|(_, _, s)| s.as_deref() == Some(source.as_str()))
    else {
        return;
    };
    let Some(doc) = files.get_mut(*fi).and_then(|f| f.documents.get_mut(*di)) else {
        return;
    };
    if issue.kind == IssueKind::Unsupported {
        doc.support = Support::Unsupported;
    }
    if !doc.reasons.contains(&issue.reason) {
        doc.reasons.push(issue.reason.clone());
    }
}
