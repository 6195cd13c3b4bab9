//! Elasticsearch `_bulk` compatible ingest (what Beats, Logstash, Fluent Bit and Vector send).

#[allow(unused_imports)]
use super::*;

// ---- Elasticsearch _bulk ----------------------------------------------------------------------

pub(super) async fn bulk(
    state: State<Shared>,
    caller: Caller,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    bulk_impl(state, caller, peer, None, headers, body).await
}

pub(super) async fn bulk_with_index(
    state: State<Shared>,
    caller: Caller,
    peer: ConnectInfo<SocketAddr>,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    bulk_impl(state, caller, peer, Some(index), headers, body).await
}

pub(super) fn es_error(status: StatusCode, kind: &str, reason: &str) -> Response {
    (
        status,
        Json(json!({"error": {"type": kind, "reason": reason}, "status": status.as_u16()})),
    )
        .into_response()
}

pub(super) use vigil_ingest::decode::BulkItem;
#[cfg(test)]
pub(super) use vigil_ingest::decode::bulk as parse_bulk;

pub(super) async fn bulk_impl(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    default_index: Option<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let body = match body_bytes(&state, &headers, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    state.ingest.metrics.bytes.add("bulk", body.len() as u64);
    let ctx = context(&state, format!("bulk:{}", principal.name), peer);
    let parsed = parse_off_runtime(&state, body, move |body| {
        vigil_ingest::decode::bulk(&body, default_index.as_deref(), &ctx)
    })
    .await;
    let Ok(parsed) = parsed else {
        let mut r = es_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable_shards_exception",
            "documents not stored: the parser failed on this request; retry later",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, PARSER_PANIC_RETRY_AFTER);
        return r;
    };
    let items = match parsed {
        Ok(items) => items,
        Err(e) => {
            return es_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                &e.to_string(),
            );
        }
    };
    let docs: Vec<Event> = items
        .iter()
        .filter_map(|i| match i {
            BulkItem::Doc(_, _, e) => Some((**e).clone()),
            BulkItem::Refused(..) => None,
        })
        .collect();
    let ranges = match store(&state, docs, vigil_ingest::Listener::Bulk, None, &principal).await {
        Ok(r) => r,
        Err(IngestError::Overloaded) => {
            state.ingest.metrics.http_rejected.add("overloaded", 1);
            let mut r = es_error(
                StatusCode::TOO_MANY_REQUESTS,
                "es_rejected_execution_exception",
                "the ledger is behind; retry",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
        Err(e) => return ingest_failure(&state, e),
    };
    let mut seqs = ranges.into_iter().flatten();
    let mut errors = false;
    let out: Vec<JsonValue> = items
        .into_iter()
        .map(|item| match item {
            BulkItem::Doc(action, index, _) => {
                let seq = seqs.next().unwrap_or_default();
                json!({action: {"_index": index, "_id": seq.to_string(), "_version": 1, "result": "created", "status": 201, "_seq_no": seq, "_primary_term": 1, "_shards": {"total": 1, "successful": 1, "failed": 0}}})
            }
            BulkItem::Refused(action, index, reason) => {
                errors = true;
                json!({action: {"_index": index, "status": StatusCode::BAD_REQUEST.as_u16(), "error": {"type": "illegal_argument_exception", "reason": reason}}})
            }
        })
        .collect();
    Json(json!({"took": started.elapsed().as_millis() as u64, "errors": errors, "items": out}))
        .into_response()
}

pub(super) async fn es_root(headers: HeaderMap) -> Response {
    // A browser (no Authorization header) asking for `/` wants the web UI.
    if !headers.contains_key(header::AUTHORIZATION) {
        return axum::response::Redirect::to("/ui/").into_response();
    }
    // The route guard has authenticated everyone else as the role table says.
    // Shippers (Filebeat, Logstash, Fluent Bit) probe the cluster version before sending.
    Json(json!({
        "name": "vigil",
        "cluster_name": "vigil",
        "version": {"number": "8.11.0", "build_flavor": "default", "lucene_version": "9.8.0", "minimum_wire_compatibility_version": "7.17.0", "minimum_index_compatibility_version": "7.0.0"},
        "tagline": "Vigil speaks enough of the Elasticsearch bulk API to receive logs",
    }))
    .into_response()
}
