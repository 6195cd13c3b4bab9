//! ArcSight Common Event Format: `CEF:Version|Vendor|Product|Version|SignatureID|Name|Severity|ext`.
//!
//! Header fields are split on unescaped `|` (`\|` and `\\` are escapes); the extension is
//! `key=value` pairs where a value runs until the next ` key=` (`\=`, `\\`, `\n`, `\r` are
//! escapes). Every extension key is kept under `cef.extensions.<key>`, and the common ones are
//! mapped to ECS (`src` → `source.ip`, `suser` → `source.user.name`, `act` → `event.action`, …).
//! `csN` custom strings are also named by their `csNLabel`.

use std::net::IpAddr;

use vigil_event::{Event, EventKind, Parser, Timestamp, Value, field};

use crate::{LineError, ParseContext};

/// Parses a line holding CEF (alone, or after a syslog header).
pub fn parse(line: &str, ctx: &ParseContext) -> Result<Event, LineError> {
    let start = line.find("CEF:").ok_or(LineError::NoCefMarker)?;
    if start > 0 {
        // CEF inside syslog: let the syslog parser read the header, then us the body.
        if let Ok(event) = crate::syslog::parse(line, ctx)
            && event.contains("cef.version")
        {
            return Ok(event);
        }
    }
    let mut event = Event::new(ctx.received);
    if !enrich(&mut event, &line[start..]) {
        return Err(LineError::CefHeader);
    }
    event.insert(field::VIGIL_PARSER, Parser::Cef);
    Ok(event)
}

/// Reads a CEF body (starting at `CEF:`) into `event`. Returns false if it is not CEF.
pub fn enrich(event: &mut Event, cef: &str) -> bool {
    let Some(body) = cef.strip_prefix("CEF:") else {
        return false;
    };
    let mut fields = Vec::with_capacity(8);
    let mut current = String::new();
    let mut chars = body.char_indices();
    let mut ext_start = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, n)) if n == '|' || n == '\\' => current.push(n),
                Some((_, n)) => {
                    current.push('\\');
                    current.push(n);
                }
                None => current.push('\\'),
            },
            '|' => {
                fields.push(std::mem::take(&mut current));
                if fields.len() == 7 {
                    ext_start = Some(i + 1);
                    break;
                }
            }
            _ => current.push(c),
        }
    }
    let Some(ext_start) = ext_start else {
        return false;
    };
    let names = [
        "cef.version",
        "observer.vendor",
        "observer.product",
        "observer.version",
        "event.code",
        "cef.name",
        "cef.severity",
    ];
    for (name, value) in names.iter().zip(&fields) {
        event.insert(*name, value.as_str());
    }
    event.insert("message", fields[5].as_str());
    if let Some(sev) = cef_severity(&fields[6]) {
        event.insert("event.severity", sev);
    }
    let ext = parse_extension(&body[ext_start..]);
    let label = |key: &str| {
        ext.iter()
            .find(|(k, _)| k == &format!("{key}Label"))
            .map(|(_, v)| v.clone())
    };
    for (key, value) in &ext {
        event.insert(format!("cef.extensions.{key}"), value.as_str());
        if let Some(target) = ecs_name(key) {
            set_typed(event, target, value);
        }
        if key.starts_with("cs")
            && !key.ends_with("Label")
            && let Some(l) = label(key)
        {
            event.insert(format!("cef.labels.{l}"), value.as_str());
        }
        if key == "rt"
            && let Some(t) = parse_rt(value)
        {
            event.set_timestamp(t);
        }
    }
    event.insert(field::EVENT_KIND, EventKind::Event);
    true
}

fn cef_severity(s: &str) -> Option<i64> {
    if let Ok(n) = s.trim().parse::<i64>() {
        return Some(n);
    }
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "unknown" => 0,
        "low" => 3,
        "medium" => 6,
        "high" => 8,
        "very-high" | "very high" => 10,
        _ => return None,
    })
}

fn parse_rt(value: &str) -> Option<Timestamp> {
    if let Ok(ms) = value.parse::<i64>() {
        return Some(Timestamp::from_millis(ms));
    }
    Timestamp::parse(value).ok()
}

fn ecs_name(key: &str) -> Option<&'static str> {
    Some(match key {
        "src" => "source.ip",
        "dst" => "destination.ip",
        "spt" => "source.port",
        "dpt" => "destination.port",
        "shost" => "source.domain",
        "dhost" => "destination.domain",
        "smac" => "source.mac",
        "dmac" => "destination.mac",
        "suser" => "source.user.name",
        "duser" => "destination.user.name",
        "act" => "event.action",
        "msg" => "message",
        "request" => "url.original",
        "requestMethod" => "http.request.method",
        "requestClientApplication" => "user_agent.original",
        "app" => "network.protocol",
        "proto" => "network.transport",
        "outcome" => "event.outcome",
        "cat" => "event.category_name",
        "fname" => "file.name",
        "filePath" => "file.path",
        "fsize" => "file.size",
        "in" => "source.bytes",
        "out" => "destination.bytes",
        "dvc" => "observer.ip",
        "dvchost" => "observer.hostname",
        "sproc" => "process.name",
        "spid" => "process.pid",
        _ => return None,
    })
}

fn set_typed(event: &mut Event, target: &str, value: &str) {
    if target.ends_with(".ip") {
        if let Ok(ip) = value.parse::<IpAddr>() {
            event.insert(target, Value::Ip(ip));
        }
        return;
    }
    if target.ends_with(".port")
        || target.ends_with(".bytes")
        || target.ends_with(".pid")
        || target == "file.size"
    {
        if let Ok(n) = value.parse::<i64>() {
            event.insert(target, n);
        }
        return;
    }
    event.insert(target, value);
}

/// Splits `k1=v1 k2=v with spaces k3=v3` into pairs, unescaping values.
fn parse_extension(ext: &str) -> Vec<(String, String)> {
    // Find the start of every `key=` (a key is [A-Za-z0-9_.-\[\]]+ preceded by start or space,
    // followed by an unescaped '=').
    let bytes = ext.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if (i == 0 || bytes[i - 1] == b' ') && is_key_byte(bytes[i]) {
            let mut j = i;
            while j < bytes.len() && is_key_byte(bytes[j]) {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == b'=' && (j == 0 || bytes[j - 1] != b'\\') {
                starts.push((i, j));
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    let mut pairs = Vec::with_capacity(starts.len());
    for (n, (key_start, eq)) in starts.iter().enumerate() {
        let value_end = starts.get(n + 1).map_or(ext.len(), |(next, _)| *next);
        let raw = ext[eq + 1..value_end].trim_end_matches(' ');
        pairs.push((ext[*key_start..*eq].to_owned(), unescape_value(raw)));
    }
    pairs
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'[' | b']')
}

fn unescape_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('=') => out.push('='),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cef_header_and_extension() {
        let ctx = ParseContext::new(Timestamp::from_secs(0), "t");
        let e = parse(
            r"CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232 suser=alice msg=Detected a threat. No action needed cs1Label=Policy cs1=Block all act=blocked request=http://x/a\=b",
            &ctx,
        )
        .unwrap();
        assert_eq!(e.get_str("observer.vendor"), Some("Security"));
        assert_eq!(e.get_str("event.code"), Some("100"));
        assert_eq!(e.get("event.severity").and_then(Value::as_i64), Some(10));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "10.0.0.1");
        assert_eq!(e.get("source.port").and_then(Value::as_i64), Some(1232));
        assert_eq!(e.get_str("source.user.name"), Some("alice"));
        assert_eq!(
            e.get_str("message"),
            Some("Detected a threat. No action needed")
        );
        assert_eq!(e.get_str("cef.labels.Policy"), Some("Block all"));
        assert_eq!(e.get_str("event.action"), Some("blocked"));
        assert_eq!(e.get_str("url.original"), Some("http://x/a=b"));
    }

    #[test]
    fn escaped_pipes_and_syslog_wrapper() {
        let ctx = ParseContext::new(Timestamp::from_secs(1_800_000_000), "t");
        let e = parse(
            r"<134>Nov 22 10:00:00 fw01 CEF:0|Vendor\|X|Prod|2|sig|Name|Low|src=192.0.2.1",
            &ctx,
        )
        .unwrap();
        assert_eq!(e.get_str("observer.vendor"), Some("Vendor|X"));
        assert_eq!(e.get_str("host.name"), Some("fw01"));
        assert_eq!(e.get("event.severity").and_then(Value::as_i64), Some(3));
        assert!(parse("CEF:0|only|three", &ctx).is_err());
    }
}
