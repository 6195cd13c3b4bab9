//! A reader following a growing ledger (`LedgerReader::refresh`) walks on from the last block
//! it read instead of walking the open segment again: it sees every block exactly once, in
//! order, across segment rolls, and what it holds is what a reader opened afresh finds — also
//! after crash recovery cut the open segment and the writer wrote on over the cut.

mod common;

use std::fs::{self, OpenOptions};

use vigil_event::Event;
use vigil_ledger::files::{self, LedgerPaths};
use vigil_ledger::{Ledger, LedgerConfig, LedgerReader};

/// Events zstd cannot squeeze much (small segments then roll often).
fn events(n: u64, tag: &str) -> Vec<Event> {
    common::noisy_events(n, tag, common::SEED ^ tag.len() as u64, 4)
}

/// The blocks, ends and root of `reader` equal those of a reader opened afresh.
fn same_as_fresh(reader: &mut LedgerReader, dir: &std::path::Path) {
    let mut fresh = LedgerReader::open(dir).unwrap();
    assert_eq!(reader.end_seq(), fresh.end_seq());
    assert_eq!(reader.segments().len(), fresh.segments().len());
    for (a, b) in reader.segments().iter().zip(fresh.segments()) {
        assert_eq!(a.first_seq, b.first_seq);
        assert_eq!(a.blocks, b.blocks, "segment {}", a.first_seq);
        assert_eq!(a.valid_len, b.valid_len, "segment {}", a.first_seq);
        assert_eq!(a.sealed_nanos, b.sealed_nanos, "segment {}", a.first_seq);
    }
    let end = reader.end_seq();
    if end > 0 {
        assert_eq!(reader.root_at(end).unwrap(), fresh.root_at(end).unwrap());
    }
}

/// Blocks of `reader` not seen before (`seen`: one past the last event of the blocks seen),
/// checked to follow on exactly from `seen`; returns the new `seen`.
fn new_blocks(reader: &LedgerReader, seen: u64) -> (u64, usize) {
    let mut next = seen;
    let mut n = 0;
    for s in reader.segments() {
        for b in &s.blocks {
            if b.header.end_seq() <= seen {
                continue;
            }
            assert_eq!(b.header.first_seq, next, "a block seen twice or one missed");
            next = b.header.end_seq();
            n += 1;
        }
    }
    (next, n)
}

#[test]
fn a_follower_sees_every_block_once_across_segment_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let config = LedgerConfig {
        segment_max_bytes: 48 * 1024,
        ..LedgerConfig::default()
    };
    let (ledger, _) = Ledger::open(dir.path(), config).unwrap();
    // Both kinds of follower: the server's (never past the durable end) and a plain one.
    let mut durable = ledger.reader().unwrap();
    let mut plain = LedgerReader::open(dir.path()).unwrap();
    let (mut seen_durable, mut seen_plain, mut blocks) = (0u64, 0u64, 0usize);
    let mut expected = 0u64;
    for b in 0..120u64 {
        let n = b % 7 * 13 + 1;
        ledger.append(&events(n, &format!("batch{b}"))).unwrap();
        expected += n;
        for (reader, seen) in [
            (&mut durable, &mut seen_durable),
            (&mut plain, &mut seen_plain),
        ] {
            reader.refresh().unwrap();
            let (next, k) = new_blocks(reader, *seen);
            *seen = next;
            blocks += k;
            assert_eq!(reader.end_seq(), expected);
            same_as_fresh(reader, dir.path());
        }
    }
    let segments = durable.segments().len();
    assert!(segments >= 4, "only {segments} segments: no roll crossed");
    assert!(blocks >= 240, "{blocks} blocks");
    // Every event readable, each once, in order.
    let mut next = 0;
    durable
        .for_each_raw(0..expected, |seq, _| {
            assert_eq!(seq, next);
            next += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(next, expected);
    ledger.close().unwrap();
}

/// A plain reader read a block the crash lost (it was on disk, not yet durable); recovery
/// cut the segment and the writer appended other events over the cut, past where the reader
/// had read: the reader notices the block it read is gone and reads the segment again.
#[test]
fn a_follower_reads_again_what_crash_recovery_cut_and_rewrote() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    ledger.append(&events(200, "kept")).unwrap();
    ledger.close().unwrap();
    let paths = LedgerPaths::new(dir.path());
    let seg = files::list_segments(&paths).unwrap().pop().unwrap().1;
    let kept_len = fs::metadata(&seg).unwrap().len();
    let signed_len = fs::metadata(paths.checkpoints()).unwrap().len();
    let witnessed = fs::read(paths.witness()).ok();
    // Past a group boundary (256): the group hash the reader reads from `tiles.dat` changes.
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    ledger.append(&events(100, "lost")).unwrap();
    ledger.close().unwrap();

    let mut reader = LedgerReader::open(dir.path()).unwrap();
    assert_eq!(reader.end_seq(), 300);
    assert_eq!(
        reader
            .read_event(260)
            .unwrap()
            .get_str("message")
            .map(|m| m.starts_with("lost 60")),
        Some(true)
    );

    // The power went before the last block (and the checkpoint signing it) reached the disk:
    // the files end where they were.
    for (path, len) in [(seg.clone(), kept_len), (paths.checkpoints(), signed_len)] {
        OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(len)
            .unwrap();
    }
    if let Some(bytes) = witnessed {
        fs::write(paths.witness(), bytes).unwrap();
    }
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    assert_eq!(ledger.end_seq(), 200);
    // More and other events than the reader saw there: the file grows past its old length.
    ledger.append(&events(300, "after")).unwrap();
    assert!(fs::metadata(&seg).unwrap().len() > kept_len + 100);

    reader.refresh().unwrap();
    assert_eq!(reader.end_seq(), 500);
    same_as_fresh(&mut reader, dir.path());
    for seq in [200, 256, 299, 499] {
        let message = reader.read_event(seq).unwrap();
        let message = message.get_str("message").unwrap();
        assert!(message.starts_with("after "), "seq {seq}: {message}");
    }
    assert_eq!(
        reader
            .read_event(199)
            .unwrap()
            .get_str("message")
            .map(|m| m.starts_with("kept 199")),
        Some(true)
    );

    // And a cut the reader had not read past: it walks on from where it stopped.
    let end_before = reader.end_seq();
    ledger.append(&events(3, "later")).unwrap();
    reader.refresh().unwrap();
    assert_eq!(reader.end_seq(), end_before + 3);
    same_as_fresh(&mut reader, dir.path());
    ledger.close().unwrap();
}
