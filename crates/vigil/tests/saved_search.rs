//! The search page's analyst tools against a real `vigil serve` (issue 19): paging past 200
//! rows (`offset`), saved searches (own, shared, audited, bounded, kept over a restart) and
//! dashboard panels made from them; then the same in a real browser (`tests/browser/search.mjs`,
//! Debian's Chromium through playwright-core): charts drawn from `timechart` and `stats … by`,
//! the field sidebar's top values, field autocomplete, rows 201–400 of a 450-event result, a
//! saved search that survives a restart and re-runs, and a dashboard panel showing its count.
//!
//! The browser half needs node, `npm ci` in `tests/browser` and `/usr/bin/chromium`; without
//! them it says so and skips, unless `VIGIL_REQUIRE_TOOLS=1` (CI) makes it fail.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, add_user, audit_events, create_token, curl};
use serde_json::json;

fn call(
    method: &str,
    url: &str,
    auth: &[String],
    body: Option<&serde_json::Value>,
) -> common::Answer {
    let text = body.map(|b| b.to_string());
    curl(
        method,
        url,
        &[auth, &["Content-Type: application/json".to_string()]].concat(),
        text.as_deref(),
    )
}

fn search(url: &str, auth: &[String], query: &str, limit: usize, offset: usize) -> common::Answer {
    call(
        "POST",
        &format!("{url}/api/v1/search"),
        auth,
        Some(
            &json!({"query": query, "from": "-2h", "to": "now", "limit": limit, "offset": offset}),
        ),
    )
}

/// 450 `app=paging` events over five minutes (users alice 250, bob 150, carol 50) and 20
/// `app=side` events (host web1 12, web2 5, db 3).
fn seed(url: &str, token: &str) {
    let base = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
        - 30)
        * 60;
    let mut body = String::new();
    for i in 0..450u64 {
        let user = match i % 9 {
            0..=4 => "alice",
            5..=7 => "bob",
            _ => "carol",
        };
        let t = base + (i % 5) * 60 + i % 50;
        body += &(json!({"@timestamp": t * 1000, "event.id": format!("p{i}"), "app": "paging", "user.name": user, "message": format!("paging event {i}")}).to_string() + "\n");
    }
    for i in 0..20u64 {
        let host = match i {
            0..=11 => "web1",
            12..=16 => "web2",
            _ => "db",
        };
        body += &(json!({"@timestamp": (base + i) * 1000, "event.id": format!("s{i}"), "app": "side", "host.name": host, "message": format!("side event {i}")}).to_string() + "\n");
    }
    let a = common::ingest_ndjson(url, token, &body);
    assert_eq!(a.status, 200, "{}", a.body);
}

fn seqs(a: &common::Answer) -> Vec<u64> {
    let j = a.json();
    let col = j["columns"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c == "vigil.seq")
        .expect("vigil.seq column");
    j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[col].as_u64().unwrap())
        .collect()
}

fn browser(url: &str, phase: &str, password: &str, artifacts: &Path, server: &Server) {
    let out = Command::new("node")
        .arg("search.mjs")
        .current_dir(common::browser_dir())
        .env("VIGIL_URL", url)
        .env("VIGIL_USER", "ana")
        .env("VIGIL_PASSWORD", password)
        .env("PHASE", phase)
        .env("ARTIFACTS", artifacts.join(phase))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("STEPS PASSED"),
        "the browser test ({phase}) failed:\n{stdout}\n{stderr}\n--- server log ---\n{}",
        server.log()
    );
}

#[test]
fn paging_saved_searches_and_panels_in_the_api_and_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let password = "search test password 1";
    add_user(&data, "ana", "analyst", password);
    let ingest = create_token(&data, "ingest", "seed");
    let analyst = vec![format!(
        "Authorization: Bearer {}",
        create_token(&data, "analyst", "ana-token")
    )];
    let viewer = vec![format!(
        "Authorization: Bearer {}",
        create_token(&data, "viewer", "vic")
    )];
    let other = vec![format!(
        "Authorization: Bearer {}",
        create_token(&data, "viewer", "val")
    )];
    let server = Server::start(&data, &[]);
    let url = server.url.clone();
    seed(&url, &ingest);

    // Paging: three pages of one query hold all 450 events once each.
    let mut all = Vec::new();
    for (page, want) in [(0, 200), (200, 200), (400, 50)] {
        let a = search(&url, &viewer, "app=paging", 200, page);
        assert_eq!(a.status, 200, "{}", a.body);
        let s = seqs(&a);
        assert_eq!(s.len(), want, "offset {page}");
        all.extend(s);
    }
    assert_eq!(
        all.iter().collect::<BTreeSet<_>>().len(),
        450,
        "no repeats across pages"
    );
    let whole = seqs(&search(&url, &viewer, "app=paging", 1000, 0));
    assert_eq!(all, whole, "pages are the whole result, in its order");
    let a = search(&url, &viewer, "app=paging", 200, 10_001);
    assert_eq!(
        a.status, 400,
        "an offset past the bound is refused: {}",
        a.body
    );
    let a = search(&url, &viewer, "app=paging", 200, usize::MAX);
    assert_eq!(a.status, 400, "{}", a.body);

    // Saved searches: a viewer keeps their own, cannot share; an analyst shares.
    let saved = format!("{url}/api/v1/saved-searches");
    let a = call(
        "POST",
        &saved,
        &viewer,
        Some(&json!({"name": "my failures", "query": "app=paging user.name=carol"})),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let mine = a.json()["id"].as_str().unwrap().to_string();
    assert_eq!(a.json()["owner"], "vic");
    let a = call(
        "POST",
        &saved,
        &viewer,
        Some(&json!({"name": "team", "query": "*", "shared": true})),
    );
    assert_eq!(a.status, 403, "a viewer cannot share: {}", a.body);
    let a = call(
        "POST",
        &saved,
        &analyst,
        Some(
            &json!({"name": "Paging users", "query": "app=paging | stats count by user.name", "shared": true}),
        ),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let shared = a.json()["id"].as_str().unwrap().to_string();
    let list = call("GET", &saved, &viewer, None).json();
    let names: Vec<(&str, bool)> = list["searches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["editable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, vec![("my failures", true), ("Paging users", false)]);
    // The viewer cannot change or remove the shared one; another viewer never sees the first's.
    let one = format!("{saved}/{shared}");
    assert_eq!(
        call("POST", &one, &viewer, Some(&json!({"panel": true}))).status,
        403
    );
    assert_eq!(call("DELETE", &one, &viewer, None).status, 403);
    let list = call("GET", &saved, &other, None).json();
    assert_eq!(list["searches"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        call("DELETE", &format!("{saved}/{mine}"), &other, None).status,
        404
    );
    // The analyst puts the shared one on the dashboard; the viewer their own.
    let a = call("POST", &one, &analyst, Some(&json!({"panel": true})));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["panel"], true);
    assert_eq!(
        call(
            "POST",
            &format!("{saved}/{mine}"),
            &viewer,
            Some(&json!({"panel": true}))
        )
        .status,
        200
    );

    // Hostile input: huge or empty names, bad queries, unknown fields, too many searches.
    for bad in [
        json!({"name": "x".repeat(10_000), "query": "*"}),
        json!({"name": "", "query": "*"}),
        json!({"name": "ok", "query": "| | ("}),
        json!({"name": "ok", "query": "a".repeat(5000)}),
        json!({"name": "ok", "query": "*", "owner": "ana"}),
        json!({"name": "ok", "query": "*", "from": "-".repeat(100)}),
    ] {
        let a = call("POST", &saved, &viewer, Some(&bad));
        assert_eq!(a.status, 400, "{bad:.80}: {}", a.body);
    }
    let a = call(
        "POST",
        &format!("{saved}/ss-nope"),
        &viewer,
        Some(&json!({"panel": "yes"})),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    for i in 0..100 {
        let a = call(
            "POST",
            &saved,
            &other,
            Some(&json!({"name": format!("n{i}"), "query": "*"})),
        );
        assert_eq!(a.status, 201, "save {i}: {}", a.body);
    }
    let a = call(
        "POST",
        &saved,
        &other,
        Some(&json!({"name": "one too many", "query": "*"})),
    );
    assert_eq!(a.status, 409, "{}", a.body);
    assert!(a.body.contains("100"), "{}", a.body);
    assert_eq!(
        call(
            "POST",
            &saved,
            &viewer,
            Some(&json!({"name": "still fine", "query": "*"}))
        )
        .status,
        201,
        "one owner's bound leaves the others theirs"
    );

    let browser_skip = common::browser_missing();
    let artifacts = std::env::var_os("VIGIL_ARTIFACTS")
        .map(|d| PathBuf::from(d).join("search"))
        .unwrap_or_else(|| dir.path().join("artifacts"));
    if browser_skip.is_none() {
        browser(&url, "before", password, &artifacts, &server);
    }

    // Every change was audited, durably, before it was made.
    let added = audit_events(&data, "saved_search_added");
    assert_eq!(
        added.len(),
        2 + 100 + 1 + usize::from(browser_skip.is_none()),
        "one audit event per save"
    );
    assert!(
        added
            .iter()
            .any(|e| e.get_str("vigil.saved_search.name") == Some("Paging users"))
    );
    assert_eq!(
        audit_events(&data, "saved_search_changed").len(),
        2 + usize::from(browser_skip.is_none())
    );

    // A restart keeps them.
    server.stop();
    let server = Server::start(&data, &[]);
    let url = server.url.clone();
    let list = call(
        "GET",
        &format!("{url}/api/v1/saved-searches"),
        &viewer,
        None,
    )
    .json();
    let got: Vec<&str> = list["searches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(got.starts_with(&["my failures", "Paging users"]), "{got:?}");
    let a = call(
        "DELETE",
        &format!("{url}/api/v1/saved-searches/{mine}"),
        &viewer,
        None,
    );
    assert_eq!(a.status, 204, "{}", a.body);
    assert_eq!(audit_events(&data, "saved_search_removed").len(), 1);

    match browser_skip {
        Some(why) => common::skip(&why),
        None => browser(&url, "after", password, &artifacts, &server),
    }
    server.stop();
}
