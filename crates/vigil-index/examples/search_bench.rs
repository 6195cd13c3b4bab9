//! Times queries against a data directory's index the way the server runs them (one warm
//! index reader and ledger reader): one warm-up run, then RUNS timed runs per query, printing
//! the minimum, median and maximum wall time and what the engine did.
//!
//! ```text
//! cargo run --release -p vigil-index --example search_bench -- DATA_DIR [RUNS] QUERY...
//! ```

use std::time::Instant;

use vigil_event::Timestamp;
use vigil_index::SearchIndex;
use vigil_ledger::LedgerReader;
use vigil_query::{Limits, parse};

/// User + system CPU seconds of this process so far (10 ms resolution).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: DATA_DIR [RUNS] QUERY...")?);
    let mut rest: Vec<String> = args.collect();
    let runs = match rest.first().and_then(|s| s.parse::<usize>().ok()) {
        Some(n) => {
            rest.remove(0);
            n
        }
        None => 10,
    };
    let index = SearchIndex::open(&dir)?.ok_or("no index in this data directory")?;
    let mut ledger = LedgerReader::open(&dir)?;
    println!(
        "{} events in the ledger, {} indexed",
        ledger.end_seq(),
        index.indexed_end()
    );
    let limits = Limits {
        from: None,
        to: None,
        max_rows: 100,
        now: Timestamp::now(),
    };
    if rest.first().map(String::as_str) == Some("--space") {
        rest.remove(0);
        for (field, bytes) in index.space_by_field()? {
            println!(
                "  {field:>18}: {:>6.1} MiB",
                bytes as f64 / (1 << 20) as f64
            );
        }
    }
    for text in rest {
        let pipeline = parse(&text).map_err(|e| format!("{text}: {}", e.message))?;
        let (warm, stats) = index.search(&mut ledger, &pipeline, limits)?;
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let _ = index.search(&mut ledger, &pipeline, limits)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let (cpu0, mut n) = (cpu_seconds(), 0u32);
        while cpu_seconds() - cpu0 < 2.0 && n < 100_000 {
            let _ = index.search(&mut ledger, &pipeline, limits)?;
            n += 1;
        }
        let cpu_ms = (cpu_seconds() - cpu0) * 1e3 / f64::from(n.max(1));
        println!(
            "{text}\n  min {:.1} ms  median {:.1} ms  max {:.1} ms  CPU {cpu_ms:.2} ms/run over {n} runs  ({} rows, matched {}, pushed down {}, exact {})",
            times[0],
            times[times.len() / 2],
            times[times.len() - 1],
            warm.rows.len(),
            warm.scanned,
            stats.pushed_down,
            stats.exact
        );
    }
    Ok(())
}
