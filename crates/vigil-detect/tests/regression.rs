//! SigmaHQ's regression cases: each `.evtx` in `sigma/regression_data` must trigger the rule its
//! `info.yml` names, parsed by Vigil's own EVTX parser and matched with every rule loaded.

mod common;

use std::path::{Path, PathBuf};

use vigil_detect::RuleSet;

/// `(rule id, evtx file)` of every case.
fn cases(root: &Path) -> Vec<(String, PathBuf, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "info.yml") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                // rule_metadata:\n    - id: <uuid>
                let id = text
                    .split("rule_metadata:")
                    .nth(1)
                    .and_then(|rest| rest.lines().find_map(|l| l.trim().strip_prefix("- id:")))
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_default();
                let dir = p.parent().unwrap_or(root);
                let Ok(files) = std::fs::read_dir(dir) else {
                    continue;
                };
                for f in files.flatten() {
                    if f.path().extension().is_some_and(|x| x == "evtx") {
                        out.push((id.clone(), f.path(), p.clone()));
                    }
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn regression_cases_fire() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let mut docs = Vec::new();
    for (_, loaded) in common::load_trees(&corpus) {
        docs.extend(loaded.into_iter().flatten());
    }
    let (set, _) = RuleSet::compile(docs);
    let cases = cases(&corpus.join("sigma/regression_data"));
    assert_eq!(cases.len(), 68, "expected 68 regression cases");
    let mut failures = Vec::new();
    for (id, evtx, info) in &cases {
        let Some(rule) = set.find(id) else {
            failures.push(format!(
                "{id}: rule not loaded or unsupported ({})",
                info.display()
            ));
            continue;
        };
        let bytes = std::fs::read(evtx).unwrap_or_default();
        let events = match vigil_parse::evtx::parse_file(bytes) {
            Ok(records) => records.into_iter().flatten().collect::<Vec<_>>(),
            Err(e) => {
                failures.push(format!("{id}: {} does not parse: {e}", evtx.display()));
                continue;
            }
        };
        if !events.iter().any(|e| set.matches(e).contains(&rule)) {
            let title = set
                .rule(rule)
                .map(|r| r.meta.title.clone())
                .unwrap_or_default();
            failures.push(format!(
                "{id} ({title}): no match in {} events of {}",
                events.len(),
                evtx.display()
            ));
        }
    }
    eprintln!(
        "{} of {} regression cases pass",
        cases.len() - failures.len(),
        cases.len()
    );
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    assert!(
        failures.is_empty(),
        "{} regression cases fail",
        failures.len()
    );
}
