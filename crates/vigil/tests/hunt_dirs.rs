//! `vigil hunt DIR`: a directory is hunted recursively (hidden entries skipped, `--ext`
//! filtering), files are read on several threads, and the alerts — correlations across files
//! included — are the same whatever the number of threads.

use std::path::Path;
use std::process::Command;

const RULES: &str = r#"title: SSH failed login
id: 5d0c0f6e-3333-4c1e-9d5e-000000000001
name: h_ssh_failed
status: stable
logsource: {product: linux, service: sshd}
detection:
    selection:
        event.action: ssh_login
        event.outcome: failure
    condition: selection
level: low
---
title: SSH brute force
id: 5d0c0f6e-3333-4c1e-9d5e-000000000002
name: h_ssh_bruteforce
status: stable
correlation:
    type: event_count
    rules: [h_ssh_failed]
    group-by: [source.ip]
    timespan: 10m
    condition: {gte: 6}
level: high
"#;

/// Writes `n` failed logins from `ip`, a minute apart from `minute` on.
fn auth_log(path: &Path, ip: &str, minute: u32, n: u32) {
    let lines: String = (0..n)
        .map(|i| {
            format!(
                "Dec  6 10:{:02}:01 web1 sshd[812]: Failed password for root from {ip} port 52110 ssh2\n",
                minute + i
            )
        })
        .collect();
    std::fs::write(path, lines).unwrap();
}

fn hunt(args: &[&str]) -> (String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("hunt")
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    (String::from_utf8(o.stdout).unwrap(), err)
}

#[test]
fn a_directory_is_hunted_recursively_with_the_same_alerts_on_any_number_of_threads() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("ssh.yml"), RULES).unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(logs.join("b/deeper")).unwrap();
    std::fs::create_dir_all(logs.join(".snapshots")).unwrap();
    // One attacker whose six attempts are split over three files (three in one, two in a
    // nested one, one in another): only a hunt that reads them all, in order, correlates them.
    auth_log(&logs.join("a.log"), "203.0.113.5", 0, 3);
    auth_log(&logs.join("b/deeper/c.log"), "203.0.113.5", 3, 2);
    auth_log(&logs.join("b/d.log"), "203.0.113.5", 5, 1);
    auth_log(&logs.join("b/e.txt"), "198.51.100.7", 0, 6);
    // Hidden: never read (it would raise a third group).
    auth_log(&logs.join(".snapshots/old.log"), "192.0.2.1", 0, 9);
    let logs_arg = logs.display().to_string();
    let rules_arg = rules.display().to_string();
    let run = |threads: &str, ext: Option<&str>| {
        let mut args = vec![
            "--rules",
            &rules_arg,
            "--format",
            "json",
            "--threads",
            threads,
            &logs_arg,
        ];
        if let Some(e) = ext {
            args.extend(["--ext", e]);
        }
        hunt(&args)
    };
    let created = regex::Regex::new(r#""created":"[^"]*""#).unwrap();
    let (one, err) = run("1", None);
    assert!(err.contains("12 events in 4 files"), "{err}");
    let alerts: Vec<serde_json::Value> = one
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let brute = alerts
        .iter()
        .find(|a| a["rule"]["title"] == "SSH brute force")
        .unwrap_or_else(|| panic!("no correlation across files: {one}"));
    assert_eq!(brute["group"]["source.ip"], "203.0.113.5");
    // The six attempts are counted from three files: the correlation saw every one.
    assert_eq!(brute["count"], 1, "{brute}");
    assert!(
        brute["sources"][0].as_str().unwrap().ends_with(".log"),
        "{brute}"
    );
    assert!(!one.contains("192.0.2.1"), "a hidden file was read: {one}");
    assert!(one.contains("198.51.100.7"), "{one}");
    // Any number of threads: the same alerts, in the same order.
    for threads in ["2", "4"] {
        let (many, _) = run(threads, None);
        assert_eq!(
            created.replace_all(&many, ""),
            created.replace_all(&one, ""),
            "{threads} threads"
        );
    }
    // --ext keeps only the .log files: the .txt attacker is gone, the other stays.
    let (logs_only, err) = run("2", Some("log"));
    assert!(err.contains("6 events in 3 files"), "{err}");
    assert!(!logs_only.contains("198.51.100.7"), "{logs_only}");
    assert!(logs_only.contains("SSH brute force"), "{logs_only}");
}
