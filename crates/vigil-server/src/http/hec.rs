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

pub(super) fn format_for_sourcetype(sourcetype: Option<&str>) -> Format {
    match sourcetype.unwrap_or("").to_ascii_lowercase().as_str() {
        "syslog" | "linux_secure" | "linux_messages_syslog" => Format::Syslog,
        "access_combined" | "access_common" | "apache:access" | "nginx:access" => Format::Combined,
        "_json" | "json" => Format::Json,
        "cef" => Format::Cef,
        _ => Format::Auto,
    }
}

/// One HEC event object → an event, or why not.
pub(super) fn hec_event_to_event(
    obj: &serde_json::Map<String, JsonValue>,
    ctx: &ParseContext,
) -> Result<Event, String> {
    let sourcetype = obj.get("sourcetype").and_then(JsonValue::as_str);
    let mut event = match obj.get("event") {
        None | Some(JsonValue::Null) => return Err("event field is missing".into()),
        Some(JsonValue::String(s)) if s.is_empty() => return Err("event field is blank".into()),
        Some(JsonValue::String(s)) => {
            parse_line(s.as_bytes(), format_for_sourcetype(sourcetype), ctx)
        }
        Some(v @ JsonValue::Object(_)) => parse_line(v.to_string().as_bytes(), Format::Json, ctx),
        Some(other) => {
            let mut e = Event::new(ctx.received);
            e.insert("message", other.to_string());
            e
        }
    };
    let time = match obj.get("time") {
        Some(JsonValue::Number(n)) => n.as_f64(),
        Some(JsonValue::String(s)) => s.parse::<f64>().ok(),
        _ => None,
    };
    if let Some(t) = time.and_then(|t| Timestamp::from_epoch_number(t).ok())
        && event.timestamp() == ctx.received
    {
        event.set_timestamp(t);
    }
    let mut set = |key: &str, value: Option<&JsonValue>| {
        if let Some(JsonValue::String(s)) = value
            && !event.contains(key)
        {
            event.insert(key, s.as_str());
        }
    };
    set("host.name", obj.get("host"));
    set("vigil.hec.source", obj.get("source"));
    set("vigil.sourcetype", obj.get("sourcetype"));
    set("vigil.index", obj.get("index"));
    if let Some(JsonValue::Object(fields)) = obj.get("fields") {
        for (k, v) in fields {
            let value = match v {
                JsonValue::String(s) => Value::Str(s.clone()),
                other => Value::Str(other.to_string()),
            };
            // A sender's `fields` cannot claim Vigil's names (`vigil.*`, a `vigil.*` dataset).
            let (name, claimed) = vigil_parse::reserved::quarantined_name(k, &value);
            if !event.contains(&name) {
                event.insert(name, value);
            }
            if claimed {
                event.add_tag(vigil_parse::reserved::RESERVED_CLAIM_TAG);
            }
        }
    }
    Ok(event)
}

/// What both HEC endpoints do first: authenticate (answering in HEC's own codes), read the
/// body, count it, build the parse context.
pub(super) async fn hec_prologue(
    state: &Shared,
    headers: &HeaderMap,
    peer: SocketAddr,
    path: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Vec<u8>, ParseContext), Response> {
    let principal = match authorize(state, headers, peer, path, Need::Ingest).await {
        Ok(p) => p,
        Err((StatusCode::UNAUTHORIZED, _)) if presented_token(headers).is_none() => {
            return Err(hec(StatusCode::UNAUTHORIZED, "Token is required", 2));
        }
        Err((status, _)) => return Err(hec_auth_error(status)),
    };
    let body = body_bytes(state, headers, body)?;
    state.ingest.metrics.bytes.add("hec", body.len() as u64);
    Ok((
        body,
        context(state, format!("hec:{}", principal.name), peer),
    ))
}

pub(super) async fn hec_event(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (body, ctx) =
        match hec_prologue(&state, &headers, peer, "/services/collector/event", body).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let parsed = parse_off_runtime(&state, body, move |body| {
        let mut events = Vec::new();
        for (i, item) in serde_json::Deserializer::from_slice(&body)
            .into_iter::<JsonValue>()
            .enumerate()
        {
            let obj = match item {
                Ok(JsonValue::Object(o)) => o,
                Ok(_) => return Err((i, "each event must be a JSON object".to_string())),
                Err(e) => return Err((i, format!("invalid JSON: {e}"))),
            };
            events.push(hec_event_to_event(&obj, &ctx).map_err(|e| (i, e))?);
        }
        Ok(events)
    })
    .await;
    let Ok(parsed) = parsed else {
        return hec_parser_panic();
    };
    let events = match parsed {
        Ok(e) if e.is_empty() => return hec(StatusCode::BAD_REQUEST, "No data", 5),
        Ok(e) => e,
        Err((i, reason)) => {
            // Nothing of the request is stored: the sender sees which event to fix.
            return (StatusCode::BAD_REQUEST, Json(json!({"text": format!("Invalid data format: {reason}"), "code": 6, "invalid-event-number": i}))).into_response();
        }
    };
    match store(&state, events, vigil_ingest::Listener::Hec, None).await {
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<HecRawQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (body, ctx) =
        match hec_prologue(&state, &headers, peer, "/services/collector/raw", body).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let format = format_for_sourcetype(q.sourcetype.as_deref());
    let Ok(mut events) =
        parse_off_runtime(&state, body, move |body| lines_to_events(&body, format, &ctx)).await
    else {
        return hec_parser_panic();
    };
    if events.is_empty() {
        return hec(StatusCode::BAD_REQUEST, "No data", 5);
    }
    for e in events.iter_mut() {
        for (key, value) in [
            ("host.name", &q.host),
            ("vigil.hec.source", &q.source),
            ("vigil.sourcetype", &q.sourcetype),
            ("vigil.index", &q.index),
        ] {
            if let Some(v) = value
                && !e.contains(key)
            {
                e.insert(key, v.as_str());
            }
        }
    }
    match store(&state, events, vigil_ingest::Listener::Hec, None).await {
        Ok(_) => hec(StatusCode::OK, "Success", 0),
        Err(e) => ingest_failure(&state, e),
    }
}
