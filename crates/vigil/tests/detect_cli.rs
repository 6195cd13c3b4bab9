//! `vigil rules check` and `vigil hunt` on SigmaHQ's own rules and regression data: the CLI a
//! user runs, checked against what the corpus says (the rule each regression case must trigger).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("VIGIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    if dir.join("sigma").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("VIGIL_REQUIRE_CORPUS").as_deref() != Ok("1"),
        "corpus missing at {}",
        dir.display()
    );
    let _ = writeln!(std::io::stderr(), "SKIP: no corpus at {}", dir.display());
    None
}

fn vigil(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .expect("run vigil")
}

#[test]
fn rules_check_supports_sigmahq_and_says_why_not() {
    let Some(corpus) = corpus() else { return };
    let trees: Vec<String> = ["rules", "rules-emerging-threats", "rules-threat-hunting"]
        .iter()
        .map(|t| corpus.join("sigma").join(t).display().to_string())
        .collect();
    let mut args = vec!["rules", "check", "--format", "json"];
    args.extend(trees.iter().map(String::as_str));
    let o = vigil(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (supported, total) = (
        report["supported"].as_u64().unwrap(),
        report["total"].as_u64().unwrap(),
    );
    assert!(total >= 3754, "only {total} rules seen");
    let rules = report["rules"].as_array().unwrap();
    assert_eq!(rules.len() as u64, total);
    // Rules whose logsource no source declares (cloud products, …) are not supported; of the
    // others, at least 99 % are.
    let no_source = rules
        .iter()
        .filter(|r| {
            r["reason"]
                .as_str()
                .is_some_and(|s| s.starts_with("runs on no declared source"))
        })
        .count() as u64;
    assert!(
        supported as f64 >= 0.99 * (total - no_source) as f64,
        "{supported} of {} with a declared source supported",
        total - no_source
    );
    // Every unsupported rule comes with a reason.
    for rule in rules {
        if rule["supported"] == false {
            assert!(rule["reason"].is_string(), "{}: no reason", rule["path"]);
        }
    }
    // The table form ends with the tally.
    let mut args = vec!["rules", "check"];
    args.extend(trees.iter().map(String::as_str));
    let o = vigil(&args);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.trim_end().ends_with(&format!(
            "{supported} of {total} rules supported ({:.2} %)",
            supported as f64 * 100.0 / total as f64
        )),
        "{}",
        text.lines().last().unwrap_or("")
    );
}

/// The rule id each regression case must trigger, and its .evtx file.
fn regression_cases(corpus: &Path) -> Vec<(String, PathBuf)> {
    let mut cases = Vec::new();
    let mut stack = vec![corpus.join("sigma/regression_data")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "info.yml") {
                let text = std::fs::read_to_string(&p).unwrap();
                // rule_metadata: - id: <uuid>   (read with a plain scan, not the engine's YAML)
                let id = text
                    .split("rule_metadata:")
                    .nth(1)
                    .and_then(|rest| rest.split("id:").nth(1))
                    .map(|s| s.split_whitespace().next().unwrap_or("").to_owned())
                    .unwrap();
                let evtx = std::fs::read_dir(&dir)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path())
                    .find(|f| f.extension().is_some_and(|x| x == "evtx"))
                    .unwrap();
                cases.push((id, evtx));
            }
        }
    }
    cases.sort();
    cases
}

#[test]
fn hunt_finds_the_named_rule_in_every_regression_case() {
    let Some(corpus) = corpus() else { return };
    let cases = regression_cases(&corpus);
    assert_eq!(cases.len(), 68);
    let rules: Vec<String> = ["rules", "rules-emerging-threats", "rules-threat-hunting"]
        .iter()
        .map(|t| corpus.join("sigma").join(t).display().to_string())
        .collect();
    let mut args = vec!["hunt", "--format", "json"];
    for r in &rules {
        args.extend(["--rules", r.as_str()]);
    }
    let files: Vec<String> = cases.iter().map(|(_, f)| f.display().to_string()).collect();
    args.extend(files.iter().map(String::as_str));
    let o = vigil(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // One alert per line (NDJSON).
    let alerts: Vec<serde_json::Value> = String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut missing = Vec::new();
    for (id, file) in &cases {
        let file = file.display().to_string();
        let found = alerts.iter().any(|a| {
            a["rule"]["id"] == id.as_str()
                && a["sources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s == file.as_str())
        });
        if !found {
            missing.push(format!("{id} in {file}"));
        }
    }
    assert!(missing.is_empty(), "not detected: {missing:#?}");
}
