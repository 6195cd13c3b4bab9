//! `vigil rules test`: SigmaHQ's regression cases (the shared corpus) all pass through the real
//! EVTX/JSON → detect path; a deliberately broken rule fails and the reason names the field and
//! modifier; Vigil's inline `tests:` cases run through the real log parser, correlations
//! included; a malformed `tests:` block fails instead of passing silently.

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

fn rules_test(args: &[&str]) -> (i32, serde_json::Value, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["rules", "test", "--format", "json"])
        .args(args)
        .output()
        .expect("run vigil");
    let json = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (
        o.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn rule<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == id)
        .unwrap_or_else(|| panic!("no rule {id} in {report}"))
}

#[test]
fn sigmahq_regression_cases_all_pass() {
    let Some(corpus) = corpus() else { return };
    let trees: Vec<String> = ["rules", "rules-emerging-threats", "rules-threat-hunting"]
        .iter()
        .map(|t| corpus.join("sigma").join(t).display().to_string())
        .collect();
    let args: Vec<&str> = trees.iter().map(String::as_str).collect();
    let (code, report, err) = rules_test(&args);
    let failures: Vec<String> = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail")
        .map(|r| format!("{}: {}", r["title"], r["cases"]))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}\n{err}");
    assert_eq!(code, 0);
    // The corpus holds 68 of SigmaHQ's regression cases (a third); each has an EVTX sample
    // and its JSON twin, both run. The rest are named by rules but not on disk: skipped.
    assert_eq!(report["passed"], 68, "{}", report["passed"]);
    let cases: Vec<&serde_json::Value> = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["cases"].as_array().unwrap())
        .filter(|c| c["status"] == "pass")
        .collect();
    let kinds = |k: &str| cases.iter().filter(|c| c["kind"] == k).count();
    assert_eq!(kinds("regression:evtx"), 68);
    assert_eq!(kinds("regression:json"), 68);
    assert!(
        cases
            .iter()
            .all(|c| c["outcome"]["matched"].as_u64() >= Some(1))
    );
    let skipped = report["skipped"].as_u64().unwrap();
    assert!(skipped > 0, "data not on disk is skipped, not passed");
}

#[test]
fn a_broken_rule_fails_naming_the_field_and_modifier() {
    let Some(corpus) = corpus() else { return };
    let original = corpus.join(
        "sigma/rules-threat-hunting/windows/image_load/image_load_win_werfaultsecure_dbgcore_dbghelp_load.yml",
    );
    let text = std::fs::read_to_string(&original).unwrap();
    assert!(text.contains(r"Image|endswith: '\WerFaultSecure.exe'"));
    // Broken: the process name is wrong, so the sample no longer matches.
    let broken = text.replace(r"'\WerFaultSecure.exe'", r"'\WerFault.exe'");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.yml"), broken).unwrap();
    let root = corpus.join("sigma").display().to_string();
    let (code, report, _) = rules_test(&[&dir.path().display().to_string(), "--root", &root]);
    assert_eq!(code, 1, "a failing rule fails the run: {report}");
    let r = rule(&report, "8a2f4b1c-3d5e-4f7a-9b2c-1e4f6d8a9c2b");
    assert_eq!(r["status"], "fail");
    let case = &r["cases"][0];
    assert_eq!(case["kind"], "regression:evtx");
    let reason = case["reason"].as_str().unwrap();
    assert!(reason.contains("expected a match, got 0"), "{reason}");
    assert!(
        reason.contains(r"Image|endswith matches none of [\WerFault.exe]")
            && reason.contains(r"WerFaultSecure.exe"),
        "the reason names the entry and the event's value: {reason}"
    );
    // The trace says which entry held and which did not.
    let entries = &case["trace"]["searches"][0]["alternatives"][0];
    assert_eq!(entries[0]["field"], "Image");
    assert_eq!(entries[0]["matched"], false);
    assert_eq!(entries[1]["field"], "ImageLoaded");
    assert_eq!(entries[1]["matched"], true);

    // Without --root the sample cannot be found from a temporary directory: skipped, not passed.
    let (code, report, _) = rules_test(&[&dir.path().display().to_string()]);
    assert_eq!(code, 0);
    assert_eq!(report["skipped"], 1);
    assert_eq!(report["passed"], 0);
}

const VIGIL_RULES: &str = r#"title: SSH failed login
id: t-ssh-failed
name: t_ssh_failed
logsource: {product: linux, service: sshd}
detection:
    selection:
        event.action: ssh_login
        event.outcome: failure
    condition: selection
level: low
tests:
    - name: a failed password is a failed login
      log: "<38>Dec  6 10:00:01 web1 sshd[812]: Failed password for root from 203.0.113.5 port 52110 ssh2"
      match: true
    - name: an accepted one is not
      log: "<38>Dec  6 10:00:02 web1 sshd[812]: Accepted password for root from 203.0.113.5 port 52110 ssh2"
      match: false
    - name: events given as fields
      events:
        - {process.name: sshd, event.action: ssh_login, event.outcome: failure, source.ip: 198.51.100.7}
        - {process: {name: sshd}, event: {action: ssh_login, outcome: success}}
      match_count: 1
    - name: the logsource counts (no process.name, no sshd event)
      events:
        - {event.action: ssh_login, event.outcome: failure}
      match: false
---
title: SSH brute force
id: t-ssh-brute
correlation:
    type: event_count
    rules: [t_ssh_failed]
    group-by: [source.ip]
    timespan: 5m
    condition: {gte: 3}
level: high
tests:
    - name: three failures from one address raise one alert
      log:
        - "<38>Dec  6 10:00:01 web1 sshd[812]: Failed password for root from 203.0.113.5 port 52110 ssh2"
        - "<38>Dec  6 10:00:02 web1 sshd[812]: Failed password for root from 203.0.113.5 port 52111 ssh2"
        - "<38>Dec  6 10:00:03 web1 sshd[812]: Failed password for root from 203.0.113.5 port 52112 ssh2"
      match_count: 1
    - name: three addresses raise none
      log:
        - "<38>Dec  6 10:00:01 web1 sshd[812]: Failed password for root from 203.0.113.5 port 52110 ssh2"
        - "<38>Dec  6 10:00:02 web1 sshd[812]: Failed password for root from 203.0.113.6 port 52111 ssh2"
        - "<38>Dec  6 10:00:03 web1 sshd[812]: Failed password for root from 203.0.113.7 port 52112 ssh2"
      match: false
"#;

#[test]
fn inline_cases_run_through_the_real_parser_and_correlations() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ssh.yml"), VIGIL_RULES).unwrap();
    let (code, report, err) = rules_test(&[&dir.path().display().to_string()]);
    assert_eq!(code, 0, "{report:#}\n{err}");
    assert_eq!(report["passed"], 2, "{report:#}");
    let failed = rule(&report, "t-ssh-failed");
    assert_eq!(failed["cases"].as_array().unwrap().len(), 4);
    assert_eq!(failed["cases"][2]["outcome"]["matched"], 1);
    let brute = rule(&report, "t-ssh-brute");
    assert_eq!(brute["cases"][0]["outcome"]["matched"], 1);
    assert_eq!(brute["cases"][1]["outcome"]["matched"], 0);

    // A wrong expectation fails with the counts and, for a detection rule, why the event
    // did not match; a malformed tests block fails too (a typo must not pass).
    let wrong = VIGIL_RULES
        .replacen("match: false", "match: true", 1)
        .replace("condition: {gte: 3}", "condition: {gte: 4}")
        .replace(
            "match_count: 1\n    - name: three addresses",
            "macth_count: 1\n    - name: three addresses",
        );
    std::fs::write(dir.path().join("ssh.yml"), wrong).unwrap();
    let (code, report, _) = rules_test(&[&dir.path().display().to_string()]);
    assert_eq!(code, 1);
    let failed = rule(&report, "t-ssh-failed");
    let case = &failed["cases"][1];
    assert_eq!(case["status"], "fail");
    let reason = case["reason"].as_str().unwrap();
    assert!(
        reason.contains("expected a match, got 0")
            && reason.contains("event.outcome matches none of [failure] (event: success)"),
        "{reason}"
    );
    let brute = rule(&report, "t-ssh-brute");
    assert_eq!(brute["status"], "fail");
    let reasons = brute["cases"].to_string();
    assert!(reasons.contains("unknown key `macth_count`"), "{reasons}");
}
