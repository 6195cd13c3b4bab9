//! # vigil-detect: Sigma detection for Vigil
//!
//! Sigma is Vigil's native rule format. This crate is the pure core: it loads Sigma rules
//! (detection rules, v2 filters and v2 correlations; single- and multi-document YAML), compiles
//! them together into one [`RuleSet`], and says which rules an [`Event`](vigil_event::Event)
//! matches. It does no I/O except in [`report`], which walks a directory for
//! `vigil rules check`.
//!
//! ## Design
//!
//! * **Loading** (`yaml`, [`rule`]): YAML is read with serde-saphyr (bounded, panic-free) into a
//!   plain tree, then interpreted by hand into [`Document`]s, so every malformed rule gets a
//!   precise reason and nothing panics. Sigma v1 collections (`action: global`) are merged.
//! * **Modifiers** ([`modifiers`], [`pattern`]): a value runs through its transformation
//!   modifiers in order (`windash`, `base64`, `base64offset`, `utf16le/be`, `wide`, `expand`)
//!   and becomes one or more Sigma strings (`*`/`?` wildcards, `\` escapes); `contains`,
//!   `startswith` and `endswith` add wildcards. Type modifiers (`re` with `i`/`m`/`s`, `cidr`,
//!   `exists`, `fieldref`, `lt`/`lte`/`gt`/`gte`, `neq`, `cased`, date parts) become their own
//!   predicates. Matching is case-insensitive unless `cased` — or the value was encoded (base64
//!   text is case-significant).
//! * **Conditions** ([`condition`]): `and`/`or`/`not`, parentheses, `1 of X*`, `all of X*`,
//!   `N of X*`, `them`. v1 aggregations (`| count()`) and `near` are reported as unsupported:
//!   v2 expresses them as correlations.
//! * **Logsources and fields** ([`mapping`]): a data table (documented there) resolves a rule's
//!   logsource to alternatives — which events it applies to (EVTX `Channel` + `EventID`,
//!   `vigil.sourcetype`, `process.name`, `event.dataset` …) and how Sigma field names become
//!   Vigil's (`cs-uri-query` → `url.original`, Security 4688's `NewProcessName` for `Image` …).
//!   A rule compiles once per alternative. A logsource the table does not know applies to every
//!   event, and the compile issues say so.
//! * **Compilation** ([`compile`]): each field spec becomes *atoms* — positive predicates on one
//!   event field, shared by every rule that uses them (`Image|endswith: '\cmd.exe'` is one atom
//!   however many rules say it). `null`, `exists: false` and `neq` are negations of atoms. A
//!   rule is an [`Expr`](expr::Expr) over atoms; filters are ANDed in as `and not filter`.
//! * **Matching** (`fieldmatch`, [`ruleset`]): per event field, every literal of every rule is
//!   searched at once: `contains` literals with one Aho-Corasick automaton, exact and prefix
//!   literals by one anchored trie walk from the value's start, suffix literals by one over the
//!   reversed value (complex wildcards prefiltered by their longest literal, then a regex),
//!   regexes one by one behind their own prefilters. A rule is evaluated only when one of its
//!   *trigger atoms* hits (the atoms of its cheapest necessary conjunct), plus the few that can
//!   hold without any hit, such as `not selection`, so thousands of rules cost little more per
//!   event than one. [`RuleSet::matches_exhaustive`] is the straightforward path the
//!   differential test holds it to.
//! * **Correlations** ([`correlation`], [`correlate`]): the v2 model (event_count, value_count,
//!   temporal, temporal_ordered, value_sum/avg/percentile, aliases, chains, `rules:` by id or
//!   name), resolved against the rule set, and a [`CorrelationEngine`](correlate::CorrelationEngine)
//!   with sliding windows in event time and bounded, evicting per-group state.
//!
//! * **Behaviour rules** ([`behaviour`]): `kind: new_terms` (first seen), `kind: outlier` and
//!   `kind: peer_outlier`, whose events are chosen by a hidden rule of the set and whose memory
//!   (bounded, persistable) lives in [`behaviour::Engine`], fed by the [`Evaluator`].
//!
//! A document with a `kind` or a top-level key Vigil does not know is refused with a reason.
//! * **Testing and explaining** ([`ruletest`], [`trace`]): the test cases a rule declares
//!   (SigmaHQ's `regression_tests_path`, Vigil's inline `tests:`) checked against the compiled
//!   set, and why an event did or did not match a rule — which logsource, search identifier,
//!   field and modifier — computed by compiling the rule's pieces with the same compiler.
//!
//! Unsupported constructs (unknown modifiers, regexes the `regex` crate cannot run such as
//! look-around, placeholders without values, undefined identifiers) exclude the rule with a
//! reason; a rule never runs with part of its logic missing.
//!
//! ```
//! use vigil_detect::{RuleSet, load_str};
//! use vigil_event::{Event, Timestamp};
//!
//! let docs = load_str(r#"
//! title: Whoami
//! id: 11111111-2222-3333-4444-555555555555
//! logsource: {product: windows, category: process_creation}
//! detection:
//!     selection:
//!         Image|endswith: '\whoami.exe'
//!     condition: selection
//! "#, "inline").into_iter().collect::<Result<Vec<_>, _>>().unwrap();
//! let (set, issues) = RuleSet::compile(docs);
//! assert!(issues.is_empty());
//!
//! let mut e = Event::new(Timestamp::default());
//! e.insert("Channel", "Microsoft-Windows-Sysmon/Operational");
//! e.insert("EventID", 1i64);
//! e.insert("Image", "C:\\Windows\\System32\\WHOAMI.EXE");
//! let hits = set.matches(&e);
//! assert_eq!(set.rule(hits[0]).unwrap().meta.title, "Whoami");
//! ```

pub mod alert;
pub mod attack;
pub mod behaviour;
pub mod case;
pub mod compile;
pub mod condition;
pub mod correlate;
pub mod correlation;
pub mod criticality;
pub mod evaluate;
pub mod exceptions;
pub mod expr;
mod fieldmatch;
pub mod load;
pub mod mapping;
pub mod modifiers;
pub mod partition;
pub mod pattern;
mod pcre;
pub mod report;
pub mod rule;
pub mod ruleset;
pub mod ruletest;
pub mod trace;
mod yaml;

pub use compile::{CompileOptions, IssueKind, RuleIssue};
pub use correlate::{CorrelationEngine, CorrelationHit, Limits};
pub use evaluate::{Evaluator, Raised};
pub use partition::DetectorPartition;
pub use rule::{Document, LoadError, LogSource, RuleMeta, SigmaRule, load_str};
pub use ruleset::{RuleId, RuleInfo, RuleSet, Scratch};
