//! [`RuleSet`]: every compiled rule, and matching one event against all of them.
//!
//! Per event: (1) find the logsource alternatives the event belongs to (a hash lookup on a
//! dispatch field such as `Channel`, then the remaining constraints); (2) run the shared matcher
//! of every field those alternatives' rules read, which sets atom bits; (3) evaluate only the
//! rules that had an atom hit (plus the few whose condition can hold with no hit, such as
//! `not selection`). Nothing here does I/O or allocates per rule.

use std::collections::HashMap;
use std::fmt;

/// The maps looked up once or more per event. Their keys come from the rules; an event's
/// names and values are only looked up, never inserted, so a hash without per-process keys
/// (Fx, several times cheaper than SipHash on short keys) cannot be flooded by input.
pub(crate) type FastMap<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;

use vigil_event::{Event, Value};

use crate::correlation::CorrelationRule;
use crate::expr::Expr;
use crate::fieldmatch::{Buffers, FieldMatcher, Hits, fold_into};
use crate::rule::RuleMeta;

/// A compiled detection rule's number in its [`RuleSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u32);

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a compiled rule is, for alerts and listings.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleInfo {
    /// Title, id, level, tags (ATT&CK included), logsource, description, source file.
    pub meta: RuleMeta,
    /// Warnings from compilation (for example a logsource Vigil's table does not know, so the
    /// rule applies to every event).
    pub notes: Vec<String>,
    /// Whether a match of this rule is an alert on its own. False when correlations reference
    /// the rule and none of them sets `generate: true`.
    pub generate: bool,
    /// The ids of filters that apply to this rule.
    pub filters: Vec<String>,
}

/// A logsource alternative's constraints: `(field, folded values)`, every one must hold.
pub(crate) type Constraints = [(String, Vec<String>)];

/// One rule under one logsource alternative.
#[derive(Debug)]
pub(crate) struct Variant {
    pub rule: u32,
    pub alt: u32,
    pub expr: Expr,
}

/// The constraints of one logsource alternative, with folded values.
#[derive(Debug)]
pub(crate) struct AltMatcher {
    pub when: Vec<(String, Vec<String>)>,
    pub fields: crate::mapping::FieldTable,
}

/// The logsource alternatives whose first constraint one value of a dispatch field satisfies.
/// Most share their second constraint's field (Sysmon's alternatives all name an `EventID`),
/// so those are found by a second lookup on that field's value instead of being checked one by
/// one: a Sysmon event looks at the one or two alternatives of its own event id, not at the
/// two dozen of its channel.
#[derive(Debug, Default)]
pub(crate) struct Bucket {
    /// Alternatives checked one by one (their first constraint holds).
    pub direct: Vec<u32>,
    /// The second constraint's field → folded value → alternatives whose first two
    /// constraints hold.
    pub second: Option<(String, FastMap<String, Vec<u32>>)>,
}

impl Bucket {
    /// Sorts `alts` (each with its folded constraints) into a bucket.
    pub(crate) fn new(alts: &[(u32, &Constraints)]) -> Bucket {
        // The field most of them constrain second, if any.
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (_, when) in alts {
            if let Some((f, _)) = when.get(1) {
                *counts.entry(f.as_str()).or_default() += 1;
            }
        }
        let second = counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
            .filter(|&(_, n)| n >= 2)
            .map(|(f, _)| f.to_owned());
        let mut bucket = Bucket::default();
        let mut table: FastMap<String, Vec<u32>> = FastMap::default();
        for &(a, when) in alts {
            match (&second, when.get(1)) {
                (Some(field), Some((f, values))) if f == field => {
                    for v in values {
                        let list = table.entry(v.clone()).or_default();
                        if !list.contains(&a) {
                            list.push(a);
                        }
                    }
                }
                _ => bucket.direct.push(a),
            }
        }
        bucket.second = second.map(|f| (f, table));
        bucket
    }
}

/// Scratch memory for [`RuleSet::matches_with`]; reuse one per thread to avoid allocating per
/// event.
#[derive(Debug, Default)]
pub struct Scratch {
    hits: Hits,
    buffers: Buffers,
    folded: String,
    text: String,
    folded2: String,
    text2: String,
    alt_on: Vec<bool>,
    alts: Vec<u32>,
    field_on: Vec<bool>,
    fields: Vec<u32>,
    variant_on: Vec<bool>,
    variants: Vec<u32>,
    rule_on: Vec<bool>,
    result: Vec<RuleId>,
}

impl Scratch {
    /// Scratch space sized for `set`.
    pub fn new(set: &RuleSet) -> Scratch {
        Scratch {
            hits: Hits::new(set.atom_variants.len()),
            buffers: Buffers::default(),
            folded: String::new(),
            text: String::new(),
            folded2: String::new(),
            text2: String::new(),
            alt_on: vec![false; set.alts.len()],
            alts: Vec::new(),
            field_on: vec![false; set.fields.len()],
            fields: Vec::new(),
            variant_on: vec![false; set.variants.len()],
            variants: Vec::new(),
            rule_on: vec![false; set.rules.len()],
            result: Vec::new(),
        }
    }

    fn fits(&self, set: &RuleSet) -> bool {
        self.alt_on.len() == set.alts.len()
            && self.field_on.len() == set.fields.len()
            && self.variant_on.len() == set.variants.len()
            && self.rule_on.len() == set.rules.len()
    }
}

/// A compiled correlation, with its references resolved.
#[derive(Debug, Clone)]
pub struct CompiledCorrelation {
    /// The rule as written.
    pub rule: CorrelationRule,
    /// Each entry of `rule.rules`, resolved.
    pub refs: Vec<CorrelationRef>,
}

/// What a correlation's `rules` entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrelationRef {
    /// A detection rule.
    Rule(RuleId),
    /// Another correlation (by index in [`RuleSet::correlations`]).
    Correlation(usize),
}

/// Every compiled rule, matched against events together.
#[derive(Debug)]
pub struct RuleSet {
    pub(crate) rules: Vec<RuleInfo>,
    pub(crate) alts: Vec<AltMatcher>,
    /// dispatch field → folded value → alternatives whose first constraint it satisfies.
    pub(crate) dispatch: Vec<(String, FastMap<String, Bucket>)>,
    /// Alternatives without constraints.
    pub(crate) unconditional: Vec<u32>,
    pub(crate) variants: Vec<Variant>,
    /// Per alternative: variants that must be evaluated even when none of their atoms hit.
    pub(crate) always: Vec<Vec<u32>>,
    /// Per atom: the variants that read it.
    pub(crate) atom_variants: Vec<Vec<u32>>,
    pub(crate) fields: Vec<FieldMatcher>,
    /// Per alternative: the field matchers its variants read.
    pub(crate) alt_fields: Vec<Vec<u32>>,
    /// Field matcher by event field name (the keyword pseudo-field excluded).
    pub(crate) field_index: FastMap<String, u32>,
    /// The keyword pseudo-field's matchers (one per set of alternatives whose rules have
    /// keywords, holding only their keywords).
    pub(crate) keywords: Vec<u32>,
    pub(crate) correlations: Vec<CompiledCorrelation>,
    /// Behaviour rules, each with the hidden rule choosing its events.
    pub(crate) behaviours: Vec<crate::behaviour::CompiledBehaviour>,
    /// Per rule: the behaviour rule it chooses events for (`u32::MAX`: none).
    pub(crate) behaviour_of: Vec<u32>,
    /// Exceptions applied where alerts are made ([`crate::Evaluator`]).
    pub(crate) exceptions: crate::exceptions::Exceptions,
}

impl RuleSet {
    /// The rules matching `event` (each once, in rule order).
    pub fn matches(&self, event: &Event) -> Vec<RuleId> {
        let mut scratch = Scratch::new(self);
        self.matches_with(event, &mut scratch).to_vec()
    }

    /// Like [`RuleSet::matches`], reusing `scratch` (made by [`Scratch::new`] for this set; a
    /// scratch made for another set is resized).
    pub fn matches_with<'s>(&self, event: &Event, scratch: &'s mut Scratch) -> &'s [RuleId] {
        if !scratch.fits(self) {
            *scratch = Scratch::new(self);
        }
        let s = scratch;
        s.hits.clear();
        for &a in &s.alts {
            s.alt_on[a as usize] = false;
        }
        s.alts.clear();
        for &f in &s.fields {
            s.field_on[f as usize] = false;
        }
        s.fields.clear();
        for &v in &s.variants {
            s.variant_on[v as usize] = false;
        }
        s.variants.clear();
        for r in &s.result {
            s.rule_on[r.0 as usize] = false;
        }
        s.result.clear();

        // 1. Logsource alternatives.
        for &a in &self.unconditional {
            s.alt_on[a as usize] = true;
            s.alts.push(a);
        }
        for (field, table) in &self.dispatch {
            let Some(value) = event.get(field) else {
                continue;
            };
            let folded = &mut s.folded;
            let text_buf = &mut s.text;
            let (folded2, text2) = (&mut s.folded2, &mut s.text2);
            let (alt_on, alts) = (&mut s.alt_on, &mut s.alts);
            let mut add = |a: u32, skip: usize| {
                if !alt_on[a as usize] && self.alt_holds(a, event, skip) {
                    alt_on[a as usize] = true;
                    alts.push(a);
                }
            };
            for_each_text(value, text_buf, &mut |text| {
                fold_into(text, folded);
                let Some(bucket) = table.get(folded.as_str()) else {
                    return;
                };
                // The first constraint is the one dispatched on: it holds.
                for &a in &bucket.direct {
                    add(a, 1);
                }
                if let Some((field2, table2)) = &bucket.second
                    && let Some(value2) = event.get(field2)
                {
                    for_each_text(value2, text2, &mut |text| {
                        fold_into(text, folded2);
                        for &a in table2.get(folded2.as_str()).into_iter().flatten() {
                            // The first two constraints hold.
                            add(a, 2);
                        }
                    });
                }
            });
        }
        if s.alts.is_empty() {
            return &s.result;
        }
        // 2. Field matchers.
        for &a in &s.alts {
            for &f in &self.alt_fields[a as usize] {
                if !s.field_on[f as usize] {
                    s.field_on[f as usize] = true;
                    s.fields.push(f);
                }
            }
        }
        if s.fields.len() * 4 > event.len() {
            // Not many more event fields than fields to scan (the usual case with many rules):
            // look each event field up among the matchers (one Fx hash lookup) instead of each
            // matcher in the event (a binary search comparing names, ~4 times the cost).
            for (name, value) in event.fields() {
                if let Some(&f) = self.field_index.get(name)
                    && s.field_on[f as usize]
                {
                    self.fields[f as usize].run_value(value, event, &mut s.hits, &mut s.buffers);
                }
            }
            for &k in &self.keywords {
                if s.field_on[k as usize] {
                    self.fields[k as usize].run(event, &mut s.hits, &mut s.buffers);
                }
            }
        } else {
            for &f in &s.fields {
                self.fields[f as usize].run(event, &mut s.hits, &mut s.buffers);
            }
        }
        // 3. Candidate variants: those with a hit, and those that can hold without one.
        for &atom in s.hits.list() {
            for &v in &self.atom_variants[atom as usize] {
                let var = &self.variants[v as usize];
                if s.alt_on[var.alt as usize] && !s.variant_on[v as usize] {
                    s.variant_on[v as usize] = true;
                    s.variants.push(v);
                }
            }
        }
        for &a in &s.alts {
            for &v in &self.always[a as usize] {
                if !s.variant_on[v as usize] {
                    s.variant_on[v as usize] = true;
                    s.variants.push(v);
                }
            }
        }
        for &v in &s.variants {
            let var = &self.variants[v as usize];
            if !s.rule_on[var.rule as usize] && var.expr.eval(&s.hits) {
                s.rule_on[var.rule as usize] = true;
                s.result.push(RuleId(var.rule));
            }
        }
        s.result.sort_unstable();
        &s.result
    }

    /// Whether the event whose canonical bytes are `bytes` can match any rule of the set,
    /// read without decoding it: false only when no rule's logsource admits it — no
    /// alternative without constraints, and no dispatch field holding a text the dispatch
    /// table knows. Such an event matches nothing ([`RuleSet::matches_with`] finds no
    /// alternative for it), so a follower need not decode it. True is "decode and see": a
    /// dispatch field holding anything but a text, or bytes the walk cannot read.
    pub fn may_match_canonical(&self, bytes: &[u8]) -> bool {
        if !self.unconditional.is_empty() {
            return true;
        }
        self.dispatch.iter().any(
            |(field, table)| match vigil_event::peek::peek(bytes, field) {
                vigil_event::peek::Peeked::Absent => false,
                vigil_event::peek::Peeked::Str(text) => {
                    with_folded(text, |folded| table.contains_key(folded))
                }
                vigil_event::peek::Peeked::Other => true,
            },
        )
    }

    /// Whether the constraints of `alt` from the `skip`-th on hold for `event`.
    /// The rules matching `event` the straightforward way: every rule of every logsource
    /// alternative the event belongs to is evaluated, with every field its rules read scanned,
    /// whether or not any of its atoms hit. [`RuleSet::matches`] must agree with this on every
    /// event; it exists for that check (the differential tests) and is much slower.
    pub fn matches_exhaustive(&self, event: &Event) -> Vec<RuleId> {
        let mut hits = Hits::new(self.atom_variants.len());
        let mut buffers = Buffers::default();
        let mut alts: Vec<u32> = self.unconditional.clone();
        for (ai, alt) in self.alts.iter().enumerate() {
            if alt.when.is_empty() {
                continue;
            }
            // Every constraint, the dispatched one included, checked as written.
            if self.alt_holds(ai as u32, event, 0) {
                alts.push(ai as u32);
            }
        }
        let mut fields: Vec<u32> = alts
            .iter()
            .flat_map(|&a| self.alt_fields[a as usize].iter().copied())
            .collect();
        fields.sort_unstable();
        fields.dedup();
        for f in fields {
            self.fields[f as usize].run(event, &mut hits, &mut buffers);
        }
        let mut on = vec![false; self.alts.len()];
        for &a in &alts {
            on[a as usize] = true;
        }
        let mut out: Vec<RuleId> = self
            .variants
            .iter()
            .filter(|v| on[v.alt as usize] && v.expr.eval(&hits))
            .map(|v| RuleId(v.rule))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Heap bytes of every field's literal automata (for diagnostics).
    pub fn automata_bytes(&self) -> usize {
        self.fields.iter().map(FieldMatcher::automata_bytes).sum()
    }

    fn alt_holds(&self, alt: u32, event: &Event, skip: usize) -> bool {
        let mut buf = String::new();
        self.alts[alt as usize]
            .when
            .iter()
            .skip(skip)
            .all(|(field, values)| {
                let Some(v) = event.get(field) else {
                    return false;
                };
                let mut ok = false;
                for_each_text(v, &mut buf, &mut |t| {
                    ok = ok
                        || values.iter().any(|x| x.eq_ignore_ascii_case(t))
                        || (!t.is_ascii() && values.contains(&crate::pattern::fold(t)));
                });
                ok
            })
    }

    /// The first logsource alternative of `rule` that `event` belongs to, if any (for
    /// [`crate::trace`]).
    pub(crate) fn logsource_applies(&self, rule: RuleId, event: &Event) -> Option<u32> {
        self.variants
            .iter()
            .filter(|v| v.rule == rule.0)
            .map(|v| v.alt)
            .find(|&a| self.unconditional.contains(&a) || self.alt_holds(a, event, 0))
    }

    /// A compiled rule's description.
    pub fn rule(&self, id: RuleId) -> Option<&RuleInfo> {
        self.rules.get(id.0 as usize)
    }

    /// Every compiled rule with its id.
    pub fn rules(&self) -> impl Iterator<Item = (RuleId, &RuleInfo)> {
        self.rules
            .iter()
            .enumerate()
            .map(|(i, r)| (RuleId(i as u32), r))
    }

    /// Number of compiled detection rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether no rule compiled.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule with this `id` (or `name`), if compiled.
    pub fn find(&self, id_or_name: &str) -> Option<RuleId> {
        self.rules
            .iter()
            .position(|r| {
                r.meta.id.as_deref() == Some(id_or_name)
                    || r.meta.name.as_deref() == Some(id_or_name)
            })
            .map(|i| RuleId(i as u32))
    }

    /// The value of a Sigma field in an event a rule matched: the field as named, else as the
    /// rule's logsource alternatives rename it (`User` → `SubjectUserName` for Security 4688).
    pub fn field_value<'e>(
        &self,
        rule: RuleId,
        sigma_field: &str,
        event: &'e Event,
    ) -> Option<&'e Value> {
        if let Some(v) = event.get(sigma_field) {
            return Some(v);
        }
        self.variants
            .iter()
            .filter(|v| v.rule == rule.0)
            .find_map(|v| {
                let alt = self.alts.get(v.alt as usize)?;
                event.get(&alt.fields.map(sigma_field))
            })
    }

    /// The exceptions in force (none unless [`RuleSet::set_exceptions`] gave some).
    pub fn exceptions(&self) -> &crate::exceptions::Exceptions {
        &self.exceptions
    }

    /// Sets the exceptions [`crate::Evaluator`] applies.
    pub fn set_exceptions(&mut self, exceptions: crate::exceptions::Exceptions) {
        self.exceptions = exceptions;
    }

    /// The compiled correlation rules.
    pub fn correlations(&self) -> &[CompiledCorrelation] {
        &self.correlations
    }

    /// The compiled behaviour rules (`new_terms`, `outlier`, `peer_outlier`).
    pub fn behaviours(&self) -> &[crate::behaviour::CompiledBehaviour] {
        &self.behaviours
    }

    /// The behaviour rule whose events the rule `id` chooses, if any.
    pub fn behaviour_of(&self, id: RuleId) -> Option<usize> {
        self.behaviour_of
            .get(id.0 as usize)
            .filter(|&&b| b != u32::MAX)
            .map(|&b| b as usize)
    }

    /// Sizes, for diagnostics: (rules, logsource alternatives, atoms, field matchers).
    pub fn stats(&self) -> (usize, usize, usize, usize) {
        (
            self.rules.len(),
            self.alts.len(),
            self.atom_variants.len(),
            self.fields.len(),
        )
    }
}

/// Calls `f` with the text of each leaf of `value` (numbers and addresses written into `buf`).
fn for_each_text(value: &Value, buf: &mut String, f: &mut dyn FnMut(&str)) {
    match value {
        Value::Str(s) => f(s),
        Value::List(items) => {
            for i in items {
                for_each_text(i, buf, f);
            }
        }
        Value::Null | Value::Map(_) => {}
        other => {
            use std::fmt::Write;
            buf.clear();
            let _ = write!(buf, "{other}");
            f(buf);
        }
    }
}

/// The longest ASCII text [`with_folded`] folds on the stack.
const FOLD_ON_STACK: usize = 64;

/// Calls `f` with `text` folded as [`fold_into`] folds it, without allocating on the
/// detector's hot path ([`RuleSet::may_match_canonical`] runs once per event): ASCII text
/// already in lower case is passed as is, short ASCII text is folded into a stack buffer, and
/// only longer or non-ASCII text is folded into a fresh `String`.
fn with_folded<R>(text: &str, f: impl FnOnce(&str) -> R) -> R {
    if text.is_ascii() {
        if !text.bytes().any(|b| b.is_ascii_uppercase()) {
            return f(text);
        }
        if text.len() <= FOLD_ON_STACK {
            let mut buf = [0u8; FOLD_ON_STACK];
            let buf = &mut buf[..text.len()];
            buf.copy_from_slice(text.as_bytes());
            buf.make_ascii_lowercase();
            // ASCII lowered stays ASCII, so this is always valid UTF-8.
            if let Ok(folded) = std::str::from_utf8(buf) {
                return f(folded);
            }
        }
    }
    let mut folded = String::new();
    fold_into(text, &mut folded);
    f(&folded)
}

#[cfg(test)]
mod fold_tests {
    use super::*;

    /// The allocation-free fold agrees with [`fold_into`] on every kind of text: lower case,
    /// mixed case short and past the stack buffer, and non-ASCII (whose lower case may differ
    /// in length).
    #[test]
    fn with_folded_folds_as_fold_into_does() {
        let long = "Microsoft-Windows-Security-Auditing".repeat(3);
        for text in [
            "",
            "linux",
            "Linux",
            "SSHD",
            "windows",
            &"x".repeat(FOLD_ON_STACK),
            &"X".repeat(FOLD_ON_STACK),
            &"X".repeat(FOLD_ON_STACK + 1),
            &long,
            "Ünïcödé",
            "İstanbul",
            "ΣΊΣΥΦΟΣ",
        ] {
            let mut expected = String::new();
            fold_into(text, &mut expected);
            assert_eq!(with_folded(text, str::to_owned), expected, "{text:?}");
        }
    }
}
