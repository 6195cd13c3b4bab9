//! The counters the docs promise for detection and response are on `/metrics` (issue 14):
//! notifications dropped, by target kind and reason, and the correlation engine's groups,
//! evicted groups and dropped window entries. And the ban API's typed refusals.

mod common;

use common::{Server, create_token, curl, ingest_ndjson, wait_until};

const RULE: &str = r#"title: SSH failed login
id: 5d0c2a8e-1b7f-4c44-9f0e-00000000d002
status: test
logsource: {product: linux, service: sshd}
detection:
    selection:
        event.action: ssh_login
        event.outcome: failure
    condition: selection
level: high
"#;

#[test]
fn dropped_notifications_and_correlation_counters_are_exported() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("ssh_failed.yml"), RULE).unwrap();
    // A webhook nobody answers, retried quickly.
    let port = common::unused_port();
    let config = dir.path().join("vigil.toml");
    std::fs::write(&config, "[detect]\nretry_backoff = \"10ms\"\n").unwrap();
    let ingest = create_token(&data, "ingest", "sender");
    let viewer = create_token(&data, "viewer", "viewer");
    let server = Server::start(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "--rules",
            rules.to_str().unwrap(),
            "--webhook",
            &format!("http://127.0.0.1:{port}/hook"),
        ],
    );
    let metrics = || {
        let a = curl(
            "GET",
            &format!("{}/metrics", server.url),
            &[format!("Authorization: Bearer {viewer}")],
            None,
        );
        assert_eq!(a.status, 200, "{}", a.body);
        a.body
    };
    let given_up =
        "vigil_notifications_dropped_total{target=\"webhook\",reason=\"retries_exhausted\"} 1";
    assert!(!metrics().contains(given_up));

    let a = ingest_ndjson(
        &server.url,
        &ingest,
        "{\"process.name\":\"sshd\",\"event.action\":\"ssh_login\",\"event.outcome\":\"failure\",\"source.ip\":\"203.0.113.5\"}\n",
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        wait_until(30, || metrics().contains(given_up)),
        "{}",
        metrics()
    );
    let text = metrics();
    for line in [
        "vigil_notifications_dropped_total{target=\"webhook\",reason=\"queue_full\"} 0",
        "vigil_notifications_dropped_total{target=\"email\",reason=\"retries_exhausted\"} 0",
        "# TYPE vigil_notifications_dropped_total counter",
        "vigil_correlation_groups 0",
        "vigil_correlation_groups_evicted_total 0",
        "vigil_correlation_entries_dropped_total 0",
        "# TYPE vigil_correlation_groups_evicted_total counter",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    server.stop();
}

/// A ban of something that is not an address is the client's mistake (400, it was 409 like a
/// ban of a banned address); a ban of a banned address stays 409, an unknown unban 404.
#[test]
fn ban_refusals_get_the_status_of_their_cause() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let admin = create_token(&data, "admin", "ana");
    let server = Server::start(&data, &[]);
    let ban = |body: &str| {
        curl(
            "POST",
            &format!("{}/api/v1/decisions", server.url),
            &[
                format!("Authorization: Bearer {admin}"),
                "Content-Type: application/json".into(),
            ],
            Some(body),
        )
    };
    let a = ban(r#"{"value":"not-an-address"}"#);
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("not an IP address"), "{}", a.body);
    assert_eq!(ban(r#"{"value":"192.0.2.7"}"#).status, 201);
    let a = ban(r#"{"value":"192.0.2.7"}"#);
    assert_eq!(a.status, 409, "{}", a.body);
    let a = curl(
        "DELETE",
        &format!("{}/api/v1/decisions/999", server.url),
        &[format!("Authorization: Bearer {admin}")],
        None,
    );
    assert_eq!(a.status, 404, "{}", a.body);
    server.stop();
}
