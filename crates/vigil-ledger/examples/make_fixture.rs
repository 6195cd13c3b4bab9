//! Writes a small ledger in the current on-disk format, for `testdata/`:
//! `cargo run -p vigil-ledger --example make_fixture -- crates/vigil-ledger/testdata/v1`.
//! Fixtures are frozen once written: `tests/compat.rs` checks that every one still reads and
//! verifies, so a format change that breaks old ledgers fails the tests.

use std::time::Duration;

use vigil_event::{Event, Timestamp, Value};
use vigil_ledger::{Ledger, LedgerConfig, RetentionPolicy};

fn event(i: u64) -> Event {
    let mut e = Event::new(Timestamp::from_secs(1_790_000_000 + i as i64));
    e.insert(
        "message",
        format!(
            "Failed password for invalid user u{i} from 198.51.100.{} port {}",
            i % 200,
            40000 + i
        ),
    );
    e.insert(
        "source.ip",
        Value::Ip(format!("198.51.100.{}", i % 200).parse().unwrap()),
    );
    e.insert("event.outcome", "failure");
    e.insert("n", i as i64);
    e
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: make_fixture DIR");
    let config = LedgerConfig {
        segment_max_bytes: 2048,
        ..LedgerConfig::default()
    };
    let (ledger, _) = Ledger::open(dir.as_ref(), config).unwrap();
    let first: Vec<Event> = (0..600).map(event).collect();
    ledger.append(&first).unwrap();
    ledger.checkpoint().unwrap();
    let later = Timestamp::from_secs(Timestamp::now().as_secs() + 3600);
    ledger
        .prune(
            RetentionPolicy {
                max_age: Duration::from_secs(60),
            },
            later,
        )
        .unwrap();
    let second: Vec<Event> = (600..1000).map(event).collect();
    ledger.append(&second).unwrap();
    ledger.close().unwrap();
}
