//! OpenTelemetry logs to ECS events: an OTLP `ExportLogsServiceRequest` — protobuf
//! (OTLP/HTTP `application/x-protobuf`, OTLP/gRPC) or OTLP/JSON (`application/json`) — becomes
//! one event per log record. Pure functions, no I/O; the message types are the
//! `opentelemetry-proto` crate's.
//!
//! | OTLP | ECS |
//! |---|---|
//! | `timeUnixNano` (else `observedTimeUnixNano`, else the receive time) | `@timestamp` |
//! | `body` (a string; a map is rendered as JSON and read as a JSON event) | `message` |
//! | `severityText` (else the level of `severityNumber`) | `log.level` |
//! | `severityNumber` | `event.severity`, on Vigil's scale ([`vigil_severity`]) |
//! | `traceId`, `spanId` (hex) | `trace.id`, `span.id` |
//! | `eventName` | `event.action` |
//! | the scope's `name`, `version` | `log.logger`, `log.logger_version` |
//! | resource and record attributes | by name (OpenTelemetry's semantic conventions mostly are ECS names), except those in [`ATTRIBUTE_NAMES`] |
//!
//! Record attributes win over resource attributes of the same name. Every event then takes the
//! JSON parser's path (`vigil_parse::parse_line` with `Format::Json`): masking, reserved names
//! (`vigil.*` → `external.`) and the OWASP vocabulary apply as to any JSON event, and
//! `event.original` is the event's JSON rendering. A string body that is a JSON object or
//! carries `key=value` pairs is read by `vigil_parse::app_message`.
//!
//! Bounded: at most [`MAX_RECORDS`] records per request and [`MAX_SHARED_BYTES`] of resource
//! attributes copied into them (records past either are counted, not stored — see
//! [`Decoded::dropped`]), [`MAX_ATTRIBUTES`] record attributes and half as many resource
//! attributes per record, nested maps flattened to [`MAX_DEPTH`] levels (values deeper than
//! that are null); protobuf and JSON decoding have their own recursion limits (prost's 100,
//! serde_json's 128).
#![deny(missing_docs)]

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use serde_json::{Map, Value as Json};
use vigil_event::{Event, Timestamp};
use vigil_parse::{Format, ParseContext};

pub use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;

pub mod json;

/// The most log records read from one request.
pub const MAX_RECORDS: usize = 100_000;
/// The most attributes (resource and record together) read for one record.
pub const MAX_ATTRIBUTES: usize = 512;
/// How deep nested maps and arrays are flattened into fields.
pub const MAX_DEPTH: usize = 8;
/// The most resource and scope attribute bytes one request may copy into its events, summed
/// over its records (a request of many tiny records under one huge resource would otherwise
/// multiply it); records past the budget are not read and are reported as rejected.
pub const MAX_SHARED_BYTES: usize = 64 << 20;

/// OpenTelemetry attribute names whose ECS name differs, and the ECS name.
pub const ATTRIBUTE_NAMES: &[(&str, &str)] = &[
    ("enduser.id", "user.name"),
    ("client.address", "source.address"),
    ("client.port", "source.port"),
    ("network.peer.address", "source.address"),
    ("exception.type", "error.type"),
    ("exception.message", "error.message"),
    ("exception.stacktrace", "error.stack_trace"),
    ("code.function", "log.origin.function"),
    ("code.function.name", "log.origin.function"),
    ("code.filepath", "log.origin.file.name"),
    ("code.file.path", "log.origin.file.name"),
    ("code.lineno", "log.origin.file.line"),
    ("code.line.number", "log.origin.file.line"),
    ("deployment.environment", "service.environment"),
    ("deployment.environment.name", "service.environment"),
    ("http.method", "http.request.method"),
    ("http.status_code", "http.response.status_code"),
    ("http.url", "url.full"),
    ("http.target", "url.path"),
    ("http.user_agent", "user_agent.original"),
    ("net.peer.ip", "source.address"),
];

/// Why a request was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not an `ExportLogsServiceRequest` in protobuf.
    #[error("not an OTLP ExportLogsServiceRequest (protobuf): {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// Not JSON.
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but not an `ExportLogsServiceRequest` in OTLP/JSON.
    #[error("not an OTLP ExportLogsServiceRequest (JSON): {0}")]
    Shape(#[from] json::JsonShapeError),
}

/// The events of one request.
#[derive(Debug)]
pub struct Decoded {
    /// One event per log record, in request order.
    pub events: Vec<Event>,
    /// Records past [`MAX_RECORDS`], not read (OTLP's `rejected_log_records`).
    pub dropped: u64,
}

/// Decodes a protobuf `ExportLogsServiceRequest`.
pub fn decode_protobuf(body: &[u8], ctx: &ParseContext) -> Result<Decoded, DecodeError> {
    let request = ExportLogsServiceRequest::decode(body)?;
    Ok(events(&request, ctx))
}

/// Decodes an OTLP/JSON `ExportLogsServiceRequest`.
pub fn decode_json(body: &[u8], ctx: &ParseContext) -> Result<Decoded, DecodeError> {
    let document: Json = serde_json::from_slice(body)?;
    let request = json::request(&document)?;
    Ok(events(&request, ctx))
}

/// The answer to a request whose records were stored: empty, or OTLP's partial success when
/// some were not read.
pub fn response(dropped: u64) -> ExportLogsServiceResponse {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess;
    ExportLogsServiceResponse {
        partial_success: (dropped > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: i64::try_from(dropped).unwrap_or(i64::MAX),
            error_message: format!(
                "{dropped} log records past the first {MAX_RECORDS} of one request were not \
                 stored; send smaller batches"
            ),
        }),
    }
}

/// `google.rpc.Status`, the body of an OTLP error answer (protobuf form).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// A `google.rpc.Code` (3 = invalid argument, 8 = resource exhausted, 14 = unavailable).
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What went wrong, for a person.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// One event per log record of `request`.
pub fn events(request: &ExportLogsServiceRequest, ctx: &ParseContext) -> Decoded {
    let mut out = Vec::new();
    let mut dropped = 0u64;
    let mut shared_bytes = 0usize;
    for resource_logs in &request.resource_logs {
        let resource: &[KeyValue] = resource_logs
            .resource
            .as_ref()
            .map_or(&[], |r| r.attributes.as_slice());
        let mut shared_object = Map::new();
        add_attributes(&mut shared_object, resource, MAX_ATTRIBUTES / 2);
        for scope_logs in &resource_logs.scope_logs {
            let mut shared = shared_object.clone();
            if let Some(scope) = &scope_logs.scope {
                if !scope.name.is_empty() {
                    shared.insert("log.logger".into(), Json::from(scope.name.as_str()));
                }
                if !scope.version.is_empty() {
                    shared.insert(
                        "log.logger_version".into(),
                        Json::from(scope.version.as_str()),
                    );
                }
            }
            let shared_size = Json::Object(shared.clone()).to_string().len();
            for record in &scope_logs.log_records {
                if out.len() >= MAX_RECORDS || shared_bytes + shared_size > MAX_SHARED_BYTES {
                    dropped += 1;
                    continue;
                }
                shared_bytes += shared_size;
                out.push(record_event(record, shared.clone(), ctx));
            }
        }
    }
    Decoded {
        events: out,
        dropped,
    }
}

fn record_event(record: &LogRecord, shared: Map<String, Json>, ctx: &ParseContext) -> Event {
    // Record attributes first, then the resource's and the scope's where the record said
    // nothing: the record wins, and its attributes are never crowded out by the resource's.
    let mut object = Map::new();
    add_attributes(&mut object, &record.attributes, MAX_ATTRIBUTES);
    for (key, value) in shared {
        if object.len() >= MAX_ATTRIBUTES + MAX_ATTRIBUTES / 2 {
            break;
        }
        object.entry(key).or_insert(value);
    }
    let nanos = if record.time_unix_nano != 0 {
        record.time_unix_nano
    } else {
        record.observed_time_unix_nano
    };
    if nanos != 0
        && let Ok(nanos) = i64::try_from(nanos)
    {
        object.insert(
            "@timestamp".into(),
            Json::from(Timestamp::from_nanos(nanos).to_rfc3339()),
        );
    }
    let message = match record.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Some(s.clone()),
        Some(other) => Some(json_of(other, 0).to_string()),
        None => None,
    };
    if let Some(m) = &message {
        object.insert("message".into(), Json::from(m.as_str()));
    }
    let level = if record.severity_text.is_empty() {
        severity_level(record.severity_number).map(str::to_owned)
    } else {
        Some(record.severity_text.to_ascii_lowercase())
    };
    if let Some(level) = level {
        object.insert("log.level".into(), Json::from(level));
    }
    if let Some(severity) = vigil_severity(record.severity_number) {
        object.insert("event.severity".into(), Json::from(severity));
    }
    if !record.trace_id.is_empty() {
        object.insert("trace.id".into(), Json::from(hex(&record.trace_id)));
    }
    if !record.span_id.is_empty() {
        object.insert("span.id".into(), Json::from(hex(&record.span_id)));
    }
    if !record.event_name.is_empty() {
        object.insert(
            "event.action".into(),
            Json::from(record.event_name.as_str()),
        );
    }
    // An address attribute that is an IP is the ECS `source.ip` that rules correlate on.
    if !object.contains_key("source.ip")
        && let Some(Json::String(address)) = object.get("source.address")
        && address.parse::<std::net::IpAddr>().is_ok()
    {
        let ip = address.clone();
        object.insert("source.ip".into(), Json::from(ip));
    }
    let line = Json::Object(object).to_string();
    let mut event = vigil_parse::parse_line(line.as_bytes(), Format::Json, ctx);
    // The message as stored (masked), not as sent.
    if let Some(masked) = event.get_str("message").map(str::to_owned) {
        vigil_parse::app_message::enrich(&mut event, &masked, ctx);
        if let Some(redactor) = &ctx.redactor {
            redactor.redact_event(&mut event);
        }
    }
    event
}

/// `event.severity` on Vigil's scale (OCSF `severity_id`, what alerts and `vigil-client` use:
/// 1 informational, 3 medium, 4 high, 5 critical) of an OTLP severity number.
pub fn vigil_severity(number: i32) -> Option<i64> {
    Some(match number {
        1..=12 => 1,
        13..=16 => 3,
        17..=20 => 4,
        21..=24 => 5,
        _ => return None,
    })
}

/// `log.level` of an OTLP severity number (the ranges of the OpenTelemetry log data model).
pub fn severity_level(number: i32) -> Option<&'static str> {
    Some(match number {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => return None,
    })
}

/// Attributes that name the peer of the connection, not the client: kept only when no
/// `client.address` said who the client is (behind a proxy the peer is the proxy).
const PEER_ADDRESSES: [&str; 2] = ["network.peer.address", "net.peer.ip"];

fn add_attributes(object: &mut Map<String, Json>, attributes: &[KeyValue], cap: usize) {
    let has_client = attributes.iter().any(|kv| kv.key == "client.address");
    for kv in attributes {
        if object.len() >= cap {
            return;
        }
        if has_client && PEER_ADDRESSES.contains(&kv.key.as_str()) {
            continue;
        }
        let Some(value) = kv.value.as_ref().and_then(|v| v.value.as_ref()) else {
            continue;
        };
        let name = ATTRIBUTE_NAMES
            .iter()
            .find(|(otel, _)| *otel == kv.key)
            .map_or(kv.key.as_str(), |(_, ecs)| ecs);
        if name.is_empty() {
            continue;
        }
        flatten(object, name, value, 0);
    }
}

/// Inserts `value` under `name`; a map's entries under `name.key`, to [`MAX_DEPTH`].
fn flatten(object: &mut Map<String, Json>, name: &str, value: &any_value::Value, depth: usize) {
    match value {
        any_value::Value::KvlistValue(list) if depth < MAX_DEPTH => {
            for kv in &list.values {
                if object.len() >= MAX_ATTRIBUTES {
                    return;
                }
                if let Some(v) = kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    flatten(object, &format!("{name}.{}", kv.key), v, depth + 1);
                }
            }
        }
        other => {
            object.insert(name.to_owned(), json_of(other, depth));
        }
    }
}

/// `value` as JSON (nested to [`MAX_DEPTH`], deeper as null).
fn json_of(value: &any_value::Value, depth: usize) -> Json {
    if depth > MAX_DEPTH {
        return Json::Null;
    }
    let inner = |v: &AnyValue| {
        v.value
            .as_ref()
            .map_or(Json::Null, |v| json_of(v, depth + 1))
    };
    match value {
        any_value::Value::StringValue(s) => Json::from(s.as_str()),
        any_value::Value::BoolValue(b) => Json::from(*b),
        any_value::Value::IntValue(i) => Json::from(*i),
        any_value::Value::DoubleValue(d) => {
            serde_json::Number::from_f64(*d).map_or(Json::Null, Json::Number)
        }
        any_value::Value::BytesValue(b) => Json::from(hex(b)),
        any_value::Value::ArrayValue(a) => Json::Array(a.values.iter().map(inner).collect()),
        any_value::Value::KvlistValue(l) => Json::Object(
            l.values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Json::Null, inner)))
                .collect(),
        ),
        #[allow(unreachable_patterns)]
        _ => Json::Null,
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests;
