//! An event's fields: a `Vec` of (name, value) kept sorted by name.
//!
//! An event has a few dozen fields, written once by a parser and read a few times. A sorted
//! `Vec` does that with one or two allocations per event instead of a `BTreeMap`'s node per
//! few fields, finds a name by binary search, appends without a search when names arrive in
//! order, and iterates in the same order a `BTreeMap<String, _>` would (bytes of the name),
//! which is the order of the canonical encoding.

use std::fmt;

use crate::{FieldName, Value};

/// Names strictly ascending by bytes, one value per name.
#[derive(Clone, Default, PartialEq)]
pub(crate) struct Fields(Vec<(FieldName, Value)>);

/// Room made by the first insert: a parsed syslog auth line has 24–25 fields, so one
/// allocation holds nearly every parsed event (1.5 KiB, less than the `BTreeMap` nodes the
/// same fields took).
const FIRST_CAPACITY: usize = 32;

impl Fields {
    /// Fields from pairs already strictly ascending by name (the canonical decoder checks).
    pub(crate) fn from_sorted(pairs: Vec<(FieldName, Value)>) -> Fields {
        debug_assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0));
        Fields(pairs)
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

    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.position(key).ok().map(|i| &mut self.0[i].1)
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub(crate) fn insert(&mut self, key: FieldName, value: Value) -> Option<Value> {
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

    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(key).ok().map(|i| self.0.remove(i).1)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        self.0.reserve(additional);
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = (&FieldName, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a FieldName, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (FieldName, Value)>,
        fn(&'a (FieldName, Value)) -> (&'a FieldName, &'a Value),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

/// Printed as a map, exactly as the `BTreeMap<String, Value>` it replaced printed.
impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k.as_str(), v)))
            .finish()
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
}
