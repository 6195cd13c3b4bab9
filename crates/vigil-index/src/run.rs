//! Running a query over a data directory from outside the server (`vigil search`), and over a
//! ledger reader (the server's searches): with the index when there is one, else by scanning.

use std::path::Path;

use vigil_event::Event;
use vigil_ledger::LedgerReader;
use vigil_query::{Limits, Pipeline, QueryResult};

use crate::SearchIndex;

/// Scans the whole ledger (without a lock, so it works while `serve` appends) and runs the
/// pipeline: the reference engine, used when a data directory has no index.
pub fn run_on_ledger(
    data_dir: &Path,
    pipeline: &Pipeline,
    limits: Limits,
) -> Result<QueryResult, String> {
    let reader = LedgerReader::open(data_dir).map_err(|e| e.to_string())?;
    run_on_reader(reader, pipeline, limits)
}

/// [`run_on_ledger`] with a reader already open: in the server, one from
/// [`vigil_ledger::Ledger::reader`], so a query never sees events that are not durable yet.
pub fn run_on_reader(
    mut reader: LedgerReader,
    pipeline: &Pipeline,
    limits: Limits,
) -> Result<QueryResult, String> {
    let (first, end) = (reader.first_seq(), reader.end_seq());
    // Decoding runs beside the query engine; the bounded channel keeps memory flat (events may
    // be up to 1 MiB each, so it holds few).
    let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Event)>(256);
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

/// Runs a query on a data directory from outside the server (`vigil search`): with the index
/// when there is one (events it has not reached are scanned from the ledger), else by scanning.
pub fn run_on_data_dir(
    data_dir: &Path,
    pipeline: &Pipeline,
    limits: Limits,
) -> Result<QueryResult, String> {
    match SearchIndex::open(data_dir) {
        Ok(Some(index)) => {
            let mut ledger = LedgerReader::open(data_dir).map_err(|e| e.to_string())?;
            index
                .search(&mut ledger, pipeline, limits)
                .map(|(r, _)| r)
                .map_err(|e| e.to_string())
        }
        Ok(None) => run_on_ledger(data_dir, pipeline, limits),
        Err(e) => {
            tracing::warn!("not using the index: {e}");
            run_on_ledger(data_dir, pipeline, limits)
        }
    }
}
