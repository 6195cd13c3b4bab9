//! An event's fields: a `Vec` of (name, value) kept sorted by name.
//!
//! An event has a few dozen fields, written once by a parser and read a few times. A sorted
//! `Vec` does that with one or two allocations per event instead of a `BTreeMap`'s node per
//! few fields, finds a name by binary search, appends without a search when names arrive in
//! order, and iterates in the same order a `BTreeMap<String, _>` would (bytes of the name),
//! which is the order of the canonical encoding.
//!
//! An event with more than [`LARGE`] fields — only input can make one, `{"k1":…,"k2":…}` or
//! `k1=… k2=…` by the thousand — moves into a `BTreeMap`: inserting names in an adversarial
//! order into a sorted `Vec` shifts it every time (quadratic), the map stays `O(log n)`.

use std::collections::BTreeMap;
use std::fmt;

use crate::{FieldName, Value};

/// Past this many fields an event's fields live in a `BTreeMap` (see the module comment).
const LARGE: usize = 256;

/// Names strictly ascending by bytes, one value per name.
#[derive(Clone)]
pub(crate) enum Fields {
    /// Up to about [`LARGE`] fields: every parsed line.
    Small(SortedVec),
    /// More: a map, so that no insertion order makes building the event quadratic.
    Large(BTreeMap<FieldName, Value>),
}

impl Default for Fields {
    fn default() -> Fields {
        Fields::Small(SortedVec::default())
    }
}

/// Equal contents, whichever way each side holds them.
impl PartialEq for Fields {
    fn eq(&self, other: &Fields) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Fields {
    /// Fields from pairs already strictly ascending by name (the canonical decoder checks).
    pub(crate) fn from_sorted(pairs: Vec<(FieldName, Value)>) -> Fields {
        if pairs.len() > LARGE {
            Fields::Large(pairs.into_iter().collect())
        } else {
            Fields::Small(SortedVec::from_sorted(pairs))
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Fields::Small(v) => v.get(key),
            Fields::Large(m) => m.get(key),
        }
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            Fields::Small(v) => v.get_mut(key),
            Fields::Large(m) => m.get_mut(key),
        }
    }

    /// The value under a name already made: a known name is found by its place in the table,
    /// without hashing its text first.
    pub(crate) fn get_by_name(&self, key: &FieldName) -> Option<&Value> {
        match self {
            Fields::Small(v) => v.position_of(key).ok().map(|i| &v.0[i].1),
            Fields::Large(m) => m.get(key),
        }
    }

    /// [`Fields::get_by_name`], to change the value.
    pub(crate) fn get_mut_by_name(&mut self, key: &FieldName) -> Option<&mut Value> {
        match self {
            Fields::Small(v) => v.position_of(key).ok().map(|i| &mut v.0[i].1),
            Fields::Large(m) => m.get_mut(key),
        }
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub(crate) fn insert(&mut self, key: FieldName, value: Value) -> Option<Value> {
        match self {
            Fields::Small(v) if v.0.len() < LARGE => v.insert(key, value),
            Fields::Small(v) => {
                let mut map: BTreeMap<FieldName, Value> =
                    std::mem::take(&mut v.0).into_iter().collect();
                let old = map.insert(key, value);
                *self = Fields::Large(map);
                old
            }
            Fields::Large(m) => m.insert(key, value),
        }
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        match self {
            Fields::Small(v) => v.remove(key),
            Fields::Large(m) => m.remove(key),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Fields::Small(v) => v.0.len(),
            Fields::Large(m) => m.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        if let Fields::Small(v) = self {
            v.0.reserve(additional.min(LARGE));
        }
    }

    pub(crate) fn iter(&self) -> Iter<'_> {
        match self {
            Fields::Small(v) => Iter::Small(v.0.iter()),
            Fields::Large(m) => Iter::Large(m.iter()),
        }
    }
}

/// The fields in name order, whichever way they are held.
pub(crate) enum Iter<'a> {
    Small(std::slice::Iter<'a, (FieldName, Value)>),
    Large(std::collections::btree_map::Iter<'a, FieldName, Value>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a FieldName, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(i) => i.next().map(|(k, v)| (k, v)),
            Iter::Large(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Small(i) => i.size_hint(),
            Iter::Large(i) => i.size_hint(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a FieldName, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Printed as a map, exactly as the `BTreeMap<String, Value>` it replaced printed.
impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (k.as_str(), v)))
            .finish()
    }
}

/// Names strictly ascending by bytes in a `Vec`.
#[derive(Clone, Default)]
pub(crate) struct SortedVec(Vec<(FieldName, Value)>);

/// Room made by the first insert: a parsed syslog auth line has 24–25 fields, so one
/// allocation holds nearly every parsed event (1.5 KiB, less than the `BTreeMap` nodes the
/// same fields took).
const FIRST_CAPACITY: usize = 32;

impl SortedVec {
    fn from_sorted(pairs: Vec<(FieldName, Value)>) -> SortedVec {
        debug_assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0));
        SortedVec(pairs)
    }

    /// Where `key` is, or would go. A known name is searched by its place in the table of
    /// known names (a `u16` compare against every other known name); any other by its text.
    fn position(&self, key: &str) -> Result<usize, usize> {
        match crate::field_name::rank(key) {
            Some(rank) => self.position_known(rank, key),
            None => self.0.binary_search_by(|(name, _)| name.as_str().cmp(key)),
        }
    }

    fn position_known(&self, rank: u16, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(name, _)| match name.rank() {
            Some(other) => other.cmp(&rank),
            None => name.as_str().cmp(key),
        })
    }

    fn position_of(&self, key: &FieldName) -> Result<usize, usize> {
        match key.rank() {
            Some(rank) => self.position_known(rank, key.as_str()),
            None => self
                .0
                .binary_search_by(|(name, _)| name.as_str().cmp(key.as_str())),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.position(key).ok().map(|i| &mut self.0[i].1)
    }

    fn insert(&mut self, key: FieldName, value: Value) -> Option<Value> {
        match self.0.last() {
            None => {
                self.0.reserve(FIRST_CAPACITY);
                self.0.push((key, value));
                return None;
            }
            Some((last, _)) if *last < key => {
                self.0.push((key, value));
                return None;
            }
            Some(_) => {}
        }
        match self.position_of(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(key).ok().map(|i| self.0.remove(i).1)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(String, i64),
        Remove(String),
    }

    /// Names from a small alphabet so that duplicates, prefixes (`a`, `a.b`) and removals of
    /// present names are common; some are interned names, some are not.
    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ab.]{0,4}",
            Just("source.ip".to_owned()),
            Just("source.port".to_owned()),
            Just("message".to_owned()),
            Just("tags".to_owned()),
            "[a-zé.]{1,12}",
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (name(), any::<i64>()).prop_map(|(k, v)| Op::Insert(k, v)),
            1 => name().prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Any sequence of inserts and removals leaves the same contents, in the same order, as
        /// a `BTreeMap<String, _>` given the same sequence; every operation returns what the
        /// map's would.
        #[test]
        fn behaves_as_a_btreemap(ops in proptest::collection::vec(op(), 0..80)) {
            let mut fields = Fields::default();
            let mut model: BTreeMap<String, Value> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        let ours = fields.insert(FieldName::from(k.as_str()), Value::Int(v));
                        prop_assert_eq!(ours, model.insert(k, Value::Int(v)));
                    }
                    Op::Remove(k) => prop_assert_eq!(fields.remove(&k), model.remove(&k)),
                }
                prop_assert_eq!(fields.len(), model.len());
            }
            let ours: Vec<(&str, &Value)> = fields.iter().map(|(k, v)| (k.as_str(), v)).collect();
            let theirs: Vec<(&str, &Value)> = model.iter().map(|(k, v)| (k.as_str(), v)).collect();
            prop_assert_eq!(ours, theirs);
            for (k, v) in &model {
                prop_assert_eq!(fields.get(k), Some(v));
                prop_assert!(fields.contains_key(k));
            }
            prop_assert_eq!(format!("{fields:?}"), format!("{model:?}"));
        }

        /// The order names are inserted in does not change the result (nor, so, the canonical
        /// bytes): inserting a shuffled list of distinct names equals inserting it sorted.
        #[test]
        fn insertion_order_does_not_matter(
            names in proptest::collection::btree_set(name(), 0..40),
            seed in any::<u64>(),
        ) {
            let sorted: Vec<String> = names.into_iter().collect();
            let mut shuffled = sorted.clone();
            // A Fisher-Yates shuffle driven by the seed.
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let build = |names: &[String]| {
                let mut f = Fields::default();
                for k in names {
                    // The value depends on the name only, not on the position.
                    f.insert(FieldName::from(k.as_str()), Value::from(k.len() as i64));
                }
                f
            };
            prop_assert_eq!(build(&shuffled), build(&sorted));
        }
    }

    #[test]
    fn a_duplicate_name_replaces_the_value_in_place() {
        let mut f = Fields::default();
        assert_eq!(f.insert("b".into(), Value::Int(1)), None);
        assert_eq!(f.insert("a".into(), Value::Int(2)), None);
        assert_eq!(f.insert("b".into(), Value::Int(3)), Some(Value::Int(1)));
        // An owned and a borrowed spelling of the same name are one name.
        assert_eq!(
            f.insert(FieldName::from("message".to_owned()), Value::Int(4)),
            None
        );
        assert_eq!(
            f.insert(FieldName::known("message"), Value::Int(5)),
            Some(Value::Int(4))
        );
        let names: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["a", "b", "message"]);
        assert_eq!(f.remove("b"), Some(Value::Int(3)));
        assert_eq!(f.remove("b"), None);
        assert_eq!(f.get("message"), Some(&Value::Int(5)));
    }

    /// Input with thousands of names, in the order that made a sorted `Vec` shift on every
    /// insert (descending): past [`LARGE`] the fields move into a map, and the contents,
    /// order, look-ups and removals stay those of a `BTreeMap`; an event that crossed over
    /// equals one built in order.
    #[test]
    fn many_fields_in_any_order_stay_a_map() {
        let names: Vec<String> = (0..5_000).map(|i| format!("k.{i:05}")).collect();
        let mut backwards = Fields::default();
        let mut model = BTreeMap::new();
        for (i, k) in names.iter().enumerate().rev() {
            backwards.insert(FieldName::from(k.as_str()), Value::Int(i as i64));
            model.insert(k.clone(), Value::Int(i as i64));
        }
        assert!(matches!(backwards, Fields::Large(_)));
        let ours: Vec<(&str, &Value)> = backwards.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let theirs: Vec<(&str, &Value)> = model.iter().map(|(k, v)| (k.as_str(), v)).collect();
        assert_eq!(ours, theirs);
        assert_eq!(backwards.iter().len(), 5_000);
        assert_eq!(backwards.get("k.01234"), Some(&Value::Int(1234)));
        assert_eq!(backwards.remove("k.01234"), Some(Value::Int(1234)));
        assert_eq!(backwards.insert("k.01234".into(), Value::Int(1234)), None);
        assert_eq!(format!("{backwards:?}"), format!("{model:?}"));
        // The same contents held as a sorted Vec (decoded) and as a map are equal.
        let pairs: Vec<(FieldName, Value)> = names[..LARGE]
            .iter()
            .enumerate()
            .map(|(i, k)| (FieldName::from(k.as_str()), Value::Int(i as i64)))
            .collect();
        let small = Fields::from_sorted(pairs);
        assert!(matches!(small, Fields::Small(_)));
        let mut large = Fields::Large(BTreeMap::new());
        for (i, k) in names[..LARGE].iter().enumerate() {
            large.insert(k.as_str().into(), Value::Int(i as i64));
        }
        assert_eq!(small, large);
        assert_eq!(large, small);
    }
}
