//! Defect 4 of issue 13: each anonymous `GET /v1/decisions[/stream]` (the CrowdSec bouncer
//! endpoints) wrote an audit event outside the per-address quota — 126,651 events in 15 s from
//! one client. Now those refusals share the audited-anonymous-refusal quota of every other
//! route, and the rest are only counted in `/metrics`.

use crate::common::{Server, audit_events, create_token, curl};

/// The value of a `/metrics` sample (`name{labels} value`), 0 when absent.
fn sample(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn anonymous_and_bad_key_bouncer_requests_stay_within_the_audit_quota() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let viewer = create_token(&data, "viewer", "metrics-reader");
    let server = Server::start(&data, &[]);
    let url = &server.url;
    let before = audit_events(&data, "api_auth_failure").len();
    let metrics = || {
        curl(
            "GET",
            &format!("{url}/metrics"),
            &[format!("Authorization: Bearer {viewer}")],
            None,
        )
    };
    // Used once before the flood, so the invalid-token limiter still lets it in after.
    assert_eq!(metrics().status, 200);

    const ANONYMOUS: usize = 250;
    const BAD_KEY: usize = 50;
    for i in 0..ANONYMOUS {
        let path = if i % 2 == 0 {
            "/v1/decisions"
        } else {
            "/v1/decisions/stream?startup=true"
        };
        let a = curl("GET", &format!("{url}{path}"), &[], None);
        assert_eq!(a.status, 403, "{path}: {}", a.body);
    }
    for i in 0..BAD_KEY {
        let a = curl(
            "GET",
            &format!("{url}/v1/decisions/stream"),
            &[format!("X-Api-Key: not-a-key-{i}")],
            None,
        );
        assert_eq!(a.status, 403, "{}", a.body);
    }

    let metrics = metrics();
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    let failures = sample(&metrics.body, "vigil_auth_failures_total");
    assert!(
        failures >= (ANONYMOUS + BAD_KEY) as u64,
        "every refusal is counted: {failures}\n{}",
        metrics.body
    );
    let unaudited = sample(
        &metrics.body,
        "vigil_http_rejected_total{reason=\"auth_unaudited\"}",
    ) + sample(
        &metrics.body,
        "vigil_http_rejected_total{reason=\"auth_rate_limited\"}",
    );
    server.stop();

    // The anonymous quota (30 a minute per address) plus the invalid-token limit (30 a minute
    // per address): at most 60 audit events, however many requests came.
    let audited = audit_events(&data, "api_auth_failure").len() - before;
    assert!(
        audited <= 60,
        "{audited} audit events for {} refused requests",
        ANONYMOUS + BAD_KEY
    );
    assert!(
        audited >= 30,
        "refusals are still audited up to the quota: {audited}"
    );
    assert!(
        unaudited + audited as u64 >= (ANONYMOUS + BAD_KEY) as u64,
        "the refusals past the quota are counted in /metrics: {unaudited} + {audited}\n{}",
        metrics.body
    );
}
