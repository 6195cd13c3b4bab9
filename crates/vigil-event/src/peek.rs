//! One field of an event's canonical bytes, read without decoding the event.
//!
//! A follower that only needs to know whether an event can concern it (the detector, when no
//! loaded rule's logsource admits the event) reads the one field it dispatches on from the
//! ledger's bytes instead of building the whole event. The walk takes no allocation, stops at
//! the first key past the one asked for (keys are strictly ascending), bounds nesting like the
//! decoder, and never reads past the input. It does not validate: bytes the decoder would
//! refuse may peek as anything; a caller that goes on to decode finds that out then.

/// What [`peek`] found under a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peeked<'a> {
    /// No field with that key.
    Absent,
    /// A text value.
    Str(&'a str),
    /// Some other value (a number, an address, a list...), or bytes the walk could not read:
    /// the caller must decode to know.
    Other,
}

/// The value of field `key` in the canonical encoding `bytes` (see `FORMAT.md`).
pub fn peek<'a>(bytes: &'a [u8], key: &str) -> Peeked<'a> {
    walk(bytes, key.as_bytes()).unwrap_or(Peeked::Other)
}

// The value tags, and the nesting bound (the decoder refuses deeper lists and maps too).
use crate::canonical::{
    MAX_DEPTH, TAG_FALSE, TAG_FLOAT, TAG_INT, TAG_IPV4, TAG_IPV6, TAG_LIST, TAG_MAP, TAG_NULL,
    TAG_STR, TAG_TRUE,
};

fn walk<'a>(bytes: &'a [u8], key: &[u8]) -> Option<Peeked<'a>> {
    let mut c = Cursor { bytes, pos: 0 };
    if c.byte()? != crate::CANONICAL_VERSION {
        return None;
    }
    c.take(8)?;
    let n = c.count()?;
    for _ in 0..n {
        let k = c.str_bytes()?;
        match k.cmp(key) {
            std::cmp::Ordering::Less => c.skip_value(0)?,
            std::cmp::Ordering::Equal => {
                return Some(if c.byte()? == TAG_STR {
                    std::str::from_utf8(c.str_bytes()?).map_or(Peeked::Other, Peeked::Str)
                } else {
                    Peeked::Other
                });
            }
            std::cmp::Ordering::Greater => return Some(Peeked::Absent),
        }
    }
    Some(Peeked::Absent)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f).checked_shl(7 * i)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    /// A length or count: never more than the bytes left (each item takes at least one).
    fn count(&mut self) -> Option<usize> {
        let n = self.varint()?;
        (n <= (self.bytes.len() - self.pos) as u64).then_some(n as usize)
    }

    fn str_bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.count()?;
        self.take(len)
    }

    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        match self.byte()? {
            TAG_NULL | TAG_FALSE | TAG_TRUE => {}
            TAG_INT | TAG_FLOAT => {
                self.take(8)?;
            }
            TAG_STR => {
                self.str_bytes()?;
            }
            TAG_IPV4 => {
                self.take(4)?;
            }
            TAG_IPV6 => {
                self.take(16)?;
            }
            TAG_LIST => {
                for _ in 0..self.count()? {
                    self.skip_value(depth + 1)?;
                }
            }
            TAG_MAP => {
                for _ in 0..self.count()? {
                    self.str_bytes()?;
                    self.skip_value(depth + 1)?;
                }
            }
            _ => return None,
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, Timestamp, Value};

    fn event() -> Event {
        let mut e = Event::new(Timestamp::from_secs(1_700_000_000));
        e.insert("a.int", 7i64);
        e.insert("b.list", Value::List(vec![Value::from("x"), Value::Int(1)]));
        e.insert("c.ip", Value::Ip("203.0.113.9".parse().unwrap()));
        e.insert("event.dataset", "vigil.audit");
        e.insert("f.float", 1.5f64);
        e.insert("zz", "last");
        e
    }

    /// Every field peeks as the decoder reads it: texts as themselves, other values as
    /// `Other`, missing keys (before, between and after the present ones) as `Absent`.
    #[test]
    fn peeks_agree_with_the_decoder() {
        let e = event();
        let bytes = e.to_canonical();
        for (key, value) in e.fields() {
            let want = match value {
                Value::Str(s) => Peeked::Str(s.as_str()),
                _ => Peeked::Other,
            };
            assert_eq!(peek(&bytes, key), want, "{key}");
        }
        for key in ["", "a", "b", "event.data", "event.datasetx", "zzz"] {
            assert_eq!(peek(&bytes, key), Peeked::Absent, "{key}");
        }
    }

    /// Cut or damaged bytes never panic or read out of bounds; what they peek as is `Other`
    /// or something the decoder would refuse anyway.
    #[test]
    fn damaged_bytes_are_safe() {
        let bytes = event().to_canonical();
        for cut in 0..bytes.len() {
            let _ = peek(&bytes[..cut], "zz");
        }
        let mut flipped = bytes.clone();
        for i in 0..flipped.len() {
            for bit in [0x01, 0x80, 0xff] {
                flipped[i] ^= bit;
                let _ = peek(&flipped, "zz");
                let _ = peek(&flipped, "event.dataset");
                flipped[i] ^= bit;
            }
        }
        assert_eq!(peek(&[], "zz"), Peeked::Other);
        // A list claiming more items than bytes, nested without end.
        let mut deep = vec![crate::CANONICAL_VERSION];
        deep.extend_from_slice(&[0; 8]);
        deep.extend_from_slice(&[1, 1, b'a']);
        deep.extend(std::iter::repeat_n([TAG_LIST, 1], 10_000).flatten());
        assert_eq!(peek(&deep, "b"), Peeked::Other);
    }
}
