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
        // The exceptions file counts: a change to it reloads the rules.
        let exceptions = dir.join(crate::exceptions::FILE_NAME);
        let rules = crate::report::rule_files(dir);
        for path in rules
            .into_iter()
            .chain(exceptions.is_file().then_some(exceptions))
        {
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
    let (mut set, mut issues) = RuleSet::compile_with(docs, &CompileOptions::default());
    issues.extend(load_issues);
    set.set_exceptions(load_exceptions(dirs, &mut file_errors));
    LoadedRules {
        set,
        issues,
        file_errors,
        loaded_at: Timestamp::now(),
        fingerprint: fp,
    }
}

/// The exceptions of every rule directory ([`crate::exceptions::FILE_NAME`]). A file that
/// cannot be read or is malformed is reported in `errors` and none of its exceptions apply (the
/// rules then alert as if it were absent: more alerts, never fewer).
pub fn load_exceptions(
    dirs: &[PathBuf],
    errors: &mut Vec<(PathBuf, String)>,
) -> crate::exceptions::Exceptions {
    let mut all = Vec::new();
    for dir in dirs {
        let path = dir.join(crate::exceptions::FILE_NAME);
        if !path.is_file() {
            continue;
        }
        match read_exceptions(&path) {
            Ok(file) => all.extend(file.exceptions),
            Err(e) => errors.push((path, e)),
        }
    }
    crate::exceptions::Exceptions::new(all)
}

/// Reads one exceptions file (at most 16 MiB).
pub fn read_exceptions(path: &std::path::Path) -> Result<crate::exceptions::ExceptionFile, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    f.take(16 << 20)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() >= 16 << 20 {
        return Err("larger than 16 MiB".into());
    }
    crate::exceptions::ExceptionFile::parse(&text)
}
