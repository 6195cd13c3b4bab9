//! # vigil-event: the one event type every part of Vigil passes around
//!
//! An [`Event`] is a timestamp plus a map of typed [`Value`]s keyed by dotted ECS field names
//! (`source.ip`, `user.name`, `event.outcome`, …). Nested JSON objects are flattened into dotted
//! keys on the way in, so `{"source": {"ip": "203.0.113.5"}}` and `{"source.ip": "203.0.113.5"}`
//! are the same event.
//!
//! Three representations matter:
//!
//! * **JSON** ([`Event::from_json`], [`Event::to_json`]): what users send and read. Output is flat
//!   (dotted keys), which round-trips exactly; [`Event::to_nested_json`] gives the ECS nested shape.
//! * **Canonical bytes** ([`Event::to_canonical`], [`Event::from_canonical`]): a deterministic
//!   binary encoding (see `FORMAT.md` beside this file). The same event always encodes to the same
//!   bytes and every valid byte string decodes to exactly one event, so these bytes are what the
//!   ledger stores and hashes.
//! * **The in-memory map**: fields sorted by key, so iteration order is stable.
//!
//! ```
//! use vigil_event::{Event, Timestamp, Value};
//! let event = Event::from_json(
//!     r#"{"@timestamp":"2026-11-22T10:00:00Z","source":{"ip":"203.0.113.5"},"user.name":"admin"}"#,
//!     Timestamp::now(),
//! ).unwrap();
//! assert!(matches!(event.get("source.ip"), Some(Value::Ip(_))));
//! let bytes = event.to_canonical();
//! assert_eq!(Event::from_canonical(&bytes).unwrap(), event);
//! ```
#![deny(missing_docs)]

mod audit;
mod canonical;
mod ecs;
mod field_name;
mod fields;
mod interned;
mod json;
mod names;
pub mod peek;
mod timestamp;
mod value;

use std::fmt;

use fields::Fields;

pub use audit::AuditBuilder;
pub use canonical::{CANONICAL_VERSION, DecodeError};
pub use ecs::{Category, EventKind, EventType, NotAllowed, Outcome};
pub use field_name::{FieldName, interned, known_names};
pub use json::{JsonError, is_ip_key};
pub use names::{Parser, UnknownParser, dataset, field, tag};
pub use timestamp::{Timestamp, TimestampError};
pub use value::Value;

/// A [`FieldName`] from Vigil's table of known names, found when the program is compiled
/// (a name missing from the table is a compile error): `event.insert(name!("source.ip"), ip)`
/// costs no look-up and no allocation, where `event.insert("source.ip", ip)` hashes the text
/// to find it in the table.
///
/// ```
/// use vigil_event::{Event, FieldName, Timestamp, field, name};
/// let mut e = Event::new(Timestamp::from_nanos(0));
/// e.insert(name!("user.name"), "alice");
/// e.insert(name!(field::MESSAGE), "hello");
/// assert_eq!(e.get_str("user.name"), Some("alice"));
/// assert!(name!("source.ip").is_known());
/// ```
#[macro_export]
macro_rules! name {
    ($name:expr) => {{
        const NAME: $crate::FieldName = $crate::FieldName::known($name);
        NAME
    }};
}

/// Field name of the event time in JSON (the same as [`field::TIMESTAMP`]).
pub const TIMESTAMP_FIELD: &str = field::TIMESTAMP;

/// A security event: a timestamp and typed fields under dotted ECS names.
///
/// Keys are kept sorted. A key never holds a [`Value::Map`] directly: inserting a map flattens it
/// into dotted keys (maps survive only inside lists, where there is no key to flatten into).
///
/// Inside, the fields are a `Vec` sorted by name and the names are [`FieldName`]s, places in a
/// static table when Vigil knows them: building a parsed event allocates its values, not its
/// names.
#[derive(Clone, PartialEq, Default)]
pub struct Event {
    timestamp: Timestamp,
    fields: Fields,
}

/// Printed as it was when the fields were a `BTreeMap<String, Value>`.
impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("timestamp", &self.timestamp)
            .field("fields", &self.fields)
            .finish()
    }
}

impl Event {
    /// An event at `timestamp` with no fields.
    pub fn new(timestamp: Timestamp) -> Event {
        Event {
            timestamp,
            fields: Fields::default(),
        }
    }

    /// Makes room for `additional` more fields (a parser that knows how many it will write).
    pub fn reserve(&mut self, additional: usize) {
        self.fields.reserve(additional);
    }

    /// The event time (`@timestamp`).
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// Sets the event time.
    pub fn set_timestamp(&mut self, timestamp: Timestamp) {
        self.timestamp = timestamp;
    }

    /// The value under a dotted key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// The value under a dotted key if it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.fields.get(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// Whether the event has a value under `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    /// Whether a field is present, asked by a [`FieldName`] (`name!("…")`): the same answer as
    /// [`Event::contains`], but a known name is found by its place without hashing its text.
    pub fn contains_name(&self, key: &FieldName) -> bool {
        self.fields.get_by_name(key).is_some()
    }

    /// Sets `key` to `value`, replacing what was there. A [`Value::Map`] is flattened into
    /// `key.subkey` entries. An empty key is ignored (it cannot be named in a query).
    ///
    /// `key` is anything a `String` could be made from (`&str`, `String`, `&String`, …) or a
    /// [`FieldName`]; a name Vigil knows costs no allocation.
    pub fn insert(&mut self, key: impl Into<FieldName>, value: impl Into<Value>) {
        let key = key.into();
        if key.is_empty() {
            return;
        }
        match value.into() {
            Value::Map(map) => {
                for (sub, v) in map {
                    self.insert(format!("{}.{sub}", key.as_str()), v);
                }
            }
            value => {
                self.fields.insert(key, value);
            }
        }
    }

    /// Removes and returns the value under `key`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.fields.remove(key)
    }

    /// Fields in key order.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Fields in key order, with their names as [`FieldName`]s (whose [`FieldName::index`] keys
    /// a per-name memo without hashing the text).
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (&FieldName, &Value)> {
        self.fields.iter()
    }

    /// Mutable access to one field's value.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.fields.get_mut(key)
    }

    /// Number of fields (the timestamp not counted).
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the event has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Adds `tag` to the `tags` list unless it is already there (see [`crate::tag`] for the
    /// values Vigil acts on).
    pub fn add_tag(&mut self, tag: &str) {
        const TAGS: FieldName = FieldName::known(field::TAGS);
        match self.fields.get_mut_by_name(&TAGS) {
            Some(Value::List(tags)) => {
                if !tags.iter().any(|t| t.as_str() == Some(tag)) {
                    tags.push(Value::from(tag));
                }
            }
            Some(other) => {
                let previous = std::mem::replace(other, Value::Null);
                *other = Value::List(vec![previous, Value::from(tag)]);
            }
            None => {
                self.fields
                    .insert(TAGS, Value::List(vec![Value::from(tag)]));
            }
        }
    }

    /// The string values of `tags` (a list, or a single string), in order.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        let (list, single) = match self.fields.get(field::TAGS) {
            Some(Value::List(tags)) => (tags.as_slice(), None),
            Some(Value::Str(tag)) => (&[][..], Some(tag.as_str())),
            _ => (&[][..], None),
        };
        list.iter().filter_map(Value::as_str).chain(single)
    }

    /// Whether `tags` holds exactly `tag` (not a tag that merely contains it:
    /// `no_parse_errors` is not [`tag::PARSE_ERROR`]).
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags().any(|t| t == tag)
    }

    /// The event's `event.dataset`, when it is a string.
    pub fn dataset(&self) -> Option<&str> {
        self.get_str(field::EVENT_DATASET)
    }

    /// Whether `event.dataset` is exactly `dataset` (see [`crate::dataset`]).
    pub fn is_dataset(&self, dataset: &str) -> bool {
        self.dataset() == Some(dataset)
    }

    /// The drill run this event belongs to ([`field::VIGIL_DRILL_RUN`]), when it is part of
    /// a drill; real events have none.
    pub fn drill_run(&self) -> Option<&str> {
        self.get_str(field::VIGIL_DRILL_RUN)
    }

    /// The parser that read the event (`vigil.parser`), when it names one.
    pub fn parser(&self) -> Option<Parser> {
        self.get_str(field::VIGIL_PARSER)?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `contains_name` answers as `contains` for known and other names, in an event small
    /// enough for the sorted `Vec` and in one large enough for the map.
    #[test]
    fn contains_name_agrees_with_contains() {
        for extra in [0, 300] {
            let mut e = Event::new(Timestamp::from_nanos(0));
            e.insert(name!("source.ip"), "203.0.113.1");
            e.insert("custom.thing", 1i64);
            for i in 0..extra {
                e.insert(format!("k{i}"), 1i64);
            }
            for key in [
                "source.ip",
                "custom.thing",
                "user.name",
                "custom",
                "k1",
                "tags",
            ] {
                assert_eq!(
                    e.contains_name(&FieldName::from(key)),
                    e.contains(key),
                    "{key} with {extra} extra fields"
                );
            }
            e.add_tag("a");
            e.add_tag("b");
            e.add_tag("a");
            assert_eq!(e.tags().collect::<Vec<_>>(), ["a", "b"]);
        }
    }

    fn tagged(tags: &[&str]) -> Event {
        let mut e = Event::new(Timestamp::from_nanos(0));
        for t in tags {
            e.add_tag(t);
        }
        e
    }

    /// The substring search callers used to write (`tags.to_string().contains("parse_error")`)
    /// takes `no_parse_errors` for `parse_error`; `has_tag` does not.
    #[test]
    fn has_tag_is_exact_where_a_substring_search_is_not() {
        let e = tagged(&["no_parse_errors", "untruncated"]);
        let old_way = |t: &str| {
            e.get(field::TAGS)
                .is_some_and(|v| v.to_string().contains(t))
        };
        assert!(
            old_way(tag::PARSE_ERROR),
            "the substring search's false positive"
        );
        assert!(
            old_way(tag::TRUNCATED),
            "the substring search's false positive"
        );
        assert!(!e.has_tag(tag::PARSE_ERROR));
        assert!(!e.has_tag(tag::TRUNCATED));

        let e = tagged(&["no_parse_errors", tag::PARSE_ERROR]);
        assert!(e.has_tag(tag::PARSE_ERROR));
        assert!(!e.has_tag("parse"));
    }

    #[test]
    fn tags_reads_a_list_or_a_single_string() {
        let mut e = Event::new(Timestamp::from_nanos(0));
        assert_eq!(e.tags().count(), 0);
        assert!(!e.has_tag(tag::TRUNCATED));
        e.insert(field::TAGS, tag::TRUNCATED);
        assert!(e.has_tag(tag::TRUNCATED));
        assert_eq!(e.tags().collect::<Vec<_>>(), [tag::TRUNCATED]);
        e.add_tag(tag::PARSE_ERROR);
        e.add_tag(tag::PARSE_ERROR);
        assert_eq!(
            e.tags().collect::<Vec<_>>(),
            [tag::TRUNCATED, tag::PARSE_ERROR]
        );
        // A non-string element is not a tag and is skipped.
        e.insert(
            field::TAGS,
            Value::List(vec![Value::Int(1), Value::from("x")]),
        );
        assert_eq!(e.tags().collect::<Vec<_>>(), ["x"]);
    }

    #[test]
    fn dataset_and_parser_are_read_exactly() {
        let mut e = Event::new(Timestamp::from_nanos(0));
        assert_eq!(e.dataset(), None);
        assert_eq!(e.parser(), None);
        e.insert(field::EVENT_DATASET, "vigil.alerts");
        assert!(!e.is_dataset(dataset::VIGIL_ALERT));
        e.insert(field::EVENT_DATASET, dataset::VIGIL_ALERT);
        assert!(e.is_dataset(dataset::VIGIL_ALERT));
        e.insert(field::VIGIL_PARSER, Parser::ApacheError.as_str());
        assert_eq!(e.parser(), Some(Parser::ApacheError));
        e.insert(field::VIGIL_PARSER, "someone_elses");
        assert_eq!(e.parser(), None);
    }
}
