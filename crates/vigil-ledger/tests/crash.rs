//! Crash safety: a child process appends in a loop (several threads, so group commit is in
//! play, with frequent checkpoints and segment rolls) and is killed with SIGKILL at random
//! moments, 25 times. Every sequence number it was told was durable must be there afterwards,
//! holding exactly the event that was appended, and the ledger must verify.
//!
//! The child is this test binary itself, re-run with `VIGIL_CRASH_CHILD` set.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vigil_event::{Event, Timestamp};
use vigil_ledger::{Ledger, LedgerConfig, LedgerReader, VerifyOptions, verify};

const CHILD_ENV: &str = "VIGIL_CRASH_CHILD";
const KILLS: usize = 25;

fn config() -> LedgerConfig {
    LedgerConfig {
        segment_max_bytes: 64 * 1024,
        checkpoint_interval: Duration::from_millis(30),
        ..LedgerConfig::default()
    }
}

/// The event for sequence number `seq` carries `seq` itself, so its position can be checked.
fn event_for(thread: u64, counter: u64) -> Event {
    let mut e = Event::new(Timestamp::from_nanos(counter as i64));
    e.insert("thread", thread as i64);
    e.insert("counter", counter as i64);
    e.insert(
        "message",
        format!(
            "thread {thread} event {counter} {}",
            "p".repeat((counter % 97) as usize)
        ),
    );
    e
}

/// The child: append forever from three threads, printing `durable <thread> <counter> <seq>`
/// once each append returns.
fn child(dir: &Path) {
    let (ledger, _) = Ledger::open(dir, config()).expect("child opens the ledger");
    let mut handles = Vec::new();
    for thread in 0..3u64 {
        let ledger = ledger.clone();
        handles.push(std::thread::spawn(move || {
            let mut counter = 0u64;
            loop {
                let n = 1 + (counter % 37);
                let events: Vec<Event> = (0..n).map(|i| event_for(thread, counter + i)).collect();
                let range = ledger.append(&events).expect("append");
                // One line per event, so the parent can check every one afterwards.
                let mut out = String::new();
                for (i, seq) in range.enumerate() {
                    out.push_str(&format!("durable {thread} {} {seq}\n", counter + i as u64));
                }
                print!("{out}");
                counter += n;
            }
        }));
    }
    for h in handles {
        let _ = h.join();
    }
}

#[test]
fn crash_child_entry() {
    // Runs the child when re-executed by `kill_nine_loses_no_acknowledged_event`; otherwise a
    // no-op, as it is only half of that test.
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
    }
}

#[test]
fn kill_nine_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // (thread, counter) -> seq for every acknowledged event, across all runs.
    let mut acknowledged: Vec<(u64, u64, u64)> = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "crash_child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let parts: Vec<&str> = line.split(' ').collect();
                if parts.len() == 4 && parts[0] == "durable" {
                    lines.push((
                        parts[1].parse::<u64>().unwrap(),
                        parts[2].parse::<u64>().unwrap(),
                        parts[3].parse::<u64>().unwrap(),
                    ));
                }
            }
            lines
        });
        // xorshift for a random kill moment between 40 and 440 ms.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let wait = 40 + seed % 400;
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        done.store(true, Ordering::Relaxed);
        let lines = reader.join().unwrap();
        assert!(
            !lines.is_empty() || round > 0 || wait < 100,
            "the child appended nothing in {wait} ms"
        );
        acknowledged.extend(lines);
    }
    assert!(
        acknowledged.len() > 1000,
        "only {} acknowledged events",
        acknowledged.len()
    );

    // Recovery, then every acknowledged event must be at its sequence number.
    let (ledger, recovery) =
        Ledger::open(dir.path(), config()).unwrap_or_else(|e| panic!("reopen failed: {e}"));
    let end = ledger.end_seq();
    ledger.close().unwrap();
    eprintln!(
        "after {KILLS} kills: {} acknowledged, ledger holds {end}, last recovery cut {:?}",
        acknowledged.len(),
        recovery.cut
    );
    let mut reader = LedgerReader::open(dir.path()).unwrap();
    let mut stored = Vec::with_capacity(end as usize);
    reader
        .for_each_raw(0..end, |seq, bytes| {
            assert_eq!(seq, stored.len() as u64);
            stored.push(bytes.to_vec());
            Ok(())
        })
        .unwrap();
    assert_eq!(stored.len() as u64, end);
    for (thread, counter, seq) in &acknowledged {
        assert!(
            *seq < end,
            "acknowledged seq {seq} lost (ledger ends at {end})"
        );
        let expected = event_for(*thread, *counter).to_canonical();
        assert_eq!(stored[*seq as usize], expected, "seq {seq}");
    }
    let report = verify(dir.path(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.end_seq, end);
}

/// Copies the files of a ledger directory (not the lock) from `from` to `to`.
fn copy_ledger(from: &Path, to: &Path) {
    let (from, to) = (from.join("ledger"), to.join("ledger"));
    std::fs::create_dir_all(to.join("segments")).unwrap();
    for name in [
        "signing.key",
        "verifier.vkey",
        "tiles.dat",
        "checkpoints.log",
        "prunes.log",
        "witness",
        "recoveries.log",
        "keys.log",
    ] {
        if from.join(name).exists() {
            std::fs::copy(from.join(name), to.join(name)).unwrap();
        }
    }
    for entry in std::fs::read_dir(from.join("segments")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join("segments").join(entry.file_name())).unwrap();
    }
}

/// One append that spans many blocks and a segment roll, cut by a crash after every block
/// boundary it wrote (before its fsync returned, so before anyone was told it was durable):
/// recovery must keep all of it or none of it, never a prefix (issue 13, defect 7).
#[test]
fn crash_between_blocks_of_one_append_stores_all_or_nothing() {
    let before = tempfile::tempdir().unwrap();
    let small_segments = LedgerConfig {
        segment_max_bytes: 96 * 1024,
        ..LedgerConfig::default()
    };
    // A committed prefix: 10 events and a checkpoint over them.
    let (ledger, _) = Ledger::open(before.path(), small_segments.clone()).unwrap();
    let prefix: Vec<Event> = (0..10).map(|i| event_for(9, i)).collect();
    assert_eq!(ledger.append(&prefix).unwrap(), 0..10);
    ledger.close().unwrap();

    // The big append, written in full on a copy: its segment bytes are what a crash tears.
    let after = tempfile::tempdir().unwrap();
    copy_ledger(before.path(), after.path());
    let (ledger, _) = Ledger::open(after.path(), small_segments.clone()).unwrap();
    let big: Vec<Event> = (0..1500)
        .map(|i| {
            let mut e = event_for(1, i);
            // Incompressible-ish text, so blocks and segments fill.
            let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            e.insert("noise", common::noise(&mut x, 24));
            e
        })
        .collect();
    assert_eq!(ledger.append(&big).unwrap(), 10..1510);
    ledger.close().unwrap();

    let seg_dir = |d: &Path| d.join("ledger").join("segments");
    let mut before_segs: Vec<_> = std::fs::read_dir(seg_dir(before.path()))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    before_segs.sort();
    let mut after_segs: Vec<_> = std::fs::read_dir(seg_dir(after.path()))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    after_segs.sort();
    assert!(
        after_segs.len() >= 2,
        "the append must roll a segment for this test: {after_segs:?}"
    );
    let first_touched = before_segs.len() - 1;
    let before_len = std::fs::metadata(seg_dir(before.path()).join(&before_segs[first_touched]))
        .unwrap()
        .len();

    // Every block boundary the append produced, as (segment index, byte length kept).
    let mut cuts: Vec<(usize, u64)> = Vec::new();
    for (i, name) in after_segs.iter().enumerate().skip(first_touched) {
        let path = seg_dir(after.path()).join(name);
        let scanned = vigil_ledger::files::scan_segment(&path).unwrap();
        let mut ends = vec![vigil_ledger::format::SEGMENT_HEADER_LEN as u64];
        ends.extend(
            scanned
                .blocks
                .iter()
                .map(|b| b.offset + b.header.stored_len()),
        );
        ends.push(scanned.valid_len); // after the seal, for a sealed segment
        ends.dedup();
        for end in ends {
            if i == first_touched && end <= before_len {
                continue;
            }
            cuts.push((i, end));
        }
    }
    let full = *cuts.last().unwrap();
    assert!(cuts.len() > 6, "the append spans several blocks: {cuts:?}");

    for &(seg, len) in &cuts {
        let crashed = tempfile::tempdir().unwrap();
        // Checkpoint and tiles as before the append (it was never acknowledged), segments as
        // far as the crash let them reach the disk.
        copy_ledger(before.path(), crashed.path());
        for (i, name) in after_segs.iter().enumerate().skip(first_touched) {
            if i > seg {
                break;
            }
            let mut bytes = std::fs::read(seg_dir(after.path()).join(name)).unwrap();
            if i == seg {
                bytes.truncate(len as usize);
            }
            std::fs::write(seg_dir(crashed.path()).join(name), bytes).unwrap();
        }
        let complete = (seg, len) == full;
        let expected_live = if complete { 1510 } else { 10 };
        // Before recovery, these files are what a reader sees while the append is being
        // written: it shows all of the append or none of it, never the blocks written so far.
        let mut live = LedgerReader::open(crashed.path()).unwrap();
        assert_eq!(
            live.end_seq(),
            expected_live,
            "a reader saw part of an append (cut at segment {seg} byte {len})"
        );
        let mut seen = 0;
        live.for_each_raw(0..u64::MAX, |_, _| {
            seen += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, expected_live, "cut at segment {seg} byte {len}");
        live.refresh().unwrap();
        assert_eq!(
            live.end_seq(),
            expected_live,
            "cut at segment {seg} byte {len}"
        );
        drop(live);
        let (ledger, report) = Ledger::open(crashed.path(), small_segments.clone())
            .unwrap_or_else(|e| panic!("cut at segment {seg} byte {len}: {e}"));
        // Kept whole, the append is past the last checkpoint (the crash came before one): the
        // writer checks it continues the signed tree, signs it, and records that in an event
        // of its own.
        let expected = if complete {
            assert_eq!(report.unsigned_tail, Some(10..1510), "{report:?}");
            1511
        } else {
            10
        };
        assert_eq!(
            ledger.end_seq(),
            expected,
            "cut at segment {seg} byte {len}: {report:?}"
        );
        // The ledger goes on: a new append follows the kept events and everything verifies.
        let next = ledger.append(&[event_for(2, 0)]).unwrap();
        assert_eq!(next, expected..expected + 1);
        ledger.close().unwrap();
        let verified = verify(crashed.path(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
        assert!(
            verified.is_intact(),
            "cut at segment {seg} byte {len}: {:?}",
            verified.problems
        );
        let mut reader = LedgerReader::open(crashed.path()).unwrap();
        assert_eq!(reader.end_seq(), expected + 1);
        let last = reader.read_event(expected).unwrap();
        assert_eq!(last.get("thread").and_then(|v| v.as_i64()), Some(2));
    }
}
