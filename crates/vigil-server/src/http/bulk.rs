//! Elasticsearch `_bulk` compatible ingest (what Beats, Logstash, Fluent Bit and Vector send).

#[allow(unused_imports)]
use super::*;

// ---- Elasticsearch _bulk ----------------------------------------------------------------------

pub(super) async fn bulk(
    state: State<Shared>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    bulk_impl(state, peer, None, headers, body).await
}

pub(super) async fn bulk_with_index(
    state: State<Shared>,
    peer: ConnectInfo<SocketAddr>,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    bulk_impl(state, peer, Some(index), headers, body).await
}

pub(super) fn es_error(status: StatusCode, kind: &str, reason: &str) -> Response {
    (
        status,
        Json(json!({"error": {"type": kind, "reason": reason}, "status": status.as_u16()})),
    )
        .into_response()
}

pub(super) enum BulkItem {
    /// A document to store: action name, index, the event.
    Doc(String, String, Box<Event>),
    /// An action Vigil does not do (delete, update) or a document that does not parse.
    Refused(String, String, StatusCode, String),
}

pub(super) async fn bulk_impl(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    default_index: Option<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let principal = match authorize(&state, &headers, peer, "/_bulk", Need::Ingest).await {
        Ok(p) => p,
        Err((status, msg)) => return es_error(status, "security_exception", msg),
    };
    let body = match body_bytes(&state, &headers, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    state.ingest.metrics.bytes.add("bulk", body.len() as u64);
    let ctx = context(&state, format!("bulk:{}", principal.name), peer);
    let parsed = parse_off_runtime(&state, body, move |body| {
        parse_bulk(&body, default_index.as_deref(), &ctx)
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
        Err(reason) => {
            return es_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                &reason,
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
    let ranges = match store(&state, docs, vigil_ingest::Listener::Bulk, None).await {
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
            BulkItem::Refused(action, index, status, reason) => {
                errors = true;
                json!({action: {"_index": index, "status": status.as_u16(), "error": {"type": "illegal_argument_exception", "reason": reason}}})
            }
        })
        .collect();
    Json(json!({"took": started.elapsed().as_millis() as u64, "errors": errors, "items": out}))
        .into_response()
}

pub(super) fn parse_bulk(
    body: &[u8],
    default_index: Option<&str>,
    ctx: &ParseContext,
) -> Result<Vec<BulkItem>, String> {
    let mut lines = body
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace));
    let mut items = Vec::new();
    while let Some((n, line)) = lines.next() {
        let action: JsonValue = serde_json::from_slice(line)
            .map_err(|e| format!("line {}: action is not JSON: {e}", n + 1))?;
        let Some((name, meta)) = action.as_object().and_then(|o| o.iter().next()) else {
            return Err(format!(
                "line {}: expected an action object like {{\"index\":{{}}}}",
                n + 1
            ));
        };
        let index = meta
            .get("_index")
            .and_then(JsonValue::as_str)
            .or(default_index)
            .unwrap_or("default")
            .to_owned();
        match name.as_str() {
            "index" | "create" => {
                let Some((_, doc)) = lines.next() else {
                    return Err(format!("line {}: {name} action without a document", n + 1));
                };
                let text = String::from_utf8_lossy(doc);
                let mut event = parse_line(text.as_bytes(), Format::Json, ctx);
                if event
                    .get("tags")
                    .is_some_and(|t| t.to_string().contains("parse_error"))
                {
                    items.push(BulkItem::Refused(
                        name.clone(),
                        index,
                        StatusCode::BAD_REQUEST,
                        "document is not a JSON object".into(),
                    ));
                    continue;
                }
                event.insert("vigil.index", index.as_str());
                items.push(BulkItem::Doc(name.clone(), index, Box::new(event)));
            }
            "update" => {
                lines.next();
                items.push(BulkItem::Refused(
                    name.clone(),
                    index,
                    StatusCode::BAD_REQUEST,
                    "the ledger is append-only: update is not supported".into(),
                ));
            }
            "delete" => {
                items.push(BulkItem::Refused(
                    name.clone(),
                    index,
                    StatusCode::BAD_REQUEST,
                    "the ledger is append-only: delete is not supported".into(),
                ));
            }
            other => return Err(format!("line {}: unknown action {other:?}", n + 1)),
        }
    }
    Ok(items)
}

pub(super) async fn es_root(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    // A browser (no Authorization header) asking for `/` wants the web UI.
    if !headers.contains_key(header::AUTHORIZATION) {
        return axum::response::Redirect::to("/ui/").into_response();
    }
    if let Err((status, msg)) = authorize(&state, &headers, peer, "/", Need::Ingest).await {
        return es_error(status, "security_exception", msg);
    }
    // Shippers (Filebeat, Logstash, Fluent Bit) probe the cluster version before sending.
    Json(json!({
        "name": "vigil",
        "cluster_name": "vigil",
        "version": {"number": "8.11.0", "build_flavor": "default", "lucene_version": "9.8.0", "minimum_wire_compatibility_version": "7.17.0", "minimum_index_compatibility_version": "7.0.0"},
        "tagline": "Vigil speaks enough of the Elasticsearch bulk API to receive logs",
    }))
    .into_response()
}
