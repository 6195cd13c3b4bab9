//! Readers of indicator feeds: plain lists, CSV, STIX 2.1 bundles and MISP events or feeds.
//!
//! Each reader takes the file's bytes (no I/O here) and a cap on indicators; an entry that is
//! not an indicator Vigil can match is skipped and counted, never an error; a file that is
//! not of its format, or holds more than the cap, is an error naming why, and the caller keeps
//! the list it had.

use serde_json::Value as Json;

use crate::indicator::{Indicator, Kind};

/// A feed's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One indicator per line; `#` starts a comment; the kind is inferred from the value.
    Plain,
    /// CSV with a header naming a `value` (or `indicator`) column, and optionally `type`,
    /// `provider`, `first_seen`, `last_seen`, `confidence`, `description`; without such a
    /// header, the first column of every row is the value.
    Csv,
    /// A STIX 2.1 bundle: its `indicator` objects with STIX patterns.
    Stix,
    /// A MISP event (`{"Event": …}`), a REST search answer (`{"response": …}`), or a MISP
    /// feed's `manifest.json` (whose events are the `<uuid>.json` files beside it).
    Misp,
}

impl Format {
    /// The format's name, as shown in the UI and API.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Plain => "plain",
            Format::Csv => "csv",
            Format::Stix => "stix",
            Format::Misp => "misp",
        }
    }

    /// Guesses the format from the file name and its first bytes: `.csv` is CSV, a JSON
    /// document is STIX when it is a bundle and MISP otherwise, anything else is plain.
    pub fn detect(name: &str, bytes: &[u8]) -> Format {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            return Format::Csv;
        }
        let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
        if start.is_some_and(|s| bytes[s] == b'{' || bytes[s] == b'[') {
            let head = &bytes[..bytes.len().min(4096)];
            let head = String::from_utf8_lossy(head);
            if head.contains("\"bundle\"") || head.contains("\"spec_version\"") {
                return Format::Stix;
            }
            return Format::Misp;
        }
        Format::Plain
    }
}

/// Why a feed file could not be read. The previous list of that file stays in force.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeedError {
    /// More indicators than allowed.
    #[error("more than {max} indicators; raise [intel] max_indicators or split the feed")]
    TooMany {
        /// The cap.
        max: usize,
    },
    /// The file is not of the format it was taken for.
    #[error("not a valid {format} feed: {message}")]
    Invalid {
        /// The format.
        format: &'static str,
        /// What is wrong, with a position where known.
        message: String,
    },
}

fn invalid(format: Format, message: impl ToString) -> FeedError {
    FeedError::Invalid {
        format: format.as_str(),
        message: message.to_string(),
    }
}

/// What a reader found: the indicators and how many entries it skipped (not matchable).
#[derive(Debug, Default)]
pub struct Parsed {
    /// The indicators, in file order.
    pub indicators: Vec<Indicator>,
    /// Entries that were not indicators Vigil matches (other types, bad values, patterns
    /// with `AND`, revoked or `to_ids: false` entries).
    pub skipped: usize,
}

impl Parsed {
    fn push(&mut self, indicator: Option<Indicator>, max: usize) -> Result<(), FeedError> {
        match indicator {
            Some(i) => {
                if self.indicators.len() >= max {
                    return Err(FeedError::TooMany { max });
                }
                self.indicators.push(i);
            }
            None => self.skipped += 1,
        }
        Ok(())
    }
}

/// Reads a feed of `format`; `provider` names it where the feed does not (the file's name).
pub fn parse(
    format: Format,
    bytes: &[u8],
    provider: &str,
    max: usize,
) -> Result<Parsed, FeedError> {
    match format {
        Format::Plain => plain(bytes, provider, max),
        Format::Csv => csv(bytes, provider, max),
        Format::Stix => stix(&json(format, bytes)?, provider, max),
        Format::Misp => misp(&json(format, bytes)?, provider, max),
    }
}

fn json(format: Format, bytes: &[u8]) -> Result<Json, FeedError> {
    // serde_json refuses nesting deeper than 128 levels, so a hostile file cannot recurse
    // without bound.
    serde_json::from_slice(bytes).map_err(|e| invalid(format, e))
}

/// One indicator per line.
pub fn plain(bytes: &[u8], provider: &str, max: usize) -> Result<Parsed, FeedError> {
    let text = std::str::from_utf8(bytes).map_err(|e| invalid(Format::Plain, e))?;
    let mut out = Parsed::default();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let indicator = Kind::infer(line).and_then(|k| Indicator::new(k, line, provider));
        out.push(indicator, max)?;
    }
    Ok(out)
}

/// CSV, with or without a header.
pub fn csv(bytes: &[u8], provider: &str, max: usize) -> Result<Parsed, FeedError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(bytes);
    let mut out = Parsed::default();
    let mut columns: Option<Columns> = None;
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| invalid(Format::Csv, e))?;
        if n == 0 {
            columns = Columns::from_header(&record);
            if columns.is_some() {
                continue;
            }
        }
        let col = columns.as_ref();
        let get = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let Some(value) = get(Some(col.map_or(0, |c| c.value))) else {
            out.skipped += 1;
            continue;
        };
        let kind = match get(col.and_then(|c| c.kind)) {
            Some(t) => Kind::parse(t),
            None => Kind::infer(value),
        };
        let provider = get(col.and_then(|c| c.provider)).unwrap_or(provider);
        let indicator = kind
            .and_then(|k| Indicator::new(k, value, provider))
            .map(|mut i| {
                i.first_seen = get(col.and_then(|c| c.first_seen)).map(str::to_owned);
                i.last_seen = get(col.and_then(|c| c.last_seen)).map(str::to_owned);
                i.confidence = get(col.and_then(|c| c.confidence)).and_then(confidence_text);
                i.description = get(col.and_then(|c| c.description)).map(str::to_owned);
                i
            });
        out.push(indicator, max)?;
    }
    Ok(out)
}

struct Columns {
    value: usize,
    kind: Option<usize>,
    provider: Option<usize>,
    first_seen: Option<usize>,
    last_seen: Option<usize>,
    confidence: Option<usize>,
    description: Option<usize>,
}

impl Columns {
    fn from_header(record: &::csv::StringRecord) -> Option<Columns> {
        let find = |names: &[&str]| {
            record
                .iter()
                .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
        };
        Some(Columns {
            value: find(&["value", "indicator", "ioc"])?,
            kind: find(&["type", "kind"]),
            provider: find(&["provider", "feed", "source"]),
            first_seen: find(&["first_seen", "firstseen"]),
            last_seen: find(&["last_seen", "lastseen"]),
            confidence: find(&["confidence"]),
            description: find(&["description", "comment", "name"]),
        })
    }
}

fn confidence_text(text: &str) -> Option<u8> {
    text.parse::<u8>().ok().filter(|c| *c <= 100)
}

fn text(v: Option<&Json>) -> Option<String> {
    v.and_then(Json::as_str)
        .map(|s| s.chars().take(256).collect())
}

/// A STIX 2.1 bundle.
pub fn stix(doc: &Json, provider: &str, max: usize) -> Result<Parsed, FeedError> {
    let objects = match doc {
        Json::Object(o) if o.get("type").and_then(Json::as_str) == Some("bundle") => o
            .get("objects")
            .and_then(Json::as_array)
            .ok_or_else(|| invalid(Format::Stix, "the bundle has no \"objects\" list"))?,
        Json::Object(o) if o.get("type").and_then(Json::as_str) == Some("indicator") => {
            std::slice::from_ref(doc)
        }
        _ => {
            return Err(invalid(
                Format::Stix,
                "not a STIX bundle (\"type\": \"bundle\")",
            ));
        }
    };
    // Providers: the identities that created indicators.
    let identities: std::collections::HashMap<&str, &str> = objects
        .iter()
        .filter(|o| o.get("type").and_then(Json::as_str) == Some("identity"))
        .filter_map(|o| Some((o.get("id")?.as_str()?, o.get("name")?.as_str()?)))
        .collect();
    let mut out = Parsed::default();
    for object in objects {
        if object.get("type").and_then(Json::as_str) != Some("indicator") {
            continue;
        }
        let usable = object
            .get("pattern_type")
            .and_then(Json::as_str)
            .is_none_or(|t| t == "stix")
            && object.get("revoked").and_then(Json::as_bool) != Some(true);
        let Some(pattern) = object
            .get("pattern")
            .and_then(Json::as_str)
            .filter(|_| usable)
        else {
            out.skipped += 1;
            continue;
        };
        let provider = object
            .get("created_by_ref")
            .and_then(Json::as_str)
            .and_then(|r| identities.get(r).copied())
            .unwrap_or(provider);
        let Some(atoms) = stix_pattern(pattern) else {
            out.skipped += 1;
            continue;
        };
        if atoms.is_empty() {
            out.skipped += 1;
        }
        for (kind, value) in atoms {
            let indicator = Indicator::new(kind, &value, provider).map(|mut i| {
                i.first_seen = text(object.get("valid_from").or(object.get("created")));
                i.last_seen = text(object.get("modified"));
                i.confidence = object
                    .get("confidence")
                    .and_then(Json::as_u64)
                    .and_then(|c| u8::try_from(c).ok())
                    .filter(|c| *c <= 100);
                i.description = text(object.get("name"));
                i
            });
            out.push(indicator, max)?;
        }
    }
    Ok(out)
}

/// The atomic indicators of a STIX pattern: the `=` comparisons of the object paths Vigil
/// matches, when the pattern is a disjunction of them (`[a = 'x' OR b = 'y'] OR [c = 'z']`).
/// `None` for a pattern Vigil cannot reduce to single values (`AND`, `FOLLOWEDBY`, `NOT`, a
/// qualifier), which is skipped rather than matched wrongly.
pub fn stix_pattern(pattern: &str) -> Option<Vec<(Kind, String)>> {
    let tokens = lex(pattern)?;
    let mut atoms = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Tok::Open | Tok::Close => i += 1,
            Tok::Word(w) if w.eq_ignore_ascii_case("or") => i += 1,
            Tok::Word(path) => {
                let (Some(Tok::Op(op)), Some(Tok::Str(value))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                else {
                    return None;
                };
                if op != "=" {
                    return None;
                }
                if let Some(kind) = stix_path(path) {
                    atoms.push((kind, value.clone()));
                }
                i += 3;
            }
            Tok::Op(_) | Tok::Str(_) => return None,
        }
    }
    Some(atoms)
}

fn stix_path(path: &str) -> Option<Kind> {
    let path = path.to_ascii_lowercase().replace('\'', "");
    match path.as_str() {
        "ipv4-addr:value" | "ipv6-addr:value" => Some(Kind::Ip),
        "domain-name:value" => Some(Kind::Domain),
        "url:value" => Some(Kind::Url),
        "file:hashes.md5" => Some(Kind::Md5),
        "file:hashes.sha-1" | "file:hashes.sha1" => Some(Kind::Sha1),
        "file:hashes.sha-256" | "file:hashes.sha256" => Some(Kind::Sha256),
        _ => None,
    }
}

#[derive(Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    Word(String),
    Op(String),
    Str(String),
}

/// Most tokens in one pattern: a pattern longer than this is not an indicator list.
const MAX_PATTERN_TOKENS: usize = 30_000;

fn lex(pattern: &str) -> Option<Vec<Tok>> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(&c) = chars.peek() {
        if tokens.len() > MAX_PATTERN_TOKENS {
            return None;
        }
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '[' | '(' => {
                chars.next();
                tokens.push(Tok::Open);
            }
            ']' | ')' => {
                chars.next();
                tokens.push(Tok::Close);
            }
            '\'' => {
                chars.next();
                tokens.push(Tok::Str(quoted(&mut chars)?));
            }
            '=' | '!' | '<' | '>' => {
                let mut op = String::new();
                while let Some(&c) = chars.peek() {
                    if matches!(c, '=' | '!' | '<' | '>') {
                        op.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Tok::Op(op));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace()
                        || matches!(c, '[' | ']' | '(' | ')' | '=' | '!' | '<' | '>')
                    {
                        break;
                    }
                    chars.next();
                    if c == '\'' {
                        // A quoted path step: file:hashes.'SHA-256'.
                        word.push('\'');
                        word.push_str(&quoted(&mut chars)?);
                        word.push('\'');
                    } else {
                        word.push(c);
                    }
                }
                let upper = word.to_ascii_uppercase();
                if matches!(
                    upper.as_str(),
                    "AND"
                        | "FOLLOWEDBY"
                        | "NOT"
                        | "WITHIN"
                        | "REPEATS"
                        | "START"
                        | "STOP"
                        | "MATCHES"
                        | "LIKE"
                        | "IN"
                        | "ISSUBSET"
                        | "ISSUPERSET"
                        | "EXISTS"
                ) {
                    return None;
                }
                tokens.push(Tok::Word(word));
            }
        }
    }
    Some(tokens)
}

/// A STIX string literal after its opening quote: `\'` and `\\` are escapes.
fn quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
    let mut s = String::new();
    loop {
        match chars.next()? {
            '\\' => s.push(chars.next()?),
            '\'' => return Some(s),
            c => s.push(c),
        }
    }
}

/// Most event files one MISP feed manifest may name.
pub const MAX_MANIFEST_EVENTS: usize = 10_000;

/// Most MISP events read from one document.
const MAX_MISP_EVENTS: usize = 100_000;

/// A MISP event, a REST answer (`{"response": [{"Event": …}]}` or `{"response":
/// {"Attribute": […]}}`), or a list of events. A feed manifest is read by the caller, which
/// knows the directory ([`misp_manifest_events`]).
pub fn misp(doc: &Json, provider: &str, max: usize) -> Result<Parsed, FeedError> {
    let mut out = Parsed::default();
    let mut events: Vec<&Json> = Vec::new();
    let mut loose: Vec<&Json> = Vec::new();
    match doc {
        Json::Object(o) if o.contains_key("Event") => events.push(&o["Event"]),
        Json::Object(o) if o.contains_key("response") => match &o["response"] {
            Json::Array(list) => events.extend(list.iter().filter_map(|e| e.get("Event"))),
            Json::Object(r) => {
                if let Some(attrs) = r.get("Attribute").and_then(Json::as_array) {
                    loose.extend(attrs);
                }
            }
            _ => {
                return Err(invalid(
                    Format::Misp,
                    "\"response\" is neither a list nor an object",
                ));
            }
        },
        Json::Object(o) if o.contains_key("Attribute") => loose.extend(
            o["Attribute"]
                .as_array()
                .map(|a| a.iter().collect::<Vec<_>>())
                .unwrap_or_default(),
        ),
        Json::Array(list) => events.extend(list.iter().map(|e| e.get("Event").unwrap_or(e))),
        _ => {
            return Err(invalid(
                Format::Misp,
                "expected a MISP event ({\"Event\": …}), a REST answer ({\"response\": …}) or a feed manifest",
            ));
        }
    }
    if events.len() > MAX_MISP_EVENTS {
        return Err(invalid(
            Format::Misp,
            format!("more than {MAX_MISP_EVENTS} events"),
        ));
    }
    for event in events {
        let provider = event
            .get("Orgc")
            .and_then(|o| o.get("name"))
            .and_then(Json::as_str)
            .unwrap_or(provider);
        let info = text(event.get("info"));
        let mut attrs: Vec<&Json> = event
            .get("Attribute")
            .and_then(Json::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        // Attributes inside MISP objects (one level: objects do not nest).
        for object in event
            .get("Object")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            attrs.extend(
                object
                    .get("Attribute")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten(),
            );
        }
        for attr in attrs {
            misp_attribute(attr, provider, info.as_deref(), &mut out, max)?;
        }
    }
    for attr in loose {
        misp_attribute(attr, provider, None, &mut out, max)?;
    }
    Ok(out)
}

/// Whether `doc` is a MISP feed manifest: an object of event UUIDs to event summaries.
pub fn is_misp_manifest(doc: &Json) -> bool {
    match doc {
        Json::Object(o) => {
            !o.is_empty()
                && !o.contains_key("Event")
                && !o.contains_key("response")
                && o.iter().all(|(k, v)| {
                    k.len() == 36
                        && k.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
                        && v.is_object()
                })
        }
        _ => false,
    }
}

/// The event files a MISP feed manifest names (`<uuid>.json`), at most `limit`.
pub fn misp_manifest_events(doc: &Json, limit: usize) -> Result<Vec<String>, FeedError> {
    let Json::Object(o) = doc else {
        return Ok(Vec::new());
    };
    if o.len() > limit {
        return Err(invalid(
            Format::Misp,
            format!("the manifest names more than {limit} events"),
        ));
    }
    Ok(o.keys().map(|uuid| format!("{uuid}.json")).collect())
}

fn misp_attribute(
    attr: &Json,
    provider: &str,
    info: Option<&str>,
    out: &mut Parsed,
    max: usize,
) -> Result<(), FeedError> {
    let kind_name = attr.get("type").and_then(Json::as_str).unwrap_or("");
    let value = attr.get("value").and_then(Json::as_str).unwrap_or("");
    if attr.get("to_ids").and_then(Json::as_bool) == Some(false)
        || attr.get("deleted").and_then(Json::as_bool) == Some(true)
    {
        out.skipped += 1;
        return Ok(());
    }
    // Composite types: `ip-dst|port`, `domain|ip`, `filename|sha256`.
    let (kind, value) = match kind_name.split_once('|') {
        Some((first, second)) => {
            let (v1, v2) = value.split_once('|').unwrap_or((value, ""));
            match (Kind::parse(first), Kind::parse(second)) {
                (Some(k), _) if first != "filename" => (Some(k), v1),
                (_, Some(k)) => (Some(k), v2),
                _ => (None, value),
            }
        }
        None => (Kind::parse(kind_name), value),
    };
    let indicator = kind
        .and_then(|k| Indicator::new(k, value, provider))
        .map(|mut i| {
            i.first_seen = text(attr.get("first_seen")).filter(|s| !s.is_empty());
            i.last_seen = text(attr.get("last_seen")).filter(|s| !s.is_empty());
            if i.first_seen.is_none() {
                i.first_seen = misp_timestamp(attr.get("timestamp"));
            }
            i.description = info.map(str::to_owned);
            i
        });
    out.push(indicator, max)
}

/// MISP's `timestamp` (Unix seconds as text or a number) as RFC 3339.
fn misp_timestamp(v: Option<&Json>) -> Option<String> {
    let secs = match v? {
        Json::String(s) => s.parse::<i64>().ok()?,
        Json::Number(n) => n.as_i64()?,
        _ => return None,
    };
    let ts = vigil_event::Timestamp::from_nanos(secs.checked_mul(1_000_000_000)?);
    Some(ts.to_rfc3339())
}

#[cfg(test)]
mod tests;
