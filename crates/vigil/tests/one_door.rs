//! Issue 14, "one door": every event that enters the ledger goes through the one ingest
//! pipeline. A scenario against the real binary makes every kind of writer write — parsed
//! input, Vigil's audit events (start, logins), command-line changes, an alert, its triage, a
//! rule change, a ban decision, a notifier that gives up — and then the pipeline's counters
//! by origin (`vigil_stored_events_total` in `/metrics`) account for every event in the
//! ledger, kind by kind.

mod common;

use std::collections::BTreeMap;

use common::{
    Server, add_user, create_token, curl, ingest_ndjson, ledger_events, login, wait_until,
};
use vigil_event::Event;

use common::SSH_FAILED_LOGIN_RULE as RULE;

const OTHER_RULE: &str = r#"title: Sudo to root
id: 5d0c2a8e-1b7f-4c44-9f0e-00000000d002
status: test
logsource: {product: linux, service: sudo}
detection:
    selection:
        event.action: sudo
    condition: selection
level: low
"#;

/// `vigil_stored_events_total` by origin, from `/metrics` text.
fn stored_by_origin(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("vigil_stored_events_total{origin=\""))
        .filter_map(|rest| {
            let (origin, value) = rest.split_once("\"} ")?;
            Some((origin.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The origin a stored event must have been counted under, from what it is.
fn kind_of(e: &Event) -> &'static str {
    let action = e.get_str("event.action").unwrap_or("");
    match e.get_str("event.dataset").unwrap_or("") {
        "vigil.alert" if action == "alert-triaged" => "triage",
        "vigil.alert" => "alert",
        "vigil.decision" => "decision",
        "vigil.notify" if action == "checkpoint-delivery-failed" => "checkpoint",
        "vigil.notify" => "notifier",
        // Command-line changes are marked by the CLI (`vigil.origin: cli`).
        "vigil.audit" if e.get_str("vigil.origin") == Some("cli") => "cli",
        "vigil.audit" if action == "rules_changed" => "rule",
        "vigil.audit" => "audit",
        _ => "input",
    }
}

#[test]
fn every_event_in_the_ledger_went_through_the_one_door() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("ssh.yml"), RULE).unwrap();
    // A notifier to a port nobody listens on gives up after its retries (0.1 + 0.4 + 1.6 s).
    let dead_port = common::unused_port();
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[detect]\nretry_backoff = \"100ms\"\n\n[[notify]]\nname = \"nobody-home\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{dead_port}/hook\"\n"
        ),
    )
    .unwrap();
    // Command-line changes before the server runs (audit events in the pending file).
    let admin = create_token(&data, "admin", "admin");
    let sender = create_token(&data, "ingest", "sender");
    add_user(&data, "ana", "analyst", "correct horse battery");
    let server = Server::start(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "--rules",
            rules.to_str().unwrap(),
            "--ban-rule",
            "SSH failed login",
        ],
    );
    let url = server.url.clone();
    let auth = vec![format!("Authorization: Bearer {admin}")];

    // Parsed input: NDJSON, HEC raw and `_bulk`.
    let body: String = (0..5)
        .map(|i| {
            format!(
                "{{\"process.name\":\"sshd\",\"event.action\":\"ssh_login\",\"event.outcome\":\"failure\",\"source.ip\":\"203.0.113.9\",\"message\":\"Failed password for root from 203.0.113.9 port {i}\"}}\n"
            )
        })
        .collect();
    assert_eq!(ingest_ndjson(&url, &sender, &body).status, 200);
    let hec = curl(
        "POST",
        &format!("{url}/services/collector/raw"),
        &[format!("Authorization: Splunk {sender}")],
        Some("<34>Oct 11 22:14:15 web1 app: a raw line\n"),
    );
    assert_eq!(hec.status, 200, "{}", hec.body);
    let bulk = curl(
        "POST",
        &format!("{url}/_bulk"),
        &[
            format!("Authorization: Bearer {sender}"),
            "Content-Type: application/x-ndjson".into(),
        ],
        Some("{\"index\":{}}\n{\"message\":\"from a shipper\"}\n"),
    );
    assert_eq!(bulk.status, 200, "{}", bulk.body);

    // The alert, its ban and the notifier that gives up.
    let mut alert_id = None;
    assert!(
        wait_until(30, || {
            let a = curl("GET", &format!("{url}/api/v1/alerts"), &auth, None);
            alert_id = a.json()["alerts"].as_array().and_then(|alerts| {
                alerts
                    .iter()
                    .find(|al| al["rule"]["title"] == "SSH failed login")
                    .and_then(|al| al["id"].as_u64())
            });
            alert_id.is_some()
        }),
        "the rule raised an alert"
    );
    // Triage.
    let triaged = curl(
        "POST",
        &format!("{url}/api/v1/alerts/{}", alert_id.unwrap()),
        &[auth[0].clone(), "Content-Type: application/json".into()],
        Some(r#"{"status":"acknowledged","comment":"looking"}"#),
    );
    assert_eq!(triaged.status, 200, "{}", triaged.body);
    // Logins: one success, one failure.
    assert!(login(&url, "ana", "correct horse battery").is_ok());
    assert!(login(&url, "ana", "wrong").is_err());
    // A command-line change while the server runs.
    create_token(&data, "viewer", "late");
    // A rule change.
    std::fs::write(rules.join("sudo.yml"), OTHER_RULE).unwrap();

    let has = |pred: &dyn Fn(&Event) -> bool| ledger_events(&data).iter().any(pred);
    assert!(
        wait_until(30, || {
            has(&|e| e.get_str("event.dataset") == Some("vigil.notify"))
                && has(&|e| e.get_str("event.dataset") == Some("vigil.decision"))
                && has(&|e| e.get_str("event.action") == Some("rules_changed"))
                && has(&|e| {
                    e.get_str("event.action") == Some("token_created")
                        && e.to_json().to_string().contains("late")
                })
        }),
        "every writer wrote: {:#?}",
        ledger_events(&data)
            .iter()
            .map(|e| (
                e.get_str("event.dataset").map(str::to_owned),
                e.get_str("event.action").map(str::to_owned)
            ))
            .collect::<Vec<_>>()
    );

    // The counters account for every stored event (the server keeps writing audit events of
    // its own while we look, so wait until both sides agree).
    let mut last = (BTreeMap::new(), BTreeMap::new());
    let agreed = wait_until(30, || {
        let metrics = curl("GET", &format!("{url}/metrics"), &auth, None);
        let mut counted = stored_by_origin(&metrics.body);
        let mut stored: BTreeMap<String, u64> = BTreeMap::new();
        for e in ledger_events(&data) {
            *stored.entry(kind_of(&e).to_owned()).or_default() += 1;
        }
        // Origins with nothing stored are listed at 0 by the counters.
        counted.retain(|_, n| *n > 0);
        let ok = counted == stored;
        last = (counted, stored);
        ok
    });
    let (counted, stored) = last;
    assert!(
        agreed,
        "counted by origin {counted:?}, stored by kind {stored:?}"
    );
    for origin in [
        "input", "audit", "cli", "alert", "triage", "rule", "decision", "notifier",
    ] {
        assert!(
            counted.get(origin).copied().unwrap_or(0) > 0,
            "origin {origin} wrote: {counted:?}"
        );
    }
    assert_eq!(counted["input"], 7, "five NDJSON, one HEC raw, one _bulk");
    assert!(
        counted["cli"] >= 4,
        "three changes before the run, one during"
    );
    server.stop();
}
