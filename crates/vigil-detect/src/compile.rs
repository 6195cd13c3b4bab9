//! Compiling documents into a [`RuleSet`]: conditions into expressions over atoms, field specs
//! into atoms through the logsource's field table, atoms into shared per-field matchers.
//!
//! A rule that cannot be compiled exactly is left out with a reason ([`RuleIssue`]); it never
//! runs with part of its logic missing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use crate::condition::{self, Cond, OfTarget, Quantifier};
use crate::expr::Expr;
use crate::fieldmatch::{self, Cmp, DatePart, FieldMatcher, KEYWORDS_FIELD, Pred, RefMode};
use crate::mapping::{self, Alternative};
use crate::modifiers::{self, Modifier, Placeholders};
use crate::pattern::fold;
use crate::rule::{Detection, Document, FieldSpec, RuleMeta, SigmaFilter, SigmaRule, SigmaValue};
use crate::ruleset::{
    AltMatcher, Bucket, CompiledCorrelation, Constraints, CorrelationRef, RuleId, RuleInfo,
    RuleSet, Variant,
};

/// Settings for compilation.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// Values for `expand` placeholders (`Administrators` → `["admin", "root"]`); a rule using a
    /// placeholder without values is unsupported.
    pub placeholders: Placeholders,
}

/// How serious an issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// The document is not in the rule set.
    Unsupported,
    /// The document is in the rule set, with a caveat.
    Note,
}

/// A problem with one document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleIssue {
    /// File and document, if known.
    pub source: Option<String>,
    /// The document's title.
    pub title: String,
    /// The document's id.
    pub id: Option<String>,
    /// Unsupported or a note.
    pub kind: IssueKind,
    /// What and why.
    pub reason: String,
}

impl RuleIssue {
    fn new(meta: &RuleMeta, kind: IssueKind, reason: String) -> RuleIssue {
        RuleIssue {
            source: meta.source.clone(),
            title: meta.title.clone(),
            id: meta.id.clone(),
            kind,
            reason,
        }
    }
}

struct Builder<'o> {
    opts: &'o CompileOptions,
    atoms: HashMap<(String, Pred), u32>,
    atom_list: Vec<(String, Pred)>,
    alts: HashMap<Alternative, u32>,
    alt_list: Vec<Alternative>,
}

impl Builder<'_> {
    fn atom(&mut self, field: &str, pred: Pred) -> Expr {
        let key = (field.to_owned(), pred);
        if let Some(&a) = self.atoms.get(&key) {
            return Expr::Atom(a);
        }
        let a = self.atom_list.len() as u32;
        self.atom_list.push(key.clone());
        self.atoms.insert(key, a);
        Expr::Atom(a)
    }

    fn alt(&mut self, alt: &Alternative) -> u32 {
        if let Some(&a) = self.alts.get(alt) {
            return a;
        }
        let a = self.alt_list.len() as u32;
        self.alt_list.push(alt.clone());
        self.alts.insert(alt.clone(), a);
        a
    }
}

impl RuleSet {
    /// Compiles every document (rules, filters, correlations) with default options.
    pub fn compile(docs: Vec<Document>) -> (RuleSet, Vec<RuleIssue>) {
        RuleSet::compile_with(docs, &CompileOptions::default())
    }

    /// Compiles every document. Documents that cannot be compiled are left out and reported.
    pub fn compile_with(docs: Vec<Document>, opts: &CompileOptions) -> (RuleSet, Vec<RuleIssue>) {
        let mut issues = Vec::new();
        let mut b = Builder {
            opts,
            atoms: HashMap::new(),
            atom_list: Vec::new(),
            alts: HashMap::new(),
            alt_list: Vec::new(),
        };
        let mut rules: Vec<RuleInfo> = Vec::new();
        let mut variants: Vec<Variant> = Vec::new();
        let mut filters = Vec::new();
        let mut correlations = Vec::new();
        let mut behaviours = Vec::new();

        for doc in docs {
            match doc {
                Document::Rule(rule) => {
                    add_rule(rule, true, &mut b, &mut rules, &mut variants, &mut issues);
                }
                Document::Filter(f) => filters.push(f),
                Document::Correlation(c) => correlations.push(*c),
                Document::Behaviour(behaviour) => {
                    // The events a behaviour rule counts are chosen by a Sigma rule of its own,
                    // compiled with the others (so it shares their matchers) but never alerting.
                    let rule = SigmaRule {
                        meta: behaviour.meta.clone(),
                        detection: behaviour
                            .detection
                            .clone()
                            .unwrap_or_else(|| fields_present(&behaviour.required_fields())),
                    };
                    if let Some(idx) =
                        add_rule(rule, false, &mut b, &mut rules, &mut variants, &mut issues)
                    {
                        behaviours.push(crate::behaviour::CompiledBehaviour {
                            rule: *behaviour,
                            filter: RuleId(idx),
                        });
                    }
                }
            }
        }

        for f in &filters {
            apply_filter(f, &rules, &mut variants, &mut b, &mut issues);
            for target in &f.rules {
                for r in rules.iter_mut() {
                    if r.meta.id.as_deref() == Some(target)
                        || r.meta.name.as_deref() == Some(target)
                    {
                        r.filters
                            .push(f.meta.id.clone().unwrap_or_else(|| f.meta.title.clone()));
                    }
                }
            }
        }

        let compiled_corr = resolve_correlations(correlations, &mut rules, &mut issues);

        let mut set = assemble(rules, variants, compiled_corr, b, &mut issues);
        set.behaviour_of = vec![u32::MAX; set.rules.len()];
        for (i, c) in behaviours.iter().enumerate() {
            set.behaviour_of[c.filter.0 as usize] = i as u32;
        }
        set.behaviours = behaviours;
        (set, issues)
    }
}

/// The detection of a behaviour rule written without one: every event holding its fields.
fn fields_present(fields: &[String]) -> Detection {
    Detection {
        searches: vec![crate::rule::Search {
            name: "fields".into(),
            alternatives: vec![
                fields
                    .iter()
                    .map(|f| FieldSpec {
                        field: Some(f.clone()),
                        modifiers: vec![Modifier::Exists],
                        values: vec![SigmaValue::Bool(true)],
                    })
                    .collect(),
            ],
        }],
        conditions: vec!["fields".into()],
        timeframe: None,
    }
}

type Compiled = (Vec<(u32, Expr)>, Option<String>);

/// Compiles `rule` into the set (its variants, its info; `generate`: whether its matches are
/// alerts); its index, or `None` when it cannot be run (recorded in `issues`).
fn add_rule(
    rule: SigmaRule,
    generate: bool,
    b: &mut Builder<'_>,
    rules: &mut Vec<RuleInfo>,
    variants: &mut Vec<Variant>,
    issues: &mut Vec<RuleIssue>,
) -> Option<u32> {
    match compile_rule(&rule, b) {
        Ok((vars, note)) => {
            let idx = rules.len() as u32;
            let mut notes = Vec::new();
            if let Some(n) = note {
                issues.push(RuleIssue::new(&rule.meta, IssueKind::Note, n.clone()));
                notes.push(n);
            }
            for (alt, expr) in vars {
                variants.push(Variant {
                    rule: idx,
                    alt,
                    expr,
                });
            }
            rules.push(RuleInfo {
                meta: rule.meta,
                notes,
                generate,
                filters: Vec::new(),
            });
            Some(idx)
        }
        Err(reason) => {
            issues.push(RuleIssue::new(&rule.meta, IssueKind::Unsupported, reason));
            None
        }
    }
}

fn compile_rule(rule: &SigmaRule, b: &mut Builder<'_>) -> Result<Compiled, String> {
    let res = mapping::resolve(&rule.meta.logsource);
    let mut out = Vec::with_capacity(res.alternatives.len());
    for alt in &res.alternatives {
        let expr = compile_detection(&rule.detection, alt, b)?;
        let id = b.alt(alt);
        out.push((id, expr));
    }
    Ok((out, res.note))
}

fn apply_filter(
    f: &SigmaFilter,
    rules: &[RuleInfo],
    variants: &mut [Variant],
    b: &mut Builder<'_>,
    issues: &mut Vec<RuleIssue>,
) {
    let mut targets = HashSet::new();
    for name in &f.rules {
        let found: Vec<u32> = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.meta.id.as_deref() == Some(name) || r.meta.name.as_deref() == Some(name)
            })
            .map(|(i, _)| i as u32)
            .collect();
        if found.is_empty() {
            issues.push(RuleIssue::new(
                &f.meta,
                IssueKind::Note,
                format!("filter names rule `{name}`, which is not loaded (or not supported)"),
            ));
        }
        targets.extend(found);
    }
    // Compile once per alternative; a failure leaves every target unfiltered and says so.
    let mut per_alt: HashMap<u32, Expr> = HashMap::new();
    for v in variants.iter_mut().filter(|v| targets.contains(&v.rule)) {
        let fexpr = match per_alt.get(&v.alt) {
            Some(e) => e.clone(),
            None => {
                let alt = b.alt_list[v.alt as usize].clone();
                match compile_detection(&f.detection, &alt, b) {
                    Ok(e) => {
                        per_alt.insert(v.alt, e.clone());
                        e
                    }
                    Err(reason) => {
                        issues.push(RuleIssue::new(&f.meta, IssueKind::Unsupported, reason));
                        return;
                    }
                }
            }
        };
        let expr = std::mem::replace(&mut v.expr, Expr::Const(false));
        v.expr = Expr::and(vec![expr, Expr::negate(fexpr)]);
    }
}

fn resolve_correlations(
    correlations: Vec<crate::correlation::CorrelationRule>,
    rules: &mut [RuleInfo],
    issues: &mut Vec<RuleIssue>,
) -> Vec<CompiledCorrelation> {
    // Names and ids of the correlations themselves, for chains.
    let mut keep: Vec<bool> = vec![true; correlations.len()];
    let find_corr = |name: &str| {
        correlations.iter().position(|c| {
            c.meta.id.as_deref() == Some(name) || c.meta.name.as_deref() == Some(name)
        })
    };
    let mut refs_all = Vec::with_capacity(correlations.len());
    for (ci, c) in correlations.iter().enumerate() {
        let mut refs = Vec::new();
        for name in &c.rules {
            let rule = rules.iter().position(|r| {
                r.meta.id.as_deref() == Some(name) || r.meta.name.as_deref() == Some(name)
            });
            match (rule, find_corr(name)) {
                (Some(r), _) => refs.push(CorrelationRef::Rule(RuleId(r as u32))),
                (None, Some(other)) if other != ci => refs.push(CorrelationRef::Correlation(other)),
                _ => {
                    issues.push(RuleIssue::new(
                        &c.meta,
                        IssueKind::Unsupported,
                        format!("correlation references `{name}`, which is not loaded (or not supported)"),
                    ));
                    keep[ci] = false;
                    break;
                }
            }
        }
        refs_all.push(refs);
    }
    // Chains must not loop, and must only lead to kept correlations.
    loop {
        let mut changed = false;
        for ci in 0..correlations.len() {
            if !keep[ci] {
                continue;
            }
            let bad = refs_all[ci]
                .iter()
                .any(|r| matches!(r, CorrelationRef::Correlation(o) if !keep[*o]));
            if bad {
                keep[ci] = false;
                changed = true;
                issues.push(RuleIssue::new(
                    &correlations[ci].meta,
                    IssueKind::Unsupported,
                    "correlation references a correlation that is not supported".into(),
                ));
            }
        }
        if !changed {
            break;
        }
    }
    for ci in 0..correlations.len() {
        if keep[ci] && reaches(ci, ci, &refs_all, &mut vec![false; correlations.len()]) {
            keep[ci] = false;
            issues.push(RuleIssue::new(
                &correlations[ci].meta,
                IssueKind::Unsupported,
                "correlation chain loops back on itself".into(),
            ));
        }
    }
    // Renumber kept correlations.
    let mut new_index = vec![usize::MAX; correlations.len()];
    let mut n = 0;
    for (i, k) in keep.iter().enumerate() {
        if *k {
            new_index[i] = n;
            n += 1;
        }
    }
    let mut generate_on: HashSet<u32> = HashSet::new();
    let mut referenced: HashSet<u32> = HashSet::new();
    let mut out = Vec::new();
    for (ci, (c, refs)) in correlations.into_iter().zip(refs_all).enumerate() {
        if !keep[ci] {
            continue;
        }
        let refs: Vec<CorrelationRef> = refs
            .into_iter()
            .map(|r| match r {
                CorrelationRef::Correlation(o) => CorrelationRef::Correlation(new_index[o]),
                r => r,
            })
            .collect();
        for r in &refs {
            if let CorrelationRef::Rule(id) = r {
                referenced.insert(id.0);
                if c.generate {
                    generate_on.insert(id.0);
                }
            }
        }
        out.push(CompiledCorrelation { rule: c, refs });
    }
    for r in referenced {
        if !generate_on.contains(&r)
            && let Some(info) = rules.get_mut(r as usize)
        {
            info.generate = false;
        }
    }
    out
}

fn reaches(from: usize, target: usize, refs: &[Vec<CorrelationRef>], seen: &mut Vec<bool>) -> bool {
    for r in &refs[from] {
        if let CorrelationRef::Correlation(o) = *r {
            if o == target {
                return true;
            }
            if !seen[o] {
                seen[o] = true;
                if reaches(o, target, refs, seen) {
                    return true;
                }
            }
        }
    }
    false
}

fn assemble(
    rules: Vec<RuleInfo>,
    variants: Vec<Variant>,
    correlations: Vec<CompiledCorrelation>,
    b: Builder<'_>,
    issues: &mut Vec<RuleIssue>,
) -> RuleSet {
    let n_alts = b.alt_list.len();
    let mut atom_variants: Vec<Vec<u32>> = vec![Vec::new(); b.atom_list.len()];
    let mut always: Vec<Vec<u32>> = vec![Vec::new(); n_alts];
    let mut alt_atoms: Vec<HashSet<u32>> = vec![HashSet::new(); n_alts];
    // How many variants read each atom: a shared atom (`Image|endswith: \powershell.exe`)
    // is one many events hit.
    let mut readers: Vec<u32> = vec![0; b.atom_list.len()];
    let mut atoms = Vec::new();
    let mut variant_atoms = Vec::with_capacity(variants.len());
    for v in &variants {
        atoms.clear();
        v.expr.atoms(&mut atoms);
        atoms.sort_unstable();
        atoms.dedup();
        for &a in &atoms {
            readers[a as usize] += 1;
            alt_atoms[v.alt as usize].insert(a);
        }
        variant_atoms.push(atoms.clone());
    }
    // Each variant is a candidate only when one of its trigger atoms hits (see `trigger`); a
    // variant that can hold with no atom hit is evaluated for every event of its alternative.
    let cost = |a: u32| atom_cost(&b.atom_list[a as usize].1, readers[a as usize]);
    for (vi, (v, atoms)) in variants.iter().zip(variant_atoms).enumerate() {
        if v.expr.eval_none() {
            always[v.alt as usize].push(vi as u32);
            continue;
        }
        let triggers = trigger(&v.expr, &cost).map_or(atoms, |(t, _)| t);
        for a in triggers {
            let list = &mut atom_variants[a as usize];
            if list.last() != Some(&(vi as u32)) {
                list.push(vi as u32);
            }
        }
    }
    // Field matchers for the atoms in use.
    let mut field_index: HashMap<String, u32> = HashMap::new();
    let mut fields: Vec<FieldMatcher> = Vec::new();
    let mut atom_field: Vec<Option<u32>> = vec![None; b.atom_list.len()];
    let add_atom = |fields: &mut Vec<FieldMatcher>, fi: u32, a: usize, issues: &mut Vec<_>| {
        let (field, pred) = &b.atom_list[a];
        let added = fields[fi as usize].add(pred, a as u32);
        if let Err(e) = &added {
            // Validated when the atom was made; reaching this is a bug, not a rule problem.
            issues.push(RuleIssue {
                source: None,
                title: format!("(field {field})"),
                id: None,
                kind: IssueKind::Note,
                reason: format!("predicate dropped: {e}"),
            });
        }
        added.is_ok()
    };
    for (a, (field, _)) in b.atom_list.iter().enumerate() {
        // Keyword atoms get a matcher per alternative, below.
        if readers[a] == 0 || field == KEYWORDS_FIELD {
            continue;
        }
        let fi = *field_index.entry(field.clone()).or_insert_with(|| {
            fields.push(FieldMatcher::new(field));
            (fields.len() - 1) as u32
        });
        if add_atom(&mut fields, fi, a, issues) {
            atom_field[a] = Some(fi);
        }
    }
    // Keywords are searched in every string of an event without a message (every EVTX
    // record), so their matcher is the costliest to run. One matcher holding the keywords of
    // every rule would scan a Sysmon event for the Exchange and antivirus rules' keywords too;
    // a matcher per set of alternatives holds only the keywords that alternative's rules read
    // (a few dozen, which the automaton's SIMD prefilter skips through).
    let mut keyword_matchers: HashMap<Vec<u32>, u32> = HashMap::new();
    let mut alt_keywords: Vec<Option<u32>> = vec![None; n_alts];
    for (alt, atoms) in alt_atoms.iter().enumerate() {
        let mut kw: Vec<u32> = atoms
            .iter()
            .copied()
            .filter(|&a| b.atom_list[a as usize].0 == KEYWORDS_FIELD)
            .collect();
        if kw.is_empty() {
            continue;
        }
        kw.sort_unstable();
        let fi = match keyword_matchers.get(&kw) {
            Some(&fi) => fi,
            None => {
                let fi = fields.len() as u32;
                fields.push(FieldMatcher::new(KEYWORDS_FIELD));
                for &a in &kw {
                    add_atom(&mut fields, fi, a as usize, issues);
                }
                keyword_matchers.insert(kw, fi);
                fi
            }
        };
        alt_keywords[alt] = Some(fi);
    }
    for f in &mut fields {
        if let Err(e) = f.build() {
            issues.push(RuleIssue {
                source: None,
                title: format!("(field {})", f.name),
                id: None,
                kind: IssueKind::Note,
                reason: format!("matcher could not be built: {e}"),
            });
        }
    }
    let alt_fields: Vec<Vec<u32>> = alt_atoms
        .iter()
        .zip(&alt_keywords)
        .map(|(atoms, keywords)| {
            let mut fs: Vec<u32> = atoms
                .iter()
                .filter_map(|&a| atom_field[a as usize])
                .chain(*keywords)
                .collect();
            fs.sort_unstable();
            fs.dedup();
            fs
        })
        .collect();
    // Dispatch on each alternative's first constraint.
    let mut dispatch: BTreeMap<String, HashMap<String, Vec<u32>>> = BTreeMap::new();
    // (The alternatives of each dispatch value are sorted into a `Bucket` below.)
    let mut unconditional = Vec::new();
    let mut alts = Vec::with_capacity(n_alts);
    for (ai, alt) in b.alt_list.iter().enumerate() {
        let when: Vec<(String, Vec<String>)> = alt
            .when
            .iter()
            .map(|(f, vs)| (f.clone(), vs.iter().map(|v| fold(v)).collect()))
            .collect();
        match when.first() {
            None => unconditional.push(ai as u32),
            Some((field, values)) => {
                let table = dispatch.entry(field.clone()).or_default();
                for v in values {
                    let list = table.entry(v.clone()).or_default();
                    if !list.contains(&(ai as u32)) {
                        list.push(ai as u32);
                    }
                }
            }
        }
        alts.push(AltMatcher {
            when,
            fields: alt.fields,
        });
    }
    let dispatch = dispatch
        .into_iter()
        .map(|(field, table)| {
            let table = table
                .into_iter()
                .map(|(value, list)| {
                    let with: Vec<(u32, &Constraints)> = list
                        .iter()
                        .map(|&a| (a, alts[a as usize].when.as_slice()))
                        .collect();
                    (value, Bucket::new(&with))
                })
                .collect();
            (field, table)
        })
        .collect();
    RuleSet {
        rules,
        alts,
        dispatch,
        unconditional,
        variants,
        always,
        atom_variants,
        fields,
        alt_fields,
        keywords: {
            let mut k: Vec<u32> = keyword_matchers.into_values().collect();
            k.sort_unstable();
            k
        },
        field_index: field_index.into_iter().collect(),
        correlations,
        behaviours: Vec::new(),
        behaviour_of: Vec::new(),
        exceptions: Default::default(),
    }
}

/// How likely an atom is to hit an event, roughly: atoms that hold for almost any value
/// (`exists`, `*`, a field compared with another) cost most, short literals more than long
/// ones, and an atom many rules share (a common image name) more than a rare one.
fn atom_cost(pred: &Pred, readers: u32) -> u64 {
    let base = match pred {
        Pred::Exists | Pred::Present => 1_000_000,
        Pred::Str { glob, .. } => match glob.shape() {
            crate::pattern::Shape::AnyValue => 1_000_000,
            crate::pattern::Shape::Exact(_) => 10,
            _ => {
                let len = glob.longest_literal().map_or(0, str::len);
                if len < 4 { 10_000 } else { 1000 / len as u64 }
            }
        },
        Pred::Regex(_) | Pred::FieldRef { .. } => 10_000,
        Pred::Cidr { .. } | Pred::Num { .. } | Pred::Date { .. } => 1000,
    };
    base + u64::from(readers)
}

/// Trigger atoms of an expression: a set of atoms at least one of which hits whenever the
/// expression holds, with its cost (the sum of [`atom_cost`]s); `None` when the expression can
/// hold with none of its atoms hitting (a negation) or no such set is known. Of a conjunction,
/// the cheapest conjunct's set (every conjunct must hold); of a disjunction or `N of`, the
/// union of every item's set (one of them must hold).
fn trigger(e: &Expr, cost: &dyn Fn(u32) -> u64) -> Option<(Vec<u32>, u64)> {
    match e {
        Expr::Atom(a) => Some((vec![*a], cost(*a))),
        Expr::Const(false) => Some((Vec::new(), 0)),
        Expr::Const(true) | Expr::Not(_) => None,
        Expr::And(items) => items
            .iter()
            .filter_map(|i| trigger(i, cost))
            .min_by_key(|(_, c)| *c),
        Expr::Or(items) | Expr::AtLeast(_, items) => {
            let mut all = Vec::new();
            let mut total = 0u64;
            for i in items {
                let (t, c) = trigger(i, cost)?;
                all.extend(t);
                total = total.saturating_add(c);
            }
            all.sort_unstable();
            all.dedup();
            Some((all, total))
        }
    }
}

/// Compiles a detection under one logsource alternative.
fn compile_detection(
    det: &Detection,
    alt: &Alternative,
    b: &mut Builder<'_>,
) -> Result<Expr, String> {
    let mut cache: HashMap<&str, Expr> = HashMap::new();
    let mut conds = Vec::with_capacity(det.conditions.len());
    for text in &det.conditions {
        let cond = condition::parse(text).map_err(|e| format!("condition `{text}`: {e}"))?;
        conds.push(resolve_cond(&cond, det, alt, b, &mut cache)?);
    }
    Ok(Expr::or(conds))
}

fn search_expr<'d>(
    name: &'d str,
    det: &'d Detection,
    alt: &Alternative,
    b: &mut Builder<'_>,
    cache: &mut HashMap<&'d str, Expr>,
) -> Result<Expr, String> {
    if let Some(e) = cache.get(name) {
        return Ok(e.clone());
    }
    let search = det
        .searches
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("condition names `{name}`, which the detection does not define"))?;
    let mut alts = Vec::with_capacity(search.alternatives.len());
    for sel in &search.alternatives {
        let mut items = Vec::with_capacity(sel.len());
        for spec in sel {
            items.push(
                compile_spec(spec, alt, b).map_err(|e| format!("search `{}`: {e}", search.name))?,
            );
        }
        alts.push(Expr::and(items));
    }
    let e = Expr::or(alts);
    cache.insert(&search.name, e.clone());
    Ok(e)
}

fn resolve_cond<'d>(
    cond: &Cond,
    det: &'d Detection,
    alt: &Alternative,
    b: &mut Builder<'_>,
    cache: &mut HashMap<&'d str, Expr>,
) -> Result<Expr, String> {
    Ok(match cond {
        Cond::Ident(name) => search_expr_by_name(name, det, alt, b, cache)?,
        Cond::Not(inner) => Expr::negate(resolve_cond(inner, det, alt, b, cache)?),
        Cond::And(items) => Expr::and(
            items
                .iter()
                .map(|c| resolve_cond(c, det, alt, b, cache))
                .collect::<Result<_, _>>()?,
        ),
        Cond::Or(items) => Expr::or(
            items
                .iter()
                .map(|c| resolve_cond(c, det, alt, b, cache))
                .collect::<Result<_, _>>()?,
        ),
        Cond::Of(quant, target) => {
            let names: Vec<&'d str> = det
                .searches
                .iter()
                .filter(|s| match target {
                    OfTarget::Them => !s.name.starts_with('_'),
                    OfTarget::Pattern(p) => condition::name_matches(p, &s.name),
                })
                .map(|s| s.name.as_str())
                .collect();
            if names.is_empty() {
                let what = match target {
                    OfTarget::Them => "them".to_owned(),
                    OfTarget::Pattern(p) => p.clone(),
                };
                return Err(format!("`of {what}` matches no search identifier"));
            }
            let mut items = Vec::with_capacity(names.len());
            for n in names {
                items.push(search_expr(n, det, alt, b, cache)?);
            }
            match quant {
                Quantifier::Any => Expr::or(items),
                Quantifier::All => Expr::and(items),
                Quantifier::AtLeast(n) => Expr::at_least(*n, items),
            }
        }
    })
}

fn search_expr_by_name<'d>(
    name: &str,
    det: &'d Detection,
    alt: &Alternative,
    b: &mut Builder<'_>,
    cache: &mut HashMap<&'d str, Expr>,
) -> Result<Expr, String> {
    let search = det
        .searches
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("condition names `{name}`, which the detection does not define"))?;
    search_expr(&search.name, det, alt, b, cache)
}

fn has(mods: &[Modifier], m: Modifier) -> bool {
    mods.contains(&m)
}

/// Compiles one `field|modifiers: values` entry.
fn compile_spec(spec: &FieldSpec, alt: &Alternative, b: &mut Builder<'_>) -> Result<Expr, String> {
    let mods = &spec.modifiers;
    let field = match &spec.field {
        Some(f) => alt.fields.map(f),
        None => KEYWORDS_FIELD.to_owned(),
    };
    let label = spec.field.as_deref().unwrap_or("keywords");

    if has(mods, Modifier::Exists) {
        let [value] = spec.values.as_slice() else {
            return Err(format!("`{label}|exists` takes one boolean"));
        };
        let want = match value {
            SigmaValue::Bool(b) => *b,
            SigmaValue::Str(s)
                if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("yes") =>
            {
                true
            }
            SigmaValue::Str(s)
                if s.eq_ignore_ascii_case("false") || s.eq_ignore_ascii_case("no") =>
            {
                false
            }
            _ => return Err(format!("`{label}|exists` takes true or false")),
        };
        if spec.field.is_none() {
            return Err("`exists` needs a field".into());
        }
        let atom = b.atom(&field, Pred::Exists);
        return Ok(if want { atom } else { Expr::negate(atom) });
    }

    let mut per_value = Vec::with_capacity(spec.values.len());
    for value in &spec.values {
        per_value.push(value_expr(
            value,
            mods,
            &field,
            label,
            spec.field.is_none(),
            alt,
            b,
        )?);
    }
    Ok(if has(mods, Modifier::Neq) {
        // None of the values.
        Expr::and(per_value.into_iter().map(Expr::negate).collect())
    } else if has(mods, Modifier::All) {
        Expr::and(per_value)
    } else {
        Expr::or(per_value)
    })
}

fn number_of(value: &SigmaValue) -> Option<f64> {
    match value {
        SigmaValue::Int(i) => Some(*i as f64),
        SigmaValue::Float(f) => Some(*f),
        SigmaValue::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn value_expr(
    value: &SigmaValue,
    mods: &[Modifier],
    field: &str,
    label: &str,
    keyword: bool,
    alt: &Alternative,
    b: &mut Builder<'_>,
) -> Result<Expr, String> {
    if *value == SigmaValue::Null {
        if keyword {
            return Err("a keyword cannot be null".into());
        }
        return Ok(Expr::negate(b.atom(field, Pred::Present)));
    }
    let cmp_of = |mods: &[Modifier]| {
        if has(mods, Modifier::Lt) {
            Some(Cmp::Lt)
        } else if has(mods, Modifier::Lte) {
            Some(Cmp::Lte)
        } else if has(mods, Modifier::Gt) {
            Some(Cmp::Gt)
        } else if has(mods, Modifier::Gte) {
            Some(Cmp::Gte)
        } else {
            None
        }
    };
    let date_part = [
        (Modifier::Minute, DatePart::Minute),
        (Modifier::Hour, DatePart::Hour),
        (Modifier::Day, DatePart::Day),
        (Modifier::Week, DatePart::Week),
        (Modifier::Month, DatePart::Month),
        (Modifier::Year, DatePart::Year),
    ]
    .into_iter()
    .find(|(m, _)| has(mods, *m))
    .map(|(_, p)| p);
    if let Some(part) = date_part {
        let n = number_of(value)
            .filter(|n| n.fract() == 0.0)
            .ok_or_else(|| format!("`{label}`: a date part needs an integer"))?;
        return Ok(b.atom(
            field,
            Pred::Date {
                part,
                cmp: cmp_of(mods).unwrap_or(Cmp::Eq),
                value: n as i64,
            },
        ));
    }
    if let Some(cmp) = cmp_of(mods) {
        let n =
            number_of(value).ok_or_else(|| format!("`{label}`: lt/lte/gt/gte need a number"))?;
        return Ok(b.atom(
            field,
            Pred::Num {
                cmp,
                bits: n.to_bits(),
            },
        ));
    }
    let Some(text) = value.text() else {
        return Err(format!("`{label}`: value cannot be used"));
    };
    if has(mods, Modifier::Cidr) {
        let (net, prefix) = parse_cidr(&text)
            .ok_or_else(|| format!("`{label}|cidr`: `{text}` is not a network"))?;
        return Ok(b.atom(field, Pred::Cidr { net, prefix }));
    }
    if has(mods, Modifier::Re) {
        let mut flags = String::new();
        if has(mods, Modifier::ReIgnoreCase) {
            flags.push('i');
        }
        if has(mods, Modifier::ReMultiLine) {
            flags.push('m');
        }
        if has(mods, Modifier::ReDotAll) {
            flags.push('s');
        }
        let text = crate::pcre::ascii_classes(&text);
        let re = if flags.is_empty() {
            text
        } else {
            format!("(?{flags}){text}")
        };
        fieldmatch::compile_regex(&re)?;
        return Ok(b.atom(field, Pred::Regex(re)));
    }
    let cased = has(mods, Modifier::Cased);
    if has(mods, Modifier::FieldRef) {
        if keyword {
            return Err("`fieldref` needs a field".into());
        }
        let other = alt.fields.map(&text);
        let mode = if has(mods, Modifier::Contains) {
            RefMode::Contains
        } else if has(mods, Modifier::StartsWith) {
            RefMode::Prefix
        } else if has(mods, Modifier::EndsWith) {
            RefMode::Suffix
        } else {
            RefMode::Exact
        };
        return Ok(b.atom(field, Pred::FieldRef { other, mode, cased }));
    }
    // Plain strings (and numbers/booleans compared as text).
    let mut mods = mods.to_vec();
    if keyword
        && !has(&mods, Modifier::StartsWith)
        && !has(&mods, Modifier::EndsWith)
        && !has(&mods, Modifier::Contains)
    {
        mods.push(Modifier::Contains);
    }
    let t = modifiers::transform(&text, &mods, &b.opts.placeholders)
        .map_err(|e| format!("`{label}`: {e}"))?;
    let cased = cased || t.encoded;
    let items = t
        .globs
        .into_iter()
        .map(|glob| b.atom(field, Pred::Str { glob, cased }))
        .collect();
    Ok(Expr::or(items))
}

/// Parses `a.b.c.d/n` or `v6::/n` (a bare address is a /32 or /128).
pub fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let text = text.trim();
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p.trim().parse::<u8>().ok()?)),
        None => (text, None),
    };
    let ip: IpAddr = addr.trim().parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    if prefix > max {
        return None;
    }
    Some((ip, prefix))
}
