//! Logsources declared by configuration (issue 20, `[[logsource]]`): a rule for a product no
//! parser knows runs on the events of the source declared to carry it, and on no other event —
//! not on the same line sent by another token, nor on input that names the logsource itself.

mod common;

use common::{Server, create_token, curl, ingest_ndjson, wait_until};

const RULE: &str = r#"title: Acme gateway denial
id: 0d1c2b3a-4e5f-4a6b-8c7d-000000000a01
status: test
logsource: {product: acme, service: gateway}
detection:
    selection:
        message|contains: 'gateway denied'
    condition: selection
level: medium
"#;

#[test]
fn a_declared_source_runs_its_rules_and_nothing_else_does() {
    if !common::require_tool("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("acme.yml"), RULE).unwrap();
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        "[[logsource]]\nsource = \"http:gw\"\nproduct = \"Acme\"\nservice = \"gateway\"\n",
    )
    .unwrap();
    let gw = create_token(&data, "ingest", "gw");
    let app = create_token(&data, "ingest", "app");
    let viewer = create_token(&data, "viewer", "reader");
    let server = Server::start(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "--rules",
            rules.to_str().unwrap(),
            "--no-builtin-rules",
        ],
    );
    // Not declared, and declaring itself: neither is the gateway's.
    let line = r#"{"message":"gateway denied 203.0.113.9"}"#;
    let forged = r#"{"message":"gateway denied 203.0.113.10","vigil":{"logsource":{"product":"acme","service":"gateway"}}}"#;
    let a = ingest_ndjson(&server.url, &app, &format!("{line}\n{forged}\n"));
    assert_eq!(a.status, 200, "{}", a.body);
    let a = ingest_ndjson(&server.url, &gw, &format!("{line}\n"));
    assert_eq!(a.status, 200, "{}", a.body);

    let auth = [format!("Authorization: Bearer {viewer}")];
    let url = format!("{}/api/v1/alerts", server.url);
    let count = || -> u64 {
        curl("GET", &url, &auth, None).json()["alerts"]
            .as_array()
            .map(|l| l.iter().filter_map(|a| a["count"].as_u64()).sum())
            .unwrap_or(0)
    };
    assert!(wait_until(30, || count() >= 1), "{}", server.log());
    // Detection runs in ledger order: the gateway's event came last.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(count(), 1, "only the declared source's event matched");

    // What is stored: the declared fields on the gateway's event only; the claim under
    // `external.`.
    let events = common::ledger_events(&data);
    let mine: Vec<_> = events
        .iter()
        .filter(|e| {
            e.get_str("message")
                .is_some_and(|m| m.starts_with("gateway denied"))
        })
        .collect();
    assert_eq!(mine.len(), 3);
    for e in mine {
        let declared = e.get_str("vigil.logsource.product");
        match e.get_str("vigil.source") {
            Some("http:gw") => {
                assert_eq!(declared, Some("acme"));
                assert_eq!(e.get_str("vigil.logsource.service"), Some("gateway"));
            }
            _ => {
                assert_eq!(declared, None, "{e:?}");
            }
        }
    }
    assert!(
        events
            .iter()
            .any(|e| e.get_str("external.vigil.logsource.product") == Some("acme"))
    );
    server.stop();
}
