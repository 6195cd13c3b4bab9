//! A query's search part as a tantivy query.
//!
//! Every translation selects a superset of what the reference evaluator
//! ([`vigil_query::exec::matches`]) selects, and says whether it is exact. Exact translations
//! are answered from the index alone; inexact ones only narrow the events that are then fetched
//! from the ledger and checked by the reference evaluator itself, so both engines always agree.

use std::ops::Bound;

use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, Occur, PhraseQuery, Query, RangeQuery, RegexQuery,
    TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Searcher, Term};
use vigil_query::ast::{CmpOp, Expr, Literal, Pattern};
use vigil_query::exec::{MAX_WORD_LEN, SEQ_FIELD, alias, term_words};

use crate::colcmp::{ColumnCompare, column_exists};
use crate::document::{
    Fields, SEP, TEXT_ONLY_FIELDS, ip_term_text, kw_term_text, num_term_text, odd, odd_term_text,
};
use crate::intcol::{self, column_only, int_ranges};

/// A translated search: the query and whether its matches are exactly the reference's.
pub struct Translated {
    /// Selects a superset of the matching events (exactly them when `exact`).
    pub query: Box<dyn Query>,
    /// Whether no event it selects needs checking.
    pub exact: bool,
}

impl Translated {
    fn exact(query: Box<dyn Query>) -> Translated {
        Translated { query, exact: true }
    }
    fn all_inexact() -> Translated {
        Translated {
            query: Box::new(AllQuery),
            exact: false,
        }
    }
}

/// Translates a search expression. `searcher` answers whether any document carries an `odd`
/// marker, which decides whether some comparisons are exact.
pub fn translate(expr: &Expr, fields: &Fields, searcher: &Searcher) -> Translated {
    Translator { fields, searcher }.expr(expr)
}

struct Translator<'a> {
    fields: &'a Fields,
    searcher: &'a Searcher,
}

fn term(field: Field, text: &str) -> Term {
    Term::from_field_text(field, text)
}

fn term_query(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(term(field, text), IndexRecordOption::Basic))
}

fn or(queries: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    match queries.len() {
        0 => Box::new(EmptyQuery),
        1 => queries.into_iter().next().expect("one"),
        _ => Box::new(BooleanQuery::new(
            queries.into_iter().map(|q| (Occur::Should, q)).collect(),
        )),
    }
}

fn and(a: Box<dyn Query>, b: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![(Occur::Must, a), (Occur::Must, b)]))
}

fn not(a: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, Box::new(AllQuery) as Box<dyn Query>),
        (Occur::MustNot, a),
    ]))
}

/// Terms of `field` from `lo` to `hi`.
fn range(field: Field, lo: Bound<String>, hi: Bound<String>) -> Box<dyn Query> {
    let t = |b: Bound<String>| match b {
        Bound::Included(s) => Bound::Included(term(field, &s)),
        Bound::Excluded(s) => Bound::Excluded(term(field, &s)),
        Bound::Unbounded => Bound::Unbounded,
    };
    Box::new(RangeQuery::new(t(lo), t(hi)))
}

/// All terms of a path in a `path SEP value` field.
fn path_start(path: &str) -> String {
    format!("{path}{SEP}")
}
fn path_end(path: &str) -> String {
    format!("{path}\u{1}")
}

/// Terms of `path` ordered against `value` by `op` (`Ne`: on either side).
fn ordered(field: Field, path: &str, value: String, op: CmpOp) -> Box<dyn Query> {
    use Bound::*;
    let (start, end) = (Included(path_start(path)), Excluded(path_end(path)));
    match op {
        CmpOp::Eq => term_query(field, &value),
        CmpOp::Lt => range(field, start, Excluded(value)),
        CmpOp::Le => range(field, start, Included(value)),
        CmpOp::Gt => range(field, Excluded(value), end),
        CmpOp::Ge => range(field, Included(value), end),
        CmpOp::Ne => or(vec![
            range(field, start, Excluded(value.clone())),
            range(field, Excluded(value), end),
        ]),
    }
}

/// A `*` glob as a whole-term regular expression (after `prefix`).
fn glob_regex(prefix: &str, glob: &str) -> String {
    let mut re = regex_syntax::escape(prefix);
    for (i, part) in glob.split('*').enumerate() {
        if i > 0 {
            re.push_str("(?s:.)*");
        }
        re.push_str(&regex_syntax::escape(part));
    }
    re
}

impl Translator<'_> {
    fn expr(&self, expr: &Expr) -> Translated {
        match expr {
            Expr::And(items) => {
                let parts: Vec<Translated> = items.iter().map(|e| self.expr(e)).collect();
                let exact = parts.iter().all(|t| t.exact);
                Translated {
                    query: Box::new(BooleanQuery::new(
                        parts.into_iter().map(|t| (Occur::Must, t.query)).collect(),
                    )),
                    exact,
                }
            }
            Expr::Or(items) => {
                let parts: Vec<Translated> = items.iter().map(|e| self.expr(e)).collect();
                let exact = parts.iter().all(|t| t.exact);
                Translated {
                    query: or(parts.into_iter().map(|t| t.query).collect()),
                    exact,
                }
            }
            Expr::Not(a) => {
                let a = self.expr(a);
                if a.exact {
                    Translated::exact(not(a.query))
                } else {
                    Translated::all_inexact()
                }
            }
            Expr::Text(p) => self.text(p),
            Expr::Compare { field, op, value } => {
                self.with_alias(field, |path| self.compare(path, *op, value))
            }
            Expr::In { field, values } => self.with_alias(field, |path| {
                let parts: Vec<Translated> = values
                    .iter()
                    .map(|v| self.compare(path, CmpOp::Eq, v))
                    .collect();
                let exact = parts.iter().all(|t| t.exact);
                Translated {
                    query: or(parts.into_iter().map(|t| t.query).collect()),
                    exact,
                }
            }),
        }
    }

    /// A field is read as written, else (when the event lacks it) as its alias.
    fn with_alias(&self, field: &str, f: impl Fn(&str) -> Translated) -> Translated {
        let own = f(field);
        let aliased = alias(field);
        if aliased == field {
            return own;
        }
        let other = f(aliased);
        let lacks_own = not(self.has(field));
        Translated {
            query: or(vec![own.query, and(lacks_own, other.query)]),
            exact: own.exact && other.exact,
        }
    }

    /// The documents that have the field `path`: its `has` terms, and (format 4) its values
    /// held in columns only.
    fn has(&self, path: &str) -> Box<dyn Query> {
        let terms = term_query(self.fields.has, path);
        if !column_only(path) {
            return terms;
        }
        let mut parts = column_exists(path);
        parts.push(terms);
        or(parts)
    }

    /// Whether some document has a value of `path` that is not held in a column only.
    fn has_terms(&self, path: &str) -> bool {
        self.searcher
            .doc_freq(&term(self.fields.has, path))
            .map_or(true, |n| n > 0)
    }

    /// Documents marked `kind` for `path`, if there are any.
    fn odd_docs(&self, kind: &str, path: &str) -> Option<Box<dyn Query>> {
        let text = odd_term_text(kind, path);
        let n = self
            .searcher
            .doc_freq(&term(self.fields.odd, &text))
            .unwrap_or(1);
        (n > 0).then(|| term_query(self.fields.odd, &text))
    }

    /// `base` plus the documents with `kind` markers on `path`, which then need checking.
    fn with_odd(&self, base: Box<dyn Query>, kind: &str, path: &str) -> Translated {
        match self.odd_docs(kind, path) {
            None => Translated::exact(base),
            Some(odd) => Translated {
                query: or(vec![base, odd]),
                exact: false,
            },
        }
    }

    fn compare(&self, path: &str, op: CmpOp, value: &Literal) -> Translated {
        let f = self.fields;
        if path == SEQ_FIELD {
            return self.seq(op, value);
        }
        if TEXT_ONLY_FIELDS.contains(&path) {
            // Not held as keywords: narrow to events that have the field.
            return Translated {
                query: term_query(f.has, path),
                exact: false,
            };
        }
        // Scalars of such paths are in their columns only (no keyword, number or address term).
        let in_columns = column_only(path);
        let columns = |q: Box<dyn Query>, int: Option<Box<dyn Query>>| -> Box<dyn Query> {
            if !in_columns {
                return q;
            }
            let mut parts = vec![
                q,
                Box::new(ColumnCompare::new(path, op, value.clone())) as _,
            ];
            parts.extend(int);
            or(parts)
        };
        match value {
            Literal::Text(p) => {
                let lower = p.text.to_lowercase();
                let terms = match op {
                    CmpOp::Eq if p.wildcard => {
                        let re = glob_regex(&path_start(path), &lower);
                        match RegexQuery::from_pattern(&re, f.kw) {
                            Ok(q) => self.with_odd(Box::new(q), odd::LONG, path),
                            Err(_) => Translated {
                                query: self.has(path),
                                exact: false,
                            },
                        }
                    }
                    // Values with terms are checked against the ledger; values in columns
                    // only are answered exactly there.
                    CmpOp::Ne if p.wildcard => Translated {
                        query: term_query(f.has, path),
                        exact: !self.has_terms(path),
                    },
                    _ => {
                        let q = ordered(f.kw, path, kw_term_text(path, &lower), op);
                        self.with_odd(q, odd::LONG, path)
                    }
                };
                let ints = in_columns.then(|| intcol::text_query(f.col_int, path, op, p));
                Translated {
                    query: columns(terms.query, ints),
                    exact: terms.exact,
                }
            }
            Literal::Number(n) => {
                if n.is_nan() {
                    // No number compares with NaN; a non-number is "not equal" to anything.
                    return match op {
                        CmpOp::Eq => Translated::exact(Box::new(EmptyQuery)),
                        CmpOp::Ne => {
                            let marked = self
                                .odd_docs(odd::NOT_NUMBER, path)
                                .unwrap_or_else(|| Box::new(EmptyQuery));
                            Translated::exact(columns(marked, None))
                        }
                        _ => {
                            let t = self.with_odd(Box::new(EmptyQuery), odd::NOT_NUMBER, path);
                            Translated {
                                query: columns(t.query, None),
                                exact: t.exact,
                            }
                        }
                    };
                }
                let q = ordered(f.num, path, num_term_text(path, *n), op);
                let ints =
                    in_columns.then(|| intcol::ranges_query(f.col_int, path, &int_ranges(*n, op)));
                let q = columns(q, ints);
                match op {
                    CmpOp::Eq => Translated::exact(q),
                    // Any value that is not a number is "not equal".
                    CmpOp::Ne => Translated::exact(match self.odd_docs(odd::NOT_NUMBER, path) {
                        Some(odd) => or(vec![q, odd]),
                        None => q,
                    }),
                    // Non-numbers compare as text, case-sensitively: check those against the ledger.
                    _ => self.with_odd(q, odd::NOT_NUMBER, path),
                }
            }
            Literal::Cidr(net, bits) => {
                let (lo, hi) = cidr_bounds(*net, *bits);
                let (lo, hi) = (ip_term_text(path, lo), ip_term_text(path, hi));
                use Bound::*;
                let q = match op {
                    CmpOp::Eq => range(f.ip, Included(lo), Included(hi)),
                    CmpOp::Ne => or(vec![
                        range(f.ip, Included(path_start(path)), Excluded(lo)),
                        range(f.ip, Excluded(hi), Excluded(path_end(path))),
                    ]),
                    _ => return Translated::exact(Box::new(EmptyQuery)),
                };
                Translated::exact(columns(q, None))
            }
        }
    }

    /// `vigil.seq` compared with a literal: a range of the sequence-number column (every event
    /// has one, a whole number).
    fn seq(&self, op: CmpOp, value: &Literal) -> Translated {
        use Bound::*;
        let n = match value {
            Literal::Number(n) => *n,
            // Compared as text: check every event with the reference.
            Literal::Text(_) => return Translated::all_inexact(),
            Literal::Cidr(..) => return Translated::exact(Box::new(EmptyQuery)),
        };
        let seq_range = |lo: Bound<u64>, hi: Bound<u64>| -> Box<dyn Query> {
            let t = |b: Bound<u64>| b.map(|v| Term::from_field_u64(self.fields.seq, v));
            Box::new(RangeQuery::new(t(lo), t(hi)))
        };
        let all = || -> Box<dyn Query> { Box::new(AllQuery) };
        let none = || -> Box<dyn Query> { Box::new(EmptyQuery) };
        // Whole-number bounds: seq < n ⇔ seq < ceil(n), seq ≤ n ⇔ seq ≤ floor(n).
        const TOP: f64 = u64::MAX as f64;
        let (floor, ceil) = (n.floor(), n.ceil());
        let query = if n.is_nan() {
            none()
        } else {
            match op {
                CmpOp::Eq if n.fract() == 0.0 && (0.0..TOP).contains(&n) => {
                    seq_range(Included(n as u64), Included(n as u64))
                }
                CmpOp::Eq => none(),
                CmpOp::Ne if n.fract() == 0.0 && (0.0..TOP).contains(&n) => or(vec![
                    seq_range(Unbounded, Excluded(n as u64)),
                    seq_range(Excluded(n as u64), Unbounded),
                ]),
                CmpOp::Ne => all(),
                CmpOp::Lt if ceil <= 0.0 => none(),
                CmpOp::Lt if ceil >= TOP => all(),
                CmpOp::Lt => seq_range(Unbounded, Excluded(ceil as u64)),
                CmpOp::Le if floor < 0.0 => none(),
                CmpOp::Le if floor >= TOP => all(),
                CmpOp::Le => seq_range(Unbounded, Included(floor as u64)),
                CmpOp::Gt if floor < 0.0 => all(),
                CmpOp::Gt if floor >= TOP => none(),
                CmpOp::Gt => seq_range(Excluded(floor as u64), Unbounded),
                CmpOp::Ge if ceil <= 0.0 => all(),
                CmpOp::Ge if ceil >= TOP => none(),
                CmpOp::Ge => seq_range(Included(ceil as u64), Unbounded),
            }
        };
        Translated::exact(query)
    }

    fn text(&self, p: &Pattern) -> Translated {
        let f = self.fields;
        if p.text == "*" {
            return Translated::exact(Box::new(AllQuery));
        }
        let words = term_words(&p.text);
        if words.is_empty() {
            return Translated::all_inexact();
        }
        if words.iter().any(|w| w.len() > MAX_WORD_LEN) {
            return Translated::exact(Box::new(EmptyQuery));
        }
        let word_query = |w: &str| -> Option<Box<dyn Query>> {
            if w.contains('*') {
                RegexQuery::from_pattern(&glob_regex("", w), f.text)
                    .ok()
                    .map(|q| Box::new(q) as Box<dyn Query>)
            } else {
                Some(term_query(f.text, w))
            }
        };
        if words.len() == 1 {
            return match word_query(&words[0]) {
                Some(q) => Translated::exact(q),
                None => Translated::all_inexact(),
            };
        }
        if words.iter().all(|w| !w.contains('*')) {
            let terms = words.iter().map(|w| term(f.text, w)).collect();
            return Translated::exact(Box::new(PhraseQuery::new(terms)));
        }
        // Words with wildcards in a phrase: every word must occur; the order is checked later.
        let parts: Vec<Box<dyn Query>> = words
            .iter()
            .filter(|w| w.chars().any(|c| c != '*'))
            .filter_map(|w| word_query(w))
            .collect();
        let query = parts
            .into_iter()
            .reduce(and)
            .unwrap_or_else(|| Box::new(AllQuery));
        Translated {
            query,
            exact: false,
        }
    }
}

/// First and last address of a network.
fn cidr_bounds(net: std::net::IpAddr, bits: u8) -> (std::net::IpAddr, std::net::IpAddr) {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    match net {
        IpAddr::V4(a) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits.min(32))
            };
            let lo = u32::from(a) & mask;
            (
                IpAddr::V4(Ipv4Addr::from(lo)),
                IpAddr::V4(Ipv4Addr::from(lo | !mask)),
            )
        }
        IpAddr::V6(a) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits.min(128))
            };
            let lo = u128::from(a) & mask;
            (
                IpAddr::V6(Ipv6Addr::from(lo)),
                IpAddr::V6(Ipv6Addr::from(lo | !mask)),
            )
        }
    }
}
