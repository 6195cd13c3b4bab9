//! Detector partitions (cluster mode): `K` partitioned evaluators over the same stream raise,
//! together, exactly what one whole evaluator raises — each alert group in exactly one
//! partition, the whole of a brute force in one place — for single-event rules, a
//! behaviour rule (`new_terms`), a correlation by `group-by`, and a chain (kept whole by partition 0).

use std::collections::BTreeMap;

use vigil_detect::partition::group_hash;
use vigil_detect::{
    DetectorPartition, Document, Evaluator, IssueKind, Limits, Raised, RuleSet, load_str,
};
use vigil_event::{Event, Timestamp};

const RULES: &str = "
title: Failed login
id: failed
logsource: {product: vigil, service: ingest}
detection: {sel: {kind: fail}, condition: sel}
---
title: Success
id: success
logsource: {product: vigil, service: ingest}
detection: {sel: {kind: ok}, condition: sel}
---
title: Scanner probe
id: probe
logsource: {product: vigil, service: ingest}
detection: {sel: {kind: probe}, condition: sel}
---
title: Login from a new address
id: new-address
kind: new_terms
logsource: {product: vigil, service: ingest}
detection: {sel: {kind: login}, condition: sel}
new_terms:
    fields: [source.ip]
    per: [user.name]
    learning: 1h
---
title: Brute force
id: brute
correlation:
    type: event_count
    rules: [failed]
    group-by: [source.ip]
    timespan: 60s
    condition: {gte: 5}
    generate: true
---
title: Brute force then success
id: brute-then-success
correlation:
    type: temporal_ordered
    rules: [brute, success]
    group-by: [source.ip]
    timespan: 5m
";

fn rules() -> RuleSet {
    let docs: Vec<Document> = load_str(RULES, "inline")
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}"));
    let (set, issues) = RuleSet::compile(docs);
    let bad: Vec<_> = issues
        .iter()
        .filter(|i| i.kind == IssueKind::Unsupported)
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(set.correlations().len(), 2);
    set
}

fn event(secs: i64, kind: &str, ip: &str) -> Event {
    let mut e = Event::new(Timestamp::from_secs(secs));
    e.insert("kind", kind);
    e.insert("source.ip", ip);
    e
}

/// A stream: brute forces from 40 addresses (8 failures each, interleaved, so each fires the
/// correlation), every fourth followed by a success; probes from 60 addresses.
fn stream() -> Vec<Event> {
    let mut events = Vec::new();
    for round in 0..8 {
        for n in 0..40 {
            events.push(event(round, "fail", &format!("203.0.113.{n}")));
        }
        for n in 0..60 {
            events.push(event(round, "probe", &format!("198.51.100.{n}")));
        }
    }
    for n in (0..40).step_by(4) {
        events.push(event(20, "ok", &format!("203.0.113.{n}")));
    }
    // A behaviour rule: 30 users learn an address in the first hour, then 20 of them log in
    // from a new one (one alert each; the others from the known one, none).
    for n in 0..30 {
        events.push(login(30, &format!("user{n}"), "192.0.2.1"));
    }
    for n in 0..30 {
        let ip = if n < 20 { "192.0.2.2" } else { "192.0.2.1" };
        events.push(login(2 * 3600 + n, &format!("user{n}"), ip));
    }
    events
}

fn login(secs: i64, user: &str, ip: &str) -> Event {
    let mut e = event(secs, "login", ip);
    e.insert("user.name", user);
    e
}

/// What an evaluator raised, counted by (rule id, group).
fn raised(set: &RuleSet, evaluator: &mut Evaluator, events: &[Event]) -> Vec<Raised> {
    events
        .iter()
        .flat_map(|e| evaluator.evaluate(set, e))
        .collect()
}

fn counted(raised: &[Raised]) -> BTreeMap<(String, Vec<(String, String)>), usize> {
    let mut out = BTreeMap::new();
    for r in raised {
        *out.entry((r.rule.id.clone(), r.group.clone())).or_insert(0) += 1;
    }
    out
}

#[test]
fn partitions_together_raise_what_one_detector_raises_each_once() {
    let set = rules();
    let events = stream();
    let whole = raised(&set, &mut Evaluator::new(&set, Limits::default()), &events);
    let whole_counts = counted(&whole);
    // The stream exercises every kind: probes, brute forces, and the chain.
    for id in ["probe", "brute", "brute-then-success", "new-address"] {
        assert!(
            whole_counts.keys().any(|(r, _)| r == id),
            "{id} never raised: {whole_counts:?}"
        );
    }
    for k in [1, 2, 3, 4] {
        let mut merged = Vec::new();
        let mut per_partition = Vec::new();
        for i in 0..k {
            let p = DetectorPartition::new(i, k).unwrap();
            let mine = raised(
                &set,
                &mut Evaluator::partitioned(&set, Limits::default(), p),
                &events,
            );
            // Each raised group is this partition's; the chain (brute, then success, both by
            // source.ip) hashes by its smallest id, so both of an address's alerts are in one.
            for r in &mine {
                let key = if r.rule.id == "brute-then-success" {
                    "brute"
                } else {
                    r.rule.id.as_str()
                };
                let values = r.group.iter().map(|(_, v)| v.as_str());
                assert!(p.keeps(key, values), "{r:?} in partition {i} of {k}");
            }
            per_partition.push(mine.len());
            merged.extend(mine);
        }
        assert_eq!(counted(&merged), whole_counts, "K = {k}");
        assert_eq!(merged.len(), whole.len(), "K = {k}");
        if k > 1 {
            // The work is shared: no partition raised everything.
            assert!(
                per_partition.iter().all(|n| *n < whole.len()),
                "K = {k}: {per_partition:?} of {}",
                whole.len()
            );
        }
    }
}

#[test]
fn a_brute_force_split_over_two_partitions_readers_is_still_counted_whole() {
    // The owner of a group sees all its events even when each partition's reader got them
    // from different ingest nodes: the filter is on the group, never on where events came
    // from. Here: the group's owner alone fires, and a non-owner keeps no state for it.
    let set = rules();
    let ip = "203.0.113.77";
    let owner = DetectorPartition::owner_of("brute", [ip], 3);
    assert_eq!(
        owner as u64,
        group_hash("brute", [ip]) % 3,
        "the owner is the stable hash"
    );
    let events: Vec<Event> = (0..5).map(|t| event(t, "fail", ip)).collect();
    for i in 0..3 {
        let mut e = Evaluator::partitioned(
            &set,
            Limits::default(),
            DetectorPartition::new(i, 3).unwrap(),
        );
        let raised = raised(&set, &mut e, &events);
        let fired = raised.iter().any(|r| r.rule.id == "brute");
        assert_eq!(fired, i == owner, "partition {i} (owner {owner})");
        let groups: usize = (0..set.correlations().len())
            .map(|c| e.correlations().stats(c).groups)
            .sum();
        if i != owner {
            assert_eq!(groups, 0, "partition {i} kept state of another's group");
        }
    }
}

#[test]
fn a_chain_with_different_group_by_is_kept_whole_by_partition_zero() {
    let text = format!(
        "{RULES}---
title: Brute forces per target
id: brute-per-target
correlation:
    type: event_count
    rules: [brute]
    timespan: 5m
    condition: {{gte: 2}}
"
    );
    let docs: Vec<Document> = load_str(&text, "inline")
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let (set, _) = RuleSet::compile(docs);
    let events = stream();
    let whole = counted(&raised(
        &set,
        &mut Evaluator::new(&set, Limits::default()),
        &events,
    ));
    assert!(
        whole.keys().any(|(r, _)| r == "brute-per-target"),
        "{whole:?}"
    );
    let mut merged = Vec::new();
    for i in 0..3 {
        let p = DetectorPartition::new(i, 3).unwrap();
        let mut e = Evaluator::partitioned(&set, Limits::default(), p);
        let mine = raised(&set, &mut e, &events);
        if i != 0 {
            // The whole chain (brute, its parents) is partition 0's: only single-event and
            // behaviour rules' alerts here.
            assert!(
                mine.iter()
                    .all(|r| ["probe", "failed", "new-address"].contains(&r.rule.id.as_str())),
                "partition {i}: {mine:?}"
            );
        }
        for c in 0..set.correlations().len() {
            assert_eq!(e.correlations().partition_key(c), None);
        }
        merged.extend(mine);
    }
    assert_eq!(counted(&merged), whole);
}
