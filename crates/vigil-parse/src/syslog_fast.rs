//! A hand-written reader for the common RFC 3164 header shapes
//! (`[<PRI>]Mmm dd hh:mm:ss HOST TAG[PID]: message` and its variants without host, tag or
//! pid), giving exactly the [`Message`] `syslog_loose` gives for them, without its parser
//! combinators. Anything else — RFC 5424, other timestamp forms, `-` fields, a message that
//! starts like structured data, non-ASCII header fields, an impossible date — returns `None`
//! and the caller asks `syslog_loose`, so this only ever takes the fast path where both
//! agree (the differential test `fast_header_agrees_with_syslog_loose` holds it to that).

use chrono::{Offset, TimeZone, Utc};
use syslog_loose::{Message, ProcId, Protocol};
use vigil_event::Timestamp;

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// What `char::is_whitespace` says of an ASCII byte.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// nom's `space0`/`space1`: spaces and tabs.
fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// One or two ASCII digits at `i`, and where they end.
fn small_number(b: &[u8], i: usize, max_digits: usize) -> Option<(u32, usize)> {
    let mut n = 0u32;
    let mut j = i;
    while j < b.len() && b[j].is_ascii_digit() {
        if j - i == max_digits {
            return None;
        }
        n = n * 10 + u32::from(b[j] - b'0');
        j += 1;
    }
    (j > i).then_some((n, j))
}

/// Exactly two digits at `i`.
fn two_digits(b: &[u8], i: usize) -> Option<u32> {
    match b.get(i..i + 2) {
        Some([x, y]) if x.is_ascii_digit() && y.is_ascii_digit() => {
            Some(u32::from(x - b'0') * 10 + u32::from(y - b'0'))
        }
        _ => None,
    }
}

/// A run of ASCII non-whitespace bytes from `i` (also stopping at `:` when `colon_ends`);
/// `None` when a non-ASCII byte comes first (Unicode whitespace is syslog_loose's business).
fn token(b: &[u8], i: usize, colon_ends: bool) -> Option<usize> {
    let mut j = i;
    while j < b.len() && !is_ws(b[j]) && !(colon_ends && b[j] == b':') {
        if b[j] >= 0x80 {
            return None;
        }
        j += 1;
    }
    Some(j)
}

/// syslog_loose's `systag`: `app[pid]` as the whole field.
fn systag(tag: &str) -> Option<(&str, &str)> {
    let app_end = tag.find(|c: char| c.is_whitespace() || c == ':' || c == '[')?;
    if tag.as_bytes()[app_end] != b'[' {
        return None;
    }
    let rest = &tag[app_end + 1..];
    let close = rest.find(']')?;
    (close > 0 && close + 1 == rest.len()).then(|| (&tag[..app_end], &rest[..close]))
}

/// The header of a common RFC 3164 line, or `None` (then `syslog_loose` decides).
pub(crate) fn parse_3164(
    line: &str,
    year: impl Fn(u32, u32, u32, u32, u32) -> i32,
) -> Option<Message<&str>> {
    let s = line.trim();
    let b = s.as_bytes();
    let mut i = 0;
    let (facility, severity) = if b.first() == Some(&b'<') {
        let (pri, end) = small_number(b, 1, 3)?;
        if b.get(end) != Some(&b'>') || pri > 191 {
            return None;
        }
        i = end + 1;
        syslog_loose::decompose_pri(pri as u8)
    } else {
        (None, None)
    };
    i = skip_spaces(b, i);
    let month = MONTHS
        .iter()
        .position(|m| b.get(i..i + 3) == Some(&m[..]))? as u32
        + 1;
    i += 3;
    let at = skip_spaces(b, i);
    if at == i {
        return None;
    }
    let (day, end) = small_number(b, at, 2)?;
    i = end;
    let at = skip_spaces(b, i);
    if at == i {
        return None;
    }
    i = at;
    let hour = two_digits(b, i)?;
    let minute = two_digits(b, i + 3).filter(|_| b[i + 2] == b':')?;
    let second = two_digits(b, i + 6).filter(|_| b[i + 5] == b':')?;
    i += 8;
    if b.get(i) != Some(&b' ') {
        return None;
    }
    let timestamp = Utc
        .with_ymd_and_hms(
            year(month, day, hour, minute, second),
            month,
            day,
            hour,
            minute,
            second,
        )
        .earliest()
        .map(|t| t.with_timezone(&t.offset().fix()))?;
    // The first field: a host, or a tag when it reads `app[pid]`.
    let end = token(b, i + 1, false)?;
    let first = &s[i + 1..end];
    if first.is_empty() || first == "-" || first == ":" {
        return None;
    }
    let (first, mut i) = match first.strip_suffix(':') {
        Some(host) => (host, end - 1),
        None => (first, end),
    };
    // The second field, unless the first ended at a colon.
    let mut second_field = None;
    if b.get(i) == Some(&b' ') {
        let end = token(b, i + 1, true)?;
        if end > i + 1 {
            let field = &s[i + 1..end];
            if field == "-" {
                return None;
            }
            second_field = Some(field);
            i = end;
        }
    }
    i = skip_spaces(b, i);
    if b.get(i) == Some(&b':') {
        i += 1;
    }
    i = skip_spaces(b, i);
    if matches!(b.get(i), Some(b'[' | b'-')) {
        return None; // structured data, or what syslog_loose would take for it
    }
    let (hostname, appname, procid) = match second_field {
        Some(tag) => match systag(tag) {
            Some((app, pid)) => (Some(first), Some(app), Some(pid)),
            None => (Some(first), Some(tag), None),
        },
        None => match systag(first) {
            Some((app, pid)) => (None, Some(app), Some(pid)),
            None => (Some(first), None, None),
        },
    };
    Some(Message {
        protocol: Protocol::RFC3164,
        facility,
        severity,
        timestamp: Some(timestamp),
        hostname,
        appname,
        procid: procid.map(ProcId::from),
        msgid: None,
        structured_data: Vec::new(),
        msg: &s[i..],
    })
}

/// The year function `syslog::parse` hands both readers.
pub(crate) fn year_at(reference: Timestamp) -> impl Fn(u32, u32, u32, u32, u32) -> i32 + Copy {
    move |month, day, hour, minute, second| {
        crate::syslog::infer_year(reference, month, day, hour, minute, second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use syslog_loose::Variant;

    fn slow(line: &str, reference: Timestamp) -> Option<Message<&str>> {
        let y = year_at(reference);
        syslog_loose::parse_message_with_year_exact_tz(
            line,
            move |(m, d, h, mi, s)| y(m, d, h, mi, s),
            Some(Utc),
            Variant::Either,
        )
        .ok()
    }

    /// Every line the fast reader takes, it reads exactly as syslog_loose does (compared by
    /// their debug form, which shows every field); lines it declines are left to syslog_loose.
    fn check(line: &str) -> bool {
        let reference = Timestamp::parse("2026-11-22T12:00:00Z").unwrap();
        match parse_3164(line, year_at(reference)) {
            Some(fast) => {
                let slow = slow(line, reference);
                assert_eq!(
                    Some(format!("{fast:?}")),
                    slow.map(|m| format!("{m:?}")),
                    "{line:?}"
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn fast_header_agrees_with_syslog_loose() {
        let taken = [
            "<38>Nov 22 10:00:00 bastion sshd[4242]: Failed password for root from 203.0.113.5 port 22 ssh2",
            "Nov 22 10:00:00 bastion sshd[4242]: Accepted publickey for alice",
            "Nov  2 10:00:00 bastion sshd[4242]: x",
            "Nov 22 09:59:58 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls",
            "<13>Nov 22 09:59:58 myhost hello world",
            "<13>Nov 22 09:59:58 sudo[12]: hello",
            "<13>Dec 31 23:59:59 h app: x",
            "<13>Nov 22 09:59:58 host CRON[1]: (root) CMD (x)",
            "<13>Nov 22 09:59:58 host app[abc]: name pid",
            "<13>Nov 22 09:59:58 host app[+5]: plus",
            "<13>Nov 22 09:59:58 host app[1]x: odd",
            "<13>Nov 22 09:59:58 host app[]: empty pid",
            "<13>Nov 22 09:59:58 host: colon host",
            "<13>Nov 22 09:59:58 a:b c: colons",
            "<13>Nov 22 09:59:58 host app:no space",
            "<13>Nov 22 09:59:58 host app  :  spaced colon",
            "<13>Nov 22 09:59:58 host   two spaces",
            "<191>Nov 22 09:59:58 host app: top priority",
            "<0>Nov 22 09:59:58 host app: zero",
            "<13> Nov 22 09:59:58 host app: space after pri",
            "Nov 22 09:59:58 host sshd(pam_unix)[9]: authentication failure; logname= uid=0",
            "Nov 22 09:59:58 host app: trailing spaces   ",
            "Nov 22 09:59:58 host app: tab\there",
            "Nov 22 09:59:58 host app:",
            "Nov 22 09:59:58 host",
            "Feb 29 10:00:00 host app: leap day",
        ];
        for line in taken {
            assert!(check(line), "the fast path declined {line:?}");
        }
        let declined = [
            "<165>1 2026-11-22T10:00:00.003Z host app 1 ID - msg",
            "<13>Nov 22 09:59:58 host app: [sd x=\"1\"] y",
            "<13>Nov 22 09:59:58 host app: - dash",
            "<13>Nov 22 09:59:58 - app: dash host",
            "<13>Nov 22 09:59:58: host app: colon",
            "<13>NOV 22 09:59:58 host app: upper",
            "<13>Nov 22 2026 09:59:58 host app: year",
            "<13>Nov 31 09:59:58 host app: no such day",
            "<300>Nov 22 09:59:58 host app: pri",
            "<13>Nov 22 09:59:58 hôst app: unicode",
            "<13>2026-11-22T10:00:00Z host app: rfc3339",
            "<13>Nov 22 9:59:58 host app: one-digit hour",
            "<13>Nov 22 09:59:58  app: two spaces",
            "hello world",
        ];
        for line in declined {
            assert!(!check(line), "the fast path took {line:?}");
        }
    }

    /// Every syslog line of the corpus, and mutations of the header shapes: where the fast
    /// reader answers, syslog_loose answers the same.
    #[test]
    fn fast_header_agrees_on_generated_lines() {
        use proptest::prelude::*;
        let part = prop::sample::select(vec![
            "<13>",
            "<38>",
            "<191>",
            "<0>",
            "<1000>",
            "Nov",
            "Feb",
            "Jan",
            " ",
            "  ",
            "\t",
            "22",
            "2",
            "29",
            "30",
            "10:00:00",
            "23:59:59",
            "host",
            "sshd",
            "[42]",
            "[",
            "]",
            ":",
            ": ",
            "-",
            "app",
            "x",
            "é",
            "[a b=\"c\"]",
            "Failed",
            "+1",
        ]);
        let line = prop::collection::vec(part, 0..14).prop_map(|p| p.concat());
        proptest!(ProptestConfig::with_cases(20_000), |(line in line)| {
            check(&line);
        });
        let mut taken = 0;
        for i in 0..2000u32 {
            let line = format!(
                "<{}>{} {:>2} {:02}:{:02}:{:02} h{} p{}[{}]: m {i}",
                i % 200,
                ["Jan", "Feb", "Nov", "Dec"][i as usize % 4],
                1 + i % 31,
                i % 24,
                i % 60,
                (i * 7) % 60,
                i % 3,
                i % 5,
                i
            );
            taken += usize::from(check(&line));
        }
        assert!(taken > 1500, "{taken}");
    }
}
