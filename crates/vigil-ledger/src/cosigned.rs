//! `ledger/cosignatures.log`: the ledger's checkpoints as its witnesses cosigned them, and the
//! check `vigil verify --witness-key` runs over them.
//!
//! A record log (`FORMAT.md`: 16-byte header with magic `VIGILCOS` and the version byte, then
//! `len u32 LE ‖ bytes ‖ crc32 u32 LE` records). Each record is one witness's answer for one
//! checkpoint, stored as a signed note: the checkpoint text, a blank line, the log's own
//! signature line(s), then the witness's cosignature line(s) (C2SP `tlog-cosignature`). A
//! checkpoint cosigned by three witnesses has three records; the check merges them by text.
//! The log is evidence kept beside the checkpoints; it is not needed to read or verify the
//! ledger itself, and losing it loses only the cosignatures.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::cosignature::CosignatureVerifier;
use crate::error::LedgerError;
use crate::files::{self, LedgerPaths};
use crate::format;
use crate::note::{Checkpoint, parse_note};
use crate::reader::LedgerReader;

/// Magic of the cosignatures log.
pub const COSIGNED_MAGIC: &[u8; 8] = b"VIGILCOS";

/// Appends one cosigned checkpoint note and fsyncs it.
pub fn append(paths: &LedgerPaths, cosigned_note: &str) -> Result<(), LedgerError> {
    let path = paths.cosignatures();
    let log = files::read_record_log(&path, COSIGNED_MAGIC)?;
    let mut file = files::open_append(
        &path,
        &format::encode_file_header(COSIGNED_MAGIC),
        Some(log.valid_len),
    )?;
    let mut buf = Vec::new();
    format::encode_record(&mut buf, cosigned_note.as_bytes());
    file.write_all(&buf)
        .and_then(|()| file.sync_data())
        .map_err(|e| LedgerError::io(format!("writing {}", path.display()), e))
}

/// Every stored cosigned note, oldest first (signatures not checked here).
pub fn read(paths: &LedgerPaths) -> Result<Vec<String>, LedgerError> {
    let path = paths.cosignatures();
    files::read_record_log(&path, COSIGNED_MAGIC)?
        .records
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| {
            String::from_utf8(bytes).map_err(|_| {
                LedgerError::corrupt(&path, 0, None, format!("record #{} is not UTF-8", i + 1))
            })
        })
        .collect()
}

/// One checkpoint that witnesses cosigned, with the given witness keys whose cosignatures on it
/// verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// `name+keyid` of each given witness key with a valid cosignature on it, and its time.
    pub witnesses: BTreeMap<String, u64>,
}

/// What the cosignature check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CosignatureReport {
    /// Every cosigned checkpoint, ascending by size, with the given keys that cosigned it.
    pub checkpoints: Vec<CosignedCheckpoint>,
    /// The newest checkpoint with at least the required cosignatures, if any.
    pub newest_sufficient: Option<CosignedCheckpoint>,
    /// Events of the ledger past `newest_sufficient` (not yet witnessed as required).
    pub unwitnessed_events: u64,
    /// Problems: a cosignature by a given key that does not verify, a cosigned checkpoint that
    /// is not this ledger's tree (a fork or a rollback), an unreadable record.
    pub problems: Vec<String>,
}

impl CosignatureReport {
    /// Whether the check passed: no problem, and some checkpoint has the required count.
    pub fn passed(&self) -> bool {
        self.problems.is_empty() && self.newest_sufficient.is_some()
    }
}

/// Checks the stored cosignatures of the ledger in `data_dir` against `witnesses`: every
/// cosignature by one of them must verify and sign a checkpoint whose root is this ledger's
/// tree at that size; reports the newest checkpoint carrying at least `min` of them.
pub fn check(
    data_dir: &Path,
    witnesses: &[CosignatureVerifier],
    min: usize,
) -> Result<CosignatureReport, LedgerError> {
    let paths = LedgerPaths::new(data_dir);
    let mut reader = LedgerReader::open(data_dir)?;
    let mut report = CosignatureReport::default();
    let mut by_text: BTreeMap<(u64, String), BTreeMap<String, u64>> = BTreeMap::new();
    for (i, note) in read(&paths)?.iter().enumerate() {
        let parsed = match parse_note(note) {
            Ok(p) => p,
            Err(e) => {
                report
                    .problems
                    .push(format!("cosignatures.log record #{}: {e}", i + 1));
                continue;
            }
        };
        let checkpoint = match Checkpoint::parse(parsed.text) {
            Ok(c) => c,
            Err(e) => {
                report
                    .problems
                    .push(format!("cosignatures.log record #{}: {e}", i + 1));
                continue;
            }
        };
        let entry = by_text
            .entry((checkpoint.size, parsed.text.to_owned()))
            .or_default();
        for w in witnesses {
            if !parsed.signatures.iter().any(|s| s.name == w.name()) {
                continue;
            }
            match w.verify_note(note) {
                Ok(time) => {
                    entry.insert(w.label(), time);
                }
                Err(crate::note::NoteError::Unsigned { .. }) => {}
                Err(e) => report.problems.push(format!(
                    "cosignatures.log record #{} (checkpoint size {}): {e}",
                    i + 1,
                    checkpoint.size
                )),
            }
        }
    }
    for ((size, text), cosigners) in by_text {
        let checkpoint = Checkpoint::parse(&text).expect("parsed above");
        if !cosigners.is_empty() {
            match reader.root_at(size) {
                Ok(root) if root == checkpoint.root => {}
                Ok(_) => report.problems.push(format!(
                    "witnesses cosigned a checkpoint of size {size} whose root {} is not this ledger's tree at that size: the ledger was rolled back or forked after they saw it",
                    checkpoint.root_hex()
                )),
                Err(e) => report.problems.push(format!(
                    "witnesses cosigned a checkpoint of size {size} that this ledger cannot recompute ({e}): the ledger was rolled back, or those events were pruned"
                )),
            }
        }
        report.checkpoints.push(CosignedCheckpoint {
            checkpoint,
            witnesses: cosigners,
        });
    }
    report.newest_sufficient = report
        .checkpoints
        .iter()
        .rev()
        .find(|c| c.witnesses.len() >= min.max(1))
        .cloned();
    let covered = report
        .newest_sufficient
        .as_ref()
        .map_or(0, |c| c.checkpoint.size);
    report.unwitnessed_events = reader.end_seq().saturating_sub(covered);
    Ok(report)
}
