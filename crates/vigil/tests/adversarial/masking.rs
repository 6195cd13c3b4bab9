//! Masking against Vigil's own record: a sender whose token is named like a secret, a source
//! named like one, and input that claims Vigil's fields with secret-shaped values. Masking must
//! still hide every secret in what the sender wrote, but never rewrite who sent an event, from
//! which source, or when Vigil received it (`vigil_parse::reserved::PROVENANCE_FIELDS`); and a
//! sender still cannot set those fields itself. On the code this was written against, the token
//! name `password=hunter2` turned every event's `vigil.sender` into
//! `api:password=[REDACTED:password]`: the events could no longer be traced to their token.

use std::io::Write;
use std::net::TcpStream;

use crate::common::{Server, create_token, curl, ledger_events, wait_until};
use vigil_event::{Event, Value};

/// Whether any string anywhere in the event contains `needle`.
fn holds(e: &Event, needle: &str) -> bool {
    fn in_value(v: &Value, needle: &str) -> bool {
        match v {
            Value::Str(s) => s.contains(needle),
            Value::List(items) => items.iter().any(|v| in_value(v, needle)),
            Value::Map(map) => map
                .iter()
                .any(|(k, v)| k.contains(needle) || in_value(v, needle)),
            _ => false,
        }
    }
    e.fields()
        .any(|(k, v)| k.contains(needle) || in_value(v, needle))
}

#[test]
fn secret_shaped_names_never_rewrite_vigils_own_fields() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // An admin named the token like a secret; its id is in the token (`vgl_ID_…`).
    let token = create_token(&data, "ingest", "password=hunter2");
    let id = token.split('_').nth(1).unwrap().to_owned();
    let server = Server::start(&data, &["--syslog-tcp", "127.0.0.1:0"]);
    let started = vigil_event::Timestamp::now();

    // HTTP: a source named like a secret, a secret in the text, and claims of Vigil's fields
    // with secret-shaped values.
    let line = serde_json::json!({
        "message": "login marker-http password=s3cr3tHTTP",
        "vigil": {"sender": "password=forgedsender", "received": "1999-01-01T00:00:00Z",
                  "drill": {"run": "token=forgedrun"}, "source": "secret=forgedsource"},
        "user": {"name": "bob"},
    })
    .to_string();
    let a = curl(
        "POST",
        &format!("{}/api/v1/ingest?source=token%3Dabcdef123456", server.url),
        &[format!("Authorization: Bearer {token}")],
        Some(&line),
    );
    assert_eq!(a.status, 200, "{}", a.body);

    // Syslog over TCP: the sender is the peer's address, the secret is masked.
    let tcp_addr = server
        .log()
        .lines()
        .find_map(|l| l.strip_prefix("vigil: listening syslog tcp://"))
        .map(|r| r.split_whitespace().next().unwrap().to_owned())
        .expect("a TCP listener");
    let mut tcp = TcpStream::connect(&tcp_addr).unwrap();
    writeln!(
        tcp,
        "<38>Dec  7 10:00:01 web1 app: marker-tcp user=bob password=s3cr3tTCP"
    )
    .unwrap();
    drop(tcp);

    let find = |marker: &str| {
        ledger_events(&data)
            .into_iter()
            .find(|e| e.get_str("message").is_some_and(|m| m.contains(marker)))
    };
    assert!(
        wait_until(10, || find("marker-http").is_some()
            && find("marker-tcp").is_some()),
        "events not stored:\n{}",
        server.log()
    );
    let http = find("marker-http").unwrap();
    let tcp = find("marker-tcp").unwrap();

    // Who, from where, when: exactly as Vigil set them.
    assert_eq!(
        http.get_str("vigil.sender"),
        Some(format!("api:password=hunter2/{id}").as_str()),
        "{http:?}"
    );
    assert_eq!(
        http.get_str("vigil.source"),
        Some("token=abcdef123456"),
        "{http:?}"
    );
    assert_eq!(
        tcp.get_str("vigil.sender"),
        Some("syslog:127.0.0.1"),
        "{tcp:?}"
    );
    for e in [&http, &tcp] {
        let received = e.get_str("vigil.received").expect("vigil.received");
        let at = vigil_event::Timestamp::parse(received)
            .unwrap_or_else(|err| panic!("{received}: {err}"));
        assert!(
            at >= started,
            "received {received}, before the test started"
        );
        // Never a drill event: the claimed mark went nowhere.
        assert_eq!(e.drill_run(), None, "{e:?}");
    }

    // What the sender wrote is masked, its claims included, and the claims stay claims.
    // The claims' secret-shaped values are masked everywhere, the raw line included.
    for claimed in ["forgedsender", "forgedsource", "forgedrun"] {
        assert!(!holds(&http, claimed), "{claimed} stored: {http:?}");
    }
    for (e, secret) in [(&http, "s3cr3tHTTP"), (&tcp, "s3cr3tTCP")] {
        assert!(!holds(e, secret), "secret stored: {e:?}");
        assert!(holds(e, "password=[REDACTED:password]"), "{e:?}");
        assert!(
            e.get("vigil.redacted")
                .is_some_and(|k| k.to_string().contains("password")),
            "{e:?}"
        );
    }
    assert_eq!(
        http.get_str("external.vigil.sender"),
        Some("password=[REDACTED:password]"),
        "{http:?}"
    );
    assert_eq!(
        http.get_str("external.vigil.source"),
        Some("secret=[REDACTED:password]"),
        "{http:?}"
    );
    assert_eq!(
        http.get_str("external.vigil.received"),
        Some("1999-01-01T00:00:00Z")
    );
    assert_eq!(
        http.get_str("external.vigil.drill.run"),
        Some("token=[REDACTED:password]"),
        "{http:?}"
    );
    assert!(http.has_tag("reserved_claim"), "{http:?}");
    server.stop();
}
