//! Per-event cost of behaviour rules (issue 18) beside a Sigma rule's, through the same
//! `Evaluator` `serve` and `hunt` use (matching included), and the memory a first-seen rule
//! holds after 1,000,000 distinct values (RSS from /proc, Linux).
//!
//! `cargo bench -p vigil-detect --bench behaviour` (no corpus needed).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_detect::{Evaluator, Limits, RuleSet, load_str};
use vigil_event::{Event, Timestamp};

const N: usize = 100_000;
const HOUR: i64 = 3_600_000_000_000;

fn set(text: &str) -> RuleSet {
    let docs = load_str(text, "bench.yml")
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .expect("rule loads");
    RuleSet::compile(docs).0
}

const SIGMA: &str = "title: Failed login\ndetection: {s: {event.category: authentication, event.outcome: failure}, condition: s}\n";
const NEW_TERMS: &str = "title: New address\nkind: new_terms\ndetection: {s: {event.category: authentication, event.outcome: failure}, condition: s}\nnew_terms: {fields: [source.ip], per: [user.name], learning: 1h, max_entries: 100000}\n";
const OUTLIER: &str = "title: Burst\nkind: outlier\ndetection: {s: {event.category: authentication, event.outcome: failure}, condition: s}\noutlier: {by: user.name, window: 1h, floor: 1000000, min_windows: 2}\n";
const PEER: &str = "title: Peers\nkind: peer_outlier\ndetection: {s: {event.category: authentication, event.outcome: failure}, condition: s}\npeer_outlier: {by: user.name, metric: distinct_count, field: source.ip, peers: user.department, window: 1h, floor: 1000000}\n";

/// Failed logins of 1,000 users (10 departments) from 5,000 addresses over 100 hours.
fn events() -> Vec<Event> {
    (0..N)
        .map(|i| {
            let mut e = Event::new(Timestamp::from_nanos(i as i64 * (100 * HOUR / N as i64)));
            e.insert("event.category", "authentication");
            e.insert("event.outcome", "failure");
            e.insert("user.name", format!("user{}", i % 1_000));
            e.insert("user.department", format!("dept{}", i % 10));
            e.insert(
                "source.ip",
                format!("10.0.{}.{}", (i / 7 % 5_000) / 250, i / 7 % 250),
            );
            e
        })
        .collect()
}

fn rss_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn bench(c: &mut Criterion) {
    let events = events();
    let mut g = c.benchmark_group("behaviour");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    for (name, text) in [
        ("sigma_rule", SIGMA),
        ("new_terms", NEW_TERMS),
        ("outlier_count", OUTLIER),
        ("peer_outlier_distinct", PEER),
    ] {
        let s = set(text);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut ev = Evaluator::new(&s, Limits::default());
                let mut n = 0usize;
                for e in &events {
                    n += ev.evaluate(&s, e).len();
                }
                n
            })
        });
    }
    // The Sigma engine's matching alone (no alert built), and first seen in its steady state:
    // every tuple already known (the evaluator has seen these events once), nothing raised.
    let s = set(SIGMA);
    let mut scratch = vigil_detect::Scratch::new(&s);
    g.bench_function("sigma_match_only", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in &events {
                n += s.matches_with(e, &mut scratch).len();
            }
            n
        })
    });
    let s = set(NEW_TERMS);
    let mut known = Evaluator::new(&s, Limits::default());
    for e in &events {
        known.evaluate(&s, e);
    }
    g.bench_function("new_terms_known", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in &events {
                n += known.evaluate(&s, e).len();
            }
            assert_eq!(n, 0);
            n
        })
    });
    // The worst case for first seen: every value new, the table at its cap and evicting.
    let s = set(
        "title: Any new value\nkind: new_terms\nnew_terms: {fields: [v], learning: 1h, max_entries: 100000}\n",
    );
    let distinct: Vec<Event> = (0..N)
        .map(|i| {
            let mut e = Event::new(Timestamp::from_nanos(2 * HOUR + i as i64));
            e.insert("v", format!("value-{i}"));
            e
        })
        .collect();
    let mut warm = Evaluator::new(&s, Limits::default());
    for i in 0..100_000 {
        let mut e = Event::new(Timestamp::from_nanos(i));
        e.insert("v", format!("warm-{i}"));
        warm.evaluate(&s, &e);
    }
    g.bench_function("new_terms_all_new_at_cap", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in &distinct {
                n += warm.evaluate(&s, e).len();
            }
            n
        })
    });
    g.finish();

    // The machine may be shared: besides criterion's wall-clock figures, nanoseconds of this
    // process's CPU time per event (from /proc), which other processes disturb much less.
    let cpu = |name: &str, run: &mut dyn FnMut()| {
        let (Some(before), wall) = (cpu_seconds(), std::time::Instant::now()) else {
            return;
        };
        for _ in 0..5 {
            run();
        }
        if let Some(after) = cpu_seconds() {
            eprintln!(
                "{name}: {:.0} ns of CPU per event ({:.0} ns wall)",
                (after - before) * 1e9 / (5 * N) as f64,
                wall.elapsed().as_nanos() as f64 / (5 * N) as f64
            );
        }
    };
    let s = set(SIGMA);
    let mut scratch = vigil_detect::Scratch::new(&s);
    cpu("sigma_match_only", &mut || {
        for e in &events {
            std::hint::black_box(s.matches_with(e, &mut scratch).len());
        }
    });
    let mut ev = Evaluator::new(&s, Limits::default());
    cpu("sigma_rule (an alert per event)", &mut || {
        for e in &events {
            std::hint::black_box(ev.evaluate(&s, e).len());
        }
    });
    for (name, text) in [
        ("new_terms_known", NEW_TERMS),
        ("outlier_count", OUTLIER),
        ("peer_outlier_distinct", PEER),
    ] {
        let s = set(text);
        let mut ev = Evaluator::new(&s, Limits::default());
        for e in &events {
            ev.evaluate(&s, e);
        }
        cpu(name, &mut || {
            for e in &events {
                std::hint::black_box(ev.evaluate(&s, e).len());
            }
        });
    }

    // Memory: 1,000,000 distinct values through a first-seen rule capped at 100,000 tuples.
    let s = set(
        "title: Any new value\nkind: new_terms\nnew_terms: {fields: [v], learning: 1h, max_entries: 100000}\n",
    );
    let before = rss_kib("VmRSS:");
    let mut ev = Evaluator::new(&s, Limits::default());
    let mut e = Event::new(Timestamp::from_nanos(0));
    for i in 0..1_000_000u64 {
        e.insert("v", i.to_string());
        ev.evaluate(&s, &e);
    }
    let st = ev.behaviour().stats();
    eprintln!(
        "1,000,000 distinct values, cap 100,000: {} tuples held, {} evicted, state ~{} KiB; RSS {:?} KiB before, {:?} KiB after (peak {:?} KiB)",
        st.entries,
        st.evicted,
        st.bytes / 1024,
        before,
        rss_kib("VmRSS:"),
        rss_kib("VmHWM:")
    );
}

/// User + system CPU time of this process, from `/proc/self/stat` (clock ticks of 1/100 s).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

criterion_group!(benches, bench);
criterion_main!(benches);
