//! Part of defect 14 of issue 13: `/api/v1/rules` omitted correlation rules, so an analyst
//! could not see what the correlations in force are (or that one is there at all). They are
//! listed now with their kind, their type, the rules they reference and Vigil's notes.

use crate::common::{Server, create_token, curl};

const RULES: &str = r#"title: SSH failed login
id: 5d0c2a8e-1b7f-4c44-9f0e-00000000c001
name: ssh_failed_login
status: test
logsource: {product: linux, service: sshd}
detection:
    selection:
        event.action: ssh_login
        event.outcome: failure
    condition: selection
level: low
---
title: SSH brute force
id: 5d0c2a8e-1b7f-4c44-9f0e-00000000c002
name: ssh_bruteforce
status: test
correlation:
    type: event_count
    rules: [ssh_failed_login]
    group-by: [source.ip]
    timespan: 5m
    condition:
        gte: 10
level: high
"#;

#[test]
fn correlation_rules_are_listed_with_their_kind_and_references() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("ssh.yml"), RULES).unwrap();
    let viewer = create_token(&data, "viewer", "viewer");
    let server = Server::start(&data, &["--rules", rules.to_str().unwrap()]);
    let a = curl(
        "GET",
        &format!("{}/api/v1/rules", server.url),
        &[format!("Authorization: Bearer {viewer}")],
        None,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let listed = a.json();
    let find = |id: &str| {
        listed["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not listed: {listed:#}"))
    };
    let detection = find("5d0c2a8e-1b7f-4c44-9f0e-00000000c001");
    assert_eq!(detection["kind"], "detection");
    let correlation = find("5d0c2a8e-1b7f-4c44-9f0e-00000000c002");
    assert_eq!(correlation["kind"], "correlation", "{correlation:#}");
    assert_eq!(correlation["title"], "SSH brute force");
    assert_eq!(correlation["level"], "high");
    assert_eq!(correlation["correlation"]["type"], "event_count");
    assert_eq!(
        correlation["correlation"]["rules"],
        serde_json::json!(["ssh_failed_login"])
    );
    assert_eq!(
        correlation["correlation"]["group_by"],
        serde_json::json!(["source.ip"])
    );
    assert_eq!(correlation["correlation"]["timespan_secs"], 300);
    assert!(correlation["notes"].is_array());
    server.stop();
}
