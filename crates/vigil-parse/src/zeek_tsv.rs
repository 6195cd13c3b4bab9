//! Zeek's default log format: tab-separated values whose `#fields` and `#types` header lines
//! drive the parse (Zeek's ASCII writer: `#separator`, `#set_separator`, `#empty_field`,
//! `#unset_field`, `#path`, `#fields`, `#types`, then one record per line).
//!
//! A record becomes the event Zeek's JSON writer would have produced for it (same field names,
//! same JSON types: `count`/`int`/`port` are integers, `time` an ISO 8601 string, `interval` and
//! `double` numbers, `bool` true/false, `vector`/`set` arrays, unset fields absent, `_path` from
//! the header), and is then read by the JSON parser: a Zeek TSV log and its JSON twin give the
//! same events and the same rule matches (`tests/zeek_tsv.rs`). The raw line is kept in
//! `event.original`.
//!
//! The reader is a small state machine fed line by line ([`ZeekTsv::line`]); it never fails:
//! a record before any `#fields` header, or with a different number of columns, becomes a
//! `parse_error` event. Bounded: at most [`MAX_FIELDS`] columns.

use serde_json::{Map, Value as Json};
use vigil_event::Event;

use crate::{Format, ParseContext, parse_error_event, parse_line};

/// The most columns a header may declare.
pub const MAX_FIELDS: usize = 1024;

/// Whether a file's first line is a Zeek ASCII log header.
pub fn looks_like_zeek_tsv(first_line: &str) -> bool {
    first_line.starts_with("#separator ")
}

/// The header state of one Zeek TSV log.
#[derive(Debug, Clone)]
pub struct ZeekTsv {
    separator: String,
    set_separator: String,
    empty: String,
    unset: String,
    path: Option<String>,
    fields: Vec<String>,
    types: Vec<String>,
}

impl Default for ZeekTsv {
    fn default() -> Self {
        ZeekTsv {
            separator: "\t".into(),
            set_separator: ",".into(),
            empty: "(empty)".into(),
            unset: "-".into(),
            path: None,
            fields: Vec::new(),
            types: Vec::new(),
        }
    }
}

/// `\xNN` and `\\` escapes (Zeek writes non-printable bytes, separators and backslashes inside
/// values this way).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && bytes.get(i + 1) == Some(&b'x')
            && let Some(hex) = s.get(i + 2..i + 4)
            && let Ok(b) = u8::from_str_radix(hex, 16)
            // Other control bytes stay `\xNN`, as Zeek's JSON writer keeps them.
            && (b == b'\t' || b == b'\n' || b == b'\r' || (0x20..0x7f).contains(&b))
        {
            out.push(b);
            i += 4;
            continue;
        }
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Zeek's `time` (`1521911720.865716`) as its JSON writer's ISO 8601 text.
fn iso_time(s: &str) -> Option<String> {
    if s.contains(['e', 'E']) {
        // Zeek writes far times in exponent form (`2.385616957e+09`).
        let f: f64 = s.parse().ok()?;
        if !f.is_finite() || f.abs() > 1e13 {
            return None;
        }
        let micros = (f * 1e6).round() as i64;
        let t = chrono::DateTime::from_timestamp_micros(micros)?;
        return Some(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
    }
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let secs: i64 = secs.parse().ok()?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = format!("{frac:0<9}").parse().ok()?;
    let t = chrono::DateTime::from_timestamp(secs, nanos)?;
    Some(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

impl ZeekTsv {
    /// A reader with Zeek's default separators and no header yet.
    pub fn new() -> ZeekTsv {
        ZeekTsv::default()
    }

    /// Whether a `#fields` header has been read.
    pub fn has_fields(&self) -> bool {
        !self.fields.is_empty()
    }

    /// Reads one line: a header line updates the state and gives `None`; a record gives its
    /// event (a `parse_error` event when it cannot be read).
    pub fn line(&mut self, line: &str, ctx: &ParseContext) -> Option<Event> {
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(rest) = line.strip_prefix('#') {
            self.header(rest);
            return None;
        }
        if line.is_empty() {
            return None;
        }
        Some(self.record(line, ctx))
    }

    fn header(&mut self, rest: &str) {
        if let Some(sep) = rest.strip_prefix("separator ") {
            self.separator = unescape(sep);
            if self.separator.is_empty() {
                self.separator = "\t".into();
            }
            return;
        }
        let (key, value) = rest
            .split_once(self.separator.as_str())
            .unwrap_or((rest, ""));
        match key {
            "set_separator" => self.set_separator = value.to_owned(),
            "empty_field" => self.empty = value.to_owned(),
            "unset_field" => self.unset = value.to_owned(),
            "path" => self.path = Some(value.to_owned()),
            "fields" => {
                self.fields = value
                    .split(self.separator.as_str())
                    .take(MAX_FIELDS)
                    .map(str::to_owned)
                    .collect();
            }
            "types" => {
                self.types = value
                    .split(self.separator.as_str())
                    .take(MAX_FIELDS)
                    .map(str::to_owned)
                    .collect();
            }
            _ => {}
        }
    }

    /// One value of Zeek type `ty` as its JSON writer writes it.
    fn value(&self, ty: &str, raw: &str) -> Option<Json> {
        if let Some(inner) = ty
            .strip_prefix("vector[")
            .or_else(|| ty.strip_prefix("set["))
            .and_then(|t| t.strip_suffix(']'))
        {
            if raw == self.empty {
                return Some(Json::Array(Vec::new()));
            }
            return Some(Json::Array(
                raw.split(self.set_separator.as_str())
                    .map(|item| self.value(inner, item).unwrap_or(Json::Null))
                    .collect(),
            ));
        }
        Some(match ty {
            "count" | "int" | "port" => Json::from(raw.parse::<i64>().ok()?),
            "interval" | "double" => Json::from(raw.parse::<f64>().ok()?),
            "time" => Json::from(iso_time(raw)?),
            "bool" => Json::Bool(match raw {
                "T" => true,
                "F" => false,
                _ => return None,
            }),
            _ if raw == self.empty => Json::from(""),
            _ => Json::from(unescape(raw)),
        })
    }

    fn record(&self, line: &str, ctx: &ParseContext) -> Event {
        let fail = |reason: &str| {
            let mut e = parse_error_event(line, Format::Json, reason, ctx);
            e.insert(
                vigil_event::field::ERROR_MESSAGE,
                format!("not zeek tsv: {reason}"),
            );
            e.insert(vigil_event::field::VIGIL_SOURCE, ctx.source.as_str());
            e
        };
        if self.fields.is_empty() {
            return fail("a record before the #fields header");
        }
        let columns: Vec<&str> = line.split(self.separator.as_str()).collect();
        if columns.len() != self.fields.len() {
            return fail(&format!(
                "{} columns where the header declares {}",
                columns.len(),
                self.fields.len()
            ));
        }
        let mut obj = Map::new();
        if let Some(path) = &self.path {
            obj.insert("_path".into(), Json::from(path.as_str()));
        }
        for (i, (name, raw)) in self.fields.iter().zip(&columns).enumerate() {
            if *raw == self.unset {
                continue;
            }
            let ty = self.types.get(i).map_or("string", String::as_str);
            match self.value(ty, raw) {
                Some(v) => {
                    obj.insert(name.clone(), v);
                }
                None => return fail(&format!("{name}: {raw:?} is not a {ty}")),
            }
        }
        let json = Json::Object(obj).to_string();
        let mut inner = ctx.clone();
        inner.keep_original = false;
        let mut event = parse_line(json.as_bytes(), Format::Json, &inner);
        if ctx.keep_original {
            event.insert(vigil_event::field::EVENT_ORIGINAL, line);
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::Timestamp;

    const LOG: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tquery\trtt\tanswers\tAA\n#types\ttime\tstring\taddr\tport\taddr\tport\tstring\tinterval\tvector[string]\tbool\n1521911720.865716\tCq1\t10.47.1.100\t41772\t10.0.0.100\t53\tise.wrccdc.org\t-\ta.example,134.71.3.16\tF\n";

    #[test]
    fn header_drives_the_parse() {
        let ctx = ParseContext::new(Timestamp::from_secs(0), "t");
        let mut r = ZeekTsv::new();
        let events: Vec<Event> = LOG.lines().filter_map(|l| r.line(l, &ctx)).collect();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert!(!e.has_tag(vigil_event::tag::PARSE_ERROR), "{e:?}");
        assert_eq!(e.get_str("event.dataset"), Some("zeek.dns"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "10.47.1.100");
        assert_eq!(
            e.get("destination.port"),
            Some(&vigil_event::Value::Int(53))
        );
        assert_eq!(e.get("rtt"), None, "unset fields are absent");
        assert_eq!(
            e.timestamp(),
            Timestamp::parse("2018-03-24T17:15:20.865716Z").unwrap()
        );
        assert!(
            e.get_str("event.original")
                .unwrap()
                .starts_with("1521911720.865716\t")
        );
    }

    #[test]
    fn a_crlf_file_gives_the_same_events_and_blank_crlf_lines_none() {
        // Found by the zeek_tsv fuzz target: "\n\n\r" (a lone CR line is a blank CRLF line).
        let ctx = ParseContext::new(Timestamp::from_secs(0), "t");
        let mut r = ZeekTsv::new();
        assert!(r.line("\r", &ctx).is_none());
        let crlf = LOG.replace('\n', "\r\n\r\n");
        let events: Vec<Event> = crlf.split('\n').filter_map(|l| r.line(l, &ctx)).collect();
        assert_eq!(events.len(), 1);
        assert!(!events[0].has_tag(vigil_event::tag::PARSE_ERROR));
        assert_eq!(events[0].get_str("event.dataset"), Some("zeek.dns"));
    }

    #[test]
    fn bad_records_are_parse_errors() {
        let ctx = ParseContext::new(Timestamp::from_secs(0), "t");
        let mut r = ZeekTsv::new();
        let e = r.line("1.0\tx", &ctx).unwrap();
        assert!(e.has_tag(vigil_event::tag::PARSE_ERROR));
        for l in LOG.lines().take(7) {
            assert!(r.line(l, &ctx).is_none());
        }
        let e = r.line("1.0\tx", &ctx).unwrap();
        assert!(e.has_tag(vigil_event::tag::PARSE_ERROR));
        let e = r
            .line("notatime\tC\t1.2.3.4\t1\t1.2.3.4\t2\tq\t-\t-\tF", &ctx)
            .unwrap();
        assert!(e.has_tag(vigil_event::tag::PARSE_ERROR));
        assert_eq!(iso_time("1.1234567891"), None);
        assert_eq!(unescape("a\\x41\\x0"), "aA\\x0");
        assert_eq!(unescape("\\x09\\x01"), "\t\\x01");
        assert_eq!(unescape("O=VMware\\\\, Inc"), "O=VMware\\, Inc");
    }
}
