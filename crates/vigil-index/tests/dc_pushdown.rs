//! `stats dc(…)` and `count(…)` are counted inside the index (from the columns, as `stats count
//! by` is) and answer exactly what the reference engine answers: with and without `by`, beside a
//! plain `count` (events without the field still count), with groups none of whose events has
//! the field (they are still listed, with 0), and with events past the index.

mod querygen;

use querygen::render;
use vigil_event::{Event, Timestamp};
use vigil_index::{Indexer, SearchIndex};
use vigil_ledger::{Ledger, LedgerConfig, LedgerReader};
use vigil_query::{Limits, parse, run};

fn event(i: u64) -> Event {
    let mut e = Event::new(Timestamp::from_secs(1_700_000_000 + i as i64));
    e.insert("message", format!("event {i}"));
    // 37 addresses, absent from every fifth event.
    if !i.is_multiple_of(5) {
        e.insert(
            "source.ip",
            format!("10.0.{}.{}", i % 37 % 3, i % 37)
                .parse::<std::net::IpAddr>()
                .unwrap(),
        );
    }
    // Users as text and as a number; absent on every host `h3` event.
    let host = format!("h{}", i % 4);
    if host != "h3" {
        if i.is_multiple_of(11) {
            e.insert("user.name", 1000i64 + (i % 3) as i64);
        } else {
            e.insert("user.name", format!("u{}", i % 13));
        }
    }
    e.insert("host.name", host);
    // More values than `values()` keeps (100): the smallest are kept, in any order.
    e.insert("url.path", format!("/p/{}", i * 7919 % 1000));
    e.insert(
        "http.response.status_code",
        [200i64, 404, 500][(i % 3) as usize],
    );
    e
}

fn build(dir: &std::path::Path, n: u64, indexed: u64) {
    let (ledger, _) = Ledger::open(dir, LedgerConfig::default()).unwrap();
    let events: Vec<Event> = (0..n).map(event).collect();
    for chunk in events.chunks(97) {
        ledger.append(chunk).unwrap();
    }
    ledger.close().unwrap();
    let mut indexer = Indexer::open(dir, 1).unwrap();
    let mut reader = LedgerReader::open(dir).unwrap();
    let mut done = 0;
    while done < indexed {
        // Several commits: several index segments, whose groups the engine merges.
        done += indexer
            .catch_up(&mut reader, (indexed - done).min(150))
            .unwrap();
        indexer.commit().unwrap();
    }
    indexer.close().unwrap();
}

#[test]
fn distinct_counts_are_counted_in_the_index_and_exact() {
    for (n, indexed) in [(600, 600), (600, 410)] {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), n, indexed);
        let mut reader = LedgerReader::open(dir.path()).unwrap();
        let mut all = Vec::new();
        reader
            .for_each_raw(0..reader.end_seq(), |seq, raw| {
                all.push((seq, Event::from_canonical(raw).unwrap()));
                Ok(())
            })
            .unwrap();
        let index = SearchIndex::open(dir.path()).unwrap().unwrap();
        let limits = Limits {
            from: None,
            to: None,
            max_rows: 1000,
            now: Timestamp::from_secs(1_700_010_000),
        };
        for text in [
            "* | stats dc(source.ip)",
            "* | stats dc(src_ip)",
            "* | stats count, dc(source.ip)",
            "* | stats dc(source.ip) as ips by host.name",
            "* | stats dc(user.name), count(user.name), count by host.name",
            "* | stats dc(user) by status",
            "* | stats count(source.ip) as n, dc(host.name) by user.name | sort -n",
            "event | stats dc(source.ip) by host.name, status",
            "status=404 | stats dc(host.name), dc(source.ip)",
            "* | stats dc(host.name) by host.name",
            "* | stats values(user.name), min(user), max(status) by host.name",
            "* | stats min(source.ip), max(source.ip), values(source.ip)",
            "* | stats values(url.path) as paths, dc(url.path)",
        ] {
            let pipeline = parse(text).unwrap();
            let expected = run(&pipeline, all.clone(), limits);
            let (actual, stats) = index.search(&mut reader, &pipeline, limits).unwrap();
            assert_eq!(
                render(&actual),
                render(&expected),
                "{text:?} ({indexed} of {n} indexed)"
            );
            assert!(stats.pushed_down, "{text:?} was not counted in the index");
            assert_eq!(stats.tail_events, n - indexed);
            assert!(!expected.rows.is_empty(), "{text:?}");
        }
        // A cluster shard's part of a `dc` (mergeable states) is counted in the index too.
        for text in [
            "* | stats dc(source.ip) by host.name",
            "* | stats count, dc(user.name)",
        ] {
            let shard = vigil_query::distributed::plan(&parse(text).unwrap()).shard;
            assert!(matches!(
                shard.commands[..],
                [vigil_query::ast::Command::Partial(_)]
            ));
            let expected = run(&shard, all.clone(), limits);
            let (actual, stats) = index.search(&mut reader, &shard, limits).unwrap();
            assert_eq!(render(&actual), render(&expected), "shard of {text:?}");
            assert!(stats.pushed_down, "shard of {text:?}");
        }
        // The numbers themselves, for the record.
        let pipeline = parse("* | stats count, dc(source.ip) as ips").unwrap();
        let (r, _) = index.search(&mut reader, &pipeline, limits).unwrap();
        assert_eq!(r.rows[0][0].as_i64(), Some(n as i64));
        let distinct: std::collections::HashSet<u64> =
            (0..n).filter(|i| i % 5 != 0).map(|i| i % 37).collect();
        assert_eq!(r.rows[0][1].as_i64(), Some(distinct.len() as i64));
        // Host h3 has no user: listed with 0 distinct users.
        let pipeline = parse("* | stats dc(user.name) as users by host.name").unwrap();
        let (r, _) = index.search(&mut reader, &pipeline, limits).unwrap();
        let h3 = r
            .rows
            .iter()
            .find(|row| row[0].to_string() == "h3")
            .unwrap();
        assert_eq!(h3[1].as_i64(), Some(0));
    }
}
