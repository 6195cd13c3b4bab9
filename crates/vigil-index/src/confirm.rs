//! Counts over a search the index selects only approximately — a phrase (format 2 keeps no word
//! positions), a wildcard phrase, values marked `odd` — without handing every candidate event
//! to the reference engine: the candidates' ledger events are checked against the search, and
//! only the confirmed documents are counted from the columns, as for an exact search.

use std::sync::Arc;

use tantivy::Searcher;
use tantivy::collector::{Collector, FilterCollector};
use tantivy::query::Query;
use vigil_event::Event;
use vigil_ledger::LedgerReader;
use vigil_query::ast::Expr;
use vigil_query::exec::matches_at;

use crate::IndexError;
use crate::collect::SeqCollector;

/// The sequence numbers (ascending) among `candidates` (ascending, no repeats) whose ledger
/// events match `search`. Each ledger block is decompressed at most once.
pub fn confirmed_seqs(
    ledger: &mut LedgerReader,
    candidates: &[u64],
    search: Option<&Expr>,
) -> Result<Vec<u64>, IndexError> {
    let Some(search) = search else {
        return Ok(candidates.to_vec());
    };
    let mut out = Vec::new();
    ledger.for_each_raw_at(candidates, |seq, raw| {
        if let Ok(event) = Event::from_canonical(raw)
            && matches_at(search, seq, &event)
        {
            out.push(seq);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Runs `collector` over the documents `query` selects whose events match `search` in the
/// ledger; also gives how many candidates the index selected.
pub fn collect_confirmed<C>(
    searcher: &Searcher,
    ledger: &mut LedgerReader,
    query: &dyn Query,
    search: Option<&Expr>,
    collector: C,
) -> Result<(C::Fruit, u64), IndexError>
where
    C: Collector + Send + Sync,
{
    let candidates = searcher.search(query, &SeqCollector)?;
    let confirmed = Arc::new(confirmed_seqs(ledger, &candidates, search)?);
    let keep = move |seq: u64| confirmed.binary_search(&seq).is_ok();
    let fruit = searcher.search(query, &FilterCollector::new("seq".into(), keep, collector))?;
    Ok((fruit, candidates.len() as u64))
}
