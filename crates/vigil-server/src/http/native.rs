//! `POST /api/v1/ingest`: Vigil's own ingest route (NDJSON, JSON arrays, lines).

#[allow(unused_imports)]
use super::*;

// ---- /api/v1/ingest -----------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct IngestQuery {
    format: Option<String>,
    source: Option<String>,
}

pub(super) async fn ingest(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<IngestQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body_bytes(&state, &headers, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    // A batch sent again under the same key (a sender that crashed before it saw the answer)
    // gets the first answer, and is not stored twice.
    let idempotency_key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if !k.is_empty() && k.len() <= crate::idempotency::MAX_KEY_LEN => {
            Some(k.to_owned())
        }
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "Idempotency-Key must be 1..={} visible ASCII characters",
                    crate::idempotency::MAX_KEY_LEN
                ),
            );
        }
    };
    let claim = match &idempotency_key {
        Some(k) => match state.idempotency.claim(&principal.id, k).await {
            crate::idempotency::Claim::Done(answer) => {
                return ([(header::CONTENT_TYPE, "application/json")], answer).into_response();
            }
            crate::idempotency::Claim::New(tx) => Some(tx),
        },
        None => None,
    };
    let response = match (idempotency_key, claim) {
        (Some(key), Some(tx)) => {
            // Stored and recorded in a task of its own: a sender that hangs up mid-request
            // cannot cancel it half-way, so the key always ends up done or forgotten.
            let (state, headers, principal) =
                (Arc::clone(&state), headers.clone(), principal.clone());
            let task = tokio::spawn(async move {
                let response = ingest_batch(
                    &state,
                    peer,
                    q,
                    &headers,
                    &principal,
                    body,
                    Some(key.clone()),
                )
                .await;
                let answer = response.as_ref().ok().map(JsonValue::to_string);
                state.idempotency.finish(&principal.id, &key, tx, answer);
                response
            });
            match task.await {
                Ok(r) => r,
                Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
            }
        }
        _ => ingest_batch(&state, peer, q, &headers, &principal, body, None).await,
    };
    match response {
        Ok(answer) => Json(answer).into_response(),
        Err(r) => r,
    }
}

/// Parses and stores one ingest body; the JSON answer, or the error response.
pub(super) async fn ingest_batch(
    state: &Shared,
    peer: SocketAddr,
    q: IngestQuery,
    headers: &HeaderMap,
    principal: &Principal,
    body: Vec<u8>,
    idempotency_key: Option<String>,
) -> Result<JsonValue, Response> {
    state.ingest.metrics.bytes.add("http", body.len() as u64);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let format = match q.format.as_deref() {
        Some(f) => match f.parse::<Format>() {
            Ok(f) => f,
            Err(e) => return Err(error(StatusCode::BAD_REQUEST, e)),
        },
        None if content_type.starts_with("text/plain") => Format::Auto,
        None => Format::Json,
    };
    let source = q
        .source
        .unwrap_or_else(|| format!("http:{}", principal.name));
    if vigil_parse::reserved::is_reserved_source(&source) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("source {source:?} is reserved for Vigil's own events; choose another name"),
        ));
    }
    let ctx = context(state, source, peer);
    // Python's stock `logging.handlers.HTTPHandler` posts one form-encoded record.
    let python_record = q.format.is_none()
        && vigil_parse::python_logging::is_form(&content_type)
        && vigil_parse::python_logging::looks_like_log_record(&body);
    let Ok(events) = parse_off_runtime(state, body, move |body| {
        if python_record {
            vec![vigil_parse::python_logging::log_record(&body, &ctx)]
        } else {
            vigil_ingest::decode::ndjson(&body, format, &ctx)
        }
    })
    .await
    else {
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "events not stored: the parser failed on this request; retry later",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, PARSER_PANIC_RETRY_AFTER);
        return Err(r);
    };
    let parse_errors = count_parse_errors(&events);
    let n = events.len();
    // The key rides in the batch's first event, so it survives a crash with the batch.
    let mark = idempotency_key.map(|key| crate::idempotency::Mark {
        key,
        sender: principal.id.clone(),
        parse_errors,
    });
    match store(
        state,
        events,
        vigil_ingest::Listener::Http,
        mark.as_ref(),
        principal,
    )
    .await
    {
        Ok(ranges) => Ok(crate::idempotency::answer(
            n,
            ranges.into_iter().next(),
            parse_errors,
        )),
        Err(e) => Err(ingest_failure(state, e)),
    }
}
