//! `[[folder]]`: ship the files that appear in a directory, each once — an exported or synced
//! folder such as a CloudTrail bucket prefix kept in step by `aws s3 sync` or `rclone`, an
//! Azure storage container of diagnostic logs, a GCS sink bucket, a directory of JSON exports.
//!
//! Every poll the directory is listed (recursively unless `recursive = false`), and the files
//! whose names end in one of `suffixes` and that are not done are taken in name order
//! (CloudTrail, Azure and GCS name their objects by time). A file is read only once its size
//! and modification time stayed the same for one poll, so a file still being synced is left
//! for later; names starting with `.` and ending in `.tmp`/`.part` are never read.
//!
//! A file is decompressed when it is gzip (by its magic bytes, whatever its name), then cut
//! into units: the records of a CloudTrail delivery (`{"Records": [...]}`) or of an Azure
//! Monitor batch (`{"records": [...]}`), each as one line of JSON, else its non-empty lines.
//! Units go to `POST /api/v1/ingest` in batches; after each batch the server acknowledged
//! (it answers only once the events are durable), the number of units done is written to
//! `STATE_DIR/state.json` (`folders`); when the last is acknowledged the file's name joins the
//! folder's done set. After a restart or a `kill -9` the file being shipped resumes at its
//! first unacknowledged unit; a batch that was in flight goes again under the same
//! `Idempotency-Key` (host, folder, file, size, first unit, a hash of the bytes), so the
//! server stores it once. A file that changes after it was done is not read again; a done file
//! that is gone from the folder (a lifecycle rule deleted it) is forgotten, which keeps the
//! state as small as the folder.
//!
//! Limits: a file larger than [`MAX_FILE_BYTES`] once decompressed, or that cannot be read
//! (corrupt gzip once settled), is logged, counted and marked done, so it never blocks the files
//! after it; `vigil import` reads such a file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::delivery::{MAX_BATCH_BYTES, MAX_BATCH_LINES, fnv1a, send};
use super::{AgentConfig, FatalError, Shipper};

/// The most bytes one file may hold once decompressed (CloudTrail delivery files hold at most
/// a few megabytes; Azure and GCS hourly blobs tens).
pub(super) const MAX_FILE_BYTES: u64 = 256 << 20;
/// Deepest directory level listed (a CloudTrail prefix is `AWSLogs/ACCOUNT/CloudTrail/REGION/
/// YYYY/MM/DD/`: 7 levels).
const MAX_DEPTH: usize = 16;
/// Files skipped because they could not be read or were too large, since start.
static SKIPPED_FILES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One `[[folder]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FolderConfig {
    /// The directory to watch; it may not exist yet.
    path: PathBuf,
    /// Read the files whose names end in one of these [default: `.json`, `.json.gz`,
    /// `.jsonl`, `.jsonl.gz`, `.log`, `.log.gz`].
    suffixes: Option<Vec<String>>,
    /// Look into subdirectories [default: true].
    recursive: Option<bool>,
    /// Parser the server uses for each unit [default: auto].
    format: Option<String>,
    /// The source name stored with each event [default: the path].
    source: Option<String>,
}

/// The checkpoint of one folder in `state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FolderPosition {
    /// Files (relative to the folder) shipped whole.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    done: BTreeSet<String>,
    /// The file being shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current: Option<FilePosition>,
}

/// How far into one file the server has acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FilePosition {
    /// Relative name.
    name: String,
    /// Its size when shipping started (a different size starts it over).
    size: u64,
    /// Units acknowledged.
    units: u64,
}

const DEFAULT_SUFFIXES: &[&str] = &[
    ".json",
    ".json.gz",
    ".jsonl",
    ".jsonl.gz",
    ".log",
    ".log.gz",
];

/// The reader of one `[[folder]]` entry.
pub(super) struct Folder {
    /// Checkpoint name and log prefix (the path).
    key: String,
    path: PathBuf,
    url: String,
    suffixes: Vec<String>,
    recursive: bool,
    /// Size and modification time of each candidate at the last poll (a file is read once
    /// they held still for one poll).
    last_seen: HashMap<String, (u64, i64)>,
}

/// One reader per `[[folder]]` entry, checked.
pub(super) fn readers(config: &AgentConfig, server: &str) -> Result<Vec<Folder>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for f in &config.folder {
        let key = f.path.display().to_string();
        if !seen.insert(key.clone()) {
            bail!("folder {key} is listed twice");
        }
        let format = f.format.as_deref().unwrap_or("auto");
        format
            .parse::<vigil_parse::Format>()
            .map_err(|e| anyhow::anyhow!("folder {key}: format {format:?}: {e}"))?;
        let suffixes = match &f.suffixes {
            Some(s) if s.is_empty() => bail!("folder {key}: `suffixes` is empty"),
            Some(s) => s.clone(),
            None => DEFAULT_SUFFIXES.iter().map(|s| (*s).to_owned()).collect(),
        };
        let source = f.source.clone().unwrap_or_else(|| key.clone());
        let url = reqwest::Url::parse_with_params(
            &format!("{server}/api/v1/ingest"),
            [("format", format), ("source", source.as_str())],
        )
        .with_context(|| format!("server URL {server:?}"))?;
        out.push(Folder {
            key,
            path: f.path.clone(),
            url: url.to_string(),
            suffixes,
            recursive: f.recursive.unwrap_or(true),
            last_seen: HashMap::new(),
        });
    }
    Ok(out)
}

/// A file in the folder: relative name, path, size, modification time (ns).
struct Listed {
    name: String,
    path: PathBuf,
    size: u64,
    mtime: i64,
}

impl Folder {
    /// Watches the folder forever; returns only on a fatal error (the state cannot be written).
    pub(super) async fn run(mut self, shipper: &Shipper, poll: Duration) -> Result<()> {
        let mut waiting_logged = false;
        loop {
            let listed = match self.list() {
                Ok(l) => {
                    waiting_logged = false;
                    l
                }
                Err(e) => {
                    if !waiting_logged {
                        eprintln!("vigil: agent: folder {}: {e:#}; waiting", self.key);
                        waiting_logged = true;
                    }
                    tokio::time::sleep(poll).await;
                    continue;
                }
            };
            let worked = self.step(shipper, listed).await?;
            if !worked {
                tokio::time::sleep(poll).await;
            }
        }
    }

    /// Every candidate file in the folder, by name.
    fn list(&self) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        let mut stack = vec![(self.path.clone(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if depth > 0 && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
            };
            for entry in entries {
                let entry = entry?;
                let file_name = entry.file_name().to_string_lossy().into_owned();
                if file_name.starts_with('.') {
                    continue;
                }
                // Symbolic links are not followed (a link loop, or a way out of the folder).
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let path = entry.path();
                if kind.is_dir() {
                    if self.recursive && depth < MAX_DEPTH {
                        stack.push((path, depth + 1));
                    }
                    continue;
                }
                if !kind.is_file()
                    || file_name.ends_with(".tmp")
                    || file_name.ends_with(".part")
                    || !self
                        .suffixes
                        .iter()
                        .any(|s| file_name.ends_with(s.as_str()))
                {
                    continue;
                }
                let Ok(m) = entry.metadata() else { continue };
                let name = path
                    .strip_prefix(&self.path)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                out.push(Listed {
                    name,
                    path,
                    size: m.len(),
                    mtime: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One round: forget done files that are gone, then ship the first settled file not done.
    /// Returns whether a file was shipped.
    async fn step(&mut self, shipper: &Shipper, listed: Vec<Listed>) -> Result<bool> {
        let mut position = shipper.store().get_folder(&self.key).unwrap_or_default();
        let present: BTreeSet<&str> = listed.iter().map(|l| l.name.as_str()).collect();
        let before = position.done.len();
        position.done.retain(|n| present.contains(n.as_str()));
        if position.done.len() != before {
            self.checkpoint(shipper, &position)?;
        }
        let mut next = None;
        let mut seen_now = HashMap::new();
        for l in &listed {
            if position.done.contains(&l.name) {
                continue;
            }
            seen_now.insert(l.name.clone(), (l.size, l.mtime));
            let settled = self.last_seen.get(&l.name) == Some(&(l.size, l.mtime));
            let resuming = position
                .current
                .as_ref()
                .is_some_and(|c| c.name == l.name && c.size == l.size);
            if next.is_none() && (settled || resuming) {
                next = Some(l);
            }
        }
        self.last_seen = seen_now;
        let Some(file) = next else {
            return Ok(false);
        };
        self.ship_file(shipper, &mut position, file).await?;
        Ok(true)
    }

    /// Ships one file from its first unacknowledged unit, then marks it done.
    async fn ship_file(
        &self,
        shipper: &Shipper,
        position: &mut FolderPosition,
        file: &Listed,
    ) -> Result<()> {
        // Read off the runtime's thread: the other inputs go on meanwhile.
        let path = file.path.clone();
        let read = tokio::task::spawn_blocking(move || read_units(&path))
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("reading the file failed: {e}")));
        let units = match read {
            Ok(u) => u,
            Err(e) => {
                let n = SKIPPED_FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                eprintln!(
                    "vigil: agent: folder {}: skipping {}: {e:#} ({n} files skipped since start)",
                    self.key, file.name
                );
                position.current = None;
                position.done.insert(file.name.clone());
                return self.checkpoint(shipper, position);
            }
        };
        let mut done = match &position.current {
            Some(c) if c.name == file.name && c.size == file.size => c.units,
            _ => 0,
        };
        if done > 0 {
            eprintln!(
                "vigil: agent: folder {}: resuming {} at unit {done}",
                self.key, file.name
            );
        }
        position.current = Some(FilePosition {
            name: file.name.clone(),
            size: file.size,
            units: done,
        });
        self.checkpoint(shipper, position)?;
        while (done as usize) < units.len() {
            let (body, n) = batch(&units[done as usize..]);
            let key = format!(
                "{}:folder:{:016x}:{:016x}:{}:{done}:{}:{:016x}",
                shipper.host,
                fnv1a(self.key.as_bytes()),
                fnv1a(file.name.as_bytes()),
                file.size,
                body.len(),
                fnv1a(&body)
            );
            send(shipper, &self.url, &self.key, &key, body).await;
            done += n as u64;
            if let Some(c) = position.current.as_mut() {
                c.units = done;
            }
            self.checkpoint(shipper, position)?;
        }
        position.current = None;
        position.done.insert(file.name.clone());
        self.checkpoint(shipper, position)
    }

    fn checkpoint(&self, shipper: &Shipper, position: &FolderPosition) -> Result<()> {
        shipper
            .store()
            .set_folder(&self.key, position.clone())
            .map_err(|e| {
                anyhow::Error::new(FatalError(format!(
                    "checkpoint for folder {}: {e:#}",
                    self.key
                )))
            })
    }
}

/// The body of the next batch from `units` (at least one unit, then as many as fit under
/// [`MAX_BATCH_BYTES`] and [`MAX_BATCH_LINES`]) and how many units it holds.
fn batch(units: &[String]) -> (Vec<u8>, usize) {
    let mut body = Vec::new();
    let mut n = 0;
    for unit in units {
        if n > 0 && (body.len() + unit.len() + 1 > MAX_BATCH_BYTES as usize || n >= MAX_BATCH_LINES)
        {
            break;
        }
        body.extend_from_slice(unit.as_bytes());
        body.push(b'\n');
        n += 1;
    }
    (body, n)
}

/// The units of a file: decompressed when gzip, then a CloudTrail delivery's records or the
/// non-empty lines (see the module documentation).
fn read_units(path: &Path) -> Result<Vec<String>> {
    // Never more than the limit into memory, whatever the file's size (a file one byte over
    // is refused by `units_of`).
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .with_context(|| format!("reading {}", path.display()))?;
    units_of(&bytes)
}

/// [`read_units`] on bytes already read.
fn units_of(bytes: &[u8]) -> Result<Vec<String>> {
    let mut text = String::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut decoder = flate2::read::MultiGzDecoder::new(bytes).take(MAX_FILE_BYTES + 1);
        let mut raw = Vec::new();
        decoder
            .read_to_end(&mut raw)
            .context("not readable as gzip")?;
        if raw.len() as u64 > MAX_FILE_BYTES {
            bail!("more than {MAX_FILE_BYTES} bytes once decompressed");
        }
        text.push_str(&String::from_utf8_lossy(&raw));
    } else {
        if bytes.len() as u64 > MAX_FILE_BYTES {
            bail!("more than {MAX_FILE_BYTES} bytes");
        }
        text.push_str(&String::from_utf8_lossy(bytes));
    }
    if let Some(records) = vigil_parse::cloud::split_records(&text) {
        return Ok(records);
    }
    Ok(text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect())
}

/// `folders` in `state.json`.
pub(super) type FolderStates = BTreeMap<String, FolderPosition>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn units_of_deliveries_gzip_and_lines() {
        let delivery = br#"{"Records": [
            {"eventVersion": "1.08", "eventName": "A"},
            {"eventVersion": "1.08", "eventName": "B"}
        ]}"#;
        let units = units_of(delivery).unwrap();
        assert_eq!(units.len(), 2);
        assert!(units.iter().all(|u| !u.contains('\n')));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(delivery).unwrap();
        assert_eq!(units_of(&gz.finish().unwrap()).unwrap(), units);
        assert_eq!(
            units_of(b"a\r\n\n b\n").unwrap(),
            vec!["a".to_owned(), " b".to_owned()]
        );
        // A cut gzip stream is an error, not a panic nor an empty file.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&[b'x'; 10_000]).unwrap();
        let whole = gz.finish().unwrap();
        assert!(units_of(&whole[..whole.len() / 2]).is_err());
    }

    #[test]
    fn batches_hold_at_least_one_unit_and_respect_the_bounds() {
        let units: Vec<String> = (0..10).map(|i| format!("line {i}")).collect();
        let (body, n) = batch(&units);
        assert_eq!(n, 10);
        assert_eq!(body.iter().filter(|b| **b == b'\n').count(), 10);
        let big = vec!["x".repeat(MAX_BATCH_BYTES as usize), "y".into()];
        let (body, n) = batch(&big);
        assert_eq!(n, 1, "a unit over the limit goes alone");
        assert_eq!(body.len(), MAX_BATCH_BYTES as usize + 1);
    }
}
