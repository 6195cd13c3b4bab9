//! The indexed query engine: the index selects, the ledger supplies the events, the reference
//! engine of `vigil-query` finishes the pipeline. Events the index has not reached yet (the
//! "tail") are scanned from the ledger, so a search never misses what was acknowledged.

use std::ops::Bound;
use std::path::Path;

use tantivy::collector::Count;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, RangeQuery};
use tantivy::{Index, IndexReader, ReloadPolicy, Searcher, Term};
use vigil_event::Event;
use vigil_ledger::LedgerReader;
use vigil_query::exec::alias;
use vigil_query::{
    CountPushdown, Grouping, Limits, Pipeline, QueryResult, count_pushdown, run, run_counted,
    window,
};

use crate::collect::{GroupCounter, NewestCollector, SeqCollector};
use crate::confirm::collect_confirmed;
use crate::document::{Fields, TEXT_ONLY_FIELDS, odd, odd_term_text};
use crate::indexer::open_or_create;
use crate::newest::{TimedSeqCollector, newest_matches};
use crate::translate::{Translated, translate};
use crate::{IndexError, index_dir};

/// A searchable view of a data directory's index.
pub struct SearchIndex {
    reader: IndexReader,
    fields: Fields,
}

/// How a search was answered (for logs, metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchStats {
    /// Events the index had covered.
    pub indexed_end: u64,
    /// Events read from the ledger past the index.
    pub tail_events: u64,
    /// Whether the first aggregation was counted inside the index.
    pub pushed_down: bool,
    /// Whether the index answered the search part exactly (no event re-checked).
    pub exact: bool,
}

impl SearchIndex {
    /// Opens the index of `data_dir` for searching; `None` if it has none yet.
    pub fn open(data_dir: &Path) -> Result<Option<SearchIndex>, IndexError> {
        let dir = index_dir(data_dir);
        if !dir.join("meta.json").exists() {
            return Ok(None);
        }
        let (index, _, _) = open_or_create(&dir)?;
        Ok(Some(SearchIndex::new(&index)?))
    }

    /// A search view of an index this process writes ([`crate::Indexer::index`]).
    pub fn new(index: &Index) -> Result<SearchIndex, IndexError> {
        let (_, fields) = crate::document::schema();
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(SearchIndex { reader, fields })
    }

    /// Picks up the latest commit.
    pub fn reload(&self) -> Result<(), IndexError> {
        Ok(self.reader.reload()?)
    }

    /// Bytes on disk per field and part (`text/positions`, `kw/postings`, `col_ip/columns`, …),
    /// largest first.
    pub fn space_by_field(&self) -> Result<Vec<(String, u64)>, IndexError> {
        let searcher = self.reader.searcher();
        let usage = searcher
            .space_usage()
            .map_err(|e| IndexError::Invalid(format!("measuring the index: {e}")))?;
        let mut per_field: std::collections::HashMap<String, u64> = Default::default();
        for segment in usage.segments() {
            for (part, usage) in [
                ("terms", segment.termdict()),
                ("postings", segment.postings()),
                ("positions", segment.positions()),
                ("columns", segment.fast_fields()),
                ("norms", segment.fieldnorms()),
            ] {
                for f in usage.fields() {
                    let field = f.field_name().split('.').next().unwrap_or("?");
                    *per_field.entry(format!("{field}/{part}")).or_default() +=
                        f.total().get_bytes();
                }
            }
        }
        let mut out: Vec<(String, u64)> = per_field.into_iter().collect();
        out.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
        Ok(out)
    }

    /// Everything below this sequence number is in the current searcher.
    pub fn indexed_end(&self) -> u64 {
        indexed_end(&self.reader.searcher())
    }

    /// Runs `pipeline` over the ledger with this index; gives what [`vigil_query::run`] gives
    /// over every event of the ledger.
    pub fn search(
        &self,
        ledger: &mut LedgerReader,
        pipeline: &Pipeline,
        limits: Limits,
    ) -> Result<(QueryResult, SearchStats), IndexError> {
        let searcher = self.reader.searcher();
        // The ledger is read after the searcher is taken, so it covers everything indexed.
        ledger.refresh()?;
        let mut stats = SearchStats {
            indexed_end: indexed_end(&searcher),
            ..SearchStats::default()
        };
        let first = ledger.first_seq();
        let tail = stats.indexed_end.max(first)..ledger.end_seq();
        stats.tail_events = tail.end.saturating_sub(tail.start);
        let (from, to) = window(pipeline, &limits);
        let scope = self.scope(first, from, to);

        if let Some(pushdown) = count_pushdown(pipeline) {
            let selected = self.translate(pushdown.search.as_ref(), &searcher);
            if self.countable(&pushdown, &searcher) {
                stats.pushed_down = true;
                stats.exact = selected.exact;
                let query = and(selected.query, scope);
                let counter = (
                    Count,
                    GroupCounter {
                        grouping: pushdown.grouping.clone(),
                        values: pushdown.values.clone(),
                    },
                );
                let (matched, counted) = if selected.exact {
                    searcher.search(&query, &counter)?
                } else {
                    // The index only narrows (a phrase, say): the candidates are confirmed
                    // against the ledger, and the confirmed ones counted from the columns.
                    collect_confirmed(
                        &searcher,
                        ledger,
                        query.as_ref(),
                        pushdown.search.as_ref(),
                        counter,
                    )?
                    .0
                };
                let result = with_events(ledger, &[], tail, |events| {
                    run_counted(pipeline, &pushdown, counted, events, matched as u64, limits)
                })?;
                return Ok((result, stats));
            }
        }

        let selected = self.translate(pipeline.search.as_ref(), &searcher);
        stats.exact = selected.exact;
        let query = and(selected.query, scope);
        let (seqs, matched) = if pipeline.commands.is_empty() && selected.exact {
            // A plain search shows the newest events: fetch only those (one more than asked,
            // so the engine can say the list was cut).
            searcher.search(
                &query,
                &NewestCollector {
                    limit: limits.max_rows.saturating_add(1),
                },
            )?
        } else if pipeline.commands.is_empty() {
            // The same, when the index only narrows: the newest candidates are checked against
            // the ledger until more than a page of them match.
            let candidates = searcher.search(&query, &TimedSeqCollector)?;
            newest_matches(
                ledger,
                candidates,
                pipeline.search.as_ref(),
                limits.max_rows.saturating_add(1),
            )?
        } else {
            let seqs = searcher.search(&query, &SeqCollector)?;
            let n = seqs.len() as u64;
            (seqs, n)
        };
        let mut result = with_events(ledger, &seqs, tail, |events| run(pipeline, events, limits))?;
        result.scanned = matched + stats.tail_events;
        Ok((result, stats))
    }

    fn translate(&self, expr: Option<&vigil_query::ast::Expr>, searcher: &Searcher) -> Translated {
        match expr {
            Some(e) => translate(e, &self.fields, searcher),
            None => Translated {
                query: Box::new(AllQuery),
                exact: true,
            },
        }
    }

    /// Documents still in the ledger and inside the time window.
    fn scope(&self, first: u64, from: Option<i64>, to: Option<i64>) -> Box<dyn Query> {
        let seq = RangeQuery::new(
            Bound::Included(Term::from_field_u64(self.fields.seq, first)),
            Bound::Unbounded,
        );
        let ts = |b: Option<i64>, lower: bool| match b {
            Some(t) if lower => Bound::Included(Term::from_field_i64(self.fields.ts, t)),
            Some(t) => Bound::Excluded(Term::from_field_i64(self.fields.ts, t)),
            None => Bound::Unbounded,
        };
        let mut parts: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        // Documents below the ledger's first event were pruned (their deletion may be pending).
        if first > 0 {
            parts.push((Occur::Must, Box::new(seq)));
        }
        if from.is_some() || to.is_some() {
            parts.push((
                Occur::Must,
                Box::new(RangeQuery::new(ts(from, true), ts(to, false))),
            ));
        }
        if parts.is_empty() {
            return Box::new(AllQuery);
        }
        Box::new(BooleanQuery::new(parts))
    }

    /// Whether every grouping field's values are all in the columns (no lists, maps, nulls or
    /// long strings anywhere), so that counting from columns equals counting events.
    fn countable(&self, pushdown: &CountPushdown, searcher: &Searcher) -> bool {
        let mut names: Vec<&String> = match &pushdown.grouping {
            Grouping::Fields(f) => f.iter().collect(),
            Grouping::Time { split, .. } => split.iter().collect(),
        };
        names.extend(&pushdown.values);
        names.iter().all(|name| {
            [name.as_str(), alias(name)].iter().all(|path| {
                !TEXT_ONLY_FIELDS.contains(path)
                    && searcher
                        .doc_freq(&Term::from_field_text(
                            self.fields.odd,
                            &odd_term_text(odd::NO_COLUMN, path),
                        ))
                        .is_ok_and(|n| n == 0)
            })
        })
    }
}

fn and(a: Box<dyn Query>, b: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![(Occur::Must, a), (Occur::Must, b)]))
}

/// One past the highest indexed sequence number (the indexer adds events in order).
fn indexed_end(searcher: &Searcher) -> u64 {
    searcher
        .segment_readers()
        .iter()
        .filter(|s| s.num_docs() > 0)
        .filter_map(|s| s.fast_fields().u64("seq").ok())
        .map(|c| c.max_value() + 1)
        .max()
        .unwrap_or(0)
}

const STOPPED: &str = "the query engine stopped reading";

/// Streams the events `seqs` (ascending) and then `tail` from the ledger into `f`, decoding on
/// another thread; a bounded channel keeps memory flat.
fn with_events<R>(
    ledger: &mut LedgerReader,
    seqs: &[u64],
    tail: std::ops::Range<u64>,
    f: impl FnOnce(&mut dyn Iterator<Item = (u64, Event)>) -> R,
) -> Result<R, IndexError> {
    // A few events (the usual needle): read them here, no thread. Events may be up to 1 MiB
    // each, so few are held at once: here, and in the channel below.
    if seqs.len() as u64 + (tail.end - tail.start) <= 256 {
        let mut events = Vec::with_capacity(seqs.len());
        let mut keep = |seq: u64, raw: &[u8]| {
            if let Ok(event) = Event::from_canonical(raw) {
                events.push((seq, event));
            }
            Ok(())
        };
        ledger.for_each_raw_at(seqs, &mut keep)?;
        ledger.for_each_raw(tail, &mut keep)?;
        return Ok(f(&mut events.into_iter()));
    }
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Event)>(256);
        let producer = scope.spawn(move || -> Result<(), IndexError> {
            let mut send = |seq: u64, raw: &[u8]| {
                if let Ok(event) = Event::from_canonical(raw) {
                    tx.send((seq, event))
                        .map_err(|_| vigil_ledger::LedgerError::Invalid(STOPPED.into()))?;
                }
                Ok(())
            };
            let read = ledger
                .for_each_raw_at(seqs, &mut send)
                .and_then(|()| ledger.for_each_raw(tail, &mut send));
            match read {
                // The engine stopped reading early (a cap was hit): not an error.
                Err(vigil_ledger::LedgerError::Invalid(m)) if m == STOPPED => Ok(()),
                other => Ok(other?),
            }
        });
        let result = f(&mut rx.into_iter());
        producer
            .join()
            .map_err(|_| IndexError::Invalid("the ledger reader thread failed".into()))??;
        Ok(result)
    })
}
