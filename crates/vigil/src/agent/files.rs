//! `[[file]]` entries: follow a path through rotation and truncation, ship complete lines
//! from the acknowledged offset, checkpoint after every acknowledgement (the module docs of
//! [`super`] tell the whole story).

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::delivery::{MAX_BATCH_BYTES, MAX_BATCH_LINES, fnv1a, send};
use super::state::Position;
use super::{AgentConfig, FatalError, Shipper};

/// How long a rotated-away file may still grow before the agent switches to the new one.
const ROTATE_GRACE: Duration = Duration::from_secs(1);

/// One `[[file]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    /// The path to follow; it may not exist yet.
    path: PathBuf,
    /// Parser the server uses: auto, syslog, combined, json, cef, logfmt, apache_error, raw.
    format: Option<String>,
    /// The source name stored with each event [default: the path].
    source: Option<String>,
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
pub(super) struct Tailer {
    path: PathBuf,
    key: String,
    url: String,
    open: Option<Open>,
    waiting_logged: bool,
}

/// One tailer per `[[file]]`.
pub(super) fn file_tailers(config: &AgentConfig, server: &str) -> Result<Vec<Tailer>> {
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

/// Follows every file forever; returns only on a fatal error.
pub(super) async fn follow_files(
    shipper: &Shipper,
    mut tailers: Vec<Tailer>,
    poll: Duration,
) -> Result<()> {
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
