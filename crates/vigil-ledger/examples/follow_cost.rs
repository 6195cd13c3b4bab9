//! What a follower's wake costs as the open segment grows: CPU time of
//! `LedgerReader::refresh` after each append (it walks on from the last block it read), next to
//! a reader opened afresh each time (what a refresh cost before: every block header of the
//! open segment walked again and all of `tiles.dat` read). Thread CPU time
//! by the wall clock (one thread; see `thread_cpu`).
//!
//! ```text
//! cargo run --release -p vigil-ledger --example follow_cost -- [BATCHES] [EVENTS_PER_BATCH]
//! ```

use std::time::Duration;

use vigil_event::{Event, Timestamp};
use vigil_ledger::{Ledger, LedgerConfig, LedgerReader};

/// Wall time since the start: `schedstat` lags for a thread that does not block, so short
/// stretches are timed by the clock (single thread; a loaded machine inflates both sides).
fn thread_cpu() -> Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let batches: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(4000);
    let per: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    let mut follower = ledger.reader().unwrap();
    let (mut incremental, mut fresh) = (Duration::ZERO, Duration::ZERO);
    let report_every = batches / 8;
    let (mut inc_window, mut fresh_window) = (Duration::ZERO, Duration::ZERO);
    for b in 0..batches {
        let events: Vec<Event> = (0..per)
            .map(|i| {
                let mut e = Event::new(Timestamp::from_secs(1_800_000_000 + (b * per + i) as i64));
                e.insert(
                    "message",
                    format!(
                        "<38>Dec  7 18:00:00 bastion sshd[{i}]: Failed password for invalid user u{b} from 203.0.113.{} port {} ssh2",
                        i % 250,
                        b * per + i
                    ),
                );
                e
            })
            .collect();
        ledger.append(&events).unwrap();
        let t0 = thread_cpu();
        follower.refresh().unwrap();
        let t1 = thread_cpu();
        let again = LedgerReader::open(dir.path()).unwrap();
        let t2 = thread_cpu();
        assert_eq!(again.end_seq(), follower.end_seq());
        inc_window += t1 - t0;
        fresh_window += t2 - t1;
        if report_every > 0 && (b + 1) % report_every == 0 {
            let blocks: usize = follower.segments().iter().map(|s| s.blocks.len()).sum();
            println!(
                "after {:>7} events ({blocks:>6} blocks, {} segments): per wake, refresh {:>8.1} µs, fresh open {:>8.1} µs",
                follower.end_seq(),
                follower.segments().len(),
                inc_window.as_secs_f64() * 1e6 / report_every as f64,
                fresh_window.as_secs_f64() * 1e6 / report_every as f64,
            );
            incremental += inc_window;
            fresh += fresh_window;
            inc_window = Duration::ZERO;
            fresh_window = Duration::ZERO;
        }
    }
    println!(
        "total over {batches} wakes: refresh {:.3} s, fresh open {:.3} s",
        incremental.as_secs_f64(),
        fresh.as_secs_f64()
    );
    ledger.close().unwrap();
}
