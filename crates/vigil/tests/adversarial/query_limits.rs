//! Defect 1 of issue 13: any viewer crashed the whole server with one 2–4 KB search (~470 `OR`
//! terms, ~450 implicit `AND` terms, ~470 `NOT`s, 2,000 nested parentheses) through a stack
//! overflow in the query parser and evaluators, also through `where`/`eval` and
//! `GET /api/v1/export`. Each shape now gets a 400 naming the limit it broke, and the server
//! keeps answering; shapes within the limits run.

use crate::common::{Server, create_token, curl};

/// `%XX` for every byte but unreserved ones, for a query in a URL.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn chain(n: usize, sep: &str) -> String {
    (0..n)
        .map(|i| format!("t{i}"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// The hostile shapes of the issue, each with the words its error must hold.
fn hostile() -> Vec<(&'static str, String, &'static str)> {
    let depth = "nesting depth limit is 64";
    let terms = "limit is 1024 terms";
    vec![
        ("1,100 ORs", chain(1_100, " OR "), terms),
        ("1,100 implicit ANDs", chain(1_100, " "), terms),
        ("470 NOTs", format!("{}t1", "NOT ".repeat(470)), depth),
        (
            "2,000 parentheses",
            format!("{}t1{}", "(".repeat(2_000), ")".repeat(2_000)),
            depth,
        ),
        (
            "where: 1,000 parentheses",
            format!("* | where {}1{}", "(".repeat(1_000), ")".repeat(1_000)),
            depth,
        ),
        (
            "where: 470 NOTs",
            format!("* | where {}true", "NOT ".repeat(470)),
            depth,
        ),
        (
            "eval: 500 nested calls",
            format!("* | eval y = {}x{}", "abs(".repeat(500), ")".repeat(500)),
            depth,
        ),
        (
            "eval: 2,000 operands",
            format!("* | eval y = {}", vec!["1"; 2_000].join(" + ")),
            terms,
        ),
        (
            "20 KB",
            format!("message=\"{}\"", "a".repeat(20_000)),
            "query length limit is 16384 bytes",
        ),
    ]
}

#[test]
fn hostile_queries_get_a_400_naming_the_limit_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let viewer = create_token(&data, "viewer", "viewer");
    let ingest = create_token(&data, "ingest", "sender");
    let server = Server::start(&data, &[]);
    let url = &server.url;
    let auth = vec![format!("Authorization: Bearer {viewer}")];
    let a = curl(
        "POST",
        &format!("{url}/api/v1/ingest"),
        &[
            format!("Authorization: Bearer {ingest}"),
            "Content-Type: application/x-ndjson".into(),
        ],
        Some("{\"message\":\"t1 hello\",\"x\":1}\n{\"message\":\"t2 hello\",\"x\":2}\n"),
    );
    assert_eq!(a.status, 200, "{}", a.body);

    for (shape, query, limit) in hostile() {
        let body = serde_json::json!({ "query": query, "limit": 10 }).to_string();
        let a = curl("POST", &format!("{url}/api/v1/search"), &auth, Some(&body));
        assert_eq!(a.status, 400, "search, {shape}: {}", a.body);
        let error = a.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(error.contains(limit), "search, {shape}: {error}");

        let a = curl(
            "GET",
            &format!(
                "{url}/api/v1/export?format=ndjson&query={}",
                url_encode(&query)
            ),
            &auth,
            None,
        );
        assert_eq!(a.status, 400, "export, {shape}: {}", a.body);
        assert!(a.body.contains(limit), "export, {shape}: {}", a.body);

        // Still up and answering after each one.
        let a = curl("GET", &format!("{url}/healthz"), &[], None);
        assert_eq!(a.status, 200, "after {shape}: {}", a.body);
    }

    // The same shapes within the limits run, on the index and on the reference evaluator.
    let within = [
        chain(1_000, " OR "),
        format!("t1 {}", vec!["hello"; 999].join(" ")),
        format!("{}t1", "NOT ".repeat(64)),
        format!("{}t1{}", "(".repeat(64), ")".repeat(64)),
        format!("* | where {}x > 1{}", "(".repeat(64), ")".repeat(64)),
        format!(
            "* | eval y = {} | where y > 1",
            vec!["x"; 1_000].join(" + ")
        ),
    ];
    for query in within {
        let body = serde_json::json!({ "query": query, "limit": 10 }).to_string();
        let a = curl("POST", &format!("{url}/api/v1/search"), &auth, Some(&body));
        assert_eq!(a.status, 200, "{}: {}", &query[..40], a.body);
        let rows = a.json()["rows"].as_array().map_or(0, Vec::len);
        assert!(rows >= 1, "{}: {}", &query[..40], a.body);
        let a = curl(
            "GET",
            &format!(
                "{url}/api/v1/export?format=csv&query={}",
                url_encode(&query)
            ),
            &auth,
            None,
        );
        assert_eq!(a.status, 200, "export {}: {}", &query[..40], a.body);
    }
    server.stop();
}
