//! Correlations on hand-made event sequences around every threshold and window edge, and the
//! correlation examples of the corpus.

mod common;

use std::io::Write;

use vigil_detect::report::load_dir;
use vigil_detect::{
    CorrelationEngine, CorrelationHit, Document, IssueKind, Limits, RuleSet, load_str,
};
use vigil_event::{Event, Timestamp, Value};

/// Base rules A, B, C: `kind` equals `a`, `b`, `c` (logsource `product: vigil, service: ingest` = every event).
const BASE: &str = "
title: A
id: rule-a
name: rule_a
logsource: {product: vigil, service: ingest}
detection: {sel: {kind: a}, condition: sel}
---
title: B
id: rule-b
name: rule_b
logsource: {product: vigil, service: ingest}
detection: {sel: {kind: b}, condition: sel}
---
title: C
id: rule-c
name: rule_c
logsource: {product: vigil, service: ingest}
detection: {sel: {kind: c}, condition: sel}
";

fn setup(correlation: &str, limits: Limits) -> (RuleSet, CorrelationEngine) {
    let text = format!("{BASE}---\n{correlation}");
    let docs: Vec<Document> = load_str(&text, "inline")
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}"));
    let (set, issues) = RuleSet::compile(docs);
    let bad: Vec<_> = issues
        .iter()
        .filter(|i| i.kind == IssueKind::Unsupported)
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(set.correlations().len(), 1);
    let engine = CorrelationEngine::new(&set, limits);
    (set, engine)
}

fn event(secs: i64, fields: &[(&str, &str)]) -> Event {
    let mut e = Event::new(Timestamp::from_secs(secs));
    for (k, v) in fields {
        e.insert(*k, *v);
    }
    e
}

/// Feeds events; returns, per event, the hits.
fn run(
    set: &RuleSet,
    engine: &mut CorrelationEngine,
    events: &[Event],
) -> Vec<Vec<CorrelationHit>> {
    events
        .iter()
        .map(|e| {
            let m = set.matches(e);
            engine.observe(set, e, &m)
        })
        .collect()
}

fn fired(hits: &[Vec<CorrelationHit>]) -> Vec<usize> {
    hits.iter()
        .enumerate()
        .filter(|(_, h)| !h.is_empty())
        .map(|(i, _)| i)
        .collect()
}

const EVENT_COUNT: &str = "title: Many A
id: corr-1
correlation:
    type: event_count
    rules: [rule-a]
    group-by: [user]
    timespan: 60s
    condition: {gte: 3}
";

#[test]
fn event_count_threshold_and_reset() {
    let (set, mut eng) = setup(EVENT_COUNT, Limits::default());
    let a = |t, u| event(t, &[("kind", "a"), ("user", u)]);
    let hits = run(
        &set,
        &mut eng,
        &[
            a(0, "x"),
            a(10, "x"),
            a(11, "y"),
            a(20, "x"),
            a(21, "x"),
            a(22, "x"),
            a(23, "x"),
        ],
    );
    // Third x at t=20 fires; the window restarts, so the next fire is the third after that.
    assert_eq!(fired(&hits), vec![3, 6]);
    let h = &hits[3][0];
    assert_eq!(h.group, vec![("user".to_owned(), "x".to_owned())]);
    assert_eq!(h.value, 3.0);
    assert_eq!(h.events, 3);
    assert_eq!(h.first, Timestamp::from_secs(0));
    assert_eq!(h.last, Timestamp::from_secs(20));
    assert_eq!(eng.stats(0).hits, 2);
}

#[test]
fn event_count_window_edges() {
    let a = |t| event(t, &[("kind", "a"), ("user", "x")]);
    // Exactly the timespan apart: still inside (inclusive edge).
    let (set, mut eng) = setup(EVENT_COUNT, Limits::default());
    assert_eq!(fired(&run(&set, &mut eng, &[a(0), a(30), a(60)])), vec![2]);
    // One second more: the first has left the window.
    let (set, mut eng) = setup(EVENT_COUNT, Limits::default());
    assert_eq!(
        fired(&run(&set, &mut eng, &[a(0), a(30), a(61)])),
        Vec::<usize>::new()
    );
    // Below the threshold never fires; other rules and missing group-by fields do not count.
    let (set, mut eng) = setup(EVENT_COUNT, Limits::default());
    let b = event(5, &[("kind", "b"), ("user", "x")]);
    let nouser = event(6, &[("kind", "a")]);
    assert!(fired(&run(&set, &mut eng, &[a(0), b, nouser, a(7)])).is_empty());
}

#[test]
fn out_of_order_events_count_in_event_time() {
    let (set, mut eng) = setup(EVENT_COUNT, Limits::default());
    let a = |t| event(t, &[("kind", "a"), ("user", "x")]);
    // 100, then 45 (late and outside 100-60): dropped; then 50, 95: window {50?no: 95-50=45 ok}.
    let hits = run(&set, &mut eng, &[a(100), a(39), a(50), a(95)]);
    assert_eq!(fired(&hits), vec![3]);
    assert_eq!(hits[3][0].first, Timestamp::from_secs(50));
    assert_eq!(hits[3][0].last, Timestamp::from_secs(100));
}

#[test]
fn value_count_counts_distinct_values() {
    let corr = "title: Spray
correlation:
    type: value_count
    rules: [rule-a]
    group-by: [src]
    timespan: 5m
    condition: {field: target, gt: 2}
";
    let (set, mut eng) = setup(corr, Limits::default());
    let a = |t, target| event(t, &[("kind", "a"), ("src", "1.2.3.4"), ("target", target)]);
    let hits = run(
        &set,
        &mut eng,
        &[a(0, "u1"), a(1, "u1"), a(2, "u2"), a(3, "u2"), a(4, "u3")],
    );
    assert_eq!(fired(&hits), vec![4]);
    assert_eq!(hits[4][0].value, 3.0);
    // Missing measured field: not counted.
    let (set, mut eng) = setup(corr, Limits::default());
    let no_target = event(1, &[("kind", "a"), ("src", "1.2.3.4")]);
    assert!(fired(&run(&set, &mut eng, &[a(0, "u1"), no_target, a(2, "u2")])).is_empty());
}

#[test]
fn temporal_any_order_within_window() {
    let corr = "title: Recon
correlation:
    type: temporal
    rules: [rule_a, rule_b, rule_c]
    group-by: [host]
    timespan: 5m
";
    let ev = |t, k, h| event(t, &[("kind", k), ("host", h)]);
    let (set, mut eng) = setup(corr, Limits::default());
    let hits = run(
        &set,
        &mut eng,
        &[
            ev(0, "c", "h1"),
            ev(10, "a", "h1"),
            ev(20, "a", "h2"),
            ev(300, "b", "h1"),
        ],
    );
    assert_eq!(fired(&hits), vec![3]);
    assert_eq!(hits[3][0].value, 3.0);
    let (set, mut eng) = setup(corr, Limits::default());
    // c at 0 is 301 s before b: outside.
    assert!(
        fired(&run(
            &set,
            &mut eng,
            &[ev(0, "c", "h1"), ev(10, "a", "h1"), ev(301, "b", "h1")]
        ))
        .is_empty()
    );
}

#[test]
fn temporal_ordered_needs_the_order() {
    let corr = "title: Then
correlation:
    type: temporal_ordered
    rules: [rule_a, rule_b]
    group-by: [user]
    timespan: 10m
";
    let ev = |t, k| event(t, &[("kind", k), ("user", "u")]);
    let (set, mut eng) = setup(corr, Limits::default());
    assert!(fired(&run(&set, &mut eng, &[ev(0, "b"), ev(1, "a")])).is_empty());
    let (set, mut eng) = setup(corr, Limits::default());
    assert_eq!(
        fired(&run(&set, &mut eng, &[ev(0, "b"), ev(1, "a"), ev(2, "b")])),
        vec![2]
    );
    let (set, mut eng) = setup(corr, Limits::default());
    assert_eq!(
        fired(&run(&set, &mut eng, &[ev(0, "a"), ev(600, "b")])),
        vec![1]
    );
    let (set, mut eng) = setup(corr, Limits::default());
    assert!(fired(&run(&set, &mut eng, &[ev(0, "a"), ev(601, "b")])).is_empty());
}

#[test]
fn value_sum_and_avg() {
    let sum = "title: Exfil
correlation:
    type: value_sum
    rules: [rule-a]
    group-by: [src]
    timespan: 1h
    condition: {field: bytes, gt: 100}
";
    let ev = |t, b| event(t, &[("kind", "a"), ("src", "s"), ("bytes", b)]);
    let (set, mut eng) = setup(sum, Limits::default());
    let hits = run(
        &set,
        &mut eng,
        &[ev(0, "50"), ev(1, "50"), ev(2, "not a number"), ev(3, "1")],
    );
    assert_eq!(fired(&hits), vec![3]);
    assert_eq!(hits[3][0].value, 101.0);
    let avg = sum
        .replace("value_sum", "value_avg")
        .replace("gt: 100", "gte: 20");
    let (set, mut eng) = setup(&avg, Limits::default());
    let hits = run(&set, &mut eng, &[ev(0, "10"), ev(1, "20"), ev(2, "40")]);
    assert_eq!(fired(&hits), vec![1 + 1]);
    assert!((hits[2][0].value - 70.0 / 3.0).abs() < 1e-9);
}

#[test]
fn value_percentile_finds_rare_values() {
    let corr = "title: Rare
correlation:
    type: value_percentile
    rules: [rule-a]
    group-by: [host]
    timespan: 24h
    condition: {field: image, lte: 10}
";
    let ev = |t, img| event(t, &[("kind", "a"), ("host", "h"), ("image", img)]);
    let (set, mut eng) = setup(corr, Limits::default());
    let mut events: Vec<Event> = (0..10).map(|i| ev(i, "common.exe")).collect();
    events.push(ev(20, "rare.exe"));
    let hits = run(&set, &mut eng, &events);
    // 1 of 11 = 9.1% ≤ 10.
    assert_eq!(fired(&hits), vec![10]);
    assert!(hits[10][0].value < 10.0);
    let (set, mut eng) = setup(corr, Limits::default());
    let mut events: Vec<Event> = (0..5).map(|i| ev(i, "common.exe")).collect();
    events.push(ev(20, "rare.exe"));
    // 1 of 6 = 16.7% > 10.
    assert!(fired(&run(&set, &mut eng, &events)).is_empty());
}

#[test]
fn aliases_join_different_fields() {
    let corr = "title: Joined
correlation:
    type: temporal
    rules: [rule_a, rule_b]
    group-by: [ip]
    timespan: 10s
    aliases:
        ip:
            rule_a: destination.ip
            rule_b: source.ip
";
    let (set, mut eng) = setup(corr, Limits::default());
    let a = event(
        0,
        &[
            ("kind", "a"),
            ("destination.ip", "10.0.0.1"),
            ("source.ip", "9.9.9.9"),
        ],
    );
    let b_other = event(1, &[("kind", "b"), ("source.ip", "10.0.0.2")]);
    let b = event(2, &[("kind", "b"), ("source.ip", "10.0.0.1")]);
    let hits = run(&set, &mut eng, &[a, b_other, b]);
    assert_eq!(fired(&hits), vec![2]);
    assert_eq!(
        hits[2][0].group,
        vec![("ip".to_owned(), "10.0.0.1".to_owned())]
    );
}

#[test]
fn bounded_state_evicts_and_counts() {
    let limits = Limits {
        max_groups: 2,
        max_entries: 2,
    };
    let (set, mut eng) = setup(EVENT_COUNT, limits);
    let a = |t, u| event(t, &[("kind", "a"), ("user", u)]);
    run(&set, &mut eng, &[a(0, "u1"), a(1, "u2"), a(2, "u3")]);
    let st = eng.stats(0);
    assert_eq!(st.groups, 2);
    assert_eq!(st.evicted_groups, 1);
    // u1 was evicted (least recently seen): two more u1 events are a fresh start.
    assert!(fired(&run(&set, &mut eng, &[a(3, "u1"), a(4, "u1")])).is_empty());
    // max_entries 2 < threshold 3: the oldest is dropped, counted, and it never fires.
    assert!(fired(&run(&set, &mut eng, &[a(5, "u1")])).is_empty());
    assert!(eng.stats(0).dropped_entries >= 1);
    // Groups whose window passed are removed as time moves on.
    run(&set, &mut eng, &[a(1000, "u9")]);
    assert_eq!(eng.stats(0).groups, 1);
}

#[test]
fn chained_correlations_failed_then_success() {
    let text = std::fs::read_to_string(
        common::corpus()
            .map(|c| c.join("sigma-correlation/sigma-specification/spec-examples/correlation_spec_example_16.yml"))
            .unwrap_or_default(),
    );
    let Ok(text) = text else {
        let _ = writeln!(std::io::stderr(), "SKIP: spec example 16 not available");
        return;
    };
    let docs: Vec<Document> = load_str(&text, "example16")
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let (set, issues) = RuleSet::compile(docs);
    assert!(
        issues.iter().all(|i| i.kind != IssueKind::Unsupported),
        "{issues:?}"
    );
    assert_eq!(set.correlations().len(), 2);
    // Base rules referenced by a correlation (generate: false) are not alerts on their own.
    let failed = set.find("failed_login").unwrap();
    assert!(!set.rule(failed).unwrap().generate);
    let mut eng = CorrelationEngine::new(&set, Limits::default());
    let sec = |t, id: i64, user| {
        let mut e = Event::new(Timestamp::from_secs(t));
        e.insert("Channel", "Security");
        e.insert("EventID", Value::Int(id));
        e.insert("User", user);
        e
    };
    let mut events: Vec<Event> = (0..10).map(|i| sec(i, 4625, "bob")).collect();
    events.push(sec(30, 4624, "bob"));
    events.push(sec(31, 4624, "alice"));
    let hits = run(&set, &mut eng, &events);
    // The 10th failure fires the event_count; the success after it fires the chain.
    assert_eq!(fired(&hits), vec![9, 10]);
    let last = &hits[10][0];
    assert_eq!(
        set.correlations()[last.correlation].rule.meta.title,
        "Correlation - Multiple Failed Logins Followed by Successful Login"
    );
    assert_eq!(last.group, vec![("User".to_owned(), "bob".to_owned())]);
    // Nine failures and a success: nothing.
    let mut eng = CorrelationEngine::new(&set, Limits::default());
    let mut events: Vec<Event> = (0..9).map(|i| sec(i, 4625, "eve")).collect();
    events.push(sec(30, 4624, "eve"));
    assert!(fired(&run(&set, &mut eng, &events)).is_empty());
}

#[test]
fn corpus_correlation_examples_load() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let root = corpus.join("sigma-correlation");
    let mut correlations = 0;
    let mut failures = Vec::new();
    for sub in [
        "sigma-specification/tests/schema/correlation",
        "sigma-specification/spec-examples",
        "hayabusa-rules",
    ] {
        for (path, docs) in load_dir(&root.join(sub)) {
            for d in docs {
                match d {
                    Ok(Document::Correlation(_)) => correlations += 1,
                    Ok(_) => {}
                    Err(e) => failures.push(format!("{}: {}", path.display(), e.reason)),
                }
            }
        }
    }
    for f in &failures {
        eprintln!("not loaded: {f}");
    }
    // 8 schema examples, 9 complete spec examples (01/02 are partial, 03–05 are fragments),
    // 3 Hayabusa files.
    assert!(
        correlations >= 8 + 8 + 3,
        "{correlations} correlations loaded"
    );
    // The only documents that may fail are the spec's fragments (01–05 lack parts; 08 and 09
    // are correlation sections without title, name or id).
    for f in &failures {
        assert!(
            [
                "_01.yml", "_02.yml", "_03.yml", "_04.yml", "_05.yml", "_08.yml", "_09.yml"
            ]
            .iter()
            .any(|s| f.contains(s)),
            "unexpected failure: {f}"
        );
    }
}

#[test]
fn hayabusa_value_count_fires_on_4625() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let path = corpus.join(
        "sigma-correlation/hayabusa-rules/Sec_4625_Med_LogonFail_UserGuessing_Correlation.yml",
    );
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let docs: Vec<Document> = load_str(&text, "hayabusa")
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let (set, issues) = RuleSet::compile(docs);
    assert!(
        issues.iter().all(|i| i.kind != IssueKind::Unsupported),
        "{issues:?}"
    );
    let mut eng = CorrelationEngine::new(&set, Limits::default());
    let fail = |t, user: &str| {
        let mut e = Event::new(Timestamp::from_secs(t));
        for (k, v) in [
            ("Channel", "Security"),
            ("SubStatus", "0xc0000064"),
            ("IpAddress", "10.0.0.5"),
            ("TargetDomainName", "FS01"),
            ("ProcessName", "C:\\sshd.exe"),
            ("LogonProcessName", "Advapi"),
            ("WorkstationName", "FS01"),
            ("TargetUserName", user),
        ] {
            e.insert(k, v);
        }
        e.insert("EventID", Value::Int(4625));
        e.insert("LogonType", Value::Int(8));
        e
    };
    // gt 3 distinct users within 5 minutes.
    let events = vec![
        fail(0, "a"),
        fail(10, "b"),
        fail(20, "c"),
        fail(30, "c"),
        fail(40, "d"),
    ];
    assert_eq!(fired(&run(&set, &mut eng, &events)), vec![4]);
    let mut eng = CorrelationEngine::new(&set, Limits::default());
    let events = vec![fail(0, "a"), fail(10, "b"), fail(20, "c"), fail(400, "d")];
    assert!(fired(&run(&set, &mut eng, &events)).is_empty());
}

/// A drill's events (`vigil.drill.run`) count only among themselves: two real events and one
/// drill event of the same user never make three, two drill runs never mix, and the drill's
/// own three fire a hit whose group carries the run (its alert is a drill alert).
#[test]
fn drill_events_never_count_into_real_groups_nor_real_into_drills() {
    let (set, mut eng) = setup(EVENT_COUNT, Limits::default());
    let real = |t| event(t, &[("kind", "a"), ("user", "x")]);
    let drill = |t, run| event(t, &[("kind", "a"), ("user", "x"), ("vigil.drill.run", run)]);
    let hits = run(
        &set,
        &mut eng,
        &[
            real(0),
            real(1),
            drill(2, "d1"),
            drill(3, "d2"),
            drill(4, "d1"),
            drill(5, "d1"),
            real(6),
        ],
    );
    assert_eq!(fired(&hits), vec![5, 6]);
    assert_eq!(
        hits[5][0].group,
        vec![
            ("user".to_owned(), "x".to_owned()),
            ("vigil.drill.run".to_owned(), "d1".to_owned())
        ]
    );
    assert_eq!(hits[6][0].group, vec![("user".to_owned(), "x".to_owned())]);
    assert_eq!(hits[6][0].events, 3, "the three real events only");
}
