use vigil_event::{Event, Timestamp};

use super::persist;
use crate::rule::load_str;
use crate::{Evaluator, Limits, RuleSet};

const H: i64 = 3_600_000_000_000;
const DAY: i64 = 24 * H;

fn set(text: &str) -> RuleSet {
    let docs = load_str(text, "t.yml")
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let (set, issues) = RuleSet::compile(docs);
    assert!(
        issues
            .iter()
            .all(|i| i.kind != crate::IssueKind::Unsupported),
        "{issues:?}"
    );
    set
}

fn ev(t: i64, fields: &[(&str, &str)]) -> Event {
    let mut e = Event::new(Timestamp::from_nanos(t));
    for (k, v) in fields {
        e.insert(*k, *v);
    }
    e
}

const NEW_ADDRESS: &str = "
title: Login from a new address
id: new-address
kind: new_terms
level: high
detection:
    login: {event.category: authentication, event.outcome: success}
    condition: login
new_terms:
    fields: [source.ip]
    per: [user.name]
    history: 7d
    learning: 2d
";

fn login(t: i64, user: &str, ip: &str) -> Event {
    ev(
        t,
        &[
            ("event.category", "authentication"),
            ("event.outcome", "success"),
            ("user.name", user),
            ("source.ip", ip),
        ],
    )
}

#[test]
fn first_seen_learns_then_flags_only_what_is_new_for_that_entity() {
    let s = set(NEW_ADDRESS);
    let mut ev = Evaluator::new(&s, Limits::default());
    let t0 = 1_000 * DAY;
    // Learning: new tuples raise nothing.
    assert!(ev.evaluate(&s, &login(t0, "alice", "10.0.0.1")).is_empty());
    assert!(
        ev.evaluate(&s, &login(t0 + DAY, "bob", "10.0.0.2"))
            .is_empty()
    );
    // After learning: alice from her address is known; from bob's address it is new for her.
    assert!(
        ev.evaluate(&s, &login(t0 + 3 * DAY, "alice", "10.0.0.1"))
            .is_empty()
    );
    let r = ev.evaluate(&s, &login(t0 + 3 * DAY, "alice", "10.0.0.2"));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].rule.id, "new-address");
    assert_eq!(
        r[0].group,
        vec![
            ("user.name".to_string(), "alice".to_string()),
            ("source.ip".into(), "10.0.0.2".into())
        ]
    );
    let x = r[0].explain.as_ref().unwrap();
    assert_eq!(x.kind, "new_terms");
    assert_eq!(x.observed, "source.ip=10.0.0.2");
    assert!(x.summary.contains("for user.name=alice"), "{}", x.summary);
    // Seen now: no second alert. Unrelated events are not counted.
    assert!(
        ev.evaluate(&s, &login(t0 + 3 * DAY, "alice", "10.0.0.2"))
            .is_empty()
    );
    let mut fail = login(t0 + 3 * DAY, "carol", "10.9.9.9");
    fail.insert("event.outcome", "failure");
    assert!(ev.evaluate(&s, &fail).is_empty());
    // Past the history window an address is new again.
    assert_eq!(
        ev.evaluate(&s, &login(t0 + 11 * DAY, "bob", "10.0.0.2"))
            .len(),
        1
    );
    // A missing field: nothing.
    let mut no_ip = login(t0 + 12 * DAY, "dave", "x");
    no_ip.remove("source.ip");
    assert!(ev.evaluate(&s, &no_ip).is_empty());
}

#[test]
fn a_rule_without_detection_counts_every_event_holding_its_fields() {
    let s = set(
        "title: New process on host\nkind: new_terms\nnew_terms: {fields: [process.name], per: host.name, learning: 1h}\n",
    );
    let mut e = Evaluator::new(&s, Limits::default());
    assert!(
        e.evaluate(&s, &ev(0, &[("host.name", "a"), ("process.name", "sshd")]))
            .is_empty()
    );
    assert!(
        e.evaluate(&s, &ev(2 * H, &[("host.name", "a"), ("message", "x")]))
            .is_empty()
    );
    assert_eq!(
        e.evaluate(
            &s,
            &ev(2 * H, &[("host.name", "a"), ("process.name", "nc")])
        )
        .len(),
        1
    );
}

#[test]
fn first_seen_state_is_bounded_with_evictions_counted() {
    let s = set(
        "title: Any new value\nkind: new_terms\nnew_terms: {fields: [v], learning: 1h, max_entries: 100000}\n",
    );
    let mut e = Evaluator::new(&s, Limits::default());
    let mut evt = ev(0, &[("v", "0")]);
    for i in 0..1_000_000i64 {
        evt.insert("v", i.to_string());
        e.evaluate(&s, &evt);
    }
    let st = e.behaviour().stats();
    assert!(st.entries <= 100_000, "{st:?}");
    assert!(st.entries >= 90_000, "{st:?}");
    assert!(st.evicted >= 900_000, "{st:?}");
    // The stated bound: 17 bytes a slot at the table's capacity (≤ 2 × the cap) — under 4 MiB.
    assert!(st.bytes < 4 << 20, "{st:?}");
    // The newest values are remembered: the evicted ones were the oldest.
    evt.insert("v", "999999");
    evt.set_timestamp(Timestamp::from_nanos(2 * H));
    assert!(e.evaluate(&s, &evt).is_empty());
}

const FAILS: &str = "
title: Failures far above the account's normal
id: fail-burst
kind: outlier
level: high
detection:
    fail: {event.outcome: failure}
    condition: fail
outlier:
    by: user.name
    window: 1h
    history: 7d
    threshold: 4
    floor: 20
    min_windows: 24
";

fn fail(t: i64, user: &str) -> Event {
    ev(t, &[("event.outcome", "failure"), ("user.name", user)])
}

#[test]
fn outlier_alerts_on_a_burst_above_the_entitys_own_baseline_and_explains_it() {
    let s = set(FAILS);
    let mut e = Evaluator::new(&s, Limits::default());
    let t0 = 1_000 * DAY;
    let mut alerts = Vec::new();
    // A week of 0–3 failures an hour for the service account, and a noisy human who fails
    // up to 30 times some hours (always: that is his normal).
    for hour in 0..168 {
        let base = t0 + hour * H;
        for k in 0..(hour % 4) {
            alerts.extend(e.evaluate(&s, &fail(base + k * 60_000_000_000, "svc-backup")));
        }
        for k in 0..(if hour % 3 == 0 { 30 } else { 22 }) {
            alerts.extend(e.evaluate(&s, &fail(base + k * 60_000_000_000, "mallory")));
        }
    }
    assert!(alerts.is_empty(), "benign history alerted: {alerts:?}");
    // Then fifty failures in an hour.
    let base = t0 + 168 * H;
    for k in 0..50 {
        alerts.extend(e.evaluate(&s, &fail(base + k * 60_000_000_000, "svc-backup")));
    }
    assert_eq!(alerts.len(), 1, "one alert per entity and window");
    let x = alerts[0].explain.as_ref().unwrap();
    assert_eq!(x.kind, "outlier");
    assert_eq!(
        alerts[0].group,
        vec![("user.name".to_string(), "svc-backup".to_string())]
    );
    assert_eq!(
        x.median,
        Some(2.0),
        "hours 1..167: 41 zeros, 42 each of 1, 2, 3"
    );
    assert_eq!(x.windows, Some(167));
    assert!(x.threshold.unwrap() >= 20.0 || x.observed.parse::<f64>().unwrap() >= 20.0);
    assert!(
        x.summary.contains("its own previous 167 windows"),
        "{}",
        x.summary
    );
}

#[test]
fn outlier_does_not_alert_while_learning_or_below_the_floor() {
    let s = set(FAILS);
    let mut e = Evaluator::new(&s, Limits::default());
    // A burst in the first hour ever seen: no baseline yet.
    for k in 0..100 {
        assert!(e.evaluate(&s, &fail(k * 1_000_000_000, "new")).is_empty());
    }
    let s = set(&FAILS.replace("floor: 20", "floor: 200"));
    let mut e = Evaluator::new(&s, Limits::default());
    for hour in 0..48 {
        e.evaluate(&s, &fail(hour * H, "u"));
    }
    for k in 0..100 {
        assert!(e.evaluate(&s, &fail(48 * H + k, "u")).is_empty());
    }
}

const READS: &str = "
title: Reads far more customers than the team
id: insider-reads
kind: peer_outlier
level: high
detection:
    read: {event.action: record-read}
    condition: read
peer_outlier:
    by: user.name
    metric: distinct_count
    field: customer.id
    peers: user.department
    window: 1d
    history: 7d
    threshold: 4
    floor: 30
    min_windows: 10
";

fn read(t: i64, user: &str, dept: &str, customer: u64) -> Event {
    ev(
        t,
        &[
            ("event.action", "record-read"),
            ("user.name", user),
            ("user.department", dept),
            ("customer.id", &format!("C{customer}")),
        ],
    )
}

#[test]
fn peer_outlier_flags_the_member_far_from_the_group() {
    let s = set(READS);
    let mut e = Evaluator::new(&s, Limits::default());
    let t0 = 1_000 * DAY;
    let team = ["ann", "ben", "cat", "dan", "eve"];
    let mut alerts = Vec::new();
    for day in 0..7 {
        for (i, u) in team.iter().enumerate() {
            // 5–14 customers a day each; the same customers are read again and again.
            for c in 0..(5 + ((day + i as i64) % 10)) {
                for _ in 0..3 {
                    alerts.extend(e.evaluate(
                        &s,
                        &read(t0 + day * DAY + c * H / 4, u, "support", c as u64),
                    ));
                }
            }
        }
        // Finance reads many accounts every day: normal for finance, not for support.
        for c in 0..80 {
            alerts.extend(e.evaluate(&s, &read(t0 + day * DAY + c, "fay", "finance", c as u64)));
            alerts.extend(e.evaluate(
                &s,
                &read(t0 + day * DAY + c, "gus", "finance", c as u64 + 7),
            ));
        }
    }
    assert!(alerts.is_empty(), "{alerts:?}");
    // Day 8: dan reads 60 customers.
    for c in 0..60 {
        alerts.extend(e.evaluate(
            &s,
            &read(t0 + 7 * DAY + c, "dan", "support", 1000 + c as u64),
        ));
    }
    assert_eq!(alerts.len(), 1);
    let x = alerts[0].explain.as_ref().unwrap();
    assert_eq!(x.kind, "peer_outlier");
    assert_eq!(x.peer_group.as_deref(), Some("user.department=support"));
    assert_eq!(x.entities, Some(4), "the other four members");
    assert_eq!(
        alerts[0].group,
        vec![("user.name".to_string(), "dan".to_string())]
    );
}

#[test]
fn state_survives_a_save_and_a_reload_of_unchanged_rules_only() {
    let s = set(NEW_ADDRESS);
    let mut e = Evaluator::new(&s, Limits::default());
    let t0 = 1_000 * DAY;
    e.evaluate(&s, &login(t0, "alice", "10.0.0.1"));
    let bytes = persist::encode(e.behaviour(), 42);
    let (loaded, seq) = persist::decode(&bytes).unwrap();
    assert_eq!(seq, 42);
    let mut e2 = Evaluator::new(&s, Limits::default());
    assert!(e2.behaviour_mut().adopt(loaded).is_empty());
    assert!(
        e2.evaluate(&s, &login(t0 + 3 * DAY, "alice", "10.0.0.1"))
            .is_empty()
    );
    assert_eq!(
        e2.evaluate(&s, &login(t0 + 3 * DAY, "alice", "10.0.0.3"))
            .len(),
        1
    );
    // A changed definition starts empty (and is reported for backfill).
    let changed = set(&NEW_ADDRESS.replace("history: 7d", "history: 8d"));
    let mut e3 = Evaluator::new(&changed, Limits::default());
    assert_eq!(
        e3.behaviour_mut().adopt(persist::decode(&bytes).unwrap().0),
        vec![0]
    );

    // Outlier and peer states round-trip too.
    let s = set(READS);
    let mut e = Evaluator::new(&s, Limits::default());
    for day in 0..3 {
        for c in 0..5 {
            e.evaluate(&s, &read(day * DAY + c, "ann", "support", c as u64));
            e.evaluate(&s, &read(day * DAY + c, "ben", "support", c as u64));
        }
    }
    let bytes = persist::encode(e.behaviour(), 7);
    let (loaded, _) = persist::decode(&bytes).unwrap();
    assert_eq!(persist::encode(&loaded, 7).len(), bytes.len());
    assert_eq!(loaded.stats().entries, 2);
}

#[test]
fn a_damaged_or_hostile_state_file_is_an_error_not_a_panic() {
    let s = set(FAILS);
    let mut e = Evaluator::new(&s, Limits::default());
    for k in 0..10 {
        e.evaluate(&s, &fail(k * H, "u"));
    }
    let good = persist::encode(e.behaviour(), 1);
    assert!(persist::decode(&good).is_ok());
    for cut in [0, 3, 10, good.len() / 2, good.len() - 1] {
        assert!(persist::decode(&good[..cut]).is_err(), "cut at {cut}");
    }
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x40;
        assert!(persist::decode(&bad).is_err(), "flipped byte {i}");
    }
    let mut v2 = good.clone();
    v2[4] = 2;
    assert!(persist::decode(&v2).unwrap_err().contains("version 2"));
    // A count claiming billions of entries, with a valid checksum: refused before allocating.
    let mut w = Vec::new();
    w.extend_from_slice(persist::MAGIC);
    w.push(persist::VERSION);
    w.extend_from_slice(&0u64.to_le_bytes());
    w.extend_from_slice(&1u32.to_le_bytes());
    w.extend_from_slice(&1u32.to_le_bytes());
    w.push(b'k');
    w.push(1);
    w.extend_from_slice(&[0; 16 + 1 + 24]);
    w.extend_from_slice(&u64::MAX.to_le_bytes());
    let check = super::keyed_hash_bytes(&w);
    w.extend_from_slice(&check.to_le_bytes());
    assert!(
        persist::decode(&w)
            .unwrap_err()
            .contains("larger than the file")
    );
}

#[test]
fn median_mad_and_threshold() {
    let mut xs = vec![1.0, 2.0, 3.0, 100.0];
    assert_eq!(super::median_mad(&mut xs), (2.5, 1.0));
    // A zero MAD falls back to the Poisson scale √median.
    assert_eq!(super::outlier_threshold(4.0, 0.0, 3.0), 10.0);
    assert_eq!(super::outlier_threshold(0.0, 0.0, 3.0), 3.0);
}

#[test]
fn forged_times_neither_blind_nor_evade_the_rules() {
    // Outlier: one failure dated a year ahead does not make the real burst "late".
    let s = set(FAILS);
    let mut e = Evaluator::new(&s, Limits::default());
    for hour in 0..48 {
        e.evaluate(&s, &fail(hour * H, "svc"));
    }
    assert!(e.evaluate(&s, &fail(400 * DAY, "svc")).is_empty());
    let burst: usize = (0..50)
        .map(|k| e.evaluate(&s, &fail(48 * H + k, "svc")).len())
        .sum();
    assert_eq!(burst, 1, "the burst still alerts");

    // First seen: a new address dated before the rule's history still alerts once learned.
    let s = set(NEW_ADDRESS);
    let mut e = Evaluator::new(&s, Limits::default());
    let t0 = 1_000 * DAY;
    e.evaluate(&s, &login(t0, "alice", "10.0.0.1"));
    e.evaluate(&s, &login(t0 + 3 * DAY, "alice", "10.0.0.1"));
    assert_eq!(
        e.evaluate(&s, &login(t0 - 300 * DAY, "alice", "203.0.113.9"))
            .len(),
        1
    );
    // And during learning, a backdated event does not end learning early.
    let mut e = Evaluator::new(&s, Limits::default());
    e.evaluate(&s, &login(t0, "bob", "10.0.0.2"));
    assert!(
        e.evaluate(&s, &login(t0 - 300 * DAY, "bob", "10.0.0.3"))
            .is_empty()
    );
    assert!(e.evaluate(&s, &login(t0 + H, "bob", "10.0.0.4")).is_empty());
}

#[test]
fn hostile_values_are_bounded() {
    // A list of 10,000 values makes at most 16 tuples; a 1 MB value is only hashed.
    let s = set("title: t\nkind: new_terms\nnew_terms: {fields: [a, b], learning: 1h}\n");
    let mut e = Evaluator::new(&s, Limits::default());
    let mut ev0 = Event::new(Timestamp::from_nanos(0));
    ev0.insert(
        "a",
        vigil_event::Value::List((0..10_000).map(vigil_event::Value::Int).collect()),
    );
    ev0.insert("b", "x".repeat(1 << 20));
    e.evaluate(&s, &ev0);
    assert!(e.behaviour().stats().entries <= 16);
}

/// A cluster detector partition moves: the new holder restores the state checkpointed at
/// position `S` and re-reads the stream from `R` < `S` (the correlation windows' stretch).
/// Fed to the behaviour rules only from `S` on ([`Evaluator::feed`]), it alerts exactly as a
/// holder that never moved; fed everything it re-reads, it counts that stretch twice.
#[test]
fn a_restored_state_fed_from_its_position_matches_a_holder_that_never_moved() {
    let s = set(FAILS);
    let t0 = 1_000 * DAY;
    let mut events = Vec::new();
    for hour in 0..168 {
        for k in 0..(hour % 4) {
            events.push(fail(t0 + hour * H + k * 60_000_000_000, "svc-backup"));
        }
    }
    let burst = events.len();
    for k in 0..50 {
        events.push(fail(t0 + 168 * H + k * 60_000_000_000, "svc-backup"));
    }
    // What each evaluator raises from `from` on: (event index, observed value).
    let run = |e: &mut Evaluator, from: usize, behaviour_from: usize| {
        let mut out = Vec::new();
        for (i, ev) in events.iter().enumerate().skip(from) {
            e.feed(i >= behaviour_from, true);
            for r in e.evaluate(&s, ev) {
                out.push((i, r.explain.map(|x| x.observed)));
            }
        }
        out
    };
    let mut never_moved = Evaluator::new(&s, Limits::default());
    let want = run(&mut never_moved, 0, 0);
    assert_eq!(want.len(), 1, "one alert in the burst: {want:?}");
    // The old holder got 10 events into the burst; its checkpoint is at S.
    let at = burst + 10;
    let mut old = Evaluator::new(&s, Limits::default());
    for ev in &events[..at] {
        assert!(old.evaluate(&s, ev).is_empty());
    }
    let bytes = persist::encode(old.behaviour(), at as u64);
    let restore = || {
        let (state, seq) = persist::decode(&bytes).unwrap();
        assert_eq!(seq, at as u64);
        let mut e = Evaluator::new(&s, Limits::default());
        assert!(e.behaviour_mut().adopt(state).is_empty());
        e
    };
    let reread = at - 10;
    let got = run(&mut restore(), reread, at);
    assert_eq!(got, want, "resumed exactly");
    let twice = run(&mut restore(), reread, 0);
    assert_ne!(
        twice, want,
        "the re-read stretch fed again is counted twice"
    );
}
