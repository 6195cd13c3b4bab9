//! Comparisons with whole-number values answered from their columns (format 3).
//!
//! A scalar integer value at a [`column_only`] path gets no keyword or number term: the
//! `col_int` column already holds it, and the column answers every comparison exactly — a
//! number literal through a range of the column (tantivy's fast-field range, a bulk scan of the
//! column), a text literal through the reference engine's own comparison
//! ([`vigil_query::exec::compare_value`]) evaluated once per distinct value of the column.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

use tantivy::columnar::{Column, DynamicColumn};
use tantivy::query::doc_predicate_query::{
    ConstOrVariableSegmentPredicate, DocPredicate, DocPredicateQuery, SegmentDocPredicate,
};
use tantivy::query::{AllScorer, BooleanQuery, EmptyQuery, Occur, Query, RangeQuery};
use tantivy::schema::Field;
use tantivy::{DocId, SegmentReader, Term};
use vigil_event::Value;
use vigil_query::ast::{CmpOp, Literal, Pattern};
use vigil_query::exec::compare_value;

/// The name of the JSON field holding the integer columns.
pub const INT_COLUMNS: &str = "col_int";

/// Whether the scalar integers of `path` are held in the `col_int` column only (no keyword or
/// number term): paths of dot-separated names of letters, digits, `_`, `-` and `@`, which the
/// column's JSON path spells the same way. Integers elsewhere (list items, unusual paths) keep
/// their terms.
pub fn column_only(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 256
        && path.split('.').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'@'))
        })
}

/// The least whole number whose `f64` value satisfies `pred`, if any; `pred` must be monotone
/// over `f64` (false, then true), as `>= n` and `> n` are.
fn first_where(pred: impl Fn(f64) -> bool) -> Option<i64> {
    if !pred(i64::MAX as f64) {
        return None;
    }
    // Invariant: pred(lo) is false (lo = MIN - 1 stands for "below everything"), pred(hi) true.
    let (mut lo, mut hi) = (i128::from(i64::MIN) - 1, i128::from(i64::MAX));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if pred(mid as i64 as f64) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi as i64)
}

/// The whole numbers `i` for which the reference engine finds `i op n` (it compares `i as f64`
/// with `n`), as inclusive ranges. Exact at every magnitude: above 2^53 many integers share one
/// `f64`, and the bounds follow that.
pub fn int_ranges(n: f64, op: CmpOp) -> Vec<(i64, i64)> {
    if n.is_nan() {
        return Vec::new();
    }
    let ge = first_where(|x| x >= n);
    let gt = first_where(|x| x > n);
    // Every whole number below `first` (all of them when there is no `first`).
    let below = |first: Option<i64>| match first {
        None => Some((i64::MIN, i64::MAX)),
        Some(i64::MIN) => None,
        Some(f) => Some((i64::MIN, f - 1)),
    };
    let from = |first: Option<i64>| first.map(|f| (f, i64::MAX));
    let ranges = match op {
        CmpOp::Lt => vec![below(ge)],
        CmpOp::Le => vec![below(gt)],
        CmpOp::Gt => vec![from(gt)],
        CmpOp::Ge => vec![from(ge)],
        CmpOp::Eq => vec![match (ge, gt) {
            (Some(a), Some(b)) if a < b => Some((a, b - 1)),
            (Some(a), None) => Some((a, i64::MAX)),
            _ => None,
        }],
        CmpOp::Ne => vec![below(ge), from(gt)],
    };
    ranges.into_iter().flatten().collect()
}

/// The documents whose integer at `path` (column `field`) lies in one of `ranges`.
pub fn ranges_query(field: Field, path: &str, ranges: &[(i64, i64)]) -> Box<dyn Query> {
    let term = |v: i64| {
        let mut t = Term::from_field_json_path(field, path, true);
        t.append_type_and_fast_value(v);
        t
    };
    let mut parts: Vec<(Occur, Box<dyn Query>)> = ranges
        .iter()
        .map(|&(lo, hi)| {
            let q: Box<dyn Query> = Box::new(RangeQuery::new(
                Bound::Included(term(lo)),
                Bound::Included(term(hi)),
            ));
            (Occur::Should, q)
        })
        .collect();
    match parts.len() {
        0 => Box::new(EmptyQuery),
        1 => parts.pop().expect("one").1,
        _ => Box::new(BooleanQuery::new(parts)),
    }
}

/// The documents whose integer at `path` compares with a text literal as the reference engine
/// says (`status="403"`, `status=40*`, `pid<"5"`).
pub fn text_query(field: Field, path: &str, op: CmpOp, p: &Pattern) -> Box<dyn Query> {
    let lower = p.text.to_lowercase();
    // The decimal form of `k`, and only it, equals `lower`: a whole number's text.
    let canonical = lower.parse::<i64>().ok().filter(|k| k.to_string() == lower);
    match (op, p.wildcard, canonical) {
        (CmpOp::Eq, false, Some(k)) => ranges_query(field, path, &[(k, k)]),
        (CmpOp::Eq, false, None) => Box::new(EmptyQuery),
        (CmpOp::Ne, false, Some(k)) => {
            let mut ranges = Vec::new();
            if k > i64::MIN {
                ranges.push((i64::MIN, k - 1));
            }
            if k < i64::MAX {
                ranges.push((k + 1, i64::MAX));
            }
            ranges_query(field, path, &ranges)
        }
        (CmpOp::Ne, false, None) => ranges_query(field, path, &[(i64::MIN, i64::MAX)]),
        _ => {
            let literal = Literal::Text(p.clone());
            Box::new(DocPredicateQuery::from(IntPredicate {
                column: format!("{INT_COLUMNS}.{path}"),
                test: Arc::new(move |i| compare_value(&Value::Int(i), op, &literal)),
            }))
        }
    }
}

/// A test of the integers of one column, evaluated once per distinct value in a segment.
#[derive(Clone)]
struct IntPredicate {
    /// The column's name (`col_int.PATH`).
    column: String,
    test: Arc<dyn Fn(i64) -> bool + Send + Sync>,
}

impl std::fmt::Debug for IntPredicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntPredicate")
            .field("column", &self.column)
            .finish_non_exhaustive()
    }
}

/// One segment's [`IntPredicate`]: the column as stored (signed, or unsigned when every value
/// of the segment is at least 0) and the answers so far.
struct SegmentIntPredicate {
    signed: Vec<Column<i64>>,
    unsigned: Vec<Column<u64>>,
    test: Arc<dyn Fn(i64) -> bool + Send + Sync>,
    known: HashMap<i64, bool>,
}

impl SegmentDocPredicate for SegmentIntPredicate {
    fn eval(&mut self, doc: DocId) -> bool {
        let value = self.signed.iter().find_map(|c| c.first(doc)).or_else(|| {
            self.unsigned
                .iter()
                .find_map(|c| c.first(doc))
                .and_then(|v| i64::try_from(v).ok())
        });
        let Some(v) = value else { return false };
        if let Some(&answer) = self.known.get(&v) {
            return answer;
        }
        let answer = (self.test)(v);
        // Bounded: a column with very many distinct values is tested again rather than held.
        if self.known.len() < 1 << 16 {
            self.known.insert(v, answer);
        }
        answer
    }
}

impl DocPredicate for IntPredicate {
    type SegmentDocPredicate = SegmentIntPredicate;

    fn doc_predicate(
        &self,
        segment: &SegmentReader,
    ) -> tantivy::Result<ConstOrVariableSegmentPredicate<SegmentIntPredicate>> {
        let (mut signed, mut unsigned) = (Vec::new(), Vec::new());
        for handle in segment.fast_fields().dynamic_column_handles(&self.column)? {
            match handle.open()? {
                DynamicColumn::I64(c) => signed.push(c),
                DynamicColumn::U64(c) => unsigned.push(c),
                _ => {}
            }
        }
        if signed.is_empty() && unsigned.is_empty() {
            return Ok(ConstOrVariableSegmentPredicate::Const(false));
        }
        Ok(ConstOrVariableSegmentPredicate::Variable {
            predicate: SegmentIntPredicate {
                signed,
                unsigned,
                test: self.test.clone(),
                known: HashMap::new(),
            },
            necessary_condition: Box::new(AllScorer::new(segment.max_doc())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cmp(i: i64, op: CmpOp, n: f64) -> bool {
        let x = i as f64;
        match x.partial_cmp(&n) {
            None => false,
            Some(o) => match op {
                CmpOp::Eq => o.is_eq(),
                CmpOp::Ne => o.is_ne(),
                CmpOp::Lt => o.is_lt(),
                CmpOp::Le => o.is_le(),
                CmpOp::Gt => o.is_gt(),
                CmpOp::Ge => o.is_ge(),
            },
        }
    }

    fn inside(ranges: &[(i64, i64)], i: i64) -> bool {
        ranges.iter().any(|&(lo, hi)| lo <= i && i <= hi)
    }

    const OPS: [CmpOp; 6] = [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ];

    #[test]
    fn ranges_agree_with_the_float_comparison_at_the_edges() {
        let big = 1i64 << 53;
        let ints = [
            i64::MIN,
            i64::MIN + 1,
            -big - 3,
            -1,
            0,
            1,
            402,
            403,
            404,
            big - 1,
            big,
            big + 1,
            big + 2,
            i64::MAX - 1024,
            i64::MAX - 1,
            i64::MAX,
        ];
        let ns = [
            f64::NEG_INFINITY,
            -9.3e18,
            -(big as f64),
            -0.5,
            -0.0,
            0.0,
            0.5,
            403.0,
            403.5,
            big as f64,
            (big + 2) as f64,
            9.223372036854775e18,
            i64::MAX as f64,
            1e19,
            f64::INFINITY,
            f64::NAN,
        ];
        for op in OPS {
            for n in ns {
                let r = int_ranges(n, op);
                for i in ints {
                    assert_eq!(inside(&r, i), cmp(i, op, n), "{i} {op:?} {n}: {r:?}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn ranges_agree_with_the_float_comparison(i in any::<i64>(), n in any::<f64>(), k in 0usize..6, near in any::<bool>()) {
            // Half the time, compare with a number close to the integer.
            let n = if near { i as f64 + (n % 4.0).trunc() } else { n };
            let op = OPS[k];
            prop_assert_eq!(inside(&int_ranges(n, op), i), cmp(i, op, n));
        }
    }

    #[test]
    fn column_only_paths_are_plain_dotted_names() {
        assert!(column_only("http.response.status_code"));
        assert!(column_only("process.pid"));
        assert!(column_only("@x.a-b_c"));
        for odd in ["", ".", "a.", ".a", "a..b", "a b", "a\\.b", "a\u{1}b", "é"] {
            assert!(!column_only(odd), "{odd:?}");
        }
    }
}
