//! The ledger's error type.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::note::NoteError;

/// What went wrong in the ledger. Cloneable, so one failed group commit can be reported to every
/// caller waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// An operating-system error, with what Vigil was doing.
    #[error("{context}: {source}")]
    Io {
        /// What was being done (names the file).
        context: String,
        /// The OS error.
        #[source]
        source: Arc<io::Error>,
    },
    /// Another process holds the writer lock.
    #[error(
        "the ledger at {path} is in use by another Vigil process (is `vigil serve` running on this data dir?); stop it or send events to it over HTTP"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// No ledger in the data directory.
    #[error("no ledger at {path}: run `vigil serve` or `vigil import` on this data dir first")]
    NotInitialized {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Damaged data where a clean file was required.
    #[error("{}: {reason} (at byte {offset}{}); run `vigil verify` for a full report", path.display(), seq.map(|s| format!(", seq {s}")).unwrap_or_default())]
    Corrupt {
        /// File.
        path: PathBuf,
        /// Byte offset.
        offset: u64,
        /// Sequence number concerned, if known.
        seq: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// An event larger than the ledger accepts.
    #[error("event of {size} bytes exceeds the {max}-byte limit")]
    EventTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A sequence number not in the ledger.
    #[error("sequence number {seq} is not in the ledger (it holds {first}..{end})")]
    OutOfRange {
        /// Requested.
        seq: u64,
        /// First present.
        first: u64,
        /// One past the last present.
        end: u64,
    },
    /// A key or note problem.
    #[error("{0}")]
    Note(#[from] NoteError),
    /// A previous write failed; the writer refuses further appends until restarted, because
    /// the state of the file after a failed write or fsync is unknown.
    #[error("the ledger writer stopped after a write failure ({0}); restart Vigil to recover")]
    Poisoned(String),
    /// A write failed (a full disk, an I/O error) and was undone: nothing of the append is
    /// stored. The writer retries by itself with backoff; the append may be sent again.
    #[error("the ledger cannot write now ({0}); nothing of this append was stored, retry later")]
    Unavailable(String),
    /// The writer has shut down.
    #[error("the ledger writer has shut down")]
    Closed,
    /// Invalid arguments.
    #[error("{0}")]
    Invalid(String),
    /// A key file of an existing ledger is missing: never silently replaced.
    #[error("{detail}")]
    KeyMissing {
        /// The missing file.
        path: PathBuf,
        /// What is missing and what to do.
        detail: String,
    },
    /// The ledger does not verify against its own checkpoints and key; the writer refuses to
    /// sign over it unless told to recover.
    #[error(
        "the ledger at {} does not verify against its own signed checkpoints, so Vigil refuses to sign it (that would launder a forgery): {}. Run `vigil verify --data-dir DIR` for the full report; to start anyway, re-signing what is stored (recorded and signed in recoveries.log and the ledger, and reported by every later `vigil verify`), run `vigil serve --recover \"REASON\"`",
        path.display(),
        problems.join("; ")
    )]
    Untrusted {
        /// The ledger directory.
        path: PathBuf,
        /// What the check at open found.
        problems: Vec<String>,
    },
}

impl LedgerError {
    /// Whether the same request, made again later unchanged, can succeed: the failure lies in
    /// the moment (a full disk, a writer shutting down for a restart, a lock another process
    /// will release), not in the request or the stored data. A sender told "retryable" should
    /// keep its data and try again with backoff; one told otherwise should report the error
    /// (the data, the ledger or the configuration needs a person).
    ///
    /// * retryable: [`Unavailable`](LedgerError::Unavailable) (the write was undone; the writer
    ///   probes the disk by itself), [`Closed`](LedgerError::Closed) and
    ///   [`Poisoned`](LedgerError::Poisoned) (a restarted writer takes appends again),
    ///   [`Locked`](LedgerError::Locked) (the holder finishes), an
    ///   [`OutOfRange`](LedgerError::OutOfRange) sequence number the ledger has not reached
    ///   yet, and [`Io`](LedgerError::Io) errors of a passing kind (storage full, quota,
    ///   interrupted, would block, timed out, busy, out of memory);
    /// * not retryable: corruption, a forged or unverifiable ledger, missing keys, an event too
    ///   large, a pruned sequence number, invalid arguments, no ledger, and other I/O errors
    ///   (not found, permission denied, read-only file system, hardware errors).
    pub fn is_retryable(&self) -> bool {
        match self {
            LedgerError::Unavailable(_)
            | LedgerError::Closed
            | LedgerError::Poisoned(_)
            | LedgerError::Locked { .. } => true,
            LedgerError::OutOfRange { seq, end, .. } => seq >= end,
            LedgerError::Io { source, .. } => io_is_passing(source),
            LedgerError::NotInitialized { .. }
            | LedgerError::Corrupt { .. }
            | LedgerError::EventTooLarge { .. }
            | LedgerError::Note(_)
            | LedgerError::Invalid(_)
            | LedgerError::KeyMissing { .. }
            | LedgerError::Untrusted { .. } => false,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> LedgerError {
        LedgerError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn corrupt(
        path: &Path,
        offset: u64,
        seq: Option<u64>,
        reason: impl Into<String>,
    ) -> LedgerError {
        LedgerError::Corrupt {
            path: path.to_owned(),
            offset,
            seq,
            reason: reason.into(),
        }
    }
}

/// Whether an OS error is of a kind that goes away by itself.
fn io_is_passing(e: &io::Error) -> bool {
    use io::ErrorKind as K;
    matches!(
        e.kind(),
        K::StorageFull
            | K::QuotaExceeded
            | K::Interrupted
            | K::WouldBlock
            | K::TimedOut
            | K::ResourceBusy
            | K::OutOfMemory
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(e: io::Error) -> LedgerError {
        LedgerError::io("appending to seg-0000000000000000.log", e)
    }

    #[test]
    fn a_full_disk_and_a_restart_are_retryable() {
        // ENOSPC and EDQUOT as the OS reports them, and the kinds themselves.
        assert!(
            io(io::Error::from_raw_os_error(28)).is_retryable(),
            "ENOSPC"
        );
        assert!(
            io(io::Error::from_raw_os_error(122)).is_retryable(),
            "EDQUOT"
        );
        assert!(io(io::ErrorKind::StorageFull.into()).is_retryable());
        assert!(io(io::ErrorKind::Interrupted.into()).is_retryable());
        assert!(io(io::ErrorKind::TimedOut.into()).is_retryable());
        assert!(LedgerError::Unavailable("No space left on device".into()).is_retryable());
        assert!(LedgerError::Closed.is_retryable());
        assert!(LedgerError::Poisoned("undo failed".into()).is_retryable());
        assert!(
            LedgerError::Locked {
                path: "/d/ledger/lock".into()
            }
            .is_retryable()
        );
    }

    #[test]
    fn corruption_and_bad_requests_are_not() {
        assert!(!LedgerError::corrupt(Path::new("seg"), 10, Some(3), "bad crc").is_retryable());
        assert!(
            !LedgerError::Untrusted {
                path: "/d/ledger".into(),
                problems: vec!["root hash differs".into()],
            }
            .is_retryable()
        );
        assert!(
            !LedgerError::KeyMissing {
                path: "/d/ledger/key".into(),
                detail: "missing".into(),
            }
            .is_retryable()
        );
        assert!(
            !LedgerError::EventTooLarge {
                size: 2_000_000,
                max: 1_000_000
            }
            .is_retryable()
        );
        assert!(
            !LedgerError::NotInitialized {
                path: "/d/ledger".into()
            }
            .is_retryable()
        );
        assert!(!LedgerError::Invalid("bad range".into()).is_retryable());
        assert!(!io(io::ErrorKind::PermissionDenied.into()).is_retryable());
        assert!(!io(io::ErrorKind::NotFound.into()).is_retryable());
        assert!(
            !io(io::Error::from_raw_os_error(30)).is_retryable(),
            "EROFS"
        );
        assert!(!io(io::Error::from_raw_os_error(5)).is_retryable(), "EIO");
    }

    #[test]
    fn a_sequence_number_not_reached_yet_is_retryable_a_pruned_one_is_not() {
        let range = |seq| LedgerError::OutOfRange {
            seq,
            first: 100,
            end: 200,
        };
        assert!(range(200).is_retryable());
        assert!(range(500).is_retryable());
        assert!(!range(99).is_retryable());
    }
}
