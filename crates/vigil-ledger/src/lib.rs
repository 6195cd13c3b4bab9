//! # vigil-ledger: the tamper-evident log store
//!
//! Every event Vigil accepts is appended here, once, and never changed. The ledger makes that
//! provable:
//!
//! * events are stored as their canonical bytes (see `vigil-event`) in append-only **segment
//!   files** of zstd-compressed **blocks** ([`format`], layout in `FORMAT.md`);
//! * every event is a leaf of one **RFC 6962 Merkle tree** ([`merkle`]); the hash of every
//!   complete group of 256 leaves is kept in `tiles.dat`, lower levels are recomputed from the
//!   segment when a proof needs them;
//! * the tree head is signed every few seconds as a **C2SP checkpoint** ([`note`]) with the
//!   ledger's Ed25519 key, so anyone holding the verifier key can check it;
//! * [`LedgerReader`] serves events, inclusion and consistency proofs; [`verify()`] recomputes
//!   everything and names the first bad place;
//! * [`Ledger`] is the single writer: group commit with fsync, crash recovery at open, and
//!   retention pruning that leaves a signed record ([`retention`]).
//!
//! ```
//! use vigil_event::{Event, Timestamp};
//! use vigil_ledger::{Ledger, LedgerConfig, LedgerReader, VerifyOptions, verify};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let (ledger, _recovery) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
//! let mut event = Event::new(Timestamp::now());
//! event.insert("message", "Failed password for root from 203.0.113.5");
//! let seqs = ledger.append(&[event]).unwrap(); // durable when this returns
//! assert_eq!(seqs, 0..1);
//! ledger.close().unwrap(); // signs a final checkpoint
//!
//! let mut reader = LedgerReader::open(dir.path()).unwrap();
//! let proof = reader.inclusion_proof(0).unwrap();
//! assert_eq!(proof.tree_size, 1);
//! let report = verify(dir.path(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
//! assert!(report.is_intact());
//! ```
#![deny(missing_docs)]

pub mod blockmap;
pub mod columns;
pub mod cosignature;
pub mod cosigned;
mod error;
pub mod evidence;
pub mod files;
pub mod format;
pub mod integrity;
mod keys;
pub mod merkle;
pub mod note;
mod reader;
pub mod retention;
pub mod rotation;
mod verify;
mod wake;
mod writer;

pub use error::LedgerError;
pub use files::LedgerPaths;
pub use keys::{load_or_create_signer, load_verifier};
pub use reader::{
    InclusionProof, LedgerReader, SignedCheckpoint, hex, prune_records, read_checkpoints,
};
pub use retention::{PruneOutcome, PruneRecord, RetentionPolicy, parse_duration};
pub use verify::{Place, Problem, VerifyOptions, VerifyReport, verify};
pub use writer::{CutTail, Ledger, LedgerConfig, RecoveryReport, legal_hold, set_legal_hold};
