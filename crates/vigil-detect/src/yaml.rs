//! A plain YAML value tree and the document loader (serde-saphyr underneath).
//!
//! Rules are read into [`Yaml`] first and interpreted by hand afterwards, so every shape a rule
//! author can write gets a precise error instead of a serde message about an enum variant, and
//! nothing depends on key order. Parsing is bounded (serde-saphyr's default budget: alias bombs,
//! depth and size) and never panics; a panic inside the parser would still be caught and reported
//! as an error.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A YAML node.
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` / `false` (YAML 1.2 spellings only: `yes`/`no` stay strings).
    Bool(bool),
    /// An integer that fits in i64.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string (integers too large for i64 are kept as their text).
    Str(String),
    /// A sequence.
    Seq(Vec<Yaml>),
    /// A mapping, in document order.
    Map(Vec<(Yaml, Yaml)>),
}

impl Yaml {
    /// The value under `key` if this is a mapping with a string key `key`.
    pub fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Yaml::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar rendered as text (strings bare, numbers and booleans as written), else `None`.
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Yaml::Str(s) => Some(s.clone()),
            Yaml::Int(i) => Some(i.to_string()),
            Yaml::Float(f) => Some(f.to_string()),
            Yaml::Bool(b) => Some(b.to_string()),
            Yaml::Null | Yaml::Seq(_) | Yaml::Map(_) => None,
        }
    }

    /// A short name of the node's kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Yaml::Null => "null",
            Yaml::Bool(_) => "boolean",
            Yaml::Int(_) | Yaml::Float(_) => "number",
            Yaml::Str(_) => "string",
            Yaml::Seq(_) => "list",
            Yaml::Map(_) => "map",
        }
    }
}

impl<'de> Deserialize<'de> for Yaml {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Yaml, D::Error> {
        deserializer.deserialize_any(YamlVisitor)
    }
}

struct YamlVisitor;

impl<'de> Visitor<'de> for YamlVisitor {
    type Value = Yaml;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Yaml, E> {
        Ok(Yaml::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Yaml, E> {
        Ok(Yaml::Int(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Yaml, E> {
        Ok(i64::try_from(v).map_or_else(|_| Yaml::Str(v.to_string()), Yaml::Int))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Yaml, E> {
        Ok(i64::try_from(v).map_or_else(|_| Yaml::Str(v.to_string()), Yaml::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Yaml, E> {
        Ok(i64::try_from(v).map_or_else(|_| Yaml::Str(v.to_string()), Yaml::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Yaml, E> {
        Ok(Yaml::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Yaml, E> {
        Ok(Yaml::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Yaml, E> {
        Ok(Yaml::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Yaml, E> {
        Ok(Yaml::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Yaml, D::Error> {
        Yaml::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Yaml, D::Error> {
        Yaml::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Yaml, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Yaml>()? {
            items.push(item);
        }
        Ok(Yaml::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Yaml, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<Yaml, Yaml>()? {
            entries.push((k, v));
        }
        Ok(Yaml::Map(entries))
    }
}

fn options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.strict_booleans = true;
    o.leading_zero_numbers_as_strings = true;
    o.underscored_numbers_as_strings = true;
    o
}

/// Why a YAML text could not be read. Never worth a retry: the text must change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum YamlError {
    /// Not valid YAML: serde-saphyr's message (first line, with line and column).
    #[error("{0}")]
    Syntax(String),
    /// The YAML parser panicked on this input (caught; reported rather than propagated).
    #[error("the YAML parser failed on this input")]
    ParserFailed,
}

/// Parses a YAML stream into its documents (empty documents are skipped).
///
/// Errors carry serde-saphyr's message (with line and column). Never panics.
pub fn parse_documents(text: &str) -> Result<Vec<Yaml>, YamlError> {
    let result = std::panic::catch_unwind(|| {
        serde_saphyr::from_multiple_with_options::<Yaml>(text, options())
    });
    match result {
        Ok(Ok(docs)) => Ok(docs),
        Ok(Err(e)) => Err(YamlError::Syntax(first_line(&e.to_string()))),
        Err(_) => Err(YamlError::ParserFailed),
    }
}

/// serde-saphyr renders a source snippet after the first line; keep the message short.
fn first_line(message: &str) -> String {
    let mut out = message.lines().next().unwrap_or(message).trim().to_owned();
    if out.len() > 300 {
        let mut cut = 300;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Sigma v1 rule collections: a document with `action: global` is merged into every following
/// document until `action: reset`; `action: repeat` is the previous document merged with this
/// one. Documents without `action` pass through (merged with the global one if any).
pub fn resolve_collection(docs: Vec<Yaml>) -> Vec<Yaml> {
    let mut out = Vec::with_capacity(docs.len());
    let mut global: Option<Yaml> = None;
    let mut previous: Option<Yaml> = None;
    for doc in docs {
        match doc.get("action").and_then(Yaml::as_str) {
            Some("global") => {
                global = Some(without_action(doc));
            }
            Some("reset") => {
                global = None;
            }
            Some("repeat") => {
                let base = previous.clone().unwrap_or(Yaml::Map(Vec::new()));
                let merged = merge(base, without_action(doc));
                previous = Some(merged.clone());
                out.push(merged);
            }
            _ => {
                let merged = match &global {
                    Some(g) => merge(g.clone(), doc),
                    None => doc,
                };
                previous = Some(merged.clone());
                out.push(merged);
            }
        }
    }
    out
}

fn without_action(doc: Yaml) -> Yaml {
    match doc {
        Yaml::Map(entries) => Yaml::Map(
            entries
                .into_iter()
                .filter(|(k, _)| k.as_str() != Some("action"))
                .collect(),
        ),
        other => other,
    }
}

/// Deep merge: maps merge key by key (`over` wins), anything else is replaced by `over`.
fn merge(base: Yaml, over: Yaml) -> Yaml {
    match (base, over) {
        (Yaml::Map(mut base), Yaml::Map(over)) => {
            for (k, v) in over {
                match base.iter_mut().find(|(bk, _)| *bk == k) {
                    Some(slot) => {
                        let old = std::mem::replace(&mut slot.1, Yaml::Null);
                        slot.1 = merge(old, v);
                    }
                    None => base.push((k, v)),
                }
            }
            Yaml::Map(base)
        }
        (_, over) => over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_and_structures() {
        let docs = parse_documents(
            "a: 1\nb: 'x'\nc: [true, no, ~]\nd: {e: 2.5}\nf: 0755\ng: 18446744073709551616\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 1);
        let d = &docs[0];
        assert_eq!(d.get("a"), Some(&Yaml::Int(1)));
        assert_eq!(d.get("b"), Some(&Yaml::Str("x".into())));
        assert_eq!(
            d.get("c"),
            Some(&Yaml::Seq(vec![
                Yaml::Bool(true),
                Yaml::Str("no".into()),
                Yaml::Null
            ]))
        );
        assert_eq!(d.get("d").and_then(|m| m.get("e")), Some(&Yaml::Float(2.5)));
        assert_eq!(d.get("f"), Some(&Yaml::Str("0755".into())));
        assert!(matches!(d.get("g"), Some(Yaml::Str(_) | Yaml::Float(_))));
    }

    #[test]
    fn multi_document_and_bad_input() {
        let docs = parse_documents("a: 1\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
        for bad in [
            "a: [1, 2",
            "a: b: c",
            "\t- x\n  - : :",
            "&a [*a]",
            "a: *undefined",
            "{{{{{{{{{{",
            "- !!binary Zm9v\n",
        ] {
            let _ = parse_documents(bad);
        }
        assert!(matches!(
            parse_documents("a: [1, 2"),
            Err(YamlError::Syntax(m)) if !m.is_empty() && !m.contains('\n')
        ));
    }

    #[test]
    fn global_action_merges() {
        let docs = parse_documents(
            "action: global\ntitle: T\ndetection:\n  condition: s\n---\nlogsource: {product: a}\ndetection:\n  s: {x: 1}\n---\nlogsource: {product: b}\ndetection:\n  s: {x: 2}\n",
        )
        .unwrap();
        let docs = resolve_collection(docs);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].get("title"), Some(&Yaml::Str("T".into())));
        let det = docs[1].get("detection").unwrap();
        assert_eq!(det.get("condition"), Some(&Yaml::Str("s".into())));
        assert!(det.get("s").is_some());
    }
}
