//! Keeping the index in step with the ledger: catch up, commit with the next sequence number as
//! the commit's payload, resume from it after a crash, follow pruning, rebuild from scratch.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tantivy::indexer::UserOperation;
use tantivy::query::RangeQuery;
use tantivy::{Index, IndexWriter, Term};
use vigil_event::Event;
use vigil_ledger::LedgerReader;

use crate::document::{FORMAT_VERSION, Fields, document, register_tokenizers, schema};
use crate::{IndexError, index_dir};

/// What a commit records, as its tantivy payload (JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitState {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format: u8,
    /// Every event below this sequence number is indexed (or was pruned).
    pub next_seq: u64,
    /// Documents below this were deleted because the ledger pruned them.
    pub pruned_below: u64,
}

impl CommitState {
    fn to_payload(self) -> String {
        format!(
            r#"{{"format":{},"next_seq":{},"pruned_below":{}}}"#,
            self.format, self.next_seq, self.pruned_below
        )
    }

    fn from_payload(text: &str) -> Option<CommitState> {
        let number = |key: &str| -> Option<u64> {
            let at = text.find(&format!("\"{key}\":"))? + key.len() + 3;
            let digits: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            digits.parse().ok()
        };
        Some(CommitState {
            format: u8::try_from(number("format")?).ok()?,
            next_seq: number("next_seq")?,
            pruned_below: number("pruned_below").unwrap_or(0),
        })
    }
}

/// Memory the tantivy writer may use for buffering (split among its threads).
pub const WRITER_MEMORY: usize = 96 * 1024 * 1024;

/// Documents handed to the writer at once (one writer thread, one segment, consecutive
/// events).
pub const INDEX_RUN: usize = 4096;

/// The single writer of a data directory's index.
pub struct Indexer {
    dir: PathBuf,
    index: Index,
    writer: IndexWriter,
    fields: Fields,
    state: CommitState,
    /// The state of the last commit that succeeded: where indexing starts again after a
    /// failure (a full disk) cost what was buffered.
    committed: CommitState,
    uncommitted: u64,
}

/// Opens the index in `dir` for reading (creating an empty one if there is none).
pub(crate) fn open_or_create(
    dir: &Path,
) -> Result<(Index, Fields, Option<CommitState>), IndexError> {
    let (schema, fields) = schema();
    std::fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
    let exists = dir.join("meta.json").exists();
    let index = if exists {
        Index::open_in_dir(dir)?
    } else {
        Index::create_in_dir(dir, schema.clone())?
    };
    register_tokenizers(&index);
    if index.schema() != schema {
        return Err(IndexError::Stale(format!(
            "the index in {} has another layout",
            dir.display()
        )));
    }
    let state = index
        .load_metas()?
        .payload
        .as_deref()
        .and_then(CommitState::from_payload);
    if let Some(s) = state
        && s.format != FORMAT_VERSION
    {
        return Err(IndexError::Stale(format!(
            "the index in {} is format {}, this build writes {FORMAT_VERSION}",
            dir.display(),
            s.format
        )));
    }
    Ok((index, fields, state))
}

impl Indexer {
    /// Opens (or creates) the index of `data_dir` for writing. An index of another layout is
    /// deleted and started over: it is derived data. Fails if another process holds the writer.
    pub fn open(data_dir: &Path, threads: usize) -> Result<Indexer, IndexError> {
        let dir = index_dir(data_dir);
        let (index, fields, state) = match open_or_create(&dir) {
            Ok(x) => x,
            Err(IndexError::Stale(_)) => {
                std::fs::remove_dir_all(&dir).map_err(|e| IndexError::io(&dir, e))?;
                open_or_create(&dir)?
            }
            Err(e) => return Err(e),
        };
        let state = state.unwrap_or(CommitState {
            format: FORMAT_VERSION,
            next_seq: 0,
            pruned_below: 0,
        });
        let threads = threads.clamp(1, 8);
        let writer = index
            .writer_with_num_threads(threads, WRITER_MEMORY.max(threads * 16 * 1024 * 1024))
            .map_err(|e| match e {
                tantivy::TantivyError::LockFailure(..) => IndexError::Locked(dir.clone()),
                other => other.into(),
            })?;
        Ok(Indexer {
            dir,
            index,
            writer,
            fields,
            state,
            committed: state,
            uncommitted: 0,
        })
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The tantivy index (for readers in the same process).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The next sequence number to index (everything below is indexed once committed).
    pub fn next_seq(&self) -> u64 {
        self.state.next_seq
    }

    /// The state of the last commit plus what is buffered since.
    pub fn state(&self) -> CommitState {
        self.state
    }

    /// Documents added since the last commit.
    pub fn uncommitted(&self) -> u64 {
        self.uncommitted
    }

    /// Indexes events from [`Indexer::next_seq`] up to the ledger's end (at most `max` of
    /// them); returns how many. Pruned events are skipped and their documents deleted.
    pub fn catch_up(&mut self, ledger: &mut LedgerReader, max: u64) -> Result<u64, IndexError> {
        let first = ledger.first_seq();
        if first > self.state.pruned_below {
            let q = RangeQuery::new(
                std::ops::Bound::Unbounded,
                std::ops::Bound::Excluded(Term::from_field_u64(self.fields.seq, first)),
            );
            self.writer.delete_query(Box::new(q))?;
            self.state.pruned_below = first;
        }
        let start = self.state.next_seq.max(first);
        let end = ledger.end_seq().min(start.saturating_add(max));
        if start >= end {
            if self.state.next_seq < start {
                self.state.next_seq = start;
            }
            return Ok(0);
        }
        let fields = self.fields;
        let writer = &self.writer;
        let mut added = 0u64;
        let mut bad = None;
        // Documents go to the writer in runs of consecutive events, each run to one writer
        // thread and one segment: a segment's sequence numbers and times then rise in long
        // runs, which tantivy's column codecs store in a few bits per document.
        let mut run: Vec<UserOperation> = Vec::with_capacity(INDEX_RUN);
        let send = |run: &mut Vec<UserOperation>| {
            if run.is_empty() {
                return Ok(());
            }
            writer
                .run(std::mem::take(run))
                .map(|_| ())
                .map_err(|e| vigil_ledger::LedgerError::Invalid(e.to_string()))
        };
        let read = ledger.for_each_raw(start..end, |seq, raw| {
            match Event::from_canonical(raw) {
                Ok(event) => {
                    run.push(UserOperation::Add(document(&fields, seq, &event)));
                    if run.len() >= INDEX_RUN {
                        send(&mut run)?;
                    }
                }
                // The ledger verifies its hashes; an event that does not decode is reported
                // by `vigil verify`. Index what we can and remember the first failure.
                Err(e) => {
                    bad.get_or_insert((seq, e.to_string()));
                }
            }
            added += 1;
            Ok(())
        });
        let read = read.and_then(|()| send(&mut run));
        if let Err(e) = read {
            // A writer that failed (a full disk) may have lost documents buffered before.
            self.rollback();
            return Err(e.into());
        }
        self.state.next_seq = start + added;
        self.uncommitted += added;
        if let Some((seq, e)) = bad {
            return Err(IndexError::Undecodable { seq, message: e });
        }
        Ok(added)
    }

    /// Makes everything added so far durable and visible to new searchers.
    /// A failed commit (a full disk) drops what was buffered and starts again from the last
    /// commit, so no event is left out of the index for good.
    pub fn commit(&mut self) -> Result<(), IndexError> {
        let result = self.writer.prepare_commit().and_then(|mut prepared| {
            prepared.set_payload(&self.state.to_payload());
            prepared.commit()
        });
        match result {
            Ok(_) => {
                self.committed = self.state;
                self.uncommitted = 0;
                Ok(())
            }
            Err(e) => {
                self.rollback();
                Err(e.into())
            }
        }
    }

    /// Drops everything since the last commit, documents and state: the next
    /// [`Indexer::catch_up`] indexes those events again.
    fn rollback(&mut self) {
        // A rollback that fails leaves a writer whose next commit fails too: tried again.
        let _ = self.writer.rollback();
        self.state = self.committed;
        self.uncommitted = 0;
    }

    /// Deletes every document and starts from the ledger's first event again.
    pub fn clear(&mut self) -> Result<(), IndexError> {
        self.writer.delete_all_documents()?;
        self.state = CommitState {
            format: FORMAT_VERSION,
            next_seq: 0,
            pruned_below: 0,
        };
        self.commit()
    }

    /// Waits for merges to finish and releases the writer lock.
    pub fn close(self) -> Result<(), IndexError> {
        self.writer.wait_merging_threads()?;
        Ok(())
    }
}

/// Brings the index of `data_dir` up to the ledger's end, committing every `batch` events;
/// `progress(indexed, total)` after each commit. Used by `vigil reindex` (after
/// [`Indexer::clear`]) and by tests.
pub fn index_all(
    indexer: &mut Indexer,
    ledger: &mut LedgerReader,
    batch: u64,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, IndexError> {
    let mut total = 0;
    loop {
        let n = indexer.catch_up(ledger, batch.max(1))?;
        total += n;
        indexer.commit()?;
        progress(indexer.next_seq(), ledger.end_seq());
        if n == 0 {
            return Ok(total);
        }
    }
}

/// How often the follower commits while events arrive: the search lag's upper bound, less the
/// commit time.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(500);

/// One step of following a live ledger: index what arrived, commit when the interval passed.
/// Returns how many events it indexed.
pub fn follow_step(
    indexer: &mut Indexer,
    ledger: &mut LedgerReader,
    last_commit: &mut Instant,
) -> Result<u64, IndexError> {
    ledger.refresh()?;
    let n = indexer.catch_up(ledger, 200_000)?;
    if indexer.uncommitted() > 0 && last_commit.elapsed() >= COMMIT_INTERVAL
        || indexer.uncommitted() >= 1_000_000
    {
        indexer.commit()?;
        *last_commit = Instant::now();
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips() {
        let s = CommitState {
            format: 1,
            next_seq: 123_456,
            pruned_below: 77,
        };
        assert_eq!(CommitState::from_payload(&s.to_payload()), Some(s));
        assert_eq!(CommitState::from_payload("garbage"), None);
    }
}
