//! A mergeable quantile sketch for percentiles over more values than a query keeps exactly.
//!
//! `perc95(x)` is exact (nearest rank over every value) up to [`crate::exec::MAX_SAMPLES`]
//! values in a group. Past that — on one store, or when shards' values are merged — the values
//! go into this sketch instead of being dropped: the DDSketch of Masson, Rim and Lee (VLDB 2019).
//! Each value falls in a logarithmic bucket `⌈log_γ |x|⌉` with γ = (1 + α)/(1 − α), one set of
//! buckets per sign and a count of zeros; a quantile is the bucket holding its rank, answered as
//! the bucket's midpoint, which is within a relative error α of the exact nearest-rank answer.
//! Two sketches merge by adding bucket counts, so the merge of shards' sketches is the sketch of
//! all their values: the same on every node, whatever the order.
//!
//! Bucket indices are bounded by the range of `f64` (|index| ≤ [`MAX_INDEX`]), so a sketch holds at
//! most a few ten thousand buckets however many values it has seen.

use std::collections::BTreeMap;

use vigil_event::Value;

/// The relative accuracy α of an estimated percentile.
pub const RELATIVE_ERROR: f64 = 0.01;

/// The largest bucket index in magnitude (subnormals reach about −37,300; `f64::MAX` about
/// 35,500 with α = 1 %).
pub(crate) const MAX_INDEX: i32 = 40_000;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ERROR) / (1.0 - RELATIVE_ERROR)
}

/// A DDSketch of finite numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Quantiles {
    positive: BTreeMap<i32, u64>,
    negative: BTreeMap<i32, u64>,
    zeros: u64,
    count: u64,
}

/// The bucket of a positive magnitude.
fn index_of(magnitude: f64) -> i32 {
    ((magnitude.ln() / gamma().ln()).ceil() as i32).clamp(-MAX_INDEX, MAX_INDEX)
}

/// The value a bucket answers: within α of every value in it.
fn value_of(index: i32) -> f64 {
    let g = gamma();
    2.0 * g.powi(index) / (g + 1.0)
}

impl Quantiles {
    /// An empty sketch.
    pub(crate) fn new() -> Quantiles {
        Quantiles::default()
    }

    /// How many values it holds.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// How many buckets it holds (what it costs in memory, about 16 bytes each).
    pub(crate) fn buckets(&self) -> usize {
        self.positive.len() + self.negative.len() + 1
    }

    /// Whether adding `x` would only count it in a bucket the sketch already has.
    pub(crate) fn has_bucket_for(&self, x: f64) -> bool {
        if x == 0.0 || x.abs() < f64::MIN_POSITIVE || !x.is_finite() {
            true
        } else if x > 0.0 {
            self.positive.contains_key(&index_of(x))
        } else {
            self.negative.contains_key(&index_of(-x))
        }
    }

    /// Adds a value; NaN and infinities are not numbers a percentile can answer and are left out.
    pub(crate) fn insert(&mut self, x: f64) {
        self.insert_n(x, 1);
    }

    fn insert_n(&mut self, x: f64, n: u64) {
        if !x.is_finite() || n == 0 {
            return;
        }
        if x == 0.0 || x.abs() < f64::MIN_POSITIVE {
            self.zeros = self.zeros.saturating_add(n);
        } else if x > 0.0 {
            let c = self.positive.entry(index_of(x)).or_default();
            *c = c.saturating_add(n);
        } else {
            let c = self.negative.entry(index_of(-x)).or_default();
            *c = c.saturating_add(n);
        }
        self.count = self.count.saturating_add(n);
    }

    /// Adds every value of another sketch.
    pub(crate) fn merge(&mut self, other: &Quantiles) {
        for (i, n) in &other.positive {
            let c = self.positive.entry(*i).or_default();
            *c = c.saturating_add(*n);
        }
        for (i, n) in &other.negative {
            let c = self.negative.entry(*i).or_default();
            *c = c.saturating_add(*n);
        }
        self.zeros = self.zeros.saturating_add(other.zeros);
        self.count = self.count.saturating_add(other.count);
    }

    /// The `p`th percentile (0–100) by nearest rank, within [`RELATIVE_ERROR`] of the value;
    /// `None` when empty.
    pub(crate) fn percentile(&self, p: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((p / 100.0) * self.count as f64).ceil().max(1.0) as u64;
        let rank = rank.min(self.count);
        let mut seen = 0u64;
        // Ascending order: the most negative first.
        for (i, n) in self.negative.iter().rev() {
            seen = seen.saturating_add(*n);
            if seen >= rank {
                return Some(-value_of(*i));
            }
        }
        seen = seen.saturating_add(self.zeros);
        if seen >= rank {
            return Some(0.0);
        }
        for (i, n) in &self.positive {
            seen = seen.saturating_add(*n);
            if seen >= rank {
                return Some(value_of(*i));
            }
        }
        // Counts saturated: the largest bucket.
        self.positive
            .keys()
            .next_back()
            .map(|i| value_of(*i))
            .or(Some(0.0))
    }

    /// The sketch as a query value (what a shard sends): `{"ddsketch": [zeros, "+", i, n, …,
    /// "-", i, n, …]}`.
    pub(crate) fn to_value(&self) -> Value {
        let mut items = vec![Value::Int(self.zeros.min(i64::MAX as u64) as i64)];
        for (sign, buckets) in [("+", &self.positive), ("-", &self.negative)] {
            items.push(Value::Str(sign.into()));
            for (i, n) in buckets {
                items.push(Value::Int(i64::from(*i)));
                items.push(Value::Int((*n).min(i64::MAX as u64) as i64));
            }
        }
        Value::Map(BTreeMap::from([(
            "ddsketch".to_string(),
            Value::List(items),
        )]))
    }

    /// A sketch from [`Quantiles::to_value`]; `None` if the value is not one (an index out of
    /// range, a count below one, a bucket twice, anything else in the list).
    pub(crate) fn from_value(value: &Value) -> Option<Quantiles> {
        let Value::Map(m) = value else { return None };
        let Value::List(items) = m.get("ddsketch")? else {
            return None;
        };
        let mut sketch = Quantiles::new();
        let (first, rest) = items.split_first()?;
        sketch.zeros = u64::try_from(first.as_i64()?).ok()?;
        sketch.count = sketch.zeros;
        let mut sign: Option<bool> = None;
        let mut rest = rest.iter();
        while let Some(item) = rest.next() {
            match item {
                Value::Str(s) if s == "+" && sign.is_none() => sign = Some(true),
                Value::Str(s) if s == "-" && sign == Some(true) => sign = Some(false),
                Value::Int(i) => {
                    let i = i32::try_from(*i).ok().filter(|i| i.abs() <= MAX_INDEX)?;
                    let n = u64::try_from(rest.next()?.as_i64()?)
                        .ok()
                        .filter(|n| *n > 0)?;
                    let buckets = match sign? {
                        true => &mut sketch.positive,
                        false => &mut sketch.negative,
                    };
                    if buckets.insert(i, n).is_some() {
                        return None;
                    }
                    sketch.count = sketch.count.saturating_add(n);
                }
                _ => return None,
            }
        }
        (sign == Some(false)).then_some(sketch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(values: &mut [f64], p: f64) -> f64 {
        values.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * values.len() as f64).ceil().max(1.0) as usize;
        values[rank.min(values.len()) - 1]
    }

    fn within(estimate: f64, truth: f64) -> bool {
        (estimate - truth).abs() <= RELATIVE_ERROR * truth.abs() + 1e-12
    }

    #[test]
    fn percentiles_are_within_the_stated_relative_error_across_signs_and_scales() {
        // A deterministic spread over many orders of magnitude, both signs and zeros.
        let mut values: Vec<f64> = (0..50_000u64)
            .map(|i| {
                let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
                let x = (h as f64 / (1u64 << 53) as f64) * 12.0 - 4.0;
                let v = 10f64.powf(x);
                match i % 7 {
                    0 => 0.0,
                    1 | 2 => -v,
                    _ => v,
                }
            })
            .collect();
        let mut sketch = Quantiles::new();
        for x in &values {
            sketch.insert(*x);
        }
        assert_eq!(sketch.count(), values.len() as u64);
        for p in [
            0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 100.0,
        ] {
            let truth = exact(&mut values, p);
            let estimate = sketch.percentile(p).unwrap();
            assert!(within(estimate, truth), "p{p}: {estimate} vs {truth}");
        }
    }

    #[test]
    fn merged_sketches_are_the_sketch_of_all_values_in_any_order() {
        let values: Vec<f64> = (1..=30_000).map(|i| f64::from(i) * 0.37).collect();
        let mut whole = Quantiles::new();
        values.iter().for_each(|x| whole.insert(*x));
        let mut parts = [Quantiles::new(), Quantiles::new(), Quantiles::new()];
        for (i, x) in values.iter().enumerate() {
            parts[i % 3].insert(*x);
        }
        let mut forward = Quantiles::new();
        parts.iter().for_each(|p| forward.merge(p));
        let mut backward = Quantiles::new();
        parts.iter().rev().for_each(|p| backward.merge(p));
        assert_eq!(forward, whole);
        assert_eq!(backward, whole);
    }

    #[test]
    fn a_sketch_travels_as_a_value_and_hostile_values_are_refused() {
        let mut sketch = Quantiles::new();
        for x in [
            -3.5,
            0.0,
            0.0,
            1.0,
            2.0,
            1e300,
            5e-324,
            f64::NAN,
            f64::INFINITY,
        ] {
            sketch.insert(x);
        }
        assert_eq!(sketch.count(), 7);
        assert_eq!(Quantiles::from_value(&sketch.to_value()), Some(sketch));
        let list = |items: Vec<Value>| {
            Value::Map(BTreeMap::from([("ddsketch".into(), Value::List(items))]))
        };
        let plus = || Value::Str("+".into());
        let minus = || Value::Str("-".into());
        for hostile in [
            list(vec![]),
            list(vec![Value::Int(-1), plus(), minus()]),
            list(vec![
                Value::Int(0),
                plus(),
                Value::Int(50_000),
                Value::Int(1),
                minus(),
            ]),
            list(vec![
                Value::Int(0),
                plus(),
                Value::Int(3),
                Value::Int(0),
                minus(),
            ]),
            list(vec![Value::Int(0), plus(), Value::Int(3), minus()]),
            list(vec![
                Value::Int(0),
                plus(),
                Value::Int(3),
                Value::Int(1),
                Value::Int(3),
                Value::Int(1),
                minus(),
            ]),
            list(vec![Value::Int(0), minus(), plus()]),
            list(vec![Value::Int(0), plus()]),
            Value::Str("ddsketch".into()),
        ] {
            assert_eq!(Quantiles::from_value(&hostile), None, "{hostile:?}");
        }
    }
}
