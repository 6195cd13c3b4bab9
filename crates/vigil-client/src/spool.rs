//! The disk spool: append-only segment files of NDJSON plus a cursor (layout in `FORMAT.md`).
//!
//! Writers append whole lines (one write call per batch, truncated back on a failed write, so a
//! line is never followed by a torn one). The reader reads complete lines from the cursor on;
//! [`Spool::commit`] moves the cursor (persisted with write-to-temp, fsync, rename) and deletes
//! segments behind it. Opening recovers: a torn last line (crash in the middle of a write) is cut,
//! segments before the cursor are deleted, and the events still to deliver are counted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// First bytes of every segment file: magic, version byte, newline.
pub const HEADER: &[u8; 6] = b"VSPL\x01\n";
/// The spool format version (the fifth header byte).
pub const VERSION: u8 = 1;
const CURSOR: &str = "cursor";
const CURSOR_TMP: &str = "cursor.tmp";
const INFLIGHT: &str = "inflight";
const INFLIGHT_TMP: &str = "inflight.tmp";
const LOCK: &str = "lock";

/// Errors of the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// An I/O error on a spool file.
    #[error("spool {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A segment whose header is not this version's; the spool is left alone.
    #[error(
        "spool segment {0} has an unknown header (another version?); move it away to start a new spool"
    )]
    BadHeader(PathBuf),
    /// Another client holds the spool directory.
    #[error("spool {0} is in use by another client (one process per spool directory)")]
    Locked(PathBuf),
    /// The spool reached its size limit.
    #[error("spool is full ({0} bytes)")]
    Full(u64),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the reader stands: a segment number and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Segment number.
    pub segment: u64,
    /// Byte offset in the segment.
    pub offset: u64,
}

/// Lines read from the spool, and where the reader stands after them.
#[derive(Debug, Default)]
pub struct Batch {
    /// The lines, without their newlines.
    pub lines: Vec<String>,
    /// Total bytes of the lines with newlines.
    pub bytes: u64,
    /// The position after the last line (None when no line was read).
    pub end: Option<Position>,
}

/// What the reader needs to read outside the lock: a snapshot of the spool's extent.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    dir: PathBuf,
    from: Position,
    /// The last segment and how many bytes of it are complete.
    write_end: Position,
}

/// The spool directory.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_segment_bytes: u64,
    max_bytes: u64,
    /// Read cursor (committed).
    read: Position,
    /// The segment being written and its length; `file` is open when `write.segment` exists.
    write: Position,
    file: Option<File>,
    /// Bytes of all segment files.
    disk_bytes: u64,
    /// Events after the cursor.
    pending: u64,
    /// The next batch is exactly this many lines from the cursor: a batch that went out once
    /// and that Vigil may have stored, so it must go again with the same bytes (and key).
    pinned: Option<usize>,
    /// Held for the spool's lifetime: one client per directory.
    _lock: File,
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:016}.ndjson"))
}

fn segment_number(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".ndjson")?;
    (stem.len() == 16).then(|| stem.parse().ok()).flatten()
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir` and recovers it.
    pub fn open(dir: &Path, max_segment_bytes: u64, max_bytes: u64) -> Result<Spool, SpoolError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(SpoolError::Locked(dir.to_owned())),
            Err(fs::TryLockError::Error(e)) => {
                return Err(SpoolError::Io {
                    path: lock_path,
                    source: e,
                });
            }
        }
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            if let Some(n) = entry.file_name().to_str().and_then(segment_number) {
                segments.push(n);
            }
        }
        segments.sort_unstable();
        let header = HEADER.len() as u64;
        let cursor = read_cursor(dir);
        let mut spool = Spool {
            dir: dir.to_owned(),
            max_segment_bytes,
            max_bytes,
            read: Position {
                segment: 1,
                offset: header,
            },
            write: Position {
                segment: 1,
                offset: 0,
            },
            file: None,
            disk_bytes: 0,
            pending: 0,
            pinned: None,
            _lock: lock,
        };
        let Some(&last) = segments.last() else {
            let _ = fs::remove_file(dir.join(CURSOR));
            return Ok(spool);
        };
        // Segments wholly behind the cursor were delivered (a crash came before their deletion).
        let first_kept = match cursor {
            Some(c) if segments.contains(&c.segment) => {
                spool.read = Position {
                    segment: c.segment,
                    offset: c.offset.max(header),
                };
                c.segment
            }
            Some(c) if c.segment > last => {
                // Everything delivered.
                spool.read = Position {
                    segment: c.segment,
                    offset: header,
                };
                c.segment
            }
            _ => {
                let first = segments
                    .iter()
                    .copied()
                    .find(|&n| cursor.is_none_or(|c| n > c.segment));
                let first = first.unwrap_or(last);
                spool.read = Position {
                    segment: first,
                    offset: header,
                };
                first
            }
        };
        for &n in &segments {
            let path = segment_path(dir, n);
            if n < first_kept {
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).map_err(io_err(&path))?;
            if bytes.len() < HEADER.len() || &bytes[..HEADER.len()] != HEADER {
                if n == last && HEADER.starts_with(&bytes) {
                    // A header torn by a crash: nothing was ever in it.
                    drop(f);
                    fs::remove_file(&path).map_err(io_err(&path))?;
                    continue;
                }
                return Err(SpoolError::BadHeader(path));
            }
            // Cut a torn last line.
            let complete = bytes
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
                .max(HEADER.len());
            if complete < bytes.len() {
                f.set_len(complete as u64).map_err(io_err(&path))?;
            }
            let from = if n == spool.read.segment {
                (spool.read.offset as usize).min(complete)
            } else {
                HEADER.len()
            };
            spool.pending += bytes[from..complete]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            spool.disk_bytes += complete as u64;
            if n == last {
                spool.write = Position {
                    segment: n,
                    offset: complete as u64,
                };
                f.seek(SeekFrom::End(0)).map_err(io_err(&path))?;
                spool.file = Some(f);
            }
        }
        if spool.file.is_none() {
            spool.write = Position {
                segment: spool.read.segment.max(last),
                offset: 0,
            };
        }
        if spool.pending == 0 {
            spool.clear()?;
        } else {
            spool.pinned =
                read_inflight(dir, spool.read).filter(|&n| n > 0 && n as u64 <= spool.pending);
        }
        Ok(spool)
    }

    /// The size of the batch that must go next, if one went out before and was not settled
    /// (see [`Spool::pin`]).
    pub fn pinned(&self) -> Option<usize> {
        self.pinned
    }

    /// Records that the next `lines` lines from the cursor are going out as one batch, so that
    /// after a failure or a crash they go again as the same batch (same bytes, same
    /// `Idempotency-Key`) and Vigil recognises a batch it already stored. Written (temporary
    /// file, rename) before the batch is posted; cleared by [`Spool::commit`] and
    /// [`Spool::unpin`].
    pub fn pin(&mut self, lines: usize) -> Result<(), SpoolError> {
        if self.pinned == Some(lines) {
            return Ok(());
        }
        let path = self.dir.join(INFLIGHT);
        let tmp = self.dir.join(INFLIGHT_TMP);
        {
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            writeln!(
                f,
                "{VERSION} {} {} {lines}",
                self.read.segment, self.read.offset
            )
            .map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        self.pinned = Some(lines);
        Ok(())
    }

    /// Forgets the pinned batch (Vigil refused it: it was not stored, and may go in smaller
    /// batches).
    pub fn unpin(&mut self) {
        if self.pinned.take().is_some() {
            let _ = fs::remove_file(self.dir.join(INFLIGHT));
        }
    }

    /// Events waiting for delivery.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Bytes of the spool's segment files.
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes
    }

    /// Appends `lines` (each one JSON object without newline) in one write.
    pub fn append<S: AsRef<str>>(&mut self, lines: &[S]) -> Result<(), SpoolError> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for l in lines {
            buf.extend_from_slice(l.as_ref().as_bytes());
            buf.push(b'\n');
        }
        if self.disk_bytes + buf.len() as u64 > self.max_bytes {
            return Err(SpoolError::Full(self.max_bytes));
        }
        if self.file.is_none() || self.write.offset >= self.max_segment_bytes {
            self.rotate()?;
        }
        let path = segment_path(&self.dir, self.write.segment);
        let Some(file) = self.file.as_mut() else {
            return Err(SpoolError::Io {
                path,
                source: io::Error::other("no open segment"),
            });
        };
        if let Err(e) = file.write_all(&buf) {
            // Never leave a torn line followed by good ones.
            let _ = file.set_len(self.write.offset);
            let _ = file.seek(SeekFrom::Start(self.write.offset));
            return Err(SpoolError::Io { path, source: e });
        }
        self.write.offset += buf.len() as u64;
        self.disk_bytes += buf.len() as u64;
        self.pending += lines.len() as u64;
        Ok(())
    }

    /// Starts a new segment (after fsyncing the current one).
    fn rotate(&mut self) -> Result<(), SpoolError> {
        if let Some(f) = self.file.take() {
            let path = segment_path(&self.dir, self.write.segment);
            f.sync_data().map_err(io_err(&path))?;
            self.write.segment += 1;
        }
        let path = segment_path(&self.dir, self.write.segment);
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        f.write_all(HEADER).map_err(io_err(&path))?;
        self.write.offset = HEADER.len() as u64;
        self.disk_bytes += HEADER.len() as u64;
        if self.pending == 0 {
            self.read = Position {
                segment: self.write.segment,
                offset: HEADER.len() as u64,
            };
        }
        self.file = Some(f);
        Ok(())
    }

    /// fsyncs the segment being written.
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        if let Some(f) = &self.file {
            let path = segment_path(&self.dir, self.write.segment);
            f.sync_data().map_err(io_err(&path))?;
        }
        Ok(())
    }

    /// A snapshot for [`read_batch`], taken under the lock; the reading itself needs no lock.
    pub fn plan(&self) -> ReadPlan {
        ReadPlan {
            dir: self.dir.clone(),
            from: self.read,
            write_end: self.write,
        }
    }

    /// Marks everything up to `end` as delivered (`events` lines): persists the cursor, deletes
    /// segments behind it, and clears the spool when nothing is left.
    pub fn commit(&mut self, end: Position, events: u64) -> Result<(), SpoolError> {
        if end <= self.read {
            return Ok(());
        }
        let cursor = self.dir.join(CURSOR);
        let tmp = self.dir.join(CURSOR_TMP);
        {
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            writeln!(f, "{VERSION} {} {}", end.segment, end.offset).map_err(io_err(&tmp))?;
            f.sync_data().map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &cursor).map_err(io_err(&cursor))?;
        for n in self.read.segment..end.segment {
            let path = segment_path(&self.dir, n);
            if let Ok(meta) = fs::metadata(&path) {
                self.disk_bytes = self.disk_bytes.saturating_sub(meta.len());
            }
            let _ = fs::remove_file(&path);
        }
        self.read = end;
        self.pending = self.pending.saturating_sub(events);
        self.unpin();
        if self.pending == 0 {
            self.clear()?;
        }
        Ok(())
    }

    /// Deletes every segment and the cursor, delivered or not; the next append starts afresh.
    pub fn reset(&mut self) -> Result<(), SpoolError> {
        self.clear()
    }

    /// Deletes every segment and the cursor (all delivered); the next append starts afresh.
    fn clear(&mut self) -> Result<(), SpoolError> {
        self.file = None;
        let next = self.write.segment + 1;
        for n in self.read.segment.min(self.write.segment)..=self.write.segment {
            let path = segment_path(&self.dir, n);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(SpoolError::Io { path, source: e }),
            }
        }
        let cursor = self.dir.join(CURSOR);
        match fs::remove_file(&cursor) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(SpoolError::Io {
                    path: cursor,
                    source: e,
                });
            }
        }
        self.write = Position {
            segment: next,
            offset: 0,
        };
        self.read = Position {
            segment: next,
            offset: HEADER.len() as u64,
        };
        self.disk_bytes = 0;
        self.pending = 0;
        self.pinned = None;
        let _ = fs::remove_file(self.dir.join(INFLIGHT));
        Ok(())
    }
}

/// The pinned batch size, if the `inflight` file is this version's and names `cursor`.
fn read_inflight(dir: &Path, cursor: Position) -> Option<usize> {
    let text = fs::read_to_string(dir.join(INFLIGHT)).ok()?;
    let mut parts = text.split_whitespace();
    let version: u8 = parts.next()?.parse().ok()?;
    let at = Position {
        segment: parts.next()?.parse().ok()?,
        offset: parts.next()?.parse().ok()?,
    };
    (version == VERSION && at == cursor)
        .then(|| parts.next()?.parse().ok())
        .flatten()
}

fn read_cursor(dir: &Path) -> Option<Position> {
    let text = fs::read_to_string(dir.join(CURSOR)).ok()?;
    let mut parts = text.split_whitespace();
    let version: u8 = parts.next()?.parse().ok()?;
    if version != VERSION {
        return None;
    }
    Some(Position {
        segment: parts.next()?.parse().ok()?,
        offset: parts.next()?.parse().ok()?,
    })
}

/// Reads up to `max_events` complete lines (and about `max_bytes`) from `plan`'s position.
pub fn read_batch(plan: &ReadPlan, max_events: usize, max_bytes: u64) -> Result<Batch, SpoolError> {
    let mut batch = Batch::default();
    let mut pos = plan.from;
    while pos.segment <= plan.write_end.segment && batch.lines.len() < max_events {
        let last = pos.segment == plan.write_end.segment;
        let limit = if last {
            plan.write_end.offset
        } else {
            u64::MAX
        };
        let path = segment_path(&plan.dir, pos.segment);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !last => {
                pos = Position {
                    segment: pos.segment + 1,
                    offset: HEADER.len() as u64,
                };
                continue;
            }
            Err(e) => return Err(SpoolError::Io { path, source: e }),
        };
        let mut reader = BufReader::new(file);
        reader
            .seek(SeekFrom::Start(pos.offset))
            .map_err(io_err(&path))?;
        let mut line = Vec::new();
        let mut at_end = false;
        while batch.lines.len() < max_events && (batch.bytes < max_bytes || batch.lines.is_empty())
        {
            if pos.offset >= limit {
                at_end = true;
                break;
            }
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(io_err(&path))?;
            if n == 0 || line.last() != Some(&b'\n') || pos.offset + n as u64 > limit {
                at_end = true;
                break;
            }
            pos.offset += n as u64;
            batch.bytes += n as u64;
            line.pop();
            batch
                .lines
                .push(String::from_utf8_lossy(&line).into_owned());
            batch.end = Some(pos);
        }
        if at_end && !last {
            pos = Position {
                segment: pos.segment + 1,
                offset: HEADER.len() as u64,
            };
            continue;
        }
        break;
    }
    Ok(batch)
}

/// The position after the first `n` lines from `plan`'s position (for lines that were delivered
/// before they were spooled).
pub fn skip(plan: &ReadPlan, n: usize) -> Result<Option<Position>, SpoolError> {
    Ok(read_batch(plan, n, u64::MAX)?.end)
}
