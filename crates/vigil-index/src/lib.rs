//! # vigil-index: the search index
//!
//! A tantivy index derived from the ledger, and the query engine that uses it. The ledger is
//! the truth; the index is disposable: [`Indexer`] follows the ledger and commits the next
//! sequence number with every commit, so after a crash it resumes exactly where its last
//! commit ended (no gaps, no duplicates), and `vigil reindex` rebuilds it from nothing.
//!
//! Documents hold no event: only terms and columns, plus the event's sequence number. A search
//! ([`SearchIndex::search`]) translates the query's search part ([`translate`]) into a tantivy
//! query that selects a superset of the matching events and knows whether it is exact; counts
//! (`stats count by`, `stats dc(…)`, `timechart count`, `top`) run on the columns when it is; otherwise the
//! selected events are fetched from the ledger by sequence number and the reference engine of
//! `vigil-query` finishes the job, so the two engines cannot disagree (a randomised
//! differential test holds them to it). Events committed to the ledger but not yet indexed
//! are scanned from the ledger.
//!
//! The layout of each field is in `FORMAT.md` beside this file.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

pub mod colcmp;
pub mod collect;
pub mod confirm;
pub mod document;
pub mod indexer;
pub mod intcol;
pub mod newest;
pub mod run;
pub mod search;
pub mod translate;

pub use indexer::{CommitState, Indexer, follow_step, index_all};
pub use run::{run_on_data_dir, run_on_ledger, run_on_reader};
pub use search::{SearchIndex, SearchStats};

/// Where a data directory keeps its index.
pub fn index_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("index")
}

/// What can go wrong with the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// tantivy failed.
    #[error("index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] vigil_ledger::LedgerError),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Another process writes this index.
    #[error("the index in {0} is being written by another process (is `vigil serve` running?)")]
    Locked(PathBuf),
    /// The index has another layout and must be rebuilt.
    #[error("{0}; rebuild it with `vigil reindex`")]
    Stale(String),
    /// A ledger event did not decode.
    #[error("event {seq} in the ledger does not decode ({message}); run `vigil verify`")]
    Undecodable {
        /// Its sequence number.
        seq: u64,
        /// The decoder's complaint.
        message: String,
    },
    /// Something else.
    #[error("{0}")]
    Invalid(String),
}

impl IndexError {
    fn io(path: &Path, source: std::io::Error) -> IndexError {
        IndexError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
