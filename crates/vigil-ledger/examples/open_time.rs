//! Measures what the writer's check at open costs: `Ledger::open` of a ledger of N events after
//! a crash (an unsigned tail: the check folds the group hashes) and after a clean stop
//! (`cargo run --release -p vigil-ledger --example open_time -- N`), and the part of the check
//! that grows with the ledger, folding G group hashes into a frontier, for a ledger of 2 billion
//! events (7.8 M groups).

use std::time::Instant;

use vigil_event::{Event, Timestamp};
use vigil_ledger::merkle::{Frontier, leaf_hash};
use vigil_ledger::{Ledger, LedgerConfig};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    let mut done = 0;
    while done < n {
        let batch: Vec<Event> = (done..(done + 10_000).min(n))
            .map(|i| {
                let mut e = Event::new(Timestamp::from_secs(1_800_000_000 + i as i64));
                e.insert("message", format!("event {i}"));
                e
            })
            .collect();
        done += batch.len() as u64;
        ledger.append(&batch).unwrap();
    }
    // The state a crash leaves: the last events fsynced but not signed. Keep the signed files
    // as they are now, add events, and put the signed files back.
    ledger.checkpoint().unwrap();
    let paths = ledger.paths().clone();
    let log = std::fs::read(paths.checkpoints()).unwrap();
    let witness = std::fs::read(paths.witness()).unwrap();
    ledger
        .append(&[Event::new(Timestamp::from_secs(1_900_000_000))])
        .unwrap();
    ledger.close().unwrap();
    std::fs::write(paths.checkpoints(), log).unwrap();
    std::fs::write(paths.witness(), witness).unwrap();
    let t = Instant::now();
    let (ledger, recovery) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    println!(
        "open of {n} events after a crash (tail {:?} checked and signed): {:?}",
        recovery.unsigned_tail,
        t.elapsed()
    );
    ledger.close().unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
        let took = t.elapsed();
        ledger.close().unwrap();
        println!("open of {n} events: {took:?}");
    }
    let groups = 2_000_000_000u64 / 256;
    let hash = leaf_hash(b"x");
    let t = Instant::now();
    let mut frontier = Frontier::new();
    for _ in 0..groups {
        frontier.push_subtree(8, hash);
    }
    let root = frontier.root();
    println!(
        "frontier over {groups} group hashes (2e9 events): {:?} (root {:02x}{:02x}…)",
        t.elapsed(),
        root[0],
        root[1]
    );
}
