//! Running queries over a data directory (shared by `POST /api/v1/search` and `vigil search`),
//! and keeping its index in step with the ledger while `vigil serve` runs.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigil_event::Timestamp;
use vigil_index::{Indexer, SearchIndex};
use vigil_ledger::{Ledger, LedgerReader};
use vigil_query::{Limits, Pipeline, QueryResult};

pub use vigil_index::{run_on_data_dir, run_on_ledger, run_on_reader};
pub use vigil_query::resolve_time;

/// The index as the server runs it: a thread follows the ledger, searches use the latest
/// commit.
pub struct IndexService {
    /// The writer, whose [`Ledger::reader`] bounds what is indexed and searched to durable
    /// events.
    writer: Ledger,
    search: Arc<SearchIndex>,
    ledger: Mutex<Option<LedgerReader>>,
    progress: Arc<IndexProgress>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// What `/metrics` shows about the index.
#[derive(Default)]
pub struct IndexProgress {
    /// Everything below this sequence number is searchable through the index.
    pub indexed_end: AtomicU64,
    /// Events indexed since start.
    pub indexed_total: AtomicU64,
    /// Nanoseconds since the epoch when the index last matched the ledger's end.
    pub caught_up_at: AtomicU64,
    /// Indexing failures since start.
    pub errors: AtomicU64,
}

impl IndexProgress {
    /// Seconds since the index last matched the ledger (0 when it does now).
    pub fn lag_seconds(&self, ledger_end: u64) -> f64 {
        if self.indexed_end.load(Ordering::Relaxed) >= ledger_end {
            return 0.0;
        }
        let at = self.caught_up_at.load(Ordering::Relaxed) as i64;
        ((Timestamp::now().as_nanos() - at).max(0) as f64) / 1e9
    }
}

impl IndexService {
    /// Opens the index of `data_dir` (creating it, or rebuilding it if its layout is old) and
    /// starts following the ledger with `threads` indexing threads.
    /// Only durable events (up to [`Ledger::end_seq`]) are indexed or searched.
    pub fn start(data_dir: &Path, writer: Ledger, threads: usize) -> Result<IndexService, String> {
        let mut indexer = Indexer::open(data_dir, threads).map_err(|e| e.to_string())?;
        let search = Arc::new(SearchIndex::new(indexer.index()).map_err(|e| e.to_string())?);
        let progress = Arc::new(IndexProgress::default());
        progress
            .indexed_end
            .store(indexer.next_seq(), Ordering::Relaxed);
        progress
            .caught_up_at
            .store(Timestamp::now().as_nanos() as u64, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (writer, search, progress, stop) = (
                writer.clone(),
                Arc::clone(&search),
                Arc::clone(&progress),
                Arc::clone(&stop),
            );
            std::thread::Builder::new()
                .name("vigil-index".into())
                .spawn(move || follow(&writer, &mut indexer, &search, &progress, &stop))
                .map_err(|e| e.to_string())?
        };
        Ok(IndexService {
            writer,
            search,
            ledger: Mutex::new(None),
            progress,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Indexing progress, for `/metrics`.
    pub fn progress(&self) -> &IndexProgress {
        &self.progress
    }

    /// Runs a query (blocking: call from a blocking thread).
    pub fn run(&self, pipeline: &Pipeline, limits: Limits) -> Result<QueryResult, String> {
        // One ledger reader is kept between searches; refreshing it only rescans the newest
        // segment. Concurrent searches open their own.
        let cached = self.ledger.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut ledger = match cached {
            Some(l) => l,
            None => self.writer.reader().map_err(|e| e.to_string())?,
        };
        let result = self
            .search
            .search(&mut ledger, pipeline, limits)
            .map(|(r, _)| r)
            .map_err(|e| e.to_string());
        *self.ledger.lock().unwrap_or_else(|p| p.into_inner()) = Some(ledger);
        result
    }

    /// Indexes what is left, commits, and stops the follower (after the ledger is closed).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

/// The follower loop: index what the ledger has, commit at most every
/// [`vigil_index::indexer::COMMIT_INTERVAL`], make it searchable, sleep briefly when idle.
fn follow(
    writer: &Ledger,
    indexer: &mut Indexer,
    search: &SearchIndex,
    progress: &IndexProgress,
    stop: &AtomicBool,
) {
    let mut ledger = None;
    let mut last_commit = Instant::now();
    let mut committed_end = indexer.next_seq();
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if ledger.is_none() {
            ledger = writer.reader().ok();
        }
        let mut indexed = 0;
        if let Some(reader) = ledger.as_mut() {
            let step = if stopping {
                // Final pass: everything, committed now.
                vigil_index::index_all(indexer, reader, 200_000, |_, _| {})
            } else {
                vigil_index::follow_step(indexer, reader, &mut last_commit)
            };
            match step {
                Ok(n) => indexed = n,
                Err(e) => {
                    progress.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!("indexing: {e}");
                    ledger = None;
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            progress.indexed_total.fetch_add(indexed, Ordering::Relaxed);
            if indexer.uncommitted() == 0 && indexer.next_seq() != committed_end {
                committed_end = indexer.next_seq();
                if let Err(e) = search.reload() {
                    tracing::error!("index reload: {e}");
                }
                progress.indexed_end.store(committed_end, Ordering::Relaxed);
            }
            if let Some(reader) = ledger.as_ref()
                && committed_end >= reader.end_seq()
            {
                progress
                    .caught_up_at
                    .store(Timestamp::now().as_nanos() as u64, Ordering::Relaxed);
            }
        }
        if stopping {
            return;
        }
        if indexed == 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
