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
//! Cluster mode has no local ledger: the book is one of the node's shared books
//! ([`crate::cluster::books::SharedBooks`]), applied from the `sys` shard by every node alike. A
//! change is checked, appended through the door (to `sys`), waited for until this node applied
//! it, and served as applied; a new case whose id another node took first is tried again with
//! the next id, so case ids are cluster-unique and in the stream's order. Queries (entity pages,
//! coverage, contributing events) fan out to every shard's owner ([`query`]).

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use vigil_detect::case::{Case, CaseBook, CaseError, Change, EventRef};
use vigil_event::{Event, Timestamp};
use vigil_ingest::Origin;

use crate::cluster::books::SharedBooks;
use crate::http::{AppState, error};

/// Case events read at most when the book is rebuilt.
pub const MAX_CASE_EVENTS: usize = 100_000;

/// The case book, loaded on first use (standalone), or the cluster's shared books.
#[derive(Default)]
pub struct CaseService {
    book: tokio::sync::OnceCell<tokio::sync::Mutex<CaseBook>>,
    cluster: std::sync::OnceLock<Arc<SharedBooks>>,
}

/// How many times a new case is tried again with the next id when other nodes took its id.
const CREATE_TRIES: usize = 8;

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
    if let Some(cluster) = &state.cluster {
        // Every shard's owner answers for its shard; the shards that did not answer are named
        // in the result's message (`truncated`), as a search's are.
        use crate::cluster::query::QueryError;
        return crate::cluster::query::search(cluster, text, limits)
            .await
            .map_err(|e| match e {
                QueryError::Parse(m) => error(StatusCode::BAD_REQUEST, m),
                other => error(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
            });
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

/// The events of an event search's rows (a cluster's search answers whole events: every field
/// a column), each with its `vigil.seq` (its shard's sequence; 0 when absent). Null cells are
/// left out.
pub(crate) fn events_of_rows(r: &vigil_query::QueryResult) -> Vec<(u64, Event)> {
    let col = |name: &str| r.columns.iter().position(|c| c == name);
    let (at, seq) = (col("@timestamp"), col("vigil.seq"));
    r.rows
        .iter()
        .map(|row| {
            let when = at
                .and_then(|c| row.get(c))
                .and_then(|v| match v {
                    vigil_event::Value::Str(s) => Timestamp::parse(s).ok(),
                    _ => None,
                })
                .unwrap_or(Timestamp::from_nanos(0));
            let mut e = Event::new(when);
            for (name, value) in r.columns.iter().zip(row) {
                let own = name == "@timestamp" || name == vigil_query::exec::SEQ_FIELD;
                if !own && !matches!(value, vigil_event::Value::Null) {
                    e.insert(name.as_str(), value.clone());
                }
            }
            let n = seq
                .and_then(|c| row.get(c))
                .and_then(vigil_event::Value::as_i64)
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(0);
            (n, e)
        })
        .collect()
}

/// Reads events by sequence number from the durable ledger (blocking: call off the runtime);
/// a sequence number the ledger does not hold is left out.
pub(crate) fn read_events(state: &AppState, seqs: &[u64]) -> Result<Vec<(u64, Event)>, String> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
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

/// Whether `event` is stored: standalone, in the durable ledger; on a cluster node, in its
/// shard, asked of the shard's owner. A 400 (a malformed or unknown shard name), 404 (not
/// stored) or 503 (the owner did not answer) otherwise.
pub(crate) async fn check_event(state: &Arc<AppState>, event: &EventRef) -> Result<(), Response> {
    match (&state.cluster, &event.shard) {
        (Some(cluster), Some(shard)) => {
            if !EventRef::valid_shard(shard) {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "not a shard name: a shard is 1 to {} lowercase letters and digits \
                         (p0, p1, …, sys)",
                        vigil_detect::case::MAX_SHARD_CHARS
                    ),
                ));
            }
            let read = crate::cluster::integrity::Read::Event {
                shard: shard.clone(),
                seq: event.seq,
            };
            match crate::cluster::integrity::ask(cluster, &read).await {
                (200, _) => Ok(()),
                (status, body) => Err(error(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                    body["error"]
                        .as_str()
                        .unwrap_or("the shard's owner refused")
                        .to_owned(),
                )),
            }
        }
        (None, None) => match read_events_async(state, vec![event.seq]).await? {
            found if !found.is_empty() => Ok(()),
            _ => Err(error(
                StatusCode::NOT_FOUND,
                format!("no event {} in the ledger", event.seq),
            )),
        },
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            format!("event {event} does not name an event of this server's ledger"),
        )),
    }
}

/// A case's events as `GET /api/v1/cases/{id}` shows them: each event's fields with its
/// `vigil.seq` (and `vigil.shard` in a cluster). A standalone event the ledger no longer
/// holds is left out; a cluster event whose shard's owner does not answer is listed as
/// `{"vigil.shard", "vigil.seq", "missing": true, "error"}`.
pub(crate) async fn case_events(
    state: &Arc<AppState>,
    refs: Vec<EventRef>,
) -> Result<Vec<serde_json::Value>, Response> {
    use serde_json::json;
    use std::collections::BTreeMap;
    let Some(cluster) = &state.cluster else {
        let seqs = refs
            .iter()
            .filter(|r| r.shard.is_none())
            .map(|r| r.seq)
            .collect();
        let events = read_events_async(state, seqs).await?;
        return Ok(events
            .into_iter()
            .map(|(seq, e)| {
                let mut j = e.to_json();
                j["vigil.seq"] = json!(seq);
                j
            })
            .collect());
    };
    // One reader per shard, all shards at once; within a shard one read after another, and
    // once its owner did not answer (503: none, gone, not in time) the shard's other events
    // are listed missing without asking again, so a read costs at most one timeout per shard.
    let mut by_shard: BTreeMap<String, Vec<(usize, u64)>> = BTreeMap::new();
    for (i, r) in refs.iter().enumerate() {
        if let Some(shard) = &r.shard {
            by_shard.entry(shard.clone()).or_default().push((i, r.seq));
        }
    }
    let missing = |shard: &str, seq: u64, why: &str| json!({"vigil.shard": shard, "vigil.seq": seq, "missing": true, "error": why});
    let readers = by_shard.into_iter().map(|(shard, seqs)| {
        let cluster = cluster.clone();
        async move {
            let mut out = Vec::with_capacity(seqs.len());
            let mut down: Option<String> = None;
            for (i, seq) in seqs {
                if let Some(why) = &down {
                    out.push((i, missing(&shard, seq, why)));
                    continue;
                }
                let read = crate::cluster::integrity::Read::Event {
                    shard: shard.clone(),
                    seq,
                };
                let shown = match crate::cluster::integrity::ask(&cluster, &read).await {
                    (200, body) if body["event"].is_object() => {
                        let mut j = body["event"].clone();
                        j["vigil.seq"] = json!(seq);
                        j["vigil.shard"] = json!(shard);
                        j
                    }
                    (status, body) => {
                        let why = body["error"].as_str().unwrap_or("no answer").to_owned();
                        if status == 503 {
                            down = Some(why.clone());
                        }
                        missing(&shard, seq, &why)
                    }
                };
                out.push((i, shown));
            }
            out
        }
    });
    let mut shown: Vec<(usize, serde_json::Value)> = futures_util::future::join_all(readers)
        .await
        .into_iter()
        .flatten()
        .collect();
    shown.sort_by_key(|(i, _)| *i);
    Ok(shown.into_iter().map(|(_, j)| j).collect())
}

impl CaseService {
    /// Makes this a cluster node's service: the books come from `sys` (called once at start).
    pub fn attach(&self, books: Arc<SharedBooks>) {
        let _ = self.cluster.set(books);
    }

    /// The cluster's shared books (cluster mode).
    pub fn shared(&self) -> Option<&Arc<SharedBooks>> {
        self.cluster.get()
    }

    /// Reads the book: on a cluster node once it has applied what `sys` holds now (every
    /// change any node answered before this call), else the ledger's book.
    pub async fn read<T>(
        &self,
        state: &Arc<AppState>,
        f: impl FnOnce(&CaseBook) -> T,
    ) -> Result<T, Response> {
        if let (Some(books), Some(cluster)) = (self.shared(), &state.cluster) {
            books
                .current(cluster)
                .await
                .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e))?;
            return Ok(books.cases(f));
        }
        let book = self.book(state).await?;
        Ok(f(&book))
    }

    /// The book, rebuilt from the ledger on first use (standalone).
    pub async fn book(
        &self,
        state: &std::sync::Arc<AppState>,
    ) -> Result<tokio::sync::MutexGuard<'_, CaseBook>, Response> {
        if state.cluster.is_some() {
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "a cluster node has no ledger case book (its cases come from the sys shard)",
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
        if let (Some(books), Some(cluster)) = (self.shared(), &state.cluster) {
            return change_shared(state, books, cluster, case, change, by, source).await;
        }
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

/// Appends one audit event through the door and waits until JetStream (cluster) or the ledger
/// (standalone) stored it: its sequence number (the stream's, in a cluster).
pub(crate) async fn record(state: &AppState, event: Event) -> Result<u64, Response> {
    match state.ingest.try_append(vec![event], Origin::Audit) {
        Ok(pending) => pending
            .durable()
            .await
            .map(|range| range.start)
            .map_err(|e| {
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the change could not be recorded, so it was not made: {e}"),
                )
            }),
        Err(e) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the ledger is busy, nothing changed (retry): {e}"),
        )),
    }
}

/// A change on a cluster node: checked against the shared book, appended to `sys`, waited for
/// until applied here, answered as applied. A new case whose id another node's creation took
/// first (the stream ordered it before this one) is tried again with the next id.
async fn change_shared(
    state: &AppState,
    books: &SharedBooks,
    cluster: &vigil_cluster::Cluster,
    case: Option<u64>,
    change: Change,
    by: &str,
    source: Option<IpAddr>,
) -> Result<Case, Response> {
    let unavailable = |e: String| error(StatusCode::SERVICE_UNAVAILABLE, e);
    let _turn = books.change_turn().await;
    books.current(cluster).await.map_err(unavailable)?;
    for _ in 0..CREATE_TRIES {
        let (id, checked) = books.cases(|b| {
            let id = case.unwrap_or_else(|| b.next_id());
            (id, b.check(id, &change))
        });
        checked.map_err(refused)?;
        let seq = record(state, change.to_event(id, by, source, Timestamp::now())).await?;
        books.applied_through(seq).await.map_err(unavailable)?;
        // Applied as stored: the change's own entry in the case's timeline says it applied.
        let applied = books.cases(|b| {
            b.get(id)
                .filter(|c| c.timeline.iter().any(|t| t.seq == Some(seq)))
                .cloned()
        });
        match applied {
            Some(c) => return Ok(c),
            None if case.is_none() => continue,
            None => {
                return Err(error(
                    StatusCode::CONFLICT,
                    format!(
                        "another node changed case {id} first and this change no longer                          applies; nothing changed (read the case and retry)"
                    ),
                ));
            }
        }
    }
    Err(error(
        StatusCode::SERVICE_UNAVAILABLE,
        "other nodes kept taking the next case id; nothing changed (retry)",
    ))
}
