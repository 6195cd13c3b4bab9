//! Issue 14: a parser that panics inside `spawn_blocking` became `200 {accepted: 0}` on
//! `/api/v1/ingest` and HEC raw (the sender dropped its data) and 400 on `_bulk` (shippers
//! treat it as final). Now each ingest route answers 503 with `Retry-After`, which senders
//! retry, stores nothing of the request, and counts it. The fault is injected with a
//! debug-build-only variable (`VIGIL_TEST_PARSER_PANIC`): a body holding the marker panics
//! the parser.

mod common;

use common::{Server, create_token, curl, ledger_events};

const MARKER: &str = "boom-7f3a";

#[test]
fn a_parser_panic_is_a_retryable_5xx_on_every_ingest_route_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sender = create_token(&data, "ingest", "sender");
    let viewer = create_token(&data, "viewer", "viewer");
    let server = Server::try_start_env(&data, &[], &[("VIGIL_TEST_PARSER_PANIC", MARKER)])
        .unwrap_or_else(|log| panic!("vigil serve did not start:\n{log}"));
    let url = server.url.clone();
    let bearer = format!("Authorization: Bearer {sender}");
    let before = ledger_events(&data).len();

    let line = format!("{{\"message\":\"hello {MARKER}\"}}");
    let answers = [
        (
            "/api/v1/ingest",
            curl(
                "POST",
                &format!("{url}/api/v1/ingest"),
                &[bearer.clone(), "Content-Type: application/x-ndjson".into()],
                Some(&line),
            ),
        ),
        (
            "/services/collector/raw",
            curl(
                "POST",
                &format!("{url}/services/collector/raw"),
                &[format!("Authorization: Splunk {sender}")],
                Some(&format!("a raw line {MARKER}")),
            ),
        ),
        (
            "/services/collector/event",
            curl(
                "POST",
                &format!("{url}/services/collector/event"),
                &[format!("Authorization: Splunk {sender}")],
                Some(&format!("{{\"event\":\"{MARKER}\"}}")),
            ),
        ),
        (
            "/_bulk",
            curl(
                "POST",
                &format!("{url}/_bulk"),
                &[bearer.clone(), "Content-Type: application/x-ndjson".into()],
                Some(&format!("{{\"index\":{{}}}}\n{line}\n")),
            ),
        ),
    ];
    for (route, a) in &answers {
        assert_eq!(a.status, 503, "{route}: {} {}", a.status, a.body);
        assert!(
            a.header("retry-after").is_some(),
            "{route}: Retry-After tells the sender when to retry"
        );
    }
    // Nothing of those requests was stored; the same routes still take other bodies.
    let stored = ledger_events(&data);
    assert!(
        stored[before..]
            .iter()
            .all(|e| !e.to_json().to_string().contains(MARKER)),
        "nothing of a failed request is stored"
    );
    let fine = curl(
        "POST",
        &format!("{url}/api/v1/ingest"),
        &[bearer, "Content-Type: application/x-ndjson".into()],
        Some("{\"message\":\"fine\"}"),
    );
    assert_eq!(fine.status, 200, "{}", fine.body);
    assert_eq!(fine.json()["accepted"], 1);
    let metrics = curl(
        "GET",
        &format!("{url}/metrics"),
        &[format!("Authorization: Bearer {viewer}")],
        None,
    );
    assert!(
        metrics
            .body
            .contains("vigil_http_rejected_total{reason=\"parser_panic\"} 4"),
        "{}",
        metrics.body
    );
    server.stop();
}
