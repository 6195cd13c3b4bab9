//! JSON in and out.
//!
//! In: an object; nested objects flatten into dotted keys; `@timestamp` (RFC 3339 string or epoch
//! number) becomes the event time; strings under IP-typed keys (`*.ip`, `ip`, and lists under
//! them) that parse as addresses become [`Value::Ip`]; integers that fit i64 stay integers.
//!
//! Out: a flat object with `@timestamp` first, then the fields in key order.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Number, Value as Json};

use crate::{Event, TIMESTAMP_FIELD, Timestamp, TimestampError, Value};

/// Why a JSON text is not an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Not JSON at all.
    #[error("invalid JSON at column {column}: {message}")]
    Syntax {
        /// 1-based column of the error.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// Valid JSON but not an object.
    #[error("expected a JSON object, found {found}")]
    NotAnObject {
        /// What was found instead.
        found: &'static str,
    },
    /// `@timestamp` present but unreadable.
    #[error("@timestamp: {0}")]
    Timestamp(#[from] TimestampError),
}

impl Event {
    /// Reads one JSON object. `default_time` is used when there is no `@timestamp`.
    pub fn from_json(text: &str, default_time: Timestamp) -> Result<Event, JsonError> {
        let json: Json = serde_json::from_str(text).map_err(|e| JsonError::Syntax {
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
        Event::from_json_value(json, default_time)
    }

    /// Builds an event from an already parsed JSON value.
    pub fn from_json_value(json: Json, default_time: Timestamp) -> Result<Event, JsonError> {
        let Json::Object(object) = json else {
            return Err(JsonError::NotAnObject {
                found: json_type(&json),
            });
        };
        let mut event = Event::new(default_time);
        flatten_into(&mut event, String::new(), object);
        match event.fields.remove(TIMESTAMP_FIELD) {
            None | Some(Value::Null) => {}
            Some(Value::Str(s)) => event.timestamp = Timestamp::parse(&s)?,
            Some(Value::Int(i)) => event.timestamp = Timestamp::from_epoch_int(i),
            Some(Value::Float(f)) => event.timestamp = Timestamp::from_epoch_number(f)?,
            Some(other) => {
                return Err(JsonError::Timestamp(
                    Timestamp::parse(&other.to_string()).unwrap_err(),
                ));
            }
        }
        Ok(event)
    }

    /// The event as a flat JSON object (`{"@timestamp": …, "source.ip": …}`).
    pub fn to_json(&self) -> Json {
        let mut object = Map::with_capacity(self.fields.len() + 1);
        object.insert(
            TIMESTAMP_FIELD.to_owned(),
            Json::String(self.timestamp.to_rfc3339()),
        );
        for (k, v) in &self.fields {
            object.insert(k.as_str().to_owned(), value_to_json(v));
        }
        Json::Object(object)
    }

    /// The event as ECS nested JSON (`{"source": {"ip": …}}`). Where a key is both a value and a
    /// prefix of other keys (`a` and `a.b`), the longer keys stay dotted inside the parent.
    pub fn to_nested_json(&self) -> Json {
        let mut root = Map::new();
        root.insert(
            TIMESTAMP_FIELD.to_owned(),
            Json::String(self.timestamp.to_rfc3339()),
        );
        for (key, value) in &self.fields {
            insert_nested(&mut root, key, value_to_json(value));
        }
        Json::Object(root)
    }
}

fn insert_nested(object: &mut Map<String, Json>, key: &str, value: Json) {
    match key.split_once('.') {
        Some((head, rest)) if !head.is_empty() && !rest.is_empty() => {
            let slot = object
                .entry(head.to_owned())
                .or_insert_with(|| Json::Object(Map::new()));
            match slot {
                Json::Object(child) => insert_nested(child, rest, value),
                _ => {
                    object.insert(key.to_owned(), value);
                }
            }
        }
        _ => {
            if let Some(Json::Object(existing)) = object.get_mut(key) {
                // `a.b` came first (keys sorted: "a" < "a.b" so this is rare); keep both.
                existing.insert(String::new(), value);
            } else {
                object.insert(key.to_owned(), value);
            }
        }
    }
}

/// Whether a key holds addresses by ECS convention (`source.ip`, `related.ip`, `ip`, `host.ip`).
pub fn is_ip_key(key: &str) -> bool {
    key == "ip" || key.ends_with(".ip")
}

fn flatten_into(event: &mut Event, prefix: String, object: Map<String, Json>) {
    for (k, v) in object {
        let key = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Json::Object(child) if !child.is_empty() => flatten_into(event, key, child),
            Json::Object(_) => {}
            other => {
                let value = json_to_value(other, is_ip_key(&key));
                if !key.is_empty() {
                    event.fields.insert(key.into(), value);
                }
            }
        }
    }
}

fn json_to_value(json: Json, ip_key: bool) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => number_to_value(&n),
        Json::String(s) => {
            if ip_key && let Ok(ip) = s.parse::<IpAddr>() {
                return Value::Ip(ip);
            }
            Value::Str(s)
        }
        Json::Array(items) => Value::List(
            items
                .into_iter()
                .map(|item| json_to_value(item, ip_key))
                .collect(),
        ),
        Json::Object(map) => Value::Map(
            map.into_iter()
                .map(|(k, v)| {
                    let ip = is_ip_key(&k);
                    (k, json_to_value(v, ip))
                })
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

fn number_to_value(n: &Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::Int(i)
    } else {
        Value::float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// A value as JSON: IPs as strings, non-finite floats as null.
pub(crate) fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::Number((*i).into()),
        Value::Float(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Ip(ip) => Json::String(ip.to_string()),
        Value::List(items) => Json::Array(items.iter().map(value_to_json).collect()),
        Value::Map(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), value_to_json(v)))
                .collect(),
        ),
    }
}

fn json_type(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// serde_json appends " at line 1 column 7"; the column is reported separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_dotted_are_the_same_event() {
        let a = Event::from_json(
            r#"{"source":{"ip":"203.0.113.5","port":22}}"#,
            Timestamp::default(),
        )
        .unwrap();
        let b = Event::from_json(
            r#"{"source.ip":"203.0.113.5","source.port":22}"#,
            Timestamp::default(),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_canonical(), b.to_canonical());
        assert_eq!(
            a.get("source.ip"),
            Some(&Value::Ip("203.0.113.5".parse().unwrap()))
        );
        assert_eq!(a.get("source.port"), Some(&Value::Int(22)));
    }

    #[test]
    fn ip_typing_only_under_ip_keys() {
        let e = Event::from_json(
            r#"{"message":"10.0.0.1","related":{"ip":["10.0.0.1","not-an-ip","::1"]},"host.ip":"bogus"}"#,
            Timestamp::default(),
        )
        .unwrap();
        assert_eq!(e.get_str("message"), Some("10.0.0.1"));
        assert_eq!(
            e.get("related.ip"),
            Some(&Value::List(vec![
                Value::Ip("10.0.0.1".parse().unwrap()),
                Value::from("not-an-ip"),
                Value::Ip("::1".parse().unwrap()),
            ]))
        );
        assert_eq!(e.get_str("host.ip"), Some("bogus"));
    }

    #[test]
    fn timestamp_handling() {
        let e = Event::from_json(
            r#"{"@timestamp":"2026-11-22T10:00:00Z","a":1}"#,
            Timestamp::default(),
        )
        .unwrap();
        assert_eq!(e.timestamp().to_rfc3339(), "2026-11-22T10:00:00Z");
        assert!(!e.contains("@timestamp"));
        let d = Event::from_json(r#"{"a":1}"#, Timestamp::from_secs(42)).unwrap();
        assert_eq!(d.timestamp(), Timestamp::from_secs(42));
        let n = Event::from_json(r#"{"@timestamp":1700000000}"#, Timestamp::default()).unwrap();
        assert_eq!(n.timestamp(), Timestamp::from_secs(1_700_000_000));
        let err = Event::from_json(r#"{"@timestamp":"soon"}"#, Timestamp::default()).unwrap_err();
        assert!(matches!(err, JsonError::Timestamp(_)), "{err}");
    }

    #[test]
    fn errors_are_clear() {
        let err = Event::from_json(r#"{"a": }"#, Timestamp::default()).unwrap_err();
        assert!(
            matches!(err, JsonError::Syntax { column: 7, .. }),
            "{err:?}"
        );
        let err = Event::from_json("[1,2]", Timestamp::default()).unwrap_err();
        assert_eq!(err.to_string(), "expected a JSON object, found an array");
    }

    #[test]
    fn flat_json_round_trips() {
        let text = r#"{"@timestamp":"2026-11-22T10:00:00.5Z","a":{"b":1.5,"c":[1,"x",null,{"d":true}]},"source.ip":"2001:db8::1","n":-3}"#;
        let e = Event::from_json(text, Timestamp::default()).unwrap();
        let again = Event::from_json(&e.to_json().to_string(), Timestamp::default()).unwrap();
        assert_eq!(e, again);
    }

    #[test]
    fn nested_output() {
        let e = Event::from_json(
            r#"{"source.ip":"10.1.2.3","source.port":1,"message":"m"}"#,
            Timestamp::default(),
        )
        .unwrap();
        let nested = e.to_nested_json();
        assert_eq!(nested["source"]["ip"], "10.1.2.3");
        assert_eq!(nested["source"]["port"], 1);
        assert_eq!(nested["message"], "m");
    }

    #[test]
    fn big_unsigned_becomes_float_not_error() {
        let e = Event::from_json(r#"{"n":18446744073709551615}"#, Timestamp::default()).unwrap();
        assert!(matches!(e.get("n"), Some(Value::Float(_))));
    }
}
