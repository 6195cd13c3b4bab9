//! Splunk HTTP Event Collector compatible ingest.

#[allow(unused_imports)]
use super::*;

// ---- Splunk HEC -----------------------------------------------------------------------------

pub(super) fn hec(status: StatusCode, text: &str, code: u32) -> Response {
    (status, Json(json!({"text": text, "code": code}))).into_response()
}

/// 503 "Server is busy" with `Retry-After`: HEC clients retry it.
fn hec_parser_panic() -> Response {
    let mut r = hec(StatusCode::SERVICE_UNAVAILABLE, "Server is busy", 9);
    r.headers_mut()
        .insert(header::RETRY_AFTER, PARSER_PANIC_RETRY_AFTER);
    r
}

pub(super) fn hec_auth_error(status: StatusCode) -> Response {
    if status == StatusCode::FORBIDDEN {
        hec(StatusCode::FORBIDDEN, "Token does not allow ingest", 4)
    } else {
        hec(StatusCode::UNAUTHORIZED, "Invalid authorization", 3)
    }
}

pub(super) async fn hec_health() -> Response {
    hec(StatusCode::OK, "HEC is healthy", 17)
}

#[cfg(test)]
pub(super) use vigil_ingest::decode::hec_event as hec_event_to_event;

/// What both HEC endpoints do first (the route guard has authenticated the caller, answering
/// in HEC's own codes): read the body, count it, build the parse context.
pub(super) async fn hec_prologue(
    state: &Shared,
    headers: &HeaderMap,
    peer: SocketAddr,
    principal: &Principal,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Vec<u8>, ParseContext), Response> {
    let body = body_bytes(state, headers, body)?;
    state.ingest.metrics.bytes.add("hec", body.len() as u64);
    Ok((
        body,
        context(state, format!("hec:{}", principal.name), peer),
    ))
}

pub(super) async fn hec_event(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (body, ctx) = match hec_prologue(&state, &headers, peer, &principal, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let parsed = parse_off_runtime(&state, body, move |body| {
        vigil_ingest::decode::hec_events(&body, &ctx)
    })
    .await;
    let Ok(parsed) = parsed else {
        return hec_parser_panic();
    };
    let events = match parsed {
        Ok(e) if e.is_empty() => return hec(StatusCode::BAD_REQUEST, "No data", 5),
        Ok(e) => e,
        Err(vigil_ingest::decode::DecodeError::HecEvent { index: i, reason })
        | Err(vigil_ingest::decode::DecodeError::Bulk { line: i, reason }) => {
            // Nothing of the request is stored: the sender sees which event to fix.
            return (StatusCode::BAD_REQUEST, Json(json!({"text": format!("Invalid data format: {reason}"), "code": 6, "invalid-event-number": i}))).into_response();
        }
    };
    match store(
        &state,
        events,
        vigil_ingest::Listener::Hec,
        None,
        &principal,
    )
    .await
    {
        Ok(_) => hec(StatusCode::OK, "Success", 0),
        Err(IngestError::Overloaded) => {
            state.ingest.metrics.http_rejected.add("overloaded", 1);
            let mut r = hec(StatusCode::SERVICE_UNAVAILABLE, "Server is busy", 9);
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Err(e) => ingest_failure(&state, e),
    }
}

#[derive(Deserialize)]
pub(super) struct HecRawQuery {
    sourcetype: Option<String>,
    source: Option<String>,
    host: Option<String>,
    index: Option<String>,
}

pub(super) async fn hec_raw(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<HecRawQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (body, ctx) = match hec_prologue(&state, &headers, peer, &principal, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let meta = vigil_ingest::decode::HecRawMeta {
        sourcetype: q.sourcetype,
        source: q.source,
        host: q.host,
        index: q.index,
    };
    let Ok(events) = parse_off_runtime(&state, body, move |body| {
        vigil_ingest::decode::hec_raw(&body, &meta, &ctx)
    })
    .await
    else {
        return hec_parser_panic();
    };
    if events.is_empty() {
        return hec(StatusCode::BAD_REQUEST, "No data", 5);
    }
    match store(
        &state,
        events,
        vigil_ingest::Listener::Hec,
        None,
        &principal,
    )
    .await
    {
        Ok(_) => hec(StatusCode::OK, "Success", 0),
        Err(e) => ingest_failure(&state, e),
    }
}
