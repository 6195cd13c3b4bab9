//! Readers of a live ledger never see a write before it is whole and durable: not the blocks
//! of a multi-block append written so far, and (through [`Ledger::reader`]) nothing the writer
//! has not fsynced and published, so a follower never acts on events a failed write undoes.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vigil_event::{Event, Timestamp};
use vigil_ledger::files::{self, LedgerPaths};
use vigil_ledger::{Ledger, LedgerConfig, LedgerReader, format};

const BATCH: u64 = 600;

/// Events zstd cannot squeeze much, so one batch spans several blocks and segment rolls.
fn batch(n: u64, b: u64) -> Vec<Event> {
    let mut x = common::SEED ^ b;
    (0..n)
        .map(|i| {
            let noise = common::noise(&mut x, 24);
            let mut e = Event::new(Timestamp::from_secs(1_800_000_000 + i as i64));
            e.insert("batch", b as i64);
            e.insert("noise", noise);
            e
        })
        .collect()
}

/// A reader polling while multi-block batches are appended (each rolls segments) only ever
/// sees whole batches: its end is a batch boundary and every event up to it is readable.
#[test]
fn polling_reader_never_sees_part_of_a_multi_block_append() {
    let dir = tempfile::tempdir().unwrap();
    let config = LedgerConfig {
        segment_max_bytes: 96 * 1024,
        ..LedgerConfig::default()
    };
    let (ledger, _) = Ledger::open(dir.path(), config).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let (path, done) = (dir.path().to_owned(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut polls = 0u64;
            let mut reader = LedgerReader::open(&path).unwrap();
            while !done.load(Ordering::SeqCst) {
                // Both a fresh reader and one refreshed in place.
                let fresh = LedgerReader::open(&path).unwrap();
                reader.refresh().unwrap();
                for end in [fresh.end_seq(), reader.end_seq()] {
                    assert!(
                        end.is_multiple_of(BATCH),
                        "a reader saw {end} events: part of a {BATCH}-event append"
                    );
                }
                let mut n = 0;
                reader
                    .for_each_raw(0..reader.end_seq(), |_, _| {
                        n += 1;
                        Ok(())
                    })
                    .unwrap();
                assert_eq!(n, reader.end_seq());
                polls += 1;
            }
            polls
        })
    };
    for b in 0..40 {
        let seqs = ledger.append(&batch(BATCH, b)).unwrap();
        assert_eq!(seqs, b * BATCH..(b + 1) * BATCH);
    }
    done.store(true, Ordering::SeqCst);
    let polls = poller.join().unwrap();
    assert!(polls > 0);
    assert!(
        files::list_segments(&LedgerPaths::new(dir.path()))
            .unwrap()
            .len()
            > 10,
        "the batches roll segments"
    );
    ledger.close().unwrap();
}

/// Blocks in the segment past what the writer has made durable (written, fsync not yet
/// returned, or about to be undone after a failed one) are invisible to [`Ledger::reader`]: it
/// shows exactly [`Ledger::end_seq`], while the file alone cannot tell them apart.
#[test]
fn writer_reader_stops_at_the_durable_end() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    assert_eq!(ledger.append(&batch(10, 0)).unwrap(), 0..10);
    let mut follower = ledger.reader().unwrap();
    assert_eq!(follower.end_seq(), 10);

    // A complete block the writer has written but not (yet) made durable.
    let events: Vec<Vec<u8>> = batch(5, 1).iter().map(Event::to_canonical).collect();
    let slices: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
    let mut block = Vec::new();
    format::encode_events_block(&mut block, 10, &slices, 3, &mut Vec::new());
    let (_, segment) = files::list_segments(&LedgerPaths::new(dir.path()))
        .unwrap()
        .pop()
        .unwrap();
    let len = std::fs::metadata(&segment).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&segment).unwrap();
    f.write_all(&block).unwrap();
    drop(f);
    assert_eq!(
        LedgerReader::open(dir.path()).unwrap().end_seq(),
        15,
        "the files alone show the write"
    );

    follower.refresh().unwrap();
    assert_eq!(
        follower.end_seq(),
        10,
        "a follower sees only durable events"
    );
    assert!(follower.read_raw(10).is_err());
    assert_eq!(ledger.reader().unwrap().end_seq(), 10);

    // The write is undone (as after a failed fsync): the follower never noticed anything.
    OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len)
        .unwrap();
    follower.refresh().unwrap();
    assert_eq!(follower.end_seq(), 10);

    // The next durable append shows up, with its own events at those sequence numbers.
    assert_eq!(ledger.append(&batch(3, 2)).unwrap(), 10..13);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while follower.end_seq() < 13 && std::time::Instant::now() < deadline {
        follower.refresh().unwrap();
    }
    assert_eq!(follower.end_seq(), 13);
    assert_eq!(
        follower
            .read_event(10)
            .unwrap()
            .get("batch")
            .and_then(|v| v.as_i64()),
        Some(2)
    );
    ledger.close().unwrap();
}
