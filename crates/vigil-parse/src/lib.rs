//! # vigil-parse: bytes in, ECS events out
//!
//! Pure functions, no I/O: every listener and `vigil import` hand a line (or datagram) and a
//! [`ParseContext`] to [`parse_line`] and get an [`Event`] back. Parsing never fails: a line that
//! does not parse in the requested format is kept whole, tagged `parse_error`, with the reason in
//! `error.message`, so nothing is ever lost.
//!
//! * [`Format::Auto`] detects the format per line ([`detect`]): JSON object, CEF, RFC 5424 or
//!   RFC 3164 syslog, combined/common access log, logfmt, else plain text;
//! * syslog messages are then read by program: sshd, sudo, su, PAM, useradd and friends become
//!   ECS authentication, session, process and IAM events ([`linux`]);
//! * JSON keeps ECS fields as they are and maps OWASP logging-vocabulary `event.action`s to
//!   `event.category`/`event.type`/`event.outcome` ([`json`]);
//! * every event keeps the raw text in `event.original` unless the context says otherwise;
//! * [`redact`] then masks secrets in every string field before the event goes anywhere.
//!
//! ```
//! use vigil_event::Timestamp;
//! use vigil_parse::{Format, ParseContext, parse_line};
//!
//! let ctx = ParseContext::new(Timestamp::parse("2026-11-22T10:00:00Z").unwrap(), "test");
//! let e = parse_line(
//!     b"<38>Nov 22 09:59:58 bastion sshd[4242]: Failed password for invalid user admin from 203.0.113.5 port 51234 ssh2",
//!     Format::Auto,
//!     &ctx,
//! );
//! assert_eq!(e.get_str("event.outcome"), Some("failure"));
//! assert_eq!(e.get_str("user.name"), Some("admin"));
//! assert_eq!(e.get("source.ip").unwrap().to_string(), "203.0.113.5");
//! assert_eq!(e.get_str("host.name"), Some("bastion"));
//! ```
#![deny(missing_docs)]

pub mod access;
pub mod app_message;
pub mod cef;
pub mod cisco_ios;
mod clean;
pub mod cloud;
#[cfg(test)]
mod differential;
mod error;
pub mod evtx;
pub mod framing;
pub mod json;
pub mod kv_firewall;
pub mod linux;
pub mod logfmt;
pub mod network;
pub mod python_logging;
pub mod redact;
pub mod reserved;
mod sshd_fast;
pub mod syslog;
mod syslog_fast;
pub mod winlog;
pub mod zeek_json;
pub mod zeek_tsv;

use std::str::FromStr;

pub use error::LineError;
use vigil_event::{Event, FieldName, Parser, Timestamp, field, tag};

/// The formats Vigil reads line by line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Detect per line.
    Auto,
    /// RFC 5424 or RFC 3164 syslog (with or without priority).
    Syslog,
    /// Apache/nginx combined or common access log.
    Combined,
    /// A JSON object per line.
    Json,
    /// ArcSight Common Event Format, alone or inside syslog.
    Cef,
    /// `key=value key2="value 2"`.
    Logfmt,
    /// Apache error log (`[Sun Dec 04 04:47:44 2005] [error] …`).
    ApacheError,
    /// Plain text: the line becomes `message`.
    Raw,
}

impl Format {
    /// The name used in `--format`, `?format=` and `vigil.parser`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Syslog => "syslog",
            Format::Combined => "combined",
            Format::Json => "json",
            Format::Cef => "cef",
            Format::Logfmt => "logfmt",
            Format::ApacheError => "apache_error",
            Format::Raw => "raw",
        }
    }

    /// The parser that reads this format, named in `vigil.parser`. [`Format::Auto`] is
    /// resolved per line before parsing; alone it stands for [`Parser::Raw`].
    pub fn parser(self) -> Parser {
        match self {
            Format::Syslog => Parser::Syslog,
            Format::Combined => Parser::Combined,
            Format::Json => Parser::Json,
            Format::Cef => Parser::Cef,
            Format::Logfmt => Parser::Logfmt,
            Format::ApacheError => Parser::ApacheError,
            Format::Auto | Format::Raw => Parser::Raw,
        }
    }

    /// Every format, for help texts.
    pub const ALL: [Format; 8] = [
        Format::Auto,
        Format::Syslog,
        Format::Combined,
        Format::Json,
        Format::Cef,
        Format::Logfmt,
        Format::ApacheError,
        Format::Raw,
    ];
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        let lower = s.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "auto" | "" => Format::Auto,
            "syslog" | "rfc3164" | "rfc5424" => Format::Syslog,
            "combined" | "common" | "access" | "access_combined" | "apache" | "nginx" => {
                Format::Combined
            }
            "json" | "ndjson" | "ecs" => Format::Json,
            "cef" => Format::Cef,
            "logfmt" | "kv" => Format::Logfmt,
            "apache_error" | "error_log" => Format::ApacheError,
            "raw" | "text" | "plain" => Format::Raw,
            _ => {
                return Err(format!(
                    "unknown format {s:?}; expected one of auto, syslog, combined, json, cef, logfmt, apache_error, raw"
                ));
            }
        })
    }
}

/// What a parser needs to know besides the bytes.
#[derive(Debug, Clone)]
pub struct ParseContext {
    /// When Vigil received the data (`vigil.received`; the event time when the line has none).
    pub received: Timestamp,
    /// Reference time for inferring the year of RFC 3164 timestamps: the latest time the line
    /// can be from (the receive time for live data, the file's modification time for imports).
    pub reference: Timestamp,
    /// `vigil.source`: which listener, token or file.
    pub source: String,
    /// Keep the raw text in `event.original`.
    pub keep_original: bool,
    /// Address of the sender, when known (syslog over the network): fills `host.name` when the
    /// message names no host, and `log.source.address`.
    pub peer: Option<std::net::IpAddr>,
    /// Masks secrets in the raw text before parsing and in every field after (`None`: off).
    /// Kinds masked are listed in the event's `vigil.redacted`.
    pub redactor: Option<std::sync::Arc<redact::Redactor>>,
}

impl ParseContext {
    /// A context with `received` as reference time, keeping originals.
    pub fn new(received: Timestamp, source: impl Into<String>) -> ParseContext {
        ParseContext {
            received,
            reference: received,
            source: source.into(),
            keep_original: true,
            peer: None,
            redactor: Some(std::sync::Arc::new(redact::Redactor::default())),
        }
    }
}

/// Guesses the format of one line.
pub fn detect(line: &str) -> Format {
    let t = line.trim_start();
    if t.starts_with('{') {
        return Format::Json;
    }
    if t.starts_with("CEF:") || (t.starts_with('<') && t.contains("CEF:")) {
        return Format::Cef;
    }
    if t.starts_with('<')
        || syslog::looks_like_bsd_timestamp(t)
        || syslog::looks_like_rfc3339_syslog(t)
    {
        return Format::Syslog;
    }
    if access::looks_like_access_log(t) {
        return Format::Combined;
    }
    if access::looks_like_error_log(t) {
        return Format::ApacheError;
    }
    if logfmt::looks_like_logfmt(t) {
        return Format::Logfmt;
    }
    Format::Raw
}

/// Parses one line (without its line terminator) into an event. Never fails: unparseable input
/// becomes an event tagged `parse_error` holding the raw text.
pub fn parse_line(bytes: &[u8], format: Format, ctx: &ParseContext) -> Event {
    // Valid UTF-8 (nearly every line) is checked by the standard library's fast path.
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    };
    let line = text.trim_end_matches(['\r', '\n', '\0']);
    let mut counts = redact::Redactions::default();
    // Most lines hold nothing to mask: one scan proves it ([`clean`]), and then the fields
    // copied verbatim out of the line (recorded in `verbatim`) need no scan of their own.
    let scan_decides = ctx.redactor.as_ref().is_some_and(|r| r.scan_decides());
    let clean_before = scan_decides && clean::text_is_clean(line.as_bytes());
    let redacted_raw = match &ctx.redactor {
        Some(r) if !clean_before => r.redact_raw(line, &mut counts),
        _ => None,
    };
    let line = redacted_raw.as_deref().unwrap_or(line);
    let clean = clean_before
        || (scan_decides && redacted_raw.is_some() && clean::text_is_clean(line.as_bytes()));
    let mut verbatim = clean::Verbatim::default();
    let requested = format;
    let format = if format == Format::Auto {
        detect(line)
    } else {
        format
    };
    let parsed = match format {
        Format::Auto | Format::Raw => {
            let mut event = raw_event(line, ctx);
            verbatim.record(field::MESSAGE, line, line);
            // A network device's message that came without a syslog header (unless the
            // source said its lines are raw text).
            if requested == Format::Auto && network::looks_like_device_line(line) {
                network::enrich(&mut event, "", line);
            }
            Ok(event)
        }
        Format::Syslog => syslog::parse_recording(line, ctx, &mut verbatim),
        Format::Combined => access::parse(line, ctx),
        Format::Json => json::parse(line, ctx),
        Format::Cef => cef::parse(line, ctx),
        Format::Logfmt => match logfmt::parse(line, ctx) {
            Ok(mut event) => {
                if network::looks_like_device_line(line) {
                    // A device's `key=value` line is its reader's: the reader keeps every pair
                    // under the device's prefix and sets the ECS fields itself, typed. The
                    // line's keys do not land on ECS names as they are (a bare `source.ip`
                    // key would be an address field holding `true`).
                    let mut device = raw_event(line, ctx);
                    if network::enrich(&mut device, "", line) {
                        event = device;
                    } else {
                        network::enrich(&mut event, "", line);
                    }
                }
                Ok(event)
            }
            // A device's line cut short (an unterminated quote) is still the device's.
            Err(_) if requested == Format::Auto && network::looks_like_device_line(line) => {
                let mut event = raw_event(line, ctx);
                network::enrich(&mut event, "", line);
                Ok(event)
            }
            Err(e) => Err(e),
        },
        Format::ApacheError => access::parse_error_log(line, ctx),
    };
    let mut event = match parsed {
        Ok(event) => event,
        Err(reason) => {
            verbatim.record(field::MESSAGE, line, line);
            parse_error_event(line, format, &reason.to_string(), ctx)
        }
    };
    // No parser sets a Vigil dataset; whatever claims one came from the input.
    if event.dataset().is_some_and(reserved::is_reserved_dataset)
        && let Some(value) = event.remove(field::EVENT_DATASET)
    {
        event.insert(
            format!("{}{}", reserved::QUARANTINE_PREFIX, field::EVENT_DATASET),
            value,
        );
        event.add_tag(tag::RESERVED_CLAIM);
    }
    finish(&mut event, line, format, ctx);
    verbatim.record(field::EVENT_ORIGINAL, line, line);
    if let Some(redactor) = &ctx.redactor {
        if !counts.by_kind.is_empty() {
            let kinds = counts
                .by_kind
                .iter()
                .map(|(k, _)| vigil_event::Value::from(k.as_str()))
                .collect();
            event.insert(
                vigil_event::name!(field::VIGIL_REDACTED),
                vigil_event::Value::List(kinds),
            );
        }
        if clean {
            redactor.redact_parsed(&mut event, line, &verbatim);
        } else {
            redactor.redact_event(&mut event);
        }
    }
    event
}

/// Adds what every event carries: `vigil.source`, `vigil.received`, `vigil.parser`,
/// `event.original`.
fn finish(event: &mut Event, line: &str, format: Format, ctx: &ParseContext) {
    event.insert(vigil_event::name!(field::VIGIL_SOURCE), ctx.source.as_str());
    event.insert(
        vigil_event::name!(field::VIGIL_RECEIVED),
        received_text(ctx.received),
    );
    const PARSER: FieldName = vigil_event::name!(field::VIGIL_PARSER);
    const ORIGINAL: FieldName = vigil_event::name!(field::EVENT_ORIGINAL);
    if !event.contains_name(&PARSER) {
        event.insert(PARSER, format.parser());
    }
    if ctx.keep_original && !event.contains_name(&ORIGINAL) {
        event.insert(ORIGINAL, line);
    }
    if let Some(peer) = ctx.peer {
        event.insert(vigil_event::name!("log.source.address"), peer.to_string());
    }
}

/// `received` in RFC 3339, formatted once per thread while it stays the same (a context's
/// receive time is shared by every line of a file or a batch).
fn received_text(received: Timestamp) -> String {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(Timestamp, String)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((at, text)) if *at == received => text.clone(),
            _ => {
                let text = received.to_rfc3339();
                *last = Some((received, text.clone()));
                text
            }
        }
    })
}

/// Plain text: the line is the message.
pub fn raw_event(line: &str, ctx: &ParseContext) -> Event {
    let mut event = Event::new(ctx.received);
    event.insert(vigil_event::name!("message"), line);
    event
}

/// The event for a line that did not parse as `format`.
pub fn parse_error_event(line: &str, format: Format, reason: &str, ctx: &ParseContext) -> Event {
    let mut event = Event::new(ctx.received);
    event.insert(vigil_event::name!(field::MESSAGE), line);
    event.insert(vigil_event::name!(field::EVENT_ORIGINAL), line);
    event.insert(
        vigil_event::name!(field::ERROR_MESSAGE),
        format!("not {}: {reason}", format.name()),
    );
    event.add_tag(tag::PARSE_ERROR);
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input in every format that names Vigil's own dataset or `vigil.*` fields keeps them only
    /// under `external.`: no returned event claims to be Vigil's.
    #[test]
    fn input_cannot_claim_vigil_names() {
        let ctx = ParseContext::new(Timestamp::parse("2026-11-22T10:00:00Z").unwrap(), "t");
        let lines: &[(&str, Format)] = &[
            (
                r#"{"event":{"dataset":"vigil.audit","action":"login_failure"},"source":{"ip":"203.0.113.9"},"vigil":{"seq":1,"source":"vigil"}}"#,
                Format::Auto,
            ),
            (
                r#"{"event.dataset":"VIGIL.alert","vigil.parser":"x","vigil.redacted":["password"]}"#,
                Format::Json,
            ),
            (
                r#"{"event":{"dataset":["nginx.access","vigil.audit"]},"Vigil":{"seq":3}}"#,
                Format::Json,
            ),
            (
                "event.dataset=vigil.audit event.action=login_failure vigil.source=vigil",
                Format::Logfmt,
            ),
            (
                "CEF:0|V|P|1|1|n|5|src=10.0.0.1 cs1=vigil.audit cs1Label=event.dataset",
                Format::Cef,
            ),
        ];
        for (line, format) in lines {
            let e = parse_line(line.as_bytes(), *format, &ctx);
            assert!(
                !e.get_str("event.dataset")
                    .is_some_and(reserved::is_reserved_dataset),
                "{line}: {e:?}"
            );
            for (name, _) in e.fields() {
                if reserved::is_reserved_field(name) {
                    assert!(
                        matches!(
                            name,
                            "vigil.source" | "vigil.received" | "vigil.parser" | "vigil.redacted"
                        ),
                        "{line}: kept {name}"
                    );
                }
            }
            assert_eq!(e.get_str("vigil.source"), Some("t"), "{line}");
        }
        let e = parse_line(lines[2].0.as_bytes(), Format::Json, &ctx);
        assert_eq!(
            e.get("event.dataset"),
            None,
            "a list naming a Vigil dataset moves too"
        );
        assert!(e.get("external.event.dataset").is_some());
        assert!(e.get("external.Vigil.seq").is_some());
        let e = parse_line(lines[0].0.as_bytes(), Format::Auto, &ctx);
        assert_eq!(e.get_str("external.event.dataset"), Some("vigil.audit"));
        assert_eq!(e.get_str("external.vigil.source"), Some("vigil"));
        assert!(e.has_tag(tag::RESERVED_CLAIM));
    }

    #[test]
    fn detection() {
        assert_eq!(detect(r#"{"a":1}"#), Format::Json);
        assert_eq!(detect("<13>Nov 22 10:00:00 host app: hi"), Format::Syslog);
        assert_eq!(detect("Nov 22 10:00:00 host app: hi"), Format::Syslog);
        assert_eq!(
            detect("<165>1 2026-11-22T10:00:00Z host app 1 ID47 - hi"),
            Format::Syslog
        );
        assert_eq!(
            detect(
                r#"203.0.113.5 - - [22/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 12 "-" "curl/8""#
            ),
            Format::Combined
        );
        assert_eq!(
            detect("CEF:0|Vendor|Product|1.0|100|Name|5|src=10.0.0.1"),
            Format::Cef
        );
        assert_eq!(
            detect(r#"level=info msg="user logged in" user=alice"#),
            Format::Logfmt
        );
        assert_eq!(detect("just some words"), Format::Raw);
    }

    #[test]
    fn bad_json_is_kept_as_parse_error() {
        let ctx = ParseContext::new(Timestamp::from_secs(100), "t");
        let e = parse_line(b"{not json", Format::Auto, &ctx);
        assert!(e.has_tag(tag::PARSE_ERROR));
        assert_eq!(e.get_str("event.original"), Some("{not json"));
        assert_eq!(e.get_str("vigil.source"), Some("t"));
    }

    /// `vigil.parser` keeps the values it had when it was written from `Format::name`.
    #[test]
    fn format_names_are_parser_names() {
        for f in Format::ALL {
            if f != Format::Auto {
                assert_eq!(f.parser().as_str(), f.name());
            }
        }
    }

    #[test]
    fn format_names_parse() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
        }
        assert!("yaml".parse::<Format>().is_err());
    }
}
