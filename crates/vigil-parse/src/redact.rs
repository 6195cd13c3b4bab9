//! Secret masking, applied to every string of an event before it reaches the ledger (which is
//! forever). A secret is replaced by a typed marker, `[REDACTED:<kind>]`, so analysts still see
//! that something was there and what it was.
//!
//! Kinds: `password` (key=value, JSON, form bodies, URL query strings and `user:pass@` in URLs,
//! and any field named like a password), `authorization` (HTTP `Authorization` headers),
//! `bearer` (bearer tokens), `jwt`, `aws_secret` (AWS secret access keys: named, or the 40
//! characters right after an access key id), `private_key` (PEM private key blocks), `card`
//! (13–19 digit numbers with optional spaces or dashes that start like a payment card and pass
//! the Luhn check), plus any configured extra patterns.
//!
//! Identifiers are not secrets, and masking one loses what an investigator needs (issue 20,
//! measured over the whole public corpus by `tests/masking_report.rs`): AWS access key ids
//! (`AKIA…`/`ASIA…` name a key; the secret key is what must never be stored) are kept; a
//! number that is the value of an id, flags or counter (`flow_id`, `QueryOptions`) is no card;
//! `pam_unix(passwd:chauthtok)` names a PAM management group, not a password; `Elevated Token:
//! Yes` is a yes/no; an `"authorization": {…}` object (Azure Activity) is no header; and a
//! detection rule's signature text (`alert.signature`, `rule.name`) is written by the rule's
//! author, never by the observed party, so it is not searched at all.
//!
//! One `RegexSet` pass tells which patterns occur in a string; only those run.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use vigil_event::{Event, Value, field};

use crate::clean::{NameMemo, NameVerdict, Verbatim, with_name_memo};

/// Field names (last dotted component, lower case) whose whole value is a secret.
const SECRET_FIELD_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "private_key",
    "authorization",
    "credentials",
    "session_token",
    "auth_token",
    "x-api-key",
    "secret_access_key",
    "secret_key",
    "aws_secret_access_key",
];

/// Fields (last dotted component, or the whole name) that hold a detection rule's text —
/// written by the rule's author, not by whoever is observed — and are never searched.
const RULE_TEXT_FIELDS: &[&str] = &["signature", "rule.name"];

/// A secret pattern. The named groups `pre` and `post`, when present, are kept around the
/// marker (key names, separators); a quoted value keeps its quotes, so JSON stays JSON.
struct Pattern {
    kind: &'static str,
    regex: Regex,
}

const PASSWORD_KEYS: &str = r"password|passwd|pwd|pass|passphrase|secret|token|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|refresh[_-]?token|session[_-]?token|client[_-]?secret|private[_-]?key";

/// Values a key named like a secret can have that are not one: yes/no answers, empty
/// placeholders and Windows message-table references (`Elevated Token: Yes`, `%%1842`).
fn is_placeholder_value(value: &str) -> bool {
    let mut v = value.trim_matches(['"', '\'']);
    // Inside a JSON string, a label's value starts after escaped tabs or newlines and ends at
    // the next escape (`Elevated Token:\t\tYes\n\n…`).
    while let Some(rest) = ["\\t", "\\n", "\\r"].iter().find_map(|e| v.strip_prefix(e)) {
        v = rest;
    }
    if let Some(end) = v.find('\\') {
        v = &v[..end];
    }
    matches!(
        v.to_ascii_lowercase().as_str(),
        "yes" | "no" | "true" | "false" | "-" | "none" | "null" | "n/a"
    ) || (v.starts_with("%%") && v[2..].bytes().all(|b| b.is_ascii_digit()))
}

/// PAM's management groups: `pam_unix(passwd:chauthtok)` names the `passwd` service and the
/// `chauthtok` group, not a password.
const PAM_GROUPS: &[&str] = &["auth", "account", "session", "chauthtok", "password"];

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let p = |kind, re: &str| Pattern {
        kind,
        regex: Regex::new(re).expect("static pattern"),
    };
    vec![
        p(
            "private_key",
            r"(?s)-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)",
        ),
        p(
            "jwt",
            r"(?-u:\b)eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
        ),
        p(
            "authorization",
            r#"(?i)(?P<pre>(?-u:\b)authorization"?\s*[:=]\s*"?)(?:(?:basic|bearer|digest|negotiate|ntlm|token|splunk|apikey|aws4-hmac-sha256)\s+)?[^\s",;{\[][^\s",;]*(?:,\s*[A-Za-z]+=[^\s",;]+)*"#,
        ),
        p(
            "bearer",
            r"(?i)(?P<pre>(?-u:\b)bearer\s+)[A-Za-z0-9._~+/-]{6,}=*",
        ),
        p(
            "aws_secret",
            r#"(?i)(?P<pre>(?:aws_?)?secret_?access_?key"?\s*[=:]\s*"?)[A-Za-z0-9/+=]{40}"#,
        ),
        // The secret key right after its access key id (a credentials file or CSV row): the
        // id is kept, the 40 characters after it are masked.
        p(
            "aws_secret",
            r#"(?P<pre>(?-u:\b)(?:AKIA|ASIA)[A-Z0-9]{16}["']?\s*[,:;=|\s]\s*["']?)[A-Za-z0-9/+]{40}(?P<post>[^A-Za-z0-9/+=]|$)"#,
        ),
        p(
            "password",
            &format!(r#"(?i)(?P<pre>"(?:{PASSWORD_KEYS})"\s*:\s*)"(?:[^"\\]|\\.)*""#),
        ),
        p(
            "password",
            &format!(
                r#"(?i)(?P<pre>(?:^|[\s?&;,{{(\["])["']?(?P<key>{PASSWORD_KEYS})["']?\s*[=:]\s*)(?:"[^"]*"|'[^']*'|[^\s&;,"'}})\]]+)"#
            ),
        ),
        p(
            "password",
            r"(?i)(?P<pre>(?-u:\b)[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+(?P<post>@)",
        ),
    ]
});

/// Words at least one of which occurs (ignoring ASCII case) in any text a built-in pattern
/// matches. One pass of this automaton rules most strings out before any regex runs.
static PREFILTER: LazyLock<aho_corasick::AhoCorasick> = LazyLock::new(|| {
    aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build([
            "private key",
            "eyj",
            "authorization",
            "bearer",
            "secret",
            "pass",
            "pwd",
            "token",
            "apikey",
            "api_key",
            "api-key",
            "private_key",
            "private-key",
            "privatekey",
            "://",
            "akia",
            "asia",
        ])
        .expect("static keywords")
});

/// Indexes into the prefilter's keywords that name a key (`password=…`, `"token": …`): they
/// only count when an `=` or `:` follows the rest of the key.
const KEY_KEYWORDS: std::ops::Range<usize> = 4..14;

/// Whether any built-in pattern could match: a keyword occurs, and for key-like keywords
/// ("pass" in "Failed password for root" is not one) a separator follows.
fn prefilter_hit(s: &str) -> bool {
    let bytes = s.as_bytes();
    PREFILTER.find_iter(s).any(|m| {
        if !KEY_KEYWORDS.contains(&m.pattern().as_usize()) {
            return true;
        }
        let mut i = m.end();
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'-')
        {
            i += 1;
        }
        while i < bytes.len()
            && (bytes[i] == b'"' || bytes[i] == b'\'' || bytes[i] == b' ' || bytes[i] == b'\t')
        {
            i += 1;
        }
        i < bytes.len() && (bytes[i] == b'=' || bytes[i] == b':')
    })
}

/// [`prefilter_hit`] over every occurrence of every keyword (overlapping ones too): the
/// reference [`crate::clean::text_is_clean`] is tested against.
#[cfg(test)]
pub(crate) fn prefilter_hit_anywhere(bytes: &[u8]) -> bool {
    PREFILTER.find_overlapping_iter(bytes).any(|m| {
        if !KEY_KEYWORDS.contains(&m.pattern().as_usize()) {
            return true;
        }
        let mut i = m.end();
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'-')
        {
            i += 1;
        }
        while i < bytes.len()
            && (bytes[i] == b'"' || bytes[i] == b'\'' || bytes[i] == b' ' || bytes[i] == b'\t')
        {
            i += 1;
        }
        i < bytes.len() && (bytes[i] == b'=' || bytes[i] == b':')
    })
}

/// Whether [`Redactor::redact_event`] with no extra patterns would change nothing: no field is
/// named like a secret (top level or inside a list's maps), and every field name and string
/// value is [clean](crate::clean::text_is_clean) — then no per-string pass could find anything (a clean
/// text fails both gates of `redact_pass`: no keyword hit, overlapping ones included, and no
/// long digit run). Values `verbatim` records as parts of `line`, which the caller found
/// clean, are parts of a clean text and so clean: they are compared with the line, not
/// scanned.
fn event_is_clean(event: &Event, line_and_verbatim: Option<(&str, &Verbatim)>) -> bool {
    fn value_is_clean(value: &Value, memo: &mut NameMemo) -> bool {
        match value {
            Value::Str(s) => memo.value_is_clean(s.as_bytes()),
            Value::List(items) => items.iter().all(|item| value_is_clean(item, memo)),
            Value::Map(map) => map
                .iter()
                .all(|(k, v)| !is_secret_field(k) && value_is_clean(v, memo)),
            _ => true,
        }
    }
    with_name_memo(|names| {
        event.entries().all(|(key, value)| {
            // A known name's verdict is a table look-up by its place; any other name is
            // checked (through the memo) as before.
            let verdict = match key.index() {
                Some(i) => crate::clean::known_name_verdicts()[i],
                None => NameVerdict::of(key, names),
            };
            match verdict {
                // Vigil's own provenance is never masked, so it need not be clean.
                NameVerdict::Provenance => true,
                NameVerdict::Unclean => false,
                NameVerdict::Clean => {
                    line_and_verbatim.is_some_and(|(line, v)| v.holds(line, key, value))
                        || value_is_clean(value, names)
                }
            }
        })
    })
}

static PATTERN_SET: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(PATTERNS.iter().map(|p| p.regex.as_str())).expect("static patterns")
});

static CARD_CANDIDATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)[2-6]\d(?:[ -]?\d){11,17}(?-u:\b)").expect("static pattern")
});

/// Counts of replacements by kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Redactions {
    /// `(kind, count)` pairs.
    pub by_kind: Vec<(String, u64)>,
}

impl Redactions {
    fn add(&mut self, kind: &str, n: u64) {
        if n == 0 {
            return;
        }
        match self.by_kind.iter_mut().find(|(k, _)| k == kind) {
            Some((_, c)) => *c += n,
            None => self.by_kind.push((kind.to_owned(), n)),
        }
    }

    /// Total replacements.
    pub fn total(&self) -> u64 {
        self.by_kind.iter().map(|(_, n)| n).sum()
    }
}

/// A redaction configuration that cannot be used. Never worth a retry: the configuration
/// must change.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RedactError {
    /// An operator's pattern is not a valid regular expression (or compiles too large). The
    /// message names the pattern by its kind only: the regex compiler quotes the pattern, and a
    /// pattern may spell out the secret it masks.
    #[error("redaction pattern {kind:?}: {reason} (the pattern itself is not shown)")]
    Pattern {
        /// The pattern's kind (its name in `[redaction]` / `--redact KIND=REGEX`).
        kind: String,
        /// Why, without the pattern's text.
        reason: &'static str,
    },
}

/// For callers that report configuration errors as text (`Result<_, String>` and `?`).
impl From<RedactError> for String {
    fn from(e: RedactError) -> String {
        e.to_string()
    }
}

/// Masks secrets. Built once; shared by every listener.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    extra: Vec<(String, Regex)>,
    disabled: bool,
}

impl Redactor {
    /// The built-in patterns plus `extra` `(kind, regex)` pairs from the configuration.
    pub fn new(extra: &[(String, String)]) -> Result<Redactor, RedactError> {
        let extra = extra
            .iter()
            .map(|(kind, re)| {
                Regex::new(re)
                    .map(|r| (kind.clone(), r))
                    .map_err(|e| RedactError::Pattern {
                        kind: kind.clone(),
                        reason: match e {
                            regex::Error::CompiledTooBig(_) => "compiles too large",
                            _ => "not a valid regular expression",
                        },
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Redactor {
            extra,
            disabled: false,
        })
    }

    /// A redactor that changes nothing (only when explicitly configured off).
    pub fn disabled() -> Redactor {
        Redactor {
            extra: Vec::new(),
            disabled: true,
        }
    }

    /// Masks secrets in every string of the event, in place — except Vigil's record of where
    /// the event came from ([`crate::reserved::PROVENANCE_FIELDS`]), which it never changes.
    pub fn redact_event(&self, event: &mut Event) -> Redactions {
        if self.disabled {
            return Redactions::default();
        }
        // Most events hold no secret: one scan over all their text proves it (exactly what the
        // per-field passes below would find, see `event_is_clean`) and skips them.
        if self.extra.is_empty() && event_is_clean(event, None) {
            return Redactions::default();
        }
        self.redact_fields(event)
    }

    /// Whether [`crate::clean::text_is_clean`] decides for this redactor: on, with no extra patterns (an
    /// operator's pattern can match anything).
    pub(crate) fn scan_decides(&self) -> bool {
        !self.disabled && self.extra.is_empty()
    }

    /// [`Redactor::redact_event`] for an event parsed from `line`, which the caller found
    /// [clean](crate::clean::text_is_clean) with [`Redactor::scan_decides`] true: the fields `verbatim`
    /// records as parts of the line are not scanned again. Same result as `redact_event`.
    pub(crate) fn redact_parsed(
        &self,
        event: &mut Event,
        line: &str,
        verbatim: &Verbatim,
    ) -> Redactions {
        if event_is_clean(event, Some((line, verbatim))) {
            return Redactions::default();
        }
        self.redact_fields(event)
    }

    /// [`Redactor::redact_event`] field by field, without the whole-event check.
    pub(crate) fn redact_fields(&self, event: &mut Event) -> Redactions {
        let mut counts = Redactions::default();
        // Vigil's record of where the event came from is never masked (`reserved`).
        let keys: Vec<String> = event
            .fields()
            .map(|(k, _)| k)
            .filter(|k| !crate::reserved::is_provenance_field(k))
            .map(str::to_owned)
            .collect();
        for key in keys {
            let secret_name = is_secret_field(&key);
            if let Some(value) = event.get_mut(&key)
                && !is_rule_text_field(&key)
            {
                self.redact_value(value, secret_name, Some(&key), &mut counts);
            }
            // Field names come from input too (logfmt words, JSON keys): mask them as well.
            if let Some(clean_key) = self.redact_str(&key, &mut counts)
                && let Some(value) = event.remove(&key)
            {
                event.insert(clean_key, value);
            }
        }
        if !counts.by_kind.is_empty() {
            let mut kinds: Vec<Value> = match event.remove(field::VIGIL_REDACTED) {
                Some(Value::List(items)) => items,
                _ => Vec::new(),
            };
            for (kind, _) in &counts.by_kind {
                if !kinds.iter().any(|k| k.as_str() == Some(kind)) {
                    kinds.push(Value::from(kind.as_str()));
                }
            }
            event.insert(
                vigil_event::name!(field::VIGIL_REDACTED),
                Value::List(kinds),
            );
        }
        counts
    }

    /// Masks secrets in raw input before it is parsed, so that no field derived from it
    /// (a logfmt key, a split token) can carry a secret the whole text would have shown.
    pub fn redact_raw(&self, text: &str, counts: &mut Redactions) -> Option<String> {
        if self.disabled {
            return None;
        }
        self.redact_str(text, counts)
    }

    /// Whether this redactor is switched off.
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// `number_field`: the field's name; when it names an id, flags or a counter
    /// ([`field_names_a_number`]), a number that is its whole value is no card.
    fn redact_value(
        &self,
        value: &mut Value,
        secret_name: bool,
        number_field: Option<&str>,
        counts: &mut Redactions,
    ) {
        match value {
            Value::Str(s) => {
                if secret_name && !s.is_empty() && !s.starts_with("[REDACTED:") {
                    *s = "[REDACTED:password]".to_owned();
                    counts.add("password", 1);
                } else if let Some(clean) = self.redact_str_in(s, counts, number_field) {
                    *s = clean;
                }
            }
            Value::List(items) => {
                for item in items {
                    self.redact_value(item, secret_name, number_field, counts);
                }
            }
            Value::Map(map) => {
                for (k, v) in map.iter_mut() {
                    self.redact_value(v, secret_name || is_secret_field(k), number_field, counts);
                }
            }
            Value::Int(_) | Value::Float(_) if secret_name => {
                *value = Value::Str("[REDACTED:password]".to_owned());
                counts.add("password", 1);
            }
            _ => {}
        }
    }

    /// The string with secrets masked, or `None` when there was nothing to mask.
    pub fn redact_str(&self, s: &str, counts: &mut Redactions) -> Option<String> {
        self.redact_str_in(s, counts, None)
    }

    /// [`Redactor::redact_str`] for the value of a field; `number_field`: its name (see
    /// [`field_names_a_number`]: a value that is one bare number is then no card).
    fn redact_str_in(
        &self,
        s: &str,
        counts: &mut Redactions,
        number_field: Option<&str>,
    ) -> Option<String> {
        // One pass can change what another pattern sees (a masked JSON value gains quotes), so
        // repeat until nothing changes: the result is then a fixed point, and masking twice
        // gives the same text as masking once. Every pass only replaces text with markers, so
        // this ends quickly; the bound is a safety net.
        let mut current: Option<String> = None;
        for _ in 0..4 {
            match self.redact_pass(current.as_deref().unwrap_or(s), counts, number_field) {
                Some(next) => current = Some(next),
                None => break,
            }
        }
        current
    }

    fn redact_pass(
        &self,
        s: &str,
        counts: &mut Redactions,
        number_field: Option<&str>,
    ) -> Option<String> {
        if s.len() < 5 {
            return None;
        }
        let mut out: Option<String> = None;
        if prefilter_hit(s) {
            let hits = PATTERN_SET.matches(s);
            for idx in hits.iter() {
                let pattern = &PATTERNS[idx];
                let current = out.as_deref().unwrap_or(s);
                let json = looks_like_json(current);
                let mut n = 0u64;
                let replaced = pattern.regex.replace_all(current, |c: &regex::Captures| {
                    let whole_match = c.get(0).expect("whole match");
                    let whole = whole_match.as_str();
                    if whole.contains("[REDACTED:") {
                        return whole.to_owned();
                    }
                    let pre = c.name("pre").map_or("", |m| m.as_str());
                    let post = c.name("post").map_or("", |m| m.as_str());
                    let value = &whole[pre.len()..whole.len() - post.len()];
                    if let Some(key) = c.name("key") {
                        let key = key.as_str();
                        // `PWD=/home/alice` (sudo, shells) is a working directory.
                        if (key.eq_ignore_ascii_case("pwd") && value.starts_with('/'))
                            // `Elevated Token: Yes`, `password: -`: no secret has this value.
                            || is_placeholder_value(value)
                            // `pam_unix(passwd:chauthtok)`: a PAM service and group.
                            || (pre.starts_with('(') && PAM_GROUPS.contains(&value))
                        {
                            return whole.to_owned();
                        }
                    }
                    // A rule's signature text inside a JSON record (Suricata's
                    // `"signature": "ET POLICY … Password: …"`).
                    if json
                        && json_key_at(current, whole_match.start())
                            .is_some_and(|k| RULE_TEXT_FIELDS.contains(&k))
                    {
                        return whole.to_owned();
                    }
                    n += 1;
                    let quote = value.chars().next().filter(|q| {
                        (*q == '"' || *q == '\'') && value.len() >= 2 && value.ends_with(*q)
                    });
                    match quote {
                        Some(q) => format!("{pre}{q}[REDACTED:{}]{q}{post}", pattern.kind),
                        None => format!("{pre}[REDACTED:{}]{post}", pattern.kind),
                    }
                });
                if n > 0 {
                    counts.add(pattern.kind, n);
                    out = Some(replaced.into_owned());
                }
            }
        }
        if has_long_digit_run(out.as_deref().unwrap_or(s)) {
            let current = out.as_deref().unwrap_or(s);
            let json = looks_like_json(current);
            let mut n = 0;
            let replaced = CARD_CANDIDATE.replace_all(current, |c: &regex::Captures| {
                let m = c.get(0).expect("whole match");
                let bytes = current.as_bytes();
                // Part of a decimal number or a longer run of digits: not a card.
                let at = |i: Option<usize>| i.and_then(|i| bytes.get(i).copied());
                let before = at(m.start().checked_sub(1));
                let before2 = at(m.start().checked_sub(2));
                let after = at(Some(m.end()));
                let after2 = at(Some(m.end() + 1));
                let embedded = before.is_some_and(|b| b.is_ascii_digit())
                    || (matches!(before, Some(b'.' | b'-' | b'_'))
                        && before2.is_some_and(|b| b.is_ascii_alphanumeric()))
                    || after.is_some_and(|b| b.is_ascii_digit())
                    || (after == Some(b'.') && after2.is_some_and(|b| b.is_ascii_digit()))
                    || names_a_number(current, m.start())
                    || (m.start() == 0
                        && m.end() == current.len()
                        && number_field.is_some_and(field_names_a_number))
                    || (json
                        && json_key_at(current, m.start())
                            .is_some_and(|k| RULE_TEXT_FIELDS.contains(&k)));
                if !embedded && luhn_card(m.as_str()) {
                    n += 1;
                    if json && !in_json_string(current, m.start()) {
                        "\"[REDACTED:card]\"".to_owned()
                    } else {
                        "[REDACTED:card]".to_owned()
                    }
                } else {
                    m.as_str().to_owned()
                }
            });
            if n > 0 {
                counts.add("card", n);
                out = Some(replaced.into_owned());
            }
        }
        for (kind, regex) in &self.extra {
            let current = out.as_deref().unwrap_or(s);
            let n = regex.find_iter(current).count() as u64;
            if n > 0 {
                let marker = format!("[REDACTED:{kind}]");
                out = Some(regex.replace_all(current, marker.as_str()).into_owned());
                counts.add(kind, n);
            }
        }
        out
    }
}

/// Whether a field is named like a secret: its last dotted component, ignoring case, `_` and
/// `-` (so `sessionToken`, `SecretAccessKey` and `client-secret` are secrets too).
pub(crate) fn is_secret_field(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    // Squashed into a stack buffer: no allocation on this per-field path.
    let mut buf = [0u8; 32];
    let mut n = 0;
    for b in last.bytes() {
        if b == b'_' || b == b'-' {
            continue;
        }
        if n == buf.len() {
            return false;
        }
        buf[n] = b.to_ascii_lowercase();
        n += 1;
    }
    let squashed = &buf[..n];
    SQUASHED_SECRET_FIELD_NAMES
        .iter()
        .any(|name| name.as_bytes() == squashed)
}

/// [`SECRET_FIELD_NAMES`] without `_` and `-`.
static SQUASHED_SECRET_FIELD_NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    SECRET_FIELD_NAMES
        .iter()
        .map(|n| n.replace(['_', '-'], ""))
        .collect()
});

/// Whether a field holds a detection rule's text ([`RULE_TEXT_FIELDS`]).
fn is_rule_text_field(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    RULE_TEXT_FIELDS
        .iter()
        .any(|name| key.eq_ignore_ascii_case(name) || last.eq_ignore_ascii_case(name))
}

/// Whether the number at byte `pos` is the value of a key (or follows a word) that names an
/// identifier, flags or a counter — `"flow_id": 1959620435402694`, `QueryOptions=…`, `options
/// 2251801021800464` — and so is no card, whatever the Luhn check says.
fn names_a_number(s: &str, pos: usize) -> bool {
    let bytes = s.as_bytes();
    let mut i = pos.min(bytes.len());
    // Separators between a key or word and its value.
    let mut seps = 0;
    while i > 0 && matches!(bytes[i - 1], b'"' | b'\'' | b' ' | b'\t' | b':' | b'=') && seps < 6 {
        i -= 1;
        seps += 1;
    }
    if seps == 0 {
        return false;
    }
    let end = i;
    while i > 0 && end - i < 64 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
        i -= 1;
    }
    word_names_a_number(&s[i..end])
}

/// Whether a field's last word names an identifier, flags or a counter
/// (`winlog.event_data.QueryOptions`). Only asked about a field whose whole value looks like a
/// card.
fn field_names_a_number(field: &str) -> bool {
    word_names_a_number(
        field
            .rsplit(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .next()
            .unwrap_or(""),
    )
}

/// Whether a key or word (`flow_id`, `QueryOptions`, `options`) names an identifier, flags or a
/// counter.
fn word_names_a_number(word: &str) -> bool {
    if word.is_empty() || word.len() > 64 {
        return false;
    }
    let mut buf = [0u8; 64];
    for (d, b) in buf.iter_mut().zip(word.bytes()) {
        *d = b.to_ascii_lowercase();
    }
    let Ok(word) = std::str::from_utf8(&buf[..word.len()]) else {
        return false;
    };
    word.ends_with("id")
        || [
            "option", "flag", "mask", "count", "cnt", "seq", "offset", "bytes", "pkts", "size",
            "hash", "serial", "nonce", "handle", "guid", "uuid", "time", "ts",
        ]
        .iter()
        .any(|w| word.contains(w))
}

/// The key of the JSON string value that byte `pos` of `s` lies in, when it lies in one.
/// A linear scan that only tracks strings; nesting does not matter.
fn json_key_at(s: &str, pos: usize) -> Option<&str> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut last_key: Option<&str> = None;
    while i < bytes.len() && i <= pos {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < bytes.len() && bytes[j] != b'"' {
            j += if bytes[j] == b'\\' { 2 } else { 1 };
        }
        let end = j.min(bytes.len());
        if pos >= start && pos <= end {
            return last_key;
        }
        let mut k = end + 1;
        while k < bytes.len() && bytes[k].is_ascii_whitespace() {
            k += 1;
        }
        last_key = (bytes.get(k) == Some(&b':')).then(|| &s[start..end]);
        i = end + 1;
    }
    None
}

/// Whether the text has 13 or more digits close together (cheap gate for the card regex).
fn has_long_digit_run(s: &str) -> bool {
    crate::clean::has_long_digit_run(s.as_bytes())
}

fn looks_like_json(s: &str) -> bool {
    matches!(s.trim_start().as_bytes().first(), Some(b'{' | b'['))
}

/// Whether byte `pos` of a JSON text lies inside a string (odd number of unescaped quotes
/// before it).
fn in_json_string(s: &str, pos: usize) -> bool {
    let mut inside = false;
    let mut escaped = false;
    for &b in &s.as_bytes()[..pos.min(s.len())] {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            inside = !inside;
        }
    }
    inside
}

/// Whether the issuer prefix and length are those of a payment card network: Visa (4; 13, 16,
/// 19 digits), Mastercard (51–55, 2221–2720; 16), American Express (34, 37; 15), Discover
/// (6011, 644–649, 65; 16–19), JCB (3528–3589; 16–19), Diners Club (36: 14–19; 300–305,
/// 3095: 14–19; 38, 39: 16–19), UnionPay (62; 16–19).
fn card_network(digits: &[u32]) -> bool {
    let prefix = |n: usize| digits.iter().take(n).fold(0u32, |acc, d| acc * 10 + d);
    let len = digits.len();
    match digits.first() {
        Some(4) => matches!(len, 13 | 16 | 19),
        Some(5) => (51..=55).contains(&prefix(2)) && len == 16,
        Some(2) => (2221..=2720).contains(&prefix(4)) && len == 16,
        Some(3) => match prefix(2) {
            34 | 37 => len == 15,
            35 => (3528..=3589).contains(&prefix(4)) && (16..=19).contains(&len),
            36 => (14..=19).contains(&len),
            38 | 39 => (16..=19).contains(&len),
            30 => {
                ((300..=305).contains(&prefix(3)) || prefix(4) == 3095) && (14..=19).contains(&len)
            }
            _ => false,
        },
        Some(6) => {
            (prefix(4) == 6011
                || (644..=649).contains(&prefix(3))
                || prefix(2) == 65
                || prefix(2) == 62)
                && (16..=19).contains(&len)
        }
        _ => false,
    }
}

/// 13–19 digits of a card network's shape, passing the Luhn check.
fn luhn_card(candidate: &str) -> bool {
    let digits: Vec<u32> = candidate.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) || !card_network(&digits) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let dd = d * 2;
                if dd > 9 { dd - 9 } else { dd }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::Timestamp;

    fn clean(s: &str) -> String {
        let mut c = Redactions::default();
        Redactor::default()
            .redact_str(s, &mut c)
            .unwrap_or_else(|| s.to_owned())
    }

    #[test]
    fn passwords_in_all_their_shapes() {
        assert_eq!(
            clean("login user=bob password=hunter2 ok"),
            "login user=bob password=[REDACTED:password] ok"
        );
        assert_eq!(
            clean("POST /login?user=bob&pwd=hunter2&x=1"),
            "POST /login?user=bob&pwd=[REDACTED:password]&x=1"
        );
        assert_eq!(
            clean(r#"{"user":"bob","password":"hun\"ter2"}"#),
            r#"{"user":"bob","password":"[REDACTED:password]"}"#
        );
        assert_eq!(
            clean("body: username=bob&passwd=s3cr3t"),
            "body: username=bob&passwd=[REDACTED:password]"
        );
        assert_eq!(
            clean("fetch https://bob:hunter2@example.com/x"),
            "fetch https://bob:[REDACTED:password]@example.com/x"
        );
        assert_eq!(
            clean("api_key: abcdef123456"),
            "api_key: [REDACTED:password]"
        );
        // A JSON string value that starts with the key: the raw line must be masked like the
        // parsed field is (it was kept in clear in `event.original`).
        assert_eq!(
            clean(r#"{"args":"password=hunter2","n":"token=abc123 x"}"#),
            r#"{"args":"password=[REDACTED:password]","n":"token=[REDACTED:password] x"}"#
        );
    }

    #[test]
    fn tokens_and_keys() {
        assert_eq!(
            clean("Authorization: Basic dXNlcjpwYXNz"),
            "Authorization: [REDACTED:authorization]"
        );
        assert_eq!(
            clean("sent Bearer abcdefghijklmnop123 to api"),
            "sent Bearer [REDACTED:bearer] to api"
        );
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(clean(&format!("cookie={jwt};")), "cookie=[REDACTED:jwt];");
        // An access key id is an identifier; the secret key next to it is masked.
        assert_eq!(
            clean("key AKIAIOSFODNN7EXAMPLE used"),
            "key AKIAIOSFODNN7EXAMPLE used"
        );
        assert_eq!(
            clean("AKIAIOSFODNN7EXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"),
            "AKIAIOSFODNN7EXAMPLE,[REDACTED:aws_secret]\n"
        );
        assert_eq!(
            clean(r#"{"SecretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}"#),
            r#"{"SecretAccessKey":"[REDACTED:aws_secret]"}"#
        );
        assert_eq!(
            clean("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            "aws_secret_access_key = [REDACTED:aws_secret]"
        );
        let pem =
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
        assert_eq!(
            clean(&format!("leak: {pem} end")),
            "leak: [REDACTED:private_key] end"
        );
        assert_eq!(
            clean("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk"),
            "[REDACTED:private_key]"
        );
    }

    /// Identifiers and descriptions found in the corpus that look like secrets to a pattern
    /// (issue 20's false masks) stay as they are; the secrets beside them do not.
    #[test]
    fn identifiers_are_not_secrets() {
        for kept in [
            r#"{"userIdentity":{"accessKeyId":"ASIATFQR7NSCTM3XVF6B","principalId":"AROA123456789EXAMPLE"}}"#,
            "passwd[311]: pam_unix(passwd:chauthtok): password changed for bob",
            "sshd[1]: pam_unix(sshd:auth): authentication failure",
            r#"{"flow_id":1959620435402694,"event_type":"alert"}"#,
            r#"{"QueryOptions":"2251801021800464","x":"lookup for HR001, type 1, options 2251801021800464"}"#,
            "\tVirtual Account:\t\tNo\n\tElevated Token:\t\tYes\n",
            r#"{"Message":"Virtual Account:\t\tNo\n\tElevated Token:\t\tYes\n\nImpersonation Level:"}"#,
            r#"{"authorization":{"action":"Microsoft.Compute/virtualMachines/write","scope":"/subscriptions/x"}}"#,
            r#"{"alert":{"signature":"ET POLICY Cleartext Password: sent over HTTP","signature_id":1}}"#,
        ] {
            assert_eq!(clean(kept), kept);
        }
        assert_eq!(
            clean(
                r#"{"credentials":{"accessKeyId":"ASIATFQR7NSCTM3XVF6B","sessionToken":"IQoJb3JpZ2luX2Vj"}}"#
            ),
            r#"{"credentials":{"accessKeyId":"ASIATFQR7NSCTM3XVF6B","sessionToken":"[REDACTED:password]"}}"#
        );
        assert_eq!(
            clean(
                r#"{"payload_printable":"user=bob&password=hunter2","signature":"ET POLICY password: leak"}"#
            ),
            r#"{"payload_printable":"user=bob&password=[REDACTED:password]","signature":"ET POLICY password: leak"}"#
        );
        assert_eq!(
            clean("card 4111 1111 1111 1111 charged"),
            "card [REDACTED:card] charged"
        );
        assert_eq!(clean("passwd:hunter2x"), "passwd:[REDACTED:password]");
        // Field names in camel case are secrets too; a rule's name is never searched.
        let mut e = Event::new(Timestamp::from_secs(0));
        e.insert(
            vigil_event::name!("responseElements.credentials.sessionToken"),
            "IQoJb3JpZ2lu",
        );
        e.insert("SecretAccessKey", "abc");
        e.insert(vigil_event::name!("rule.name"), "ET POLICY Password: sent");
        e.insert(
            vigil_event::name!("alert.signature"),
            "GPL password=in signature",
        );
        e.insert(
            vigil_event::name!("winlog.event_data.QueryOptions"),
            "2251801021800464",
        );
        e.insert(vigil_event::name!("payment.pan"), "2251801021800464");
        Redactor::default().redact_event(&mut e);
        assert_eq!(
            e.get_str("responseElements.credentials.sessionToken"),
            Some("[REDACTED:password]")
        );
        assert_eq!(e.get_str("SecretAccessKey"), Some("[REDACTED:password]"));
        assert_eq!(e.get_str("rule.name"), Some("ET POLICY Password: sent"));
        assert_eq!(
            e.get_str("alert.signature"),
            Some("GPL password=in signature")
        );
        assert_eq!(
            e.get_str("winlog.event_data.QueryOptions"),
            Some("2251801021800464")
        );
        assert_eq!(e.get_str("payment.pan"), Some("[REDACTED:card]"));
    }

    #[test]
    fn working_directories_are_not_passwords() {
        let line = "alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls";
        assert_eq!(clean(line), line);
        assert_eq!(
            clean("login?user=a&pwd=hunter2"),
            "login?user=a&pwd=[REDACTED:password]"
        );
    }

    #[test]
    fn json_stays_json() {
        let out =
            clean(r#"{"message":"x password=a1","user":{"password":"S3cret"},"token":'abc123'}"#);
        assert_eq!(
            out,
            r#"{"message":"x password=[REDACTED:password]","user":{"password":"[REDACTED:password]"},"token":'[REDACTED:password]'}"#
        );
        let json = clean(r#"{"password":"S3cret","n":1}"#);
        assert!(
            serde_json::from_str::<serde_json::Value>(&json).is_ok(),
            "{json}"
        );
    }

    #[test]
    fn everything_in_one_line() {
        let line = "login user=bob password=S3cretPw01 body=user=bob&passwd=S3cretPw03 url=https://bob:S3cretPw04@example.com/x Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ== sent Bearer tok3nS3cretValue05 cookie=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWNyZXQwNiJ9.c2lnMDZhYmNk key AKIAQ7SECRETKEY00007 wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRET0007 -----BEGIN PRIVATE KEY----- MIIsecretKeyMaterial08 -----END PRIVATE KEY----- cards 4111-1111-1111-1111 and 5500 0000 0000 0004";
        let out = clean(line);
        for secret in [
            "S3cretPw01",
            "S3cretPw03",
            "S3cretPw04",
            "QWxhZGRp",
            "tok3nS3cret",
            "eyJzdWIi",
            "SECRET0007",
            "MIIsecret",
            "4111-1111",
            "5500 0000",
        ] {
            assert!(!out.contains(secret), "{secret} survives in {out}");
        }
    }

    #[test]
    fn cards_only_when_luhn_valid() {
        assert_eq!(
            clean("card 4111 1111 1111 1111 charged"),
            "card [REDACTED:card] charged"
        );
        assert_eq!(clean("card 5500-0000-0000-0004."), "card [REDACTED:card].");
        assert_eq!(clean("pan=4012888888881881"), "pan=[REDACTED:card]");
        // Fails Luhn, or is a timestamp in milliseconds: left alone.
        assert_eq!(
            clean("card 4111 1111 1111 1112"),
            "card 4111 1111 1111 1112"
        );
        assert_eq!(clean("ts 1732268000123 ms"), "ts 1732268000123 ms");
        // Found in Suricata and Zeek JSON: ids and decimal fractions that pass Luhn.
        assert_eq!(
            clean(r#"{"flow_id":397567447473926,"rtt":0.2680990695953369}"#),
            r#"{"flow_id":397567447473926,"rtt":0.2680990695953369}"#
        );
        // A card as a bare JSON number becomes a string, so the JSON stays valid.
        assert_eq!(
            clean(r#"{"pan":4111111111111111,"note":"paid with 4111 1111 1111 1111"}"#),
            r#"{"pan":"[REDACTED:card]","note":"paid with [REDACTED:card]"}"#
        );
    }

    #[test]
    fn nothing_to_do_is_cheap_and_unchanged() {
        let mut c = Redactions::default();
        assert_eq!(
            Redactor::default().redact_str(
                "Failed password for root from 203.0.113.5 port 22 ssh2",
                &mut c
            ),
            None
        );
        assert_eq!(c.total(), 0);
    }

    #[test]
    fn events_by_field_name_and_value() {
        let mut e = Event::new(Timestamp::from_secs(0));
        e.insert(vigil_event::name!("user.password"), "hunter2");
        e.insert(
            vigil_event::name!("http.request.headers.authorization"),
            "Bearer abc.def.ghi",
        );
        e.insert(vigil_event::name!("message"), "user=bob password=hunter2");
        e.insert("pin", 1234i64);
        let counts = Redactor::default().redact_event(&mut e);
        assert_eq!(e.get_str("user.password"), Some("[REDACTED:password]"));
        assert_eq!(
            e.get_str("http.request.headers.authorization"),
            Some("[REDACTED:password]")
        );
        assert_eq!(
            e.get_str("message"),
            Some("user=bob password=[REDACTED:password]")
        );
        assert_eq!(counts.total(), 3);
        let again = Redactor::default().redact_event(&mut e);
        assert_eq!(again.total(), 0, "redaction is idempotent");
    }

    /// The whole-event check skips exactly the events the field-by-field pass leaves alone:
    /// over lines built from keyword fragments, separators, digits and secret-looking field
    /// names, both give the same event and the same counts.
    #[test]
    fn whole_event_check_agrees_with_field_by_field() {
        use proptest::prelude::*;
        let pieces = prop::sample::select(vec![
            "pass",
            "word",
            "password",
            "Failed password for ",
            "=",
            ":",
            " ",
            "\"",
            "'",
            "-",
            "apikey",
            "eyJ",
            "apikeyJ",
            "api_key",
            "token",
            "secret",
            "4111",
            "1111 ",
            "0",
            "1234567",
            "://",
            "bob:",
            "@",
            "AKIA",
            "ABCDEFGHIJKLMNOP",
            "PWD=/home",
            "&",
            "?",
            "Bearer ",
            "authorization",
            "private key",
            "x",
            "\0",
            "é",
        ]);
        let text = prop::collection::vec(pieces, 0..12).prop_map(|p| p.concat());
        let names = prop::sample::select(vec![
            "message",
            "user.name",
            "user.password",
            "url.query",
            "token",
            "http.apikey",
            "a",
        ]);
        let fields = prop::collection::vec((names, text.clone(), any::<bool>()), 0..5);
        proptest!(ProptestConfig::with_cases(4000), |(fields in fields, key in text)| {
            let mut e = Event::new(Timestamp::from_secs(0));
            for (name, value, listed) in &fields {
                if *listed {
                    e.insert(*name, Value::List(vec![Value::from(value.as_str()), Value::Int(1)]));
                } else {
                    e.insert(*name, value.as_str());
                }
            }
            if !key.is_empty() {
                e.insert(key.clone(), "v");
            }
            let r = Redactor::default();
            let (mut fast, mut slow) = (e.clone(), e.clone());
            let fast_counts = r.redact_event(&mut fast);
            let slow_counts = r.redact_fields(&mut slow);
            prop_assert_eq!(&fast, &slow);
            prop_assert_eq!(fast_counts, slow_counts);
        });
        // A keyword hidden by an overlapping one in the joined text is still seen.
        let mut e = Event::new(Timestamp::from_secs(0));
        e.insert(
            vigil_event::name!("message"),
            "x apikeyJhbGciOi.eyJzdWIiOi.abc",
        );
        e.insert(
            "a",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmN",
        );
        let mut slow = e.clone();
        assert_eq!(
            Redactor::default().redact_event(&mut e),
            Redactor::default().redact_fields(&mut slow)
        );
        assert_eq!(e, slow);
        assert_eq!(e.get_str("a"), Some("[REDACTED:jwt]"));
    }

    #[test]
    fn extra_patterns() {
        let r = Redactor::new(&[("employee_id".into(), r"EMP-\d{6}".into())]).unwrap();
        let mut c = Redactions::default();
        assert_eq!(
            r.redact_str("by EMP-123456 today", &mut c).unwrap(),
            "by [REDACTED:employee_id] today"
        );
        let err = Redactor::new(&[
            ("employee_id".into(), r"EMP-\d{6}".into()),
            ("bad".into(), "(".into()),
        ])
        .unwrap_err();
        assert!(matches!(&err, RedactError::Pattern { kind, .. } if kind == "bad"));
        // The pattern is named by its kind, never quoted (it may spell out a secret).
        let hidden = Redactor::new(&[("emp".into(), "EMP-SECRET-(".into())]).unwrap_err();
        assert!(!hidden.to_string().contains("EMP-SECRET"), "{hidden}");
        let text = String::from(err);
        assert!(text.starts_with(r#"redaction pattern "bad": "#), "{text}");
    }
}
