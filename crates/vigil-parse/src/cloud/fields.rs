//! Small readers shared by the cloud parsers: a field by its name as the provider writes it
//! (or all in lower case, as some exporters and test harnesses rewrite keys), typed setters
//! that never replace what the record already says.

use std::net::IpAddr;

use vigil_event::{Event, Timestamp, Value};

/// The value at `key`, or at `key` in lower case, or at `key` with its first part in lower
/// case (exporters that lower-case top-level keys only).
pub(crate) fn get<'a>(event: &'a Event, key: &str) -> Option<&'a Value> {
    if let Some(v) = event.get(key) {
        return Some(v);
    }
    if !key.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    if let Some(v) = event.get(&key.to_ascii_lowercase()) {
        return Some(v);
    }
    let (first, rest) = key.split_once('.')?;
    if !first.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    event.get(&format!("{}.{rest}", first.to_ascii_lowercase()))
}

/// The non-empty text at `key` (strings as they are, numbers and booleans in their text form).
pub(crate) fn text(event: &Event, key: &str) -> Option<String> {
    match get(event, key)? {
        Value::Str(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Ip(ip) => Some(ip.to_string()),
        _ => None,
    }
}

/// The first of `keys` with a non-empty text.
pub(crate) fn first_text(event: &Event, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| text(event, k))
}

/// Whether the record has `key` (or its lower-case form).
pub(crate) fn has(event: &Event, key: &str) -> bool {
    get(event, key).is_some()
}

/// Inserts `value` at `key` unless the event has the key already.
pub(crate) fn set(event: &mut Event, key: &str, value: impl Into<Value>) {
    if !event.contains(key) {
        event.insert(key, value);
    }
}

/// Inserts `value` at `key` when there is one.
pub(crate) fn set_opt(event: &mut Event, key: &str, value: Option<String>) {
    if let Some(v) = value {
        set(event, key, v);
    }
}

/// An address as providers write it: bare, `addr:port`, `[v6]:port`. `None` when it is not
/// an address (a host name, a service name, `null`).
pub(crate) fn address(text: &str) -> Option<IpAddr> {
    let t = text.trim();
    if let Ok(ip) = t.parse() {
        return Some(ip);
    }
    if let Ok(sock) = t.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    None
}

/// Sets `source.ip` from the first of `keys` that holds an address (a string or a list whose
/// first element is one).
pub(crate) fn set_source_ip(event: &mut Event, keys: &[&str]) {
    if event.contains("source.ip") {
        return;
    }
    for key in keys {
        let ip = match get(event, key) {
            Some(Value::Ip(ip)) => Some(*ip),
            Some(Value::Str(s)) => address(s),
            Some(Value::List(items)) => match items.first() {
                Some(Value::Ip(ip)) => Some(*ip),
                Some(Value::Str(s)) => address(s),
                _ => None,
            },
            _ => None,
        };
        if let Some(ip) = ip {
            event.insert("source.ip", Value::Ip(ip));
            return;
        }
    }
}

/// Sets the event time from the first of `keys` that holds a readable time (RFC 3339, the same
/// with a space, or epoch seconds/milliseconds).
pub(crate) fn set_time(event: &mut Event, keys: &[&str]) {
    for key in keys {
        let t = match get(event, key) {
            Some(Value::Str(s)) => Timestamp::parse(s).ok(),
            Some(Value::Int(i)) => Some(Timestamp::from_epoch_int(*i)),
            Some(Value::Float(f)) => Timestamp::from_epoch_number(*f).ok(),
            _ => None,
        };
        if let Some(t) = t {
            event.set_timestamp(t);
            return;
        }
    }
}

/// Whether a key is present under `prefix.` (or its lower-case form).
pub(crate) fn has_under(event: &Event, prefix: &str) -> bool {
    let lower = prefix.to_ascii_lowercase();
    event.fields().any(|(k, _)| {
        k.strip_prefix(prefix)
            .or_else(|| k.strip_prefix(lower.as_str()))
            .is_some_and(|rest| rest.starts_with('.'))
    })
}
