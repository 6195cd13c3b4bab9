//! The index's schema and how one ledger event becomes one index document (a pure function).
//!
//! See FORMAT.md beside this file for the layout of every field and its version.

use std::collections::BTreeMap;
use std::net::IpAddr;

use tantivy::schema::{
    FAST, Field, IndexRecordOption, JsonObjectOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{LowerCaser, SimpleTokenizer, TextAnalyzer};
use tantivy::{Index, TantivyDocument, schema::OwnedValue};
use vigil_event::{Event, Value};
use vigil_query::exec::{numeric, search_text};

use crate::colcmp::float_in_column;
use crate::intcol::column_only;

/// Version of the index layout. An index of another version is rebuilt from the ledger.
pub const FORMAT_VERSION: u8 = 4;

/// Separator between a field path and its value inside keyword, number and address terms.
pub const SEP: char = '\0';

/// Keyword values longer than this (bytes, lower-cased) are not indexed as terms; the
/// document is marked so that queries on the field verify it against the ledger instead.
pub const MAX_KEYWORD_LEN: usize = 1024;

/// Fields kept out of the keyword and column fields: long free text, searched as words only.
pub const TEXT_ONLY_FIELDS: [&str; 2] = ["message", "event.original"];

/// Name of the tokenizer of the `text` field.
pub const WORDS_TOKENIZER: &str = "vigil_words";

/// Marker kinds in the `odd` field (term = kind, separator, path).
pub mod odd {
    /// A value too long to be a keyword term.
    pub const LONG: &str = "long";
    /// A value that is not a number (matters to `<`/`>` against numbers).
    pub const NOT_NUMBER: &str = "nan";
    /// A list, map or null value, or a long string: not held in the columns.
    pub const NO_COLUMN: &str = "nocol";
}

/// Handles to every field of the schema.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// Ledger sequence number (column).
    pub seq: Field,
    /// Event time, nanoseconds (column).
    pub ts: Field,
    /// Words of `event.original` (else `message`), with positions for phrases.
    pub text: Field,
    /// `path SEP lower-cased value` for every scalar value and list item.
    pub kw: Field,
    /// `path SEP ordered hex of the value as f64` for values that read as numbers.
    pub num: Field,
    /// `path SEP 4|6 hex address` for values that are IP addresses.
    pub ip: Field,
    /// `path` for every field an event has.
    pub has: Field,
    /// `kind SEP path` markers for values the other fields cannot represent exactly.
    pub odd: Field,
    /// Columns of integer values by path (JSON, fast only).
    pub col_int: Field,
    /// Columns of float values by path.
    pub col_float: Field,
    /// Columns of string values by path.
    pub col_str: Field,
    /// Columns of IP address values by path (as text).
    pub col_ip: Field,
    /// Columns of boolean values by path.
    pub col_bool: Field,
}

/// The schema and its field handles.
pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let raw = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    );
    let words = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(WORDS_TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions)
            .set_fieldnorms(false),
    );
    let column = || {
        JsonObjectOptions::default()
            .set_fast("raw")
            .set_expand_dots_enabled()
    };
    let fields = Fields {
        // Ranges over these run on their columns; an inverted index would double their cost.
        seq: b.add_u64_field("seq", FAST),
        ts: b.add_i64_field("ts", FAST),
        text: b.add_text_field("text", words),
        kw: b.add_text_field("kw", raw.clone()),
        num: b.add_text_field("num", raw.clone()),
        ip: b.add_text_field("ip", raw.clone()),
        has: b.add_text_field("has", raw.clone()),
        odd: b.add_text_field("odd", raw),
        col_int: b.add_json_field("col_int", column()),
        col_float: b.add_json_field("col_float", column()),
        col_str: b.add_json_field("col_str", column()),
        col_ip: b.add_json_field("col_ip", column()),
        col_bool: b.add_json_field("col_bool", column()),
    };
    (b.build(), fields)
}

/// Registers the tokenizers the schema names (call on every opened or created index).
pub fn register_tokenizers(index: &Index) {
    index.tokenizers().register(
        WORDS_TOKENIZER,
        TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .build(),
    );
}

/// The keyword term of a value under `path`.
pub fn kw_term_text(path: &str, lower_value: &str) -> String {
    format!("{path}{SEP}{lower_value}")
}

/// The number term of `x` under `path`: a fixed-width hex form whose byte order is numeric order.
pub fn num_term_text(path: &str, x: f64) -> String {
    format!("{path}{SEP}{:016x}", ordered_f64(x))
}

/// The address term of `ip` under `path`.
pub fn ip_term_text(path: &str, ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => format!("{path}{SEP}4{:08x}", u32::from(a)),
        IpAddr::V6(a) => format!("{path}{SEP}6{:032x}", u128::from(a)),
    }
}

/// The `odd` marker of a kind for `path`.
pub fn odd_term_text(kind: &str, path: &str) -> String {
    format!("{kind}{SEP}{path}")
}

/// Maps an f64 to a u64 whose unsigned order is the float's numeric order (`-0.0` as `0.0`).
pub fn ordered_f64(x: f64) -> u64 {
    let x = if x == 0.0 { 0.0 } else { x };
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The value of an event field as an IP address, the way CIDR comparisons read it.
pub fn as_ip(v: &Value) -> Option<IpAddr> {
    match v {
        Value::Ip(ip) => Some(*ip),
        Value::Str(s) => s.parse().ok(),
        _ => None,
    }
}

/// Builds the index document of event `seq`.
pub fn document(fields: &Fields, seq: u64, event: &Event) -> TantivyDocument {
    let mut doc = TantivyDocument::new();
    doc.add_u64(fields.seq, seq);
    doc.add_i64(fields.ts, event.timestamp().as_nanos());
    let text = search_text(event);
    if !text.is_empty() {
        doc.add_text(fields.text, text);
    }
    let mut ints = BTreeMap::new();
    let mut floats = BTreeMap::new();
    let mut strs = BTreeMap::new();
    let mut ips = BTreeMap::new();
    let mut bools = BTreeMap::new();
    for (path, value) in event.fields() {
        if path.contains(SEP) {
            continue;
        }
        if TEXT_ONLY_FIELDS.contains(&path) {
            doc.add_text(fields.has, path);
            continue;
        }
        // A scalar that fits in a column, at a plain path, lives in its column only: no `has`,
        // keyword, number or address term and no marker (`intcol`, `colcmp`).
        if column_only(path) {
            match value {
                Value::Int(i) => {
                    ints.insert(path.to_owned(), OwnedValue::I64(*i));
                    continue;
                }
                Value::Float(x) if float_in_column(*x) => {
                    floats.insert(path.to_owned(), OwnedValue::F64(*x));
                    continue;
                }
                Value::Bool(b) => {
                    bools.insert(path.to_owned(), OwnedValue::Bool(*b));
                    continue;
                }
                Value::Str(s) if s.len() <= MAX_KEYWORD_LEN => {
                    strs.insert(path.to_owned(), OwnedValue::Str(s.clone()));
                    continue;
                }
                Value::Ip(ip) => {
                    ips.insert(path.to_owned(), OwnedValue::Str(ip.to_string()));
                    continue;
                }
                _ => {}
            }
        }
        doc.add_text(fields.has, path);
        // Comparisons look inside one level of list; everything else is one value.
        let items: &[Value] = match value {
            Value::List(items) => items,
            other => std::slice::from_ref(other),
        };
        for item in items {
            let lower = item.to_string().to_lowercase();
            if lower.len() > MAX_KEYWORD_LEN {
                doc.add_text(fields.odd, odd_term_text(odd::LONG, path));
            } else {
                doc.add_text(fields.kw, kw_term_text(path, &lower));
            }
            match numeric(item) {
                Some(x) if x.is_nan() => {}
                Some(x) => doc.add_text(fields.num, num_term_text(path, x)),
                None => doc.add_text(fields.odd, odd_term_text(odd::NOT_NUMBER, path)),
            }
            if let Some(ip) = as_ip(item) {
                doc.add_text(fields.ip, ip_term_text(path, ip));
            }
        }
        match value {
            Value::Int(i) => {
                ints.insert(path.to_owned(), OwnedValue::I64(*i));
            }
            Value::Float(x) => {
                floats.insert(path.to_owned(), OwnedValue::F64(*x));
            }
            Value::Bool(b) => {
                bools.insert(path.to_owned(), OwnedValue::Bool(*b));
            }
            Value::Str(s) if s.len() <= MAX_KEYWORD_LEN => {
                strs.insert(path.to_owned(), OwnedValue::Str(s.clone()));
            }
            Value::Ip(ip) => {
                ips.insert(path.to_owned(), OwnedValue::Str(ip.to_string()));
            }
            _ => doc.add_text(fields.odd, odd_term_text(odd::NO_COLUMN, path)),
        }
    }
    for (field, map) in [
        (fields.col_int, ints),
        (fields.col_float, floats),
        (fields.col_str, strs),
        (fields.col_ip, ips),
        (fields.col_bool, bools),
    ] {
        if !map.is_empty() {
            doc.add_object(field, map);
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_f64_keeps_numeric_order() {
        let xs = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -1.0,
            -1e-300,
            0.0,
            1e-300,
            1.0,
            2.5,
            403.0,
            1e300,
            f64::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(ordered_f64(w[0]) < ordered_f64(w[1]), "{} < {}", w[0], w[1]);
        }
        assert_eq!(ordered_f64(-0.0), ordered_f64(0.0));
    }

    #[test]
    fn terms_sort_inside_their_path() {
        let a = num_term_text("x", -3.0);
        let b = num_term_text("x", 2.0);
        assert!(a < b);
        assert!(b.as_str() < "x\u{1}");
        let v4 = ip_term_text("ip", "10.0.0.1".parse().unwrap());
        let v6 = ip_term_text("ip", "::1".parse().unwrap());
        assert!(v4 < v6);
    }
}
