//! The shared matcher of one event field: every predicate of every rule on that field, searched
//! together.
//!
//! Literal patterns, per case mode (folded text for the default case-insensitive matching,
//! original text for `cased` and encoded values): `contains` literals and the longest literal of
//! each complex wildcard pattern (a prefilter) go into one Aho-Corasick automaton; exact and
//! prefix literals into a trie walked from the value's first byte, suffix literals into a trie
//! of the reversed literals walked from its last byte (`Literals`). So a value is scanned once
//! whatever the number of rules. Regular expressions run one by one,
//! each behind the `regex` crate's own literal prefilter (a `RegexSet` has none and falls back
//! to a slow engine on large sets). CIDR, numeric, field-reference and date-part checks are evaluated one by one
//! (they are few). Every predicate is an *atom*; a hit sets the atom's bit.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::contiguous;
use aho_corasick::{AhoCorasick, Anchored, MatchKind};
use regex::Regex;
use vigil_event::{Event, Timestamp, Value};

use crate::pattern::{Glob, Part, Shape, fold};

/// Largest number of windash variants expanded into literal patterns; more go through a regex.
const MAX_DASH_EXPANSION: usize = 25;

/// Number of literals from which aho-corasick's SIMD (packed) prefilter is not used.
const PACKED_LIMIT: usize = 128;

/// Compiled regular expressions may not grow beyond this (bytes), so no rule can exhaust memory.
pub const REGEX_SIZE_LIMIT: usize = 2 << 20;

/// A numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmp {
    /// `<`.
    Lt,
    /// `<=`.
    Lte,
    /// `>`.
    Gt,
    /// `>=`.
    Gte,
    /// `==`.
    Eq,
}

impl Cmp {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Lt => a < b,
            Cmp::Lte => a <= b,
            Cmp::Gt => a > b,
            Cmp::Gte => a >= b,
            Cmp::Eq => a == b,
        }
    }
}

/// A part of a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatePart {
    /// 0–59.
    Minute,
    /// 0–23.
    Hour,
    /// 1–31.
    Day,
    /// ISO week 1–53.
    Week,
    /// 1–12.
    Month,
    /// The year.
    Year,
}

/// How a field reference compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefMode {
    /// Equal.
    Exact,
    /// Contains the other value.
    Contains,
    /// Starts with it.
    Prefix,
    /// Ends with it.
    Suffix,
}

/// One predicate on one field's value. Every predicate is positive: it holds only when the
/// field is present and something in it matches (negations live in the rule's expression).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pred {
    /// A Sigma string (after modifiers), case-sensitive or not.
    Str {
        /// The pattern.
        glob: Glob,
        /// Whether case matters.
        cased: bool,
    },
    /// A regular expression (inline flags included), searched anywhere in the value.
    Regex(String),
    /// The value is an address inside `net/prefix`.
    Cidr {
        /// Network address.
        net: IpAddr,
        /// Prefix length.
        prefix: u8,
    },
    /// The value is a number comparing so with the bits of an f64.
    Num {
        /// The comparison.
        cmp: Cmp,
        /// `f64::to_bits` of the bound.
        bits: u64,
    },
    /// A date part of the value compares so.
    Date {
        /// Which part.
        part: DatePart,
        /// The comparison.
        cmp: Cmp,
        /// The bound.
        value: i64,
    },
    /// The value matches another field's value.
    FieldRef {
        /// The other event field.
        other: String,
        /// How.
        mode: RefMode,
        /// Whether case matters.
        cased: bool,
    },
    /// The field exists (even if null).
    Exists,
    /// The field exists and is not null.
    Present,
}

/// Which atoms hit for one event: a bitset plus the list of set bits (for sparse reset).
#[derive(Debug, Default)]
pub struct Hits {
    bits: Vec<u64>,
    list: Vec<u32>,
}

impl Hits {
    /// A hit set for `n` atoms.
    pub fn new(n: usize) -> Hits {
        Hits {
            bits: vec![0; n.div_ceil(64)],
            list: Vec::new(),
        }
    }

    /// Sets an atom.
    #[inline]
    pub fn set(&mut self, atom: u32) {
        let (w, b) = ((atom / 64) as usize, atom % 64);
        if let Some(word) = self.bits.get_mut(w)
            && *word & (1 << b) == 0
        {
            *word |= 1 << b;
            self.list.push(atom);
        }
    }

    /// Whether an atom is set.
    #[inline]
    pub fn get(&self, atom: u32) -> bool {
        let (w, b) = ((atom / 64) as usize, atom % 64);
        self.bits.get(w).is_some_and(|word| word & (1 << b) != 0)
    }

    /// The atoms set, in the order they were set.
    pub fn list(&self) -> &[u32] {
        &self.list
    }

    /// Clears every set atom.
    pub fn clear(&mut self) {
        for &a in &self.list {
            if let Some(word) = self.bits.get_mut((a / 64) as usize) {
                *word = 0;
            }
        }
        self.list.clear();
    }
}

#[derive(Debug, Default, Clone)]
struct Group {
    exact: Vec<u32>,
    prefix: Vec<u32>,
    suffix: Vec<u32>,
    contains: Vec<u32>,
    verify: Vec<u32>,
}

/// The literals of one case mode of one field. Only `contains` literals (and the prefilter
/// literals of complex patterns) can occur anywhere in a value, so only they go into the
/// unanchored automaton, searched for every occurrence; exact and prefix literals are found by
/// walking a trie from the value's first byte, suffix literals by walking a trie of the
/// reversed literals from its last byte. A walk stops at the first byte no literal continues
/// with, usually within a few bytes, where an unanchored search reads the whole value and
/// reports every occurrence of every short literal.
#[derive(Debug, Default)]
struct Literals {
    /// Whether these are the folded literals (all lower case), whose automata may ignore
    /// ASCII case.
    folded: bool,
    /// Whether the automata match ASCII letters in either case, so an ASCII value is scanned
    /// without being folded first. Chosen when built: only where the unanchored automaton has
    /// too many literals for the SIMD prefilter (which cannot ignore case) to be used anyway.
    ascii_ci: bool,
    patterns: Vec<String>,
    index: HashMap<String, usize>,
    groups: Vec<Group>,
    /// `contains` and prefilter literals, unanchored: automaton pattern → group.
    anywhere: Option<(AhoCorasick, Vec<usize>)>,
    /// Exact and prefix literals, walked from the start.
    starts: Option<(contiguous::NFA, Vec<usize>)>,
    /// Suffix literals reversed, walked from the end.
    ends: Option<(contiguous::NFA, Vec<usize>)>,
}

/// A trie walk over `bytes` from the anchored start state: calls `found(pattern, depth)` for
/// each literal equal to the first `depth` bytes.
fn walk(
    nfa: &contiguous::NFA,
    bytes: impl Iterator<Item = u8>,
    mut found: impl FnMut(usize, usize),
) {
    let Ok(mut sid) = nfa.start_state(Anchored::Yes) else {
        return;
    };
    for (i, b) in bytes.enumerate() {
        sid = nfa.next_state(Anchored::Yes, sid, b);
        if nfa.is_dead(sid) {
            return;
        }
        if nfa.is_match(sid) {
            let depth = i + 1;
            for m in 0..nfa.match_len(sid) {
                // A state's matches include literals that are only suffixes of the path.
                let pid = nfa.match_pattern(sid, m);
                if nfa.pattern_len(pid) == depth {
                    found(pid.as_usize(), depth);
                }
            }
        }
    }
}

impl Literals {
    fn group(&mut self, text: &str) -> &mut Group {
        let i = match self.index.get(text) {
            Some(&i) => i,
            None => {
                let i = self.patterns.len();
                self.patterns.push(text.to_owned());
                self.index.insert(text.to_owned(), i);
                self.groups.push(Group::default());
                i
            }
        };
        &mut self.groups[i]
    }

    fn build(&mut self) -> Result<(), String> {
        let err = |e: aho_corasick::BuildError| format!("literal matcher: {e}");
        let pick = |want: &dyn Fn(&Group) -> bool| -> Vec<usize> {
            (0..self.groups.len())
                .filter(|&i| want(&self.groups[i]))
                .collect()
        };
        let anywhere = pick(&|g| !g.contains.is_empty() || !g.verify.is_empty());
        self.ascii_ci = self.folded && (anywhere.is_empty() || anywhere.len() >= PACKED_LIMIT);
        if !anywhere.is_empty() {
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(self.ascii_ci)
                .build(anywhere.iter().map(|&i| &self.patterns[i]))
                .map_err(err)?;
            self.anywhere = Some((ac, anywhere));
        }
        let trie = |patterns: Vec<Vec<u8>>| {
            contiguous::Builder::new()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(self.ascii_ci)
                .prefilter(false)
                .build(patterns)
                .map_err(err)
        };
        let starts = pick(&|g| !g.exact.is_empty() || !g.prefix.is_empty());
        if !starts.is_empty() {
            let nfa = trie(
                starts
                    .iter()
                    .map(|&i| self.patterns[i].as_bytes().to_vec())
                    .collect(),
            )?;
            self.starts = Some((nfa, starts));
        }
        let ends = pick(&|g| !g.suffix.is_empty());
        if !ends.is_empty() {
            let nfa = trie(
                ends.iter()
                    .map(|&i| self.patterns[i].bytes().rev().collect())
                    .collect(),
            )?;
            self.ends = Some((nfa, ends));
        }
        self.index = HashMap::new();
        Ok(())
    }

    /// Whether every literal is a `contains` literal without a NUL byte: then a search of
    /// several values joined by NUL finds exactly what searches of each value would.
    fn only_contains(&self) -> bool {
        self.groups
            .iter()
            .all(|g| g.exact.is_empty() && g.prefix.is_empty() && g.suffix.is_empty())
            && self.groups.iter().all(|g| g.verify.is_empty())
            && self
                .patterns
                .iter()
                .all(|p| !p.is_empty() && !p.contains('\0'))
    }

    fn memory_usage(&self) -> usize {
        self.anywhere.as_ref().map_or(0, |(a, _)| a.memory_usage())
            + self.starts.as_ref().map_or(0, |(n, _)| n.memory_usage())
            + self.ends.as_ref().map_or(0, |(n, _)| n.memory_usage())
    }

    /// Scans `text` (for the folded literals: a folded value, or any ASCII value, whose case
    /// the automata ignore); sets atoms whose position constraint holds; collects complex patterns to
    /// verify.
    fn scan(&self, text: &str, hits: &mut Hits, verify: &mut Vec<u32>) {
        let len = text.len();
        if let Some((ac, groups)) = &self.anywhere {
            for m in ac.find_overlapping_iter(text) {
                let Some(g) = groups
                    .get(m.pattern().as_usize())
                    .and_then(|&i| self.groups.get(i))
                else {
                    continue;
                };
                for &a in &g.contains {
                    hits.set(a);
                }
                for &c in &g.verify {
                    if !verify.contains(&c) {
                        verify.push(c);
                    }
                }
            }
        }
        if let Some((nfa, groups)) = &self.starts {
            walk(nfa, text.bytes(), |p, depth| {
                let Some(g) = groups.get(p).and_then(|&i| self.groups.get(i)) else {
                    return;
                };
                for &a in &g.prefix {
                    hits.set(a);
                }
                if depth == len {
                    for &a in &g.exact {
                        hits.set(a);
                    }
                }
            });
        }
        if let Some((nfa, groups)) = &self.ends {
            walk(nfa, text.bytes().rev(), |p, _| {
                if let Some(g) = groups.get(p).and_then(|&i| self.groups.get(i)) {
                    for &a in &g.suffix {
                        hits.set(a);
                    }
                }
            });
        }
    }
}

#[derive(Debug)]
struct Complex {
    re: Regex,
    atom: u32,
    /// Whether case matters.
    cased: bool,
    /// The glob's literal pieces (folded unless `cased`; only ASCII ones when not `cased`):
    /// any value the glob matches holds each, so a value missing one needs no regex. Without
    /// `cased` the check is made only on ASCII values, where ignoring Unicode case and ASCII
    /// case agree.
    needed: Vec<String>,
}

#[derive(Debug)]
enum Check {
    Empty,
    Cidr(IpAddr, u8),
    Num(Cmp, f64),
    Date(DatePart, Cmp, i64),
    FieldRef(String, RefMode, bool),
}

/// Every predicate on one event field, compiled.
#[derive(Debug)]
pub struct FieldMatcher {
    /// The event field (`@keywords` for keyword searches).
    pub name: String,
    folded: Literals,
    cased: Literals,
    regexes: Vec<(Regex, u32)>,
    complex: Vec<Complex>,
    unfiltered: Vec<u32>,
    checks: Vec<(Check, u32)>,
    exists: Vec<u32>,
    present: Vec<u32>,
    needs_folded: bool,
    /// A keyword matcher with only `contains` literals: the event's texts are searched in one
    /// pass, joined by NUL (which no literal holds, so no match spans two texts), instead of
    /// one search per text (an EVTX record has ~50).
    joined: bool,
}

/// Reusable per-event buffers of the field matchers.
#[derive(Debug, Default)]
pub struct Buffers {
    verify: Vec<u32>,
    folded: String,
    joined: String,
}

/// [`fold`] into a reused buffer.
pub fn fold_into(text: &str, out: &mut String) {
    out.clear();
    out.reserve(text.len());
    // Runs of ASCII are lowered in bulk; only the other characters one by one (a long text with
    // one accented letter, such as an EVTX record's texts joined, stays cheap).
    let mut rest = text;
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .position(|b| !b.is_ascii())
            .unwrap_or(rest.len());
        let start = out.len();
        out.push_str(&rest[..n]);
        out[start..].make_ascii_lowercase();
        rest = &rest[n..];
        if let Some(c) = rest.chars().next() {
            out.extend(c.to_lowercase());
            rest = &rest[c.len_utf8()..];
        }
    }
}

/// The pseudo-field keyword searches run on.
pub const KEYWORDS_FIELD: &str = "@keywords";

impl FieldMatcher {
    /// An empty matcher for `name`.
    pub fn new(name: &str) -> FieldMatcher {
        FieldMatcher {
            name: name.to_owned(),
            folded: Literals {
                folded: true,
                ..Literals::default()
            },
            cased: Literals::default(),
            regexes: Vec::new(),
            complex: Vec::new(),
            unfiltered: Vec::new(),
            checks: Vec::new(),
            exists: Vec::new(),
            present: Vec::new(),
            needs_folded: false,
            joined: false,
        }
    }

    /// Adds a predicate as `atom`. Errors when a pattern cannot be compiled.
    pub fn add(&mut self, pred: &Pred, atom: u32) -> Result<(), String> {
        match pred {
            Pred::Str { glob, cased } => {
                let globs = glob
                    .expand_dashes(MAX_DASH_EXPANSION)
                    .unwrap_or_else(|| vec![glob.clone()]);
                for g in globs {
                    self.add_glob(&g, *cased, atom)?;
                }
            }
            Pred::Regex(re) => self.regexes.push((compile_regex(re)?, atom)),
            Pred::Cidr { net, prefix } => self.checks.push((Check::Cidr(*net, *prefix), atom)),
            Pred::Num { cmp, bits } => self
                .checks
                .push((Check::Num(*cmp, f64::from_bits(*bits)), atom)),
            Pred::Date { part, cmp, value } => {
                self.checks.push((Check::Date(*part, *cmp, *value), atom));
            }
            Pred::FieldRef { other, mode, cased } => self
                .checks
                .push((Check::FieldRef(other.clone(), *mode, *cased), atom)),
            Pred::Exists => self.exists.push(atom),
            Pred::Present => self.present.push(atom),
        }
        Ok(())
    }

    fn add_glob(&mut self, glob: &Glob, cased: bool, atom: u32) -> Result<(), String> {
        let key = |s: &str| if cased { s.to_owned() } else { fold(s) };
        if !cased {
            self.needs_folded = true;
        }
        let lits = if cased {
            &mut self.cased
        } else {
            &mut self.folded
        };
        match glob.shape() {
            Shape::Exact(s) if s.is_empty() => self.checks.push((Check::Empty, atom)),
            Shape::Exact(s) => lits.group(&key(&s)).exact.push(atom),
            Shape::Prefix(s) => lits.group(&key(&s)).prefix.push(atom),
            Shape::Suffix(s) => lits.group(&key(&s)).suffix.push(atom),
            Shape::Contains(s) => lits.group(&key(&s)).contains.push(atom),
            Shape::AnyValue => self.present.push(atom),
            Shape::Complex => {
                let re = compile_regex(&glob.to_regex(!cased))?;
                let idx = u32::try_from(self.complex.len()).map_err(|_| "too many patterns")?;
                let needed = glob
                    .parts()
                    .iter()
                    .filter_map(|p| match p {
                        Part::Lit(l) => Some(key(l)),
                        _ => None,
                    })
                    .filter(|l| cased || l.is_ascii())
                    .collect();
                self.complex.push(Complex {
                    re,
                    atom,
                    cased,
                    needed,
                });
                match glob.longest_literal() {
                    Some(lit) => lits.group(&key(lit)).verify.push(idx),
                    None => self.unfiltered.push(idx),
                }
            }
        }
        Ok(())
    }

    /// Heap bytes of the literal automata (for diagnostics).
    pub fn automata_bytes(&self) -> usize {
        self.folded.memory_usage() + self.cased.memory_usage()
    }

    /// Builds the automata. Called once after every `add`.
    pub fn build(&mut self) -> Result<(), String> {
        self.folded.build()?;
        self.cased.build()?;
        self.joined = self.name == KEYWORDS_FIELD
            && self.regexes.is_empty()
            && self.complex.is_empty()
            && self.unfiltered.is_empty()
            && self.checks.is_empty()
            && self.folded.only_contains()
            && self.cased.only_contains();
        Ok(())
    }

    /// Evaluates every predicate against the field's value in `event` (for [`KEYWORDS_FIELD`],
    /// the event's text); sets the atoms that hold.
    pub fn run(&self, event: &Event, hits: &mut Hits, buf: &mut Buffers) {
        if self.name == KEYWORDS_FIELD && self.joined {
            let mut joined = std::mem::take(&mut buf.joined);
            joined.clear();
            for_each_keyword_text(event, |text| {
                joined.push_str(text);
                joined.push('\0');
            });
            self.run_text(&joined, None, event, hits, buf);
            buf.joined = joined;
            return;
        }
        if self.name == KEYWORDS_FIELD {
            for_each_keyword_text(event, |text| {
                self.run_text(text, None, event, hits, buf);
            });
            return;
        }
        let Some(value) = event.get(&self.name) else {
            return;
        };
        self.run_value(value, event, hits, buf);
    }

    /// [`FieldMatcher::run`] with the field's value already looked up (never for
    /// [`KEYWORDS_FIELD`]).
    pub fn run_value(&self, value: &Value, event: &Event, hits: &mut Hits, buf: &mut Buffers) {
        for &a in &self.exists {
            hits.set(a);
        }
        for_each_leaf(value, &mut |leaf| {
            if matches!(leaf, Value::Null) {
                return;
            }
            for &a in &self.present {
                hits.set(a);
            }
            let text: Cow<'_, str> = match leaf {
                Value::Str(s) => Cow::Borrowed(s.as_str()),
                other => Cow::Owned(other.to_string()),
            };
            self.run_text(&text, Some(leaf), event, hits, buf);
        });
    }

    fn run_text(
        &self,
        text: &str,
        leaf: Option<&Value>,
        event: &Event,
        hits: &mut Hits,
        buf: &mut Buffers,
    ) {
        let verify = &mut buf.verify;
        verify.clear();
        if self.needs_folded {
            // The folded literals are lower case; when their automata ignore ASCII case, an
            // ASCII value is scanned as it is and only other text is folded first (folding
            // never makes an ASCII capital, so scanning folded text ignoring case is exact).
            if self.folded.ascii_ci && text.is_ascii() {
                self.folded.scan(text, hits, verify);
            } else {
                fold_into(text, &mut buf.folded);
                self.folded.scan(&buf.folded, hits, verify);
            }
        }
        self.cased.scan(text, hits, verify);
        // `buf.folded` holds `text` in ASCII lower case (for the literal checks below).
        let mut lowered = false;
        for &c in verify.iter().chain(&self.unfiltered) {
            let Some(cx) = self.complex.get(c as usize) else {
                continue;
            };
            if hits.get(cx.atom) {
                continue;
            }
            // Cheap substring checks of the glob's other literals before the regex.
            let missing = if cx.cased {
                cx.needed.iter().any(|l| !text.contains(l.as_str()))
            } else if text.is_ascii() && !cx.needed.is_empty() {
                if !lowered {
                    buf.folded.clear();
                    buf.folded.push_str(text);
                    buf.folded.make_ascii_lowercase();
                    lowered = true;
                }
                cx.needed.iter().any(|l| !buf.folded.contains(l.as_str()))
            } else {
                false
            };
            if !missing && cx.re.is_match(text) {
                hits.set(cx.atom);
            }
        }
        for (re, atom) in &self.regexes {
            if !hits.get(*atom) && re.is_match(text) {
                hits.set(*atom);
            }
        }
        for (check, atom) in &self.checks {
            if hits.get(*atom) {
                continue;
            }
            let ok = match check {
                Check::Empty => text.is_empty(),
                Check::Cidr(net, prefix) => {
                    leaf_ip(leaf, text).is_some_and(|ip| in_cidr(ip, *net, *prefix))
                }
                Check::Num(cmp, bound) => {
                    leaf_number(leaf, text).is_some_and(|x| cmp.holds(x, *bound))
                }
                Check::Date(part, cmp, bound) => {
                    date_part(text, *part).is_some_and(|x| cmp.holds(x as f64, *bound as f64))
                }
                Check::FieldRef(other, mode, cased) => field_ref(event, text, other, *mode, *cased),
            };
            if ok {
                hits.set(*atom);
            }
        }
    }
}

/// Compiles a regular expression with Vigil's size limit.
pub fn compile_regex(re: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(re)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let msg = e.to_string();
            let last = msg
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or(&msg);
            format!(
                "regular expression `{re}` does not compile: {}",
                last.trim()
            )
        })
}

fn for_each_leaf<'a>(value: &'a Value, f: &mut dyn FnMut(&'a Value)) {
    match value {
        Value::List(items) => {
            for i in items {
                for_each_leaf(i, f);
            }
        }
        Value::Map(_) => {}
        other => f(other),
    }
}

/// The text keyword searches look at: `message` and `event.original` when the event has them,
/// otherwise every string value (EVTX records have no message).
pub fn for_each_keyword_text(event: &Event, mut f: impl FnMut(&str)) {
    let mut any = false;
    for key in ["message", "event.original"] {
        if let Some(v) = event.get(key) {
            for_each_leaf(v, &mut |leaf| {
                if let Value::Str(s) = leaf {
                    any = true;
                    f(s);
                }
            });
        }
    }
    if any {
        return;
    }
    for (_, v) in event.fields() {
        for_each_leaf(v, &mut |leaf| {
            if let Value::Str(s) = leaf {
                f(s);
            }
        });
    }
}

fn leaf_ip(leaf: Option<&Value>, text: &str) -> Option<IpAddr> {
    if let Some(Value::Ip(ip)) = leaf {
        return Some(*ip);
    }
    let t = text.trim().trim_start_matches('[').trim_end_matches(']');
    let t = t.split('%').next().unwrap_or(t);
    t.parse::<IpAddr>().ok().map(|ip| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

/// Whether `ip` lies in `net/prefix`.
pub fn in_cidr(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let p = u32::from(prefix.min(32));
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let p = u32::from(prefix.min(128));
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn leaf_number(leaf: Option<&Value>, text: &str) -> Option<f64> {
    match leaf {
        Some(Value::Int(i)) => Some(*i as f64),
        Some(Value::Float(f)) => Some(*f),
        _ => {
            let t = text.trim();
            if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                return i64::from_str_radix(hex, 16).ok().map(|i| i as f64);
            }
            t.parse::<f64>().ok().filter(|f| f.is_finite())
        }
    }
}

fn date_part(text: &str, part: DatePart) -> Option<i64> {
    let t = Timestamp::parse(text.trim()).ok()?.to_rfc3339();
    // YYYY-MM-DDTHH:MM:SS…
    let num = |r: std::ops::Range<usize>| t.get(r).and_then(|s| s.parse::<i64>().ok());
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    Some(match part {
        DatePart::Year => y,
        DatePart::Month => m,
        DatePart::Day => d,
        DatePart::Hour => num(11..13)?,
        DatePart::Minute => num(14..16)?,
        DatePart::Week => iso_week(y, m, d),
    })
}

/// ISO 8601 week number.
fn iso_week(y: i64, m: i64, d: i64) -> i64 {
    // Days since 1970-01-01 (civil from days, Howard Hinnant).
    fn days(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }
    let weekday = |y: i64, m: i64, d: i64| (days(y, m, d) + 3).rem_euclid(7) + 1; // Monday = 1
    let weeks_in = |y: i64| {
        let jan1 = weekday(y, 1, 1);
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        if jan1 == 4 || (leap && jan1 == 3) {
            53
        } else {
            52
        }
    };
    let ordinal = days(y, m, d) - days(y, 1, 1) + 1;
    let week = (ordinal - weekday(y, m, d) + 10) / 7;
    if week < 1 {
        weeks_in(y - 1)
    } else if week > weeks_in(y) {
        1
    } else {
        week
    }
}

fn field_ref(event: &Event, text: &str, other: &str, mode: RefMode, cased: bool) -> bool {
    let Some(v) = event.get(other) else {
        return false;
    };
    let mut found = false;
    for_each_leaf(v, &mut |leaf| {
        if found || matches!(leaf, Value::Null) {
            return;
        }
        let o: Cow<'_, str> = match leaf {
            Value::Str(s) => Cow::Borrowed(s.as_str()),
            x => Cow::Owned(x.to_string()),
        };
        let (a, b): (Cow<'_, str>, Cow<'_, str>) = if cased {
            (Cow::Borrowed(text), o)
        } else {
            (Cow::Owned(fold(text)), Cow::Owned(fold(&o)))
        };
        found = match mode {
            RefMode::Exact => a == b,
            RefMode::Contains => a.contains(b.as_ref()),
            RefMode::Prefix => a.starts_with(b.as_ref()),
            RefMode::Suffix => a.ends_with(b.as_ref()),
        };
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_cidr(ip("10.1.2.3"), ip("10.0.0.0"), 8));
        assert!(!in_cidr(ip("11.1.2.3"), ip("10.0.0.0"), 8));
        assert!(in_cidr(ip("1.2.3.4"), ip("0.0.0.0"), 0));
        assert!(in_cidr(ip("fe80::1"), ip("fe80::"), 10));
        assert!(!in_cidr(ip("fe80::1"), ip("10.0.0.0"), 8));
        assert_eq!(leaf_ip(None, "::ffff:10.0.0.1"), Some(ip("10.0.0.1")));
    }

    #[test]
    fn fold_into_lowers_each_character() {
        let mut out = String::new();
        for text in [
            "",
            "ABC",
            "ÀB\u{212a}c Ünï ΣA",
            "x\u{130}y",
            "日本 ABC",
            "\0Z",
        ] {
            fold_into(text, &mut out);
            let want: String = text.chars().flat_map(char::to_lowercase).collect();
            assert_eq!(out, want, "{text}");
        }
    }

    #[test]
    fn weeks() {
        assert_eq!(iso_week(2026, 1, 1), 1);
        assert_eq!(iso_week(2021, 1, 3), 53);
        assert_eq!(iso_week(2024, 12, 30), 1);
        assert_eq!(iso_week(2020, 12, 31), 53);
        assert_eq!(iso_week(2026, 11, 22), 47);
    }
}
