//! Why a line is not in the format it was read as.

use vigil_event::JsonError;

/// Why one line does not parse in the requested format. [`crate::parse_line`] never fails:
/// it keeps such a line as an event tagged `parse_error` with this reason in `error.message`
/// (`not FORMAT: REASON`). Never worth a retry: the same bytes fail the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// Nothing to read (access log).
    #[error("empty line")]
    Empty,
    /// A part the format requires is absent: `[time]`, `]`, `ident field`, `user field`,
    /// `"request"`, `status`, `size` (access and error logs).
    #[error("missing {0}")]
    Missing(&'static str),
    /// A timestamp that does not read in the format's layout (access and error logs).
    #[error("bad time {0:?}")]
    BadTime(String),
    /// Not a JSON object, or an unreadable `@timestamp`.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// The syslog reader refused the line (its own description).
    #[error("{0}")]
    Syslog(String),
    /// Read as syslog, but without any of the header parts that make it syslog.
    #[error("no priority, timestamp or host")]
    NoSyslogHeader,
    /// No `CEF:` in the line.
    #[error("no CEF: marker")]
    NoCefMarker,
    /// A CEF header with fewer than its 8 fields.
    #[error("fewer than 8 |-separated header fields")]
    CefHeader,
    /// A logfmt value opened with `"` and never closed.
    #[error("unterminated quote in value of {key:?}")]
    UnterminatedQuote {
        /// The key whose value is unterminated.
        key: String,
    },
    /// A logfmt line with no `key=value` pair.
    #[error("no key=value pairs")]
    NoPairs,
}

#[cfg(test)]
mod tests {
    use vigil_event::Timestamp;

    use crate::{Format, ParseContext, parse_line};

    use super::*;

    /// Each format's refusal is the typed reason, and `error.message` reads as it always has.
    #[test]
    fn each_format_says_what_failed() {
        let ctx = ParseContext::new(Timestamp::from_secs(0), "t");
        let cases: &[(&[u8], Format, LineError, &str)] = &[
            (
                b"[Sun Dec 04 04:47:44 2005",
                Format::ApacheError,
                LineError::Missing("]"),
                "not apache_error: missing ]",
            ),
            (
                b"1.2.3.4 - - [yesterday] \"GET / HTTP/1.1\" 200 1",
                Format::Combined,
                LineError::BadTime("yesterday".into()),
                "not combined: bad time \"yesterday\"",
            ),
            (
                b"1.2.3.4 - -",
                Format::Combined,
                LineError::Missing("[time]"),
                "not combined: missing [time]",
            ),
            (
                b"CEF:0|a|b",
                Format::Cef,
                LineError::CefHeader,
                "not cef: fewer than 8 |-separated header fields",
            ),
            (
                b"a=\"open",
                Format::Logfmt,
                LineError::UnterminatedQuote { key: "a".into() },
                "not logfmt: unterminated quote in value of \"a\"",
            ),
            (
                b"just words",
                Format::Logfmt,
                LineError::NoPairs,
                "not logfmt: no key=value pairs",
            ),
        ];
        for (line, format, reason, message) in cases {
            let text = std::str::from_utf8(line).unwrap();
            let got = match format {
                Format::ApacheError => crate::access::parse_error_log(text, &ctx),
                Format::Combined => crate::access::parse(text, &ctx),
                Format::Cef => crate::cef::parse(text, &ctx),
                Format::Logfmt => crate::logfmt::parse(text, &ctx),
                _ => unreachable!(),
            };
            assert_eq!(got.as_ref().err(), Some(reason), "{text}");
            let event = parse_line(line, *format, &ctx);
            assert_eq!(event.get_str("error.message"), Some(*message), "{text}");
        }
        let json = crate::json::parse("[1]", &ctx).unwrap_err();
        assert!(matches!(
            json,
            LineError::Json(JsonError::NotAnObject { .. })
        ));
    }
}
