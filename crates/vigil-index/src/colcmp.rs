//! Comparisons with scalar text, address, float and boolean values answered from their
//! columns (format 4), and "the event has this field" for such values.
//!
//! A scalar value at a [`column_only`](crate::intcol::column_only) path that fits in a column
//! (a string of at most [`MAX_KEYWORD_LEN`](crate::document::MAX_KEYWORD_LEN) bytes, an
//! address, a finite float, a boolean; integers are [`crate::intcol`]'s) gets no keyword,
//! number or address term, no `has` term and no `odd` marker: its column holds it, and the
//! column answers every comparison exactly. [`ColumnCompare`] evaluates the reference
//! engine's own comparison ([`vigil_query::exec::compare_value`]) once per distinct value of a
//! segment's column (the text and address columns keep a sorted dictionary of their values),
//! then collects the documents whose value matched: a bulk scan of the column's ordinals for
//! each run of matching dictionary entries when there are few, else one pass over the
//! documents. [`column_exists`] is the `has` of such values.
//!
//! The rule is the same for every field and every data set — no list of fields, no
//! cardinality threshold — so nothing about a query's answer depends on how values were
//! spread over segments. What it costs: a comparison that a posting list answered now reads
//! the field's column (one pass over the dictionary, then over the ordinals). Memory is one
//! bit per document and one per dictionary entry of the segment, whatever the query.

use std::sync::Arc;

use tantivy::columnar::{DynamicColumn, StrColumn};
use tantivy::query::{
    BitSetDocSet, ConstScorer, EmptyScorer, EnableScoring, ExistsQuery, Explanation, Query, Scorer,
    Weight,
};
use tantivy::{BitSet, DocId, Score, SegmentReader, TantivyError};
use vigil_event::Value;
use vigil_query::ast::{CmpOp, Literal};
use vigil_query::exec::compare_value;

/// Column fields whose values [`ColumnCompare`] reads (integers are [`crate::intcol`]'s).
pub const COMPARED_COLUMNS: [&str; 4] = ["col_str", "col_ip", "col_float", "col_bool"];

/// Every column field (a value lives in exactly one of them).
pub const ALL_COLUMNS: [&str; 5] = ["col_int", "col_float", "col_str", "col_ip", "col_bool"];

/// Whether a float at a plain path is held in its column only: finite (the column keeps every
/// bit, `-0` included; NaN and the infinities keep their terms, as before).
pub fn float_in_column(x: f64) -> bool {
    x.is_finite()
}

/// Runs of matching ordinals up to which each run is a bulk scan of the ordinals column;
/// beyond, one pass over the documents tests each ordinal against a bitset.
const MAX_RUNS: usize = 8;

/// The documents whose value at `path` in a text, address, float or boolean column compares
/// with `literal` by `op` as the reference engine says.
#[derive(Clone)]
pub struct ColumnCompare {
    path: String,
    test: Arc<dyn Fn(&Value) -> bool + Send + Sync>,
}

impl std::fmt::Debug for ColumnCompare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnCompare")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ColumnCompare {
    /// `path op literal`, answered from the columns of `path`.
    pub fn new(path: &str, op: CmpOp, literal: Literal) -> ColumnCompare {
        ColumnCompare {
            path: path.to_owned(),
            test: Arc::new(move |v| compare_value(v, op, &literal)),
        }
    }

    /// The matching documents of one segment.
    fn matching(&self, segment: &SegmentReader) -> tantivy::Result<BitSet> {
        let max_doc = segment.max_doc();
        let mut docs = BitSet::with_max_value(max_doc);
        for field in COMPARED_COLUMNS {
            let name = format!("{field}.{}", self.path);
            for handle in segment.fast_fields().dynamic_column_handles(&name)? {
                match handle.open()? {
                    DynamicColumn::Str(c) => {
                        self.text_column(&c, field == "col_ip", max_doc, &mut docs)?
                    }
                    DynamicColumn::F64(c) => {
                        let mut known: Option<(u64, bool)> = None;
                        for doc in 0..max_doc {
                            // Values not held in the column only have terms: not ours.
                            let Some(x) = c.first(doc).filter(|x| float_in_column(*x)) else {
                                continue;
                            };
                            let answer = match known {
                                Some((bits, a)) if bits == x.to_bits() => a,
                                _ => {
                                    let a = (self.test)(&Value::float(x));
                                    known = Some((x.to_bits(), a));
                                    a
                                }
                            };
                            if answer {
                                docs.insert(doc);
                            }
                        }
                    }
                    DynamicColumn::Bool(c) => {
                        // (Not a value-range scan: `false..=false` over a segment whose booleans
                        // were all `true` selected every document in `tests/value_columns.rs`.)
                        let matching = [false, true].map(|b| (self.test)(&Value::Bool(b)));
                        if matching == [false, false] {
                            continue;
                        }
                        for doc in 0..max_doc {
                            if let Some(b) = c.first(doc)
                                && matching[usize::from(b)]
                            {
                                docs.insert(doc);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(docs)
    }

    /// Adds the documents of a text (or address) column whose value matches.
    fn text_column(
        &self,
        column: &StrColumn,
        ip: bool,
        max_doc: DocId,
        docs: &mut BitSet,
    ) -> tantivy::Result<()> {
        // The test once per distinct value, in ordinal order: runs of matching ordinals.
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut stream = column.dictionary().stream()?;
        while stream.advance() {
            let Ok(text) = std::str::from_utf8(stream.key()) else {
                continue;
            };
            let value = if ip {
                text.parse()
                    .map(Value::Ip)
                    .unwrap_or_else(|_| Value::Str(text.to_owned()))
            } else {
                Value::Str(text.to_owned())
            };
            if (self.test)(&value) {
                let ord = stream.term_ord();
                match runs.last_mut() {
                    Some((_, hi)) if *hi + 1 == ord => *hi = ord,
                    _ => runs.push((ord, ord)),
                }
            }
        }
        let ords = column.ords();
        if runs.len() <= MAX_RUNS {
            for (lo, hi) in runs {
                // (The column converts every entry of the vector it is given: a fresh one.)
                let mut found = Vec::new();
                ords.get_docids_for_value_range(lo..=hi, 0..max_doc, &mut found);
                for &doc in &found {
                    docs.insert(doc);
                }
            }
        } else {
            let n_terms = u32::try_from(column.num_terms()).unwrap_or(u32::MAX);
            let mut wanted = BitSet::with_max_value(n_terms.max(1));
            for (lo, hi) in runs {
                for ord in lo..=hi {
                    wanted.insert(ord as u32);
                }
            }
            for doc in 0..max_doc {
                if let Some(ord) = ords.first(doc)
                    && wanted.contains(ord as u32)
                {
                    docs.insert(doc);
                }
            }
        }
        Ok(())
    }
}

impl Query for ColumnCompare {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for ColumnCompare {
    fn scorer(&self, segment: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let docs = self.matching(segment)?;
        if docs.len() == 0 {
            return Ok(Box::new(EmptyScorer));
        }
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(docs), boost)))
    }

    fn explain(&self, segment: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(segment, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )));
        }
        Ok(Explanation::new("ColumnCompare", 1.0))
    }
}

/// The documents with a value for `path` in any column.
pub fn column_exists(path: &str) -> Vec<Box<dyn Query>> {
    ALL_COLUMNS
        .iter()
        .map(|field| Box::new(ExistsQuery::new(format!("{field}.{path}"), false)) as Box<dyn Query>)
        .collect()
}
