//! The canonical byte encoding of an event (layout in `FORMAT.md`).
//!
//! Encoding is a pure function of the event; decoding accepts exactly the byte strings that
//! encoding produces (minimal varints, keys strictly ascending, canonical NaN, no trailing bytes),
//! so `encode(decode(b)) == b` for every `b` that decodes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::fields::Fields;
use crate::value::CANONICAL_NAN;
use crate::{Event, FieldName, Timestamp, Value};

/// Version byte that opens every canonical encoding.
pub const CANONICAL_VERSION: u8 = 1;

/// Lists and maps nest at most this deep; deeper input is refused rather than risking the stack.
pub(crate) const MAX_DEPTH: usize = 64;

pub(crate) const TAG_NULL: u8 = 0x00;
pub(crate) const TAG_FALSE: u8 = 0x01;
pub(crate) const TAG_TRUE: u8 = 0x02;
pub(crate) const TAG_INT: u8 = 0x03;
pub(crate) const TAG_FLOAT: u8 = 0x04;
pub(crate) const TAG_STR: u8 = 0x05;
pub(crate) const TAG_IPV4: u8 = 0x06;
pub(crate) const TAG_IPV6: u8 = 0x07;
pub(crate) const TAG_LIST: u8 = 0x08;
pub(crate) const TAG_MAP: u8 = 0x09;

/// Why bytes are not a canonical event encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a canonical event encoding at byte {offset}: {reason}")]
pub struct DecodeError {
    /// Offset of the offending byte.
    pub offset: usize,
    /// What was wrong there.
    pub reason: &'static str,
}

impl Event {
    /// The canonical bytes of this event: what the ledger stores and hashes.
    pub fn to_canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.fields.len() * 24);
        self.write_canonical(&mut out);
        out
    }

    /// Appends the canonical bytes of this event to `out`.
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        out.push(CANONICAL_VERSION);
        out.extend_from_slice(&self.timestamp.as_nanos().to_be_bytes());
        write_varint(out, self.fields.len() as u64);
        for (key, value) in &self.fields {
            write_str(out, key);
            write_value(out, value);
        }
    }

    /// Decodes canonical bytes. Rejects anything [`Event::to_canonical`] would not produce.
    pub fn from_canonical(bytes: &[u8]) -> Result<Event, DecodeError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.byte()? != CANONICAL_VERSION {
            return Err(r.error_at(0, "unknown version byte"));
        }
        let timestamp = Timestamp::from_nanos(i64::from_be_bytes(r.array::<8>()?));
        let fields = r.top_level_fields()?;
        if fields.iter().any(|(k, _)| k.is_empty()) {
            return Err(r.error("empty field name"));
        }
        if fields.iter().any(|(_, v)| matches!(v, Value::Map(_))) {
            return Err(r.error("map at top level (must be flattened)"));
        }
        if r.pos != bytes.len() {
            return Err(r.error("trailing bytes"));
        }
        Ok(Event {
            timestamp,
            fields: Fields::from_sorted(fields),
        })
    }
}

fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    write_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(TAG_NULL),
        Value::Bool(false) => out.push(TAG_FALSE),
        Value::Bool(true) => out.push(TAG_TRUE),
        Value::Int(i) => {
            out.push(TAG_INT);
            out.extend_from_slice(&i.to_be_bytes());
        }
        Value::Float(f) => {
            out.push(TAG_FLOAT);
            let bits = if f.is_nan() {
                CANONICAL_NAN
            } else {
                f.to_bits()
            };
            out.extend_from_slice(&bits.to_be_bytes());
        }
        Value::Str(s) => {
            out.push(TAG_STR);
            write_str(out, s);
        }
        Value::Ip(IpAddr::V4(ip)) => {
            out.push(TAG_IPV4);
            out.extend_from_slice(&ip.octets());
        }
        Value::Ip(IpAddr::V6(ip)) => {
            out.push(TAG_IPV6);
            out.extend_from_slice(&ip.octets());
        }
        Value::List(items) => {
            out.push(TAG_LIST);
            write_varint(out, items.len() as u64);
            for item in items {
                write_value(out, item);
            }
        }
        Value::Map(map) => {
            out.push(TAG_MAP);
            write_varint(out, map.len() as u64);
            for (k, v) in map {
                write_str(out, k);
                write_value(out, v);
            }
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            offset: self.pos,
            reason,
        }
    }

    fn error_at(&self, offset: usize, reason: &'static str) -> DecodeError {
        DecodeError { offset, reason }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| self.error("unexpected end"))?;
        self.pos += 1;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(slice);
        Ok(a)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.error("unexpected end"));
        }
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut n: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(self.error_at(start, "varint overflows 64 bits"));
            }
            n |= part << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(self.error_at(start, "non-minimal varint"));
                }
                return Ok(n);
            }
        }
        Err(self.error_at(start, "varint too long"))
    }

    /// A length or count, which can never exceed the bytes left (each item takes at least one).
    fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        if n > self.remaining() as u64 {
            return Err(self.error("length exceeds input"));
        }
        Ok(n as usize)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        self.str().map(str::to_owned)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = self.count()?;
        let start = self.pos;
        if self.remaining() < len {
            return Err(self.error("unexpected end"));
        }
        let raw: &'a [u8] = &self.bytes[start..start + len];
        self.pos += len;
        std::str::from_utf8(raw).map_err(|_| self.error_at(start, "invalid UTF-8"))
    }

    /// The event's own fields: as [`Reader::map_body`] at depth 0 (the same checks, in the same
    /// order, with the same errors), but into a sorted `Vec` with names from the interned table
    /// where they are there.
    fn top_level_fields(&mut self) -> Result<Vec<(FieldName, Value)>, DecodeError> {
        let n = self.count()?;
        // A field takes at least two bytes (an empty name and a null); a hostile count is
        // bounded by the input, and growth past this is by pushing.
        let mut fields: Vec<(FieldName, Value)> = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let key_pos = self.pos;
            let key = self.str()?;
            if fields.last().is_some_and(|(p, _)| p.as_str() >= key) {
                return Err(self.error_at(key_pos, "keys not strictly ascending"));
            }
            let key = FieldName::from(key);
            let value = self.value(0)?;
            fields.push((key, value));
        }
        Ok(fields)
    }

    fn map_body(&mut self, depth: usize) -> Result<BTreeMap<String, Value>, DecodeError> {
        let n = self.count()?;
        let mut map = BTreeMap::new();
        let mut previous: Option<String> = None;
        for _ in 0..n {
            let key_pos = self.pos;
            let key = self.string()?;
            if previous.as_deref().is_some_and(|p| p >= key.as_str()) {
                return Err(self.error_at(key_pos, "keys not strictly ascending"));
            }
            let value = self.value(depth)?;
            previous = Some(key.clone());
            map.insert(key, value);
        }
        Ok(map)
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        let tag_pos = self.pos;
        Ok(match self.byte()? {
            TAG_NULL => Value::Null,
            TAG_FALSE => Value::Bool(false),
            TAG_TRUE => Value::Bool(true),
            TAG_INT => Value::Int(i64::from_be_bytes(self.array::<8>()?)),
            TAG_FLOAT => {
                let bits = u64::from_be_bytes(self.array::<8>()?);
                let f = f64::from_bits(bits);
                if f.is_nan() && bits != CANONICAL_NAN {
                    return Err(self.error_at(tag_pos, "non-canonical NaN"));
                }
                Value::Float(f)
            }
            TAG_STR => Value::Str(self.string()?),
            TAG_IPV4 => Value::Ip(IpAddr::V4(Ipv4Addr::from(self.array::<4>()?))),
            TAG_IPV6 => Value::Ip(IpAddr::V6(Ipv6Addr::from(self.array::<16>()?))),
            TAG_LIST => {
                let n = self.count()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::List(items)
            }
            TAG_MAP => Value::Map(self.map_body(depth + 1)?),
            _ => return Err(self.error_at(tag_pos, "unknown value tag")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let mut e = Event::new(Timestamp::from_nanos(1_763_805_600_123_456_789));
        e.insert("source.ip", Value::Ip("203.0.113.5".parse().unwrap()));
        e.insert("source.port", 51234i64);
        e.insert("user.name", "admin");
        e.insert("event.outcome", "failure");
        e.insert("score", 0.5);
        e.insert("ok", false);
        e.insert("gone", Value::Null);
        e.insert("related.ip", Value::Ip("2001:db8::1".parse().unwrap()));
        let mut m = BTreeMap::new();
        m.insert("k".to_string(), Value::from("v"));
        e.insert("list", Value::List(vec![Value::Int(1), Value::Map(m)]));
        e
    }

    #[test]
    fn round_trip() {
        let e = sample();
        let bytes = e.to_canonical();
        assert_eq!(Event::from_canonical(&bytes).unwrap(), e);
    }

    #[test]
    fn insertion_order_does_not_matter() {
        let mut a = Event::new(Timestamp::from_secs(1));
        a.insert("b", 1i64);
        a.insert("a", "x");
        let mut b = Event::new(Timestamp::from_secs(1));
        b.insert("a", "x");
        b.insert("b", 1i64);
        assert_eq!(a.to_canonical(), b.to_canonical());
    }

    #[test]
    fn types_are_distinguished() {
        let mut a = Event::new(Timestamp::from_secs(1));
        a.insert("x", "1");
        let mut b = Event::new(Timestamp::from_secs(1));
        b.insert("x", 1i64);
        let mut c = Event::new(Timestamp::from_secs(1));
        c.insert("x", 1.0);
        assert_ne!(a.to_canonical(), b.to_canonical());
        assert_ne!(b.to_canonical(), c.to_canonical());
    }

    #[test]
    fn known_bytes() {
        let mut e = Event::new(Timestamp::from_nanos(1));
        e.insert("a", true);
        assert_eq!(
            e.to_canonical(),
            [1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, b'a', TAG_TRUE]
        );
    }

    #[test]
    fn rejects_non_canonical_input() {
        let good = sample().to_canonical();
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            Event::from_canonical(&trailing).unwrap_err().reason,
            "trailing bytes"
        );
        // A count of 1 written as the two-byte varint 0x81 0x00.
        let mut e = Event::new(Timestamp::from_nanos(0));
        e.insert("a", true);
        let mut bytes = e.to_canonical();
        bytes.splice(9..10, [0x81, 0x00]);
        assert_eq!(
            Event::from_canonical(&bytes).unwrap_err().reason,
            "non-minimal varint"
        );
        // Keys out of order.
        let bad = [1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, b'b', 0, 1, b'a', 0];
        assert_eq!(
            Event::from_canonical(&bad).unwrap_err().reason,
            "keys not strictly ascending"
        );
        assert!(Event::from_canonical(&[]).is_err());
        assert!(Event::from_canonical(&[2]).is_err());
    }

    #[test]
    fn hostile_counts_do_not_allocate() {
        // Claims 2^62 list items with 3 bytes left.
        let mut bytes = vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, b'a', TAG_LIST];
        write_varint(&mut bytes, 1 << 62);
        assert!(Event::from_canonical(&bytes).is_err());
    }

    /// The bytes a `BTreeMap<String, Value>` of the fields gave before the fields became a
    /// sorted `Vec` of interned names: the same `write_*` functions over the map's order.
    fn reference_bytes(timestamp: Timestamp, map: &BTreeMap<String, Value>) -> Vec<u8> {
        let mut out = vec![CANONICAL_VERSION];
        out.extend_from_slice(&timestamp.as_nanos().to_be_bytes());
        write_varint(&mut out, map.len() as u64);
        for (key, value) in map {
            write_str(&mut out, key);
            write_value(&mut out, value);
        }
        out
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Any inserts and removals, known and unknown names mixed, in any order: the canonical
            /// bytes are those of the `BTreeMap` model, and they decode back to the same event.
            #[test]
            fn canonical_bytes_are_the_btreemap_bytes(
                ops in proptest::collection::vec(
                    (
                        prop_oneof![
                            proptest::sample::select(crate::known_names()).prop_map(str::to_owned),
                            "[a-z.]{1,10}",
                        ],
                        proptest::option::weighted(0.85, any::<i64>()),
                    ),
                    0..60,
                ),
                nanos in any::<i64>(),
            ) {
                let timestamp = Timestamp::from_nanos(nanos);
                let mut event = Event::new(timestamp);
                let mut model = BTreeMap::new();
                for (name, value) in ops {
                    match value {
                        Some(v) => {
                            let value = if v % 3 == 0 { Value::from(v.to_string()) } else { Value::Int(v) };
                            event.insert(name.as_str(), value.clone());
                            model.insert(name, value);
                        }
                        None => {
                            proptest::prop_assert_eq!(event.remove(&name), model.remove(&name));
                        }
                    }
                }
                let bytes = event.to_canonical();
                proptest::prop_assert_eq!(&bytes, &reference_bytes(timestamp, &model));
                proptest::prop_assert_eq!(Event::from_canonical(&bytes).unwrap(), event);
            }
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut bytes = vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, b'a'];
        for _ in 0..200 {
            bytes.extend_from_slice(&[TAG_LIST, 1]);
        }
        bytes.push(TAG_NULL);
        assert_eq!(
            Event::from_canonical(&bytes).unwrap_err().reason,
            "nested too deeply"
        );
    }
}
