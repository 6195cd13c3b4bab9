//! OTLP/JSON → the protobuf message types, read the way proto3's JSON mapping allows: field
//! names in lowerCamelCase (what the OTLP/JSON spec asks senders for) or as in the `.proto`
//! (`resource_logs`, `time_unix_nano`); 64-bit integers as numbers or strings; trace and span
//! ids as hex (OTLP/JSON) or base64 (proto3's bytes encoding), of their exact lengths;
//! `bytesValue` as base64. A missing list is empty; a value of the wrong type (a string where a
//! list belongs, a body that is not an object, an id that is neither hex nor base64 of the
//! right length) refuses the whole request with the path of what was wrong.

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::Value as Json;

/// What was wrong with an OTLP/JSON request, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct JsonShapeError {
    /// Where (`resourceLogs[0].scopeLogs[1].logRecords[2].traceId`).
    pub path: String,
    /// What.
    pub problem: String,
}

type Result<T> = std::result::Result<T, JsonShapeError>;

fn fail<T>(path: &str, problem: impl Into<String>) -> Result<T> {
    Err(JsonShapeError {
        path: path.to_owned(),
        problem: problem.into(),
    })
}

/// The request in an OTLP/JSON document.
pub fn request(root: &Json) -> Result<ExportLogsServiceRequest> {
    let Json::Object(_) = root else {
        return fail("$", "the request is not a JSON object");
    };
    let resource_logs = list(root, "resourceLogs", "resource_logs", "$")?
        .iter()
        .enumerate()
        .map(|(i, r)| resource_logs(r, &format!("resourceLogs[{i}]")))
        .collect::<Result<_>>()?;
    Ok(ExportLogsServiceRequest { resource_logs })
}

/// The member `camel` (or `snake`) of `object`.
fn member<'a>(object: &'a Json, camel: &str, snake: &str) -> Option<&'a Json> {
    object
        .get(camel)
        .or_else(|| object.get(snake))
        .filter(|v| !v.is_null())
}

fn list<'a>(object: &'a Json, camel: &str, snake: &str, path: &str) -> Result<&'a [Json]> {
    match member(object, camel, snake) {
        None => Ok(&[]),
        Some(Json::Array(items)) => Ok(items),
        Some(_) => fail(&format!("{path}.{camel}"), "not a list"),
    }
}

fn object<'a>(value: &'a Json, path: &str) -> Result<&'a Json> {
    match value {
        Json::Object(_) => Ok(value),
        _ => fail(path, "not an object"),
    }
}

fn string(object: &Json, camel: &str, snake: &str, path: &str) -> Result<String> {
    match member(object, camel, snake) {
        None => Ok(String::new()),
        Some(Json::String(s)) => Ok(s.clone()),
        Some(_) => fail(&format!("{path}.{camel}"), "not a string"),
    }
}

/// An integer written as a JSON number or a string (proto3's 64-bit form).
fn integer(object: &Json, camel: &str, snake: &str, path: &str) -> Result<i128> {
    let here = || format!("{path}.{camel}");
    match member(object, camel, snake) {
        None => Ok(0),
        Some(Json::Number(n)) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .map_or_else(|| fail(&here(), "not an integer"), Ok),
        Some(Json::String(s)) => s
            .trim()
            .parse::<i128>()
            .map_or_else(|_| fail(&here(), "not an integer"), Ok),
        Some(_) => fail(&here(), "not an integer"),
    }
}

fn unsigned<T: TryFrom<i128>>(object: &Json, camel: &str, snake: &str, path: &str) -> Result<T> {
    let n = integer(object, camel, snake, path)?;
    T::try_from(n).map_or_else(|_| fail(&format!("{path}.{camel}"), "out of range"), Ok)
}

fn resource_logs(value: &Json, path: &str) -> Result<ResourceLogs> {
    let value = object(value, path)?;
    let resource = match member(value, "resource", "resource") {
        None => None,
        Some(r) => {
            let r = object(r, &format!("{path}.resource"))?;
            Some(Resource {
                attributes: attributes(r, &format!("{path}.resource"))?,
                dropped_attributes_count: unsigned(
                    r,
                    "droppedAttributesCount",
                    "dropped_attributes_count",
                    path,
                )?,
                ..Default::default()
            })
        }
    };
    let scope_logs = list(value, "scopeLogs", "scope_logs", path)?
        .iter()
        .enumerate()
        .map(|(i, s)| scope_logs(s, &format!("{path}.scopeLogs[{i}]")))
        .collect::<Result<_>>()?;
    Ok(ResourceLogs {
        resource,
        scope_logs,
        schema_url: string(value, "schemaUrl", "schema_url", path)?,
    })
}

fn scope_logs(value: &Json, path: &str) -> Result<ScopeLogs> {
    let value = object(value, path)?;
    let scope = match member(value, "scope", "scope") {
        None => None,
        Some(s) => {
            let here = format!("{path}.scope");
            let s = object(s, &here)?;
            Some(InstrumentationScope {
                name: string(s, "name", "name", &here)?,
                version: string(s, "version", "version", &here)?,
                attributes: attributes(s, &here)?,
                dropped_attributes_count: unsigned(
                    s,
                    "droppedAttributesCount",
                    "dropped_attributes_count",
                    &here,
                )?,
            })
        }
    };
    let log_records = list(value, "logRecords", "log_records", path)?
        .iter()
        .enumerate()
        .map(|(i, r)| log_record(r, &format!("{path}.logRecords[{i}]")))
        .collect::<Result<_>>()?;
    Ok(ScopeLogs {
        scope,
        log_records,
        schema_url: string(value, "schemaUrl", "schema_url", path)?,
    })
}

fn log_record(value: &Json, path: &str) -> Result<LogRecord> {
    let value = object(value, path)?;
    let body = match member(value, "body", "body") {
        None => None,
        Some(b) => Some(any(b, &format!("{path}.body"), 0)?),
    };
    Ok(LogRecord {
        time_unix_nano: unsigned(value, "timeUnixNano", "time_unix_nano", path)?,
        observed_time_unix_nano: unsigned(
            value,
            "observedTimeUnixNano",
            "observed_time_unix_nano",
            path,
        )?,
        severity_number: severity_number(value, path)?,
        severity_text: string(value, "severityText", "severity_text", path)?,
        body,
        attributes: attributes(value, path)?,
        dropped_attributes_count: unsigned(
            value,
            "droppedAttributesCount",
            "dropped_attributes_count",
            path,
        )?,
        flags: unsigned(value, "flags", "flags", path)?,
        trace_id: id(value, "traceId", "trace_id", 16, path)?,
        span_id: id(value, "spanId", "span_id", 8, path)?,
        event_name: string(value, "eventName", "event_name", path)?,
    })
}

/// `severityNumber` as a number, a numeric string or the enum's name
/// (`SEVERITY_NUMBER_WARN`, proto3's JSON form of an enum).
fn severity_number(value: &Json, path: &str) -> Result<i32> {
    if let Some(Json::String(name)) = member(value, "severityNumber", "severity_number")
        && let Some(level) = name.strip_prefix("SEVERITY_NUMBER_")
    {
        const NAMES: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
        let (base, n) = level.split_at(
            level
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(level.len()),
        );
        let Some(i) = NAMES.iter().position(|x| *x == base) else {
            return if level == "UNSPECIFIED" {
                Ok(0)
            } else {
                fail(&format!("{path}.severityNumber"), "not a severity")
            };
        };
        let step: i32 = if n.is_empty() {
            1
        } else {
            n.parse().unwrap_or(0)
        };
        if !(1..=4).contains(&step) {
            return fail(&format!("{path}.severityNumber"), "not a severity");
        }
        return Ok(i as i32 * 4 + step);
    }
    unsigned(value, "severityNumber", "severity_number", path)
}

/// A trace (16 bytes) or span (8 bytes) id: hex, or base64; empty is none.
fn id(value: &Json, camel: &str, snake: &str, len: usize, path: &str) -> Result<Vec<u8>> {
    let here = || format!("{path}.{camel}");
    let text = match member(value, camel, snake) {
        None => return Ok(Vec::new()),
        Some(Json::String(s)) => s.as_str(),
        Some(_) => return fail(&here(), "not a string"),
    };
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if text.len() == len * 2 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok((0..len)
            .map(|i| u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).unwrap_or(0))
            .collect());
    }
    match base64::engine::general_purpose::STANDARD.decode(text) {
        Ok(bytes) if bytes.len() == len => Ok(bytes),
        _ => fail(
            &here(),
            format!("not {} hex digits (nor base64 of {len} bytes)", len * 2),
        ),
    }
}

fn attributes(value: &Json, path: &str) -> Result<Vec<KeyValue>> {
    list(value, "attributes", "attributes", path)?
        .iter()
        .enumerate()
        .map(|(i, kv)| key_value(kv, &format!("{path}.attributes[{i}]"), 0))
        .collect()
}

fn key_value(kv: &Json, path: &str, depth: usize) -> Result<KeyValue> {
    let kv = object(kv, path)?;
    let key = string(kv, "key", "key", path)?;
    let value = match member(kv, "value", "value") {
        None => None,
        Some(v) => Some(any(v, &format!("{path}.value"), depth)?),
    };
    Ok(KeyValue {
        key,
        value,
        ..Default::default()
    })
}

/// The deepest nesting of arrays and maps read (serde_json stops at 128 anyway).
const MAX_NESTING: usize = 64;

fn any(value: &Json, path: &str, depth: usize) -> Result<AnyValue> {
    if depth > MAX_NESTING {
        return fail(path, "nested too deeply");
    }
    let Json::Object(map) = value else {
        return fail(path, "not an AnyValue object");
    };
    let first = map.iter().find(|(_, v)| !v.is_null());
    let Some((name, inner)) = first else {
        return Ok(AnyValue { value: None });
    };
    let here = format!("{path}.{name}");
    let value = match name.as_str() {
        "stringValue" | "string_value" => match inner {
            Json::String(s) => any_value::Value::StringValue(s.clone()),
            _ => return fail(&here, "not a string"),
        },
        "boolValue" | "bool_value" => match inner {
            Json::Bool(b) => any_value::Value::BoolValue(*b),
            _ => return fail(&here, "not a boolean"),
        },
        "intValue" | "int_value" => {
            let n = integer(value, name, name, path)?;
            any_value::Value::IntValue(
                i64::try_from(n).map_or_else(|_| fail(&here, "out of range"), Ok)?,
            )
        }
        "doubleValue" | "double_value" => match inner {
            Json::Number(n) => any_value::Value::DoubleValue(n.as_f64().unwrap_or(0.0)),
            Json::String(s) => match s.parse::<f64>() {
                Ok(f) => any_value::Value::DoubleValue(f),
                Err(_) => return fail(&here, "not a number"),
            },
            _ => return fail(&here, "not a number"),
        },
        "bytesValue" | "bytes_value" => match inner {
            Json::String(s) => match base64::engine::general_purpose::STANDARD.decode(s) {
                Ok(b) => any_value::Value::BytesValue(b),
                Err(_) => return fail(&here, "not base64"),
            },
            _ => return fail(&here, "not a string"),
        },
        "arrayValue" | "array_value" => {
            let inner = object(inner, &here)?;
            any_value::Value::ArrayValue(ArrayValue {
                values: list(inner, "values", "values", &here)?
                    .iter()
                    .enumerate()
                    .map(|(i, v)| any(v, &format!("{here}.values[{i}]"), depth + 1))
                    .collect::<Result<_>>()?,
            })
        }
        "kvlistValue" | "kvlist_value" => {
            let inner = object(inner, &here)?;
            any_value::Value::KvlistValue(KeyValueList {
                values: list(inner, "values", "values", &here)?
                    .iter()
                    .enumerate()
                    .map(|(i, kv)| key_value(kv, &format!("{here}.values[{i}]"), depth + 1))
                    .collect::<Result<_>>()?,
            })
        }
        other => return fail(path, format!("unknown AnyValue member {other:?}")),
    };
    Ok(AnyValue { value: Some(value) })
}
