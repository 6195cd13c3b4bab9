//! Python's stock `logging.handlers.HTTPHandler`: one `LogRecord` per request, its attributes
//! form-encoded (`application/x-www-form-urlencoded`, every value `str()`ed).
//!
//! [`log_record`] turns such a body into one event:
//!
//! | record attribute | field |
//! |---|---|
//! | `created` (epoch seconds) | the event time |
//! | `msg % args` (or `message`, when another handler formatted the record) | `message` |
//! | `levelname` | `log.level` (lower case) |
//! | `name` | `log.logger` |
//! | `pathname`, `lineno`, `funcName` | `log.origin.file.name`, `log.origin.file.line`, `log.origin.function` |
//! | `process`, `processName`, `thread`, `threadName` | `process.pid`, `process.name`, `process.thread.id`, `process.thread.name` |
//! | `exc_info` | `error.type`, `error.message` (the exception's class and `repr`) |
//! | `exc_text` (or `stack_info`), when a formatter filled it | `error.stack_trace` |
//! | attributes the application added with `extra=` | as [`crate::app_message::insert_pairs`] adds them (`user` → `user.name`, …) |
//!
//! The message itself is then read by [`crate::app_message::enrich`] (a JSON object or
//! `key=value` pairs). `args` is the `repr` of a tuple: [`format_message`] applies it to `msg`
//! for the conversions `%s %r %d %i %%` when every argument is a plain literal; otherwise the
//! message is `msg` unformatted and `args` is kept in `python.args`.
//!
//! The event goes through the JSON parser's path (`crate::parse_line` with
//! [`crate::Format::Json`]), so masking, reserved names and the OWASP vocabulary apply exactly
//! as to JSON; `event.original` is that JSON rendering. Bounded: at most [`MAX_ATTRIBUTES`]
//! attributes are read, and `args` over [`MAX_ARGS_LEN`] bytes is not parsed.

use serde_json::{Map, Value as Json};
use vigil_event::Event;

use crate::{Format, ParseContext};

/// The most record attributes read from one body.
pub const MAX_ATTRIBUTES: usize = 256;
/// The longest `args` parsed, in bytes.
pub const MAX_ARGS_LEN: usize = 16 * 1024;
/// The most arguments applied to a message.
pub const MAX_ARGS: usize = 64;

/// Attributes every `LogRecord` has; the others are the application's `extra=`.
const STANDARD: &[&str] = &[
    "name",
    "msg",
    "args",
    "levelname",
    "levelno",
    "pathname",
    "filename",
    "module",
    "exc_info",
    "exc_text",
    "stack_info",
    "lineno",
    "funcName",
    "created",
    "msecs",
    "relativeCreated",
    "thread",
    "threadName",
    "processName",
    "process",
    "taskName",
    "message",
    "asctime",
];

/// Whether a body's `Content-Type` is a form (what `HTTPHandler` sends).
pub fn is_form(content_type: &str) -> bool {
    content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
}

/// Whether a form body is a `LogRecord` (it has `msg` and `levelname` or `created`, the
/// attributes every record has). A form body that is not — curl's `--data-binary` and
/// `urllib` send NDJSON with the form content type by default — is read as what it is.
pub fn looks_like_log_record(body: &[u8]) -> bool {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{' | b'[')) {
        return false;
    }
    let (mut msg, mut record) = (false, false);
    for (key, _) in form_urlencoded::parse(body).take(MAX_ATTRIBUTES) {
        match key.as_ref() {
            "msg" => msg = true,
            "levelname" | "created" => record = true,
            _ => {}
        }
    }
    msg && record
}

/// The event of one form-encoded `LogRecord` (see the module documentation).
pub fn log_record(body: &[u8], ctx: &ParseContext) -> Event {
    let attributes: Vec<(String, String)> = form_urlencoded::parse(body)
        .take(MAX_ATTRIBUTES)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |key: &str| {
        attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| *v != "None")
    };
    let mut object = Map::new();
    if let Some(created) = get("created").and_then(|c| c.parse::<f64>().ok())
        && let Ok(t) = vigil_event::Timestamp::from_epoch_number(created)
    {
        object.insert("@timestamp".into(), Json::String(t.to_rfc3339()));
    }
    let msg = get("msg").unwrap_or("");
    let (message, unapplied) = match (get("message"), get("args")) {
        (Some(formatted), _) => (formatted.to_owned(), None),
        (None, None) => (msg.to_owned(), None),
        (None, Some(args)) => match format_message(msg, args) {
            Some(m) => (m, None),
            None => (msg.to_owned(), Some(args)),
        },
    };
    object.insert("message".into(), Json::String(message.clone()));
    if let Some(args) = unapplied {
        object.insert("python.args".into(), Json::String(args.to_owned()));
    }
    let text = |key: &str| get(key).map(|v| Json::String(v.to_owned()));
    let number = |key: &str| get(key).and_then(|v| v.parse::<i64>().ok()).map(Json::from);
    let mapped: [(&str, Option<Json>); 9] = [
        (
            "log.level",
            get("levelname").map(|l| Json::String(l.to_ascii_lowercase())),
        ),
        ("log.logger", text("name")),
        ("log.origin.file.name", text("pathname")),
        ("log.origin.file.line", number("lineno")),
        ("log.origin.function", text("funcName")),
        ("process.pid", number("process")),
        ("process.name", text("processName")),
        ("process.thread.id", number("thread")),
        ("process.thread.name", text("threadName")),
    ];
    for (key, value) in mapped {
        if let Some(v) = value {
            object.insert(key.into(), v);
        }
    }
    if let Some(trace) = get("exc_text").or_else(|| get("stack_info")) {
        object.insert("error.stack_trace".into(), Json::String(trace.to_owned()));
    }
    if let Some((kind, text)) = get("exc_info").and_then(exception) {
        object.insert("error.type".into(), Json::String(kind.to_owned()));
        object.insert("error.message".into(), Json::String(text.to_owned()));
    }
    let line = Json::Object(object).to_string();
    let mut event = crate::parse_line(line.as_bytes(), Format::Json, ctx);
    // The application's `extra=` attributes, masked as a syslog line's `key=value` pairs are:
    // rendered as pairs, the text masked, then read back.
    let mut extra = String::new();
    for (key, value) in attributes.iter().filter(|(k, v)| {
        !STANDARD.contains(&k.as_str()) && v != "None" && !k.contains([' ', '=', '"'])
    }) {
        extra.push_str(key);
        extra.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => extra.push_str("\\\\"),
                '"' => extra.push_str("\\\""),
                '\n' => extra.push_str("\\n"),
                '\t' => extra.push_str("\\t"),
                c => extra.push(c),
            }
        }
        extra.push_str("\" ");
    }
    let mut counts = crate::redact::Redactions::default();
    let masked = ctx
        .redactor
        .as_ref()
        .and_then(|r| r.redact_raw(&extra, &mut counts));
    if let Ok(pairs) = crate::logfmt::pairs(masked.as_deref().unwrap_or(&extra)) {
        crate::app_message::insert_pairs(
            &mut event,
            pairs.into_iter().filter_map(|(k, v)| Some((k, v?))),
        );
    }
    // The message as stored (masked), not as sent.
    if let Some(masked_message) = event.get_str("message").map(str::to_owned) {
        crate::app_message::enrich(&mut event, &masked_message, ctx);
    }
    // What the record's extras and message added is masked like the rest of the event.
    if let Some(redactor) = &ctx.redactor {
        redactor.redact_event(&mut event);
    }
    event
}

/// The class and the `repr` of the exception in an `exc_info` as `str()` renders it:
/// `(<class 'ZeroDivisionError'>, ZeroDivisionError('division by zero'), <traceback object at
/// 0x…>)`.
fn exception(exc_info: &str) -> Option<(&str, &str)> {
    let rest = exc_info.strip_prefix("(<class '")?;
    let (kind, rest) = rest.split_once("'>, ")?;
    let end = rest.rfind(", <traceback object")?;
    Some((kind, &rest[..end]))
}

/// `msg % args` for a `args` that is the `repr` of a tuple (or of one dict, for `%(name)s`
/// conversions) of plain literals — strings, numbers, `None`, `True`, `False` — with the
/// conversions `%s`, `%r`, `%d`, `%i` and `%%`; `None` for anything else (the caller keeps
/// `msg` as it is).
pub fn format_message(msg: &str, args: &str) -> Option<String> {
    if args.len() > MAX_ARGS_LEN {
        return None;
    }
    let args = args.trim();
    if args == "()" {
        return Some(msg.to_owned());
    }
    let (named, items) =
        if let Some(inner) = args.strip_prefix('{').and_then(|a| a.strip_suffix('}')) {
            (true, literals(inner, true)?)
        } else {
            let inner = args.strip_prefix('(')?.strip_suffix(')')?;
            (false, literals(inner, false)?)
        };
    let mut out = String::with_capacity(msg.len() + 32);
    let mut next = 0;
    let mut rest = msg;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(r) = after.strip_prefix('%') {
            out.push('%');
            rest = r;
            continue;
        }
        let (literal, after) = if named {
            let r = after.strip_prefix('(')?;
            let close = r.find(')')?;
            let key = &r[..close];
            let item = items.iter().find(|l| l.key.as_deref() == Some(key))?;
            (item, &r[close + 1..])
        } else {
            let item = items.get(next)?;
            next += 1;
            (item, after)
        };
        let conversion = after.chars().next()?;
        match conversion {
            's' => out.push_str(&literal.text),
            'r' => out.push_str(&literal.repr),
            'd' | 'i' => out.push_str(&literal.integer()?),
            _ => return None,
        }
        rest = &after[1..];
    }
    out.push_str(rest);
    (named || next == items.len()).then_some(out)
}

/// One Python literal of an `args` repr.
#[derive(Debug)]
struct Literal {
    /// Its key, in a dict.
    key: Option<String>,
    /// Its `str()`.
    text: String,
    /// Its `repr()`, as written.
    repr: String,
    /// Whether it is a number (or a bool).
    numeric: bool,
}

impl Literal {
    fn integer(&self) -> Option<String> {
        if !self.numeric {
            return None;
        }
        match self.text.as_str() {
            "True" => Some("1".into()),
            "False" => Some("0".into()),
            t if t.parse::<i128>().is_ok() => Some(t.to_owned()),
            t => t
                .parse::<f64>()
                .ok()
                .map(|f| format!("{}", f.trunc() as i128)),
        }
    }
}

/// The comma-separated literals of a tuple's or dict's inside.
fn literals(inner: &str, dict: bool) -> Option<Vec<Literal>> {
    let mut out = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        if out.len() >= MAX_ARGS {
            return None;
        }
        let key = if dict {
            let (k, r) = literal(rest)?;
            let r = r.trim_start().strip_prefix(':')?.trim_start();
            rest = r;
            Some(k.text)
        } else {
            None
        };
        let (mut item, r) = literal(rest)?;
        item.key = key;
        out.push(item);
        rest = r.trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => break,
            None => return None,
        }
    }
    Some(out)
}

/// One literal at the start of `s`, and what follows it.
fn literal(s: &str) -> Option<(Literal, &str)> {
    let first = s.chars().next()?;
    if first == '\'' || first == '"' {
        let mut text = String::new();
        let mut chars = s.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    let (_, e) = chars.next()?;
                    match e {
                        'n' => text.push('\n'),
                        't' => text.push('\t'),
                        'r' => text.push('\r'),
                        '\\' | '\'' | '"' => text.push(e),
                        'x' | 'u' | 'U' => {
                            let width = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let mut code = 0u32;
                            for _ in 0..width {
                                code = code * 16 + chars.next()?.1.to_digit(16)?;
                            }
                            text.push(char::from_u32(code)?);
                        }
                        _ => return None,
                    }
                }
                c if c == first => {
                    let end = i + 1;
                    let literal = Literal {
                        key: None,
                        text,
                        repr: s[..end].to_owned(),
                        numeric: false,
                    };
                    return Some((literal, &s[end..]));
                }
                c => text.push(c),
            }
        }
        return None;
    }
    let end = s.find([',', ':', ')', '}']).unwrap_or(s.len());
    let word = s[..end].trim();
    let numeric = match word {
        "True" | "False" => true,
        "None" => false,
        w if w.parse::<i128>().is_ok() || w.parse::<f64>().is_ok_and(f64::is_finite) => true,
        _ => return None,
    };
    let literal = Literal {
        key: None,
        text: word.to_owned(),
        repr: word.to_owned(),
        numeric,
    };
    Some((literal, &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::{Timestamp, Value};

    fn ctx() -> ParseContext {
        ParseContext::new(Timestamp::parse("2026-12-07T10:00:00Z").unwrap(), "t")
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes()
    }

    #[test]
    fn a_stock_http_handler_record_becomes_an_ecs_event() {
        let body = form(&[
            ("name", "shop.auth"),
            ("msg", "login failed for %s from %s (%d tries)"),
            ("args", "('alice', '203.0.113.5', 3)"),
            ("levelname", "WARNING"),
            ("levelno", "30"),
            ("pathname", "/srv/shop/auth.py"),
            ("lineno", "42"),
            ("funcName", "login"),
            ("created", "1796637600.25"),
            ("process", "4242"),
            ("processName", "MainProcess"),
            ("thread", "1401"),
            ("threadName", "MainThread"),
            ("exc_info", "None"),
            ("exc_text", "None"),
            ("user", "alice"),
            ("src_ip", "203.0.113.5"),
            ("action", "authn_login_fail"),
        ]);
        let e = log_record(&body, &ctx());
        assert_eq!(
            e.get_str("message"),
            Some("login failed for alice from 203.0.113.5 (3 tries)")
        );
        assert_eq!(
            e.timestamp(),
            Timestamp::from_epoch_number(1_796_637_600.25).unwrap()
        );
        assert_eq!(e.get_str("log.level"), Some("warning"));
        assert_eq!(e.get_str("log.logger"), Some("shop.auth"));
        assert_eq!(e.get("log.origin.file.line"), Some(&Value::Int(42)));
        assert_eq!(e.get("process.pid"), Some(&Value::Int(4242)));
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert_eq!(
            e.get("source.ip"),
            Some(&Value::Ip("203.0.113.5".parse().unwrap()))
        );
        assert_eq!(e.get_str("event.category"), Some("authentication"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert!(!e.contains("error.stack_trace"), "None is no trace");
        let body = form(&[
            ("msg", "crash"),
            (
                "exc_info",
                "(<class 'ZeroDivisionError'>, ZeroDivisionError('division by zero'), <traceback object at 0x7f>)",
            ),
        ]);
        let e = log_record(&body, &ctx());
        assert_eq!(e.get_str("error.type"), Some("ZeroDivisionError"));
        assert_eq!(
            e.get_str("error.message"),
            Some("ZeroDivisionError('division by zero')")
        );
        assert!(!e.has_tag(vigil_event::tag::PARSE_ERROR));
    }

    #[test]
    fn args_are_applied_the_python_way_or_kept() {
        assert_eq!(format_message("a %s b", "('x',)").as_deref(), Some("a x b"));
        assert_eq!(
            format_message("%r %s", "('it\\'s', None)").as_deref(),
            Some("'it\\'s' None")
        );
        assert_eq!(
            format_message("100%% %d", "(7.9,)").as_deref(),
            Some("100% 7")
        );
        assert_eq!(
            format_message(
                "%(user)s from %(ip)s",
                "{'user': 'bob', 'ip': '198.51.100.1'}"
            )
            .as_deref(),
            Some("bob from 198.51.100.1")
        );
        assert_eq!(
            format_message("\\u00e9 %s", "('\\xe9\\u00e9',)").as_deref(),
            Some("\\u00e9 éé")
        );
        // Not a plain literal, a width, too few or too many arguments: not applied.
        for (msg, args) in [
            ("%s", "(<object at 0x1>,)"),
            ("%5d", "(1,)"),
            ("%s %s", "('a',)"),
            ("%s", "('a', 'b')"),
            ("%d", "('a',)"),
            ("%s", "('unterminated,)"),
            ("%s", "['a']"),
        ] {
            assert_eq!(format_message(msg, args), None, "{msg} % {args}");
        }
        let body = form(&[("msg", "%s x"), ("args", "(<object>,)")]);
        let e = log_record(&body, &ctx());
        assert_eq!(e.get_str("message"), Some("%s x"));
        assert_eq!(e.get_str("python.args"), Some("(<object>,)"));
    }

    #[test]
    fn a_record_cannot_claim_vigil_names_or_escape_masking() {
        let body = form(&[
            (
                "msg",
                "user=bob password=hunter2secret auth_token=tok3nInMessage",
            ),
            ("args", "()"),
            ("vigil.source", "vigil"),
            ("event.dataset", "vigil.audit"),
            ("token", "x"),
            ("auth_token", "tok3nInExtra"),
            ("api-key", "k3yInExtra"),
            ("note", "see password=pw1nNote and \"quotes\""),
        ]);
        let mut ctx = ctx();
        ctx.redactor = Some(std::sync::Arc::new(
            crate::redact::Redactor::new(&[]).unwrap(),
        ));
        let e = log_record(&body, &ctx);
        assert_eq!(e.get_str("external.vigil.source"), Some("vigil"));
        assert_eq!(e.get_str("external.event.dataset"), Some("vigil.audit"));
        assert!(e.has_tag(vigil_event::tag::RESERVED_CLAIM));
        let text = e.to_json().to_string();
        for secret in [
            "hunter2secret",
            "tok3nInMessage",
            "tok3nInExtra",
            "k3yInExtra",
            "pw1nNote",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(e.get_str("user.name"), Some("bob"));
    }

    #[test]
    fn only_log_records_are_read_as_log_records() {
        assert!(looks_like_log_record(&form(&[
            ("msg", "x"),
            ("levelname", "INFO")
        ])));
        assert!(looks_like_log_record(&form(&[
            ("created", "1.5"),
            ("msg", "x")
        ])));
        // NDJSON sent with curl's default content type, and other forms, are not.
        assert!(!looks_like_log_record(
            b"{\"message\":\"a\"}\n{\"message\":\"b\"}\n"
        ));
        assert!(!looks_like_log_record(b"[{\"msg\":1,\"levelname\":2}]"));
        assert!(!looks_like_log_record(b"login failed user=alice"));
        assert!(!looks_like_log_record(&form(&[("msg", "x")])));
    }

    #[test]
    fn hostile_bodies_are_bounded() {
        let many: Vec<(String, String)> =
            (0..10_000).map(|i| (format!("k{i}"), "v".into())).collect();
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&many)
            .finish();
        let e = log_record(body.as_bytes(), &ctx());
        assert!(e.len() < 300, "{}", e.len());
        let args = format!("({})", "'a', ".repeat(10_000));
        assert_eq!(format_message(&"%s".repeat(10_000), &args), None);
        let e = log_record(b"%ff%fe=%00&&&==&msg=%zz", &ctx());
        assert!(e.get_str("message").is_some());
    }
}
