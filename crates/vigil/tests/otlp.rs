//! OpenTelemetry logs from a client no one here wrote: the Python `opentelemetry-sdk` with its
//! OTLP exporters, over OTLP/HTTP (protobuf) and OTLP/gRPC, into a real `vigil serve`; the
//! official OTLP/JSON example over HTTP with curl; and what a caller without a token gets.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::*;
use vigil_event::{Event, Value};

/// Sends `n` records through Python's logging bridge and the exporter named by argv[1]
/// (`http` or `grpc`); prints the exporter's last result.
const SDK: &str = r#"
import logging, sys
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
kind, endpoint, token, n, marker = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
if kind == "http":
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    exporter = OTLPLogExporter(endpoint=endpoint, headers={"Authorization": "Bearer " + token})
else:
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    exporter = OTLPLogExporter(endpoint=endpoint, insecure=True, headers=(("authorization", "Bearer " + token),))
provider = LoggerProvider(resource=Resource.create({"service.name": "shop", "host.name": "web-9"}))
provider.add_log_record_processor(BatchLogRecordProcessor(exporter, schedule_delay_millis=100))
log = logging.getLogger("shop.auth")
log.setLevel(logging.INFO)
log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
for i in range(n):
    log.warning("login failed %s-%d", marker, i,
                extra={"enduser.id": "alice", "client.address": "203.0.113.5", "event.action": "authn_login_fail"})
ok = provider.force_flush(20000)
provider.shutdown()
print("flushed" if ok else "not flushed")
"#;

fn by_marker(data: &Path, marker: &str) -> BTreeMap<String, Vec<Event>> {
    let mut out: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for e in ledger_events(data) {
        if let Some(m) = e
            .get_str("message")
            .and_then(|m| m.split(' ').find(|w| w.starts_with(marker)))
        {
            out.entry(m.to_owned()).or_default().push(e);
        }
    }
    out
}

#[test]
fn opentelemetry_sdk_delivers_over_http_and_grpc_every_record_once() {
    if !require_python_module("opentelemetry.sdk")
        || !require_python_module("opentelemetry.exporter.otlp.proto.http")
        || !require_python_module("opentelemetry.exporter.otlp.proto.grpc")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let grpc = unused_port();
    let server = Server::start(&data, &["--otlp-grpc", &format!("127.0.0.1:{grpc}")]);
    assert!(
        server
            .log()
            .contains(&format!("listening otlp-grpc://127.0.0.1:{grpc}")),
        "{}",
        server.log()
    );
    let token = create_token(&data, "ingest", "otel");
    let n = 60;
    for (kind, endpoint, marker) in [
        ("http", format!("{}/v1/logs", server.url), "otlphttp"),
        ("grpc", format!("http://127.0.0.1:{grpc}"), "otlpgrpc"),
    ] {
        let out = run_ok(Command::new("python3").args([
            "-c",
            SDK,
            kind,
            &endpoint,
            &token,
            &n.to_string(),
            marker,
        ]));
        assert!(
            out.contains("flushed") && !out.contains("not flushed"),
            "{kind}: {out}"
        );
        let events = by_marker(&data, marker);
        for i in 0..n {
            let m = format!("{marker}-{i}");
            let count = events.get(&m).map_or(0, Vec::len);
            assert_eq!(count, 1, "{kind}: {m} stored {count} times");
        }
        let e = &events[&format!("{marker}-0")][0];
        assert_eq!(e.get_str("service.name"), Some("shop"), "{kind}: {e:?}");
        assert_eq!(e.get_str("host.name"), Some("web-9"));
        assert_eq!(e.get_str("log.level"), Some("warn"));
        assert_eq!(e.get_str("log.logger"), Some("shop.auth"));
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert_eq!(
            e.get("source.ip"),
            Some(&Value::Ip("203.0.113.5".parse().unwrap()))
        );
        assert_eq!(e.get_str("event.category"), Some("authentication"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert!(e.get_str("log.origin.function").is_some(), "{e:?}");
        assert_eq!(
            e.get_str("vigil.source"),
            Some("otlp:otel"),
            "the token's name, not the sender's claim"
        );
        assert!(!e.has_tag("parse_error"));
    }

    // A caller without a valid token stores nothing, on either transport.
    let out = run_ok(Command::new("python3").args([
        "-c",
        SDK,
        "grpc",
        &format!("http://127.0.0.1:{grpc}"),
        "vgl_1_not-a-token",
        "3",
        "intruder",
    ]));
    assert!(
        out.contains("not flushed") || by_marker(&data, "intruder").is_empty(),
        "{out}"
    );
    assert!(by_marker(&data, "intruder").is_empty());
    let answer = curl(
        "POST",
        &format!("{}/v1/logs", server.url),
        &["Content-Type: application/json".into()],
        Some(r#"{"resourceLogs":[]}"#),
    );
    assert_eq!(answer.status, 401, "{answer:?}");
    server.stop();
}

#[test]
fn otlp_json_over_http_with_curl() {
    if !require_tool("curl") {
        return;
    }
    let Some(corpus) = corpus_dir() else { return };
    let example = corpus.join("otlp-json-logs/opentelemetry-proto/examples/logs.json");
    let body = std::fs::read_to_string(&example).expect("the official OTLP/JSON example");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let token = create_token(&data, "ingest", "json");
    let auth = format!("Authorization: Bearer {token}");
    let url = format!("{}/v1/logs", server.url);
    let answer = curl(
        "POST",
        &url,
        &[auth.clone(), "Content-Type: application/json".into()],
        Some(&body),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let records = body.matches("\"timeUnixNano\"").count();
    assert!(
        wait_until(10, || ledger_events(&data)
            .iter()
            .filter(|e| e.get_str("vigil.source") == Some("otlp:json"))
            .count()
            == records),
        "every record of the example stored"
    );
    // Malformed: refused whole with where it went wrong, in the request's encoding.
    let answer = curl(
        "POST",
        &url,
        &[auth.clone(), "Content-Type: application/json".into()],
        Some(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"xyz"}]}]}]}"#),
    );
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("traceId"), "{answer:?}");
    let answer = curl(
        "POST",
        &url,
        &[auth, "Content-Type: text/plain".into()],
        Some("hello"),
    );
    assert_eq!(answer.status, 415, "{answer:?}");
    server.stop();
}

fn corpus_dir() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("VIGIL_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    if dir.join("otlp-json-logs").is_dir() {
        return Some(dir);
    }
    if std::env::var_os("VIGIL_REQUIRE_CORPUS").is_some() {
        panic!(
            "VIGIL_REQUIRE_CORPUS is set but {} has no otlp-json-logs",
            dir.display()
        );
    }
    skip("no corpus with otlp-json-logs");
    None
}
