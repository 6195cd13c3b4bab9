//! The wire formats of the HTTP ingest routes as pure functions: bytes (and the request's
//! context) in, events out, or a [`DecodeError`] that says what is wrong and where. No I/O,
//! no HTTP types: the handlers call these on the blocking pool and map the answer to their
//! API's shape; the fuzz targets (`fuzz/fuzz_targets/decode_*.rs`) call them directly.

use serde_json::Value as JsonValue;
use vigil_event::{Event, Timestamp, Value};
use vigil_parse::{Format, ParseContext, parse_line};

/// Why a request body cannot be decoded; nothing of it is stored. Never retryable: the same
/// body fails the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A HEC event (0-based position in the body) is not valid.
    #[error("event {index}: {reason}")]
    HecEvent {
        /// Position of the event in the body.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A `_bulk` line (1-based) is not valid.
    #[error("line {line}: {reason}")]
    Bulk {
        /// The line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Decoders stop one event past the most a request may carry
/// ([`crate::pipeline::MAX_REQUEST_EVENTS`]): the pipeline then refuses the request whole (413),
/// and a body of millions of tiny lines never becomes millions of events in memory first.
pub const DECODE_LIMIT: usize = crate::pipeline::MAX_REQUEST_EVENTS + 1;

/// Vigil's own ingest body: one event per line in `format` (blank lines skipped), a JSON
/// array of events, or an AWS CloudTrail delivery file (`{"Records": [...]}`, one event per
/// record). A line that does not parse becomes an event tagged `parse_error`.
pub fn ndjson(body: &[u8], format: Format, ctx: &ParseContext) -> Vec<Event> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[')
        && matches!(format, Format::Json | Format::Auto)
        && let Ok(items) = serde_json::from_slice::<Vec<JsonValue>>(body)
    {
        return items
            .iter()
            .take(DECODE_LIMIT)
            .map(|item| parse_line(item.to_string().as_bytes(), Format::Json, ctx))
            .collect();
    }
    // An AWS CloudTrail delivery as stored in S3 (`{"Records": [...]}`): one event per record.
    if first == Some(&b'{')
        && matches!(format, Format::Json | Format::Auto)
        && let Ok(text) = std::str::from_utf8(body)
        && let Some(records) = vigil_parse::cloud::split_records(text)
    {
        return records
            .iter()
            .take(DECODE_LIMIT)
            .map(|line| parse_line(line.as_bytes(), Format::Json, ctx))
            .collect();
    }
    body.split(|&b| b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .take(DECODE_LIMIT)
        .map(|line| parse_line(line, format, ctx))
        .collect()
}

/// The line format a Splunk `sourcetype` names (`Auto` for the others).
pub fn sourcetype_format(sourcetype: Option<&str>) -> Format {
    match sourcetype.unwrap_or("").to_ascii_lowercase().as_str() {
        "syslog" | "linux_secure" | "linux_messages_syslog" => Format::Syslog,
        "access_combined" | "access_common" | "apache:access" | "nginx:access" => Format::Combined,
        "_json" | "json" => Format::Json,
        "cef" => Format::Cef,
        _ => Format::Auto,
    }
}

/// A HEC event endpoint body: concatenated JSON objects (`{"event": …, "time": …}`), all
/// valid or none stored.
pub fn hec_events(body: &[u8], ctx: &ParseContext) -> Result<Vec<Event>, DecodeError> {
    let mut events = Vec::new();
    for (index, item) in serde_json::Deserializer::from_slice(body)
        .into_iter::<JsonValue>()
        .take(DECODE_LIMIT)
        .enumerate()
    {
        let fail = |reason: String| DecodeError::HecEvent { index, reason };
        let obj = match item {
            Ok(JsonValue::Object(o)) => o,
            Ok(_) => return Err(fail("each event must be a JSON object".into())),
            Err(e) => return Err(fail(format!("invalid JSON: {e}"))),
        };
        events.push(hec_event(&obj, ctx).map_err(fail)?);
    }
    Ok(events)
}

/// One HEC event object → an event, or why not.
pub fn hec_event(
    obj: &serde_json::Map<String, JsonValue>,
    ctx: &ParseContext,
) -> Result<Event, String> {
    let sourcetype = obj.get("sourcetype").and_then(JsonValue::as_str);
    let mut event = match obj.get("event") {
        None | Some(JsonValue::Null) => return Err("event field is missing".into()),
        Some(JsonValue::String(s)) if s.is_empty() => return Err("event field is blank".into()),
        Some(JsonValue::String(s)) => parse_line(s.as_bytes(), sourcetype_format(sourcetype), ctx),
        Some(v @ JsonValue::Object(_)) => parse_line(v.to_string().as_bytes(), Format::Json, ctx),
        Some(other) => {
            let mut e = Event::new(ctx.received);
            e.insert("message", other.to_string());
            e
        }
    };
    let time = match obj.get("time") {
        Some(JsonValue::Number(n)) => n.as_f64(),
        Some(JsonValue::String(s)) => s.parse::<f64>().ok(),
        _ => None,
    };
    if let Some(t) = time.and_then(|t| Timestamp::from_epoch_number(t).ok())
        && event.timestamp() == ctx.received
    {
        event.set_timestamp(t);
    }
    let mut set = |key: &str, value: Option<&JsonValue>| {
        if let Some(JsonValue::String(s)) = value
            && !event.contains(key)
        {
            event.insert(key, s.as_str());
        }
    };
    set("host.name", obj.get("host"));
    set("vigil.hec.source", obj.get("source"));
    set("vigil.sourcetype", obj.get("sourcetype"));
    set("vigil.index", obj.get("index"));
    if let Some(JsonValue::Object(fields)) = obj.get("fields") {
        for (k, v) in fields {
            let value = match v {
                JsonValue::String(s) => Value::Str(s.clone()),
                other => Value::Str(other.to_string()),
            };
            // A sender's `fields` cannot claim Vigil's names (`vigil.*`, a `vigil.*` dataset).
            let (name, claimed) = vigil_parse::reserved::quarantined_name(k, &value);
            if !event.contains(&name) {
                event.insert(name, value);
            }
            if claimed {
                event.add_tag(vigil_parse::reserved::RESERVED_CLAIM_TAG);
            }
        }
    }
    Ok(event)
}

/// The query parameters of the HEC raw endpoint.
#[derive(Debug, Clone, Default)]
pub struct HecRawMeta {
    /// `sourcetype`: picks the line format.
    pub sourcetype: Option<String>,
    /// `source`, kept as `vigil.hec.source`.
    pub source: Option<String>,
    /// `host`, kept as `host.name` unless the line names one.
    pub host: Option<String>,
    /// `index`, kept as `vigil.index`.
    pub index: Option<String>,
}

/// A HEC raw endpoint body: one event per line in the sourcetype's format, with the request's
/// metadata on each (the line's own values win).
pub fn hec_raw(body: &[u8], meta: &HecRawMeta, ctx: &ParseContext) -> Vec<Event> {
    let mut events = ndjson(body, sourcetype_format(meta.sourcetype.as_deref()), ctx);
    for e in events.iter_mut() {
        for (key, value) in [
            ("host.name", &meta.host),
            ("vigil.hec.source", &meta.source),
            ("vigil.sourcetype", &meta.sourcetype),
            ("vigil.index", &meta.index),
        ] {
            if let Some(v) = value
                && !e.contains(key)
            {
                e.insert(key, v.as_str());
            }
        }
    }
    events
}

/// One action of a `_bulk` body.
#[derive(Debug)]
pub enum BulkItem {
    /// A document to store: action name, index, the event.
    Doc(String, String, Box<Event>),
    /// An action Vigil does not do (delete, update) or a document that does not parse:
    /// action name, index, reason (answered per item with status 400).
    Refused(String, String, String),
}

/// An Elasticsearch `_bulk` body: action lines, each `index`/`create` followed by its
/// document. A malformed action line fails the whole body; a document that is not a JSON
/// object, `update` and `delete` are refused one by one.
pub fn bulk(
    body: &[u8],
    default_index: Option<&str>,
    ctx: &ParseContext,
) -> Result<Vec<BulkItem>, DecodeError> {
    let mut lines = body
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace));
    let mut items = Vec::new();
    while let Some((n, line)) = lines.next() {
        if items.len() >= DECODE_LIMIT {
            break;
        }
        let fail = |reason: String| DecodeError::Bulk {
            line: n + 1,
            reason,
        };
        let action: JsonValue =
            serde_json::from_slice(line).map_err(|e| fail(format!("action is not JSON: {e}")))?;
        let Some((name, meta)) = action.as_object().and_then(|o| o.iter().next()) else {
            return Err(fail("expected an action object like {\"index\":{}}".into()));
        };
        let index = meta
            .get("_index")
            .and_then(JsonValue::as_str)
            .or(default_index)
            .unwrap_or("default")
            .to_owned();
        match name.as_str() {
            "index" | "create" => {
                let Some((_, doc)) = lines.next() else {
                    return Err(fail(format!("{name} action without a document")));
                };
                let text = String::from_utf8_lossy(doc);
                let mut event = parse_line(text.as_bytes(), Format::Json, ctx);
                if event.has_tag(vigil_event::tag::PARSE_ERROR) {
                    items.push(BulkItem::Refused(
                        name.clone(),
                        index,
                        "document is not a JSON object".into(),
                    ));
                    continue;
                }
                event.insert("vigil.index", index.as_str());
                items.push(BulkItem::Doc(name.clone(), index, Box::new(event)));
            }
            "update" => {
                lines.next();
                items.push(BulkItem::Refused(
                    name.clone(),
                    index,
                    "the ledger is append-only: update is not supported".into(),
                ));
            }
            "delete" => {
                items.push(BulkItem::Refused(
                    name.clone(),
                    index,
                    "the ledger is append-only: delete is not supported".into(),
                ));
            }
            other => return Err(fail(format!("unknown action {other:?}"))),
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ParseContext {
        ParseContext::new(Timestamp::from_secs(1_800_000_000), "t")
    }

    #[test]
    fn bulk_pairs_refusals_and_errors_with_their_line() {
        let body = b"{\"index\":{\"_index\":\"logs\"}}\n{\"message\":\"a\"}\n{\"create\":{}}\n{\"message\":\"b\"}\n{\"delete\":{\"_id\":\"1\"}}\n{\"index\":{}}\nnot json\n";
        let items = bulk(body, Some("dflt"), &ctx()).unwrap();
        assert_eq!(items.len(), 4);
        assert!(
            matches!(&items[0], BulkItem::Doc(a, i, e) if a == "index" && i == "logs" && e.get_str("vigil.index") == Some("logs"))
        );
        assert!(matches!(&items[1], BulkItem::Doc(a, i, _) if a == "create" && i == "dflt"));
        assert!(matches!(&items[2], BulkItem::Refused(a, ..) if a == "delete"));
        assert!(matches!(&items[3], BulkItem::Refused(a, ..) if a == "index"));
        assert!(matches!(
            bulk(b"\n{\"index\":{}}\n{}\ngarbage\n", None, &ctx()),
            Err(DecodeError::Bulk { line: 4, .. })
        ));
        assert!(matches!(
            bulk(b"{\"index\":{}}\n", None, &ctx()),
            Err(DecodeError::Bulk { line: 1, .. })
        ));
        assert!(bulk(b"", None, &ctx()).unwrap().is_empty());
    }

    #[test]
    fn hec_events_all_or_nothing_and_raw_lines_with_metadata() {
        let body =
            br#"{"event":"one","host":"web1"}{"event":{"action":"login"},"time":"1700000000"}"#;
        let events = hec_events(body, &ctx()).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].get_str("host.name"), Some("web1"));
        assert_eq!(events[1].timestamp().as_secs(), 1_700_000_000);
        assert_eq!(
            hec_events(br#"{"event":"one"}{"time":1}"#, &ctx()),
            Err(DecodeError::HecEvent {
                index: 1,
                reason: "event field is missing".into()
            })
        );
        assert!(matches!(
            hec_events(b"[1]", &ctx()),
            Err(DecodeError::HecEvent { index: 0, .. })
        ));
        let meta = HecRawMeta {
            host: Some("h".into()),
            index: Some("main".into()),
            ..HecRawMeta::default()
        };
        let raw = hec_raw(b"first line\n\nsecond line\n", &meta, &ctx());
        assert_eq!(raw.len(), 2);
        assert!(raw.iter().all(
            |e| e.get_str("host.name") == Some("h") && e.get_str("vigil.index") == Some("main")
        ));
    }

    #[test]
    fn ndjson_lines_and_arrays() {
        assert_eq!(
            ndjson(b"{\"a\":1}\n\n{\"a\":2}\n", Format::Json, &ctx()).len(),
            2
        );
        assert_eq!(
            ndjson(b" [{\"a\":1},{\"a\":2},{\"a\":3}]", Format::Json, &ctx()).len(),
            3
        );
        let bad = ndjson(b"{\"a\":", Format::Json, &ctx());
        assert!(bad[0].has_tag(vigil_event::tag::PARSE_ERROR));
    }

    /// A CloudTrail delivery file posted as it is in S3 gives one event per record.
    #[test]
    fn ndjson_cloudtrail_delivery() {
        let record = r#"{"eventVersion":"1.08","eventTime":"2023-07-10T12:05:16Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","sourceIPAddress":"203.0.113.7"}"#;
        let body = format!("{{\"Records\": [\n {record},\n {record}\n]}}");
        let events = ndjson(body.as_bytes(), Format::Auto, &ctx());
        assert_eq!(events.len(), 2);
        for e in &events {
            assert_eq!(e.get_str("event.dataset"), Some("aws.cloudtrail"));
            assert!(!e.has_tag(vigil_event::tag::PARSE_ERROR));
        }
        // Not a delivery: a JSON object per line as before.
        let events = ndjson(b"{\"Records\": 3}", Format::Auto, &ctx());
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn a_body_of_many_tiny_lines_stops_one_past_the_request_limit() {
        let body = "x\n".repeat(DECODE_LIMIT + 1000);
        assert_eq!(
            ndjson(body.as_bytes(), Format::Auto, &ctx()).len(),
            DECODE_LIMIT
        );
        let hec = "{\"event\":\"x\"}".repeat(DECODE_LIMIT + 10);
        assert_eq!(
            hec_events(hec.as_bytes(), &ctx()).unwrap().len(),
            DECODE_LIMIT
        );
    }
}
