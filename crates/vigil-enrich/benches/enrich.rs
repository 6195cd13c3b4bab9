//! Per-event cost of ingest enrichment: an sshd failure event (source address, user, host)
//! through `Snapshot::enrich` with nothing loaded, and with 1,000,000 indicators (addresses,
//! networks of 4 prefix lengths, domains, hashes) plus a 100,000-row user table and a
//! 100,000-row host table, for an event that matches nothing and one that matches.
//!
//! `cargo bench -p vigil-enrich --bench enrich`

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vigil_enrich::{Enricher, Settings, Stats};
use vigil_event::{Event, Timestamp, Value};

fn event(ip: &str) -> Event {
    let mut e = Event::new(Timestamp::from_secs(1_765_000_000));
    e.insert(
        "message",
        "Failed password for root from 203.0.113.5 port 52110 ssh2",
    );
    e.insert("event.category", "authentication");
    e.insert("event.outcome", "failure");
    e.insert("event.action", "ssh_login");
    e.insert("source.ip", Value::Ip(ip.parse().unwrap()));
    e.insert("source.port", Value::Int(52110));
    e.insert("user.name", "user4242");
    e.insert("host.name", "host777");
    e.insert("process.name", "sshd");
    e.insert("vigil.source", "tcp");
    e
}

fn loaded(dir: &std::path::Path) -> Enricher {
    let mut list = String::new();
    for i in 0..500_000u32 {
        // 500,000 addresses in 10.0.0.0/8 … and 100.64.0.0/10.
        let _ = writeln!(
            list,
            "10.{}.{}.{}",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        );
    }
    // 200,000 distinct networks of 4 prefix lengths.
    for (count, len, base) in [
        (80_000u32, 28u32, 100u32),
        (80_000, 24, 101),
        (30_000, 20, 120),
        (10_000, 16, 180),
    ] {
        for i in 0..count {
            let addr = std::net::Ipv4Addr::from((base << 24) + (i << (32 - len)));
            let _ = writeln!(list, "{addr}/{len}");
        }
    }
    for i in 0..200_000u32 {
        let _ = writeln!(list, "bad{i}.example");
    }
    for i in 0..100_000u32 {
        let _ = writeln!(list, "{:064x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15);
    }
    std::fs::write(dir.join("feed.txt"), list).unwrap();
    let mut users = String::from("user.name,user.department,user.roles\n");
    let mut hosts = String::from("host.name,host.owner,host.criticality\n");
    for i in 0..100_000 {
        let _ = writeln!(users, "user{i},dept{},role{};role{}", i % 50, i % 7, i % 11);
        let _ = writeln!(
            hosts,
            "host{i},team{},{}",
            i % 30,
            ["low", "medium", "high", "critical"][i % 4]
        );
    }
    std::fs::write(dir.join("users.csv"), users).unwrap();
    std::fs::write(dir.join("hosts.csv"), hosts).unwrap();
    let e = Enricher::new(Settings {
        feeds: vec![dir.join("feed.txt")],
        max_indicators: 2_000_000,
        tables: vec![dir.join("users.csv"), dir.join("hosts.csv")],
        max_rows: 1_000_000,
        geoip: Vec::new(),
    });
    assert!(
        e.status().iter().all(|s| s.error.is_none()),
        "{:?}",
        e.status()
    );
    assert_eq!(e.snapshot().intel().len(), 1_000_000);
    e
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let stats = Stats::default();
    let none = Enricher::new(Settings {
        feeds: vec![dir.path().join("empty.txt")],
        max_indicators: 10,
        ..Settings::default()
    });
    let full = loaded(dir.path());
    let mut g = c.benchmark_group("enrich");
    let miss = event("203.0.113.5");
    let hit = event("100.0.1.5");
    g.bench_function("clone only (baseline)", |b| {
        b.iter(|| black_box(miss.clone()))
    });
    g.bench_function("nothing loaded", |b| {
        let s = none.snapshot();
        b.iter(|| {
            let mut e = miss.clone();
            s.enrich(&mut e, &stats);
            black_box(e)
        })
    });
    g.bench_function("1M indicators + 2 tables, no match", |b| {
        let s = full.snapshot();
        b.iter(|| {
            let mut e = miss.clone();
            s.enrich(&mut e, &stats);
            black_box(e)
        })
    });
    g.bench_function("1M indicators + 2 tables, match", |b| {
        let s = full.snapshot();
        b.iter(|| {
            let mut e = hit.clone();
            s.enrich(&mut e, &stats);
            black_box(e)
        })
    });
    g.finish();
    let started = std::time::Instant::now();
    let _ = loaded(dir.path());
    eprintln!(
        "loading 1M indicators + 200k table rows: {:?}",
        started.elapsed()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
