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

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

mod folder;
mod journald;

/// Largest batch sent in one request.
const MAX_BATCH_BYTES: u64 = 1 << 20;
/// Most lines in one batch: well under the server's cap on events per request
/// (`vigil_server::pipeline::MAX_REQUEST_EVENTS`), which refuses a larger request whole.
const MAX_BATCH_LINES: usize = 50_000;
/// Batches the server refused as final (a 4xx other than auth and rate limits), skipped.
static REFUSED_BATCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// How long a rotated-away file may still grow before the agent switches to the new one.
const ROTATE_GRACE: Duration = Duration::from_secs(1);
/// First and largest retry delay after a failed send.
const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

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
    file: Vec<FileConfig>,
    /// The journals to follow.
    #[serde(default)]
    journald: Vec<journald::JournaldConfig>,
    /// The folders whose new files to ship.
    #[serde(default)]
    folder: Vec<folder::FolderConfig>,
}

/// One `[[file]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    /// The path to follow; it may not exist yet.
    path: PathBuf,
    /// Parser the server uses: auto, syslog, combined, json, cef, logfmt, apache_error, raw.
    format: Option<String>,
    /// The source name stored with each event [default: the path].
    source: Option<String>,
}

/// A checkpointed position: which file (dev, inode) and the acknowledged byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    dev: u64,
    ino: u64,
    offset: u64,
    /// The end of the batch being sent, recorded before it leaves: after a crash the same
    /// bytes go again with the same `Idempotency-Key`, so the server recognises them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sending: Option<u64>,
}

/// `STATE_DIR/state.json`: one position per configured path and per journal source.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    files: BTreeMap<String, Position>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    journald: BTreeMap<String, journald::JournalPosition>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    folders: folder::FolderStates,
}

/// The state file and its atomic updates.
struct StateStore {
    dir: PathBuf,
    state: State,
}

impl StateStore {
    fn open(dir: &Path) -> Result<StateStore> {
        fs::create_dir_all(dir)
            .with_context(|| format!("creating state directory {}", dir.display()))?;
        let path = dir.join("state.json");
        let state = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a valid agent state file (move it away to ship the files from the start)",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(StateStore {
            dir: dir.to_path_buf(),
            state,
        })
    }

    fn get(&self, key: &str) -> Option<Position> {
        self.state.files.get(key).copied()
    }

    /// Records `pos` for `key` and makes it durable: temporary file, fsync, rename, dir fsync.
    fn set(&mut self, key: &str, pos: Position) -> Result<()> {
        if self.state.files.get(key) == Some(&pos) {
            return Ok(());
        }
        self.state.files.insert(key.to_owned(), pos);
        self.save()
    }

    /// The checkpointed position of journal source `key`.
    fn get_journal(&self, key: &str) -> Option<journald::JournalPosition> {
        self.state.journald.get(key).cloned()
    }

    /// Records `pos` for journal source `key` and makes it durable.
    fn set_journal(&mut self, key: &str, pos: journald::JournalPosition) -> Result<()> {
        if self.state.journald.get(key) == Some(&pos) {
            return Ok(());
        }
        self.state.journald.insert(key.to_owned(), pos);
        self.save()
    }

    /// The checkpoint of folder `key`.
    fn get_folder(&self, key: &str) -> Option<folder::FolderPosition> {
        self.state.folders.get(key).cloned()
    }

    /// Records `pos` for folder `key` and makes it durable.
    fn set_folder(&mut self, key: &str, pos: folder::FolderPosition) -> Result<()> {
        if self.state.folders.get(key) == Some(&pos) {
            return Ok(());
        }
        self.state.folders.insert(key.to_owned(), pos);
        self.save()
    }

    fn save(&self) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.state)?;
        write_durably(&self.dir, "state.json", &bytes)
    }
}

/// Replaces `dir/name` with `bytes` atomically and durably: temporary file, fsync, rename,
/// fsync of the directory.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    Ok(())
}

/// The file being read for one `[[file]]` entry.
struct Open {
    file: File,
    dev: u64,
    ino: u64,
    /// Acknowledged offset: everything before it is durable on the server.
    offset: u64,
    /// End of the batch in flight (see [`Position::sending`]).
    sending: Option<u64>,
    /// When the path was first seen naming another file (or nothing).
    rotated_since: Option<Instant>,
}

impl Open {
    fn position(&self) -> Position {
        Position {
            dev: self.dev,
            ino: self.ino,
            offset: self.offset,
            sending: self.sending,
        }
    }
}

/// One followed file.
struct Tailer {
    path: PathBuf,
    key: String,
    url: String,
    open: Option<Open>,
    waiting_logged: bool,
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
    let tailers = file_tailers(config, &server)?;
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

/// One tailer per `[[file]]`.
fn file_tailers(config: &AgentConfig, server: &str) -> Result<Vec<Tailer>> {
    let mut seen = BTreeSet::new();
    let mut tailers = Vec::new();
    for f in &config.file {
        let key = f.path.display().to_string();
        if !seen.insert(key.clone()) {
            bail!("file {key} is listed twice");
        }
        let format = f.format.as_deref().unwrap_or("auto");
        format
            .parse::<vigil_parse::Format>()
            .map_err(|e| anyhow::anyhow!("file {key}: format {format:?}: {e}"))?;
        let source = f.source.clone().unwrap_or_else(|| key.clone());
        let url = reqwest::Url::parse_with_params(
            &format!("{server}/api/v1/ingest"),
            [("format", format), ("source", source.as_str())],
        )
        .with_context(|| format!("server URL {server:?}"))?;
        tailers.push(Tailer {
            path: f.path.clone(),
            key,
            url: url.to_string(),
            open: None,
            waiting_logged: false,
        });
    }
    Ok(tailers)
}

/// Checks the configuration and builds the shipper, the tailers and the journal readers.
fn prepare(config: AgentConfig) -> Result<Prepared> {
    let (token, server) = token_and_server(&config)?;
    let tailers = file_tailers(&config, &server)?;
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
        tasks.spawn(async move { follow_files(&shipper, tailers, poll).await });
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

/// Follows every file forever; returns only on a fatal error.
async fn follow_files(shipper: &Shipper, mut tailers: Vec<Tailer>, poll: Duration) -> Result<()> {
    loop {
        let mut busy = false;
        for t in &mut tailers {
            match t.step(shipper).await {
                Ok(worked) => busy |= worked,
                Err(e) if e.is::<FatalError>() => return Err(e),
                Err(e) => {
                    eprintln!("vigil: agent: {}: {e:#}; reopening", t.key);
                    t.open = None;
                }
            }
        }
        if !busy {
            tokio::time::sleep(poll).await;
        }
    }
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

fn checkpoint(shipper: &Shipper, key: &str, pos: Position) -> Result<()> {
    shipper
        .store()
        .set(key, pos)
        .map_err(|e| anyhow::Error::new(FatalError(format!("checkpoint for {key}: {e:#}"))))
}

impl Tailer {
    /// One round: open if needed, handle truncation, ship one batch, or handle rotation.
    /// Returns whether anything was shipped or switched (so the caller polls again at once).
    async fn step(&mut self, shipper: &Shipper) -> Result<bool> {
        if self.open.is_none() {
            self.open = self.try_open(shipper)?;
            let Some(open) = &self.open else {
                return Ok(false);
            };
            checkpoint(shipper, &self.key, open.position())?;
        }
        let Some(open) = self.open.as_mut() else {
            return Ok(false);
        };
        let size = open.file.metadata()?.len();
        if size < open.offset {
            eprintln!(
                "vigil: agent: {} was truncated ({} < {}); reading from the start",
                self.key, size, open.offset
            );
            open.offset = 0;
            open.sending = None;
            checkpoint(shipper, &self.key, open.position())?;
        }
        let rotated = match fs::metadata(&self.path) {
            Ok(m) => (m.dev(), m.ino()) != (open.dev, open.ino),
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(e).with_context(|| format!("stat {}", self.path.display())),
        };
        if !rotated {
            open.rotated_since = None;
        } else if open.rotated_since.is_none() {
            open.rotated_since = Some(Instant::now());
        }
        let grace_over = open
            .rotated_since
            .is_some_and(|t| t.elapsed() >= ROTATE_GRACE);
        // After rotation and its grace period, a last line without newline is complete.
        // A batch that was in flight when the agent stopped goes again exactly as it was.
        let batch = match open.sending {
            Some(end) if end > open.offset && end <= size => {
                read_batch(&open.file, open.offset, end, true)?
            }
            _ => read_batch(&open.file, open.offset, size, grace_over)?,
        };
        if !batch.is_empty() {
            open.sending = Some(open.offset + batch.len() as u64);
            checkpoint(shipper, &self.key, open.position())?;
            let idempotency_key = batch_key(&shipper.host, open.dev, open.ino, open.offset, &batch);
            send(
                shipper,
                &self.url,
                &self.key,
                &idempotency_key,
                batch.clone(),
            )
            .await;
            open.offset += batch.len() as u64;
            open.sending = None;
            checkpoint(shipper, &self.key, open.position())?;
            return Ok(true);
        }
        if grace_over {
            // Switch to the file now at the path, from its start; nothing of it was sent yet.
            let file = match File::open(&self.path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => {
                    return Err(e).with_context(|| format!("opening {}", self.path.display()));
                }
            };
            let m = file.metadata()?;
            eprintln!(
                "vigil: agent: {} was rotated; following the new file",
                self.key
            );
            let new = Open {
                file,
                dev: m.dev(),
                ino: m.ino(),
                offset: 0,
                sending: None,
                rotated_since: None,
            };
            checkpoint(shipper, &self.key, new.position())?;
            self.open = Some(new);
            return Ok(true);
        }
        Ok(false)
    }

    /// Opens the file to read: the checkpointed one (at the path, or rotated beside it) at its
    /// offset, else the file at the path from the start. `None` while nothing is there.
    fn try_open(&mut self, shipper: &Shipper) -> Result<Option<Open>> {
        let saved = shipper.store().get(&self.key);
        if let Some(p) = saved
            && let Some(found) = find_rotated(&self.path, p)?
        {
            eprintln!(
                "vigil: agent: {} was rotated to {} while stopped; finishing it first",
                self.key,
                found.display()
            );
            let file =
                File::open(&found).with_context(|| format!("opening {}", found.display()))?;
            return Ok(Some(Open {
                file,
                dev: p.dev,
                ino: p.ino,
                offset: p.offset,
                sending: p.sending,
                rotated_since: Some(
                    Instant::now()
                        .checked_sub(ROTATE_GRACE)
                        .unwrap_or_else(Instant::now),
                ),
            }));
        }
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !self.waiting_logged {
                    eprintln!("vigil: agent: waiting for {} to appear", self.key);
                    self.waiting_logged = true;
                }
                return Ok(None);
            }
            Err(e) => return Err(e).with_context(|| format!("opening {}", self.path.display())),
        };
        self.waiting_logged = false;
        let m = file.metadata()?;
        let (offset, sending) = match saved {
            Some(p) if (p.dev, p.ino) == (m.dev(), m.ino()) => (p.offset, p.sending),
            _ => (0, None),
        };
        Ok(Some(Open {
            file,
            dev: m.dev(),
            ino: m.ino(),
            offset,
            sending,
            rotated_since: None,
        }))
    }
}

/// The checkpointed file if it is no longer at `path` but beside it (same directory, name
/// starting with the file's name, e.g. `app.log.1`). Compressed copies are not looked into.
fn find_rotated(path: &Path, saved: Position) -> Result<Option<PathBuf>> {
    if let Ok(m) = fs::metadata(path)
        && (m.dev(), m.ino()) == (saved.dev, saved.ino)
    {
        return Ok(None);
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(None);
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let name = name.to_string_lossy();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with(&*name) {
            continue;
        }
        if let Ok(m) = entry.metadata()
            && (m.dev(), m.ino()) == (saved.dev, saved.ino)
        {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}

/// Complete lines from `offset`, at most [`MAX_BATCH_BYTES`] (a longer line is sent in pieces)
/// and [`MAX_BATCH_LINES`] lines.
/// With `flush_partial`, a last line without newline counts as complete.
fn read_batch(file: &File, offset: u64, size: u64, flush_partial: bool) -> Result<Vec<u8>> {
    let want = size.saturating_sub(offset).min(MAX_BATCH_BYTES);
    if want == 0 {
        return Ok(Vec::new());
    }
    let mut buf = vec![0u8; usize::try_from(want)?];
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read_at(&mut buf[filled..], offset + filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    if let Some((cut, _)) = buf
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(MAX_BATCH_LINES - 1)
    {
        buf.truncate(cut + 1);
        return Ok(buf);
    }
    match buf.iter().rposition(|&b| b == b'\n') {
        _ if flush_partial && filled as u64 == size - offset => {}
        Some(last) => buf.truncate(last + 1),
        None if filled as u64 == MAX_BATCH_BYTES => {}
        None => buf.clear(),
    }
    Ok(buf)
}

/// The `Idempotency-Key` of a batch: where it comes from (host, device, inode, offset), its
/// length and an FNV-1a hash of its bytes (so a file truncated and rewritten differently at the
/// same offset is a new batch).
fn batch_key(host: &str, dev: u64, ino: u64, offset: u64, batch: &[u8]) -> String {
    let hash = fnv1a(batch);
    format!("{host}:{dev}:{ino}:{offset}:{}:{hash:016x}", batch.len())
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// What the agent does with a piece of a batch after a failed answer.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// The piece can pass later (the network, a proxy, the server busy or being fixed): retry.
    Retry,
    /// The piece is too large or holds something the server cannot read: send its halves.
    Split,
    /// The piece is one line the server can never take: log it, count it and skip it.
    Final,
}

/// How to go on after a non-success `status` for a piece of `lines` lines. Only an answer
/// about the content itself (413 over the body limit, 400/422 the body cannot be read) is
/// ever final, and only for a single line: a larger piece is split until the line at fault
/// is alone. Anything else — 401/403 (a token being fixed), 404/405 (a proxy or a server
/// being upgraded), 408/429, 5xx — may pass, so the piece is retried and nothing is lost.
fn refusal(status: reqwest::StatusCode, lines: usize) -> Refusal {
    match status.as_u16() {
        400 | 413 | 422 if lines > 1 => Refusal::Split,
        400 | 413 | 422 => Refusal::Final,
        _ => Refusal::Retry,
    }
}

/// The number of lines in `piece` (a last line without newline counts).
fn line_count(piece: &[u8]) -> usize {
    let newlines = piece.iter().filter(|&&b| b == b'\n').count();
    newlines + usize::from(piece.last().is_some_and(|&b| b != b'\n'))
}

/// Where to split a piece of several lines: after the newline nearest its middle, so both
/// halves hold whole lines and neither is empty.
fn split_point(piece: &[u8]) -> usize {
    let mid = piece.len() / 2;
    let before = piece[..mid]
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|i| i + 1);
    let after = piece[mid..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| mid + i + 1)
        .filter(|&i| i < piece.len());
    match (before, after) {
        (Some(b), Some(a)) => {
            if mid - b <= a - mid {
                b
            } else {
                a
            }
        }
        (Some(b), None) => b,
        (None, Some(a)) => a,
        (None, None) => piece.len(),
    }
}

/// This machine's name, for batch keys.
fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty() && s.is_ascii() && s.len() < 100)
        .unwrap_or_else(|| "agent".into())
}

/// Sends one batch until the server has acknowledged every line of it: retries with backoff,
/// honouring `Retry-After` on 429/503, while the failure may pass (see [`refusal`]). A batch
/// over the server's body limit (413) or one it cannot read (400/422) is sent again in halves,
/// each with its own idempotency key (the batch's key and the piece's place in it), down to
/// single lines; only a single line the server still refuses is logged, counted and skipped,
/// so it never blocks what follows.
async fn send(shipper: &Shipper, url: &str, key: &str, idempotency_key: &str, body: Vec<u8>) {
    // Pieces still to send, as ranges of `body`, the next one last.
    let mut pending = vec![(0, body.len())];
    while let Some((start, end)) = pending.pop() {
        if start == end {
            continue;
        }
        let piece = &body[start..end];
        let piece_key = if (start, end) == (0, body.len()) {
            idempotency_key.to_owned()
        } else {
            format!("{idempotency_key}/{start}+{}", end - start)
        };
        let mut backoff = BACKOFF_START;
        loop {
            let result = shipper
                .client
                .post(url)
                .header(reqwest::header::AUTHORIZATION, &shipper.auth)
                .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .header("Idempotency-Key", &piece_key)
                .body(piece.to_vec())
                .send()
                .await;
            let wait = match result {
                Ok(r) if r.status().is_success() => break,
                Ok(r) => {
                    let status = r.status();
                    let retry_after = r
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = r.text().await.unwrap_or_default();
                    let lines = line_count(piece);
                    match refusal(status, lines) {
                        Refusal::Split => {
                            let mid = start + split_point(piece);
                            eprintln!(
                                "vigil: agent: {key}: server refused {lines} lines ({status}):                                  {}; sending them in halves",
                                text.trim()
                            );
                            pending.push((mid, end));
                            pending.push((start, mid));
                            break;
                        }
                        Refusal::Final => {
                            let n = REFUSED_BATCHES
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                                + 1;
                            eprintln!(
                                "vigil: agent: {key}: server refused the batch ({status}): {}; \
                                 skipping it ({n} batches refused since start)",
                                text.trim()
                            );
                            break;
                        }
                        Refusal::Retry => {
                            eprintln!(
                                "vigil: agent: {key}: server answered {status}: {}; retrying",
                                text.trim()
                            );
                            retry_after.unwrap_or(backoff)
                        }
                    }
                }
                Err(e) => {
                    eprintln!("vigil: agent: {key}: sending failed: {e}; retrying");
                    backoff
                }
            };
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}
