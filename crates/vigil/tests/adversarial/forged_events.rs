//! A network sender forging Vigil's own audit trail: events shaped like Vigil's login-failure
//! audit events, sent over every way in (UDP, TCP, HTTP NDJSON, Splunk HEC `fields`,
//! Elasticsearch `_bulk`), must be stored as what they are — outside claims, moved under
//! `external.` and tagged `reserved_claim` — and must neither raise Vigil's own brute-force alert
//! nor ban the address they name. On the code this was written against, six UDP datagrams
//! raised the bundled high alert and banned an arbitrary address.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};

use crate::common::{
    Server, create_token, curl, ledger_events, login_from, wait_for_alert, wait_until,
};

/// The address the forger wants banned.
const VICTIM: &str = "198.51.100.77";

/// A JSON event that looks exactly like Vigil's `login_failure` audit event.
fn forged_audit_event(i: usize, how: &str) -> String {
    serde_json::json!({
        "event": {"dataset": "vigil.audit", "kind": "event", "category": "authentication",
                  "type": "start", "action": "login_failure", "outcome": "failure"},
        "vigil": {"source": "vigil"},
        "user": {"name": "admin"},
        "source": {"ip": VICTIM},
        "message": format!("forged {how} {i}"),
    })
    .to_string()
}

/// The `udp://` or `tcp://` address the server printed it listens on.
fn listening(server: &Server, kind: &str) -> String {
    let prefix = format!("vigil: listening syslog {kind}://");
    server
        .log()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&prefix)
                .map(|r| r.split_whitespace().next().unwrap().to_owned())
        })
        .unwrap_or_else(|| panic!("no {kind} listener in:\n{}", server.log()))
}

#[test]
fn forged_vigil_audit_events_raise_no_alert_and_ban_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ingest = create_token(&data, "ingest", "forger");
    let reader = create_token(&data, "analyst", "reader");
    let server = Server::start(
        &data,
        &[
            "--syslog-udp",
            "127.0.0.1:0",
            "--syslog-tcp",
            "127.0.0.1:0",
            "--ban-rule",
            "Brute force against Vigil's login",
        ],
    );
    let url = server.url.clone();
    let bearer = format!("Authorization: Bearer {ingest}");
    let mut sent = 0;

    // Six UDP datagrams (what broke it), then TCP, HTTP NDJSON, HEC and _bulk.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..6 {
        udp.send_to(
            forged_audit_event(i, "udp").as_bytes(),
            listening(&server, "udp"),
        )
        .unwrap();
        sent += 1;
    }
    let mut tcp = TcpStream::connect(listening(&server, "tcp")).unwrap();
    for i in 0..6 {
        writeln!(tcp, "{}", forged_audit_event(i, "tcp")).unwrap();
        sent += 1;
    }
    drop(tcp);
    let ndjson: String = (0..6)
        .map(|i| forged_audit_event(i, "http") + "\n")
        .collect();
    let a = curl(
        "POST",
        &format!("{url}/api/v1/ingest"),
        std::slice::from_ref(&bearer),
        Some(&ndjson),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    sent += 6;
    let hec: String = (0..6)
        .map(|i| {
            serde_json::json!({
                "event": format!("forged hec {i}"),
                "fields": {"event.dataset": "vigil.audit", "event.action": "login_failure",
                           "source.ip": VICTIM, "vigil.source": "vigil"},
            })
            .to_string()
        })
        .collect();
    let a = curl(
        "POST",
        &format!("{url}/services/collector/event"),
        &[format!("Authorization: Splunk {ingest}")],
        Some(&hec),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    sent += 6;
    let bulk: String = (0..6)
        .map(|i| format!("{{\"index\":{{}}}}\n{}\n", forged_audit_event(i, "bulk")))
        .collect();
    let a = curl(
        "POST",
        &format!("{url}/_bulk"),
        &[bearer.clone(), "Content-Type: application/x-ndjson".into()],
        Some(&bulk),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    sent += 6;

    // A sender may not name its source like Vigil's own either.
    let a = curl(
        "POST",
        &format!("{url}/api/v1/ingest?source=vigil"),
        std::slice::from_ref(&bearer),
        Some(&forged_audit_event(0, "source")),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("reserved"), "{}", a.body);

    // Every forged event is stored — evidence of the attempt — as an outside claim.
    let forged = |data: &std::path::Path| {
        ledger_events(data)
            .into_iter()
            .filter(|e| {
                e.get("external.event.dataset").is_some()
                    || e.get_str("message")
                        .is_some_and(|m| m.starts_with("forged"))
            })
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(10, || forged(&data).len() >= sent),
        "{} of {sent} forged events stored",
        forged(&data).len()
    );
    for e in forged(&data) {
        assert_ne!(e.get_str("event.dataset"), Some("vigil.audit"), "{e:?}");
        assert_ne!(e.get_str("vigil.source"), Some("vigil"), "{e:?}");
        assert_eq!(
            e.get_str("external.event.dataset"),
            Some("vigil.audit"),
            "{e:?}"
        );
        assert!(
            e.get("tags")
                .is_some_and(|t| t.to_string().contains("reserved_claim")),
            "{e:?}"
        );
    }

    // Real failed logins, sent after the forgeries, do raise the alert: once it is there, the
    // detector has seen every forged event before them.
    for i in 0..5 {
        assert!(login_from("127.0.0.2", &url, "admin", &format!("wrong guess {i}")).is_err());
    }
    assert!(
        wait_for_alert(
            &url,
            &reader,
            "Brute force against Vigil's login",
            ("source.ip", "127.0.0.2"),
            30
        ),
        "real failed logins must still raise Vigil's alert"
    );
    assert!(
        !wait_for_alert(
            &url,
            &reader,
            "Brute force against Vigil's login",
            ("source.ip", VICTIM),
            1
        ),
        "forged audit events raised Vigil's own alert"
    );
    // The attempt itself is worth an alert.
    let alerts = curl(
        "GET",
        &format!("{url}/api/v1/alerts"),
        &[format!("Authorization: Bearer {reader}")],
        None,
    );
    assert!(
        alerts.body.contains("Input claimed Vigil's own names"),
        "{}",
        alerts.body
    );
    let a = curl(
        "GET",
        &format!("{url}/api/v1/decisions"),
        &[format!("Authorization: Bearer {reader}")],
        None,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        !a.body.contains(VICTIM),
        "forged events banned {VICTIM}: {}",
        a.body
    );
    server.stop();
}
