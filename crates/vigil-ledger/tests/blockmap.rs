//! Block maps (`blockmap.rs`): a reader that loads a sealed segment's block map sees exactly
//! what walking the segment shows, a stale, damaged or lying map changes nothing that is read,
//! and maps are made for ledgers written before them and removed with pruned segments.

use std::path::Path;

use vigil_event::{Event, Timestamp};
use vigil_ledger::files::{self, LedgerPaths, SegmentBlocks};
use vigil_ledger::{Ledger, LedgerConfig, LedgerReader, PruneOutcome, RetentionPolicy, blockmap};

fn filled(dir: &Path) -> (Ledger, Vec<String>) {
    let config = LedgerConfig {
        segment_max_bytes: 4096,
        ..LedgerConfig::default()
    };
    let (ledger, _) = Ledger::open(dir, config).unwrap();
    let mut messages = Vec::new();
    for batch in 0..8u64 {
        let events: Vec<Event> = (0..(150 + batch * 70))
            .map(|i| {
                let mut e = Event::new(Timestamp::from_secs(1_800_000_000 + i as i64));
                let m = format!("batch {batch} event {i} {}", "y".repeat((i % 40) as usize));
                e.insert("message", m.clone());
                messages.push(m);
                e
            })
            .collect();
        ledger.append(&events).unwrap();
    }
    (ledger, messages)
}

fn same(a: &SegmentBlocks, b: &SegmentBlocks) {
    assert_eq!(a.first_seq, b.first_seq);
    assert_eq!(a.created_nanos, b.created_nanos);
    assert_eq!(a.path, b.path);
    assert_eq!(a.blocks, b.blocks);
    assert_eq!(a.sealed_nanos, b.sealed_nanos);
    assert_eq!(a.valid_len, b.valid_len);
    assert_eq!(a.file_len, b.file_len);
    assert_eq!(a.tail_problem, b.tail_problem);
}

fn messages_read(dir: &Path) -> Vec<String> {
    let mut reader = LedgerReader::open(dir).unwrap();
    let mut out = Vec::new();
    let end = reader.end_seq();
    reader
        .for_each_raw(0..end, |_, raw| {
            let e = Event::from_canonical(raw).unwrap();
            out.push(e.get("message").unwrap().to_string());
            Ok(())
        })
        .unwrap();
    out
}

#[test]
fn sealed_segments_get_a_map_that_shows_what_the_walk_shows() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, messages) = filled(dir.path());
    let paths = LedgerPaths::new(dir.path());
    let listed = files::list_segments(&paths).unwrap();
    assert!(listed.len() >= 4, "the test needs several segments");
    let (last_first, _) = listed.last().unwrap().clone();
    for (first, path) in &listed {
        let map = blockmap::blockmap_path(&paths, *first);
        if *first == last_first {
            assert!(!map.exists(), "the open segment has no map");
            continue;
        }
        assert!(map.exists(), "segment {first} is sealed but has no map");
        let bytes = std::fs::read(&map).unwrap();
        let walked = files::scan_segment(path).unwrap();
        let header = &std::fs::read(path).unwrap()[..32];
        let mapped = blockmap::decode(&bytes, path, header, walked.file_len).unwrap();
        same(&mapped, &walked);
        same(
            &blockmap::load_segment(&paths, *first, path).unwrap(),
            &walked,
        );
    }
    // A reader (loading the maps) shows every event, in order, as appended.
    assert_eq!(messages_read(dir.path()), messages);
    // The writer's own reader sees the same.
    let mut live = ledger.reader().unwrap();
    assert_eq!(live.end_seq(), messages.len() as u64);
    assert_eq!(live.read_raw(3).unwrap(), {
        let mut r = LedgerReader::open(dir.path()).unwrap();
        r.read_raw(3).unwrap()
    });
    ledger.close().unwrap();
}

#[test]
fn a_stale_or_damaged_map_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, messages) = filled(dir.path());
    ledger.close().unwrap();
    let paths = LedgerPaths::new(dir.path());
    let listed = files::list_segments(&paths).unwrap();
    let (a, path_a) = listed[0].clone();
    let (b, path_b) = listed[1].clone();
    let map_a = blockmap::blockmap_path(&paths, a);
    let map_b = blockmap::blockmap_path(&paths, b);
    let good_b = std::fs::read(&map_b).unwrap();

    // Another segment's map.
    std::fs::copy(&map_a, &map_b).unwrap();
    same(
        &blockmap::load_segment(&paths, b, &path_b).unwrap(),
        &files::scan_segment(&path_b).unwrap(),
    );
    // A flipped byte, a cut map, an empty map.
    for damaged in [
        {
            let mut d = good_b.clone();
            d[100] ^= 0x40;
            d
        },
        good_b[..good_b.len() - 5].to_vec(),
        Vec::new(),
    ] {
        std::fs::write(&map_b, &damaged).unwrap();
        same(
            &blockmap::load_segment(&paths, b, &path_b).unwrap(),
            &files::scan_segment(&path_b).unwrap(),
        );
    }
    // A map of a segment that has since changed length.
    std::fs::write(&map_b, &good_b).unwrap();
    let header = &std::fs::read(&path_b).unwrap()[..32];
    let len = std::fs::metadata(&path_b).unwrap().len();
    assert!(blockmap::decode(&good_b, &path_b, header, len).is_some());
    assert!(blockmap::decode(&good_b, &path_b, header, len + 1).is_none());
    assert!(blockmap::decode(&good_b, &path_a, &[0u8; 32], len).is_none());

    std::fs::write(&map_b, b"VIGILBMP\x01 garbage").unwrap();
    assert_eq!(messages_read(dir.path()), messages);
}

#[test]
fn a_map_that_lies_about_a_block_cannot_change_what_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, messages) = filled(dir.path());
    ledger.close().unwrap();
    let paths = LedgerPaths::new(dir.path());
    let (first, path) = files::list_segments(&paths).unwrap()[0].clone();
    let map = blockmap::blockmap_path(&paths, first);
    let mut bytes = std::fs::read(&map).unwrap();
    // The first block header's CRC field, with the map's own CRC made to match: a well-formed
    // map that names a block the file does not hold.
    let first_block = 16 + 32 + 8 + 8;
    bytes[first_block + 28] ^= 0xff;
    let body = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&map, &bytes).unwrap();
    let loaded = blockmap::load_segment(&paths, first, &path).unwrap();
    assert_ne!(loaded.blocks, files::scan_segment(&path).unwrap().blocks);

    let mut reader = LedgerReader::open(dir.path()).unwrap();
    let block_end = loaded.blocks[0].header.end_seq();
    let err = reader.read_raw(0).unwrap_err();
    assert!(err.to_string().contains("block header changed"), "{err}");
    // The blocks the map names truly are still read, and checked.
    let raw = reader.read_raw(block_end).unwrap();
    let e = Event::from_canonical(&raw).unwrap();
    assert_eq!(
        e.get("message").unwrap().to_string(),
        messages[block_end as usize]
    );
}

#[test]
fn ledgers_without_maps_get_them_at_open_and_pruning_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, messages) = filled(dir.path());
    ledger.close().unwrap();
    let paths = LedgerPaths::new(dir.path());
    std::fs::remove_dir_all(blockmap::blockmaps_dir(&paths)).unwrap();
    assert_eq!(messages_read(dir.path()), messages, "no maps: walked");

    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    let listed = files::list_segments(&paths).unwrap();
    let sealed = &listed[..listed.len() - 1];
    for (first, _) in sealed {
        assert!(blockmap::blockmap_path(&paths, *first).exists());
    }

    let later = Timestamp::from_secs(Timestamp::now().as_secs() + 31 * 86_400);
    let policy = RetentionPolicy {
        max_age: std::time::Duration::from_secs(30 * 86_400),
    };
    let PruneOutcome::Pruned(record) = ledger.prune(policy, later).unwrap() else {
        panic!("expected a pruning");
    };
    assert!(!record.segments.is_empty());
    for s in &record.segments {
        assert!(!blockmap::blockmap_path(&paths, s.first_seq).exists());
    }
    ledger.close().unwrap();
    let reader = LedgerReader::open(dir.path()).unwrap();
    assert!(reader.first_seq() > 0);
    assert!(reader.end_seq() as usize > messages.len()); // and the pruning's audit event
}
