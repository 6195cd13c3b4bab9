//! Ledger reads (checkpoints, inclusion proofs), searches, metrics and health.

#[allow(unused_imports)]
use super::*;

// ---- ledger reads, metrics --------------------------------------------------------------------

pub(super) async fn checkpoint(
    State(state): State<Shared>,
    Query(q): Query<crate::cluster::integrity::ShardParam>,
) -> Response {
    if let Some(cluster) = &state.cluster {
        return crate::cluster::integrity::checkpoint_route(cluster, q.shard).await;
    }
    let dir = state.data_dir.clone();
    let latest = tokio::task::spawn_blocking(move || {
        vigil_ledger::read_checkpoints(&vigil_ledger::LedgerPaths::new(&dir)).map(|mut c| c.pop())
    })
    .await;
    match latest {
        Ok(Ok(Some(cp))) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            cp.note,
        )
            .into_response(),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "no checkpoint yet"),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Parses a query and its time range (relative like `-24h` or RFC 3339) for a search of at most
/// `max_rows` rows; a bad query is a 400 naming the column.
#[allow(clippy::result_large_err)]
pub(crate) fn prepare_query(
    text: &str,
    from: Option<&str>,
    to: Option<&str>,
    max_rows: usize,
) -> Result<(vigil_query::Pipeline, vigil_query::Limits), Response> {
    let mut pipeline = vigil_query::parse(text).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.message, "column": e.column, "status": 400})),
        )
            .into_response()
    })?;
    // Drill events never count in searches, dashboards and exports unless asked for by name.
    crate::drill::exclude_drills(&mut pipeline);
    let now = Timestamp::now();
    let from = crate::search::resolve_time(from, now);
    let to = crate::search::resolve_time(to, now);
    match (from, to) {
        (Ok(from), Ok(to)) => Ok((
            pipeline,
            vigil_query::Limits {
                from,
                to,
                max_rows: max_rows.min(100_000),
                now,
            },
        )),
        (Err(e), _) | (_, Err(e)) => Err(error(StatusCode::BAD_REQUEST, e)),
    }
}

/// Searches and exports that run at once. Each holds at most
/// [`vigil_query::exec::MAX_RESULT_BYTES`] of rows plus its answer on the way out, so this bounds
/// the memory all searches take together; more wait in line.
pub const MAX_SEARCHES_IN_FLIGHT: usize = 4;

/// How long a search waits for a turn before it is refused with 503 and `Retry-After`.
pub const SEARCH_QUEUE_WAIT: Duration = Duration::from_secs(10);

/// A turn from `turns` if one is free within `wait`, and then (only then) `granted` runs: a
/// refused request leaves no trace of its own (no audit event).
pub(super) async fn turn_then(
    turns: &Arc<tokio::sync::Semaphore>,
    wait: Duration,
    granted: impl FnOnce(),
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    let permit = tokio::time::timeout(wait, Arc::clone(turns).acquire_owned())
        .await
        .ok()?
        .ok()?;
    granted();
    Some(permit)
}

/// A turn to run a search or export: waits up to [`SEARCH_QUEUE_WAIT`], then the error is a
/// 503 with `Retry-After` (counted as `vigil_http_rejected_total{reason="search_busy"}`).
/// `audit` runs once the turn is granted, so refused requests write no audit events.
#[allow(clippy::result_large_err)]
pub(crate) async fn search_turn(
    state: &AppState,
    audit: impl FnOnce(),
) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
    match turn_then(&state.searches, SEARCH_QUEUE_WAIT, audit).await {
        Some(permit) => Ok(permit),
        None => {
            state.ingest.metrics.http_rejected.add("search_busy", 1);
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                Json(json!({
                    "error": format!("{MAX_SEARCHES_IN_FLIGHT} searches are running; try again shortly"),
                    "status": 503,
                })),
            )
                .into_response())
        }
    }
}

/// A search answer as JSON, written row by row and freeing each row as it goes, so the answer
/// never exists twice in memory.
pub(super) fn search_json(r: vigil_query::QueryResult, took_ms: u64) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, v: &impl serde::Serialize) {
        // Writing JSON into memory fails only for maps with non-string keys, which these are not.
        let _ = serde_json::to_writer(out, v);
    }
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"columns\":");
    put(&mut out, &r.columns);
    out.extend_from_slice(b",\"rows\":[");
    for (i, row) in r.rows.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        for (j, v) in row.into_iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            put(&mut out, &v.to_json());
        }
        out.push(b']');
    }
    out.extend_from_slice(b"],\"took_ms\":");
    put(&mut out, &took_ms);
    out.extend_from_slice(b",\"scanned\":");
    put(&mut out, &r.scanned);
    out.extend_from_slice(b",\"truncated\":");
    put(&mut out, &r.truncated);
    if let Some(m) = &r.message {
        out.extend_from_slice(b",\"message\":");
        put(&mut out, m);
    }
    // Only a cluster's answer can miss shards: a single node's JSON is unchanged.
    if !r.missing_shards.is_empty() {
        out.extend_from_slice(b",\"missing_shards\":");
        put(&mut out, &r.missing_shards);
    }
    out.push(b'}');
    out
}

/// Runs a prepared query on the index when there is one, else by scanning the ledger.
pub(crate) async fn execute_query(
    state: &AppState,
    pipeline: vigil_query::Pipeline,
    limits: vigil_query::Limits,
) -> Result<Result<vigil_query::QueryResult, String>, tokio::task::JoinError> {
    let ledger = state.ingest.ledger().clone();
    let index = state.index.clone();
    tokio::task::spawn_blocking(move || match index {
        Some(index) => index.run(&pipeline, limits),
        // Only durable events: never one of a write that is undone.
        None => ledger
            .reader()
            .map_err(|e| e.to_string())
            .and_then(|reader| crate::search::run_on_reader(reader, &pipeline, limits)),
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct SearchRequest {
    query: String,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    /// Rows to skip (paging): at most [`MAX_OFFSET`].
    #[serde(default)]
    offset: usize,
}

/// The deepest a search pages: `offset` beyond this is refused (the rows skipped are still
/// computed, so paging costs as much as asking for `offset + limit` rows).
pub const MAX_OFFSET: usize = 10_000;

/// `POST /api/v1/search` `{query, from, to, limit, offset?}` → `{columns, rows, took_ms,
/// scanned, truncated}`: with `offset`, the rows from `offset` on (the result's order is the
/// query's: the same query over the same events pages without gaps or repeats).
/// Each search is written to the ledger as an audit event with its query text.
pub(super) async fn search(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body_bytes(&state, &headers, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let request: SearchRequest = match json_body(&body, r#"{"query": …, "from", "to", "limit"}"#)
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    if request.offset > MAX_OFFSET {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`offset` is at most {MAX_OFFSET}; narrow the search instead"),
        );
    }
    let offset = request.offset;
    let (pipeline, limits) = match prepare_query(
        &request.query,
        request.from.as_deref(),
        request.to.as_deref(),
        request.limit.unwrap_or(1000).saturating_add(offset),
    ) {
        Ok(q) => q,
        Err(r) => return r,
    };
    // Audited once the turn is granted: a refused (503) search writes no audit event, so
    // waiting requests cannot fill the ledger.
    let audit = || {
        let mut audit = crate::audit::by(
            "search",
            vigil_event::Category::Database,
            vigil_event::EventType::Access,
            vigil_event::Outcome::Success,
            &principal.name,
            Some(peer.ip()),
        );
        audit.insert("vigil.query", request.query.as_str());
        crate::audit::append(&state.ingest, audit);
    };
    let _turn = match search_turn(&state, audit).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let started = Instant::now();
    let result = match &state.cluster {
        // Cluster mode: every shard's owner answers for it, merged here.
        Some(cluster) => Ok(
            crate::cluster::query::search(cluster, &request.query, limits)
                .await
                .map_err(|e| e.to_string()),
        ),
        None => execute_query(&state, pipeline, limits).await,
    };
    match result {
        Ok(Ok(mut r)) => {
            let took_ms = started.elapsed().as_millis() as u64;
            r.rows.drain(..offset.min(r.rows.len()));
            match tokio::task::spawn_blocking(move || search_json(r, took_ms)).await {
                Ok(body) => (
                    [(header::CONTENT_TYPE, "application/json")],
                    axum::body::Body::from(body),
                )
                    .into_response(),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
pub(super) struct ProofQuery {
    seq: u64,
    /// The shard, on a cluster node.
    shard: Option<String>,
}

pub(super) async fn inclusion_proof(
    State(state): State<Shared>,
    Query(q): Query<ProofQuery>,
) -> Response {
    if let Some(cluster) = &state.cluster {
        return crate::cluster::integrity::proof_route(cluster, q.shard, q.seq).await;
    }
    let dir = state.data_dir.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut reader = vigil_ledger::LedgerReader::open(&dir)?;
        reader.inclusion_proof(q.seq)
    })
    .await;
    match result {
        Ok(Ok(p)) => Json(proof_json(&p)).into_response(),
        Ok(Err(e)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The inclusion proof JSON of DESIGN §5 (now [`vigil_ledger::InclusionProof::to_json`]).
pub fn proof_json(p: &vigil_ledger::InclusionProof) -> JsonValue {
    p.to_json()
}

pub use vigil_ledger::hex;

pub(super) async fn metrics(State(state): State<Shared>) -> Response {
    let ledger = state.ingest.ledger();
    let mut text = crate::metrics::render(
        &state.ingest.metrics,
        ledger.end_seq(),
        ledger.checkpointed_size(),
        state.ingest.in_flight(),
        state.index.as_deref().map(|i| i.progress()),
        state
            .detect
            .as_deref()
            .map(|d| (&d.progress, &*state.notify_stats)),
    );
    text.push_str(&format!(
        "# HELP vigil_ledger_degraded 1 while the ledger cannot store events (a full disk, an I/O error) and retries by itself.\n\
         # TYPE vigil_ledger_degraded gauge\nvigil_ledger_degraded {}\n",
        u8::from(ledger.degraded().is_some())
    ));
    if let Some(cluster) = &state.cluster {
        text.push_str(&state.cluster_health.report(cluster).await.metrics());
        text.push_str(&crate::cluster::gap::metrics());
        text.push_str(&crate::cluster::registry::metrics());
    }
    text.push_str(&state.witness.status.render());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// `GET /healthz`: `ok` while Vigil can store events; 503
/// `{"status":"degraded","reason":"ledger: …"}` while the ledger cannot write (it retries by
/// itself and this turns back to `ok` once it can); 503 `{"status":"degraded","reason":"witness
/// …"}` while a witness reports that the ledger was rolled back.
pub(super) async fn health(State(state): State<Shared>) -> Response {
    if let Some(rollback) = state.witness.status.rollback() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "reason": format!("rollback: {rollback}")})),
        )
            .into_response();
    }
    match state.ingest.ledger().degraded() {
        None => "ok\n".into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "reason": format!("ledger: {reason}")})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_shards_show_only_when_there_are_some() {
        let result = |missing: Vec<String>| vigil_query::QueryResult {
            columns: vec!["count".into()],
            rows: vec![vec![vigil_event::Value::Int(3)]],
            scanned: 3,
            truncated: !missing.is_empty(),
            message: None,
            missing_shards: missing,
        };
        let single: serde_json::Value =
            serde_json::from_slice(&search_json(result(Vec::new()), 1)).unwrap();
        assert_eq!(
            single,
            serde_json::json!({"columns": ["count"], "rows": [[3]], "took_ms": 1, "scanned": 3, "truncated": false})
        );
        let cluster: serde_json::Value =
            serde_json::from_slice(&search_json(result(vec!["p1".into(), "sys".into()]), 1))
                .unwrap();
        assert_eq!(cluster["missing_shards"], serde_json::json!(["p1", "sys"]));
    }
}
