//! `vigil reindex`: rebuild the search index of a data directory from its ledger.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use vigil_index::{Indexer, index_all};
use vigil_ledger::LedgerReader;

use crate::DataDir;

/// Arguments of `vigil reindex`.
#[derive(clap::Args)]
pub struct ReindexArgs {
    #[command(flatten)]
    data: DataDir,
    /// Indexing threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Index only what the ledger has beyond the index instead of starting over.
    #[arg(long)]
    resume: bool,
}

/// `vigil reindex`.
pub fn run(args: ReindexArgs) -> Result<ExitCode> {
    let (indexed, secs, covered) = index(&args.data.data_dir, args.threads, args.resume, false)?;
    println!(
        "indexed {indexed} events in {secs:.1} s ({:.0} events/s); the index covers events {}..{}",
        indexed as f64 / secs.max(1e-9),
        covered.start,
        covered.end
    );
    Ok(ExitCode::SUCCESS)
}

/// Indexes the ledger of `dir` (from scratch, or only what it has beyond the index when
/// `resume`) with a progress bar unless `quiet`; returns the events indexed, the seconds it
/// took and the range the index covers.
pub fn index(
    dir: &std::path::Path,
    threads: usize,
    resume: bool,
    quiet: bool,
) -> Result<(u64, f64, std::ops::Range<u64>)> {
    let mut ledger = LedgerReader::open(dir)
        .with_context(|| format!("reading the ledger in {}", dir.display()))?;
    let mut indexer = Indexer::open(dir, threads)?;
    if !resume {
        indexer.clear()?;
    }
    let start = indexer.next_seq().max(ledger.first_seq());
    let total = ledger.end_seq().saturating_sub(start);
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} indexing [{bar:40}] {pos}/{len} events ({per_sec}, {eta} left)",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let indexed = index_all(&mut indexer, &mut ledger, 500_000, |done, _| {
        bar.set_position(done.saturating_sub(start));
    })?;
    indexer.close()?;
    bar.finish_and_clear();
    Ok((
        indexed,
        started.elapsed().as_secs_f64(),
        ledger.first_seq()..ledger.end_seq(),
    ))
}
