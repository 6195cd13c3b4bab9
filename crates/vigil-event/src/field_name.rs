//! Field names without an allocation per name.
//!
//! Every event carries twenty-odd dotted names (`source.ip`, `log.syslog.facility.name`, …), and
//! almost all of them are the same few hundred names that Vigil's parsers write. A
//! [`FieldName`] is either one of those, kept as its place in the static table in
//! `interned.rs` (no allocation to make, none to free, a `u16` to copy or compare), or a name
//! from input, owned. Which one it is never changes what the name *is*: equality, ordering and
//! hashing are those of the text, so the canonical bytes are the same either way.

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::OnceLock;

use crate::interned::NAMES;

/// A dotted field name: compared, ordered and hashed as its text.
///
/// Made from a `&str` or a `String` (`"source.ip".into()`): a name in Vigil's table of known
/// names is kept as its place in the table (no allocation, and two known names compare by
/// place, which is their byte order, without looking at the text); any other name is owned.
#[derive(Clone)]
pub struct FieldName(Repr);

#[derive(Clone)]
enum Repr {
    /// Index into [`NAMES`].
    Known(u16),
    Owned(Box<str>),
}

impl FieldName {
    /// A name from Vigil's table of known names, found when the program is compiled if used in
    /// a `const` (`const USER: FieldName = FieldName::known("user.name");`).
    ///
    /// # Panics
    /// If `name` is not in the table (at compile time, in a `const`).
    pub const fn known(name: &str) -> FieldName {
        match rank_const(name.as_bytes()) {
            Some(rank) => FieldName(Repr::Known(rank)),
            None => panic!("not in vigil_event's table of known field names (interned.rs)"),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Known(rank) => NAMES[usize::from(*rank)],
            Repr::Owned(name) => name,
        }
    }

    /// Whether the name is one of Vigil's known names (it cost no allocation).
    pub fn is_known(&self) -> bool {
        matches!(self.0, Repr::Known(_))
    }

    /// The name's place in [`known_names`] when it is a known name: a key for a per-name
    /// memo that needs no hashing (`known_names()[i] == self.as_str()`).
    pub fn index(&self) -> Option<usize> {
        self.rank().map(usize::from)
    }

    /// The name's place in the table of known names.
    pub(crate) fn rank(&self) -> Option<u16> {
        match self.0 {
            Repr::Known(rank) => Some(rank),
            Repr::Owned(_) => None,
        }
    }

    /// The name as an owned `String`.
    pub fn into_string(self) -> String {
        match self.0 {
            Repr::Known(rank) => NAMES[usize::from(rank)].to_owned(),
            Repr::Owned(name) => name.into_string(),
        }
    }
}

/// Vigil's table of known field names, sorted by bytes ([`FieldName::index`] is a place in it).
pub fn known_names() -> &'static [&'static str] {
    NAMES
}

/// The entry of Vigil's table of known names equal to `name`, if there is one.
pub fn interned(name: &str) -> Option<&'static str> {
    rank(name).map(|r| NAMES[usize::from(r)])
}

/// The place of `name` in [`NAMES`], by hash.
pub(crate) fn rank(name: &str) -> Option<u16> {
    let table = table();
    let mask = table.len() - 1;
    let mut slot = hash(name.as_bytes()) as usize & mask;
    loop {
        let index = table[slot];
        if index == EMPTY {
            return None;
        }
        if NAMES[usize::from(index)] == name {
            return Some(index);
        }
        slot = (slot + 1) & mask;
    }
}

/// The place of `name` in [`NAMES`], by binary search, in a `const` context.
const fn rank_const(name: &[u8]) -> Option<u16> {
    let (mut low, mut high) = (0, NAMES.len());
    while low < high {
        let mid = (low + high) / 2;
        match compare_bytes(NAMES[mid].as_bytes(), name) {
            Ordering::Less => low = mid + 1,
            Ordering::Greater => high = mid,
            Ordering::Equal => return Some(mid as u16),
        }
    }
    None
}

const fn compare_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] < b[i] {
            return Ordering::Less;
        }
        if a[i] > b[i] {
            return Ordering::Greater;
        }
        i += 1;
    }
    if a.len() < b.len() {
        Ordering::Less
    } else if a.len() > b.len() {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

const EMPTY: u16 = u16::MAX;

/// Open addressing over indices into [`NAMES`], at most a quarter full so probes stay short;
/// built once. The table is fixed, so no input can lengthen a probe.
fn table() -> &'static [u16] {
    static TABLE: OnceLock<Box<[u16]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let size = (NAMES.len() * 4).next_power_of_two();
        let mut table = vec![EMPTY; size].into_boxed_slice();
        for (index, name) in NAMES.iter().enumerate() {
            let mut slot = hash(name.as_bytes()) as usize & (size - 1);
            while table[slot] != EMPTY {
                slot = (slot + 1) & (size - 1);
            }
            table[slot] = u16::try_from(index).expect("fewer than 65535 known names");
        }
        table
    })
}

/// A fast multiplicative hash, eight bytes at a time (the names are short and the table is not
/// exposed to chosen keys: an unknown name ends at the first empty slot).
fn hash(bytes: &[u8]) -> u32 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ word).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(last)).wrapping_mul(K);
    }
    (h >> 32) as u32
}

impl From<&str> for FieldName {
    fn from(name: &str) -> FieldName {
        match rank(name) {
            Some(rank) => FieldName(Repr::Known(rank)),
            None => FieldName(Repr::Owned(name.into())),
        }
    }
}

impl From<&mut str> for FieldName {
    fn from(name: &mut str) -> FieldName {
        FieldName::from(&*name)
    }
}

impl From<&String> for FieldName {
    fn from(name: &String) -> FieldName {
        FieldName::from(name.as_str())
    }
}

impl From<String> for FieldName {
    fn from(name: String) -> FieldName {
        match rank(&name) {
            Some(rank) => FieldName(Repr::Known(rank)),
            None => FieldName(Repr::Owned(name.into_boxed_str())),
        }
    }
}

impl From<Box<str>> for FieldName {
    fn from(name: Box<str>) -> FieldName {
        match rank(&name) {
            Some(rank) => FieldName(Repr::Known(rank)),
            None => FieldName(Repr::Owned(name)),
        }
    }
}

impl From<Cow<'_, str>> for FieldName {
    fn from(name: Cow<'_, str>) -> FieldName {
        match name {
            Cow::Borrowed(name) => FieldName::from(name),
            Cow::Owned(name) => FieldName::from(name),
        }
    }
}

impl From<&FieldName> for FieldName {
    fn from(name: &FieldName) -> FieldName {
        name.clone()
    }
}

impl From<FieldName> for String {
    fn from(name: FieldName) -> String {
        name.into_string()
    }
}

impl Deref for FieldName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for FieldName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for FieldName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for FieldName {
    fn eq(&self, other: &FieldName) -> bool {
        match (self.rank(), other.rank()) {
            (Some(a), Some(b)) => a == b,
            _ => self.as_str() == other.as_str(),
        }
    }
}

impl Eq for FieldName {}

impl PartialEq<str> for FieldName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for FieldName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for FieldName {
    fn partial_cmp(&self, other: &FieldName) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for FieldName {
    /// Byte order of the text. Two known names compare by their places in the table, which
    /// is sorted by bytes, so the answer is the same.
    fn cmp(&self, other: &FieldName) -> Ordering {
        match (self.rank(), other.rank()) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.as_str().cmp(other.as_str()),
        }
    }
}

impl Hash for FieldName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_name_is_found_and_borrowed() {
        for name in NAMES {
            assert_eq!(interned(name), Some(*name));
            assert!(FieldName::from(*name).is_known(), "{name}");
            assert!(FieldName::from(name.to_string()).is_known(), "{name}");
            assert_eq!(FieldName::known(name).as_str(), *name);
        }
    }

    /// Comparing by place in the table gives the byte order of the text, for every pair of
    /// known names and between known and unknown names.
    #[test]
    fn order_by_place_is_order_by_text() {
        let others = [
            "",
            "a",
            "source.ipa",
            "zzz",
            "event",
            "event.",
            "log.syslog.z",
            "~",
        ];
        let all: Vec<FieldName> = NAMES
            .iter()
            .copied()
            .chain(others)
            .map(FieldName::from)
            .collect();
        for a in &all {
            for b in &all {
                assert_eq!(a.cmp(b), a.as_str().cmp(b.as_str()), "{a} vs {b}");
                assert_eq!(a == b, a.as_str() == b.as_str(), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn the_table_is_sorted_and_has_no_duplicates() {
        for pair in NAMES.windows(2) {
            assert!(pair[0] < pair[1], "{:?} before {:?}", pair[0], pair[1]);
        }
    }

    #[test]
    fn unknown_names_are_owned_and_equal_to_their_text() {
        for name in [
            "",
            "x",
            "source.zzz",
            "no.such.name",
            "Source.ip",
            "ünïcode.naмe",
        ] {
            let owned = FieldName::from(name);
            assert!(!owned.is_known(), "{name}");
            assert_eq!(owned.as_str(), name);
        }
        // The same text, borrowed or owned, is the same name.
        let borrowed = FieldName::from("source.ip");
        let owned = FieldName(Repr::Owned("source.ip".into()));
        assert!(borrowed.is_known() && !owned.is_known());
        assert_eq!(borrowed, owned);
        assert_eq!(borrowed.cmp(&owned), Ordering::Equal);
        let hash = |n: &FieldName| {
            use std::collections::hash_map::DefaultHasher;
            let mut h = DefaultHasher::new();
            n.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&borrowed), hash(&owned));
    }
}
