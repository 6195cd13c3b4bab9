//! The Compliance page in a real browser (issue 17): Debian's Chromium driven by playwright-core
//! (`tests/browser/compliance.mjs`) against a real `vigil serve` holding failed logins: it
//! generates a PCI DSS report, checks the controls shown, downloads the signed HTML and renders
//! it to PNG as a user would see it (in `VIGIL_ARTIFACTS`, or the test's temporary directory).
//! Then this test checks the report read is audited.
//!
//! Needs node, `npm ci` in `tests/browser` and `/usr/bin/chromium`; without them the test says
//! so and skips, unless `VIGIL_REQUIRE_TOOLS=1` (CI) makes it fail.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Server, add_user, audit_events, create_token, curl, wait_until};

#[test]
fn the_compliance_page_generates_shows_and_downloads_a_signed_report() {
    if let Some(why) = common::browser_missing() {
        common::skip(&why);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let password = "compliance test password 1";
    add_user(&data, "carol", "admin", password);
    let ingest = create_token(&data, "ingest", "seed");
    let reader = create_token(&data, "viewer", "reader");
    let server = Server::start(&data, &["--checkpoint-interval", "1s"]);
    let url = server.url.clone();
    let now = chrono::Utc::now();
    let body: String = (0..6)
        .map(|i| {
            serde_json::json!({
                "@timestamp": (now - chrono::Duration::minutes(10 - i)).to_rfc3339(),
                "host.name": "web01", "event.category": ["authentication"], "event.outcome": "failure",
                "user.name": "root", "source.ip": "203.0.113.50", "message": "Failed password",
            })
            .to_string()
                + "\n"
        })
        .collect();
    let a = common::ingest_ndjson(&url, &ingest, &body);
    assert_eq!(a.status, 200, "{}", a.body);
    let auth = format!("Authorization: Bearer {reader}");
    assert!(
        wait_until(30, || {
            let c = curl(
                "GET",
                &format!("{url}/api/v1/integrity"),
                std::slice::from_ref(&auth),
                None,
            );
            c.json()["tree_size"].as_u64().unwrap_or(0) >= 6
        }),
        "a checkpoint over the seed"
    );
    // The API refuses an unknown framework and a bad time, naming them.
    let a = curl(
        "GET",
        &format!("{url}/api/v1/report/nope"),
        std::slice::from_ref(&auth),
        None,
    );
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(a.body.contains("pci-dss"), "{}", a.body);
    let a = curl(
        "GET",
        &format!("{url}/api/v1/report/pci-dss?from=yesterday-ish"),
        std::slice::from_ref(&auth),
        None,
    );
    assert_eq!(a.status, 400, "{}", a.body);
    // Without credentials: nothing.
    let a = curl("GET", &format!("{url}/api/v1/report/pci-dss"), &[], None);
    assert_eq!(a.status, 401, "{}", a.body);

    let artifacts = std::env::var_os("VIGIL_ARTIFACTS")
        .map(|d| PathBuf::from(d).join("compliance"))
        .unwrap_or_else(|| dir.path().join("artifacts"));
    let out = Command::new("node")
        .arg("compliance.mjs")
        .current_dir(common::browser_dir())
        .env("VIGIL_URL", &url)
        .env("VIGIL_USER", "carol")
        .env("VIGIL_PASSWORD", password)
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
    let png = std::fs::read(artifacts.join("report.png")).expect("the rendered report");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(
        wait_until(10, || audit_events(&data, "audit_read")
            .iter()
            .any(|e| e.get_str("user.name") == Some("carol"))),
        "the report read is audited with its reader"
    );
    server.stop();
}
