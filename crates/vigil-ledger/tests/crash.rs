//! Crash safety: a child process appends in a loop (several threads, so group commit is in
//! play, with frequent checkpoints and segment rolls) and is killed with SIGKILL at random
//! moments, 25 times. Every sequence number it was told was durable must be there afterwards,
//! holding exactly the event that was appended, and the ledger must verify.
//!
//! The child is this test binary itself, re-run with `VIGIL_CRASH_CHILD` set.

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
