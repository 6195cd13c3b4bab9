use super::*;
use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use vigil_event::Value;

fn ctx() -> ParseContext {
    ParseContext::new(Timestamp::parse("2026-12-07T10:00:00Z").unwrap(), "otlp")
}

fn string(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s.into())),
    })
}

fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value,
        ..Default::default()
    }
}

fn request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", string("checkout")),
                    kv("host.name", string("web-7")),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "shop.auth".into(),
                    version: "1.2".into(),
                    ..Default::default()
                }),
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn login_failure() -> LogRecord {
    LogRecord {
        time_unix_nano: 1_796_637_600_000_000_000,
        severity_number: 13,
        severity_text: "WARN".into(),
        body: string("login failed"),
        attributes: vec![
            kv("enduser.id", string("alice")),
            kv("client.address", string("203.0.113.5")),
            kv("event.action", string("authn_login_fail")),
            kv(
                "http",
                Some(AnyValue {
                    value: Some(any_value::Value::KvlistValue(KeyValueList {
                        values: vec![kv("route", string("/login"))],
                    })),
                }),
            ),
        ],
        trace_id: vec![0xab; 16],
        span_id: vec![0x01; 8],
        ..Default::default()
    }
}

#[test]
fn a_protobuf_record_becomes_an_ecs_event() {
    let body = request(vec![login_failure()]).encode_to_vec();
    let decoded = decode_protobuf(&body, &ctx()).unwrap();
    assert_eq!(decoded.dropped, 0);
    let [e] = decoded.events.as_slice() else {
        panic!("{:?}", decoded.events)
    };
    assert_eq!(e.timestamp(), Timestamp::from_secs(1_796_637_600));
    assert_eq!(e.get_str("message"), Some("login failed"));
    assert_eq!(e.get_str("log.level"), Some("warn"));
    assert_eq!(
        e.get("event.severity"),
        Some(&Value::Int(3)),
        "warn on Vigil's scale"
    );
    assert_eq!(e.get_str("service.name"), Some("checkout"));
    assert_eq!(e.get_str("host.name"), Some("web-7"));
    assert_eq!(e.get_str("log.logger"), Some("shop.auth"));
    assert_eq!(e.get_str("user.name"), Some("alice"));
    assert_eq!(
        e.get("source.ip"),
        Some(&Value::Ip("203.0.113.5".parse().unwrap()))
    );
    assert_eq!(e.get_str("event.category"), Some("authentication"));
    assert_eq!(e.get_str("event.outcome"), Some("failure"));
    assert_eq!(e.get_str("http.route"), Some("/login"));
    assert_eq!(
        e.get_str("trace.id"),
        Some("abababababababababababababababab")
    );
    assert_eq!(e.get_str("span.id"), Some("0101010101010101"));
    assert!(!e.has_tag(vigil_event::tag::PARSE_ERROR));
}

#[test]
fn json_and_protobuf_of_the_same_request_give_the_same_events() {
    let json = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}},{"key":"host.name","value":{"stringValue":"web-7"}}]},
      "scopeLogs":[{"scope":{"name":"shop.auth","version":"1.2"},"logRecords":[{"timeUnixNano":"1796637600000000000","severityNumber":13,"severityText":"WARN",
      "body":{"stringValue":"login failed"},"traceId":"abababababababababababababababab","spanId":"0101010101010101",
      "attributes":[{"key":"enduser.id","value":{"stringValue":"alice"}},{"key":"client.address","value":{"stringValue":"203.0.113.5"}},
      {"key":"event.action","value":{"stringValue":"authn_login_fail"}},{"key":"http","value":{"kvlistValue":{"values":[{"key":"route","value":{"stringValue":"/login"}}]}}}]}]}]}]}"#;
    let from_json = decode_json(json.as_bytes(), &ctx()).unwrap().events;
    let from_proto = decode_protobuf(&request(vec![login_failure()]).encode_to_vec(), &ctx())
        .unwrap()
        .events;
    let strip = |events: Vec<Event>| -> Vec<Event> {
        events
            .into_iter()
            .map(|mut e| {
                e.remove("event.original");
                e
            })
            .collect()
    };
    assert_eq!(strip(from_json), strip(from_proto));
    // Proto field names, base64 ids and 64-bit numbers as numbers read the same.
    let snake = r#"{"resource_logs":[{"scope_logs":[{"log_records":[{"time_unix_nano":1796637600000000000,"severity_number":"SEVERITY_NUMBER_ERROR2",
      "trace_id":"q6urq6urq6urq6urq6urqw==","span_id":"AQEBAQEBAQE=","body":{"string_value":"x"}}]}]}]}"#;
    let e = &decode_json(snake.as_bytes(), &ctx()).unwrap().events[0];
    assert_eq!(
        e.get_str("trace.id"),
        Some("abababababababababababababababab")
    );
    assert_eq!(e.get_str("span.id"), Some("0101010101010101"));
    assert_eq!(
        e.get("event.severity"),
        Some(&Value::Int(4)),
        "error on Vigil's scale"
    );
    assert_eq!(e.get_str("log.level"), Some("error"));
    assert_eq!(e.timestamp(), Timestamp::from_secs(1_796_637_600));
}

#[test]
fn malformed_json_requests_are_refused_with_where() {
    for (json, path) in [
        (r#""not_an_object""#, "$"),
        (r#"{"resourceLogs":"x"}"#, "$.resourceLogs"),
        (r#"{"resourceLogs":["x"]}"#, "resourceLogs[0]"),
        (
            r#"{"resourceLogs":[{"scopeLogs":{}}]}"#,
            "resourceLogs[0].scopeLogs",
        ),
        (
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[1]}]}]}"#,
            "resourceLogs[0].scopeLogs[0].logRecords[0]",
        ),
        (
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":{}}]}]}]}"#,
            "timeUnixNano",
        ),
        (
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":[]}]}]}]}"#,
            "body",
        ),
        (
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"1234567890abcdef"}]}]}]}"#,
            "traceId",
        ),
        (
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"spanId":"000000000000000G"}]}]}]}"#,
            "spanId",
        ),
        (
            r#"{"resourceLogs":[{"resource":{"attributes":"x"}}]}"#,
            "resource.attributes",
        ),
        (
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"a","value":{"intValue":"x"}}]}]}]}]}"#,
            "intValue",
        ),
    ] {
        let err = decode_json(json.as_bytes(), &ctx())
            .unwrap_err()
            .to_string();
        assert!(err.contains(path), "{json}: {err}");
    }
    // Empty and partial documents are valid and hold no records.
    for json in [
        r#"{}"#,
        r#"{"resourceLogs":[]}"#,
        r#"{"resourceLogs":[{"scopeLogs":[{}]}]}"#,
    ] {
        assert!(
            decode_json(json.as_bytes(), &ctx())
                .unwrap()
                .events
                .is_empty()
        );
    }
}

#[test]
fn hostile_requests_are_bounded() {
    // Deep nesting: JSON refused past its limit, protobuf by prost's.
    let deep = format!(
        r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{}"x"{}}}]}}]}}]}}"#,
        r#"{"arrayValue":{"values":["#.repeat(100),
        "]}}".repeat(100)
    );
    assert!(decode_json(deep.as_bytes(), &ctx()).is_err());
    let mut value = string("leaf");
    for _ in 0..200 {
        value = Some(AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: vec![value.unwrap()],
            })),
        });
    }
    let mut record = login_failure();
    record.body = value;
    let body = request(vec![record]).encode_to_vec();
    assert!(
        decode_protobuf(&body, &ctx()).is_err(),
        "prost's recursion limit"
    );
    // Many attributes: capped.
    let mut record = login_failure();
    record.attributes = (0..5_000)
        .map(|i| kv(&format!("k{i}"), string("v")))
        .collect();
    let e = &decode_protobuf(&request(vec![record]).encode_to_vec(), &ctx())
        .unwrap()
        .events[0];
    assert!(e.len() <= MAX_ATTRIBUTES + 32, "{}", e.len());
    // Garbage.
    assert!(decode_protobuf(b"\xff\xff\xff\xff", &ctx()).is_err());
    assert!(decode_json(b"{", &ctx()).is_err());
}

#[test]
fn records_cannot_claim_vigil_names() {
    let mut record = login_failure();
    record.attributes.push(kv("vigil.source", string("vigil")));
    record
        .attributes
        .push(kv("event.dataset", string("vigil.audit")));
    let e = &decode_protobuf(&request(vec![record]).encode_to_vec(), &ctx())
        .unwrap()
        .events[0];
    assert_eq!(e.get_str("external.vigil.source"), Some("vigil"));
    assert_eq!(e.get_str("external.event.dataset"), Some("vigil.audit"));
    assert!(e.has_tag(vigil_event::tag::RESERVED_CLAIM));
}

#[test]
fn secrets_in_bodies_and_attributes_are_masked() {
    let mut record = login_failure();
    record.body = string("retry with auth_token=tok3nInBody password=pw1nBody");
    record
        .attributes
        .push(kv("auth_token", string("tok3nInAttr")));
    record.attributes.push(kv("api-key", string("k3yInAttr")));
    record
        .attributes
        .push(kv("note", string("user said password=pw1nAttr")));
    let mut ctx = ctx();
    ctx.redactor = Some(std::sync::Arc::new(
        vigil_parse::redact::Redactor::new(&[]).unwrap(),
    ));
    let e = &decode_protobuf(&request(vec![record]).encode_to_vec(), &ctx)
        .unwrap()
        .events[0];
    let text = e.to_json().to_string();
    for secret in [
        "tok3nInBody",
        "pw1nBody",
        "tok3nInAttr",
        "k3yInAttr",
        "pw1nAttr",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[test]
fn the_client_is_not_the_proxy_and_the_record_wins() {
    let mut record = login_failure();
    record
        .attributes
        .push(kv("network.peer.address", string("10.0.0.1")));
    record
        .attributes
        .push(kv("service.name", string("from-record")));
    let e = &decode_protobuf(&request(vec![record]).encode_to_vec(), &ctx())
        .unwrap()
        .events[0];
    assert_eq!(
        e.get("source.ip"),
        Some(&Value::Ip("203.0.113.5".parse().unwrap()))
    );
    assert_eq!(e.get_str("service.name"), Some("from-record"));
    // Without a client address, the peer is the best there is.
    let mut record = login_failure();
    record.attributes.retain(|kv| kv.key != "client.address");
    record
        .attributes
        .push(kv("network.peer.address", string("198.51.100.9")));
    let e = &decode_protobuf(&request(vec![record]).encode_to_vec(), &ctx())
        .unwrap()
        .events[0];
    assert_eq!(
        e.get("source.ip"),
        Some(&Value::Ip("198.51.100.9".parse().unwrap()))
    );
}

#[test]
fn a_huge_resource_over_many_records_is_cut_at_the_budget() {
    let big = "x".repeat(1 << 20);
    let mut req = request((0..200).map(|_| LogRecord::default()).collect());
    let resource = req.resource_logs[0].resource.as_mut().unwrap();
    resource.attributes.push(kv("blob", string(&big)));
    let decoded = events(&req, &ctx());
    let kept = decoded.events.len() as u64;
    assert!(kept < 200 && decoded.dropped == 200 - kept, "{kept} kept");
    assert!(kept as usize * big.len() <= MAX_SHARED_BYTES);
    let answer = response(decoded.dropped);
    assert_eq!(
        answer.partial_success.unwrap().rejected_log_records,
        decoded.dropped as i64
    );
}

/// The public OTLP/JSON samples in the corpus (the official example, Fluent Bit's test data in
/// both field spellings): every record is read, none a parse error, and the count matches the
/// records counted independently in the files.
#[test]
fn corpus_samples_decode() {
    let Some(corpus) = std::env::var_os("VIGIL_CORPUS")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
            p.is_dir().then_some(p)
        })
    else {
        if std::env::var_os("VIGIL_REQUIRE_CORPUS").is_some() {
            panic!("VIGIL_REQUIRE_CORPUS is set but the corpus is missing");
        }
        eprintln!("SKIPPED: no corpus");
        return;
    };
    let dir = corpus.join("otlp-json-logs");
    let mut files = 0;
    for path in [
        "opentelemetry-proto/examples/logs.json",
        "fluent-bit/routing_logs.json",
        "fluent-bit/test_logs_001.in.json",
        "fluent-bit/test_logs_metadata_001.in.json",
    ] {
        let Ok(bytes) = std::fs::read(dir.join(path)) else {
            continue;
        };
        files += 1;
        let text = String::from_utf8_lossy(&bytes);
        let expected =
            text.matches("\"timeUnixNano\"").count() + text.matches("\"time_unix_nano\"").count();
        let decoded = decode_json(&bytes, &ctx()).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(decoded.events.len(), expected, "{path}");
        for e in &decoded.events {
            assert!(!e.has_tag(vigil_event::tag::PARSE_ERROR), "{path}: {e:?}");
            assert!(
                e.timestamp() != ctx().received,
                "{path}: the record's own time"
            );
        }
    }
    assert!(files > 0, "no OTLP samples in {}", dir.display());
}
