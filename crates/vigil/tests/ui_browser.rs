//! The web UI in a real browser: Debian's Chromium driven by playwright-core
//! (`tests/browser/ui.mjs`) against a real `vigil serve` holding real-looking data: sshd
//! brute force over HTTP ingest that raises an alert, an event carrying an XSS payload, a
//! signed checkpoint. The script logs in, runs the seed query, sees the histogram and a stats
//! table, opens an alert and acknowledges it, renders the dashboards, verifies the ledger,
//! lists rules and sources, checks a viewer cannot triage, and logs out; afterwards this test
//! checks the ledger audited the wrong password, the triage and the logout.
//!
//! Needs node, `npm ci` in `tests/browser` and `/usr/bin/chromium`; without them the test says
//! so and skips, unless `VIGIL_REQUIRE_TOOLS=1` (CI) makes it fail.

mod common;

use std::process::Command;

use common::{Server, add_user, audit_events, create_token, curl, wait_until};

const RULE: &str = r#"title: SSH failed login
id: 0b6f0a52-7a43-4d59-b0a4-5e1f0b6f0001
name: ui_ssh_failed
status: stable
logsource: {product: linux, service: sshd}
detection:
    selection:
        event.outcome: failure
        process.name: sshd
    condition: selection
level: low
---
title: SSH brute force
id: 0b6f0a52-7a43-4d59-b0a4-5e1f0b6f0002
status: stable
correlation:
    type: event_count
    rules: [ui_ssh_failed]
    group-by: [source.ip]
    timespan: 10m
    condition: {gte: 5}
level: high
tags: [attack.credential_access, attack.t1110.001]
"#;

#[test]
fn the_web_ui_works_in_a_real_browser() {
    if let Some(why) = common::browser_missing() {
        common::skip(&why);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("ssh.yml"), RULE).unwrap();
    let password = "browser test password 1";
    let viewer_password = "browser viewer password 1";
    add_user(&data, "alice", "admin", password);
    add_user(&data, "victor", "viewer", viewer_password);
    let ingest = create_token(&data, "ingest", "seed");
    let reader = create_token(&data, "viewer", "reader");
    let server = Server::start(
        &data,
        &[
            "--rules",
            &rules.display().to_string(),
            "--checkpoint-interval",
            "1s",
        ],
    );
    let url = server.url.clone();

    // Seed: a brute force from two addresses and one success, as sshd writes them.
    let now = chrono::Utc::now();
    let mut lines = String::new();
    for i in 0..12 {
        let t = (now - chrono::Duration::minutes(30 - i)).format("%b %e %H:%M:%S");
        let ip = if i % 3 == 0 {
            "198.51.100.23"
        } else {
            "203.0.113.50"
        };
        lines.push_str(&format!(
            "<38>{t} web01 sshd[{}]: Failed password for invalid user admin{i} from {ip} port {} ssh2\n",
            4000 + i,
            50000 + i
        ));
    }
    lines.push_str(&format!(
        "<38>{} web01 sshd[4100]: Accepted password for deploy from 192.0.2.10 port 50100 ssh2\n",
        now.format("%b %e %H:%M:%S")
    ));
    let a = curl(
        "POST",
        &format!("{url}/api/v1/ingest?format=syslog&source=web01-auth"),
        &[
            format!("Authorization: Bearer {ingest}"),
            "Content-Type: text/plain".into(),
        ],
        Some(&lines),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let xss = serde_json::json!({
        "message": "user comment <img src=x onerror=alert(1)> onerror probe",
        "event.category": "web",
        "user.name": "<script>alert(2)</script>",
    })
    .to_string();
    let a = curl(
        "POST",
        &format!("{url}/api/v1/ingest?source=webapp"),
        &[
            format!("Authorization: Bearer {ingest}"),
            "Content-Type: application/x-ndjson".into(),
        ],
        Some(&xss),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let reader_h = format!("Authorization: Bearer {reader}");
    assert!(
        wait_until(30, || {
            let alerts = curl(
                "GET",
                &format!("{url}/api/v1/alerts"),
                std::slice::from_ref(&reader_h),
                None,
            );
            let checkpoint = curl(
                "GET",
                &format!("{url}/api/v1/integrity"),
                std::slice::from_ref(&reader_h),
                None,
            );
            alerts.body.contains("SSH brute force")
                && checkpoint.json()["tree_size"].as_u64().unwrap_or(0) >= 14
        }),
        "the seed alert and a checkpoint"
    );

    let shots = std::env::var("VIGIL_SCREENSHOTS").ok();
    let mut node = Command::new("node");
    node.arg("ui.mjs")
        .current_dir(common::browser_dir())
        .env("VIGIL_URL", &url)
        .env("VIGIL_USER", "alice")
        .env("VIGIL_PASSWORD", password)
        .env("VIGIL_VIEWER_USER", "victor")
        .env("VIGIL_VIEWER_PASSWORD", viewer_password);
    if let Some(dir) = &shots {
        node.env("SCREENSHOT_DIR", dir);
    }
    let out = node.output().expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}\n--- server log ---\n{}",
        server.log()
    );
    assert!(stdout.contains("STEPS PASSED"), "{stdout}");

    // What the browser did is in the ledger.
    assert!(wait_until(5, || !audit_events(&data, "logout").is_empty()));
    let failures = audit_events(&data, "login_failure");
    assert!(
        failures
            .iter()
            .any(|e| e.get_str("user.name") == Some("alice")),
        "the wrong password is audited"
    );
    let triage = audit_events(&data, "alert_triage");
    assert!(
        triage
            .iter()
            .any(|e| e.get_str("user.name") == Some("alice")
                && e.get_str("vigil.alert.status") == Some("acknowledged")),
        "the acknowledgement is audited"
    );
    assert!(!audit_events(&data, "search").is_empty());
    assert!(!audit_events(&data, "ledger_verify").is_empty());
    server.stop();
}
