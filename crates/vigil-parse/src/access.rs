//! Apache/nginx access logs: combined (`%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`)
//! and common (without the last two). A hand-written scanner: no regular expression, one pass.

use std::net::IpAddr;

use chrono::DateTime;
use vigil_event::{
    Category, Event, EventKind, EventType, Outcome, Parser, Timestamp, Value, field, tag,
};

use crate::{LineError, ParseContext};

/// Whether a line looks like an Apache error log line: `[Sun Dec 04 04:47:44 2005] [level] …`.
pub fn looks_like_error_log(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 27
        && b[0] == b'['
        && b[4] == b' '
        && b[8] == b' '
        && line[1..].find(']').is_some_and(|i| i >= 23)
}

/// Parses an Apache error log line (`[Sun Dec 04 04:47:44 2005] [error] [client 1.2.3.4] msg`,
/// or the 2.4 form with microseconds and `[module:level] [pid N]`).
pub fn parse_error_log(line: &str, ctx: &ParseContext) -> Result<Event, LineError> {
    let inner = line.strip_prefix('[').ok_or(LineError::Missing("[time]"))?;
    let close = inner.find(']').ok_or(LineError::Missing("]"))?;
    let time = &inner[..close];
    // The weekday is redundant; skip it rather than reject a line whose weekday is off.
    let without_weekday = time.get(4..).unwrap_or("");
    let parsed = chrono::NaiveDateTime::parse_from_str(without_weekday, "%b %d %H:%M:%S%.f %Y")
        .map_err(|_| LineError::BadTime(time.to_owned()))?;
    let mut e = Event::new(Timestamp::from_datetime(parsed.and_utc()));
    let mut rest = inner[close + 1..].trim_start();
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(end) = inner.find(']') else { break };
        let tag = &inner[..end];
        if let Some(client) = tag.strip_prefix("client ") {
            let addr = client
                .rsplit_once(':')
                .filter(|(h, _)| h.parse::<IpAddr>().is_ok())
                .map_or(client, |(h, _)| h);
            if let Ok(ip) = addr.parse::<IpAddr>() {
                e.insert("source.ip", Value::Ip(ip));
            }
        } else if let Some(pid) = tag.strip_prefix("pid ") {
            if let Ok(p) = pid.split(':').next().unwrap_or("").parse::<i64>() {
                e.insert("process.pid", p);
            }
        } else if !e.contains("log.level") {
            e.insert("log.level", tag.rsplit(':').next().unwrap_or(tag));
        }
        rest = inner[end + 1..].trim_start();
    }
    e.insert("message", rest);
    e.insert(field::EVENT_KIND, EventKind::Event);
    e.insert(field::EVENT_CATEGORY, Category::Web);
    e.insert(field::EVENT_TYPE, EventType::Error);
    e.insert(field::VIGIL_SOURCETYPE, "apache_error");
    e.insert(field::VIGIL_PARSER, Parser::ApacheError);
    let _ = ctx;
    Ok(e)
}

/// Cheap check used by format detection.
pub fn looks_like_access_log(line: &str) -> bool {
    let line = line.strip_prefix('"').unwrap_or(line);
    let Some(open) = line.find(" [") else {
        return false;
    };
    let Some(close) = line[open..].find("] \"") else {
        return false;
    };
    let host = line.split(' ').next().unwrap_or("");
    !host.is_empty() && close < 40 && open < 300
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn token(&mut self) -> Option<&'a str> {
        let rest = &self.s[self.pos..];
        let rest_trim = rest.trim_start_matches(' ');
        let start = self.pos + (rest.len() - rest_trim.len());
        if start >= self.s.len() {
            return None;
        }
        let end = self.s[start..]
            .find(' ')
            .map_or(self.s.len(), |i| start + i);
        self.pos = end;
        Some(&self.s[start..end])
    }

    fn bracketed(&mut self) -> Option<&'a str> {
        let rest = self.s[self.pos..].trim_start_matches(' ');
        let start = self.s.len() - rest.len();
        let inner = rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        self.pos = start + 1 + end + 1;
        Some(&inner[..end])
    }

    /// A double-quoted field; backslash escapes the next character.
    fn quoted(&mut self) -> Option<String> {
        let rest = self.s[self.pos..].trim_start_matches(' ');
        let start = self.s.len() - rest.len();
        let inner = rest.strip_prefix('"')?;
        let mut out = String::new();
        let mut chars = inner.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, next)) = chars.next() {
                        match next {
                            '"' | '\\' => out.push(next),
                            other => {
                                out.push('\\');
                                out.push(other);
                            }
                        }
                    }
                }
                '"' => {
                    self.pos = start + 1 + i + 1;
                    return Some(out);
                }
                _ => out.push(c),
            }
        }
        None
    }
}

/// Parses one access log line.
pub fn parse(line: &str, ctx: &ParseContext) -> Result<Event, LineError> {
    // Some exports wrap every line in one more pair of double quotes.
    let line = match line.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        Some(inner) if inner.contains(" [") => inner,
        _ => line,
    };
    let mut c = Cursor { s: line, pos: 0 };
    let host = c.token().ok_or(LineError::Empty)?;
    let _ident = c.token().ok_or(LineError::Missing("ident field"))?;
    let user = c.token().ok_or(LineError::Missing("user field"))?;
    let time = c.bracketed().ok_or(LineError::Missing("[time]"))?;
    let timestamp = DateTime::parse_from_str(time, "%d/%b/%Y:%H:%M:%S %z")
        .map(|t| Timestamp::from_datetime(t.to_utc()))
        .map_err(|_| LineError::BadTime(time.to_owned()))?;
    let request = c.quoted().ok_or(LineError::Missing("\"request\""))?;
    let status = c.token().ok_or(LineError::Missing("status"))?;
    let bytes = c.token().ok_or(LineError::Missing("size"))?;
    let referrer = c.quoted();
    let agent = c.quoted();

    let mut e = Event::new(timestamp);
    match host.parse::<IpAddr>() {
        Ok(ip) => e.insert("source.ip", Value::Ip(ip)),
        Err(_) => e.insert("source.domain", host),
    }
    e.insert("source.address", host);
    if user != "-" {
        e.insert("user.name", user);
    }
    let mut parts = request.splitn(3, ' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(url), version)
            if !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()) =>
        {
            e.insert("http.request.method", method);
            e.insert("url.original", url);
            let (path, query) = match url.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (url, None),
            };
            e.insert("url.path", path);
            if let Some(q) = query {
                e.insert("url.query", q);
            }
            if let Some(v) = version.and_then(|v| v.strip_prefix("HTTP/")) {
                e.insert("http.version", v);
            }
        }
        _ => {
            // "-", a TLS handshake sent to the HTTP port, or a scanner's garbage.
            if request != "-" {
                e.insert("url.original", request.as_str());
            }
            e.add_tag(tag::MALFORMED_REQUEST);
        }
    }
    let status: Option<i64> = status.parse().ok();
    if let Some(code) = status {
        e.insert("http.response.status_code", code);
        e.insert(
            field::EVENT_OUTCOME,
            if code < 400 {
                Outcome::Success
            } else {
                Outcome::Failure
            },
        );
    }
    if let Ok(n) = bytes.parse::<i64>() {
        e.insert("http.response.body.bytes", n);
    } else if bytes == "-" {
        e.insert("http.response.body.bytes", 0i64);
    }
    let combined = agent.is_some();
    if let Some(r) = referrer.filter(|r| r != "-") {
        e.insert("http.request.referrer", r);
    }
    if let Some(a) = agent.filter(|a| a != "-") {
        e.insert("user_agent.original", a);
    }
    e.insert(field::EVENT_KIND, EventKind::Event);
    e.insert(field::EVENT_CATEGORY, Category::Web);
    e.insert(field::EVENT_TYPE, EventType::Access);
    e.insert(
        field::VIGIL_SOURCETYPE,
        if combined {
            "access_combined"
        } else {
            "access_common"
        },
    );
    e.insert(field::VIGIL_PARSER, Parser::Combined);
    let _ = ctx;
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ParseContext {
        ParseContext::new(Timestamp::from_secs(0), "t")
    }

    #[test]
    fn combined_line() {
        let e = parse(
            r#"203.0.113.5 - frank [10/Oct/2026:13:55:36 -0700] "GET /admin/login.php?user=x&id=1 HTTP/1.1" 403 2326 "http://example.com/start.html" "Mozilla/5.0 (X11; Linux x86_64)""#,
            &ctx(),
        )
        .unwrap();
        assert_eq!(e.timestamp().to_rfc3339(), "2026-10-10T20:55:36Z");
        assert_eq!(e.get("source.ip").unwrap().to_string(), "203.0.113.5");
        assert_eq!(e.get_str("user.name"), Some("frank"));
        assert_eq!(e.get_str("http.request.method"), Some("GET"));
        assert_eq!(e.get_str("url.path"), Some("/admin/login.php"));
        assert_eq!(e.get_str("url.query"), Some("user=x&id=1"));
        assert_eq!(e.get_str("http.version"), Some("1.1"));
        assert_eq!(
            e.get("http.response.status_code").and_then(Value::as_i64),
            Some(403)
        );
        assert_eq!(
            e.get("http.response.body.bytes").and_then(Value::as_i64),
            Some(2326)
        );
        assert_eq!(
            e.get_str("http.request.referrer"),
            Some("http://example.com/start.html")
        );
        assert_eq!(
            e.get_str("user_agent.original"),
            Some("Mozilla/5.0 (X11; Linux x86_64)")
        );
        assert_eq!(e.get_str("vigil.sourcetype"), Some("access_combined"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
    }

    #[test]
    fn error_log() {
        let e = parse_error_log(
            "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6",
            &ctx(),
        )
        .unwrap();
        assert_eq!(e.timestamp().to_rfc3339(), "2005-12-04T04:47:44Z");
        assert_eq!(e.get_str("log.level"), Some("error"));
        assert_eq!(
            e.get_str("message"),
            Some("mod_jk child workerEnv in error state 6")
        );
        let e = parse_error_log("[Wed Oct 11 14:32:52.123456 2026] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187:5555] File does not exist: /x", &ctx()).unwrap();
        assert_eq!(e.get("source.ip").unwrap().to_string(), "72.15.99.187");
        assert_eq!(e.get("process.pid").and_then(Value::as_i64), Some(35708));
        assert_eq!(e.get_str("log.level"), Some("error"));
    }

    #[test]
    fn common_line_and_oddities() {
        let e = parse(r#"::1 - - [22/Nov/2026:10:00:00 +0000] "-" 408 - "#, &ctx()).unwrap();
        assert_eq!(e.get_str("vigil.sourcetype"), Some("access_common"));
        assert!(e.has_tag(tag::MALFORMED_REQUEST));
        let e = parse(
            r#"198.51.100.1 - - [22/Nov/2026:10:00:00 +0000] "GET /a\"b HTTP/1.0" 200 5 "-" "sqlmap/1.7 (\"x\")""#,
            &ctx(),
        )
        .unwrap();
        assert_eq!(e.get_str("url.original"), Some("/a\"b"));
        assert_eq!(e.get_str("user_agent.original"), Some("sqlmap/1.7 (\"x\")"));
        assert!(parse("not an access log", &ctx()).is_err());
        assert!(parse(r#"1.2.3.4 - - [bad time] "GET / HTTP/1.1" 200 1"#, &ctx()).is_err());
    }
}
