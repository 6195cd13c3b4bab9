//! `vigil serve`: the long-running process. So far it owns the ledger: it creates it on first
//! start, signs checkpoints while events arrive and at shutdown, and applies retention.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use vigil_event::Timestamp;
use vigil_ledger::{Ledger, LedgerConfig, PruneOutcome, RetentionPolicy, parse_duration};

use crate::DataDir;

/// How often retention runs while serving.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Arguments of `vigil serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    data: DataDir,
    /// Remove sealed segments older than this (e.g. 365d); unset keeps everything.
    #[arg(long, value_parser = parse_duration)]
    retention: Option<Duration>,
    /// How often to sign a checkpoint while events arrive.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    checkpoint_interval: Duration,
}

/// `vigil serve`.
pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let config = LedgerConfig {
        checkpoint_interval: args.checkpoint_interval,
        ..LedgerConfig::default()
    };
    let data_dir = &args.data.data_dir;
    let (ledger, recovery) = Ledger::open(data_dir, config)
        .with_context(|| format!("opening the ledger in {}", data_dir.display()))?;
    for cut in &recovery.cut {
        eprintln!(
            "vigil: crash recovery cut {} bytes at offset {} of {}: {}",
            cut.bytes,
            cut.offset,
            cut.path.display(),
            cut.reason
        );
    }
    if recovery.rebuilt_groups > 0 {
        eprintln!(
            "vigil: rebuilt {} group hashes from the segments",
            recovery.rebuilt_groups
        );
    }
    let paths = ledger.paths().clone();
    eprintln!(
        "vigil: ledger {} ({} events)",
        paths.root().display(),
        recovery.end_seq
    );
    eprintln!("vigil: origin {}", ledger.origin());
    eprintln!(
        "vigil: signing key {} (mode 0600); verifier key {}",
        paths.signing_key().display(),
        paths.verifier_key().display()
    );
    eprintln!("vigil: stop with Ctrl-C or SIGTERM; a final checkpoint is signed on the way out");

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the signal handler")?;
    }
    let mut last_retention: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        if let Some(max_age) = args.retention
            && last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY)
        {
            last_retention = Some(Instant::now());
            match ledger.prune(RetentionPolicy { max_age }, Timestamp::now()) {
                Ok(PruneOutcome::Pruned(record)) => eprintln!(
                    "vigil: retention removed events {}..{} ({} segments)",
                    record.start,
                    record.end,
                    record.segments.len()
                ),
                Ok(PruneOutcome::Held { reason }) => {
                    eprintln!("vigil: retention skipped, legal hold: {reason}")
                }
                Ok(PruneOutcome::NothingToDo) => {}
                Err(e) => eprintln!("vigil: retention failed: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("vigil: shutting down");
    ledger.close()?;
    Ok(ExitCode::SUCCESS)
}
