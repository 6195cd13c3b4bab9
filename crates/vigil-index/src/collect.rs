//! Collectors over the index's fast fields: counting groups (the pushed-down `stats count by`,
//! `stats dc(…)`, `timechart count`, `top`), the sequence numbers of matches, and the newest
//! matches.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, DynamicColumn, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};
use vigil_event::Value;
use vigil_query::exec::alias;
use vigil_query::{Counted, Grouping};

/// Column field names in the order a value is looked up.
const COLUMN_FIELDS: [&str; 5] = ["col_int", "col_float", "col_str", "col_ip", "col_bool"];

/// One typed column of one path in one segment.
#[derive(Clone)]
enum TypedColumn {
    Int(Column<i64>),
    UInt(Column<u64>),
    Float(Column<f64>),
    Str(StrColumn),
    Ip(StrColumn),
    Bool(Column<bool>),
}

/// A value as read from a column, before strings are looked up.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    Int(i64),
    Float(u64),
    /// Column index (into the field's columns) and term ordinal.
    Str(u8, u64),
    Bool(bool),
    /// No value (a [`GroupCounter::values`] field the document does not have).
    Absent,
}

/// The columns a grouping field may be read from, in precedence order: its own name, then its
/// alias.
fn columns_for(segment: &SegmentReader, name: &str) -> tantivy::Result<Vec<TypedColumn>> {
    let mut out = Vec::new();
    let mut paths = vec![name];
    if alias(name) != name {
        paths.push(alias(name));
    }
    for path in paths {
        for field in COLUMN_FIELDS {
            let handles = segment
                .fast_fields()
                .dynamic_column_handles(&format!("{field}.{path}"))?;
            for h in handles {
                let typed = match (field, h.open()?) {
                    ("col_str", DynamicColumn::Str(c)) => TypedColumn::Str(c),
                    ("col_ip", DynamicColumn::Str(c)) => TypedColumn::Ip(c),
                    ("col_int", DynamicColumn::I64(c)) => TypedColumn::Int(c),
                    ("col_int", DynamicColumn::U64(c)) => TypedColumn::UInt(c),
                    ("col_float", DynamicColumn::F64(c)) => TypedColumn::Float(c),
                    ("col_bool", DynamicColumn::Bool(c)) => TypedColumn::Bool(c),
                    _ => continue,
                };
                out.push(typed);
            }
        }
        // A doc that has the field under its own name never falls back to the alias, and the
        // caller made sure every present value is in a column; so "own columns first" is right.
    }
    Ok(out)
}

/// The value of a document in column `i` of a field.
fn read_one(c: &TypedColumn, i: usize, doc: DocId) -> Option<Part> {
    match c {
        TypedColumn::Int(c) => c.first(doc).map(Part::Int),
        TypedColumn::UInt(c) => c.first(doc).map(|v| Part::Int(v as i64)),
        TypedColumn::Float(c) => c.first(doc).map(|v| Part::Float(v.to_bits())),
        TypedColumn::Str(c) | TypedColumn::Ip(c) => {
            c.ords().first(doc).map(|o| Part::Str(i as u8, o))
        }
        TypedColumn::Bool(c) => c.first(doc).map(Part::Bool),
    }
}

/// The value of a document for a field: the first of its columns that has one.
fn read(columns: &[TypedColumn], doc: DocId) -> Option<Part> {
    columns
        .iter()
        .enumerate()
        .find_map(|(i, c)| read_one(c, i, doc))
}

/// A numeric or boolean part as a value (text parts go through [`StrLookup`]).
fn scalar_value(part: Part) -> Value {
    match part {
        Part::Int(i) => Value::Int(i),
        Part::Float(bits) => Value::float(f64::from_bits(bits)),
        Part::Bool(b) => Value::Bool(b),
        Part::Str(..) | Part::Absent => Value::Null,
    }
}

// ---- counting groups ------------------------------------------------------------------------------

/// Counts matching documents per group of a [`Grouping`] and of the `values` fields, from the
/// columns.
pub struct GroupCounter {
    /// How to group: a document without one of these fields is not counted.
    pub grouping: Grouping,
    /// Fields grouped by after the grouping's ([`vigil_query::CountPushdown::values`]): a
    /// document without one is still counted, with [`Value::Null`] for it.
    pub values: Vec<String>,
}

/// How one segment counts.
enum Tally {
    /// No grouping at all: one number.
    Total(u64),
    /// One field, no time: a tally per column (term ordinals for text columns).
    Single(Vec<ColumnTally>),
    /// Time buckets without a split.
    Buckets(HashMap<i64, u64>),
    /// Anything else.
    Keys(HashMap<(Option<i64>, Vec<Part>), u64>),
}

/// Counts of one column's values.
enum ColumnTally {
    /// A counter per term ordinal.
    Ords(Vec<u64>),
    /// Counters per value.
    Values(HashMap<Part, u64>),
}

/// [`GroupCounter`] on one segment.
pub struct SegmentGroupCounter {
    columns: Vec<Vec<TypedColumn>>,
    /// How many of `columns` (the first ones) a counted document must have.
    required: usize,
    /// Documents without the one optional field of a [`Tally::Single`].
    absent: u64,
    ts: Option<Column<i64>>,
    span_ns: i64,
    tally: Tally,
}

impl Collector for GroupCounter {
    type Fruit = Vec<Counted>;
    type Child = SegmentGroupCounter;

    fn for_segment(
        &self,
        _segment_local_id: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<SegmentGroupCounter> {
        let (names, span_ns): (Vec<&String>, i64) = match &self.grouping {
            Grouping::Fields(f) => (f.iter().collect(), 0),
            Grouping::Time { span_ns, split } => (split.iter().collect(), *span_ns),
        };
        let required = names.len();
        let columns = names
            .into_iter()
            .chain(&self.values)
            .map(|n| columns_for(segment, n))
            .collect::<tantivy::Result<Vec<_>>>()?;
        let ts = if span_ns > 0 {
            Some(segment.fast_fields().i64("ts")?)
        } else {
            None
        };
        let tally = match (&columns[..], ts.is_some()) {
            ([], false) => Tally::Total(0),
            ([only], false) => Tally::Single(
                only.iter()
                    .map(|c| match c {
                        TypedColumn::Str(c) | TypedColumn::Ip(c) => {
                            ColumnTally::Ords(vec![0; c.dictionary().num_terms()])
                        }
                        _ => ColumnTally::Values(HashMap::new()),
                    })
                    .collect(),
            ),
            ([], true) => Tally::Buckets(HashMap::new()),
            _ => Tally::Keys(HashMap::new()),
        };
        Ok(SegmentGroupCounter {
            columns,
            required,
            absent: 0,
            ts,
            span_ns,
            tally,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Counted>>) -> tantivy::Result<Vec<Counted>> {
        // Groups repeat across segments; the query engine merges them as it aggregates.
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for SegmentGroupCounter {
    type Fruit = Vec<Counted>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let bucket = match &self.ts {
            Some(ts) => match ts.first(doc) {
                Some(t) => Some(t.div_euclid(self.span_ns) * self.span_ns),
                None => return,
            },
            None => None,
        };
        match &mut self.tally {
            Tally::Total(n) => *n += 1,
            Tally::Single(tallies) => {
                let mut found = false;
                for (i, (column, tally)) in self.columns[0].iter().zip(tallies).enumerate() {
                    let Some(part) = read_one(column, i, doc) else {
                        continue;
                    };
                    found = true;
                    match (tally, part) {
                        (ColumnTally::Ords(counts), Part::Str(_, ord)) => {
                            if let Some(n) = counts.get_mut(ord as usize) {
                                *n += 1;
                            }
                        }
                        (ColumnTally::Values(counts), part) => {
                            *counts.entry(part).or_insert(0) += 1;
                        }
                        _ => {}
                    }
                    break;
                }
                if !found && self.required == 0 {
                    self.absent += 1;
                }
            }
            Tally::Buckets(counts) => {
                if let Some(b) = bucket {
                    *counts.entry(b).or_insert(0) += 1;
                }
            }
            Tally::Keys(counts) => {
                let mut parts = Vec::with_capacity(self.columns.len());
                for (f, columns) in self.columns.iter().enumerate() {
                    match read(columns, doc) {
                        Some(p) => parts.push(p),
                        None if f >= self.required => parts.push(Part::Absent),
                        None => return,
                    }
                }
                *counts.entry((bucket, parts)).or_insert(0) += 1;
            }
        }
    }

    fn harvest(self) -> Vec<Counted> {
        match self.tally {
            Tally::Total(n) => vec![Counted {
                time: None,
                values: Vec::new(),
                count: n,
            }]
            .into_iter()
            .filter(|c| c.count > 0)
            .collect(),
            Tally::Single(tallies) => {
                let columns = &self.columns[0];
                let mut counted: Vec<(Part, u64)> = Vec::new();
                for (i, tally) in tallies.into_iter().enumerate() {
                    match tally {
                        ColumnTally::Ords(counts) => counted.extend(
                            counts
                                .into_iter()
                                .enumerate()
                                .filter(|(_, n)| *n > 0)
                                .map(|(ord, n)| (Part::Str(i as u8, ord as u64), n)),
                        ),
                        ColumnTally::Values(counts) => counted.extend(counts),
                    }
                }
                if self.absent > 0 {
                    counted.push((Part::Absent, self.absent));
                }
                let names = StrLookup::new(columns, counted.iter().map(|(p, _)| *p));
                counted
                    .into_iter()
                    .map(|(part, n)| Counted {
                        time: None,
                        values: vec![names.value(columns, part)],
                        count: n,
                    })
                    .collect()
            }
            Tally::Buckets(counts) => counts
                .into_iter()
                .map(|(b, n)| Counted {
                    time: Some(b),
                    values: Vec::new(),
                    count: n,
                })
                .collect(),
            Tally::Keys(counts) => {
                let lookups: Vec<StrLookup> = (0..self.columns.len())
                    .map(|f| {
                        StrLookup::new(&self.columns[f], counts.keys().map(|(_, parts)| parts[f]))
                    })
                    .collect();
                counts
                    .into_iter()
                    .map(|((time, parts), n)| Counted {
                        time,
                        values: parts
                            .into_iter()
                            .enumerate()
                            .map(|(f, p)| lookups[f].value(&self.columns[f], p))
                            .collect(),
                        count: n,
                    })
                    .collect()
            }
        }
    }
}

/// The strings of many term ordinals, looked up in one sorted pass per column (random
/// `ord_to_str` calls cost a dictionary block decode each).
struct StrLookup {
    strings: HashMap<(u8, u64), String>,
}

impl StrLookup {
    fn new(columns: &[TypedColumn], parts: impl Iterator<Item = Part>) -> StrLookup {
        let mut wanted: HashMap<u8, Vec<u64>> = HashMap::new();
        for p in parts {
            if let Part::Str(col, ord) = p {
                wanted.entry(col).or_default().push(ord);
            }
        }
        let mut strings = HashMap::new();
        for (col, mut ords) in wanted {
            ords.sort_unstable();
            ords.dedup();
            if let Some(TypedColumn::Str(c) | TypedColumn::Ip(c)) = columns.get(col as usize) {
                let mut i = 0;
                let _ = c.dictionary().sorted_ords_to_term_cb(&ords, |bytes| {
                    if let Some(&ord) = ords.get(i) {
                        strings.insert((col, ord), String::from_utf8_lossy(bytes).into_owned());
                    }
                    i += 1;
                });
            }
        }
        StrLookup { strings }
    }

    fn value(&self, columns: &[TypedColumn], part: Part) -> Value {
        match part {
            Part::Str(col, ord) => {
                let s = self.strings.get(&(col, ord)).cloned().unwrap_or_default();
                match columns.get(col as usize) {
                    Some(TypedColumn::Ip(_)) => match s.parse() {
                        Ok(ip) => Value::Ip(ip),
                        Err(_) => Value::Str(s),
                    },
                    _ => Value::Str(s),
                }
            }
            other => scalar_value(other),
        }
    }
}

// ---- sequence numbers of matches ----------------------------------------------------------------

/// The sequence numbers of every matching document, ascending.
pub struct SeqCollector;

/// [`SeqCollector`] on one segment.
pub struct SegmentSeqCollector {
    seq: Column<u64>,
    out: Vec<u64>,
}

impl Collector for SeqCollector {
    type Fruit = Vec<u64>;
    type Child = SegmentSeqCollector;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        Ok(SegmentSeqCollector {
            seq: segment.fast_fields().u64("seq")?,
            out: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<u64>>) -> tantivy::Result<Vec<u64>> {
        let mut all: Vec<u64> = fruits.into_iter().flatten().collect();
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }
}

impl SegmentCollector for SegmentSeqCollector {
    type Fruit = Vec<u64>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(s) = self.seq.first(doc) {
            self.out.push(s);
        }
    }

    fn harvest(self) -> Vec<u64> {
        self.out
    }
}

// ---- the newest matches -------------------------------------------------------------------------

/// The `limit` newest matches by (time, sequence number), and how many matched in all.
pub struct NewestCollector {
    /// How many to keep.
    pub limit: usize,
}

/// [`NewestCollector`] on one segment.
pub struct SegmentNewestCollector {
    seq: Column<u64>,
    ts: Column<i64>,
    limit: usize,
    heap: BinaryHeap<Reverse<(i64, u64)>>,
    matched: u64,
}

impl Collector for NewestCollector {
    type Fruit = (Vec<u64>, u64);
    type Child = SegmentNewestCollector;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        Ok(SegmentNewestCollector {
            seq: segment.fast_fields().u64("seq")?,
            ts: segment.fast_fields().i64("ts")?,
            limit: self.limit,
            heap: BinaryHeap::new(),
            matched: 0,
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<(Vec<(i64, u64)>, u64)>,
    ) -> tantivy::Result<(Vec<u64>, u64)> {
        let matched = fruits.iter().map(|f| f.1).sum();
        let mut all: Vec<(i64, u64)> = fruits.into_iter().flat_map(|f| f.0).collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        all.truncate(self.limit);
        let mut seqs: Vec<u64> = all.into_iter().map(|(_, s)| s).collect();
        seqs.sort_unstable();
        Ok((seqs, matched))
    }
}

impl SegmentCollector for SegmentNewestCollector {
    type Fruit = (Vec<(i64, u64)>, u64);

    fn collect(&mut self, doc: DocId, _score: Score) {
        let (Some(t), Some(s)) = (self.ts.first(doc), self.seq.first(doc)) else {
            return;
        };
        self.matched += 1;
        if self.heap.len() < self.limit {
            self.heap.push(Reverse((t, s)));
        } else if let Some(Reverse(min)) = self.heap.peek()
            && (t, s) > *min
        {
            self.heap.pop();
            self.heap.push(Reverse((t, s)));
        }
    }

    fn harvest(self) -> (Vec<(i64, u64)>, u64) {
        (
            self.heap.into_iter().map(|Reverse(x)| x).collect(),
            self.matched,
        )
    }
}
