//! The single writer: recovery at open, group commit, checkpoints, retention.
//!
//! One committer thread owns every file handle. Callers encode their events (in parallel, on
//! their own threads) and queue them on a bounded channel; the committer takes everything queued,
//! writes it as blocks, fsyncs **once**, and only then answers each caller with its sequence
//! numbers. So an acknowledged event is always durable, and many concurrent appenders share one
//! fsync (group commit).
//!
//! Crash story, step by step:
//! 1. blocks are written to the last segment, then `fdatasync`: before this, a crash leaves a
//!    torn tail that recovery cuts (nobody was told those events were durable);
//! 2. group hashes are appended to `tiles.dat` without fsync: they are derived, and recovery
//!    recomputes any that are missing from the segments;
//! 3. a checkpoint is appended to `checkpoints.log` and fsynced; it only ever covers events that
//!    were fsynced in step 1, so recovery refuses to open a ledger whose latest checkpoint covers
//!    more events than the segments hold (that is loss or tampering, not a crash);
//! 4. a segment is sealed (seal block + fsync) before the next one is created, so only the last
//!    segment can have a torn tail; a last segment killed while being created (empty, or a
//!    partial header) holds no events and gets its header rewritten from its file name;
//! 5. pruning signs and fsyncs its record before deleting segment files; recovery deletes any
//!    segment a record already covers;
//! 6. one group commit (whole appends, one fsync) may span several blocks and even a segment
//!    roll: every block of it but the last carries the `continues` flag, so recovery drops a
//!    trailing run of flagged blocks (and a segment that run created, unsealing the one before):
//!    an append is stored whole or not at all;
//! 7. a failed write or fsync (a full disk, an I/O error) is undone before anyone is answered:
//!    segments created by the write are deleted, the last segment and `tiles.dat` are truncated
//!    back to their length before it and fsynced, so those bytes cannot resurface at the next
//!    open. The writer is then *degraded*: it answers appends with
//!    [`LedgerError::Unavailable`] and retries (a probe write, with backoff) until the disk takes
//!    writes again, then works on without a restart. Only a failed undo poisons it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vigil_event::{Category, Event, EventType, Outcome, Timestamp};

use crate::blockmap;
use crate::error::LedgerError;
use crate::files::{self, LedgerPaths, SegmentBlocks, read_record_log, sync_dir};
use crate::format::{self, BLOCK_TARGET_RAW, GROUP_HEIGHT, GROUP_SIZE, MAX_EVENT_BYTES};
use crate::integrity::{self, OpenState, RecoveryRecord};
use crate::keys;
use crate::merkle::{self, Frontier, Hash};
use crate::note::{Checkpoint, NoteSigner};
use crate::reader::{LedgerReader, SignedCheckpoint, parse_signed_checkpoint, prune_records};
use crate::retention::{PruneOutcome, PruneRecord, PrunedSegment, RetentionPolicy};
use crate::rotation::KeyRing;

/// Tuning of the writer. The defaults suit a single server.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// A segment is sealed at the first group boundary after it reaches this many bytes.
    pub segment_max_bytes: u64,
    /// …or after it has been open this long (so retention can remove it in time).
    pub segment_max_age: Duration,
    /// A checkpoint is signed this often while events arrive, and at shutdown.
    pub checkpoint_interval: Duration,
    /// zstd level for blocks.
    pub zstd_level: i32,
    /// Append requests that may wait for the committer before `append` blocks (backpressure).
    pub queue_depth: usize,
    /// Open even if the ledger does not verify against its own checkpoints, for this reason:
    /// what was found is signed into `recoveries.log` and the ledger before anything is signed.
    /// `None` (the default) refuses such a ledger with [`LedgerError::Untrusted`].
    pub recover: Option<String>,
}

impl Default for LedgerConfig {
    fn default() -> LedgerConfig {
        LedgerConfig {
            segment_max_bytes: 64 << 20,
            segment_max_age: Duration::from_secs(86_400),
            checkpoint_interval: Duration::from_secs(5),
            zstd_level: 3,
            queue_depth: 1024,
            recover: None,
        }
    }
}

/// A torn tail cut at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutTail {
    /// The file cut.
    pub path: PathBuf,
    /// Where the cut starts.
    pub offset: u64,
    /// Bytes removed.
    pub bytes: u64,
    /// Why those bytes were not a complete block.
    pub reason: String,
}

/// What start-up found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Events in the ledger after recovery (one past the last sequence number).
    pub end_seq: u64,
    /// Torn tails cut from the last segment or the record logs.
    pub cut: Vec<CutTail>,
    /// Group hashes recomputed because `tiles.dat` was behind the segments.
    pub rebuilt_groups: u64,
    /// Segments deleted because a pruning record already covered them (an interrupted prune).
    pub finished_prunes: Vec<PathBuf>,
    /// Whether a checkpoint was signed for events the previous run had not checkpointed.
    pub checkpoint_written: bool,
    /// Events no signature covered at open (a crash tail), signed after the check at open.
    pub unsigned_tail: Option<Range<u64>>,
    /// The recovery record, when the ledger did not verify and `LedgerConfig::recover` was set.
    pub recovered: Option<RecoveryRecord>,
}

type AppendReply = Box<dyn FnOnce(Result<Range<u64>, LedgerError>) + Send>;

/// The canonical bytes of one append's events, end to end in one buffer, and where each
/// ends: one allocation per append instead of one per event (made on the caller's thread and
/// freed on the writer's), the bytes themselves unchanged.
#[derive(Default)]
struct Encoded {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Encoded {
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Each event's canonical bytes, in order.
    fn events(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.bytes[start..end])
    }
}

enum Command {
    Append {
        events: Encoded,
        reply: AppendReply,
    },
    Checkpoint {
        reply: SyncSender<Result<Option<SignedCheckpoint>, LedgerError>>,
    },
    Prune {
        policy: RetentionPolicy,
        now: Timestamp,
        reply: SyncSender<Result<PruneOutcome, LedgerError>>,
    },
    Shutdown {
        reply: SyncSender<Result<(), LedgerError>>,
    },
}

struct Shared {
    /// One past the last durable sequence number: stored only after the fsync, never past a
    /// write that may still be undone. Readers from [`Ledger::reader`] stop here.
    end_seq: Arc<AtomicU64>,
    checkpointed: AtomicU64,
    /// Why the writer cannot write now (a full disk…), while it retries.
    degraded: Mutex<Option<String>>,
    /// Raised after `end_seq` moves, for [`Ledger::wait_durable`].
    wake: crate::wake::DurableWake,
}

impl Shared {
    fn set_degraded(&self, reason: Option<String>) {
        *self
            .degraded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = reason;
    }
}

/// The ledger writer: a cheap, cloneable handle to the committer thread.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    tx: SyncSender<Command>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    paths: LedgerPaths,
    origin: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let (reply, done) = mpsc::sync_channel(1);
        if self.tx.send(Command::Shutdown { reply }).is_ok() {
            let _ = done.recv();
        }
        if let Some(handle) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = handle.join();
        }
    }
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("root", &self.inner.paths.root())
            .field("end_seq", &self.end_seq())
            .finish()
    }
}

impl Ledger {
    /// Opens (creating if needed) the ledger of `data_dir` for writing, recovering from a crash
    /// if the previous writer died. Fails if another process has it open.
    pub fn open(
        data_dir: &Path,
        config: LedgerConfig,
    ) -> Result<(Ledger, RecoveryReport), LedgerError> {
        let paths = LedgerPaths::new(data_dir);
        for dir in [paths.root().to_owned(), paths.segments_dir()] {
            fs::create_dir_all(&dir)
                .map_err(|e| LedgerError::io(format!("creating {}", dir.display()), e))?;
        }
        let lock = lock_writer(&paths)?;
        let signer = keys::load_or_create_signer(&paths)?;
        let (state, report) = Committer::recover(paths.clone(), config, signer, lock)?;
        let shared = Arc::new(Shared {
            end_seq: Arc::new(AtomicU64::new(state.end_seq)),
            checkpointed: AtomicU64::new(state.checkpointed_size),
            degraded: Mutex::new(None),
            wake: crate::wake::DurableWake::default(),
        });
        let origin = state.signer.name().to_owned();
        let (tx, rx) = mpsc::sync_channel(state.config.queue_depth.max(1));
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("vigil-ledger".into())
            .spawn(move || state.run(rx, &thread_shared))
            .map_err(|e| LedgerError::io("starting the ledger thread", e))?;
        Ok((
            Ledger {
                inner: Arc::new(Inner {
                    tx,
                    shared,
                    thread: Mutex::new(Some(thread)),
                    paths,
                    origin,
                }),
            },
            report,
        ))
    }

    /// Appends events and returns their sequence numbers once they are durable (fsynced).
    pub fn append(&self, events: &[Event]) -> Result<Range<u64>, LedgerError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.append_with(events, move |result| {
            let _ = tx.send(result);
        });
        rx.recv().unwrap_or(Err(LedgerError::Closed))
    }

    /// Queues events and calls `done` with their sequence numbers once they are durable, or
    /// with the error. Blocks only while the queue is full (backpressure).
    pub fn append_with(
        &self,
        events: &[Event],
        done: impl FnOnce(Result<Range<u64>, LedgerError>) + Send + 'static,
    ) {
        let mut encoded = Encoded {
            bytes: Vec::with_capacity(events.len() * 256),
            ends: Vec::with_capacity(events.len()),
        };
        for event in events {
            let start = encoded.bytes.len();
            event.write_canonical(&mut encoded.bytes);
            let size = encoded.bytes.len() - start;
            if size > MAX_EVENT_BYTES {
                done(Err(LedgerError::EventTooLarge {
                    size,
                    max: MAX_EVENT_BYTES,
                }));
                return;
            }
            encoded.ends.push(encoded.bytes.len());
        }
        let command = Command::Append {
            events: encoded,
            reply: Box::new(done),
        };
        if let Err(mpsc::SendError(Command::Append { reply, .. })) = self.inner.tx.send(command) {
            reply(Err(LedgerError::Closed));
        }
    }

    /// Signs a checkpoint now if events arrived since the last one; returns the latest.
    pub fn checkpoint(&self) -> Result<Option<SignedCheckpoint>, LedgerError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send(Command::Checkpoint { reply })?;
        rx.recv().unwrap_or(Err(LedgerError::Closed))
    }

    /// Removes sealed segments older than the policy allows (unless a legal hold is set),
    /// recording the pruning first.
    pub fn prune(
        &self,
        policy: RetentionPolicy,
        now: Timestamp,
    ) -> Result<PruneOutcome, LedgerError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send(Command::Prune { policy, now, reply })?;
        rx.recv().unwrap_or(Err(LedgerError::Closed))
    }

    /// Commits what is queued, signs a final checkpoint and stops the writer.
    pub fn close(self) -> Result<(), LedgerError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send(Command::Shutdown { reply })?;
        let result = rx.recv().unwrap_or(Ok(()));
        if let Some(handle) = self.inner.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = handle.join();
        }
        result
    }

    /// One past the last durable sequence number.
    pub fn end_seq(&self) -> u64 {
        self.inner.shared.end_seq.load(Ordering::Acquire)
    }

    /// Waits until the durable end is past `seq` (more events than `seq` are durable) or
    /// `timeout` has elapsed, and returns the durable end. Followers in the writer's process
    /// (the detector) wake on each group commit this way instead of polling.
    pub fn wait_durable(&self, seq: u64, timeout: std::time::Duration) -> u64 {
        self.inner
            .shared
            .wake
            .wait_past(&self.inner.shared.end_seq, seq, timeout)
    }

    /// A reader of this ledger that never sees past [`Ledger::end_seq`]: only events that are
    /// durable and will never be undone. What followers in the writer's process (indexing,
    /// detection, searches) must use, so they never act on a write that a failed fsync undoes
    /// or crash recovery drops.
    pub fn reader(&self) -> Result<LedgerReader, LedgerError> {
        LedgerReader::open_paths(
            self.inner.paths.clone(),
            Some(Arc::clone(&self.inner.shared.end_seq)),
        )
    }

    /// Why the writer cannot store events now, while it waits for the disk to take writes
    /// again (it recovers by itself); `None` when it is healthy.
    pub fn degraded(&self) -> Option<String> {
        self.inner
            .shared
            .degraded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Tree size of the latest checkpoint.
    pub fn checkpointed_size(&self) -> u64 {
        self.inner.shared.checkpointed.load(Ordering::Acquire)
    }

    /// The ledger's origin line (and key name).
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// Paths of the ledger's files.
    pub fn paths(&self) -> &LedgerPaths {
        &self.inner.paths
    }

    fn send(&self, command: Command) -> Result<(), LedgerError> {
        self.inner.tx.send(command).map_err(|_| LedgerError::Closed)
    }
}

pub(crate) fn lock_writer(paths: &LedgerPaths) -> Result<File, LedgerError> {
    let path = paths.lock();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LedgerError::io(format!("opening {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(LedgerError::Locked { path }),
        Err(TryLockError::Error(e)) => {
            Err(LedgerError::io(format!("locking {}", path.display()), e))
        }
    }
}

/// Sets or clears the legal hold that suspends pruning.
pub fn set_legal_hold(data_dir: &Path, reason: Option<&str>) -> Result<(), LedgerError> {
    let paths = LedgerPaths::new(data_dir);
    let path = paths.legal_hold();
    match reason {
        Some(reason) => {
            fs::create_dir_all(paths.root())
                .map_err(|e| LedgerError::io(format!("creating {}", paths.root().display()), e))?;
            let text = format!("{}\nset {}\n", reason.replace('\n', " "), Timestamp::now());
            fs::write(&path, text)
                .map_err(|e| LedgerError::io(format!("writing {}", path.display()), e))
        }
        None => match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LedgerError::io(format!("removing {}", path.display()), e)),
        },
    }
}

/// The legal hold's text, if one is set.
pub fn legal_hold(data_dir: &Path) -> Result<Option<String>, LedgerError> {
    let path = LedgerPaths::new(data_dir).legal_hold();
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LedgerError::io(format!("reading {}", path.display()), e)),
    }
}

/// A sealed segment the writer knows about (candidates for retention).
#[derive(Debug, Clone)]
struct SealedSegment {
    first_seq: u64,
    end_seq: u64,
    sealed_nanos: i64,
    path: PathBuf,
}

/// State owned by the committer thread.
struct Committer {
    paths: LedgerPaths,
    config: LedgerConfig,
    signer: NoteSigner,
    _lock: File,
    segment: File,
    segment_first: u64,
    segment_bytes: u64,
    segment_opened: Instant,
    sealed: Vec<SealedSegment>,
    tiles: File,
    checkpoints: File,
    prunes: File,
    pruned_end: u64,
    end_seq: u64,
    /// Frontier over complete groups only.
    groups: Frontier,
    /// Leaf hashes of the current, incomplete group.
    partial: Vec<Hash>,
    checkpointed_size: u64,
    last_checkpoint: Instant,
    /// Recovery records in `recoveries.log`; every checkpoint states the number.
    recoveries: usize,
    poisoned: Option<String>,
    /// Why the last write failed (and was undone), while the writer retries.
    degraded: Option<String>,
    /// When the next write may be tried while degraded.
    retry_at: Instant,
    /// The wait before the next retry while degraded (doubles up to [`MAX_BACKOFF`]).
    backoff: Duration,
    /// Bytes of `tiles.dat` known written.
    tiles_len: u64,
    /// Group hashes of durable events not yet written to `tiles.dat` (its write failed).
    tiles_pending: Vec<u8>,
    write_buf: Vec<u8>,
    scratch: Vec<u8>,
    /// The zstd context blocks are compressed with, kept from one block to the next.
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

/// The first wait before retrying after a failed write.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between retries after a failed write.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where the committer stood before a write, to undo it if the write fails.
struct Snapshot {
    end_seq: u64,
    segment_first: u64,
    segment_bytes: u64,
    segment_opened: Instant,
    sealed: usize,
    groups: Frontier,
    partial: Vec<Hash>,
}

impl Committer {
    fn recover(
        paths: LedgerPaths,
        config: LedgerConfig,
        signer: NoteSigner,
        lock: File,
    ) -> Result<(Committer, RecoveryReport), LedgerError> {
        let mut report = RecoveryReport::default();

        // Record logs: cut torn tails.
        let prune_log = read_record_log(&paths.prunes(), format::PRUNES_MAGIC)?;
        note_cut(
            &mut report,
            &paths.prunes(),
            &prune_log,
            "incomplete pruning record",
        );
        let prunes = files::open_append(
            &paths.prunes(),
            &format::encode_file_header(format::PRUNES_MAGIC),
            Some(prune_log.valid_len),
        )?;
        let checkpoint_log = read_record_log(&paths.checkpoints(), format::CHECKPOINTS_MAGIC)?;
        note_cut(
            &mut report,
            &paths.checkpoints(),
            &checkpoint_log,
            "incomplete checkpoint",
        );
        let checkpoints = files::open_append(
            &paths.checkpoints(),
            &format::encode_file_header(format::CHECKPOINTS_MAGIC),
            Some(checkpoint_log.valid_len),
        )?;
        let pruned_end = prune_records(&paths)?.last().map_or(0, |r| r.end);

        // Segments: finish interrupted prunes, find the sealed ones, recover the last.
        let mut listed = files::list_segments(&paths)?;
        let mut keep = Vec::new();
        for (i, (first, path)) in listed.iter().enumerate() {
            let end = listed.get(i + 1).map(|(next, _)| *next);
            if end.is_some_and(|end| end <= pruned_end) {
                fs::remove_file(path)
                    .map_err(|e| LedgerError::io(format!("removing {}", path.display()), e))?;
                let _ = blockmap::remove(&paths, *first);
                report.finished_prunes.push(path.clone());
            } else {
                keep.push((*first, path.clone()));
            }
        }
        if !report.finished_prunes.is_empty() {
            sync_dir(&paths.segments_dir())?;
        }
        listed = keep;
        drop_incomplete_write(&mut listed, &mut report)?;

        let mut sealed = Vec::new();
        for window in listed.windows(2) {
            let (first, path) = &window[0];
            let sealed_nanos = read_seal(path)?.ok_or_else(|| {
                LedgerError::corrupt(
                    path,
                    0,
                    Some(*first),
                    "segment is not the last but has no seal block; run `vigil verify`",
                )
            })?;
            sealed.push(SealedSegment {
                first_seq: *first,
                end_seq: window[1].0,
                sealed_nanos: sealed_nanos.1,
                path: path.clone(),
            });
        }

        let now_nanos = Timestamp::now().as_nanos();
        let mut last_sealed = false;
        let (segment_first, segment, segment_bytes) = match listed.last() {
            None => {
                let (file, bytes) = create_segment(&paths, pruned_end, now_nanos)?;
                (pruned_end, file, bytes)
            }
            Some((first, path)) => {
                let scanned = recover_last_segment(path, &mut report)?;
                last_sealed = scanned.sealed_nanos.is_some();
                if let Some(sealed_nanos) = scanned.sealed_nanos {
                    let end = scanned.end_seq();
                    sealed.push(SealedSegment {
                        first_seq: *first,
                        end_seq: end,
                        sealed_nanos,
                        path: path.clone(),
                    });
                    let (file, bytes) = create_segment(&paths, end, now_nanos)?;
                    (end, file, bytes)
                } else {
                    let mut file = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(path)
                        .map_err(|e| LedgerError::io(format!("opening {}", path.display()), e))?;
                    upgrade_segment_header(&mut file, path, &scanned)?;
                    let bytes = file
                        .seek(SeekFrom::End(0))
                        .map_err(|e| LedgerError::io(format!("seeking {}", path.display()), e))?;
                    (*first, file, bytes)
                }
            }
        };

        // The reader sees the recovered segments; use it to rebuild derived state.
        let mut reader = LedgerReader::open(paths.root().parent().unwrap_or(Path::new(".")))?;
        // Ledgers written before block maps get them now (a cache; see `blockmap`).
        let _ = blockmap::save_missing(&paths, reader.segments());
        let end_seq = reader.end_seq();
        report.end_seq = end_seq;

        let mut stored_tiles = files::read_tiles(&paths.tiles())?;
        let complete_groups = end_seq / GROUP_SIZE;
        let tiles_header = format::encode_file_header(format::TILES_MAGIC);
        let tiles_valid = if stored_tiles.len() as u64 > complete_groups {
            stored_tiles.truncate(complete_groups as usize);
            Some(format::FILE_HEADER_LEN as u64 + complete_groups * 32)
        } else {
            Some(format::FILE_HEADER_LEN as u64 + stored_tiles.len() as u64 * 32)
        };
        let mut rebuilt = Vec::new();
        for g in stored_tiles.len() as u64..complete_groups {
            let leaves = reader.group_leaf_hashes(g)?;
            let hash = merkle::root_from_leaf_hashes(&leaves);
            rebuilt.extend_from_slice(&hash);
            stored_tiles.push(hash);
            report.rebuilt_groups += 1;
        }
        let tiles_len = format::FILE_HEADER_LEN as u64 + stored_tiles.len() as u64 * 32;
        let mut groups = Frontier::new();
        for hash in &stored_tiles {
            groups.push_subtree(GROUP_HEIGHT, *hash);
        }
        let partial = if !end_seq.is_multiple_of(GROUP_SIZE) {
            reader.group_leaf_hashes(complete_groups)?
        } else {
            Vec::new()
        };

        let latest = checkpoint_log
            .records
            .last()
            .map(|bytes| parse_signed_checkpoint(bytes))
            .transpose()
            .map_err(|reason| {
                LedgerError::corrupt(
                    &paths.checkpoints(),
                    0,
                    None,
                    format!("latest checkpoint: {reason}"),
                )
            })?;
        let mut checkpointed_size = latest.as_ref().map_or(0, |c| c.checkpoint.size);
        let check = integrity::check_at_open(
            &OpenState {
                paths: &paths,
                keys: &KeyRing::load(&paths, &signer.verifier())?,
                checkpoint_records: &checkpoint_log.records,
                tiles: &stored_tiles,
                end_seq,
                current_root: {
                    let mut frontier = groups.clone();
                    for leaf in &partial {
                        frontier.push_leaf(*leaf);
                    }
                    frontier.root()
                },
                pruned_end,
                last_segment_sealed: last_sealed,
            },
            &mut reader,
        )?;
        if !check.problems.is_empty() {
            let Some(reason) = &config.recover else {
                return Err(LedgerError::Untrusted {
                    path: paths.root().to_owned(),
                    problems: check.problems,
                });
            };
            let record =
                integrity::append_recovery(&paths, &signer, end_seq, reason, &check.problems)?;
            report.recovered = Some(record);
            // Sign what is stored now; the old checkpoints stay as evidence.
            checkpointed_size = 0;
        } else if end_seq > check.signed_size {
            report.unsigned_tail = Some(check.signed_size..end_seq);
        }
        // Only now, with the stored events checked against the signed root, is tiles.dat
        // brought up to date (rebuilding it first would launder an edit).
        let mut tiles = files::open_append(&paths.tiles(), &tiles_header, tiles_valid)?;
        if !rebuilt.is_empty() {
            tiles
                .write_all(&rebuilt)
                .and_then(|_| tiles.sync_data())
                .map_err(|e| LedgerError::io(format!("writing {}", paths.tiles().display()), e))?;
        }
        if check.witness_missing && report.recovered.is_none() && end_seq == checkpointed_size {
            // A new ledger, or one written before the witness existed.
            match &latest {
                Some(l) => integrity::write_witness(&paths, &l.note)?,
                None => integrity::write_genesis_witness(&paths, &signer)?,
            }
        }
        if checkpointed_size > end_seq {
            return Err(LedgerError::corrupt(
                paths.segments_dir().as_path(),
                0,
                Some(end_seq),
                format!(
                    "the latest checkpoint signs {checkpointed_size} events but the segments hold only {end_seq}: \
                     signed events are missing (deleted or truncated segment)"
                ),
            ));
        }

        // None only if zstd cannot make a context: each block then makes its own.
        let compressor = zstd::bulk::Compressor::new(config.zstd_level).ok();
        let mut committer = Committer {
            paths,
            config,
            signer,
            _lock: lock,
            segment,
            segment_first,
            segment_bytes,
            segment_opened: Instant::now(),
            sealed,
            tiles,
            checkpoints,
            prunes,
            pruned_end,
            end_seq,
            groups,
            partial,
            checkpointed_size,
            last_checkpoint: Instant::now(),
            recoveries: check.recoveries + usize::from(report.recovered.is_some()),
            poisoned: None,
            degraded: None,
            retry_at: Instant::now(),
            backoff: FIRST_BACKOFF,
            tiles_len,
            tiles_pending: Vec::new(),
            write_buf: Vec::new(),
            scratch: Vec::new(),
            compressor,
        };
        if let Some(record) = &report.recovered {
            committer.append_own(integrity::recovery_event(record))?;
        } else if let Some(tail) = &report.unsigned_tail {
            committer.append_own(integrity::unsigned_tail_event(tail))?;
        }
        if committer.end_seq > committer.checkpointed_size {
            committer.write_checkpoint()?;
            report.checkpoint_written = true;
        }
        Ok((committer, report))
    }

    /// Appends one event of the writer's own before it starts serving.
    fn append_own(&mut self, event: Event) -> Result<(), LedgerError> {
        let bytes = event.to_canonical();
        let tile_bytes = self.write_events(&[bytes.as_slice()])?;
        self.tiles_pending.extend_from_slice(&tile_bytes);
        self.flush_tiles()
    }

    fn run(mut self, rx: Receiver<Command>, shared: &Shared) {
        let mut pending: Vec<Command> = Vec::new();
        loop {
            let dirty = self.end_seq > self.checkpointed_size;
            let mut timeout = if dirty {
                self.config
                    .checkpoint_interval
                    .saturating_sub(self.last_checkpoint.elapsed())
            } else {
                Duration::from_secs(3600)
            };
            if self.degraded.is_some() && self.poisoned.is_none() {
                timeout = self.retry_at.saturating_duration_since(Instant::now());
            }
            match rx.recv_timeout(timeout) {
                Ok(first) => {
                    pending.push(first);
                    // Take whatever else is queued, up to a bound, to share one fsync.
                    let mut n_events: usize = 0;
                    while n_events < 64 * 1024 {
                        match rx.try_recv() {
                            Ok(command) => {
                                if let Command::Append { events, .. } = &command {
                                    n_events += events.len();
                                }
                                pending.push(command);
                            }
                            Err(_) => break,
                        }
                    }
                    if self.handle(&mut pending, shared) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.poisoned.is_none() {
                        if self.degraded.is_some() {
                            if Instant::now() >= self.retry_at {
                                self.probe(shared);
                            }
                        } else if self.end_seq > self.checkpointed_size {
                            let _ = self.write_checkpoint_logged(shared);
                        }
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.shutdown(shared);
                    return;
                }
            }
            if self.end_seq > self.checkpointed_size
                && self.last_checkpoint.elapsed() >= self.config.checkpoint_interval
                && self.poisoned.is_none()
                && self.degraded.is_none()
            {
                let _ = self.write_checkpoint_logged(shared);
            }
        }
    }

    /// Processes queued commands in order; returns true when the writer should stop.
    fn handle(&mut self, pending: &mut Vec<Command>, shared: &Shared) -> bool {
        let mut appends: Vec<(Encoded, AppendReply)> = Vec::new();
        for command in pending.drain(..) {
            match command {
                Command::Append { events, reply } => appends.push((events, reply)),
                other => {
                    self.commit(std::mem::take(&mut appends), shared);
                    match other {
                        Command::Append { .. } => unreachable!("handled above"),
                        Command::Checkpoint { reply } => {
                            let result = if self.end_seq > self.checkpointed_size {
                                self.write_checkpoint_logged(shared).map(Some)
                            } else {
                                read_latest(&self.paths)
                            };
                            let _ = reply.send(result);
                        }
                        Command::Prune { policy, now, reply } => {
                            let result = self.prune(policy, now, shared);
                            let _ = reply.send(result);
                        }
                        Command::Shutdown { reply } => {
                            let _ = reply.send(self.shutdown(shared));
                            return true;
                        }
                    }
                }
            }
        }
        self.commit(appends, shared);
        false
    }

    fn shutdown(&mut self, shared: &Shared) -> Result<(), LedgerError> {
        if self.end_seq > self.checkpointed_size && self.poisoned.is_none() {
            self.write_checkpoint_logged(shared)?;
        }
        Ok(())
    }

    /// Writes all queued appends as blocks with one fsync, then answers every caller. A failed
    /// write is undone (nothing of it stays) and every caller is told so.
    fn commit(&mut self, appends: Vec<(Encoded, AppendReply)>, shared: &Shared) {
        if appends.is_empty() {
            return;
        }
        if let Some(reason) = &self.poisoned {
            for (_, reply) in appends {
                reply(Err(LedgerError::Poisoned(reason.clone())));
            }
            return;
        }
        if let Some(reason) = &self.degraded
            && Instant::now() < self.retry_at
        {
            for (_, reply) in appends {
                reply(Err(LedgerError::Unavailable(reason.clone())));
            }
            return;
        }
        let start = self.end_seq;
        let all: Vec<&[u8]> = appends
            .iter()
            .flat_map(|(events, _)| events.events())
            .collect();
        let snapshot = self.snapshot();
        match self.write_events(&all) {
            Ok(tile_bytes) => {
                shared.end_seq.store(self.end_seq, Ordering::Release);
                shared.wake.notify();
                // The events are durable: the group hashes are derived data, written when
                // the disk takes them (before the next checkpoint at the latest).
                self.tiles_pending.extend_from_slice(&tile_bytes);
                let tiles = self.flush_tiles();
                self.recovered(tiles.err(), shared);
                let mut seq = start;
                for (events, reply) in appends {
                    let n = events.len() as u64;
                    reply(Ok(seq..seq + n));
                    seq += n;
                }
            }
            Err(e) => {
                let answer = match self.undo(snapshot) {
                    Ok(()) => {
                        self.failed(&e, shared);
                        LedgerError::Unavailable(e.to_string())
                    }
                    Err(undo) => {
                        // The file's state is unknown: say so, and take no more writes.
                        let reason = format!("{e}; undoing it failed too: {undo}");
                        shared.set_degraded(Some(reason.clone()));
                        self.poisoned = Some(reason.clone());
                        LedgerError::Poisoned(reason)
                    }
                };
                for (_, reply) in appends {
                    reply(Err(answer.clone()));
                }
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            end_seq: self.end_seq,
            segment_first: self.segment_first,
            segment_bytes: self.segment_bytes,
            segment_opened: self.segment_opened,
            sealed: self.sealed.len(),
            groups: self.groups.clone(),
            partial: self.partial.clone(),
        }
    }

    /// Undoes a failed write: removes segments it created, cuts the segment it began in back to
    /// its length before (fsynced, so the bytes cannot resurface at the next open).
    fn undo(&mut self, snapshot: Snapshot) -> Result<(), LedgerError> {
        let mut removed = false;
        for (first, path) in files::list_segments(&self.paths)? {
            if first > snapshot.segment_first {
                fs::remove_file(&path)
                    .map_err(|e| LedgerError::io(format!("removing {}", path.display()), e))?;
                removed = true;
            }
        }
        if removed {
            sync_dir(&self.paths.segments_dir())?;
        }
        let path = self.paths.segment(snapshot.segment_first);
        if self.segment_first != snapshot.segment_first {
            self.segment = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| LedgerError::io(format!("opening {}", path.display()), e))?;
        }
        self.segment
            .set_len(snapshot.segment_bytes)
            .and_then(|_| self.segment.sync_all())
            .and_then(|_| self.segment.seek(SeekFrom::Start(snapshot.segment_bytes)))
            .map_err(|e| LedgerError::io(format!("truncating {}", path.display()), e))?;
        self.segment_first = snapshot.segment_first;
        self.segment_bytes = snapshot.segment_bytes;
        self.segment_opened = snapshot.segment_opened;
        self.sealed.truncate(snapshot.sealed);
        self.end_seq = snapshot.end_seq;
        self.groups = snapshot.groups;
        self.partial = snapshot.partial;
        Ok(())
    }

    /// A write failed and was undone: degraded until a retry succeeds.
    fn failed(&mut self, e: &LedgerError, shared: &Shared) {
        let reason = e.to_string();
        if self.degraded.is_none() {
            self.backoff = FIRST_BACKOFF;
        } else {
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
        self.retry_at = Instant::now() + self.backoff;
        shared.set_degraded(Some(reason.clone()));
        self.degraded = Some(reason);
    }

    /// Records how the latest write ended: `None` healthy again, `Some(e)` still failing.
    fn recovered(&mut self, error: Option<LedgerError>, shared: &Shared) {
        match error {
            Some(e) => self.failed(&e, shared),
            None if self.degraded.is_some() => {
                self.degraded = None;
                self.backoff = FIRST_BACKOFF;
                shared.set_degraded(None);
            }
            None => {}
        }
    }

    /// Writes group hashes not yet in `tiles.dat` (not fsynced: derived data).
    fn flush_tiles(&mut self) -> Result<(), LedgerError> {
        if self.tiles_pending.is_empty() {
            return Ok(());
        }
        let len = self.tiles_len;
        let result = self
            .tiles
            .set_len(len)
            .and_then(|_| self.tiles.seek(SeekFrom::Start(len)))
            .and_then(|_| self.tiles.write_all(&self.tiles_pending));
        match result {
            Ok(_) => {
                self.tiles_len += self.tiles_pending.len() as u64;
                self.tiles_pending.clear();
                Ok(())
            }
            Err(e) => {
                // Keep the file at what is known written; the next flush writes the rest.
                let _ = self.tiles.set_len(len);
                Err(LedgerError::io(
                    format!("writing {}", self.paths.tiles().display()),
                    e,
                ))
            }
        }
    }

    /// While degraded: tries whether the disk takes writes again (the pending group hashes and
    /// checkpoint, or a probe file), and leaves the degraded state if it does.
    fn probe(&mut self, shared: &Shared) {
        let result = self.flush_tiles().and_then(|()| {
            if self.end_seq > self.checkpointed_size {
                return self.write_checkpoint().map(|_| ());
            }
            let path = self.paths.root().join("probe.tmp");
            let written = File::create(&path)
                .and_then(|mut f| f.write_all(&[0u8; 64 * 1024]).and_then(|_| f.sync_all()));
            let _ = fs::remove_file(&path);
            written.map_err(|e| LedgerError::io(format!("writing {}", path.display()), e))
        });
        shared
            .checkpointed
            .store(self.checkpointed_size, Ordering::Release);
        self.recovered(result.err(), shared);
    }

    /// Writes events as blocks and fsyncs; returns the hashes of the groups completed, for
    /// `tiles.dat`. Every block but the write's last is flagged `continues`. On an error the
    /// in-memory state is half-advanced: the caller undoes it.
    fn write_events(&mut self, events: &[&[u8]]) -> Result<Vec<u8>, LedgerError> {
        let mut buf = std::mem::take(&mut self.write_buf);
        buf.clear();
        let mut tile_bytes = Vec::new();
        let mut seq = self.end_seq;
        let mut i = 0;
        while i < events.len() {
            // One block: up to the group boundary, BLOCK_TARGET_RAW bytes, or the input's end.
            let room = (GROUP_SIZE - seq % GROUP_SIZE) as usize;
            let mut j = i;
            let mut raw = 0usize;
            while j < events.len() && j - i < room && (j == i || raw < BLOCK_TARGET_RAW) {
                raw += events[j].len() + 5;
                j += 1;
            }
            match &mut self.compressor {
                Some(compressor) => format::encode_events_block_reusing(
                    &mut buf,
                    seq,
                    &events[i..j],
                    compressor,
                    &mut self.scratch,
                    j < events.len(),
                ),
                None => format::encode_events_block_flagged(
                    &mut buf,
                    seq,
                    &events[i..j],
                    self.config.zstd_level,
                    &mut self.scratch,
                    j < events.len(),
                ),
            }
            for e in &events[i..j] {
                self.partial.push(merkle::leaf_hash(e));
                if self.partial.len() as u64 == GROUP_SIZE {
                    let hash = merkle::root_from_leaf_hashes(&self.partial);
                    self.groups.push_subtree(GROUP_HEIGHT, hash);
                    tile_bytes.extend_from_slice(&hash);
                    self.partial.clear();
                }
            }
            seq += (j - i) as u64;
            i = j;
            if seq.is_multiple_of(GROUP_SIZE) && self.segment_full(buf.len()) {
                format::encode_seal_block(&mut buf, seq, Timestamp::now().as_nanos());
                self.write_segment(&buf)?;
                buf.clear();
                self.roll_segment(seq)?;
            }
        }
        self.write_segment(&buf)?;
        self.end_seq = seq;
        self.write_buf = buf;
        Ok(tile_bytes)
    }

    fn segment_full(&self, buffered: usize) -> bool {
        self.segment_bytes + buffered as u64 >= self.config.segment_max_bytes
            || self.segment_opened.elapsed() >= self.config.segment_max_age
    }

    fn write_segment(&mut self, bytes: &[u8]) -> Result<(), LedgerError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let path = self.paths.segment(self.segment_first);
        self.segment
            .write_all(bytes)
            .and_then(|_| self.segment.sync_data())
            .map_err(|e| LedgerError::io(format!("writing {}", path.display()), e))?;
        self.segment_bytes += bytes.len() as u64;
        Ok(())
    }

    fn roll_segment(&mut self, end: u64) -> Result<(), LedgerError> {
        // The segment is sealed and durable: save its block map (a cache; see `blockmap`).
        let sealed = self.paths.segment(self.segment_first);
        if let Ok(scanned) = files::scan_segment(&sealed) {
            let _ = blockmap::save(&self.paths, &scanned);
        }
        let now = Timestamp::now().as_nanos();
        self.sealed.push(SealedSegment {
            first_seq: self.segment_first,
            end_seq: end,
            sealed_nanos: now,
            path: self.paths.segment(self.segment_first),
        });
        let (file, bytes) = create_segment(&self.paths, end, now)?;
        self.segment = file;
        self.segment_first = end;
        self.segment_bytes = bytes;
        self.segment_opened = Instant::now();
        Ok(())
    }

    fn current_root(&self) -> Hash {
        let mut frontier = self.groups.clone();
        for leaf in &self.partial {
            frontier.push_leaf(*leaf);
        }
        frontier.root()
    }

    fn write_checkpoint_logged(
        &mut self,
        shared: &Shared,
    ) -> Result<SignedCheckpoint, LedgerError> {
        let result = self.write_checkpoint();
        match &result {
            Ok(_) => {
                shared
                    .checkpointed
                    .store(self.checkpointed_size, Ordering::Release);
                self.recovered(None, shared);
            }
            Err(e) => self.failed(e, shared),
        }
        result
    }

    fn write_checkpoint(&mut self) -> Result<SignedCheckpoint, LedgerError> {
        // Group hashes first, so a proof against this checkpoint finds them after a crash.
        self.flush_tiles()?;
        self.tiles
            .sync_data()
            .map_err(|e| LedgerError::io(format!("syncing {}", self.paths.tiles().display()), e))?;
        let checkpoint = Checkpoint {
            origin: self.signer.name().to_owned(),
            size: self.end_seq,
            root: self.current_root(),
            extensions: integrity::checkpoint_extensions(Timestamp::now(), self.recoveries),
        };
        let note = self.signer.sign(&checkpoint.to_text())?;
        let mut record = Vec::with_capacity(note.len() + 8);
        format::encode_record(&mut record, note.as_bytes());
        let path = self.paths.checkpoints();
        let before = self
            .checkpoints
            .stream_position()
            .map_err(|e| LedgerError::io(format!("seeking {}", path.display()), e))?;
        let written = self
            .checkpoints
            .write_all(&record)
            .and_then(|_| self.checkpoints.sync_data());
        if let Err(e) = written {
            // Undo a part written (a torn record would be cut at the next start anyway).
            self.checkpoints
                .set_len(before)
                .and_then(|_| self.checkpoints.seek(SeekFrom::Start(before)))
                .map_err(|undo| LedgerError::io(format!("truncating {}", path.display()), undo))?;
            return Err(LedgerError::io(format!("writing {}", path.display()), e));
        }
        integrity::write_witness(&self.paths, &note)?;
        self.checkpointed_size = checkpoint.size;
        self.last_checkpoint = Instant::now();
        Ok(SignedCheckpoint { checkpoint, note })
    }

    fn prune(
        &mut self,
        policy: RetentionPolicy,
        now: Timestamp,
        shared: &Shared,
    ) -> Result<PruneOutcome, LedgerError> {
        let data_dir = self.paths.root().parent().unwrap_or(Path::new("."));
        if let Some(reason) = legal_hold(data_dir)? {
            return Ok(PruneOutcome::Held { reason });
        }
        let cutoff = now
            .as_nanos()
            .saturating_sub(i64::try_from(policy.max_age.as_nanos()).unwrap_or(i64::MAX));
        let n_old = self
            .sealed
            .iter()
            .take_while(|s| s.sealed_nanos <= cutoff)
            .count();
        if n_old == 0 {
            return Ok(PruneOutcome::NothingToDo);
        }
        let removed: Vec<SealedSegment> = self.sealed[..n_old].to_vec();
        let end = removed.last().expect("n_old > 0").end_seq;
        self.tiles
            .sync_data()
            .map_err(|e| LedgerError::io(format!("syncing {}", self.paths.tiles().display()), e))?;
        let tiles = files::read_tiles(&self.paths.tiles())?;
        let mut frontier = Frontier::new();
        for hash in &tiles[..(end / GROUP_SIZE) as usize] {
            frontier.push_subtree(GROUP_HEIGHT, *hash);
        }
        let mut record = PruneRecord {
            origin: self.signer.name().to_owned(),
            start: self.pruned_end,
            end,
            root: frontier.root(),
            time: now,
            reason: format!(
                "retention: sealed more than {}s ago",
                policy.max_age.as_secs()
            ),
            segments: removed
                .iter()
                .map(|s| PrunedSegment {
                    first_seq: s.first_seq,
                    end_seq: s.end_seq,
                    sealed: Timestamp::from_nanos(s.sealed_nanos),
                })
                .collect(),
            note: String::new(),
        };
        record.note = self.signer.sign(&record.to_text())?;
        let mut bytes = Vec::new();
        format::encode_record(&mut bytes, record.note.as_bytes());
        self.prunes
            .write_all(&bytes)
            .and_then(|_| self.prunes.sync_data())
            .map_err(|e| {
                LedgerError::io(format!("writing {}", self.paths.prunes().display()), e)
            })?;
        for segment in &removed {
            fs::remove_file(&segment.path)
                .map_err(|e| LedgerError::io(format!("removing {}", segment.path.display()), e))?;
            let _ = blockmap::remove(&self.paths, segment.first_seq);
        }
        sync_dir(&self.paths.segments_dir())?;
        self.sealed.drain(..n_old);
        self.pruned_end = end;

        // The pruning is itself an event in the ledger.
        let mut audit = Event::audit_builder("retention_prune")
            .category(Category::Configuration)
            .event_type(EventType::Deletion)
            .outcome(Outcome::Success)
            .at(now)
            .build();
        audit.insert("vigil.prune.start", record.start as i64);
        audit.insert("vigil.prune.end", record.end as i64);
        audit.insert("vigil.prune.segments", record.segments.len() as i64);
        audit.insert(
            "message",
            format!(
                "retention removed events {}..{} ({} segments): {}",
                record.start,
                record.end,
                record.segments.len(),
                record.reason
            ),
        );
        let bytes = audit.to_canonical();
        let (tx, rx) = mpsc::sync_channel(1);
        self.commit(
            vec![(
                Encoded {
                    ends: vec![bytes.len()],
                    bytes,
                },
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            )],
            shared,
        );
        rx.recv().unwrap_or(Err(LedgerError::Closed))?;
        Ok(PruneOutcome::Pruned(Box::new(record)))
    }
}

fn read_latest(paths: &LedgerPaths) -> Result<Option<SignedCheckpoint>, LedgerError> {
    Ok(crate::reader::read_checkpoints(paths)?.pop())
}

fn note_cut(report: &mut RecoveryReport, path: &Path, log: &files::RecordLog, reason: &str) {
    if log.file_len > log.valid_len && log.valid_len > 0 {
        report.cut.push(CutTail {
            path: path.to_owned(),
            offset: log.valid_len,
            bytes: log.file_len - log.valid_len,
            reason: reason.into(),
        });
    }
}

fn create_segment(
    paths: &LedgerPaths,
    first_seq: u64,
    now_nanos: i64,
) -> Result<(File, u64), LedgerError> {
    let path = paths.segment(first_seq);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| LedgerError::io(format!("creating {}", path.display()), e))?;
    let header = format::encode_segment_header(first_seq, now_nanos);
    file.write_all(&header)
        .and_then(|_| file.sync_all())
        .map_err(|e| LedgerError::io(format!("writing {}", path.display()), e))?;
    sync_dir(&paths.segments_dir())?;
    Ok((file, header.len() as u64))
}

/// Reads the seal block at the end of a segment: `(end_seq, sealed_nanos)`.
fn read_seal(path: &Path) -> Result<Option<(u64, i64)>, LedgerError> {
    let mut file =
        File::open(path).map_err(|e| LedgerError::io(format!("opening {}", path.display()), e))?;
    let len = file
        .metadata()
        .map_err(|e| LedgerError::io(format!("reading {}", path.display()), e))?
        .len();
    let seal_len = (format::BLOCK_HEADER_LEN + 8) as u64;
    if len < format::SEGMENT_HEADER_LEN as u64 + seal_len {
        return Ok(None);
    }
    let mut bytes = vec![0u8; seal_len as usize];
    file.seek(SeekFrom::Start(len - seal_len))
        .and_then(|_| file.read_exact(&mut bytes))
        .map_err(|e| LedgerError::io(format!("reading {}", path.display()), e))?;
    let Ok(header) = format::decode_block_header(&bytes) else {
        return Ok(None);
    };
    if header.kind != format::BlockKind::Seal
        || format::check_block_crc(&bytes, &bytes[format::BLOCK_HEADER_LEN..]).is_err()
    {
        return Ok(None);
    }
    let nanos = i64::from_le_bytes(bytes[format::BLOCK_HEADER_LEN..].try_into().expect("8"));
    Ok(Some((header.first_seq, nanos)))
}

/// Checks every block of the last segment and cuts a torn tail. Refuses (rather than cutting)
/// when a damaged block is followed by a valid one: that is damage, not a torn write, and
/// cutting would drop complete blocks.
fn recover_last_segment(
    path: &Path,
    report: &mut RecoveryReport,
) -> Result<SegmentBlocks, LedgerError> {
    let bytes = files::read_file(path)?;
    let header_ok = format::decode_segment_header(&bytes).is_ok();
    if !header_ok && bytes.len() <= format::SEGMENT_HEADER_LEN {
        // Killed between creating the file and making its header durable (a roll, or the very
        // first segment): it holds no events. Its first sequence number is in its name.
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(format::parse_segment_file_name)
            .ok_or_else(|| {
                LedgerError::corrupt(path, 0, None, "segment file name is not a sequence number")
            })?;
        let header = format::encode_segment_header(first, Timestamp::now().as_nanos());
        let mut file = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(|e| LedgerError::io(format!("opening {}", path.display()), e))?;
        file.write_all(&header)
            .and_then(|_| file.sync_all())
            .map_err(|e| {
                LedgerError::io(format!("rewriting the header of {}", path.display()), e)
            })?;
        report.cut.push(CutTail {
            path: path.to_owned(),
            offset: 0,
            bytes: bytes.len() as u64,
            reason: "segment created but its header not yet written (rewritten)".into(),
        });
        return files::scan_segment(path);
    }
    let mut scanned = files::scan_segment(path)?;
    // Check payload CRCs: a header can reach the disk before its payload.
    let mut first_bad: Option<(usize, u64)> = None;
    for (i, block) in scanned.blocks.iter().enumerate() {
        let start = block.offset as usize;
        let end = start + block.header.stored_len() as usize;
        let head = &bytes[start..start + format::BLOCK_HEADER_LEN];
        if format::check_block_crc(head, &bytes[start + format::BLOCK_HEADER_LEN..end]).is_err() {
            first_bad = Some((i, block.offset));
            break;
        }
    }
    let cut_at = match first_bad {
        Some((i, offset)) => {
            scanned.blocks.truncate(i);
            scanned.sealed_nanos = None;
            offset
        }
        None => scanned.valid_len,
    };
    if cut_at < bytes.len() as u64 {
        if let Some(valid_offset) = find_valid_block_after(&bytes, cut_at as usize + 1) {
            return Err(LedgerError::corrupt(
                path,
                cut_at,
                None,
                format!(
                    "damaged block followed by a valid block at byte {valid_offset}; this is not a torn write, \
                     refusing to cut complete blocks"
                ),
            ));
        }
        let reason = match (first_bad, scanned.tail_problem) {
            (Some(_), _) => "block checksum mismatch (write interrupted before fsync)".to_string(),
            (None, Some(problem)) => format!("incomplete or invalid block ({problem})"),
            (None, None) => "trailing bytes".to_string(),
        };
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| LedgerError::io(format!("opening {}", path.display()), e))?;
        file.set_len(cut_at)
            .and_then(|_| file.sync_all())
            .map_err(|e| LedgerError::io(format!("truncating {}", path.display()), e))?;
        report.cut.push(CutTail {
            path: path.to_owned(),
            offset: cut_at,
            bytes: bytes.len() as u64 - cut_at,
            reason,
        });
        scanned.valid_len = cut_at;
        scanned.file_len = cut_at;
        scanned.tail_problem = None;
    }
    Ok(scanned)
}

/// Looks for a complete block with a valid checksum anywhere at or after `from`.
fn find_valid_block_after(bytes: &[u8], from: usize) -> Option<usize> {
    let mut pos = from;
    while pos + format::BLOCK_HEADER_LEN <= bytes.len() {
        let rel = bytes[pos..]
            .windows(4)
            .position(|w| w == format::BLOCK_MAGIC)?;
        let at = pos + rel;
        if let Ok(header) = format::decode_block_header(&bytes[at..]) {
            let end = at + header.stored_len() as usize;
            if end <= bytes.len()
                && format::check_block_crc(
                    &bytes[at..at + format::BLOCK_HEADER_LEN],
                    &bytes[at + format::BLOCK_HEADER_LEN..end],
                )
                .is_ok()
            {
                return Some(at);
            }
        }
        pos = at + 1;
    }
    None
}

/// Drops a write the previous run did not finish: a trailing run of blocks flagged `continues`
/// in the last segment (their write's last block never reached the disk), and, when that run
/// began in the segment before (the write rolled the segment), the segment it created, the
/// seal and the flagged blocks of the one before. Nobody was told those events were durable:
/// an append is stored whole or not at all.
fn drop_incomplete_write(
    listed: &mut Vec<(u64, PathBuf)>,
    report: &mut RecoveryReport,
) -> Result<(), LedgerError> {
    while let Some((_, path)) = listed.last().cloned() {
        let scanned = recover_last_segment(&path, report)?;
        let keep = scanned
            .blocks
            .iter()
            .rposition(|b| !b.header.continues)
            .map_or(0, |i| i + 1);
        if keep < scanned.blocks.len() {
            let offset = scanned.blocks[keep].offset;
            truncate_file(&path, offset)?;
            report.cut.push(CutTail {
                path: path.clone(),
                offset,
                bytes: scanned.file_len - offset,
                reason: "incomplete write: its last block never reached the disk (appends \
                         stored whole or not at all)"
                    .into(),
            });
        }
        if keep > 0 || listed.len() < 2 {
            return Ok(());
        }
        // No complete write left here: did the write that ended here begin in the segment
        // before (a roll in the middle of a write)?
        let previous = &listed[listed.len() - 2].1;
        let before = files::scan_segment(previous)?;
        if !before.blocks.last().is_some_and(|b| b.header.continues) {
            return Ok(());
        }
        let len = fs::metadata(&path).map_or(0, |m| m.len());
        fs::remove_file(&path)
            .map_err(|e| LedgerError::io(format!("removing {}", path.display()), e))?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))?;
        report.cut.push(CutTail {
            path: path.clone(),
            offset: 0,
            bytes: len,
            reason: "segment created by an incomplete write (removed)".into(),
        });
        listed.pop();
    }
    Ok(())
}

/// Cuts a file to `len` bytes and makes that durable.
fn truncate_file(path: &Path, len: u64) -> Result<(), LedgerError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.set_len(len).and_then(|_| file.sync_all()))
        .map_err(|e| LedgerError::io(format!("truncating {}", path.display()), e))
}

/// Rewrites an older header of the segment about to be appended to as the current version
/// (version 2 may hold `continues` flags, version 3 columns blocks, version 4 columns with
/// references; the blocks already written are unchanged and valid in every later version),
/// before any append.
fn upgrade_segment_header(
    file: &mut File,
    path: &Path,
    scanned: &SegmentBlocks,
) -> Result<(), LedgerError> {
    let mut header = [0u8; format::SEGMENT_HEADER_LEN];
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_exact(&mut header))
        .map_err(|e| LedgerError::io(format!("reading {}", path.display()), e))?;
    if format::segment_version(&header) == Some(format::SEGMENT_VERSION) {
        return Ok(());
    }
    let upgraded = format::encode_segment_header(scanned.first_seq, scanned.created_nanos);
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(&upgraded))
        .and_then(|_| file.sync_all())
        .map_err(|e| {
            LedgerError::io(
                format!(
                    "upgrading the header of {} to version {}",
                    path.display(),
                    format::SEGMENT_VERSION
                ),
                e,
            )
        })
}
