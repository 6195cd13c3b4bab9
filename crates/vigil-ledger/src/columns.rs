//! The "columns" transform of an events block's payload (compression byte 2, segment version
//! 3; layout in FORMAT.md): the block's canonical events are rearranged so that the values of
//! one field name sit together — every `event.original` of the block in a row, every
//! `source.ip`, … — before zstd, which then finds the repeats between events that the
//! event-by-event order keeps far apart. It is a container detail only: [`decode`] gives back
//! the block's framing byte for byte, so the canonical bytes, and the leaves that hash them,
//! do not change.
//!
//! [`encode`] returns `None` for anything it does not fully understand (the block is then
//! stored with plain zstd), and the writer checks that [`decode`] of its output gives the
//! input back before choosing it. [`decode`] reads untrusted bytes: every length and count is
//! checked against what remains, the output is bounded by the header's `raw_len`, and nesting
//! is bounded as in the canonical encoding.

use crate::format::{read_varint, write_varint};

/// Deepest nesting of lists and maps inside one value (as the canonical decoder allows).
const MAX_DEPTH: usize = 64;

/// Distinct field names one block may hold.
const MAX_KEYS: usize = 1 << 16;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn varint(&mut self) -> Option<u64> {
        let (v, used) = read_varint(&self.buf[self.pos..])?;
        self.pos += used;
        Some(v)
    }
    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        (n <= self.remaining()).then_some(n)
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.remaining() {
            return None;
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Some(s)
    }
    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    /// Skips one canonical value (tag and content) and returns its bytes.
    fn value(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        self.skip_value(0)?;
        Some(&self.buf[start..self.pos])
    }
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.byte()? {
            0x00..=0x02 => {}
            0x03 | 0x04 => {
                self.take(8)?;
            }
            0x05 => {
                let n = self.len()?;
                self.take(n)?;
            }
            0x06 => {
                self.take(4)?;
            }
            0x07 => {
                self.take(16)?;
            }
            0x08 => {
                let n = self.len()?;
                for _ in 0..n {
                    self.skip_value(depth + 1)?;
                }
            }
            0x09 => {
                let n = self.len()?;
                for _ in 0..n {
                    let k = self.len()?;
                    self.take(k)?;
                    self.skip_value(depth + 1)?;
                }
            }
            _ => return None,
        }
        Some(())
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Rearranges a block's framing (`(len ‖ canonical event)*`) by field name. `None` if an event
/// is not canonical version 1 as this module reads it.
///
/// Layout: `n_keys`, each key (`len ‖ bytes`, in order of first use); `n_events`; per event:
/// its length, version byte, time as the zigzag difference from the previous event's
/// (big-endian i64 read as signed), field count, and each field's key number; then per key,
/// the length of its column and the column (that key's values, tag and content, in event
/// order).
pub fn encode(framing: &[u8]) -> Option<Vec<u8>> {
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut key_ids: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
    let mut columns: Vec<Vec<u8>> = Vec::new();
    let mut structure = Vec::with_capacity(framing.len() / 8);
    let mut n_events = 0u64;
    let mut prev_ts = 0i64;
    let mut outer = Cursor::new(framing);
    while outer.remaining() > 0 {
        let len = outer.len()?;
        let event = outer.take(len)?;
        let mut c = Cursor::new(event);
        let version = c.byte()?;
        if version != 0x01 {
            return None;
        }
        let ts = i64::from_be_bytes(c.take(8)?.try_into().ok()?);
        let n_fields = c.varint()?;
        write_varint(&mut structure, len as u64);
        structure.push(version);
        write_varint(&mut structure, zigzag(ts.wrapping_sub(prev_ts)));
        prev_ts = ts;
        write_varint(&mut structure, n_fields);
        for _ in 0..n_fields {
            let k = c.len()?;
            let key = c.take(k)?;
            let value = c.value()?;
            let id = match key_ids.get(key) {
                Some(&id) => id,
                None => {
                    if keys.len() >= MAX_KEYS {
                        return None;
                    }
                    key_ids.insert(key, keys.len());
                    keys.push(key);
                    columns.push(Vec::new());
                    keys.len() - 1
                }
            };
            write_varint(&mut structure, id as u64);
            columns[id].extend_from_slice(value);
        }
        if c.remaining() != 0 {
            return None;
        }
        n_events += 1;
    }
    let mut out = Vec::with_capacity(framing.len() + 64);
    write_varint(&mut out, keys.len() as u64);
    for k in &keys {
        write_varint(&mut out, k.len() as u64);
        out.extend_from_slice(k);
    }
    write_varint(&mut out, n_events);
    out.extend_from_slice(&structure);
    for col in &columns {
        write_varint(&mut out, col.len() as u64);
        out.extend_from_slice(col);
    }
    Some(out)
}

/// Gives back the framing [`encode`] rearranged; `None` if `bytes` is not such a
/// rearrangement or the framing would be longer than `max_len`.
pub fn decode(bytes: &[u8], max_len: usize) -> Option<Vec<u8>> {
    let mut c = Cursor::new(bytes);
    let n_keys = c.len()?;
    if n_keys > MAX_KEYS {
        return None;
    }
    let mut keys = Vec::with_capacity(n_keys);
    for _ in 0..n_keys {
        let k = c.len()?;
        keys.push(c.take(k)?);
    }
    // Each event takes at least four bytes of structure.
    let n_events = c.varint()?;
    if n_events > (c.remaining() / 4) as u64 {
        return None;
    }
    // Per event: (length, version, time, first key number's index in `ids`, field count).
    let mut heads: Vec<(usize, u8, i64, usize, usize)> = Vec::with_capacity(n_events as usize);
    let mut ids: Vec<u32> = Vec::new();
    let mut ts = 0i64;
    for _ in 0..n_events {
        let len = usize::try_from(c.varint()?).ok()?;
        if len > max_len {
            return None;
        }
        let version = c.byte()?;
        ts = ts.wrapping_add(unzigzag(c.varint()?));
        let n_fields = c.len()?;
        let first = ids.len();
        for _ in 0..n_fields {
            let id = usize::try_from(c.varint()?).ok()?;
            if id >= n_keys {
                return None;
            }
            ids.push(id as u32);
        }
        heads.push((len, version, ts, first, n_fields));
    }
    let mut columns = Vec::with_capacity(n_keys);
    for _ in 0..n_keys {
        let n = c.len()?;
        columns.push(Cursor::new(c.take(n)?));
    }
    if c.remaining() != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(max_len);
    for &(len, version, ts, first, n_fields) in &heads {
        write_varint(&mut out, len as u64);
        let start = out.len();
        out.push(version);
        out.extend_from_slice(&ts.to_be_bytes());
        write_varint(&mut out, n_fields as u64);
        for &id in &ids[first..first + n_fields] {
            let id = id as usize;
            write_varint(&mut out, keys[id].len() as u64);
            out.extend_from_slice(keys[id]);
            out.extend_from_slice(columns[id].value()?);
            if out.len() > max_len {
                return None;
            }
        }
        if out.len() - start != len {
            return None;
        }
    }
    if columns.iter().any(|col| col.remaining() != 0) {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::{Event, Timestamp, Value};

    fn framing(events: &[Event]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in events {
            let bytes = e.to_canonical();
            write_varint(&mut out, bytes.len() as u64);
            out.extend_from_slice(&bytes);
        }
        out
    }

    fn sample() -> Vec<Event> {
        (0..300)
            .map(|i| {
                let mut e = Event::new(Timestamp::from_secs(1_700_000_000 - (i % 7) * 1000));
                e.insert(
                    "event.original",
                    format!("<38>sshd[{i}]: Failed password for root"),
                );
                if i % 3 == 0 {
                    e.insert(
                        "source.ip",
                        Value::Ip(format!("10.0.0.{}", i % 250).parse().unwrap()),
                    );
                }
                e.insert("count", i);
                e.insert("ratio", i as f64 / 3.0);
                e.insert("ok", i % 2 == 0);
                e.insert("nothing", Value::Null);
                e.insert("tags", Value::List(vec!["a".into(), Value::Int(i)]));
                e
            })
            .collect()
    }

    #[test]
    fn decode_gives_the_framing_back() {
        let f = framing(&sample());
        let enc = encode(&f).expect("encodes");
        assert_eq!(decode(&enc, f.len()).as_deref(), Some(&f[..]));
        // Empty block.
        assert_eq!(decode(&encode(&[]).unwrap(), 0), Some(Vec::new()));
    }

    #[test]
    fn what_is_not_canonical_is_not_encoded() {
        let mut f = framing(&sample()[..2]);
        // A length prefix past the end.
        let mut cut = f.clone();
        cut.truncate(f.len() - 1);
        assert!(encode(&cut).is_none());
        // An unknown version byte.
        f[1] = 0x02;
        assert!(encode(&f).is_none());
        // An unknown value tag.
        assert!(encode(&[3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, b'a', 0x0a]).is_none());
    }

    #[test]
    fn hostile_bytes_never_panic_and_stay_bounded() {
        let f = framing(&sample()[..20]);
        let enc = encode(&f).unwrap();
        // Every truncation and every single-byte change decodes to the framing, to nothing, or
        // to something no longer than the bound.
        for cut in 0..enc.len() {
            assert!(decode(&enc[..cut], f.len()).is_none_or(|d| d.len() <= f.len()));
        }
        for i in 0..enc.len() {
            for b in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut bad = enc.clone();
                bad[i] = b;
                assert!(decode(&bad, f.len()).is_none_or(|d| d.len() <= f.len()));
            }
        }
        // Huge counts and deep nesting are refused, not allocated or recursed.
        assert!(decode(&[0xff, 0xff, 0xff, 0xff, 0x0f], 1 << 20).is_none());
        let mut deep: Vec<u8> = std::iter::repeat_n([0x08u8, 1], 10_000).flatten().collect();
        deep.push(0x00);
        let mut hostile = vec![1u8, 1, b'k', 1];
        write_varint(&mut hostile, 1 + 8 + 1 + deep.len() as u64);
        hostile.extend_from_slice(&[1, 0, 1, 0]);
        write_varint(&mut hostile, deep.len() as u64);
        hostile.extend_from_slice(&deep);
        assert!(decode(&hostile, 1 << 20).is_none());
    }
}
