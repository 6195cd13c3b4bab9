//! The behaviour state file (`DATA_DIR/detect/behaviour.bin`): the memory of every behaviour
//! rule, written by the detector beside its cursor and read at start-up. A cache (DESIGN
//! invariant 3): when it is missing, damaged, of another version or saved at another cursor,
//! the state is rebuilt from the ledger's history ([`super::Engine::learn`]). Pure: the caller
//! does the I/O.
//!
//! ## FORMAT, version 1
//!
//! All integers little-endian; `f64`/`f32` as IEEE 754 bits.
//!
//! ```text
//! magic      4 bytes  "VGBH"
//! version    u8       1
//! next_seq   u64      the detector's cursor the state is valid at (events below it counted)
//! rules      u32      number of rule states, then each:
//!   key_len  u32, key UTF-8 bytes   the rule's state key (id, kind and definition)
//!   kind     u8       1 = new_terms, 2 = outlier / peer_outlier
//!   hash key u64, u64 the rule's SipHash-2-4 key
//!   new_terms:  since_set u8, since i64, newest i64, evicted u64,
//!               n u64, n × (tuple hash u64, last seen i64)
//!   outlier:    evicted u64,
//!               n u64, n × entity: hash u64, group u64, window i64, value f64,
//!                    alerted u8, last_seen i64,
//!                    history u32 (≤ 1,024), history × f32,
//!                    distinct u32 (≤ 65,536), distinct × u64
//!               m u64, m × group: hash u64, last_seen i64,
//!                    samples u32 (≤ 4,096), samples × (member u64, window i64, value f32)
//! check      u64      SipHash-2-4 (key 0, 0) of every byte before it
//! ```
//!
//! Reading checks every count against the bytes left before allocating, so a damaged or
//! hostile file costs at most its own size in memory and gives an error, never a panic.

use std::collections::{HashSet, VecDeque};

use super::new_terms::NewTermsState;
use super::outlier::{Entity, Group, MAX_DISTINCT, MAX_PEER_SAMPLES, OutlierState};
use super::spec::MAX_WINDOWS;
use super::{Engine, HashedMap, State};

/// The file's first bytes.
pub const MAGIC: &[u8; 4] = b"VGBH";
/// The format version this code writes (and the only one it reads).
pub const VERSION: u8 = 1;

/// The state of `engine`, valid at cursor `next_seq`, as the file's bytes.
pub fn encode(engine: &Engine, next_seq: u64) -> Vec<u8> {
    let mut w = Vec::new();
    w.extend_from_slice(MAGIC);
    w.push(VERSION);
    put64(&mut w, next_seq);
    put32(&mut w, engine.states.len() as u32);
    for (key, state) in &engine.states {
        put32(&mut w, key.len() as u32);
        w.extend_from_slice(key.as_bytes());
        match state {
            State::NewTerms(s) => {
                w.push(1);
                put64(&mut w, s.key.0);
                put64(&mut w, s.key.1);
                w.push(u8::from(s.since.is_some()));
                puti(&mut w, s.since.unwrap_or(0));
                puti(&mut w, s.newest);
                put64(&mut w, s.evicted);
                put64(&mut w, s.seen.len() as u64);
                for (h, t) in &s.seen {
                    put64(&mut w, *h);
                    puti(&mut w, *t);
                }
            }
            State::Outlier(s) => {
                w.push(2);
                put64(&mut w, s.key.0);
                put64(&mut w, s.key.1);
                put64(&mut w, s.evicted);
                put64(&mut w, s.entities.len() as u64);
                for (h, e) in &s.entities {
                    put64(&mut w, *h);
                    put64(&mut w, e.group);
                    puti(&mut w, e.window);
                    put64(&mut w, e.value.to_bits());
                    w.push(u8::from(e.alerted));
                    puti(&mut w, e.last_seen);
                    put32(&mut w, e.history.len() as u32);
                    for x in &e.history {
                        put32(&mut w, x.to_bits());
                    }
                    put32(&mut w, e.distinct.len() as u32);
                    for d in &e.distinct {
                        put64(&mut w, *d);
                    }
                }
                put64(&mut w, s.groups.len() as u64);
                for (h, g) in &s.groups {
                    put64(&mut w, *h);
                    puti(&mut w, g.last_seen);
                    put32(&mut w, g.samples.len() as u32);
                    for (m, win, v) in &g.samples {
                        put64(&mut w, *m);
                        puti(&mut w, *win);
                        put32(&mut w, v.to_bits());
                    }
                }
            }
        }
    }
    let check = super::keyed_hash_bytes(&w);
    put64(&mut w, check);
    w
}

/// Reads a state file: the engine (to hand to [`Engine::adopt`]) and the cursor it is valid
/// at. Any damage is an error naming it.
pub fn decode(bytes: &[u8]) -> Result<(Engine, u64), String> {
    if bytes.len() < 4 + 1 + 8 + 4 + 8 {
        return Err("behaviour state: file too short".into());
    }
    if &bytes[..4] != MAGIC {
        return Err("behaviour state: not a behaviour state file (bad magic)".into());
    }
    if bytes[4] != VERSION {
        return Err(format!(
            "behaviour state: version {} is not one this Vigil reads ({VERSION})",
            bytes[4]
        ));
    }
    let (body, check) = bytes.split_at(bytes.len() - 8);
    let want = u64::from_le_bytes(check.try_into().map_err(|_| "short")?);
    if super::keyed_hash_bytes(body) != want {
        return Err("behaviour state: checksum mismatch (damaged file)".into());
    }
    let mut r = Reader { b: &body[5..] };
    let next_seq = r.u64()?;
    let rules = r.u32()? as usize;
    let mut states = Vec::new();
    for _ in 0..rules {
        let key_len = r.count(u64::from(r.peek32()?), 1)?;
        r.u32()?;
        let key = String::from_utf8(r.take(key_len)?.to_vec())
            .map_err(|_| "behaviour state: rule key is not UTF-8")?;
        let kind = r.u8()?;
        let hash_key = (r.u64()?, r.u64()?);
        let state = match kind {
            1 => {
                let since_set = r.u8()? == 1;
                let since = r.i64()?;
                let newest = r.i64()?;
                let evicted = r.u64()?;
                let n = r.count(r.peek64()?, 16)?;
                r.u64()?;
                let mut seen = HashedMap::default();
                seen.reserve(n);
                for _ in 0..n {
                    let h = r.u64()?;
                    seen.insert(h, r.i64()?);
                }
                State::NewTerms(NewTermsState {
                    key: hash_key,
                    since: since_set.then_some(since),
                    newest,
                    seen,
                    evicted,
                })
            }
            2 => {
                let evicted = r.u64()?;
                let n = r.count(r.peek64()?, 45)?;
                r.u64()?;
                let mut entities = HashedMap::default();
                entities.reserve(n);
                for _ in 0..n {
                    let h = r.u64()?;
                    let group = r.u64()?;
                    let window = r.i64()?;
                    let value = f64::from_bits(r.u64()?);
                    let alerted = r.u8()? == 1;
                    let last_seen = r.i64()?;
                    let hn = r.u32()? as usize;
                    if hn > MAX_WINDOWS {
                        return Err("behaviour state: an entity holds too many windows".into());
                    }
                    let hn = r.count(hn as u64, 4)?;
                    let mut history = VecDeque::with_capacity(hn);
                    for _ in 0..hn {
                        history.push_back(f32::from_bits(r.u32()?));
                    }
                    let dn = r.u32()? as usize;
                    if dn > MAX_DISTINCT {
                        return Err("behaviour state: an entity holds too many values".into());
                    }
                    let dn = r.count(dn as u64, 8)?;
                    let mut distinct = HashSet::with_capacity(dn);
                    for _ in 0..dn {
                        distinct.insert(r.u64()?);
                    }
                    entities.insert(
                        h,
                        Entity {
                            group,
                            window,
                            value,
                            distinct,
                            history,
                            alerted,
                            last_seen,
                            cached: None,
                        },
                    );
                }
                let m = r.count(r.peek64()?, 20)?;
                r.u64()?;
                let mut groups = HashedMap::default();
                for _ in 0..m {
                    let h = r.u64()?;
                    let last_seen = r.i64()?;
                    let sn = r.u32()? as usize;
                    if sn > MAX_PEER_SAMPLES {
                        return Err("behaviour state: a group holds too many samples".into());
                    }
                    let sn = r.count(sn as u64, 20)?;
                    let mut samples = VecDeque::with_capacity(sn);
                    for _ in 0..sn {
                        samples.push_back((r.u64()?, r.i64()?, f32::from_bits(r.u32()?)));
                    }
                    groups.insert(h, Group { samples, last_seen });
                }
                State::Outlier(OutlierState {
                    key: hash_key,
                    entities,
                    groups,
                    evicted,
                })
            }
            k => return Err(format!("behaviour state: unknown rule state kind {k}")),
        };
        states.push((key, state));
    }
    if !r.b.is_empty() {
        return Err("behaviour state: bytes after the last rule".into());
    }
    Ok((
        Engine {
            states,
            evicted_before: 0,
        },
        next_seq,
    ))
}

fn put64(w: &mut Vec<u8>, v: u64) {
    w.extend_from_slice(&v.to_le_bytes());
}
fn puti(w: &mut Vec<u8>, v: i64) {
    w.extend_from_slice(&v.to_le_bytes());
}
fn put32(w: &mut Vec<u8>, v: u32) {
    w.extend_from_slice(&v.to_le_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err("behaviour state: file ends early".into());
        }
        let (a, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| "short")?,
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| "short")?,
        ))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(self.u64()? as i64)
    }
    fn peek32(&self) -> Result<u32, String> {
        let b = self.b.get(..4).ok_or("behaviour state: file ends early")?;
        Ok(u32::from_le_bytes(b.try_into().map_err(|_| "short")?))
    }
    fn peek64(&self) -> Result<u64, String> {
        let b = self.b.get(..8).ok_or("behaviour state: file ends early")?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| "short")?))
    }
    /// `n` items of at least `size` bytes each must fit in what is left.
    fn count(&self, n: u64, size: u64) -> Result<usize, String> {
        if n.saturating_mul(size) > self.b.len() as u64 {
            return Err("behaviour state: a count is larger than the file".into());
        }
        Ok(n as usize)
    }
}
