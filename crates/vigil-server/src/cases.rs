//! The case book as the server keeps it: derived from the ledger like the alert book (DESIGN
//! invariant 3). At the first request that needs it, the book is rebuilt from the case events
//! the ledger holds (found through the search path — the index when there is one, with the
//! unindexed tail scanned — and read back by sequence number); from then on every change is
//! checked against the book, appended through the one door as a `vigil.audit` event, waited for
//! until durable, read back from the ledger and applied as stored
//! ([`vigil_detect::case::CaseBook::apply`]), so a restart rebuilds exactly what was served.
//! One change at a time (the book's lock is held from the check to the apply), so case ids and
//! the order of changes are the ledger's.
//!
//! Cluster mode has no local ledger to read back from: cases answer 503 there for now.

use std::net::IpAddr;

use axum::http::StatusCode;
use axum::response::Response;
use vigil_detect::case::{Case, CaseBook, CaseError, Change};
use vigil_event::{Event, Timestamp};
use vigil_ingest::Origin;

use crate::http::{AppState, error};

/// Case events read at most when the book is rebuilt.
pub const MAX_CASE_EVENTS: usize = 100_000;

/// The case book, loaded on first use.
#[derive(Default)]
pub struct CaseService {
    book: tokio::sync::OnceCell<tokio::sync::Mutex<CaseBook>>,
}

fn refused(e: CaseError) -> Response {
    let status = match e {
        CaseError::NoCase { .. } => StatusCode::NOT_FOUND,
        CaseError::Invalid(_) => StatusCode::BAD_REQUEST,
        CaseError::Conflict(_) => StatusCode::CONFLICT,
    };
    error(status, e.to_string())
}

/// Runs `text` over all durable events (the index when there is one, else a scan) and returns
/// the result; errors are 400 (a bad query) or 500.
pub(crate) async fn query(
    state: &AppState,
    text: &str,
    limits: vigil_query::Limits,
) -> Result<vigil_query::QueryResult, Response> {
    if state.cluster.is_some() {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "cases, entity pages, coverage and contributing events are not available in cluster mode yet",
        ));
    }
    let pipeline = vigil_query::parse(text).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("{} (column {})", e.message, e.column),
        )
    })?;
    match crate::http::execute_query(state, pipeline, limits).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e)),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// The `vigil.seq` column of an event search, ascending.
pub(crate) fn seqs_of(r: &vigil_query::QueryResult) -> Vec<u64> {
    let Some(col) = r.columns.iter().position(|c| c == "vigil.seq") else {
        return Vec::new();
    };
    let mut seqs: Vec<u64> = r
        .rows
        .iter()
        .filter_map(|row| row.get(col)?.as_i64())
        .filter_map(|s| u64::try_from(s).ok())
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    seqs
}

/// Reads events by sequence number from the durable ledger (blocking: call off the runtime);
/// a sequence number the ledger does not hold is left out.
pub(crate) fn read_events(state: &AppState, seqs: &[u64]) -> Result<Vec<(u64, Event)>, String> {
    let mut reader = state.ingest.ledger().reader().map_err(|e| e.to_string())?;
    Ok(seqs
        .iter()
        .filter_map(|&s| reader.read_event(s).ok().map(|e| (s, e)))
        .collect())
}

/// [`read_events`] on a blocking thread.
pub(crate) async fn read_events_async(
    state: &std::sync::Arc<AppState>,
    seqs: Vec<u64>,
) -> Result<Vec<(u64, Event)>, Response> {
    let st = std::sync::Arc::clone(state);
    tokio::task::spawn_blocking(move || read_events(&st, &seqs))
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))
}

impl CaseService {
    /// The book, rebuilt from the ledger on first use.
    pub async fn book(
        &self,
        state: &std::sync::Arc<AppState>,
    ) -> Result<tokio::sync::MutexGuard<'_, CaseBook>, Response> {
        if state.cluster.is_some() {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "cases are not available in cluster mode yet",
            ));
        }
        let cell = self
            .book
            .get_or_try_init(|| async {
                let limits = vigil_query::Limits {
                    from: None,
                    to: None,
                    max_rows: MAX_CASE_EVENTS,
                    now: Timestamp::now(),
                };
                let found = query(
                    state,
                    "event.dataset=vigil.audit event.action=case_*",
                    limits,
                )
                .await?;
                // A search keeps the newest rows: a cut history would lose the oldest cases'
                // creation and reuse their ids. Refuse rather than rebuild a wrong book.
                if found.truncated {
                    return Err(error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "the ledger holds more than {MAX_CASE_EVENTS} case events, more than \
                             the case book can rebuild; cases are unavailable (nothing was changed)"
                        ),
                    ));
                }
                let events = read_events_async(state, seqs_of(&found)).await?;
                let mut book = CaseBook::new();
                for (seq, e) in &events {
                    if let Err(err) = book.apply(e, Some(*seq)) {
                        tracing::warn!("case event {seq} not applied: {err}");
                    }
                }
                tracing::info!(
                    "cases: {} rebuilt from {} ledger events",
                    book.len(),
                    events.len()
                );
                Ok::<_, Response>(tokio::sync::Mutex::new(book))
            })
            .await?;
        Ok(cell.lock().await)
    }

    /// Makes a change: checked, recorded durably in the ledger, read back and applied. `case`
    /// is `None` for a new case. Returns the case after the change.
    pub async fn change(
        &self,
        state: &std::sync::Arc<AppState>,
        case: Option<u64>,
        change: Change,
        by: &str,
        source: Option<IpAddr>,
    ) -> Result<Case, Response> {
        let mut book = self.book(state).await?;
        let id = case.unwrap_or_else(|| book.next_id());
        book.check(id, &change).map_err(refused)?;
        let event = change.to_event(id, by, source, Timestamp::now());
        let range = match state.ingest.try_append(vec![event], Origin::Audit) {
            Ok(pending) => pending.durable().await.map_err(|e| {
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the change could not be recorded, so it was not made: {e}"),
                )
            })?,
            Err(e) => {
                return Err(error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the ledger is busy, nothing changed (retry): {e}"),
                ));
            }
        };
        // Applied as the ledger stored it (after redaction), exactly as a rebuild will.
        let stored = read_events_async(state, vec![range.start]).await?;
        let Some((seq, stored)) = stored.into_iter().next() else {
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("case event {} is not readable", range.start),
            ));
        };
        book.apply(&stored, Some(seq)).map_err(refused)?;
        book.get(id)
            .cloned()
            .ok_or_else(|| refused(CaseError::NoCase { id }))
    }
}
