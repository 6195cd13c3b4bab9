//! Sigma value modifiers: their names, their validation, and the value transformations
//! (windash, base64, base64offset, utf16, expand) that turn one rule value into the strings a
//! matcher looks for.
//!
//! Type modifiers (`re`, `cidr`, `exists`, `fieldref`, `lt`…, time parts) are only named here;
//! `compile` gives them their meaning.

use std::collections::BTreeMap;
use std::fmt;

use crate::pattern::{Glob, Part};

/// One value modifier (`field|mod1|mod2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modifier {
    /// `contains`: `*value*`.
    Contains,
    /// `startswith`: `value*`.
    StartsWith,
    /// `endswith`: `*value`.
    EndsWith,
    /// `all`: the values are linked with AND instead of OR.
    All,
    /// `re`: a regular expression (case-sensitive unless `i`).
    Re,
    /// `i` after `re`: case-insensitive.
    ReIgnoreCase,
    /// `m` after `re`: `^`/`$` match at line ends.
    ReMultiLine,
    /// `s` after `re`: `.` matches newlines.
    ReDotAll,
    /// `cidr`: the value is a network; the field an address inside it.
    Cidr,
    /// `base64`: the value base64-encoded.
    Base64,
    /// `base64offset`: the three shifted base64 encodings of the value.
    Base64Offset,
    /// `utf16le` / `wide`: the value as UTF-16 little-endian bytes.
    Utf16Le,
    /// `utf16be`: UTF-16 big-endian bytes.
    Utf16Be,
    /// `utf16`: a little-endian byte order mark, then UTF-16 little-endian.
    Utf16,
    /// `windash`: `-` and `/` at the start of a word also match `/`, `-`, en dash, em dash and
    /// horizontal bar.
    Windash,
    /// `exists`: the value is a boolean; the field must (not) be present.
    Exists,
    /// `expand`: `%placeholder%` in the value is replaced by configured values.
    Expand,
    /// `fieldref`: the value names another field whose value must match.
    FieldRef,
    /// `lt`: numeric less than.
    Lt,
    /// `lte`: numeric less or equal.
    Lte,
    /// `gt`: numeric greater than.
    Gt,
    /// `gte`: numeric greater or equal.
    Gte,
    /// `neq`: the field must not equal the value(s).
    Neq,
    /// `cased`: case-sensitive matching.
    Cased,
    /// `minute` of a date field (0–59).
    Minute,
    /// `hour` of a date field (0–23).
    Hour,
    /// `day` of month of a date field (1–31).
    Day,
    /// ISO `week` of a date field (1–53).
    Week,
    /// `month` of a date field (1–12).
    Month,
    /// `year` of a date field.
    Year,
}

impl Modifier {
    /// Parses a modifier name as written after `|`.
    pub fn parse(name: &str) -> Option<Modifier> {
        Some(match name {
            "contains" => Modifier::Contains,
            "startswith" => Modifier::StartsWith,
            "endswith" => Modifier::EndsWith,
            "all" => Modifier::All,
            "re" => Modifier::Re,
            "i" => Modifier::ReIgnoreCase,
            "m" => Modifier::ReMultiLine,
            "s" => Modifier::ReDotAll,
            "cidr" => Modifier::Cidr,
            "base64" => Modifier::Base64,
            "base64offset" => Modifier::Base64Offset,
            "utf16le" | "wide" => Modifier::Utf16Le,
            "utf16be" => Modifier::Utf16Be,
            "utf16" => Modifier::Utf16,
            "windash" => Modifier::Windash,
            "exists" => Modifier::Exists,
            "expand" => Modifier::Expand,
            "fieldref" => Modifier::FieldRef,
            "lt" => Modifier::Lt,
            "lte" => Modifier::Lte,
            "gt" => Modifier::Gt,
            "gte" => Modifier::Gte,
            "neq" => Modifier::Neq,
            "cased" => Modifier::Cased,
            "minute" => Modifier::Minute,
            "hour" => Modifier::Hour,
            "day" => Modifier::Day,
            "week" => Modifier::Week,
            "month" => Modifier::Month,
            "year" => Modifier::Year,
            _ => return None,
        })
    }

    /// The modifier's name as written in rules.
    pub fn name(self) -> &'static str {
        match self {
            Modifier::Contains => "contains",
            Modifier::StartsWith => "startswith",
            Modifier::EndsWith => "endswith",
            Modifier::All => "all",
            Modifier::Re => "re",
            Modifier::ReIgnoreCase => "i",
            Modifier::ReMultiLine => "m",
            Modifier::ReDotAll => "s",
            Modifier::Cidr => "cidr",
            Modifier::Base64 => "base64",
            Modifier::Base64Offset => "base64offset",
            Modifier::Utf16Le => "utf16le",
            Modifier::Utf16Be => "utf16be",
            Modifier::Utf16 => "utf16",
            Modifier::Windash => "windash",
            Modifier::Exists => "exists",
            Modifier::Expand => "expand",
            Modifier::FieldRef => "fieldref",
            Modifier::Lt => "lt",
            Modifier::Lte => "lte",
            Modifier::Gt => "gt",
            Modifier::Gte => "gte",
            Modifier::Neq => "neq",
            Modifier::Cased => "cased",
            Modifier::Minute => "minute",
            Modifier::Hour => "hour",
            Modifier::Day => "day",
            Modifier::Week => "week",
            Modifier::Month => "month",
            Modifier::Year => "year",
        }
    }

    /// Whether this modifier changes the value's bytes or expands it (applied in rule order).
    pub fn is_transform(self) -> bool {
        matches!(
            self,
            Modifier::Base64
                | Modifier::Base64Offset
                | Modifier::Utf16Le
                | Modifier::Utf16Be
                | Modifier::Utf16
                | Modifier::Windash
                | Modifier::Expand
        )
    }
}

impl fmt::Display for Modifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Placeholder values for the `expand` modifier (`%Administrators%` → `["admin", "root"]`).
pub type Placeholders = BTreeMap<String, Vec<String>>;

/// A value on its way through the transformation modifiers: Sigma text (with wildcards) until an
/// encoding turns it into bytes.
#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Text(Glob),
    Bytes(Vec<u8>),
}

/// The result of the transformation modifiers on one value: one or more globs (OR-linked), and
/// whether an encoding happened (encoded values are compared case-sensitively).
#[derive(Debug, Clone, PartialEq)]
pub struct Transformed {
    /// The alternatives (any may match).
    pub globs: Vec<Glob>,
    /// Whether base64/utf16 turned the value into bytes (then case matters).
    pub encoded: bool,
}

/// Applies the transformation modifiers of `mods`, in order, to the Sigma string `value`, then
/// `contains`/`startswith`/`endswith`. Errors name what is not possible (a wildcard inside a
/// value to encode, a placeholder without configured values).
pub fn transform(
    value: &str,
    mods: &[Modifier],
    placeholders: &Placeholders,
) -> Result<Transformed, String> {
    let expand = mods.contains(&Modifier::Expand);
    let mut stages = if expand {
        expand_placeholders(value, placeholders)?
            .into_iter()
            .map(Stage::Text)
            .collect()
    } else {
        vec![Stage::Text(Glob::parse(value))]
    };
    let mut encoded = false;
    for &m in mods {
        match m {
            Modifier::Windash => {
                stages = stages
                    .into_iter()
                    .map(|s| match s {
                        Stage::Text(g) => Ok(Stage::Text(g.windash())),
                        Stage::Bytes(_) => Err("windash after an encoding modifier".to_owned()),
                    })
                    .collect::<Result<_, _>>()?;
            }
            Modifier::Utf16Le | Modifier::Utf16Be | Modifier::Utf16 => {
                encoded = true;
                stages = stages
                    .into_iter()
                    .map(|s| {
                        let text = literal_text(&s, m)?;
                        let mut out = Vec::new();
                        if m == Modifier::Utf16 {
                            out.extend_from_slice(&[0xff, 0xfe]);
                        }
                        for unit in text.encode_utf16() {
                            let b = if m == Modifier::Utf16Be {
                                unit.to_be_bytes()
                            } else {
                                unit.to_le_bytes()
                            };
                            out.extend_from_slice(&b);
                        }
                        Ok(Stage::Bytes(out))
                    })
                    .collect::<Result<_, String>>()?;
            }
            Modifier::Base64 => {
                encoded = true;
                stages = stages
                    .into_iter()
                    .map(|s| {
                        let bytes = stage_bytes(s, m)?;
                        Ok(Stage::Text(Glob::literal(&base64_encode(&bytes))))
                    })
                    .collect::<Result<_, String>>()?;
            }
            Modifier::Base64Offset => {
                encoded = true;
                let mut next = Vec::new();
                for s in stages {
                    let bytes = stage_bytes(s, m)?;
                    for variant in base64_offsets(&bytes) {
                        next.push(Stage::Text(Glob::literal(&variant)));
                    }
                }
                stages = next;
            }
            _ => {}
        }
    }
    let mut globs = Vec::with_capacity(stages.len());
    for s in stages {
        let mut g = match s {
            Stage::Text(g) => g,
            Stage::Bytes(b) => match String::from_utf8(b) {
                Ok(text) => Glob::literal(&text),
                Err(_) => {
                    return Err(
                        "encoded value is not valid UTF-8 text and is not base64-encoded"
                            .to_owned(),
                    );
                }
            },
        };
        for &m in mods {
            match m {
                Modifier::Contains => {
                    g.prepend_any();
                    g.append_any();
                }
                Modifier::StartsWith => g.append_any(),
                Modifier::EndsWith => g.prepend_any(),
                _ => {}
            }
        }
        globs.push(g);
    }
    Ok(Transformed { globs, encoded })
}

fn literal_text(stage: &Stage, m: Modifier) -> Result<String, String> {
    match stage {
        Stage::Text(g) => g
            .as_literal()
            .ok_or_else(|| format!("`{m}` on a value with wildcards")),
        Stage::Bytes(_) => Err(format!("`{m}` applied twice")),
    }
}

fn stage_bytes(stage: Stage, m: Modifier) -> Result<Vec<u8>, String> {
    match stage {
        Stage::Bytes(b) => Ok(b),
        Stage::Text(g) => g
            .as_literal()
            .map(String::into_bytes)
            .ok_or_else(|| format!("`{m}` on a value with wildcards")),
    }
}

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for (i, s) in sextets.iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[*s as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The three encodings of `bytes` shifted by 0, 1 and 2 bytes inside a longer base64 text,
/// without the characters that depend on the unknown neighbours (pySigma's `base64offset`).
pub fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    // End trims by (len + shift) % 3: 0 → keep all, 1 → drop 3, 2 → drop 2.
    const END: [usize; 3] = [0, 3, 2];
    let mut out = Vec::with_capacity(3);
    for shift in 0..3 {
        let mut padded = vec![b' '; shift];
        padded.extend_from_slice(bytes);
        let encoded = base64_encode(&padded);
        let end_trim = END[(bytes.len() + shift) % 3];
        let end = encoded.len().saturating_sub(end_trim);
        let start = START[shift];
        if start < end {
            out.push(encoded[start..end].to_owned());
        }
    }
    out.dedup();
    out
}

/// Replaces every `%name%` (not escaped as `\%`) by each configured value; the result is the
/// cartesian product. A placeholder without configured values is an error.
fn expand_placeholders(value: &str, placeholders: &Placeholders) -> Result<Vec<Glob>, String> {
    // Split into literal text and placeholder names.
    enum Piece {
        Text(String),
        Name(String),
    }
    let mut pieces = Vec::new();
    let mut text = String::new();
    let chars: Vec<char> = value.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && chars.get(i + 1) == Some(&'%') {
            text.push('%');
            i += 2;
            continue;
        }
        if c == '%'
            && let Some(len) = chars[i + 1..].iter().position(|&c| c == '%')
            && len > 0
        {
            let name: String = chars[i + 1..i + 1 + len].iter().collect();
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Name(name));
            i += len + 2;
            continue;
        }
        text.push(c);
        i += 1;
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    let mut results: Vec<Vec<Part>> = vec![Vec::new()];
    for piece in pieces {
        match piece {
            Piece::Text(t) => {
                let g = Glob::parse(&t);
                for r in &mut results {
                    r.extend(g.parts().iter().cloned());
                }
            }
            Piece::Name(name) => {
                let values = placeholders
                    .get(&name)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        format!("placeholder %{name}% has no configured values (expand modifier)")
                    })?;
                if results.len().saturating_mul(values.len()) > 4096 {
                    return Err(format!("placeholder %{name}% expands to too many values"));
                }
                let mut next = Vec::with_capacity(results.len() * values.len());
                for r in &results {
                    for v in values {
                        let mut r = r.clone();
                        r.extend(Glob::parse(v).parts().iter().cloned());
                        next.push(r);
                    }
                }
                results = next;
            }
        }
    }
    Ok(results.into_iter().map(Glob::from_parts).collect())
}

/// Checks a modifier chain for combinations that have no meaning. Returns the reason.
pub fn validate(mods: &[Modifier]) -> Result<(), String> {
    let has = |m: Modifier| mods.contains(&m);
    for (i, &m) in mods.iter().enumerate() {
        if matches!(
            m,
            Modifier::ReIgnoreCase | Modifier::ReMultiLine | Modifier::ReDotAll
        ) && !mods[..i].contains(&Modifier::Re)
        {
            return Err(format!("modifier `{m}` is only valid after `re`"));
        }
    }
    let types = [
        Modifier::Re,
        Modifier::Cidr,
        Modifier::Exists,
        Modifier::FieldRef,
        Modifier::Lt,
        Modifier::Lte,
        Modifier::Gt,
        Modifier::Gte,
    ];
    let n_types = types.iter().filter(|&&t| has(t)).count();
    if n_types > 1 {
        return Err(
            "more than one type modifier (re, cidr, exists, fieldref, lt/lte/gt/gte)".into(),
        );
    }
    let anchors = [Modifier::Contains, Modifier::StartsWith, Modifier::EndsWith]
        .iter()
        .filter(|&&m| has(m))
        .count();
    if anchors > 1 {
        return Err("more than one of contains/startswith/endswith".into());
    }
    if (has(Modifier::Re) || has(Modifier::Cidr) || has(Modifier::Exists)) && anchors > 0 {
        return Err(
            "contains/startswith/endswith cannot be combined with re, cidr or exists".into(),
        );
    }
    if (has(Modifier::Re) || has(Modifier::Cidr) || has(Modifier::Exists))
        && mods.iter().any(|m| m.is_transform())
    {
        return Err("encoding modifiers cannot be combined with re, cidr or exists".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_known_vectors() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn base64offset_matches_pysigma() {
        // pySigma: "/bin/bash" → L2Jpbi9iYXNo, 9iaW4vYmFza, vYmluL2Jhc2
        assert_eq!(
            base64_offsets(b"/bin/bash"),
            vec!["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]
        );
        // Every variant is found in the encoding of a text holding the value at that offset.
        for prefix in ["", "a", "ab", "abc", "abcd"] {
            let whole = format!("{prefix}http://evil.example/payload and more");
            let enc = base64_encode(whole.as_bytes());
            assert!(
                base64_offsets(b"http://evil.example/")
                    .iter()
                    .any(|v| enc.contains(v.as_str())),
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn utf16_then_base64() {
        let t = transform(
            "ping",
            &[Modifier::Utf16Le, Modifier::Base64],
            &Placeholders::new(),
        )
        .unwrap();
        assert_eq!(t.globs, vec![Glob::literal("cABpAG4AZwA=")]);
        assert!(t.encoded);
        let t = transform("a*", &[Modifier::Base64], &Placeholders::new());
        assert!(t.is_err());
    }

    #[test]
    fn expand_needs_configuration() {
        let mut p = Placeholders::new();
        assert!(transform("%Admins%", &[Modifier::Expand], &p).is_err());
        p.insert("Admins".into(), vec!["root".into(), "adm_*".into()]);
        let t = transform("x\\%y%Admins%", &[Modifier::Expand], &p).unwrap();
        assert_eq!(t.globs.len(), 2);
        assert_eq!(t.globs[0].as_literal().as_deref(), Some("x%yroot"));
    }

    #[test]
    fn validation() {
        assert!(validate(&[Modifier::Re, Modifier::ReIgnoreCase]).is_ok());
        assert!(validate(&[Modifier::ReIgnoreCase]).is_err());
        assert!(validate(&[Modifier::Contains, Modifier::EndsWith]).is_err());
        assert!(validate(&[Modifier::Re, Modifier::Contains]).is_err());
        assert!(validate(&[Modifier::Cidr, Modifier::Lt]).is_err());
    }
}
