//! logfmt: `key=value key2="quoted value" flag`. Keys become fields as they are (dotted keys
//! nest); `time`/`ts`/`timestamp` set the event time, `msg` becomes `message`, `level` becomes
//! `log.level`. Values stay strings, except under IP-named keys.

use vigil_event::{Event, Parser, Timestamp, Value, field, is_ip_key};

use crate::{LineError, ParseContext};

/// Whether a line looks like logfmt: at least two `key=` pairs at the start of words.
pub fn looks_like_logfmt(line: &str) -> bool {
    let mut n = 0;
    for word in line.split(' ').take(12) {
        if let Some((k, _)) = word.split_once('=')
            && !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'@'))
        {
            n += 1;
        }
    }
    n >= 2
}

/// Splits a logfmt line into pairs. Errors on an unterminated quote.
pub fn pairs(line: &str) -> Result<Vec<(String, Option<String>)>, LineError> {
    let mut out = Vec::new();
    let mut chars = line.char_indices().peekable();
    loop {
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key_end = line.len();
        let mut has_value = false;
        while let Some(&(i, c)) = chars.peek() {
            if c == '=' {
                key_end = i;
                has_value = true;
                chars.next();
                break;
            }
            if c.is_whitespace() {
                key_end = i;
                break;
            }
            chars.next();
        }
        let key = line[start..key_end].to_owned();
        if !has_value {
            out.push((key, None));
            continue;
        }
        let mut value = String::new();
        if chars.peek().is_some_and(|(_, c)| *c == '"') {
            chars.next();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(match n {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                        }
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    _ => value.push(c),
                }
            }
            if !closed {
                return Err(LineError::UnterminatedQuote { key });
            }
        } else {
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, Some(value)));
    }
    Ok(out)
}

/// Parses one logfmt line.
pub fn parse(line: &str, ctx: &ParseContext) -> Result<Event, LineError> {
    let pairs = pairs(line)?;
    if !pairs.iter().any(|(_, v)| v.is_some()) {
        return Err(LineError::NoPairs);
    }
    let mut event = Event::new(ctx.received);
    for (key, value) in pairs {
        let Some(value) = value else {
            event.insert(key, true);
            continue;
        };
        match key.as_str() {
            "time" | "ts" | "timestamp" | "@timestamp" => match Timestamp::parse(&value) {
                Ok(t) => event.set_timestamp(t),
                Err(_) => event.insert(key, value),
            },
            "msg" | "message" => event.insert("message", value),
            "level" | "lvl" => event.insert("log.level", value),
            // What only the parser writes: the raw line and the tags (a sender's
            // `tags=parse_error` or `event.original=…` would forge them).
            "tags" | "event.original" => event.insert(format!("external.{key}"), value),
            k if is_ip_key(k) => match value.parse() {
                Ok(ip) => event.insert(key, Value::Ip(ip)),
                Err(_) => event.insert(key, value),
            },
            _ => event.insert(key, value),
        }
    }
    crate::reserved::quarantine(&mut event);
    event.insert(field::VIGIL_PARSER, Parser::Logfmt);
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_line() {
        let ctx = ParseContext::new(Timestamp::from_secs(0), "t");
        let e = parse(r#"time=2026-11-22T10:00:00Z level=warn msg="login failed for \"bob\"" user.name=bob source.ip=203.0.113.4 retry"#, &ctx).unwrap();
        assert_eq!(e.timestamp().to_rfc3339(), "2026-11-22T10:00:00Z");
        assert_eq!(e.get_str("log.level"), Some("warn"));
        assert_eq!(e.get_str("message"), Some("login failed for \"bob\""));
        assert_eq!(e.get_str("user.name"), Some("bob"));
        assert!(matches!(e.get("source.ip"), Some(Value::Ip(_))));
        assert_eq!(e.get("retry"), Some(&Value::Bool(true)));
        assert!(parse(r#"a="unterminated"#, &ctx).is_err());
    }
}
