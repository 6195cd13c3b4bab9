//! Rebuilds a data directory's index from its ledger the way `vigil reindex` does (same batch,
//! same commit points) and prints the events per second and the index's size on disk, so the
//! index layout can be measured in a release build without building the whole `vigil` binary.
//!
//! ```text
//! cargo run --release -p vigil-index --example reindex_bench -- DATA_DIR [THREADS]
//! ```

use std::time::Instant;

use vigil_index::{Indexer, index_all, index_dir};
use vigil_ledger::LedgerReader;

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: DATA_DIR [THREADS]")?);
    let threads: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2);
    let mut ledger = LedgerReader::open(&dir)?;
    let mut indexer = Indexer::open(&dir, threads)?;
    indexer.clear()?;
    let started = Instant::now();
    let n = index_all(&mut indexer, &mut ledger, 500_000, |_, _| {})?;
    indexer.close()?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "indexed {n} events in {secs:.1} s ({:.0} events/s, {threads} threads); index {} bytes",
        n as f64 / secs,
        dir_bytes(&index_dir(&dir))
    );
    Ok(())
}
