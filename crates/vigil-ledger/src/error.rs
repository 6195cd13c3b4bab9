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
