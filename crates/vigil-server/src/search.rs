//! Running a query over a data directory's ledger: shared by `POST /api/v1/search` and
//! `vigil search`. Blocking; call it from a blocking thread.

use std::path::Path;

use vigil_event::{Event, Timestamp};
use vigil_query::ast::TimeSpec;
use vigil_query::{Limits, Pipeline, QueryResult};

/// A `--from`/`--to` or API time (`-15m`, `now`, RFC 3339) as an instant.
pub fn resolve_time(text: Option<&str>, now: Timestamp) -> Result<Option<Timestamp>, String> {
    let Some(t) = text else { return Ok(None) };
    match vigil_query::parse::parse_time(t) {
        Some(TimeSpec::Relative(s)) => Ok(Some(Timestamp::from_nanos(
            now.as_nanos()
                .saturating_add(s.saturating_mul(1_000_000_000)),
        ))),
        Some(TimeSpec::Absolute(n)) => Ok(Some(Timestamp::from_nanos(n))),
        None => Err(format!(
            "cannot read time {t:?}: use -15m, -24h, -7d, now, or RFC 3339"
        )),
    }
}

/// Scans the ledger (without a lock, so it works while `serve` appends) and runs the pipeline.
pub fn run_on_ledger(
    data_dir: &Path,
    pipeline: &Pipeline,
    limits: Limits,
) -> Result<QueryResult, String> {
    let mut reader = vigil_ledger::LedgerReader::open(data_dir).map_err(|e| e.to_string())?;
    let (first, end) = (reader.first_seq(), reader.end_seq());
    // Decoding runs beside the query engine; the bounded channel keeps memory flat.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Event)>(4096);
    let producer = std::thread::spawn(move || {
        reader.for_each_raw(first..end, |seq, raw| {
            if let Ok(event) = Event::from_canonical(raw) {
                let _ = tx.send((seq, event));
            }
            Ok(())
        })
    });
    let result = vigil_query::run(pipeline, rx, limits);
    producer
        .join()
        .map_err(|_| "the ledger reader thread failed".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(result)
}
