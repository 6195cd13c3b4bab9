//! Writes every event of one ledger into a new ledger through the writer (appends of 4,096
//! events, the writer's default settings), then prints the new ledger's bytes on disk and the
//! time taken: how a ledger written by this build compares with one written by another, over
//! the same events. The new ledger has its own key and checkpoints.
//!
//! ```text
//! cargo run --release -p vigil-ledger --example restore -- FROM_DATA_DIR TO_DATA_DIR
//! ```

use std::time::Instant;

use vigil_event::Event;
use vigil_ledger::{Ledger, LedgerConfig, LedgerReader};

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let from = std::path::PathBuf::from(args.next().ok_or("usage: FROM_DATA_DIR TO_DATA_DIR")?);
    let to = std::path::PathBuf::from(args.next().ok_or("usage: FROM_DATA_DIR TO_DATA_DIR")?);
    let mut reader = LedgerReader::open(&from)?;
    let (ledger, _) = Ledger::open(&to, LedgerConfig::default())?;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(4096);
    let mut n = 0u64;
    reader.for_each_raw(reader.first_seq()..reader.end_seq(), |_, raw| {
        batch.push(Event::from_canonical(raw).map_err(|e| {
            vigil_ledger::LedgerError::Invalid(format!("an event does not decode: {e}"))
        })?);
        if batch.len() == 4096 {
            ledger.append(&batch)?;
            n += batch.len() as u64;
            batch.clear();
        }
        Ok(())
    })?;
    n += batch.len() as u64;
    ledger.append(&batch)?;
    ledger.close()?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{n} events in {secs:.1} s ({:.0} events/s); ledger {} bytes (source ledger {} bytes)",
        n as f64 / secs,
        dir_bytes(&to.join("ledger")),
        dir_bytes(&from.join("ledger"))
    );
    Ok(())
}
