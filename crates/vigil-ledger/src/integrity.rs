//! Evidence that survives the deletion of evidence, and the writer's check before it signs.
//!
//! An attacker with disk access can delete `checkpoints.log`, `tiles.dat`, the last segment or
//! the latest checkpoints. Without more, the writer would rebuild `tiles.dat` from the remaining
//! (possibly edited) segments and sign them: the forgery would be laundered. This module keeps
//! the facts that make those deletions visible and the check that refuses to sign over them:
//!
//! * **the witness** (`ledger/witness`): a second copy of the latest signed checkpoint, replaced
//!   atomically after every checkpoint. A ledger signs a size-0 checkpoint into it when it is
//!   created, so "events but no signed checkpoint at all" never happens honestly. Every
//!   checkpoint written since the witness exists carries the signed extension line
//!   [`WITNESS_EXTENSION`]: a ledger whose checkpoints say so but whose witness is gone lost it.
//! * **recovery records** (`ledger/recoveries.log`): when an operator starts the writer on a
//!   ledger that does not verify (`vigil serve --recover REASON`), what was found and why it was
//!   accepted is signed and kept here, and `vigil verify` reports it forever after.
//! * [`check_at_open`]: the cheap check the writer runs before signing anything: the latest
//!   checkpoint (and the witness) carry a valid signature by the ledger key and their roots equal
//!   the roots recomputed from the group hashes and the segments.
//!
//! What cannot be caught locally: an attacker who removes the newest events together with their
//! checkpoints *and* puts back an older witness (a rollback). Only a copy of a checkpoint kept
//! elsewhere catches that (`vigil verify --against`, checkpoint sinks); see `docs/security.md`.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};

use vigil_event::{Category, Event, EventType, Outcome, Timestamp};

use crate::error::LedgerError;
use crate::files::{self, LedgerPaths, sync_dir};
use crate::format::{self, GROUP_HEIGHT, GROUP_SIZE};
use crate::merkle::{self, Frontier, Hash};
use crate::note::{Checkpoint, NoteSigner};
use crate::reader::{LedgerReader, SignedCheckpoint, parse_signed_checkpoint};
use crate::rotation::KeyRing;

/// Magic of the witness file.
pub const WITNESS_MAGIC: &[u8; 8] = b"VIGILWIT";
/// Magic of the recoveries log.
pub const RECOVERIES_MAGIC: &[u8; 8] = b"VIGILRCV";
/// Extension line of every checkpoint written by a writer that keeps a witness.
pub const WITNESS_EXTENSION: &str = "vigil-witness v1";
/// First line of a recovery record note.
const RECOVERY_HEADER: &str = "vigil-recovery-record/v1";

/// The witness: the latest signed checkpoint as its own file. `None` when the file is missing.
pub fn read_witness(paths: &LedgerPaths) -> Result<Option<SignedCheckpoint>, LedgerError> {
    let path = paths.witness();
    if !path.exists() {
        return Ok(None);
    }
    let log = files::read_record_log(&path, WITNESS_MAGIC)?;
    let Some(bytes) = log.records.first() else {
        return Err(LedgerError::corrupt(
            &path,
            0,
            None,
            "the witness holds no complete checkpoint",
        ));
    };
    parse_signed_checkpoint(bytes)
        .map(Some)
        .map_err(|reason| LedgerError::corrupt(&path, 0, None, format!("witness: {reason}")))
}

/// Replaces the witness with `note` (write a temporary file, fsync, rename, fsync the directory).
pub(crate) fn write_witness(paths: &LedgerPaths, note: &str) -> Result<(), LedgerError> {
    let path = paths.witness();
    let tmp = path.with_extension("tmp");
    let mut bytes = format::encode_file_header(WITNESS_MAGIC).to_vec();
    format::encode_record(&mut bytes, note.as_bytes());
    let ctx = |what: &str, e: io::Error| LedgerError::io(format!("{what} {}", path.display()), e);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| ctx("creating a temporary file for", e))?;
    file.write_all(&bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| ctx("writing", e))?;
    fs::rename(&tmp, &path).map_err(|e| ctx("replacing", e))?;
    sync_dir(paths.root())
}

/// Signs the size-0 checkpoint of a new ledger into its witness.
pub(crate) fn write_genesis_witness(
    paths: &LedgerPaths,
    signer: &NoteSigner,
) -> Result<(), LedgerError> {
    let checkpoint = Checkpoint {
        origin: signer.name().to_owned(),
        size: 0,
        root: merkle::empty_root(),
        extensions: checkpoint_extensions(Timestamp::now(), 0),
    };
    write_witness(paths, &signer.sign(&checkpoint.to_text())?)
}

/// Extension line prefix stating how many recovery records the ledger holds (when any).
pub const RECOVERIES_EXTENSION: &str = "vigil-recoveries ";

/// The extension lines of a checkpoint signed at `time` by a writer that knows of `recoveries`
/// recovery records.
pub(crate) fn checkpoint_extensions(time: Timestamp, recoveries: usize) -> Vec<String> {
    let mut lines = vec![
        format!("time {}", time.to_rfc3339()),
        WITNESS_EXTENSION.to_owned(),
    ];
    if recoveries > 0 {
        lines.push(format!("{RECOVERIES_EXTENSION}{recoveries}"));
    }
    lines
}

/// The number of recovery records a signed checkpoint states (0 when it states none).
pub fn stated_recoveries(checkpoint: &Checkpoint) -> usize {
    checkpoint
        .extensions
        .iter()
        .find_map(|e| e.strip_prefix(RECOVERIES_EXTENSION)?.parse().ok())
        .unwrap_or(0)
}

/// What the writer needs to know about the ledger it opens.
pub(crate) struct OpenState<'a> {
    pub paths: &'a LedgerPaths,
    /// The signing key's verifier and the keys it took over from.
    pub keys: &'a KeyRing,
    /// Raw records of `checkpoints.log`.
    pub checkpoint_records: &'a [Vec<u8>],
    /// Group hashes after the rebuild of missing ones.
    pub tiles: &'a [Hash],
    /// One past the last stored event.
    pub end_seq: u64,
    /// The root of all `end_seq` stored events, which the writer computes anyway.
    pub current_root: Hash,
    /// Events below this were pruned.
    pub pruned_end: u64,
    /// The last segment ends in a seal block (the writer always creates the next one).
    pub last_segment_sealed: bool,
}

/// The outcome of [`check_at_open`].
pub(crate) struct OpenCheck {
    /// Why the ledger must not be signed as it is. Empty when it checks out.
    pub problems: Vec<String>,
    /// The size the latest valid signature covers (log or witness).
    pub signed_size: u64,
    /// The witness is missing although the checkpoints say it should exist, or the ledger is
    /// new: write one at the next checkpoint.
    pub witness_missing: bool,
    /// Valid recovery records.
    pub recoveries: usize,
}

/// The cheap check before the writer signs anything: latest checkpoint and witness signed by the
/// ledger key, their roots recomputed from the group hashes plus at most one group read from the
/// segments, and no sign of removed evidence. Cost: one pass over the group hashes (32 bytes per
/// 256 events) and one group of events.
pub(crate) fn check_at_open(
    state: &OpenState<'_>,
    reader: &mut LedgerReader,
) -> Result<OpenCheck, LedgerError> {
    let mut problems = state.keys.problems.clone();
    let origin = state.keys.trusted().name();
    let open = |note: &str| -> Result<Checkpoint, String> {
        let (text, _) = state.keys.open(note).map_err(|e| e.to_string())?;
        let checkpoint = Checkpoint::parse(text).map_err(|e| e.to_string())?;
        if checkpoint.origin != origin {
            return Err(format!(
                "origin {:?} is not this ledger's",
                checkpoint.origin
            ));
        }
        Ok(checkpoint)
    };
    let latest = match state.checkpoint_records.last() {
        None => None,
        Some(bytes) => match std::str::from_utf8(bytes) {
            Err(_) => {
                problems.push("the latest checkpoint in checkpoints.log is not UTF-8".into());
                None
            }
            Ok(note) => match open(note) {
                Ok(c) => Some(c),
                Err(e) => {
                    problems.push(format!(
                        "the latest checkpoint in checkpoints.log (#{}) does not check against the ledger key {}: {e}",
                        state.checkpoint_records.len(),
                        state.keys.trusted().to_vkey()
                    ));
                    None
                }
            },
        },
    };
    let witness = match read_witness(state.paths) {
        Ok(Some(w)) => match open(&w.note) {
            Ok(c) => Some(c),
            Err(e) => {
                problems.push(format!(
                    "the witness does not check against the ledger key: {e}"
                ));
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    let witness_missing = !state.paths.witness().exists();
    let marked = latest
        .as_ref()
        .is_some_and(|c| c.extensions.iter().any(|e| e == WITNESS_EXTENSION));
    if witness_missing && marked {
        problems.push(
            "ledger/witness is missing, but the checkpoints were written by a writer that keeps it: it was deleted"
                .into(),
        );
    }
    let log_size = latest.as_ref().map(|c| c.size);
    let events_present = state.end_seq > state.pruned_end;
    if events_present && latest.is_none() && witness.is_none() && problems.is_empty() {
        problems.push(format!(
            "the segments hold events {}..{} but there is no signed checkpoint (checkpoints.log and the witness are missing or empty): they were deleted",
            state.pruned_end, state.end_seq
        ));
    }
    if let (Some(w), Some(l)) = (&witness, log_size)
        && w.size > l
    {
        problems.push(format!(
            "the witness holds a checkpoint of size {} but the latest in checkpoints.log signs {l}: checkpoints were removed",
            w.size
        ));
    }
    if let (Some(w), None) = (&witness, log_size)
        && w.size > 0
    {
        problems.push(format!(
            "the witness holds a checkpoint of size {} but checkpoints.log has none: it was deleted",
            w.size
        ));
    }
    let (records, recovery_problems) = read_recoveries(state.paths, state.keys)?;
    problems.extend(recovery_problems);
    if let Some(c) = &latest
        && stated_recoveries(c) > records.len()
    {
        problems.push(format!(
            "the latest checkpoint states {} recovery records but recoveries.log holds {}: records were removed",
            stated_recoveries(c),
            records.len()
        ));
    }
    let mut signed_size = 0;
    let same =
        matches!((&latest, &witness), (Some(l), Some(w)) if l.size == w.size && l.root == w.root);
    for (what, checkpoint) in [("latest checkpoint", &latest), ("witness", &witness)] {
        let Some(c) = checkpoint else { continue };
        if what == "witness" && same {
            continue;
        }
        signed_size = signed_size.max(c.size);
        if c.size > state.end_seq {
            problems.push(format!(
                "the {what} signs {} events but the segments hold only {}: signed events are missing (deleted or truncated segment)",
                c.size, state.end_seq
            ));
            continue;
        }
        if c.size < state.pruned_end {
            continue;
        }
        // After a clean stop the checkpoint covers everything: its root is the current root.
        // Otherwise one fold over the group hashes (1.7 s for 2 billion events).
        let root = if c.size == state.end_seq {
            state.current_root
        } else {
            root_at(state.tiles, reader, c.size)?
        };
        if root != c.root {
            problems.push(format!(
                "the root of the first {} events recomputed from tiles.dat and the segments differs from the one the {what} signs: stored events (or tiles.dat) were changed",
                c.size
            ));
        }
    }
    if state.last_segment_sealed && events_present && signed_size >= state.end_seq {
        problems.push(format!(
            "the last segment ends in a seal block, yet no segment follows it and every event is signed: the segment after it (from seq {}) was deleted with its checkpoints",
            state.end_seq
        ));
    }
    Ok(OpenCheck {
        problems,
        signed_size,
        witness_missing,
        recoveries: records.len(),
    })
}

/// `MTH` of the first `size` leaves: the stored group hashes plus one group read from disk.
fn root_at(tiles: &[Hash], reader: &mut LedgerReader, size: u64) -> Result<Hash, LedgerError> {
    if size == 0 {
        return Ok(merkle::empty_root());
    }
    let full = size / GROUP_SIZE;
    let mut frontier = Frontier::new();
    for hash in &tiles[..(full as usize).min(tiles.len())] {
        frontier.push_subtree(GROUP_HEIGHT, *hash);
    }
    let rest = (size % GROUP_SIZE) as usize;
    if rest > 0 {
        let leaves = reader.group_leaf_hashes(full)?;
        for leaf in leaves.iter().take(rest) {
            frontier.push_leaf(*leaf);
        }
    }
    Ok(frontier.root())
}

/// A signed statement that the writer was started on a ledger that did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryRecord {
    /// The ledger's origin.
    pub origin: String,
    /// Events in the ledger when it was recovered; the checkpoint signed right after covers them.
    pub size: u64,
    /// When.
    pub time: Timestamp,
    /// The operator's reason.
    pub reason: String,
    /// What the check at open found.
    pub found: Vec<String>,
    /// The signed note.
    pub note: String,
}

impl RecoveryRecord {
    fn to_text(&self) -> String {
        let clean = |s: &str| s.replace(['\n', '\r'], " ");
        let mut text = format!(
            "{RECOVERY_HEADER}\norigin {}\nsize {}\ntime {}\nreason {}\n",
            self.origin,
            self.size,
            self.time.to_rfc3339(),
            clean(&self.reason)
        );
        for f in &self.found {
            text.push_str(&format!("found {}\n", clean(f)));
        }
        text
    }

    /// Parses the text of a recovery record note (signature not checked).
    pub fn parse(note: &str, text: &str) -> Result<RecoveryRecord, String> {
        let mut lines = text.lines();
        if lines.next() != Some(RECOVERY_HEADER) {
            return Err("not a recovery record".into());
        }
        let mut field = |name: &str| -> Result<String, String> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or_else(|| format!("missing {name} line"))
        };
        let origin = field("origin")?;
        let size = field("size")?.parse().map_err(|_| "bad size".to_string())?;
        let time = Timestamp::parse(&field("time")?).map_err(|e| e.to_string())?;
        let reason = field("reason")?;
        let found = lines
            .filter_map(|l| l.strip_prefix("found "))
            .map(str::to_owned)
            .collect();
        Ok(RecoveryRecord {
            origin,
            size,
            time,
            reason,
            found,
            note: note.to_owned(),
        })
    }
}

/// The `vigil.audit` event the writer stores (and signs) when it recovers a ledger.
pub(crate) fn recovery_event(record: &RecoveryRecord) -> Event {
    let mut audit = Event::audit_builder("ledger_recovered")
        .category(Category::Configuration)
        .event_type(EventType::Change)
        .outcome(Outcome::Success)
        .at(record.time)
        .build();
    audit.insert("event.reason", record.reason.as_str());
    audit.insert("vigil.recovery.size", record.size as i64);
    audit.insert("vigil.recovery.found", record.found.join("; "));
    audit.insert(
        "message",
        format!(
            "LEDGER RECOVERED: started on a ledger that did not verify, re-signing its {} events (reason given: {}); found: {}",
            record.size,
            record.reason,
            record.found.join("; ")
        ),
    );
    audit
}

/// The `vigil.audit` event the writer stores when it signs a tail no checkpoint covered.
pub(crate) fn unsigned_tail_event(tail: &std::ops::Range<u64>) -> Event {
    let mut audit = Event::audit_builder("ledger_unsigned_tail_signed")
        .category(Category::Configuration)
        .event_type(EventType::Change)
        .outcome(Outcome::Success)
        .at(Timestamp::now())
        .build();
    audit.insert("vigil.tail.start", tail.start as i64);
    audit.insert("vigil.tail.end", tail.end as i64);
    audit.insert(
        "message",
        format!(
            "events {}..{} were not covered by a signed checkpoint at start (the previous run stopped without signing them, e.g. a crash); they were checked to continue the signed tree and are signed now",
            tail.start, tail.end
        ),
    );
    audit
}

/// Signs and appends a recovery record (fsynced before the writer signs anything).
pub(crate) fn append_recovery(
    paths: &LedgerPaths,
    signer: &NoteSigner,
    size: u64,
    reason: &str,
    found: &[String],
) -> Result<RecoveryRecord, LedgerError> {
    let mut record = RecoveryRecord {
        origin: signer.name().to_owned(),
        size,
        time: Timestamp::now(),
        reason: reason.to_owned(),
        found: found.to_vec(),
        note: String::new(),
    };
    record.note = signer.sign(&record.to_text())?;
    let path = paths.recoveries();
    let log = files::read_record_log(&path, RECOVERIES_MAGIC)?;
    let mut file = files::open_append(
        &path,
        &format::encode_file_header(RECOVERIES_MAGIC),
        Some(log.valid_len),
    )?;
    let mut bytes = Vec::new();
    format::encode_record(&mut bytes, record.note.as_bytes());
    file.write_all(&bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| LedgerError::io(format!("writing {}", path.display()), e))?;
    sync_dir(paths.root())?;
    Ok(record)
}

/// Reads the recovery records, checking each signature with `verifier`. Returns the records and
/// the problems (unsigned or unreadable records).
pub fn read_recoveries(
    paths: &LedgerPaths,
    keys: &KeyRing,
) -> Result<(Vec<RecoveryRecord>, Vec<String>), LedgerError> {
    let log = files::read_record_log(&paths.recoveries(), RECOVERIES_MAGIC)?;
    let mut records = Vec::new();
    let mut problems = Vec::new();
    if log.file_len > log.valid_len {
        problems.push(format!(
            "recoveries.log ends in {} bytes that are not a complete record (damaged or edited; records are fsynced when written)",
            log.file_len - log.valid_len
        ));
    }
    for (i, bytes) in log.records.iter().enumerate() {
        let parsed = std::str::from_utf8(bytes)
            .map_err(|_| "not UTF-8".to_string())
            .and_then(|note| {
                let (text, _) = keys.open(note).map_err(|e| e.to_string())?;
                RecoveryRecord::parse(note, text)
            });
        match parsed {
            Ok(r) => records.push(r),
            Err(e) => problems.push(format!("recovery record #{}: {e}", i + 1)),
        }
    }
    Ok((records, problems))
}
