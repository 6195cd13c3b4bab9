//! The cluster's differential test: random events split at random over K shards (K = 1..5), and
//! every random query answered by splitting it ([`vigil_query::plan`]), running the shard part
//! on each shard and merging gives exactly what one store holding every event answers.
//!
//! Each shard keeps the events' ledger sequence numbers (as a cluster keeps their stream
//! sequence), so event rows compare exactly. A second test runs the shard parts on real
//! per-shard ledgers and indexes, as nodes do (counts counted inside the index). Explicit null fields are dropped from the events:
//! across shards a null field reads as an absent one (see docs/cluster.md).

mod querygen;

use proptest::prelude::*;
use querygen::{GROUP_FIELDS, Gen, random_event, random_query, render};
use vigil_event::{Event, Timestamp, Value};
use vigil_index::{Indexer, SearchIndex};
use vigil_ledger::{Ledger, LedgerConfig, LedgerReader};
use vigil_query::ast::Command;
use vigil_query::{Limits, QueryResult, parse, plan, run};

/// Queries the shared generator does not write: every aggregation function, and commands the
/// coordinator runs over merged rows.
fn extra_query(g: &mut Gen) -> String {
    let by = |g: &mut Gen| -> String {
        match g.below(3) {
            0 => String::new(),
            1 => format!(" by {}", g.pick(GROUP_FIELDS)),
            _ => format!(" by {}, {}", g.pick(GROUP_FIELDS), g.pick(GROUP_FIELDS)),
        }
    };
    let search = *g.pick(&["", "status>=400", "host=web-*", "failed", "NOT user=root"]);
    let tail = match g.below(16) {
        0 => format!(
            " | stats avg(bytes), min(status), max(user.name), median(bytes), perc90(status){}",
            by(g)
        ),
        1 => format!(
            " | stats earliest(user), latest(host), first(status), last(src_ip), count(tags), values(tags){}",
            by(g)
        ),
        2 => format!(
            " | stats dc(src_ip) as ips, sum(status), avg(status){}",
            by(g)
        ),
        3 => format!(
            " | timechart span={} avg(bytes) by {}",
            g.pick(&["1h", "15m"]),
            g.pick(GROUP_FIELDS)
        ),
        4 => " | timechart span=30m max(status), dc(user), values(host)".into(),
        5 => " | eval k = status * 2 | stats sum(k), avg(k) by host".into(),
        6 => format!(" | sort {} -bytes", 1 + g.below(8)),
        7 => " | where bytes > 100 | table host, bytes, user".into(),
        8 => format!(" | head {} | stats count by host", g.below(10)),
        9 => format!(" | tail {}", g.below(10)),
        10 => " | dedup host".into(),
        11 => format!(" | fields host, user | head {}", g.below(10)),
        12 => " | stats count by host | sort -count | head 2".into(),
        13 => " | rename host as h | stats count, min(bytes) by h | where count > 1".into(),
        14 => format!(
            " | {} limit={} host, user",
            g.pick(&["top", "rare"]),
            1 + g.below(4)
        ),
        _ => " | stats count by user | eval twice = count * 2 | sort -twice, user".into(),
    };
    format!("{search}{tail}")
}

/// Random events, without explicit nulls (they read as absent across shards).
fn events(g: &mut Gen, n: usize) -> Vec<(u64, Event)> {
    (0..n)
        .map(|seq| {
            let mut e = random_event(g);
            let nulls: Vec<String> = e
                .fields()
                .filter(|(_, v)| matches!(v, Value::Null))
                .map(|(k, _)| k.to_owned())
                .collect();
            for k in nulls {
                e.remove(&k);
            }
            (seq as u64, e)
        })
        .collect()
}

/// The answer of `text` over `shards`, split and merged as a cluster answers.
fn merged(text: &str, shards: &[Vec<(u64, Event)>], limits: Limits) -> Option<QueryResult> {
    let pipeline = parse(text).ok()?;
    let plan = plan(&pipeline);
    let parts = shards
        .iter()
        .map(|events| run(&plan.shard, events.clone(), plan.shard_limits(limits)))
        .collect();
    Some(plan.merge(parts, limits, Vec::new()))
}

/// Compares the cluster's answer with one store's for `queries` random queries; returns how
/// many were compared and over how many shards.
fn compare(seed: u64, queries: usize) -> (usize, usize) {
    let mut g = Gen(seed);
    let n = 20 + g.below(200);
    let all = events(&mut g, n);
    let k = 1 + g.below(5);
    let mut shards = vec![Vec::new(); k];
    for (seq, e) in &all {
        shards[g.below(k)].push((*seq, e.clone()));
    }
    let limits = Limits {
        from: None,
        to: None,
        max_rows: 1 + g.below(60),
        now: Timestamp::from_secs(1_700_010_000),
    };
    let mut checked = 0;
    for _ in 0..queries {
        let text = if g.chance(50) {
            random_query(&mut g)
        } else {
            extra_query(&mut g)
        };
        let Ok(pipeline) = parse(&text) else {
            continue;
        };
        let expected = run(&pipeline, all.clone(), limits);
        let actual = merged(&text, &shards, limits).expect("parsed");
        assert_eq!(
            render(&actual),
            render(&expected),
            "seed {seed}: query {text:?} ({n} events over {k} shards)"
        );
        assert_eq!(actual.message, expected.message, "seed {seed}: {text:?}");
        checked += 1;
    }
    (checked, k)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn split_and_merged_answers_equal_one_stores(seed in any::<u64>()) {
        compare(seed, 40);
    }
}

/// Fixed seeds parse enough queries to mean something, over every shard count from 1 to 5.
#[test]
fn fixed_seeds_cover_every_shard_count() {
    let mut checked = 0;
    let mut counts = std::collections::BTreeSet::new();
    for seed in 1..=200 {
        if seed > 16 && counts.len() == 5 {
            break;
        }
        let (c, k) = compare(seed, 60);
        checked += c;
        counts.insert(k);
    }
    assert!(checked > 800, "only {checked} queries parsed");
    assert_eq!(counts.len(), 5, "shard counts {counts:?}");
}

/// A shard that did not answer is named, the answer says so, and the rest is counted.
#[test]
fn a_missing_shard_is_named_and_the_rest_answers() {
    let mut g = Gen(5);
    let all = events(&mut g, 100);
    let (a, b): (Vec<_>, Vec<_>) = all.iter().cloned().partition(|(seq, _)| seq % 2 == 0);
    let limits = Limits {
        from: None,
        to: None,
        max_rows: 100,
        now: Timestamp::from_secs(1_700_010_000),
    };
    let pipeline = parse("* | stats count").unwrap();
    let plan = plan(&pipeline);
    let part = run(&plan.shard, a.clone(), plan.shard_limits(limits));
    let r = plan.merge(vec![part], limits, vec![("p1".into(), "no owner".into())]);
    assert_eq!(r.rows, vec![vec![Value::Int(a.len() as i64)]]);
    assert_eq!(r.missing_shards, ["p1"]);
    assert!(r.truncated);
    let message = r.message.unwrap();
    assert!(
        message.contains("shards p1 did not answer") && message.contains("(p1: no owner)"),
        "{message}"
    );
    assert_ne!(a.len(), all.len());
    drop(b);
}

/// One shard on disk as a node keeps it: its own ledger (its own sequence numbers) and index,
/// with a random part left unindexed (the tail the index has not reached).
fn shard_on_disk(g: &mut Gen, dir: &std::path::Path, events: &[(u64, Event)]) {
    let (ledger, _) = Ledger::open(dir, LedgerConfig::default()).unwrap();
    let events: Vec<Event> = events.iter().map(|(_, e)| e.clone()).collect();
    for chunk in events.chunks(1 + g.below(events.len().max(1))) {
        ledger.append(chunk).unwrap();
    }
    ledger.close().unwrap();
    let indexed = if g.chance(30) {
        g.below(events.len() + 1)
    } else {
        events.len()
    };
    let mut indexer = Indexer::open(dir, 1).unwrap();
    let mut reader = LedgerReader::open(dir).unwrap();
    let mut done = 0;
    while done < indexed {
        done += indexer
            .catch_up(&mut reader, (indexed - done) as u64)
            .unwrap() as usize;
        indexer.commit().unwrap();
    }
    indexer.close().unwrap();
}

/// The shard parts run on each shard's INDEX (as a node runs them), merged: aggregations equal
/// one store's answer. (Event rows carry each shard's own sequence numbers here, so only
/// aggregating queries that do not look at `vigil.seq` are compared.)
#[test]
fn shard_parts_on_each_shards_index_merge_to_one_stores_answer() {
    let (mut checked, mut pushed) = (0, 0);
    for seed in 1..=6u64 {
        let mut g = Gen(seed * 7919);
        let n = 50 + g.below(200);
        let all = events(&mut g, n);
        let k = 2 + g.below(3);
        let mut split = vec![Vec::new(); k];
        for (seq, e) in &all {
            split[g.below(k)].push((*seq, e.clone()));
        }
        let dirs: Vec<tempfile::TempDir> = split
            .iter()
            .filter(|events| !events.is_empty())
            .map(|events| {
                let dir = tempfile::tempdir().unwrap();
                shard_on_disk(&mut g, dir.path(), events);
                dir
            })
            .collect();
        let mut shards: Vec<(SearchIndex, LedgerReader)> = dirs
            .iter()
            .map(|d| {
                (
                    SearchIndex::open(d.path()).unwrap().unwrap(),
                    LedgerReader::open(d.path()).unwrap(),
                )
            })
            .collect();
        let limits = Limits {
            from: None,
            to: None,
            max_rows: 1 + g.below(60),
            now: Timestamp::from_secs(1_700_010_000),
        };
        for _ in 0..60 {
            let text = if g.chance(50) {
                random_query(&mut g)
            } else {
                extra_query(&mut g)
            };
            let Ok(pipeline) = parse(&text) else {
                continue;
            };
            let plan = plan(&pipeline);
            let aggregating = matches!(
                plan.shard.commands.last(),
                Some(Command::Stats { .. } | Command::Timechart { .. } | Command::Partial(_))
            );
            if text.contains("vigil.seq") || !aggregating {
                continue;
            }
            let parts = shards
                .iter_mut()
                .map(|(index, reader)| {
                    let (r, stats) = index
                        .search(reader, &plan.shard, plan.shard_limits(limits))
                        .unwrap();
                    pushed += stats.pushed_down as usize;
                    r
                })
                .collect();
            let actual = plan.merge(parts, limits, Vec::new());
            let expected = run(&pipeline, all.clone(), limits);
            assert_eq!(
                render(&actual),
                render(&expected),
                "seed {seed}: query {text:?} ({n} events over {k} shards)"
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} aggregating queries");
    assert!(
        pushed > 20,
        "only {pushed} shard parts counted in the index"
    );
}
