//! Field names without an allocation per name.
//!
//! Every event carries twenty-odd dotted names (`source.ip`, `log.syslog.facility.name`, …), and
//! almost all of them are the same few hundred names that Vigil's parsers write. A
//! [`FieldName`] is either one of those, borrowed from the static table in
//! [`crate::interned`] (no allocation to make, none to free, a pointer copy to clone), or a name
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
/// names is borrowed from it, any other name is owned.
#[derive(Clone)]
pub struct FieldName(Cow<'static, str>);

impl FieldName {
    /// A name from a `'static` string, without a look-up (for names built into code).
    pub const fn from_static(name: &'static str) -> FieldName {
        FieldName(Cow::Borrowed(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name is borrowed from static text rather than owned (it cost no allocation).
    pub fn is_static(&self) -> bool {
        matches!(self.0, Cow::Borrowed(_))
    }

    /// The name as an owned `String`.
    pub fn into_string(self) -> String {
        self.0.into_owned()
    }
}

/// The entry of Vigil's table of known names equal to `name`, if there is one.
pub fn interned(name: &str) -> Option<&'static str> {
    let table = table();
    let mask = table.len() - 1;
    let mut slot = hash(name.as_bytes()) as usize & mask;
    loop {
        let index = table[slot];
        if index == EMPTY {
            return None;
        }
        let candidate = NAMES[usize::from(index)];
        if candidate == name {
            return Some(candidate);
        }
        slot = (slot + 1) & mask;
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
            table[slot] = u16::try_from(index).expect("fewer than 65535 interned names");
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
        match interned(name) {
            Some(name) => FieldName(Cow::Borrowed(name)),
            None => FieldName(Cow::Owned(name.to_owned())),
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
        match interned(&name) {
            Some(name) => FieldName(Cow::Borrowed(name)),
            None => FieldName(Cow::Owned(name)),
        }
    }
}

impl From<Box<str>> for FieldName {
    fn from(name: Box<str>) -> FieldName {
        FieldName::from(String::from(name))
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
        &self.0
    }
}

impl AsRef<str> for FieldName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for FieldName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq for FieldName {
    fn eq(&self, other: &FieldName) -> bool {
        self.as_str() == other.as_str()
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
    fn cmp(&self, other: &FieldName) -> Ordering {
        self.as_str().cmp(other.as_str())
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
            assert!(FieldName::from(*name).is_static(), "{name}");
            assert!(FieldName::from(name.to_string()).is_static(), "{name}");
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
            assert!(!owned.is_static(), "{name}");
            assert_eq!(owned.as_str(), name);
        }
        // The same text, borrowed or owned, is the same name.
        let borrowed = FieldName::from("source.ip");
        let owned = FieldName(Cow::Owned("source.ip".to_owned()));
        assert!(borrowed.is_static() && !owned.is_static());
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
