//! Plain searches (no commands) the index selects only approximately — a phrase, whose word
//! order the index does not keep (format 2), a wildcard phrase, values marked `odd` — show the
//! newest matches without reading every candidate: candidates are checked against the ledger
//! newest first, a batch at a time, and reading stops once more than a page of them match.

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};
use vigil_event::Event;
use vigil_ledger::LedgerReader;
use vigil_query::ast::Expr;
use vigil_query::exec::matches_at;

use crate::IndexError;

/// Candidates read from the ledger in the first batch; each later batch is four times larger,
/// up to [`MAX_BATCH`], so a page of common matches costs one small batch and rare ones few
/// batches.
const FIRST_BATCH: usize = 512;
/// The largest batch.
const MAX_BATCH: usize = 1 << 16;

/// Every matching document's `(event time, sequence number)`, in no particular order.
pub struct TimedSeqCollector;

/// [`TimedSeqCollector`] on one segment.
pub struct SegmentTimedSeqCollector {
    seq: Column<u64>,
    ts: Column<i64>,
    out: Vec<(i64, u64)>,
}

impl Collector for TimedSeqCollector {
    type Fruit = Vec<(i64, u64)>;
    type Child = SegmentTimedSeqCollector;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        Ok(SegmentTimedSeqCollector {
            seq: segment.fast_fields().u64("seq")?,
            ts: segment.fast_fields().i64("ts")?,
            out: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<(i64, u64)>>) -> tantivy::Result<Vec<(i64, u64)>> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for SegmentTimedSeqCollector {
    type Fruit = Vec<(i64, u64)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let (Some(t), Some(s)) = (self.ts.first(doc), self.seq.first(doc)) {
            self.out.push((t, s));
        }
    }

    fn harvest(self) -> Vec<(i64, u64)> {
        self.out
    }
}

/// The sequence numbers (ascending) of candidates that match `search`, holding at least the
/// newest `want` matches among all `candidates` (all matches if there are fewer), and how many
/// candidates were read to find them.
///
/// Candidates are read in whole batches from the newest (event time, then sequence number, the
/// order a plain search shows), so every candidate newer than the oldest one read was read:
/// the newest `want` matches of the result are the newest of all candidates.
pub fn newest_matches(
    ledger: &mut LedgerReader,
    mut candidates: Vec<(i64, u64)>,
    search: Option<&Expr>,
    want: usize,
) -> Result<(Vec<u64>, u64), IndexError> {
    candidates.sort_unstable_by(|a, b| b.cmp(a));
    candidates.dedup();
    let mut found = Vec::new();
    let mut read = 0usize;
    let mut batch = FIRST_BATCH;
    while read < candidates.len() && found.len() < want {
        let end = (read + batch).min(candidates.len());
        let mut seqs: Vec<u64> = candidates[read..end].iter().map(|&(_, s)| s).collect();
        seqs.sort_unstable();
        ledger.for_each_raw_at(&seqs, |seq, raw| {
            if let Ok(event) = Event::from_canonical(raw)
                && search.is_none_or(|e| matches_at(e, seq, &event))
            {
                found.push(seq);
            }
            Ok(())
        })?;
        read = end;
        batch = (batch * 4).min(MAX_BATCH);
    }
    found.sort_unstable();
    Ok((found, read as u64))
}
