//! Incident response against a real `vigil serve` (issue 19): cases (opened from an alert,
//! worked, every change an audit event in the ledger, the book rebuilt from the ledger after a
//! restart, exported as a verifiable evidence bundle), entity pages (one address or account
//! across sources, with its alerts, cases and bans), ATT&CK coverage (only rules whose
//! logsource sends events count; the Navigator layer), and a correlation alert carrying every
//! event that contributed to it. Then the same in a real browser (`tests/browser/cases.mjs`).
//!
//! The browser half needs node, `npm ci` in `tests/browser` and `/usr/bin/chromium`; without
//! them it says so and skips, unless `VIGIL_REQUIRE_TOOLS=1` (CI) makes it fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, add_user, create_token, curl, ingest_ndjson, wait_until};
use serde_json::{Value, json};
use vigil_event::Timestamp;

const RULES: &str = r#"title: SSH failed login
id: 5d0c2a8e-1b7f-4c44-9f0e-0000000c0001
name: ssh_failed
logsource: {product: linux, service: sshd}
detection:
    selection:
        event.action: ssh_login
        event.outcome: failure
    condition: selection
level: low
---
title: SSH brute force
id: 5d0c2a8e-1b7f-4c44-9f0e-0000000c0002
description: Five failed SSH logins from one address within ten minutes.
correlation:
    type: event_count
    rules: [ssh_failed]
    group-by: [source.ip]
    timespan: 10m
    condition: {gte: 5}
level: high
tags: [attack.credential_access, attack.t1110.001, t1110.001]
---
title: LSASS read by procdump
id: 5d0c2a8e-1b7f-4c44-9f0e-0000000c0003
logsource: {product: windows, category: process_creation}
detection:
    selection:
        Image|endswith: '\procdump.exe'
        CommandLine|contains: lsass
    condition: selection
level: critical
tags: [attack.credential_access, attack.t1003.001]
---
title: Records of another department read
id: 5d0c2a8e-1b7f-4c44-9f0e-0000000c0004
logsource: {category: application}
detection:
    selection:
        event.action: record_read
        labels.department_mismatch: 'true'
    condition: selection
level: medium
tags: [attack.collection, attack.t1213]
"#;

const ATTACKER: &str = "203.0.113.5";
const OTHER: &str = "198.51.100.20";

/// Seconds before now of the first failed login (inside every default window).
const AGO: i64 = 3600;

/// The seed's event time `offset` seconds after the first failed login (fixed per run).
fn at(offset: i64) -> String {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| Timestamp::now().as_secs() - AGO);
    Timestamp::from_secs(base + offset).to_rfc3339()
}

/// Six failed logins from the attacker (the fifth raises the brute force), one from another
/// address, a web request and an application event from the attacker, an application event
/// from elsewhere.
fn seed_events() -> String {
    let mut lines = Vec::new();
    for i in 0..6 {
        lines.push(json!({"@timestamp": at(i), "event.dataset": "system.auth", "process.name": "sshd",
            "event.action": "ssh_login", "event.outcome": "failure", "source.ip": ATTACKER, "user.name": "root",
            "host.name": "web1", "message": format!("Failed password for root from {ATTACKER} port {} ssh2", 40000 + i)}));
    }
    lines.push(json!({"@timestamp": at(10), "event.dataset": "system.auth", "process.name": "sshd",
        "event.action": "ssh_login", "event.outcome": "failure", "source.ip": OTHER, "user.name": "admin",
        "message": format!("Failed password for admin from {OTHER} port 1 ssh2")}));
    lines.push(json!({"@timestamp": at(20), "event.dataset": "nginx.access", "source.ip": ATTACKER,
        "http.request.method": "GET", "url.original": "/wp-login.php", "http.response.status_code": 404, "host.name": "web1"}));
    lines.push(json!({"@timestamp": at(30), "event.dataset": "app.records", "event.action": "record_read",
        "labels.department_mismatch": "true", "user.name": "alice", "source.ip": ATTACKER, "message": "alice read record 77 of finance"}));
    lines.push(
        json!({"@timestamp": at(40), "event.dataset": "app.records", "event.action": "record_read",
        "user.name": "bob", "source.ip": OTHER, "message": "bob read record 78"}),
    );
    lines.iter().map(|l| l.to_string() + "\n").collect()
}

struct Scene {
    _dir: tempfile::TempDir,
    data: PathBuf,
    rules: PathBuf,
    server: Server,
    ingest: String,
    analyst: String,
    viewer: String,
    brute: u64,
    /// Sequence numbers of the six failed logins from the attacker, in order.
    failures: Vec<u64>,
    web_seq: u64,
}

fn seq_of(data: &Path, pred: impl Fn(&vigil_event::Event) -> bool) -> Vec<u64> {
    let mut reader = vigil_ledger::LedgerReader::open(data).unwrap();
    (reader.first_seq()..reader.end_seq())
        .filter(|&s| reader.read_event(s).is_ok_and(|e| pred(&e)))
        .collect()
}

fn start(data: &Path, rules: &Path) -> Server {
    Server::start(data, &["--rules", rules.to_str().unwrap()])
}

fn scene() -> Scene {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("ir.yml"), RULES).unwrap();
    add_user(&data, "ana", "analyst", "cases test password 1");
    add_user(&data, "vic", "viewer", "cases test password 2");
    let ingest = create_token(&data, "ingest", "seed");
    let analyst = create_token(&data, "analyst", "ana-token");
    let viewer = create_token(&data, "viewer", "vic-token");
    let server = start(&data, &rules);
    let a = ingest_ndjson(&server.url, &ingest, &seed_events());
    assert_eq!(a.status, 200, "{}", a.body);
    let mut brute = 0;
    assert!(
        wait_until(30, || {
            let a = get(
                &server.url,
                &viewer,
                "/api/v1/alerts?rule=SSH%20brute%20force",
            );
            match a["alerts"].as_array().and_then(|l| l.first()) {
                Some(x) => {
                    brute = x["id"].as_u64().unwrap();
                    true
                }
                None => false,
            }
        }),
        "the brute force alert"
    );
    let failures = seq_of(&data, |e| {
        e.get_str("event.outcome") == Some("failure")
            && e.get("source.ip").and_then(vigil_event::Value::as_ip)
                == Some(ATTACKER.parse().unwrap())
            && e.get_str("event.dataset") == Some("system.auth")
    });
    assert_eq!(failures.len(), 6);
    let web_seq = seq_of(&data, |e| {
        e.get_str("event.dataset") == Some("nginx.access")
    })[0];
    Scene {
        _dir: dir,
        data,
        rules,
        server,
        ingest,
        analyst,
        viewer,
        brute,
        failures,
        web_seq,
    }
}

fn get(url: &str, token: &str, path: &str) -> Value {
    let a = curl(
        "GET",
        &format!("{url}{path}"),
        &[format!("Authorization: Bearer {token}")],
        None,
    );
    assert_eq!(a.status, 200, "{path}: {}", a.body);
    a.json()
}

fn call(method: &str, url: &str, token: &str, path: &str, body: &Value) -> common::Answer {
    curl(
        method,
        &format!("{url}{path}"),
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/json".into(),
        ],
        Some(&body.to_string()),
    )
}

#[test]
fn cases_entities_coverage_and_evidence_over_the_api() {
    let s = scene();
    let url = s.server.url.clone();

    // The correlation alert carries every contributing event: the five failures that made it.
    let alert = get(&url, &s.viewer, &format!("/api/v1/alerts/{}", s.brute));
    let contributing: Vec<u64> = alert["contributing"]
        .as_array()
        .expect("contributing events")
        .iter()
        .map(|e| e["vigil.seq"].as_u64().unwrap())
        .collect();
    assert_eq!(contributing, s.failures[..5], "{alert}");
    assert_eq!(
        alert["rule"]["description"],
        "Five failed SSH logins from one address within ten minutes."
    );

    // Cases: an analyst opens one from the alert; every refusal says why and records nothing.
    let a = call(
        "POST",
        &url,
        &s.analyst,
        "/api/v1/cases",
        &json!({"title": "Brute force against web1", "severity": "high", "alerts": [s.brute], "comment": "seen at 09:00"}),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let case = a.json();
    assert_eq!(case["id"], 1);
    assert_eq!(case["alerts"], json!([s.brute]));
    assert_eq!(case["status"], "open");
    assert_eq!(case["created_by"], "ana-token");
    let id = 1;
    let ok = |method: &str, path: &str, body: Value| {
        let a = call(method, &url, &s.analyst, path, &body);
        assert_eq!(a.status, 200, "{path} {body}: {}", a.body);
        a.json()
    };
    ok(
        "POST",
        &format!("/api/v1/cases/{id}"),
        json!({"status": "in_progress", "assignee": "ana"}),
    );
    ok(
        "POST",
        &format!("/api/v1/cases/{id}/events"),
        json!({"seq": s.web_seq}),
    );
    let after = ok(
        "POST",
        &format!("/api/v1/cases/{id}/comments"),
        json!({"text": "the same address probed wp-login"}),
    );
    assert_eq!(after["status"], "in_progress");
    assert_eq!(after["assignee"], "ana");
    assert_eq!(after["events"], json!([s.web_seq]));
    assert_eq!(after["comments"].as_array().unwrap().len(), 2);
    let before_refusals = common::ledger_events(&s.data).len();
    for (method, path, body, status, says) in [
        (
            "POST",
            format!("/api/v1/cases/{id}/alerts"),
            json!({"alert": s.brute}),
            409,
            "already in case",
        ),
        (
            "POST",
            format!("/api/v1/cases/{id}/alerts"),
            json!({"alert": 999_999}),
            404,
            "no alert",
        ),
        (
            "POST",
            format!("/api/v1/cases/{id}/events"),
            json!({"seq": 1u64 << 40}),
            404,
            "no event",
        ),
        (
            "POST",
            "/api/v1/cases/77/comments".into(),
            json!({"text": "x"}),
            404,
            "no case 77",
        ),
        (
            "POST",
            format!("/api/v1/cases/{id}"),
            json!({"status": "done"}),
            400,
            "in_progress",
        ),
        (
            "POST",
            format!("/api/v1/cases/{id}"),
            json!({}),
            400,
            "nothing to change",
        ),
        (
            "POST",
            format!("/api/v1/cases/{id}"),
            json!({"title": "a\u{1b}[2Jb"}),
            400,
            "control characters",
        ),
        (
            "POST",
            format!("/api/v1/cases/{id}/comments"),
            json!({"text": "x".repeat(5000)}),
            400,
            "longer than",
        ),
        (
            "POST",
            "/api/v1/cases".into(),
            json!({"title": "t", "severity": "extreme"}),
            400,
            "severity",
        ),
        (
            "POST",
            "/api/v1/cases".into(),
            json!({"title": "t", "owner": "x"}),
            400,
            "unknown field",
        ),
    ] {
        let a = call(method, &url, &s.analyst, &path, &body);
        assert_eq!(a.status, status, "{path} {body}: {}", a.body);
        assert!(a.body.contains(says), "{path} {body}: {}", a.body);
    }
    // A viewer reads but cannot change; an ingest token cannot read.
    let a = call(
        "POST",
        &url,
        &s.viewer,
        &format!("/api/v1/cases/{id}/comments"),
        &json!({"text": "x"}),
    );
    assert_eq!(a.status, 403);
    let a = curl(
        "GET",
        &format!("{url}/api/v1/cases"),
        &[format!("Authorization: Bearer {}", s.ingest)],
        None,
    );
    assert_eq!(a.status, 403);
    let case = get(&url, &s.viewer, &format!("/api/v1/cases/{id}"));
    assert_eq!(case["alert_details"][0]["rule"]["title"], "SSH brute force");
    assert_eq!(case["event_details"][0]["url.original"], "/wp-login.php");
    let kinds: Vec<&str> = case["combined_timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    // Created, alert added, commented (at creation), updated, event added, commented.
    assert_eq!(
        kinds.iter().filter(|k| **k == "change").count(),
        6,
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"alert") && kinds.contains(&"event"),
        "{kinds:?}"
    );
    // The alert view can ask which cases hold an alert.
    let holding = get(&url, &s.viewer, &format!("/api/v1/cases?alert={}", s.brute));
    assert_eq!(holding["total"], 1);

    // The audit trail: each change once, in order, by whom; the refusals left nothing.
    let audit: Vec<(String, String, i64)> = common::ledger_events(&s.data)
        .iter()
        .filter(|e| {
            e.is_dataset("vigil.audit")
                && e.get_str("event.action")
                    .is_some_and(|a| a.starts_with("case_"))
        })
        .map(|e| {
            (
                e.get_str("event.action").unwrap().to_owned(),
                e.get_str("user.name").unwrap_or("").to_owned(),
                e.get("vigil.case.id").and_then(|v| v.as_i64()).unwrap(),
            )
        })
        .collect();
    let actions: Vec<&str> = audit.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "case_created",
            "case_alert_added",
            "case_commented",
            "case_updated",
            "case_event_added",
            "case_commented"
        ]
    );
    assert!(
        audit
            .iter()
            .all(|(_, by, case)| by == "ana-token" && *case == 1)
    );
    let case_events_after = common::ledger_events(&s.data)
        .iter()
        .skip(before_refusals)
        .filter(|e| {
            e.get_str("event.action")
                .is_some_and(|a| a.starts_with("case_"))
        })
        .count();
    assert_eq!(case_events_after, 0, "refused changes are not recorded");

    // Entity pages: the attacker's address across sources, its alert, case and no ban.
    let e = get(&url, &s.viewer, &format!("/api/v1/entity/ip/{ATTACKER}"));
    let seqs: Vec<u64> = e["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["vigil.seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs.len(),
        8,
        "six failures, a web request, an app event: {e}"
    );
    assert!(seqs.contains(&s.web_seq));
    assert!(s.failures.iter().all(|f| seqs.contains(f)));
    assert!(
        e["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["source.ip"] == ATTACKER),
        "only the attacker's events"
    );
    let mut sources: Vec<(String, u64)> = e["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["event.dataset"].as_str().unwrap_or("").to_owned(),
                x["count"].as_u64().unwrap(),
            )
        })
        .collect();
    sources.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    assert_eq!(
        sources,
        [
            ("system.auth".to_owned(), 6),
            ("app.records".to_owned(), 1),
            ("nginx.access".to_owned(), 1)
        ]
    );
    assert_eq!(e["total_events"], 8);
    assert_eq!(e["first_seen"], at(0));
    assert_eq!(e["last_seen"], at(30));
    // Its alerts from two sources: the brute force (sshd) and the records rule (application).
    let mut titles: Vec<&str> = e["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"]["title"].as_str().unwrap())
        .collect();
    titles.sort_unstable();
    assert_eq!(
        titles,
        ["Records of another department read", "SSH brute force"]
    );
    assert_eq!(e["cases"][0]["id"], 1);
    assert_eq!(e["bans"], json!([]));
    // A user across sources: alice's one event; limits and refusals.
    let u = get(&url, &s.viewer, "/api/v1/entity/user/alice");
    assert_eq!(u["events"].as_array().unwrap().len(), 1, "{u}");
    assert_eq!(u["events"][0]["message"], "alice read record 77 of finance");
    let lim = get(
        &url,
        &s.viewer,
        &format!("/api/v1/entity/ip/{ATTACKER}?limit=3"),
    );
    assert_eq!(lim["events"].as_array().unwrap().len(), 3);
    assert_eq!(lim["truncated"], true);
    for (path, status) in [
        ("/api/v1/entity/ip/not-an-ip".to_string(), 400),
        ("/api/v1/entity/planet/mars".to_string(), 400),
        (format!("/api/v1/entity/user/{}", "a".repeat(300)), 400),
        ("/api/v1/entity/user/a%22)%20OR%20(x%3D%22".to_string(), 200),
    ] {
        let a = curl(
            "GET",
            &format!("{url}{path}"),
            &[format!("Authorization: Bearer {}", s.viewer)],
            None,
        );
        assert_eq!(a.status, status, "{path}: {}", a.body);
        if status == 200 {
            assert_eq!(
                a.json()["events"],
                json!([]),
                "a quote cannot widen the search"
            );
        }
    }

    // ATT&CK coverage: brute force (sshd data) and the records rule (application) count; the
    // Sysmon rule has no Windows data and covers nothing.
    let c = get(&url, &s.viewer, "/api/v1/coverage");
    let cell = |tactic: &str, tech: &str| -> Value {
        c["tactics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tactic"] == tactic)
            .and_then(|t| {
                t["techniques"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|x| x["id"] == tech)
                    .cloned()
            })
            .unwrap_or_else(|| panic!("{tactic}/{tech} in {c}"))
    };
    // Vigil's own bundled rules count too (their audit events are received); the SSH brute
    // force is among the rules covering password guessing.
    let brute = cell("credential-access", "T1110.001");
    assert_eq!(brute["idle_rules"], 0, "{c}");
    assert!(
        brute["active"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("SSH brute force (")),
        "{brute}"
    );
    assert_eq!(brute["name"], "Password Guessing");
    let lsass = cell("credential-access", "T1003.001");
    assert_eq!(
        (lsass["rules"].as_u64(), lsass["idle_rules"].as_u64()),
        (Some(0), Some(1)),
        "{c}"
    );
    assert_eq!(cell("collection", "T1213")["rules"], 1);
    let (named, covered) = (
        c["techniques_named"].as_u64().unwrap(),
        c["techniques_covered"].as_u64().unwrap(),
    );
    assert_eq!(
        named - covered,
        1,
        "only the Sysmon rule's technique lacks data: {c}"
    );
    let layer = get(&url, &s.viewer, "/api/v1/coverage/navigator");
    assert_eq!(layer["versions"]["layer"], "4.5");
    assert_eq!(layer["domain"], "enterprise-attack");
    let score = |id: &str| {
        layer["techniques"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["techniqueID"] == id)
            .map(|t| t["score"].as_u64().unwrap())
    };
    assert_eq!(
        (score("T1110.001"), score("T1003.001"), score("T1213")),
        (brute["rules"].as_u64(), Some(0), Some(1))
    );

    // The case book is derived from the ledger: a restart rebuilds the same case.
    let before = get(&url, &s.viewer, &format!("/api/v1/cases/{id}"));
    s.server.stop();
    let server = start(&s.data, &s.rules);
    let again = get(&server.url, &s.viewer, &format!("/api/v1/cases/{id}"));
    for key in [
        "title", "status", "severity", "assignee", "alerts", "events", "comments", "timeline",
        "created", "updated",
    ] {
        assert_eq!(again[key], before[key], "{key} after the rebuild");
    }
    // A new case after the rebuild takes the next id.
    let a = call(
        "POST",
        &server.url,
        &s.analyst,
        "/api/v1/cases",
        &json!({"title": "second"}),
    );
    assert_eq!(a.json()["id"], 2, "{}", a.body);
    server.stop();

    // The case as a verifiable evidence bundle: its change events, its alert's events and the
    // event added to it, each with its inclusion proof.
    let out = s._dir.path().join("bundle");
    let run = common::vigil()
        .args(["evidence", "export", "--data-dir"])
        .arg(&s.data)
        .args(["--case", "1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bundled: Vec<u64> = std::fs::read_to_string(out.join("events.ndjson"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let case_changes = seq_of(&s.data, |e| {
        e.get("vigil.case.id").and_then(|v| v.as_i64()) == Some(1)
    });
    assert_eq!(case_changes.len(), 6);
    for seq in case_changes.iter().chain([&s.web_seq, &s.failures[4]]) {
        assert!(bundled.contains(seq), "{seq} in the bundle {bundled:?}");
    }
    assert!(
        !seq_of(&s.data, |e| e.get_str("event.action")
            == Some("case_created")
            && e.get("vigil.case.id").and_then(|v| v.as_i64()) == Some(2))
        .iter()
        .any(|s| bundled.contains(s)),
        "the other case's events are not in the bundle"
    );
    let verify = common::vigil()
        .args(["evidence", "verify"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let bad = common::vigil()
        .args(["evidence", "export", "--data-dir"])
        .arg(&s.data)
        .args(["--case", "9", "--out"])
        .arg(s._dir.path().join("none"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no case 9"));
}

#[test]
fn cases_entities_and_coverage_in_the_browser() {
    let s = scene();
    if let Some(why) = common::browser_missing() {
        common::skip(&why);
        return;
    }
    let artifacts = std::env::var_os("VIGIL_ARTIFACTS")
        .map(|d| PathBuf::from(d).join("cases"))
        .unwrap_or_else(|| s._dir.path().join("artifacts"));
    let out = Command::new("node")
        .arg("cases.mjs")
        .current_dir(common::browser_dir())
        .env("VIGIL_URL", &s.server.url)
        .env("VIGIL_USER", "ana")
        .env("VIGIL_PASSWORD", "cases test password 1")
        .env("ALERT_ID", s.brute.to_string())
        .env("ATTACKER", ATTACKER)
        .env("FIRST_FAILURE", s.failures[0].to_string())
        .env("WEB_SEQ", s.web_seq.to_string())
        .env("ARTIFACTS", &artifacts)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("STEPS PASSED"),
        "the browser test failed:\n{stdout}\n{stderr}\n--- server log ---\n{}",
        s.server.log()
    );
    // What the browser did is on record: the case it opened and its comment.
    let actions: Vec<String> = common::ledger_events(&s.data)
        .iter()
        .filter_map(|e| e.get_str("event.action").map(str::to_owned))
        .filter(|a| a.starts_with("case_"))
        .collect();
    assert!(
        actions.starts_with(&["case_created".to_owned(), "case_alert_added".to_owned()]),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"case_commented".to_owned())
            && actions.contains(&"case_updated".to_owned())
    );
}
