//! The "columns" transforms of an events block's payload (layouts in FORMAT.md): the block's
//! canonical events are rearranged so that the values of one field name sit together — every
//! `event.original` of the block in a row, every `source.ip`, … — before zstd, which then
//! finds the repeats between events that the event-by-event order keeps far apart
//! (compression 2, [`encode`], segment version 3). Compression 3 ([`encode_references`],
//! segment version 4) also stores each string or integer that is spelled out in its event's
//! `event.original` as an (offset, length) reference into that line: the parsed fields of a
//! log line cost a few bytes each instead of a second copy of the line's words. Both are a
//! container detail only: the decoders give back the block's framing byte for byte, so the
//! canonical bytes, and the leaves that hash them, do not change.
//!
//! The encoders return `None` for anything they do not fully understand (the block is then
//! stored with plain zstd), and the writer checks that decoding its output gives the input
//! back before choosing it. The decoders read untrusted bytes: every length, count and
//! reference is checked against what remains or what it points into, the output is bounded by
//! the header's `raw_len` (also while a value is being rebuilt), and nesting is bounded as in
//! the canonical encoding.

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
    /// A varint in its shortest form only: what the encoders rewrite must have one spelling,
    /// or decoding (which writes the shortest form) would not give the input back.
    fn minimal_varint(&mut self) -> Option<u64> {
        let (v, used) = read_varint(&self.buf[self.pos..])?;
        if used != varint_len_u64(v) {
            return None;
        }
        self.pos += used;
        Some(v)
    }
    /// [`Cursor::len`] in its shortest form only.
    fn minimal_len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.minimal_varint()?).ok()?;
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
    /// Skips one canonical value that is not a list or map and returns its bytes.
    fn skip_scalar(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        if matches!(self.buf.get(self.pos)?, 0x08 | 0x09) {
            return None;
        }
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

/// Rearranges a block's framing (`(len ‖ canonical event)*`) by field name: the columns form
/// (compression 2). `None` if an event is not canonical version 1 as this module reads it.
///
/// Layout: `n_keys`, each key (`len ‖ bytes`, in order of first use); `n_events`; per event:
/// its length, version byte, time as the zigzag difference from the previous event's
/// (big-endian i64 read as signed), field count, and each field's key number; then per key,
/// the length of its column and the column (that key's values, tag and content, in event
/// order).
pub fn encode(framing: &[u8]) -> Option<Vec<u8>> {
    encode_form(framing, None)
}

/// The columns form with references (compression 3): as [`encode`], plus the number of the
/// reference key after the keys, and every string or integer value of an event that is spelled
/// out in that event's `event.original` stored as a reference to those bytes
/// ([`REF_STR`], [`REF_INT`]) instead of the value. `None` as for [`encode`].
pub fn encode_references(framing: &[u8]) -> Option<Vec<u8>> {
    encode_form(framing, Some(RefPolicy::default()))
}

/// Which values [`encode_references_with`] turns into references (for measuring; the writer
/// uses the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefPolicy {
    /// Shortest string stored as a reference.
    pub min_str: usize,
    /// Whether integers spelled out in decimal become references.
    pub ints: bool,
}

impl Default for RefPolicy {
    fn default() -> Self {
        RefPolicy {
            min_str: DEFAULT_MIN_REF,
            ints: true,
        }
    }
}

/// [`encode_references`] under another policy; [`decode_references`] reads every policy.
pub fn encode_references_with(framing: &[u8], policy: RefPolicy) -> Option<Vec<u8>> {
    encode_form(framing, Some(policy))
}

/// The field whose string value other values of the same event refer to.
pub const REF_KEY: &[u8] = b"event.original";

/// Container tag (never a canonical tag): a string value, `offset:varint ‖ len:varint` into
/// the event's reference text; it stands for `0x05 ‖ len ‖ those bytes`.
pub const REF_STR: u8 = 0x0a;
/// Container tag: an integer, `offset:varint ‖ len:varint` into the reference text, whose
/// bytes are the integer in decimal as Rust prints it; it stands for `0x03 ‖ i64 BE`.
pub const REF_INT: u8 = 0x0b;

/// Shortest string the writer stores as a reference.
const DEFAULT_MIN_REF: usize = 4;

/// Longest decimal integer (`-9223372036854775808`).
const MAX_INT_TEXT: usize = 20;

fn encode_form(framing: &[u8], refs: Option<RefPolicy>) -> Option<Vec<u8>> {
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut key_ids: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
    let mut columns: Vec<Vec<u8>> = Vec::new();
    let mut structure = Vec::with_capacity(framing.len() / 8);
    let mut fields: Vec<(usize, &[u8])> = Vec::new();
    let mut prev_ids: Vec<usize> = Vec::new();
    let mut n_events = 0u64;
    let mut prev_ts = 0i64;
    let mut outer = Cursor::new(framing);
    while outer.remaining() > 0 {
        let len = outer.minimal_len()?;
        let event = outer.take(len)?;
        let mut c = Cursor::new(event);
        let version = c.byte()?;
        if version != 0x01 {
            return None;
        }
        let ts = i64::from_be_bytes(c.take(8)?.try_into().ok()?);
        let n_fields = c.minimal_varint()?;
        write_varint(&mut structure, len as u64);
        structure.push(version);
        write_varint(&mut structure, zigzag(ts.wrapping_sub(prev_ts)));
        prev_ts = ts;
        write_varint(&mut structure, n_fields);
        fields.clear();
        let mut original: Option<&[u8]> = None;
        for _ in 0..n_fields {
            let k = c.minimal_len()?;
            let key = c.take(k)?;
            let value = c.value()?;
            // Events of one source usually have the previous event's keys in the same places.
            let predicted = prev_ids.get(fields.len()).copied();
            let id = match predicted.filter(|&id| keys[id] == key) {
                Some(id) => id,
                None => match key_ids.get(key) {
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
                },
            };
            write_varint(&mut structure, id as u64);
            if key == REF_KEY && original.is_none() {
                original = Some(string_content(value).unwrap_or(&[]));
            }
            fields.push((id, value));
        }
        if c.remaining() != 0 {
            return None;
        }
        prev_ids.clear();
        prev_ids.extend(fields.iter().map(|&(id, _)| id));
        for &(id, value) in &fields {
            match (refs, original) {
                (Some(policy), Some(text)) if keys[id] != REF_KEY && !text.is_empty() => {
                    let mut v = Cursor::new(value);
                    put_value(&mut v, text, policy, &mut columns[id], 0)?;
                }
                _ => columns[id].extend_from_slice(value),
            }
        }
        n_events += 1;
    }
    let mut out = Vec::with_capacity(framing.len() + 64);
    write_varint(&mut out, keys.len() as u64);
    for k in &keys {
        write_varint(&mut out, k.len() as u64);
        out.extend_from_slice(k);
    }
    if refs.is_some() {
        // 0: no reference key in the block; k + 1: key number k.
        let ref_key = keys.iter().position(|k| *k == REF_KEY).map_or(0, |i| i + 1);
        write_varint(&mut out, ref_key as u64);
    }
    write_varint(&mut out, n_events);
    out.extend_from_slice(&structure);
    for col in &columns {
        write_varint(&mut out, col.len() as u64);
        out.extend_from_slice(col);
    }
    Some(out)
}

/// The content of a canonical string value (`0x05 ‖ len ‖ bytes`), if `value` is one.
fn string_content(value: &[u8]) -> Option<&[u8]> {
    let mut c = Cursor::new(value);
    if c.byte()? != 0x05 {
        return None;
    }
    let n = c.len()?;
    c.take(n)
}

/// Copies one canonical value from `c` to `out`, turning strings and integers found in `text`
/// into references; lists and maps are walked (nesting bounded as in the canonical encoding).
fn put_value(
    c: &mut Cursor,
    text: &[u8],
    policy: RefPolicy,
    out: &mut Vec<u8>,
    depth: usize,
) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    let start = c.pos;
    match c.byte()? {
        0x03 if policy.ints => {
            let v = i64::from_be_bytes(c.take(8)?.try_into().ok()?);
            let mut buf = [0u8; MAX_INT_TEXT];
            let digits = decimal(v, &mut buf);
            match find(text, digits) {
                Some(at) => put_ref(out, REF_INT, at, digits.len()),
                None => out.extend_from_slice(&c.buf[start..c.pos]),
            }
        }
        0x05 => {
            let n = c.minimal_len()?;
            let s = c.take(n)?;
            // Never longer than the string: the offset's varint is no longer than its bytes.
            let found = (n >= policy.min_str)
                .then(|| find(text, s))
                .flatten()
                .filter(|&at| varint_len(at) <= n);
            match found {
                Some(at) => put_ref(out, REF_STR, at, n),
                None => out.extend_from_slice(&c.buf[start..c.pos]),
            }
        }
        0x08 => {
            let n = c.len()?;
            out.extend_from_slice(&c.buf[start..c.pos]);
            for _ in 0..n {
                put_value(c, text, policy, out, depth + 1)?;
            }
        }
        0x09 => {
            let n = c.len()?;
            out.extend_from_slice(&c.buf[start..c.pos]);
            for _ in 0..n {
                let from = c.pos;
                let k = c.len()?;
                c.take(k)?;
                out.extend_from_slice(&c.buf[from..c.pos]);
                put_value(c, text, policy, out, depth + 1)?;
            }
        }
        _ => {
            c.pos = start;
            out.extend_from_slice(c.value()?);
        }
    }
    Some(())
}

/// `v` in decimal as Rust prints it, written into `buf` (no allocation per integer).
fn decimal(v: i64, buf: &mut [u8; MAX_INT_TEXT]) -> &[u8] {
    let mut at = buf.len();
    let mut n = v.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

/// The first place `needle` occurs in `text`, as `memchr::memmem::find` answers (which the
/// writer used per value): candidates are found by the needle's first byte and compared, so a
/// short log line costs no searcher set-up per value. Comparing is bounded by a budget of a few
/// times the text's length; past it the rest of the text is searched by `memmem`, whose time
/// is linear, so hostile text (one byte repeated) cannot make it quadratic.
fn find(text: &[u8], needle: &[u8]) -> Option<usize> {
    let Some((&first, rest)) = needle.split_first() else {
        return Some(0);
    };
    let last = text.len().checked_sub(needle.len())?;
    let mut budget = 4 * text.len() + 256;
    for at in memchr::memchr_iter(first, &text[..=last]) {
        if &text[at + 1..at + needle.len()] == rest {
            return Some(at);
        }
        match budget.checked_sub(needle.len()) {
            Some(left) => budget = left,
            None => return memchr::memmem::find(&text[at + 1..], needle).map(|p| p + at + 1),
        }
    }
    None
}

fn varint_len(n: usize) -> usize {
    varint_len_u64(n as u64)
}

fn varint_len_u64(n: u64) -> usize {
    (u64::BITS - (n | 1).leading_zeros()).div_ceil(7) as usize
}

fn put_ref(out: &mut Vec<u8>, tag: u8, at: usize, len: usize) {
    out.push(tag);
    write_varint(out, at as u64);
    write_varint(out, len as u64);
}

/// Gives back the framing [`encode`] rearranged; `None` if `bytes` is not such a
/// rearrangement or the framing would be longer than `max_len`.
pub fn decode(bytes: &[u8], max_len: usize) -> Option<Vec<u8>> {
    decode_form(bytes, max_len, false)
}

/// Gives back the framing [`encode_references`] rearranged; `None` if `bytes` is not such a
/// rearrangement (a reference outside its event's text included) or the framing would be
/// longer than `max_len`.
pub fn decode_references(bytes: &[u8], max_len: usize) -> Option<Vec<u8>> {
    decode_form(bytes, max_len, true)
}

fn decode_form(bytes: &[u8], max_len: usize, refs: bool) -> Option<Vec<u8>> {
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
    // The reference key's number, if the block has one.
    let ref_key = if refs {
        match usize::try_from(c.varint()?).ok()? {
            0 => None,
            k if k <= n_keys => Some(k - 1),
            _ => return None,
        }
    } else {
        None
    };
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
    // The reference text of each event: the content of its first value under the reference
    // key when that is a string (references are never stored in that key's own column).
    let mut texts: Vec<&[u8]> = Vec::new();
    if let Some(r) = ref_key {
        let mut col = Cursor::new(columns[r].buf);
        texts.reserve(heads.len());
        for &(_, _, _, first, n_fields) in &heads {
            let mut text: Option<&[u8]> = None;
            for &id in &ids[first..first + n_fields] {
                if id as usize == r {
                    let v = col.value()?;
                    text = text.or(Some(string_content(v).unwrap_or(&[])));
                }
            }
            texts.push(text.unwrap_or(&[]));
        }
    }
    let mut out = Vec::with_capacity(max_len);
    for (i, &(len, version, ts, first, n_fields)) in heads.iter().enumerate() {
        write_varint(&mut out, len as u64);
        let start = out.len();
        out.push(version);
        out.extend_from_slice(&ts.to_be_bytes());
        write_varint(&mut out, n_fields as u64);
        let text = texts.get(i).copied().unwrap_or(&[]);
        for &id in &ids[first..first + n_fields] {
            let id = id as usize;
            write_varint(&mut out, keys[id].len() as u64);
            out.extend_from_slice(keys[id]);
            if ref_key.is_some_and(|r| r != id) {
                get_value(&mut columns[id], text, &mut out, max_len, 0)?;
            } else {
                out.extend_from_slice(columns[id].value()?);
            }
            if out.len() > max_len {
                return None;
            }
        }
        if out.len() - start != len || out.len() > max_len {
            return None;
        }
    }
    if columns.iter().any(|col| col.remaining() != 0) {
        return None;
    }
    Some(out)
}

/// Writes one value of a column with references to `out` as canonical bytes, resolving
/// references against `text`; `None` past `max_len` output bytes, for a reference outside
/// `text`, or for an integer reference whose bytes are not that integer's decimal form.
fn get_value(
    c: &mut Cursor,
    text: &[u8],
    out: &mut Vec<u8>,
    max_len: usize,
    depth: usize,
) -> Option<()> {
    if depth > MAX_DEPTH || out.len() > max_len {
        return None;
    }
    let start = c.pos;
    match c.byte()? {
        tag @ (REF_STR | REF_INT) => {
            let at = usize::try_from(c.varint()?).ok()?;
            let n = usize::try_from(c.varint()?).ok()?;
            let bytes = text.get(at..at.checked_add(n)?)?;
            if tag == REF_STR {
                if out.len() + 1 + varint_len(n) + n > max_len {
                    return None;
                }
                out.push(0x05);
                write_varint(out, n as u64);
                out.extend_from_slice(bytes);
            } else {
                let v: i64 = std::str::from_utf8(bytes).ok()?.parse().ok()?;
                // Only the form the writer emits, so one value has one spelling.
                if n > MAX_INT_TEXT || v.to_string().as_bytes() != bytes {
                    return None;
                }
                out.push(0x03);
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        0x08 => {
            let n = c.len()?;
            out.extend_from_slice(&c.buf[start..c.pos]);
            for _ in 0..n {
                get_value(c, text, out, max_len, depth + 1)?;
            }
        }
        0x09 => {
            let n = c.len()?;
            out.extend_from_slice(&c.buf[start..c.pos]);
            for _ in 0..n {
                let from = c.pos;
                let k = c.len()?;
                c.take(k)?;
                out.extend_from_slice(&c.buf[from..c.pos]);
                get_value(c, text, out, max_len, depth + 1)?;
            }
        }
        _ => {
            c.pos = start;
            let v = c.skip_scalar()?;
            out.extend_from_slice(v);
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::{Event, Timestamp, Value};

    /// The writer's search answers what `memmem::find` answered (so blocks are byte for byte
    /// what they were): ordinary text, needles at the ends, absent ones, the empty needle, and
    /// hostile text where the comparison budget runs out and `memmem` takes over mid-way.
    #[test]
    fn find_answers_as_memmem() {
        let line = b"Oct 11 22:14:15 web-1 sshd[42]: Failed password for root from 198.51.100.4 port 22 ssh2";
        let mut cases: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for needle in [
            &b"Oct"[..],
            b"ssh2",
            b"22",
            b"root",
            b"198.51.100.4",
            b"nope",
            b"",
            b"2 ssh2x",
            b"s",
        ] {
            cases.push((line.to_vec(), needle.to_vec()));
        }
        let mut hostile = vec![b'a'; 5000];
        hostile.extend_from_slice(b"ab");
        for n in [1, 3, 64, 1000, 4999, 5001, 5002, 6000] {
            let mut needle = vec![b'a'; n.min(5001)];
            needle.push(b'b');
            needle.truncate(n);
            cases.push((hostile.clone(), needle));
        }
        cases.push((hostile.clone(), b"aab".to_vec()));
        cases.push((b"ab".to_vec(), b"abc".to_vec()));
        for (text, needle) in &cases {
            assert_eq!(
                find(text, needle),
                memchr::memmem::find(text, needle),
                "{needle:?}"
            );
        }
        // Pseudo-random text over a small alphabet: many near misses.
        let mut x: u32 = 7;
        let mut next = || {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            b"ab1 "[(x >> 28) as usize % 4]
        };
        for _ in 0..200 {
            let text: Vec<u8> = (0..300).map(|_| next()).collect();
            let len = 1 + usize::from(next()) % 9;
            let needle: Vec<u8> = (0..len).map(|_| next()).collect();
            assert_eq!(find(&text, &needle), memchr::memmem::find(&text, &needle));
        }
    }

    #[test]
    fn decimal_prints_as_rust_does() {
        let mut buf = [0u8; MAX_INT_TEXT];
        for v in [
            0,
            1,
            -1,
            9,
            10,
            -10,
            22,
            4242,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ] {
            assert_eq!(decimal(v, &mut buf), v.to_string().as_bytes());
        }
    }

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

    #[test]
    fn a_length_spelled_with_extra_varint_bytes_is_not_encoded() {
        // Found by the ledger_columns fuzz target: an event length written as `0x94 0x00`
        // (20 in two bytes) was rewritten in one byte, so decoding did not give the input back.
        let payload: &[u8] = &[
            148, 0, 1, 0, 37, 0, 148, 0, 1, 0, 148, 1, 0, 3, 0, 13, 255, 0, 255, 255, 0, 0,
        ];
        assert!(encode(payload).is_none());
        assert!(encode_references(payload).is_none());
        // The same event with its length in one byte round-trips.
        let mut short = vec![20u8];
        short.extend_from_slice(&payload[2..]);
        let enc = encode(&short).expect("encodes");
        assert_eq!(decode(&enc, short.len()).as_deref(), Some(&short[..]));
        // A string value whose length has an extra byte is not rewritten as a reference.
        let mut e = Event::new(Timestamp::from_secs(1));
        e.insert("event.original", "user=alice");
        e.insert("user.name", "alice");
        let mut f = framing(&[e]);
        let at = f.len() - 7; // `0x05 ‖ 5 ‖ alice` at the end
        assert_eq!(f[at..at + 2], [0x05, 5]);
        f.splice(at + 1..at + 2, [0x85, 0x00]);
        f[0] += 1;
        assert!(encode_references(&f).is_none());
        // Without references the value is copied as it is, and comes back as it was.
        let enc = encode(&f).expect("encodes");
        assert_eq!(decode(&enc, f.len()).as_deref(), Some(&f[..]));
    }
}
