//! RFC 5424 and RFC 3164 syslog (the framing is the listener's job; this reads one message).
//!
//! Header fields go to ECS `log.syslog.*`, `host.name`, `process.name`, `process.pid`; RFC 5424
//! structured data is kept as `log.syslog.structured_data.<SD-ID>.<PARAM>`. A 3164 timestamp has
//! no year: it is the year of the context's reference time, or the year before when that would
//! put the message more than two days in the future. A timestamp without a zone is UTC. The
//! message body is then read by program ([`crate::linux`]) and for embedded CEF.

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use syslog_loose::{ProcId, Protocol, Variant};
use vigil_event::{Event, Parser, Timestamp, field};

use crate::clean::Verbatim;
use crate::{LineError, ParseContext};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Whether a line starts like a BSD syslog timestamp (`Nov 22 10:00:00`).
pub fn looks_like_bsd_timestamp(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() >= 15
        && MONTHS.iter().any(|m| line.starts_with(m))
        && b[3] == b' '
        && b[9] == b':'
        && b[12] == b':'
}

/// Whether a line starts like `2026-11-22T10:00:00… host …` (RFC 3339 timestamp, no priority).
pub fn looks_like_rfc3339_syslog(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
}

/// Parses one syslog message.
pub fn parse(line: &str, ctx: &ParseContext) -> Result<Event, LineError> {
    parse_recording(line, ctx, &mut Verbatim::default())
}

/// [`parse`], recording in `verbatim` the fields whose value is a slice of `line`.
pub(crate) fn parse_recording(
    line: &str,
    ctx: &ParseContext,
    verbatim: &mut Verbatim,
) -> Result<Event, LineError> {
    let year = crate::syslog_fast::year_at(ctx.reference);
    // The common 3164 shapes by hand; everything else (and anything unusual) by syslog_loose.
    let fast = crate::syslog_fast::parse_3164(line, year);
    let msg = match fast {
        Some(m) => m,
        None => match syslog_loose::parse_message_with_year_exact_tz(
            line,
            move |(month, day, hour, minute, second): syslog_loose::IncompleteDate| {
                year(month, day, hour, minute, second)
            },
            Some(Utc),
            Variant::Either,
        ) {
            Ok(m) => m,
            Err(e) => {
                return parse_minimal(line, ctx, verbatim)
                    .ok_or_else(|| LineError::Syslog(e.to_string()));
            }
        },
    };
    if msg.timestamp.is_none() && msg.facility.is_none() && msg.hostname.is_none() {
        return Err(LineError::NoSyslogHeader);
    }
    let mut event = Event::new(
        msg.timestamp
            .map(|t| Timestamp::from_datetime(t.with_timezone(&Utc)))
            .unwrap_or(ctx.received),
    );
    if let (Some(facility), Some(severity)) = (msg.facility, msg.severity) {
        let (f, s) = (facility as i64, severity as i64);
        event.insert(vigil_event::name!("log.syslog.priority"), f * 8 + s);
        event.insert(vigil_event::name!("log.syslog.facility.code"), f);
        event.insert(
            vigil_event::name!("log.syslog.facility.name"),
            facility.as_str(),
        );
        event.insert(vigil_event::name!("log.syslog.severity.code"), s);
        event.insert(
            vigil_event::name!("log.syslog.severity.name"),
            severity.as_str(),
        );
        event.insert(vigil_event::name!("log.level"), severity.as_str());
    }
    if let Protocol::RFC5424(version) = msg.protocol {
        event.insert(vigil_event::name!("log.syslog.version"), i64::from(version));
    }
    // syslog_loose is loose about 3164 headers; settle the ambiguous cases from the raw line:
    // "TIME prog: msg" (no host) comes back as host "prog"; "TIME host words" (no program) as
    // program "words"; "TIME host CEF:0|…" as program "CEF".
    let mut hostname = msg.hostname.filter(|h| *h != "-");
    let mut program = msg.appname.filter(|a| *a != "-");
    let mut body_prefix = "";
    if msg.protocol == Protocol::RFC3164 {
        if program.is_none()
            && let Some(h) = hostname
            && (framed(line, b' ', h, ": ") || framed(line, b'>', h, ": "))
        {
            program = Some(h);
            hostname = None;
        } else if let Some(a) = program
            && !followed_by(line, a, b':')
            && !followed_by(line, a, b'[')
        {
            body_prefix = a;
            program = None;
        } else if program == Some("CEF") && line.contains("CEF:") {
            body_prefix = "CEF:";
            program = None;
        }
    }
    match hostname {
        Some(host) => event.insert(vigil_event::name!("host.name"), host),
        None => {
            if let Some(peer) = ctx.peer {
                event.insert(vigil_event::name!("host.name"), peer.to_string());
            }
        }
    }
    if let Some(app) = program {
        event.insert(vigil_event::name!("process.name"), app);
    }
    match msg.procid {
        Some(ProcId::PID(pid)) => event.insert(vigil_event::name!("process.pid"), i64::from(pid)),
        Some(ProcId::Name(name)) if name != "-" => {
            event.insert(vigil_event::name!("log.syslog.procid"), name)
        }
        _ => {}
    }
    if let Some(id) = msg.msgid.filter(|m| *m != "-") {
        event.insert(vigil_event::name!("log.syslog.msgid"), id);
    }
    for element in &msg.structured_data {
        for (name, value) in &element.params {
            event.insert(
                format!("log.syslog.structured_data.{}.{}", element.id, name),
                *value,
            );
        }
    }
    let body = msg.msg.trim_start_matches('\u{feff}');
    let joined;
    let body = match body_prefix {
        "" => body,
        "CEF:" => {
            joined = format!("CEF:{body}");
            joined.as_str()
        }
        word => {
            joined = format!("{word} {body}");
            joined.as_str()
        }
    };
    event.insert(vigil_event::name!("message"), body);
    verbatim.record(field::MESSAGE, line, body);
    event.insert(vigil_event::name!(field::VIGIL_PARSER), Parser::Syslog);
    if let Some(cef_start) = body.find("CEF:") {
        crate::cef::enrich(&mut event, &body[cef_start..]);
    } else {
        enrich_message(&mut event, program.unwrap_or(""), body, ctx);
    }
    Ok(event)
}

/// `<PRI>TAG[PID]: message` or `<PRI>message` with no timestamp and no host (what Python's
/// `SysLogHandler` and many embedded devices send).
fn parse_minimal(line: &str, ctx: &ParseContext, verbatim: &mut Verbatim) -> Option<Event> {
    let rest = line.strip_prefix('<')?;
    let close = rest.find('>')?;
    let pri: u8 = rest[..close]
        .parse()
        .ok()
        .filter(|p: &u8| *p <= 191 && close <= 3)?;
    let body = &rest[close + 1..];
    let mut event = Event::new(ctx.received);
    let (facility, severity) = syslog_loose::decompose_pri(pri);
    if let (Some(f), Some(s)) = (facility, severity) {
        event.insert(vigil_event::name!("log.syslog.priority"), i64::from(pri));
        event.insert(vigil_event::name!("log.syslog.facility.code"), f as i64);
        event.insert(vigil_event::name!("log.syslog.facility.name"), f.as_str());
        event.insert(vigil_event::name!("log.syslog.severity.code"), s as i64);
        event.insert(vigil_event::name!("log.syslog.severity.name"), s.as_str());
        event.insert(vigil_event::name!("log.level"), s.as_str());
    }
    if let Some(peer) = ctx.peer {
        event.insert(vigil_event::name!("host.name"), peer.to_string());
    }
    let tag_end = body.find(": ").filter(|&i| {
        let tag = &body[..i];
        // A JSON message (`{"event": …`) has no tag.
        !tag.is_empty() && tag.len() <= 64 && !tag.contains([' ', '"', '{'])
    });
    let (program, message) = match tag_end {
        Some(i) => (Some(&body[..i]), &body[i + 2..]),
        None => (None, body),
    };
    let mut name = None;
    if let Some(tag) = program {
        match tag.split_once('[') {
            Some((n, pid)) => {
                name = Some(n);
                if let Ok(p) = pid.trim_end_matches(']').parse::<i64>() {
                    event.insert(vigil_event::name!("process.pid"), p);
                }
            }
            None => name = Some(tag),
        }
        if let Some(n) = name {
            event.insert(vigil_event::name!("process.name"), n);
        }
    }
    event.insert(vigil_event::name!("message"), message);
    verbatim.record(field::MESSAGE, line, message);
    event.insert(vigil_event::name!(field::VIGIL_PARSER), Parser::Syslog);
    enrich_message(&mut event, name.unwrap_or(""), message, ctx);
    Some(event)
}

/// What the message of `program` says: an auth program's message read by [`crate::linux`];
/// any other message that is a JSON object or carries `key=value` pairs read by
/// [`crate::app_message`].
fn enrich_message(event: &mut Event, program: &str, message: &str, ctx: &ParseContext) {
    let before = event.len();
    crate::linux::enrich(event, program, message);
    // A device line only when the auth parsers did not read it: an sshd or sudo message can
    // quote text a user chose (`Invalid user IN= SRC=…`), and it stays an sshd message.
    if event.len() == before && crate::network::enrich(event, program, message) {
        return;
    }
    if event.len() == before {
        crate::app_message::enrich(event, message, ctx);
    }
}

/// Whether `line` contains `before`, `word`, `after` in a row (`line.contains(&format!(…))`
/// without building the needle).
fn framed(line: &str, before: u8, word: &str, after: &str) -> bool {
    let b = line.as_bytes();
    memchr::memchr_iter(before, b).any(|at| {
        line.get(at + 1..)
            .and_then(|rest| rest.strip_prefix(word))
            .is_some_and(|rest| rest.starts_with(after))
    })
}

/// Whether `word` occurs in `line` followed by the byte `next` (every occurrence, overlapping
/// ones too: looked for where `next` is).
fn followed_by(line: &str, word: &str, next: u8) -> bool {
    let (b, w) = (line.as_bytes(), word.as_bytes());
    memchr::memchr_iter(next, b).any(|at| at >= w.len() && &b[at - w.len()..at] == w)
}

/// The year for a 3164 timestamp seen at `reference`.
pub(crate) fn infer_year(
    reference: Timestamp,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> i32 {
    let now = reference.to_datetime();
    let year = now.year();
    let at = |y: i32| {
        NaiveDate::from_ymd_opt(y, month, day)
            .and_then(|d| d.and_hms_opt(hour, minute, second))
            .map(|n| Utc.from_utc_datetime(&n))
    };
    match at(year) {
        Some(t) if t > now + chrono::Duration::days(2) => year - 1,
        Some(_) => year,
        // 29 February in a non-leap reference year: the closest leap year not in the future.
        None => (year - 3..year)
            .rev()
            .find(|y| at(*y).is_some())
            .unwrap_or(year),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(reference: &str) -> ParseContext {
        ParseContext::new(Timestamp::parse(reference).unwrap(), "test")
    }

    #[test]
    fn rfc3164_with_priority_and_pid() {
        let e = parse(
            "<38>Nov 22 09:59:58 bastion sshd[4242]: Accepted publickey for alice from 198.51.100.7 port 50022 ssh2",
            &ctx("2026-11-22T10:00:00Z"),
        )
        .unwrap();
        assert_eq!(e.timestamp().to_rfc3339(), "2026-11-22T09:59:58Z");
        assert_eq!(e.get_str("host.name"), Some("bastion"));
        assert_eq!(e.get_str("process.name"), Some("sshd"));
        assert_eq!(e.get("process.pid").and_then(|v| v.as_i64()), Some(4242));
        assert_eq!(
            e.get("log.syslog.facility.code").and_then(|v| v.as_i64()),
            Some(4)
        );
        assert_eq!(e.get_str("log.syslog.severity.name"), Some("info"));
        assert_eq!(e.get_str("event.outcome"), Some("success"));
    }

    /// What Python's `SysLogHandler` sends with its defaults: no header, a JSON object or
    /// `key=value` pairs as the message; an auth program's message is not read as pairs.
    #[test]
    fn structured_messages_without_a_header_and_with_one() {
        let c = ctx("2026-12-07T10:00:00Z");
        let e = parse(
            r#"<12>{"event": "authz_fail:grace,/admin", "source_ip": "192.0.2.78"}"#,
            &c,
        )
        .unwrap();
        assert!(!e.contains("process.name"), "a JSON message has no tag");
        assert_eq!(e.get_str("event.action"), Some("authz_fail"));
        assert_eq!(e.get_str("user.name"), Some("grace"));
        let e = parse("<12>shop[7]: login failed user=frank src=192.0.2.77", &c).unwrap();
        assert_eq!(e.get_str("process.name"), Some("shop"));
        assert_eq!(e.get_str("user.name"), Some("frank"));
        let e = parse(
            "<86>Dec  7 09:59:58 h sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root",
            &c,
        )
        .unwrap();
        assert_eq!(e.get_str("user.name"), Some("root"));
        assert!(
            !e.contains("euid") && !e.contains("rhost"),
            "read by the PAM parser, not as pairs"
        );
    }

    #[test]
    fn year_is_inferred_from_the_reference() {
        // A December line read in early January belongs to last year.
        let e = parse("<13>Dec 31 23:59:59 h app: x", &ctx("2027-01-01T00:10:00Z")).unwrap();
        assert_eq!(e.timestamp().to_rfc3339(), "2026-12-31T23:59:59Z");
        let e = parse("<13>Jan  1 00:00:01 h app: x", &ctx("2027-01-01T00:10:00Z")).unwrap();
        assert_eq!(e.timestamp().to_rfc3339(), "2027-01-01T00:00:01Z");
    }

    #[test]
    fn no_priority_no_host() {
        let e = parse(
            "Nov 22 09:59:58 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls",
            &ctx("2026-11-22T10:00:00Z"),
        )
        .unwrap();
        assert_eq!(e.get_str("process.name"), Some("sudo"));
        assert_eq!(e.get_str("user.name"), Some("alice"));
    }

    #[test]
    fn rfc5424_with_structured_data() {
        let e = parse(
            r#"<165>1 2026-11-22T10:00:00.003Z mymachine.example.com evntslog 777 ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event"#,
            &ctx("2026-11-22T10:00:00Z"),
        )
        .unwrap();
        assert_eq!(e.timestamp().to_rfc3339(), "2026-11-22T10:00:00.003Z");
        assert_eq!(e.get_str("host.name"), Some("mymachine.example.com"));
        assert_eq!(e.get_str("process.name"), Some("evntslog"));
        assert_eq!(e.get_str("log.syslog.msgid"), Some("ID47"));
        assert_eq!(
            e.get_str("log.syslog.structured_data.exampleSDID@32473.iut"),
            Some("3")
        );
        assert_eq!(e.get_str("message"), Some("An application event"));
        assert_eq!(
            e.get("log.syslog.version").and_then(|v| v.as_i64()),
            Some(1)
        );
    }

    #[test]
    fn ambiguous_3164_headers() {
        let c = ctx("2026-11-22T10:00:00Z");
        let e = parse("<13>Nov 22 09:59:58 myhost hello world", &c).unwrap();
        assert_eq!(e.get_str("host.name"), Some("myhost"));
        assert_eq!(e.get("process.name"), None);
        assert_eq!(e.get_str("message"), Some("hello world"));
        // Python's SysLogHandler: no timestamp, no host.
        let e = parse("<28>myapp: login failed", &c).unwrap();
        assert_eq!(e.get_str("process.name"), Some("myapp"));
        assert_eq!(e.get_str("message"), Some("login failed"));
        let e = parse("<13>Nov 22 09:59:58 sudo[12]: hello", &c).unwrap();
        assert_eq!(e.get_str("process.name"), Some("sudo"));
        assert_eq!(e.get("host.name"), None);
    }

    #[test]
    fn not_syslog_is_an_error() {
        assert!(parse("hello world", &ctx("2026-11-22T10:00:00Z")).is_err());
    }
}
