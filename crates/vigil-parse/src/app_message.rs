//! Structured messages from applications: a message that is itself a JSON object, or that
//! carries `key=value` pairs (`login failed user=alice src=203.0.113.5`), as applications write
//! them through syslog (Python's `SysLogHandler`, `logger`, journald forwarding) or Python's
//! `HTTPHandler`.
//!
//! [`enrich`] adds the fields such a message carries to the event of the line that carried it,
//! **never replacing** a field the line's own format already set (the syslog header's host,
//! time, program; a field an auth parser read). A JSON message is read by the JSON parser
//! ([`crate::json::parse`]): ECS names pass through and OWASP vocabulary events are classified,
//! exactly as the same object sent over HTTP. `key=value` pairs become fields under their own
//! names, except a few spellings applications use for ECS fields (`user`, `src`, `action`, …,
//! see [`ALIASES`]); an OWASP vocabulary name in `event.action` is classified. Bare words and
//! flags are not fields. Names Vigil reserves (`vigil.*`) land under `external.` like
//! everywhere else.
//!
//! Bounded: at most [`MAX_PAIRS`] pairs are read from a message, keys longer than
//! [`MAX_KEY_LEN`] bytes are skipped, and a JSON message over [`MAX_JSON_LEN`] bytes is left as
//! text.

use vigil_event::{Event, Value, field, is_ip_key};

use crate::ParseContext;

/// The most `key=value` pairs read from one message.
pub const MAX_PAIRS: usize = 64;
/// The longest key read from a message, in bytes.
pub const MAX_KEY_LEN: usize = 64;
/// The longest message read as JSON, in bytes.
pub const MAX_JSON_LEN: usize = 64 * 1024;
/// How much of a message is read for `key=value` pairs, in bytes.
pub const MAX_PAIRS_SCAN: usize = 8 * 1024;

/// Spellings applications use for ECS fields in `key=value` messages, and the field each
/// becomes. Keys are matched without regard to case.
pub const ALIASES: &[(&str, &str)] = &[
    ("user", "user.name"),
    ("username", "user.name"),
    ("user_name", "user.name"),
    ("usr", "user.name"),
    ("src", "source.ip"),
    ("src_ip", "source.ip"),
    ("source_ip", "source.ip"),
    ("client_ip", "source.ip"),
    ("remote_addr", "source.ip"),
    ("action", "event.action"),
    ("event", "event.action"),
    ("outcome", "event.outcome"),
    ("result", "event.outcome"),
    ("msg", "message"),
];

/// Adds the fields of a structured `message` to `event` (see the module documentation). Does
/// nothing for a message that is neither a JSON object nor carries a `key=value` pair.
pub fn enrich(event: &mut Event, message: &str, ctx: &ParseContext) {
    let trimmed = message.trim();
    if trimmed.starts_with('{') && trimmed.ends_with('}') {
        if trimmed.len() <= MAX_JSON_LEN {
            enrich_json(event, trimmed, ctx);
        }
        return;
    }
    if memchr::memchr(b'=', trimmed.as_bytes()).is_some() {
        enrich_pairs(event, trimmed);
    }
}

fn enrich_json(event: &mut Event, message: &str, ctx: &ParseContext) {
    let Ok(inner) = crate::json::parse(message, ctx) else {
        return;
    };
    for (key, value) in inner.fields() {
        if key == field::VIGIL_PARSER || key == "tags" || event.contains(key) {
            continue;
        }
        event.insert(key, value.clone());
    }
    if inner.has_tag(vigil_event::tag::RESERVED_CLAIM) {
        event.add_tag(vigil_event::tag::RESERVED_CLAIM);
    }
}

fn enrich_pairs(event: &mut Event, message: &str) {
    // Only the head of a message is read: the pairs of a log line come early, and the scan
    // (which allocates per word) stays bounded whatever a sender writes.
    let mut end = message.len().min(MAX_PAIRS_SCAN);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let head = &message[..end];
    let head = match head.rfind(' ') {
        Some(space) if end < message.len() => &head[..space],
        _ => head,
    };
    let Ok(pairs) = crate::logfmt::pairs(head) else {
        return;
    };
    insert_pairs(event, pairs.into_iter().filter_map(|(k, v)| Some((k, v?))));
}

/// Adds `key=value` pairs read from an application's message (or a Python log record's extra
/// attributes) to `event`: keys in [`ALIASES`] under their ECS names, others as they are, none
/// replacing a field the event has, names Vigil reserves under `external.`, at most
/// [`MAX_PAIRS`] valid pairs; an OWASP vocabulary name in `event.action` is classified.
pub fn insert_pairs(event: &mut Event, pairs: impl Iterator<Item = (String, String)>) {
    let mut added_action = false;
    for (key, value) in pairs.filter(|(k, _)| valid_key(k)).take(MAX_PAIRS) {
        // `user=<alice>,` in prose-like lines (Dovecot, Postfix): the punctuation is not the
        // value.
        let value = value
            .trim_matches(|c: char| {
                matches!(
                    c,
                    ',' | ';' | '<' | '>' | '"' | '\'' | '(' | ')' | '[' | ']'
                )
            })
            .to_owned();
        let lower = key.to_ascii_lowercase();
        let name = ALIASES
            .iter()
            .find(|(alias, _)| *alias == lower)
            .map_or(key.as_str(), |(_, ecs)| ecs);
        if value.is_empty() {
            continue;
        }
        // A name only Vigil may write is kept under `external.`, and the claim is tagged.
        let (stored, claimed) = crate::reserved::quarantined_name(name, &Value::Str(value.clone()));
        if claimed {
            event.add_tag(vigil_event::tag::RESERVED_CLAIM);
            if !event.contains(&stored) {
                event.insert(stored, value);
            }
            continue;
        }
        if event.contains(name) {
            continue;
        }
        let value = match name {
            "event.outcome" => match value.to_ascii_lowercase().as_str() {
                "success" | "succeeded" | "ok" => Value::from("success"),
                "failure" | "failed" | "fail" | "error" => Value::from("failure"),
                _ => continue,
            },
            n if is_ip_key(n) => match value.parse() {
                Ok(ip) => Value::Ip(ip),
                Err(_) if n == "source.ip" => continue,
                Err(_) => Value::Str(value),
            },
            _ => Value::Str(value),
        };
        added_action |= name == field::EVENT_ACTION;
        event.insert(name.to_owned(), value);
    }
    if added_action {
        crate::json::classify_owasp(event);
    }
}

/// Whether `key` may be stored as a field name read from a device's or an application's
/// `key=value` text (letters first; letters, digits, `_ . - @`; no empty segment; bounded).
pub fn valid_field_name(key: &str) -> bool {
    valid_key(key)
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.as_bytes()[0].is_ascii_alphabetic()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'@'))
        && !key.ends_with('.')
        && !key.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::Timestamp;

    fn ctx() -> ParseContext {
        ParseContext::new(Timestamp::parse("2026-12-07T10:00:00Z").unwrap(), "t")
    }

    fn event_with(message: &str) -> Event {
        let mut event = Event::new(Timestamp::from_secs(0));
        event.insert("message", message);
        event.insert("host.name", "web1");
        enrich(&mut event, message, &ctx());
        event
    }

    #[test]
    fn key_value_pairs_become_fields_and_aliases_ecs_names() {
        let e = event_with(
            r#"login failed user=alice src=203.0.113.5 action=authn_login_fail:alice reason="bad password" tries=3"#,
        );
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert_eq!(
            e.get("source.ip"),
            Some(&Value::Ip("203.0.113.5".parse().unwrap()))
        );
        assert_eq!(e.get_str("event.action"), Some("authn_login_fail"));
        assert_eq!(e.get_str("event.category"), Some("authentication"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("reason"), Some("bad password"));
        assert_eq!(e.get_str("tries"), Some("3"));
        // Bare words are not fields.
        assert!(!e.contains("login") && !e.contains("failed"));
    }

    #[test]
    fn a_message_never_replaces_what_the_line_said() {
        let e = event_with("host.name=evil user=bob");
        assert_eq!(e.get_str("host.name"), Some("web1"));
        assert_eq!(e.get_str("user.name"), Some("bob"));
    }

    #[test]
    fn reserved_names_are_quarantined_and_tagged() {
        let e = event_with("vigil.seq=1 vigil.source=vigil event.dataset=vigil.audit user=bob");
        assert!(!e.contains("vigil.seq"));
        assert!(!e.contains("vigil.source"));
        assert_eq!(e.get_str("external.vigil.seq"), Some("1"));
        assert_eq!(e.get_str("external.vigil.source"), Some("vigil"));
        assert_eq!(e.get_str("external.event.dataset"), Some("vigil.audit"));
        assert!(e.has_tag(vigil_event::tag::RESERVED_CLAIM));
        let e = event_with(r#"{"vigil.source":"vigil","x":1}"#);
        assert_eq!(e.get_str("external.vigil.source"), Some("vigil"));
        assert!(e.has_tag(vigil_event::tag::RESERVED_CLAIM));
    }

    #[test]
    fn prose_lines_give_clean_values_and_no_guessed_addresses() {
        let e = event_with(
            "imap-login: Login: user=<alice>, method=PLAIN, rip=203.0.113.5, lip=10.0.0.1, ip=10.0.0.2",
        );
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert_eq!(e.get_str("method"), Some("PLAIN"));
        assert!(
            !e.contains("source.ip"),
            "`ip=` may be the host's own address"
        );
        // Only the head of a long message is read.
        let long = format!("{} user=late", "word ".repeat(MAX_PAIRS_SCAN / 5 + 10));
        assert!(!event_with(&long).contains("user.name"));
    }

    #[test]
    fn a_json_message_is_read_as_the_json_parser_reads_it() {
        let e = event_with(
            r#"{"event":"authn_login_fail:carol","source_ip":"198.51.100.7","message":"nope"}"#,
        );
        assert_eq!(e.get_str("event.action"), Some("authn_login_fail"));
        assert_eq!(e.get_str("user.name"), Some("carol"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(
            e.get("source.ip"),
            Some(&Value::Ip("198.51.100.7".parse().unwrap()))
        );
        // `message` was the line's: it stays.
        assert!(e.get_str("message").unwrap().starts_with('{'));
    }

    #[test]
    fn hostile_messages_are_bounded_and_never_panic() {
        let many: String = (0..10_000).map(|i| format!("k{i}=v ")).collect();
        let e = event_with(&many);
        assert_eq!(
            e.fields().filter(|(k, _)| k.starts_with('k')).count(),
            MAX_PAIRS
        );
        let long_key = format!("{}=v", "a".repeat(MAX_KEY_LEN + 1));
        assert_eq!(event_with(&long_key).len(), 2);
        let deep = format!(
            "{}{}",
            "{\"a\":".repeat(100_000),
            "1".to_owned() + &"}".repeat(100_000)
        );
        let e = event_with(&deep);
        assert_eq!(e.len(), 2, "too long to be read as JSON");
        let deep = format!("{}1{}", "[".repeat(20_000), "]".repeat(20_000));
        let e = event_with(&format!("{{\"a\":{deep}}}"));
        assert_eq!(e.len(), 2, "deeper than the JSON parser reads");
        for odd in [
            "=",
            "==",
            "a=",
            "=b",
            "a=\"unterminated",
            "1a=2",
            "a..b=1",
            "a.=1",
        ] {
            let e = event_with(odd);
            assert_eq!(e.len(), 2, "{odd}: {e:?}");
        }
        assert!(!event_with("src=not-an-ip").contains("source.ip"));
        let e = event_with("outcome=maybe result=ok");
        assert_eq!(e.get_str("event.outcome"), Some("success"));
    }
}
