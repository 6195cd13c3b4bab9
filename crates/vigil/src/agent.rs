//! `vigil agent --config agent.toml`: tail log files and the systemd journal, and ship the
//! files that appear in exported folders, to a Vigil server.
//!
//! The journal (`[[journald]]`) is read through `journalctl --follow` and checkpointed by
//! journal cursor; see [`journald`]. Folders (`[[folder]]`, e.g. a synced CloudTrail bucket
//! prefix) ship each new file once, gzip or not; see [`folder`]. Files work as follows.
//!
//! Each `[[file]]` is followed by path. Complete lines (ending in `\n`) are read from the
//! acknowledged offset, sent as one `text/plain` batch to `POST /api/v1/ingest`, and only after
//! the server answered 2xx (which it does only once the events are durable in the ledger) is the
//! new offset written to `STATE_DIR/state.json` (temporary file, fsync, rename, fsync of the
//! directory). The agent never reads past what it has checkpointed plus the batch in flight, so
//! after a restart or a `kill -9` it resumes exactly where the server's acknowledgements end.
//!
//! Rotation: when the path names another file (dev/inode changed: logrotate's rename + create),
//! the old file is finished through the open handle, a last line without newline is sent after a
//! grace period, then the new file is read from offset 0. At start-up, if the checkpointed inode
//! is no longer at the path, the agent looks for it beside the path (`app.log.1`, …) and finishes
//! it first. Truncation (copytruncate): a size below the offset restarts at 0.
//!
//! Delivery windows, stated honestly:
//! * a `kill -9` (or crash, or lost connection) while a batch is in flight re-sends that batch on
//!   restart, and the server may already have stored it. Each batch therefore carries an
//!   `Idempotency-Key` (host, file identity, offset, length, a hash of the bytes): the server
//!   stores a key's batch once and answers a repeat with the first answer, so the re-sent batch
//!   is not stored twice. The server remembers keys for an hour and forgets them when it
//!   restarts: only an agent crash *and* a server restart inside one request can still store a
//!   batch twice;
//! * with copytruncate, lines written after the agent's last read and before the truncation are
//!   only in the copy (the same loss every copytruncate reader has); rename + create loses nothing;
//! * a truncation followed by so much new data before the next poll that the file is longer than
//!   the old offset is not detected.
//!
//! The code is split by job: [`files`] follows `[[file]]` paths, [`journald`] the journal,
//! [`folder`] exported folders; [`state`] is the checkpoint file; [`delivery`] sends batches
//! to the server until they are acknowledged. This module reads the configuration and runs
//! them together.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

mod delivery;
mod files;
mod folder;
mod journald;
mod state;

use files::Tailer;
use state::StateStore;

/// `vigil agent` flags.
#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// The agent's TOML configuration (server, token, state_dir, [[file]] and [[journald]]
    /// entries).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Check the configuration (and that the token file can be read), print what would be
    /// shipped, and exit without shipping or writing state.
    #[arg(long)]
    pub check: bool,
}

/// The `--config` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentConfig {
    /// Base URL of the Vigil server, e.g. `http://127.0.0.1:8080`.
    server: String,
    /// An ingest token (or `token_file`).
    token: Option<String>,
    /// A file whose first line is the token.
    token_file: Option<PathBuf>,
    /// Where offsets are checkpointed.
    state_dir: PathBuf,
    /// How often idle files are polled, in milliseconds [default: 250].
    poll_interval_ms: Option<u64>,
    /// The files to follow.
    #[serde(default)]
    file: Vec<files::FileConfig>,
    /// The journals to follow.
    #[serde(default)]
    journald: Vec<journald::JournaldConfig>,
    /// The folders whose new files to ship.
    #[serde(default)]
    folder: Vec<folder::FolderConfig>,
}

/// What the agent shares between files and journals: HTTP client, auth, the state store.
struct Shipper {
    client: reqwest::Client,
    auth: String,
    /// Locked only for reads and writes of the state, never across an `await`.
    store: std::sync::Mutex<StateStore>,
    /// Where the state lives (for the journal's in-flight batch files).
    state_dir: PathBuf,
    /// This machine's name, part of every batch key.
    host: String,
}

impl Shipper {
    fn store(&self) -> std::sync::MutexGuard<'_, StateStore> {
        // A panic while the lock was held cannot leave the state half-written (writes go to a
        // temporary file first), so a poisoned lock is still usable.
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `vigil agent`.
pub fn run(args: AgentArgs) -> Result<ExitCode> {
    let text = fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let config: AgentConfig =
        toml::from_str(&text).with_context(|| format!("in {}", args.config.display()))?;
    if args.check {
        let (files, journals, folders) = check(&config)?;
        println!(
            "{}: ok ({files} file(s), {journals} journal source(s), {folders} folder(s))",
            args.config.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (shipper, tailers, journals, folders, poll) = prepare(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = follow(shipper, tailers, journals, folders, poll) => r.map(|()| ExitCode::SUCCESS),
            _ = tokio::signal::ctrl_c() => Ok(ExitCode::SUCCESS),
            _ = term.recv() => Ok(ExitCode::SUCCESS),
        }
    })
}

/// What [`prepare`] builds: the shipper, one tailer per file, one reader per journal source
/// and per folder, the poll interval.
type Prepared = (
    Shipper,
    Vec<Tailer>,
    Vec<journald::Journal>,
    Vec<folder::Folder>,
    Duration,
);

/// `--check`: everything [`prepare`] checks, without creating or reading the state.
/// Returns the number of files, journal sources and folders.
fn check(config: &AgentConfig) -> Result<(usize, usize, usize)> {
    let (_, server) = token_and_server(config)?;
    let tailers = files::file_tailers(config, &server)?;
    let journals = journald::readers(config, &server)?;
    let folders = folder::readers(config, &server)?;
    Ok((tailers.len(), journals.len(), folders.len()))
}

/// The token (read from `token_file` if so configured) and the server URL without trailing `/`.
fn token_and_server(config: &AgentConfig) -> Result<(String, String)> {
    let token = match (&config.token, &config.token_file) {
        (Some(t), None) => t.trim().to_owned(),
        (None, Some(path)) => fs::read_to_string(path)
            .with_context(|| format!("reading token_file {}", path.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned(),
        (Some(_), Some(_)) => bail!("set either `token` or `token_file`, not both"),
        (None, None) => bail!("`token` or `token_file` is required"),
    };
    if token.is_empty() {
        bail!("the token is empty");
    }
    let server = config.server.trim_end_matches('/');
    if !(server.starts_with("http://") || server.starts_with("https://")) {
        bail!("`server` must be an http:// or https:// URL, got {server:?}");
    }
    if config.file.is_empty() && config.journald.is_empty() && config.folder.is_empty() {
        bail!("no [[file]], [[journald]] or [[folder]] entries: nothing to ship");
    }
    Ok((token, server.to_owned()))
}

/// Checks the configuration and builds the shipper, the tailers and the journal readers.
fn prepare(config: AgentConfig) -> Result<Prepared> {
    let (token, server) = token_and_server(&config)?;
    let tailers = files::file_tailers(&config, &server)?;
    let journals = journald::readers(&config, &server)?;
    let folders = folder::readers(&config, &server)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;
    let store = StateStore::open(&config.state_dir)?;
    let poll = Duration::from_millis(config.poll_interval_ms.unwrap_or(250).max(1));
    Ok((
        Shipper {
            client,
            auth: format!("Bearer {token}"),
            store: std::sync::Mutex::new(store),
            state_dir: config.state_dir.clone(),
            host: host_name(),
        },
        tailers,
        journals,
        folders,
        poll,
    ))
}

/// Follows every file and journal forever; returns only on a fatal error (the state cannot be
/// written).
async fn follow(
    shipper: Shipper,
    tailers: Vec<Tailer>,
    journals: Vec<journald::Journal>,
    folders: Vec<folder::Folder>,
    poll: Duration,
) -> Result<()> {
    eprintln!(
        "vigil: agent following {} file(s), {} journal source(s) and {} folder(s), state in {}",
        tailers.len(),
        journals.len(),
        folders.len(),
        shipper.state_dir.display()
    );
    let shipper = std::sync::Arc::new(shipper);
    let mut tasks = tokio::task::JoinSet::new();
    for journal in journals {
        let shipper = std::sync::Arc::clone(&shipper);
        tasks.spawn(async move { journal.run(&shipper, poll).await });
    }
    for folder in folders {
        let shipper = std::sync::Arc::clone(&shipper);
        tasks.spawn(async move { folder.run(&shipper, poll).await });
    }
    if !tailers.is_empty() {
        let shipper = std::sync::Arc::clone(&shipper);
        tasks.spawn(async move { files::follow_files(&shipper, tailers, poll).await });
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => bail!("agent task failed: {e}"),
        }
    }
    Ok(())
}

/// An error that stops the agent (the checkpoint cannot be written).
#[derive(Debug)]
struct FatalError(String);

impl std::fmt::Display for FatalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FatalError {}

/// This machine's name, for batch keys.
fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty() && s.is_ascii() && s.len() < 100)
        .unwrap_or_else(|| "agent".into())
}
