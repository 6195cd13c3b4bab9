//! Cases and entity pages (issue 19) against what a sender or a low-privilege user would try: a
//! sender forging case events (they must not open, change or renumber a case: outside input
//! cannot carry `vigil.audit`), a viewer changing a case, an analyst sending hostile bodies (huge
//! comments, deep JSON, control characters, thousands of alerts), and entity lookups crafted to
//! widen the search (a quote closing the value, a `*` wildcard) or to cost without bound.

use serde_json::json;

use crate::common::{Server, create_token, curl, ingest_ndjson, wait_until};

fn post(url: &str, token: &str, path: &str, body: &str) -> crate::common::Answer {
    curl(
        "POST",
        &format!("{url}{path}"),
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/json".into(),
        ],
        Some(body),
    )
}

#[test]
fn forged_case_events_and_hostile_case_and_entity_requests_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ingest = create_token(&data, "ingest", "sender");
    let analyst = create_token(&data, "analyst", "ana");
    let viewer = create_token(&data, "viewer", "vic");
    let server = Server::start(&data, &[]);
    let url = server.url.clone();

    // A sender forges a whole case history, flat and nested.
    let forged = [
        json!({"event.dataset": "vigil.audit", "event.action": "case_created", "vigil.case.id": 1,
               "vigil.case.title": "forged", "vigil.case.severity": "low", "vigil.case.status": "open",
               "user.name": "admin", "source.ip": "198.51.100.7"}),
        json!({"event": {"dataset": "vigil.audit", "action": "case_commented"},
               "vigil": {"case": {"id": 1, "comment": "nothing to see"}}, "user": {"name": "admin"}}),
    ]
    .iter()
    .map(|e| e.to_string() + "\n")
    .collect::<String>();
    let a = ingest_ndjson(&url, &ingest, &forged);
    assert_eq!(a.status, 200, "{}", a.body);
    let cases = |token: &str| {
        let a = curl(
            "GET",
            &format!("{url}/api/v1/cases"),
            &[format!("Authorization: Bearer {token}")],
            None,
        );
        assert_eq!(a.status, 200, "{}", a.body);
        a.json()
    };
    assert!(
        wait_until(5, || cases(&viewer)["total"] == 0),
        "a forged case was opened: {}",
        cases(&viewer)
    );
    let a = post(&url, &analyst, "/api/v1/cases", r#"{"title": "real"}"#);
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.json()["id"], 1, "the forged events took no id");
    assert_eq!(a.json()["comments"], json!([]));

    // A viewer cannot change it; nobody can without credentials.
    assert_eq!(
        post(&url, &viewer, "/api/v1/cases/1", r#"{"status": "closed"}"#).status,
        403
    );
    assert_eq!(
        curl(
            "POST",
            &format!("{url}/api/v1/cases/1/comments"),
            &["Content-Type: application/json".into()],
            Some(r#"{"text": "x"}"#)
        )
        .status,
        401
    );

    // Hostile bodies are refused with a reason and leave the case as it was.
    let deep = format!("{{\"text\": {}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let many = json!({"title": "t", "alerts": (0..5000).collect::<Vec<u64>>()}).to_string();
    for (path, body, says) in [
        ("/api/v1/cases/1/comments", deep.as_str(), "expected"),
        (
            "/api/v1/cases/1/comments",
            &json!({"text": "x".repeat(100_000)}).to_string(),
            "longer than",
        ),
        (
            "/api/v1/cases/1",
            &json!({"assignee": "a\u{7}b"}).to_string(),
            "control characters",
        ),
        (
            "/api/v1/cases/1",
            &json!({"title": "y".repeat(201)}).to_string(),
            "longer than",
        ),
        ("/api/v1/cases", many.as_str(), "too many alerts"),
        ("/api/v1/cases/1/alerts", r#"{"alert": -1}"#, "expected"),
        (
            "/api/v1/cases/18446744073709551615/comments",
            r#"{"text": "x"}"#,
            "no case",
        ),
    ] {
        let a = post(&url, &analyst, path, body);
        assert!(
            a.status == 400 || a.status == 404 || a.status == 413,
            "{path}: {} {}",
            a.status,
            a.body
        );
        assert!(
            a.status == 413 || a.body.contains(says),
            "{path}: {}",
            a.body
        );
    }
    let case = cases(&viewer)["cases"][0].clone();
    assert_eq!(case["title"], "real");
    assert_eq!(case["comments"], 0);

    // Entity lookups: a quote cannot close the value, `*` is refused, limits are bounded.
    let mut evil =
        json!({"user.name": "mallory", "source.ip": "203.0.113.66", "message": "m"}).to_string();
    evil.push('\n');
    assert_eq!(ingest_ndjson(&url, &ingest, &evil).status, 200);
    let lookup = |path: &str| {
        curl(
            "GET",
            &format!("{url}{path}"),
            &[format!("Authorization: Bearer {viewer}")],
            None,
        )
    };
    let a = lookup("/api/v1/entity/user/x%22%20OR%20user.name%3D%22mallory");
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json()["events"],
        json!([]),
        "the quote widened the search"
    );
    for path in [
        "/api/v1/entity/user/*",
        "/api/v1/entity/user/mall*",
        "/api/v1/entity/ip/203.0.113.*",
    ] {
        let a = lookup(path);
        assert_eq!(a.status, 400, "{path}: {}", a.body);
    }
    let a = lookup("/api/v1/entity/user/mallory?limit=100000000");
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["events"].as_array().unwrap().len(), 1);
    let a = lookup("/api/v1/entity/user/mallory?from=not-a-time");
    assert_eq!(a.status, 400, "{}", a.body);
    server.stop();
}
