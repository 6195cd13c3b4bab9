//! Loading the rules of one or more directories into a compiled [`RuleSet`], as `vigil serve`
//! and `vigil hunt` both do: every `.yml`/`.yaml` file under them, broken files and
//! unsupported rules reported, never fatal.

use std::path::PathBuf;
use std::time::SystemTime;

use vigil_event::Timestamp;

use crate::compile::{CompileOptions, IssueKind, RuleIssue};
use crate::ruleset::RuleSet;

/// A loaded rule set and what loading it said.
pub struct LoadedRules {
    /// The compiled rules.
    pub set: RuleSet,
    /// Unsupported rules and notes, per document.
    pub issues: Vec<RuleIssue>,
    /// Files that could not be read or parsed, with the reason.
    pub file_errors: Vec<(PathBuf, String)>,
    /// When the set was loaded.
    pub loaded_at: Timestamp,
    /// The rule files as they were when loaded ([`fingerprint`]): a reload is due when they
    /// differ.
    pub fingerprint: Fingerprint,
}

/// Every rule file's path, size and modification time.
pub type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// Every `.yml`/`.yaml` file under the directories, with its size and modification time.
pub fn fingerprint(dirs: &[PathBuf]) -> Fingerprint {
    let mut out = Vec::new();
    for dir in dirs {
        for path in crate::report::rule_files(dir) {
            let meta = std::fs::metadata(&path).ok();
            out.push((
                path,
                meta.as_ref().map_or(0, std::fs::Metadata::len),
                meta.and_then(|m| m.modified().ok()),
            ));
        }
    }
    out.sort();
    out
}

/// Loads and compiles every rule file under `dirs`. Never fails: problems are reported in the
/// result and the rest of the rules still run.
pub fn load_rules(dirs: &[PathBuf]) -> LoadedRules {
    let fp = fingerprint(dirs);
    let mut docs = Vec::new();
    let mut file_errors = Vec::new();
    let mut load_issues = Vec::new();
    for dir in dirs {
        if !dir.exists() {
            file_errors.push((dir.clone(), "no such directory".to_string()));
            continue;
        }
        for (path, results) in crate::report::load_dir(dir) {
            for result in results {
                match result {
                    Ok(doc) => docs.push(doc),
                    Err(e) => load_issues.push(RuleIssue {
                        source: Some(path.display().to_string()),
                        title: String::new(),
                        id: None,
                        kind: IssueKind::Unsupported,
                        reason: e.to_string(),
                    }),
                }
            }
        }
    }
    let (set, mut issues) = RuleSet::compile_with(docs, &CompileOptions::default());
    issues.extend(load_issues);
    LoadedRules {
        set,
        issues,
        file_errors,
        loaded_at: Timestamp::now(),
        fingerprint: fp,
    }
}
