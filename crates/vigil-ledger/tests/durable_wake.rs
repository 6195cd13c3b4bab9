//! The wake a follower of the durable end (the detector) sleeps on: every group commit
//! delivers it, a follower woken once for many commits (wakes coalesce) still reads every
//! event exactly once, and the events appended before the writer closes are all there.
//!
//! No test here measures how fast a wake arrives: each wait has a long bound (a liveness
//! bound, never reached unless a wake is lost), and the assertions are about what the
//! follower saw.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vigil_event::{Event, Timestamp};
use vigil_ledger::{Ledger, LedgerConfig, LedgerReader};

/// A wait that only a lost wake (or a hung writer) runs out.
const LIVENESS: Duration = Duration::from_secs(120);

fn event(writer: u64, n: u64) -> Event {
    let mut e = Event::new(Timestamp::from_secs(1_800_000_000));
    e.insert("writer", writer as i64);
    e.insert("n", n as i64);
    e
}

/// Writers and a follower woken by the ledger: each wait ends because the durable end moved
/// (not by its bound), and the follower reads every appended event exactly once, in sequence
/// order, although it is woken fewer times than there are commits.
#[test]
fn a_follower_woken_by_group_commits_reads_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = LedgerConfig {
        // Small segments: the follower also crosses segment rolls.
        segment_max_bytes: 64 * 1024,
        ..LedgerConfig::default()
    };
    let (ledger, _) = Ledger::open(dir.path(), config).unwrap();
    const WRITERS: u64 = 4;
    const BATCHES: u64 = 150;
    // Batches of 1, 2 or 3 events: 300 events per writer.
    let per_writer: u64 = (0..BATCHES).map(|b| b % 3 + 1).sum();
    let expected = WRITERS * per_writer;
    let follower = {
        let ledger = ledger.clone();
        std::thread::spawn(move || {
            let mut reader = ledger.reader().unwrap();
            let (mut next, mut wakes) = (0u64, 0u64);
            let mut seen: Vec<(u64, i64, i64)> = Vec::new();
            while next < expected {
                let end = ledger.wait_durable(next, LIVENESS);
                assert!(
                    end > next,
                    "the wait ended without the durable end moving past {next} (a lost wake)"
                );
                wakes += 1;
                reader.refresh().unwrap();
                assert!(
                    reader.end_seq() >= end,
                    "a woken reader sees the durable end"
                );
                reader
                    .for_each_raw(next..end, |seq, raw| {
                        let e = Event::from_canonical(raw).unwrap();
                        let field = |k: &str| match e.get(k) {
                            Some(vigil_event::Value::Int(i)) => *i,
                            other => panic!("{k}: {other:?}"),
                        };
                        seen.push((seq, field("writer"), field("n")));
                        Ok(())
                    })
                    .unwrap();
                next = end;
            }
            (seen, wakes)
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                for b in 0..BATCHES {
                    let events: Vec<Event> = (0..b % 3 + 1)
                        .map(|_| {
                            n += 1;
                            event(w, n - 1)
                        })
                        .collect();
                    let range = ledger.append(&events).unwrap();
                    assert_eq!(range.end - range.start, events.len() as u64);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let (seen, wakes) = follower.join().unwrap();
    assert_eq!(ledger.end_seq(), expected);
    // Every sequence number once, in order.
    let seqs: Vec<u64> = seen.iter().map(|s| s.0).collect();
    assert_eq!(seqs, (0..expected).collect::<Vec<_>>());
    // Every writer's every event once.
    let ids: BTreeSet<(i64, i64)> = seen.iter().map(|s| (s.1, s.2)).collect();
    assert_eq!(ids.len() as u64, expected);
    for w in 0..WRITERS as i64 {
        for n in 0..per_writer as i64 {
            assert!(ids.contains(&(w, n)), "writer {w}'s event {n} was not read");
        }
    }
    // Each writer's events in the order it appended them.
    for w in 0..WRITERS as i64 {
        let ns: Vec<i64> = seen.iter().filter(|s| s.1 == w).map(|s| s.2).collect();
        assert_eq!(ns, (0..per_writer as i64).collect::<Vec<_>>());
    }
    assert!(wakes >= 1 && wakes <= expected);
    ledger.close().unwrap();
}

/// A follower waiting while the end is already past its position returns at once, whatever
/// its bound (the check under the lock), and one waiting for a position the end never
/// passes returns the end unchanged once its bound runs out.
#[test]
fn a_wait_returns_at_once_when_the_end_is_already_past() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    ledger.append(&[event(0, 0), event(0, 1)]).unwrap();
    for seq in [0, 1] {
        assert_eq!(ledger.wait_durable(seq, LIVENESS), 2);
    }
    assert_eq!(ledger.wait_durable(2, Duration::from_millis(1)), 2);
    ledger.close().unwrap();
}

/// Appends made right up to the writer's close, with a follower woken throughout: after the
/// close nothing acknowledged is missing, and a reader opened afresh holds every event.
#[test]
fn nothing_acknowledged_is_lost_when_the_writer_closes_under_a_follower() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let follower = {
        let (ledger, stop) = (ledger.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut next = 0;
            // Short bounds here: this follower also has to notice the stop flag.
            while !stop.load(Ordering::SeqCst) {
                next = ledger.wait_durable(next, Duration::from_millis(20));
            }
            next
        })
    };
    let mut acknowledged = 0u64;
    for b in 0..200u64 {
        let range = ledger.append(&[event(0, b)]).unwrap();
        acknowledged = acknowledged.max(range.end);
    }
    stop.store(true, Ordering::SeqCst);
    let followed = follower.join().unwrap();
    assert!(followed <= acknowledged);
    ledger.close().unwrap();
    let mut reader = LedgerReader::open(dir.path()).unwrap();
    assert_eq!(reader.end_seq(), acknowledged);
    let mut n = 0;
    reader
        .for_each_raw(0..acknowledged, |_, _| {
            n += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(n, acknowledged);
}
