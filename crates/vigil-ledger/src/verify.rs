//! `vigil verify`: recompute everything from the files and check it against every checkpoint.
//!
//! The walk is one pass in sequence order. It checks, in this order of trust:
//! 1. every checkpoint and pruning record carries a valid signature by the ledger key (or the
//!    key given with `--key`, so a replaced key file is caught too);
//! 2. pruning records chain (`start` = previous `end`) and the kept group hashes of the pruned
//!    prefix fold to the root each record signed;
//! 3. segments follow each other without gaps: a gap not covered by a pruning record is a
//!    deleted segment;
//! 4. every block has valid framing, checksum and sequence numbers (catches inserted, removed
//!    and reordered blocks, truncation and flipped bytes);
//! 5. every complete group of 256 events hashes to the stored group hash;
//! 6. the Merkle root at every checkpoint's tree size equals the signed root (catches any change
//!    to event bytes, even one with a recomputed checksum and group hash);
//! 7. no checkpoint signs more events than the ledger holds (catches a truncated tail);
//! 8. every event is covered by a signature: events after the last signed checkpoint are a
//!    failure, not a note (a crash leaves such a tail; `vigil serve` signs it at its next start
//!    after checking it continues the signed tree, and records that it did);
//! 9. the witness (a second copy of the latest checkpoint) is present when the checkpoints say
//!    it should be, checks out, and is not newer than `checkpoints.log` (removed checkpoints);
//!    a sealed last segment with nothing after it is a deleted segment;
//! 10. with [`VerifyOptions::against`], a checkpoint kept elsewhere is signed by the key and the
//!     ledger's tree is consistent with it (RFC 9162 consistency proof): catches a rollback or a
//!     fork that left no trace on this host.
//!
//! Recovery records (`recoveries.log`) are listed in the report: they are not failures, but an
//! auditor must see that the history was re-signed.
//!
//! The first problem found is the first bad place; later ones are listed too.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::LedgerError;
use crate::files::{self, LedgerPaths};
use crate::format::{self, BlockKind, FormatError, GROUP_HEIGHT, GROUP_SIZE};
use crate::integrity::{self, RecoveryRecord, WITNESS_EXTENSION};
use crate::keys;
use crate::merkle::{self, Frontier, Hash};
use crate::note::{Checkpoint, NoteVerifier};
use crate::reader::LedgerReader;
use crate::retention::PruneRecord;
use crate::rotation::{KeyRing, KeyRotation};

/// What to verify against.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Trust this key instead of the ledger's own `verifier.vkey`.
    pub trusted_key: Option<NoteVerifier>,
    /// A signed checkpoint note kept outside this host: the ledger must hold its tree as a
    /// prefix (consistency proof), or verification fails.
    pub against: Option<String>,
}

/// Where a problem is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// The file concerned.
    pub file: Option<PathBuf>,
    /// Block index within a segment (0-based).
    pub block: Option<usize>,
    /// Byte offset in the file.
    pub offset: Option<u64>,
    /// First sequence number concerned.
    pub seq: Option<u64>,
    /// Checkpoint number (1-based, in the order written).
    pub checkpoint: Option<usize>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(file) = &self.file {
            let name = file.file_name().map_or_else(
                || file.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            parts.push(format!("file {name}"));
        }
        if let Some(b) = self.block {
            parts.push(format!("block {b}"));
        }
        if let Some(o) = self.offset {
            parts.push(format!("offset {o}"));
        }
        if let Some(s) = self.seq {
            parts.push(format!("seq {s}"));
        }
        if let Some(c) = self.checkpoint {
            parts.push(format!("checkpoint #{c}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// One thing that does not check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub place: Place,
    /// What.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Problems, first bad place first. Empty means intact.
    pub problems: Vec<Problem>,
    /// Observations that are not failures (a torn tail left by a crash, events not yet signed).
    pub notes: Vec<String>,
    /// Events present and hashed.
    pub events: u64,
    /// Canonical event bytes hashed.
    pub event_bytes: u64,
    /// Segment files read.
    pub segments: usize,
    /// Blocks read.
    pub blocks: u64,
    /// One past the last sequence number.
    pub end_seq: u64,
    /// Events removed by retention (sequence numbers below this were pruned).
    pub pruned_end: u64,
    /// Checkpoints whose root was recomputed and matched.
    pub checkpoints_verified: usize,
    /// Checkpoints inside the pruned prefix that could not be recomputed.
    pub checkpoints_pruned: usize,
    /// The newest checkpoint with a valid signature.
    pub latest_checkpoint: Option<Checkpoint>,
    /// Valid pruning records.
    pub prunes: Vec<PruneRecord>,
    /// The verifier key used.
    pub key: String,
    /// The newest checkpoint whose signature checked and whose root was recomputed and matched:
    /// the point up to which the ledger is verified.
    pub latest_verified: Option<Checkpoint>,
    /// Recorded starts on a ledger that did not verify (`serve --recover`), signed.
    pub recoveries: Vec<RecoveryRecord>,
    /// The outside checkpoint given with `against`, when it checked out.
    pub against: Option<Checkpoint>,
    /// `name+keyid` of the key that signed [`VerifyReport::latest_verified`].
    pub latest_verified_key: Option<String>,
    /// Key rotations on record (`keys.log`), vouched or not.
    pub rotations: Vec<KeyRotation>,
}

impl VerifyReport {
    /// Whether an auditor must look twice although nothing failed: a recovery, or a key
    /// rotation the old key did not sign.
    pub fn needs_attention(&self) -> bool {
        !self.recoveries.is_empty() || self.rotations.iter().any(|r| !r.vouched)
    }
}

impl VerifyReport {
    /// Whether the ledger verified.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

struct CheckpointEntry {
    number: usize,
    checkpoint: Checkpoint,
    /// `name+keyid` of the key that signed it.
    key: String,
}

/// `name+keyid` of a key (a key name never holds `+`; the base64 key material may).
fn key_label(key: &NoteVerifier) -> String {
    let vkey = key.to_vkey();
    match vkey.match_indices('+').nth(1) {
        Some((at, _)) => vkey[..at].to_owned(),
        None => vkey,
    }
}

/// Verifies the ledger of `data_dir`. `progress(done, total)` is called with segment bytes.
pub fn verify(
    data_dir: &Path,
    options: &VerifyOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, LedgerError> {
    let paths = LedgerPaths::new(data_dir);
    if !paths.root().exists() {
        return Err(LedgerError::NotInitialized {
            path: paths.root().to_owned(),
        });
    }
    let verifier = match &options.trusted_key {
        Some(k) => k.clone(),
        None => keys::load_verifier(&paths)?,
    };
    let mut report = VerifyReport {
        key: verifier.to_vkey(),
        ..VerifyReport::default()
    };
    let ring = KeyRing::load(&paths, &verifier)?;
    for p in &ring.problems {
        report.problem(
            Place {
                file: Some(paths.key_history()),
                ..Place::default()
            },
            p.clone(),
        );
    }
    report.rotations = ring.rotations.clone();

    // 1. Checkpoints.
    let log = files::read_record_log(&paths.checkpoints(), format::CHECKPOINTS_MAGIC)?;
    if log.file_len > log.valid_len {
        report.notes.push(format!(
            "checkpoints.log ends in {} bytes that are not a complete record (an interrupted write)",
            log.file_len - log.valid_len
        ));
    }
    let mut by_size: BTreeMap<u64, Vec<CheckpointEntry>> = BTreeMap::new();
    let mut previous_size = 0u64;
    for (i, bytes) in log.records.iter().enumerate() {
        let number = i + 1;
        let place = Place {
            file: Some(paths.checkpoints()),
            checkpoint: Some(number),
            ..Place::default()
        };
        let Ok(note) = std::str::from_utf8(bytes) else {
            report.problem(place, "checkpoint is not UTF-8 text");
            continue;
        };
        let (text, key) = match ring.open(note) {
            Ok((text, key)) => (text, key_label(key)),
            Err(e) => {
                report.problem(place, format!("signature check failed: {e}"));
                continue;
            }
        };
        let checkpoint = match Checkpoint::parse(text) {
            Ok(c) => c,
            Err(e) => {
                report.problem(place, format!("signed but unreadable: {e}"));
                continue;
            }
        };
        if checkpoint.origin != verifier.name() {
            report.problem(
                place,
                format!("origin {:?} is not this ledger's", checkpoint.origin),
            );
            continue;
        }
        if checkpoint.size < previous_size {
            report.problem(
                place.clone(),
                format!(
                    "tree size {} is smaller than the previous checkpoint's {previous_size}",
                    checkpoint.size
                ),
            );
        }
        previous_size = previous_size.max(checkpoint.size);
        report.latest_checkpoint = Some(checkpoint.clone());
        by_size
            .entry(checkpoint.size)
            .or_default()
            .push(CheckpointEntry {
                number,
                checkpoint,
                key,
            });
    }

    // 2. Pruning records.
    let prune_log = files::read_record_log(&paths.prunes(), format::PRUNES_MAGIC)?;
    let mut pruned_end = 0u64;
    for (i, bytes) in prune_log.records.iter().enumerate() {
        let place = Place {
            file: Some(paths.prunes()),
            ..Place::default()
        };
        let parsed = std::str::from_utf8(bytes)
            .map_err(|_| "not UTF-8".to_string())
            .and_then(|note| {
                ring.open(note).map_err(|e| e.to_string())?;
                PruneRecord::parse_note(note)
            });
        match parsed {
            Err(e) => report.problem(place, format!("pruning record #{}: {e}", i + 1)),
            Ok(record) => {
                if record.start != pruned_end || !record.end.is_multiple_of(GROUP_SIZE) {
                    report.problem(
                        place,
                        format!(
                            "pruning record #{} covers {}..{} but the previous one ended at {pruned_end}",
                            i + 1,
                            record.start,
                            record.end
                        ),
                    );
                }
                pruned_end = pruned_end.max(record.end);
                report.prunes.push(record);
            }
        }
    }
    report.pruned_end = pruned_end;

    // 3. Group hashes and the pruned prefix.
    let tiles = files::read_tiles(&paths.tiles())?;
    let mut walk = Walk {
        frontier: Frontier::new(),
        partial: Vec::new(),
        broken: false,
        by_size,
        tiles,
        tiles_path: paths.tiles(),
        group_start: None,
        last_verified: None,
        torn_tail: None,
        last_sealed: false,
    };
    let pruned_groups = pruned_end / GROUP_SIZE;
    if (walk.tiles.len() as u64) < pruned_groups {
        report.problem(
            Place {
                file: Some(paths.tiles()),
                ..Place::default()
            },
            format!("group hashes of the pruned events 0..{pruned_end} are missing"),
        );
        walk.broken = true;
    } else {
        for g in 0..pruned_groups {
            walk.frontier
                .push_subtree(GROUP_HEIGHT, walk.tiles[g as usize]);
            walk.check_checkpoints_at(walk.frontier.size(), &mut report, &Place::default());
        }
        if let Some(last) = report.prunes.last().cloned()
            && walk.frontier.root() != last.root
        {
            report.problem(
                Place {
                    file: Some(paths.tiles()),
                    seq: Some(0),
                    ..Place::default()
                },
                format!(
                    "group hashes of the pruned events 0..{} do not match the root signed by the pruning record",
                    last.end
                ),
            );
            walk.broken = true;
        }
    }
    report.checkpoints_pruned = walk.by_size.range(..pruned_end).map(|(_, v)| v.len()).sum();
    walk.by_size = walk.by_size.split_off(&pruned_end);
    if pruned_end > 0 {
        walk.check_checkpoints_at(pruned_end, &mut report, &Place::default());
    }

    // 4-6. Segments in order.
    let segments = files::list_segments(&paths)?;
    let total_bytes: u64 = segments
        .iter()
        .filter_map(|(_, p)| p.metadata().ok())
        .map(|m| m.len())
        .sum();
    let mut done_bytes = 0u64;
    let mut expected = pruned_end;
    let n_segments = segments.len();
    for (idx, (first, path)) in segments.iter().enumerate() {
        let is_last = idx + 1 == n_segments;
        let next_first = segments.get(idx + 1).map(|(f, _)| *f);
        if next_first.is_some_and(|n| n <= pruned_end) {
            report.notes.push(format!(
                "{} is covered by a pruning record but still present (it is deleted at the next start)",
                path.display()
            ));
            continue;
        }
        if *first > expected {
            report.problem(
                Place {
                    file: Some(path.clone()),
                    seq: Some(expected),
                    ..Place::default()
                },
                format!(
                    "events {expected}..{first} are missing: no segment holds them and no pruning record covers them (deleted segment?)"
                ),
            );
            walk.broken = true;
            expected = *first;
        } else if *first < expected {
            report.problem(
                Place {
                    file: Some(path.clone()),
                    seq: Some(*first),
                    ..Place::default()
                },
                format!(
                    "segment starts at {first} but the previous one ends at {expected} (overlap)"
                ),
            );
            walk.broken = true;
        }
        report.segments += 1;
        expected = verify_segment(
            path,
            *first,
            is_last,
            next_first,
            expected,
            &mut walk,
            &mut report,
        )?;
        done_bytes += path.metadata().map(|m| m.len()).unwrap_or(0);
        progress(done_bytes, total_bytes);
    }
    report.end_seq = expected;

    // 7. Checkpoints beyond the end.
    for entries in walk.by_size.range(expected + 1..).map(|(_, v)| v) {
        for entry in entries {
            match &walk.torn_tail {
                Some((place, what)) => {
                    let mut place = place.clone();
                    place.checkpoint = Some(entry.number);
                    report.problem(
                        place,
                        format!(
                            "{what}: these bytes held events {expected}..{} signed by the checkpoint (damaged or truncated)",
                            entry.checkpoint.size
                        ),
                    );
                }
                None => report.problem(
                    Place {
                        file: segments.last().map(|(_, p)| p.clone()),
                        seq: Some(expected),
                        checkpoint: Some(entry.number),
                        ..Place::default()
                    },
                    format!(
                        "checkpoint signs {} events but the ledger holds {expected}: events {expected}..{} are missing (truncated segment?)",
                        entry.checkpoint.size, entry.checkpoint.size
                    ),
                ),
            }
        }
    }
    let complete_groups = expected / GROUP_SIZE;
    if walk.tiles.len() as u64 > complete_groups {
        report.problem(
            Place {
                file: Some(paths.tiles()),
                seq: Some(complete_groups * GROUP_SIZE),
                ..Place::default()
            },
            format!(
                "tiles.dat holds hashes for {} groups but the ledger has {complete_groups} complete groups (events removed from the end?)",
                walk.tiles.len()
            ),
        );
    }
    let broken = walk.broken;
    let last_sealed = walk.last_sealed;
    check_evidence(&paths, &ring, options, broken, last_sealed, &mut report)?;
    Ok(report)
}

/// Whether a writer holds the ledger's lock right now (so a tail not yet signed is expected).
fn writer_running(paths: &LedgerPaths) -> bool {
    let Ok(file) = File::open(paths.lock()) else {
        return false;
    };
    matches!(
        file.try_lock_shared(),
        Err(std::fs::TryLockError::WouldBlock)
    )
}

/// Steps 8 to 10: signature coverage, the witness, recoveries, an outside checkpoint.
fn check_evidence(
    paths: &LedgerPaths,
    ring: &KeyRing,
    options: &VerifyOptions,
    broken: bool,
    last_sealed: bool,
    report: &mut VerifyReport,
) -> Result<(), LedgerError> {
    let expected = report.end_seq;
    let at_end = |seq| Place {
        seq: Some(seq),
        ..Place::default()
    };
    let witness_place = || Place {
        file: Some(paths.witness()),
        ..Place::default()
    };
    let open = |note: &str| -> Result<Checkpoint, String> {
        let (text, _) = ring.open(note).map_err(|e| e.to_string())?;
        let c = Checkpoint::parse(text).map_err(|e| e.to_string())?;
        if c.origin != ring.trusted().name() {
            return Err(format!("origin {:?} is not this ledger's", c.origin));
        }
        Ok(c)
    };

    // The witness.
    let log_size = report.latest_checkpoint.as_ref().map(|c| c.size);
    let mut witness_size = None;
    match integrity::read_witness(paths) {
        Ok(None) => {
            if report
                .latest_checkpoint
                .as_ref()
                .is_some_and(|c| c.extensions.iter().any(|e| e == WITNESS_EXTENSION))
            {
                report.problem(
                    witness_place(),
                    "the witness is missing, but the checkpoints were written by a writer that keeps one: it was deleted",
                );
            }
        }
        Err(e) => report.problem(witness_place(), e.to_string()),
        Ok(Some(w)) => match open(&w.note) {
            Err(e) => report.problem(witness_place(), format!("signature check failed: {e}")),
            Ok(w)
                if writer_running(paths)
                    && (log_size.is_none_or(|l| w.size > l) || w.size > expected)
                    && crate::reader::read_checkpoints(paths)?
                        .iter()
                        .any(|c| c.checkpoint.size == w.size && c.checkpoint.root == w.root) =>
            {
                // The running writer signed a checkpoint after this run read checkpoints.log.
                report.notes.push(format!(
                    "the running writer signed a checkpoint of size {} while this verification ran; it is not covered by this run",
                    w.size
                ));
            }
            Ok(w) => {
                witness_size = Some(w.size);
                if log_size.is_none_or(|l| w.size > l) && w.size > 0 {
                    report.problem(
                        witness_place(),
                        format!(
                            "the witness holds a signed checkpoint of size {} but the latest in checkpoints.log signs {}: checkpoints were removed",
                            w.size,
                            log_size.unwrap_or(0)
                        ),
                    );
                }
                if w.size > expected {
                    report.problem(
                        witness_place(),
                        format!(
                            "the witness signs {} events but the ledger holds {expected}: events {expected}..{} are missing",
                            w.size, w.size
                        ),
                    );
                } else if !broken && w.size >= report.pruned_end {
                    let root = LedgerReader::open(paths.root().parent().unwrap_or(paths.root()))
                        .and_then(|mut r| r.root_at(w.size));
                    match root {
                        Ok(root) if root == w.root => {}
                        Ok(_) => report.problem(
                            witness_place(),
                            format!(
                                "the witness signs a root for tree size {} that is not the root of the stored events",
                                w.size
                            ),
                        ),
                        Err(e) => report.problem(witness_place(), e.to_string()),
                    }
                }
            }
        },
    }

    // Coverage: every event signed.
    let signed = log_size
        .unwrap_or(0)
        .max(witness_size.unwrap_or(0))
        .max(report.pruned_end);
    if expected > signed && writer_running(paths) {
        report.notes.push(format!(
            "{} events after the last signed checkpoint (size {signed}) are not signed yet: a writer (`vigil serve`) holds the ledger open and signs them at its next checkpoint; they are not verified by this run",
            expected - signed
        ));
    } else if expected > signed {
        let message = if log_size.is_none() && witness_size.is_none() {
            format!(
                "events {signed}..{expected} are not covered by any checkpoint signed by this key: checkpoints.log and the witness are missing or empty (deleted?)"
            )
        } else {
            format!(
                "{} events after the last signed checkpoint (size {signed}) are not signed: events {signed}..{expected}. A crash leaves such a tail, and `vigil serve` signs it at its next start after checking that it continues the signed tree; otherwise they were added behind the writer's back, or their checkpoints were removed",
                expected - signed
            )
        };
        report.problem(at_end(signed), message);
    }
    if last_sealed && expected > report.pruned_end {
        report.problem(
            at_end(expected),
            format!(
                "the last segment ends in a seal block but no segment follows it (the writer creates the next one when it seals): the segment holding events from {expected} on was deleted"
            ),
        );
    }

    // Recoveries.
    let (records, problems) = integrity::read_recoveries(paths, ring)?;
    for p in problems {
        report.problem(
            Place {
                file: Some(paths.recoveries()),
                ..Place::default()
            },
            p,
        );
    }
    if let Some(c) = &report.latest_checkpoint
        && integrity::stated_recoveries(c) > records.len()
    {
        report.problem(
            Place {
                file: Some(paths.recoveries()),
                ..Place::default()
            },
            format!(
                "the latest checkpoint states {} recovery records but recoveries.log holds {}: records were removed",
                integrity::stated_recoveries(c),
                records.len()
            ),
        );
    }
    report.recoveries = records;

    // An outside checkpoint.
    if let Some(note) = &options.against {
        let place = || Place {
            file: Some(PathBuf::from("--against")),
            ..Place::default()
        };
        match open(note) {
            Err(e) => report.problem(
                place(),
                format!("the outside checkpoint is not signed by the expected key: {e}"),
            ),
            Ok(outside) => {
                let latest = report.latest_verified.clone();
                match latest {
                    _ if outside.size > expected => report.problem(
                        place(),
                        format!(
                            "the outside checkpoint signs {} events but the ledger holds {expected}: events {expected}..{} were removed (rollback)",
                            outside.size, outside.size
                        ),
                    ),
                    None => report.problem(
                        place(),
                        "no checkpoint of the ledger verified, so there is nothing to prove consistency with",
                    ),
                    Some(new) if outside.size > new.size => report.problem(
                        place(),
                        format!(
                            "the outside checkpoint signs {} events but the ledger's latest verified checkpoint signs only {}: the ledger was rolled back",
                            outside.size, new.size
                        ),
                    ),
                    Some(new) => {
                        let proved = LedgerReader::open(paths.root().parent().unwrap_or(paths.root()))
                            .and_then(|mut r| r.consistency_proof(outside.size, new.size))
                            .map_err(|e| e.to_string())
                            .and_then(|proof| {
                                merkle::verify_consistency(
                                    outside.size,
                                    new.size,
                                    &proof,
                                    &outside.root,
                                    &new.root,
                                )
                                .map_err(|e| e.to_string())
                            });
                        match proved {
                            Ok(()) => report.against = Some(outside),
                            Err(e) => report.problem(
                                place(),
                                format!(
                                    "the ledger's tree of size {} is not an extension of the outside checkpoint of size {} (consistency proof failed: {e}): the history was changed (fork)",
                                    new.size, outside.size
                                ),
                            ),
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

impl VerifyReport {
    fn problem(&mut self, place: Place, message: impl Into<String>) {
        self.problems.push(Problem {
            place,
            message: message.into(),
        });
    }
}

struct Walk {
    frontier: Frontier,
    partial: Vec<Hash>,
    /// Set once the sequence is broken; roots after that cannot be compared meaningfully.
    broken: bool,
    by_size: BTreeMap<u64, Vec<CheckpointEntry>>,
    tiles: Vec<Hash>,
    tiles_path: PathBuf,
    /// Where the current group's first block is.
    group_start: Option<Place>,
    /// The last checkpoint size whose root matched, with the place of its last block.
    last_verified: Option<(u64, Place)>,
    /// Where the last segment stops being readable, if before its end.
    torn_tail: Option<(Place, String)>,
    /// The last segment read ends in a seal block.
    last_sealed: bool,
}

impl Walk {
    fn size(&self) -> u64 {
        self.frontier.size() + self.partial.len() as u64
    }

    fn push_leaf(
        &mut self,
        leaf: Hash,
        seq: u64,
        place_of: &dyn Fn(u64) -> Place,
        report: &mut VerifyReport,
    ) {
        if self.partial.is_empty() {
            self.group_start = Some(place_of(seq));
        }
        self.partial.push(leaf);
        if self.partial.len() as u64 == GROUP_SIZE {
            let g = self.frontier.size() / GROUP_SIZE;
            let hash = merkle::root_from_leaf_hashes(&self.partial);
            match self.tiles.get(g as usize) {
                Some(stored) if *stored != hash => {
                    let mut at = self.group_start.clone().unwrap_or_default();
                    at.seq = Some(g * GROUP_SIZE);
                    report.problem(
                        at,
                        format!(
                            "events {}..{} do not hash to the stored group hash (an event in this range was changed, or {} was)",
                            g * GROUP_SIZE,
                            (g + 1) * GROUP_SIZE,
                            self.tiles_path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                        ),
                    );
                }
                Some(_) => {}
                None => report.notes.push(format!(
                    "tiles.dat lacks the hash of group {g} (it is rebuilt at the next start)"
                )),
            }
            self.frontier.push_subtree(GROUP_HEIGHT, hash);
            self.partial.clear();
        }
        let size = self.size();
        if self.by_size.contains_key(&size) {
            self.check_checkpoints_at(size, report, &place_of(seq));
        }
    }

    fn check_checkpoints_at(&mut self, size: u64, report: &mut VerifyReport, place: &Place) {
        let Some(entries) = self.by_size.remove(&size) else {
            return;
        };
        if self.broken {
            return;
        }
        let mut frontier = self.frontier.clone();
        for leaf in &self.partial {
            frontier.push_leaf(*leaf);
        }
        let root = frontier.root();
        for entry in entries {
            if entry.checkpoint.root == root {
                report.checkpoints_verified += 1;
                if report
                    .latest_verified
                    .as_ref()
                    .is_none_or(|c| c.size <= entry.checkpoint.size)
                {
                    report.latest_verified = Some(entry.checkpoint.clone());
                    report.latest_verified_key = Some(entry.key.clone());
                }
                self.last_verified = Some((size, place.clone()));
            } else {
                let (from, mut at) = self.last_verified.clone().unwrap_or((0, Place::default()));
                at.seq = Some(from);
                at.checkpoint = Some(entry.number);
                let message = if from == size {
                    format!(
                        "signs a root for tree size {size} that is not the root of the stored events, which matched another checkpoint of this size: the checkpoint is wrong"
                    )
                } else {
                    format!(
                        "recomputed root for tree size {size} differs from the signed checkpoint: events in {from}..{size} were changed"
                    )
                };
                report.problem(at, message);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn verify_segment(
    path: &Path,
    first: u64,
    is_last: bool,
    next_first: Option<u64>,
    mut expected: u64,
    walk: &mut Walk,
    report: &mut VerifyReport,
) -> Result<u64, LedgerError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| LedgerError::io(format!("reading {}", path.display()), e))?;
    let seg_place = |block: Option<usize>, offset: Option<u64>, seq: Option<u64>| Place {
        file: Some(path.to_owned()),
        block,
        offset,
        seq,
        ..Place::default()
    };
    match format::decode_segment_header(&bytes) {
        Ok((header_first, _)) if header_first == first => {}
        Ok((header_first, _)) => {
            report.problem(
                seg_place(None, Some(0), Some(first)),
                format!("header says the segment starts at {header_first}, its name says {first}"),
            );
            walk.broken = true;
        }
        Err(e) => {
            report.problem(
                seg_place(None, Some(0), Some(first)),
                format!("segment header: {e}"),
            );
            walk.broken = true;
            return Ok(next_first.unwrap_or(expected));
        }
    }
    // Pass 1 (sequential, cheap): block framing and checksums.
    struct Item {
        idx: usize,
        offset: usize,
        header: format::BlockHeader,
    }
    let mut items = Vec::new();
    let mut stop: Option<(Place, String, usize)> = None;
    let mut offset = format::SEGMENT_HEADER_LEN;
    let mut block_idx = 0usize;
    while offset < bytes.len() {
        let place = seg_place(Some(block_idx), Some(offset as u64), None);
        let rest = &bytes[offset..];
        let header = match format::decode_block_header(rest) {
            Ok(h) => h,
            Err(e) => {
                stop = Some((place, format!("invalid block header ({e})"), rest.len()));
                break;
            }
        };
        let stored_len = header.stored_len() as usize;
        if rest.len() < stored_len {
            stop = Some((
                place,
                "block runs past the end of the file".into(),
                rest.len(),
            ));
            break;
        }
        let (head, payload) = rest[..stored_len].split_at(format::BLOCK_HEADER_LEN);
        if let Err(e) = format::check_block_crc(head, payload) {
            stop = Some((place, format!("block {e}"), rest.len()));
            break;
        }
        items.push(Item {
            idx: block_idx,
            offset,
            header,
        });
        offset += stored_len;
        block_idx += 1;
    }

    // Pass 2 (parallel): decompress and hash the leaves of every events block.
    type Leaves = Result<Vec<(Hash, usize)>, FormatError>;
    let hash_block = |item: &Item| -> Leaves {
        if item.header.kind != BlockKind::Events {
            return Ok(Vec::new());
        }
        let start = item.offset + format::BLOCK_HEADER_LEN;
        let payload = &bytes[start..item.offset + item.header.stored_len() as usize];
        let raw = format::block_raw_payload(&item.header, payload)?;
        let events = format::split_events(&raw, item.header.n_events)?;
        Ok(events
            .iter()
            .map(|e| (merkle::leaf_hash(e), e.len()))
            .collect())
    };
    let n_threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = items.len().div_ceil(n_threads).max(1);
    let hashed: Vec<Leaves> = std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(hash_block).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("hashing thread panicked"))
            .collect()
    });

    // Pass 3 (sequential): sequence numbers, group hashes and checkpoints, in order.
    let mut sealed = false;
    for (item, leaves) in items.iter().zip(hashed) {
        let place = seg_place(Some(item.idx), Some(item.offset as u64), Some(expected));
        let header = item.header;
        if sealed {
            report.problem(place, "data after the seal block");
            walk.broken = true;
            stop = None;
            break;
        }
        if header.first_seq != expected {
            report.problem(
                place.clone(),
                format!(
                    "block starts at seq {} but seq {expected} was expected: events were removed, inserted or reordered",
                    header.first_seq
                ),
            );
            walk.broken = true;
            expected = header.first_seq;
        }
        match header.kind {
            BlockKind::Seal => sealed = true,
            BlockKind::Events => {
                report.blocks += 1;
                match leaves {
                    Ok(leaves) => {
                        let (idx, off) = (item.idx, item.offset as u64);
                        let place_of = |seq: u64| seg_place(Some(idx), Some(off), Some(seq));
                        for (i, (leaf, len)) in leaves.into_iter().enumerate() {
                            walk.push_leaf(leaf, expected + i as u64, &place_of, report);
                            report.events += 1;
                            report.event_bytes += len as u64;
                        }
                    }
                    Err(e) => {
                        report.problem(place, format!("block payload: {e}"));
                        walk.broken = true;
                    }
                }
                expected += u64::from(header.n_events);
            }
        }
    }
    if let Some((mut place, what, n_bytes)) = stop {
        place.seq = Some(expected);
        stop_segment(report, walk, place, is_last, &what, n_bytes);
    }
    walk.last_sealed = sealed;
    if !is_last && !sealed && !walk.broken {
        report.problem(
            seg_place(Some(block_idx), Some(offset as u64), Some(expected)),
            "segment is not the last but has no seal block: it was truncated",
        );
        walk.broken = true;
    }
    Ok(expected)
}

fn stop_segment(
    report: &mut VerifyReport,
    walk: &mut Walk,
    place: Place,
    is_last: bool,
    what: &str,
    n_bytes: usize,
) {
    if is_last {
        // A torn tail after a crash is expected; a checkpoint covering the lost events is
        // reported at the end as missing events.
        report.notes.push(format!(
            "{place}: {what}; the last {n_bytes} bytes are an incomplete write (a crash) and are cut at the next start"
        ));
        walk.torn_tail = Some((place, what.to_string()));
    } else {
        report.problem(place, what.to_string());
        walk.broken = true;
    }
}
