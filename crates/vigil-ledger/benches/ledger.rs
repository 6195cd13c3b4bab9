//! Ledger throughput: append with fsync group commit (200-byte events) and verify.
//!
//! `cargo bench -p vigil-ledger`; figures are recorded in docs/BENCHMARKS.md.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_event::{Event, Timestamp};
use vigil_ledger::{Ledger, LedgerConfig, VerifyOptions, verify};

/// An event whose canonical encoding is about 200 bytes, like a typical auth log line.
fn event(i: u64) -> Event {
    let mut e = Event::new(Timestamp::from_secs(1_800_000_000 + (i / 100) as i64));
    e.insert(
        "message",
        format!(
            "Failed password for invalid user admin{} from 203.0.113.{} port {} ssh2",
            i % 1000,
            i % 250,
            1024 + i % 60000
        ),
    );
    e.insert(
        "source.ip",
        vigil_event::Value::Ip(format!("203.0.113.{}", i % 250).parse().unwrap()),
    );
    e.insert("event.outcome", "failure");
    e.insert("host.name", "bastion-01.example.internal");
    e.insert("process.name", "sshd");
    e.insert("user.name", format!("admin{}", i % 1000));
    e
}

fn events(n: u64, offset: u64) -> Vec<Event> {
    (offset..offset + n).map(event).collect()
}

fn append(c: &mut Criterion) {
    let sample = event(12345).to_canonical().len();
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (threads, batch) in [(1usize, 1000u64), (4, 256)] {
        let per_iter = threads as u64 * batch * 20;
        group.throughput(Throughput::Elements(per_iter));
        group.bench_function(format!("{threads}x{batch}-events-{sample}B-fsync"), |b| {
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().unwrap();
                let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
                // Pre-build the events so only appending is timed.
                let prepared: Vec<Vec<Event>> = (0..threads)
                    .map(|t| events(batch, t as u64 * batch))
                    .collect();
                let start = Instant::now();
                for _ in 0..iters {
                    std::thread::scope(|s| {
                        for batch_events in &prepared {
                            let ledger = ledger.clone();
                            s.spawn(move || {
                                for _ in 0..20 {
                                    ledger.append(batch_events).unwrap();
                                }
                            });
                        }
                    });
                }
                let elapsed = start.elapsed();
                ledger.close().unwrap();
                elapsed
            })
        });
    }
    group.finish();
}

fn verify_throughput(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    for chunk in 0..200u64 {
        ledger.append(&events(2000, chunk * 2000)).unwrap();
    }
    ledger.close().unwrap();
    let report = verify(dir.path(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
    assert!(report.is_intact());
    let mut group = c.benchmark_group("verify");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Bytes(report.event_bytes));
    group.bench_function(format!("{}-events", report.events), |b| {
        b.iter(|| {
            let r = verify(dir.path(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
            assert!(r.is_intact());
        })
    });
    group.finish();
}

criterion_group!(benches, append, verify_throughput);
criterion_main!(benches);
