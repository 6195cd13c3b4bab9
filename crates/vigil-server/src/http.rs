//! The HTTP API: Vigil's own ingest, Splunk HEC and Elasticsearch `_bulk` compatible ingest,
//! checkpoints and proofs, metrics and health.
//!
//! Every route but `/healthz` (and HEC's health probe) needs a token. Ingest routes answer 2xx
//! only once the events are durable; when the ledger is behind they answer 429 with
//! `Retry-After`; a body over the limit gets 413; bodies may be gzip-compressed.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use vigil_event::{Event, Timestamp, Value};
use vigil_parse::{Format, ParseContext, parse_line};

use crate::auth::{AuthError, Principal, TokenStore};
use crate::pipeline::{Ingest, IngestError};

/// How long an HTTP request waits for room in the pipeline before 429.
const HTTP_PATIENCE: Duration = Duration::from_secs(2);

/// What the handlers share.
pub struct AppState {
    /// The ingest pipeline.
    pub ingest: Arc<Ingest>,
    /// API tokens.
    pub tokens: Arc<TokenStore>,
    /// The data directory (for ledger reads).
    pub data_dir: PathBuf,
    /// Keep `event.original`.
    pub keep_original: bool,
    /// Largest accepted body (after decompression too).
    pub max_body_bytes: usize,
    /// The search index, when it is on.
    pub index: Option<Arc<crate::search::IndexService>>,
    /// Searches and exports running at once ([`MAX_SEARCHES_IN_FLIGHT`]).
    pub searches: Arc<tokio::sync::Semaphore>,
    /// The detector, when rules are loaded.
    pub detect: Option<Arc<crate::detect::DetectService>>,
    /// Notification delivery counters.
    pub notify_stats: Arc<crate::notify::NotifyStats>,
    /// Ban decisions.
    pub decisions: Arc<crate::decisions::DecisionService>,
    /// When each bouncer (token id) last polled the decision stream.
    pub bouncer_polls: std::sync::Mutex<std::collections::HashMap<String, Timestamp>>,
    /// `Idempotency-Key`s of recent ingest batches.
    pub idempotency: crate::idempotency::Idempotency,
    /// Web UI sessions and the accounts behind them.
    pub sessions: Arc<crate::session::SessionStore>,
    /// Failed logins per address.
    pub login_limiter: crate::session::LoginLimiter,
    /// Failed logins per account, from any address.
    pub account_limiter: crate::session::AccountLimiter,
    /// Invalid API tokens per address.
    pub token_limiter: crate::session::LoginLimiter,
    /// Requests without valid credentials (none, or an unknown session cookie) audited per
    /// address: beyond its limit they are only counted, so a flood costs no ledger space.
    pub anonymous_limiter: crate::session::LoginLimiter,
    /// Whether HTTP is served over TLS (cookies get `Secure`, responses HSTS).
    pub tls: bool,
    /// The result of the last verification run from the UI or API.
    pub last_verification: std::sync::Mutex<Option<JsonValue>>,
    /// This run: `{started, version, previous_stop}` (none, clean or unclean), for the UI.
    pub run: JsonValue,
    /// Whether a verification is running.
    pub verifying: std::sync::atomic::AtomicBool,
}

type Shared = Arc<AppState>;

/// The router.
pub fn router(state: Shared) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .route("/api/v1/ingest", post(ingest))
        .route("/api/v1/checkpoint", get(checkpoint))
        .route("/api/v1/search", post(search))
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/{id}", get(get_alert).post(triage_alert))
        .route("/api/v1/rules", get(list_rules))
        .route("/api/v1/decisions", get(list_decisions).post(add_decision))
        .route(
            "/api/v1/decisions/{id}",
            axum::routing::delete(delete_decision),
        )
        .route("/v1/decisions/stream", get(bouncer_stream))
        .route("/v1/decisions", get(bouncer_decisions))
        .route("/api/v1/proof/inclusion", get(inclusion_proof))
        .route("/services/collector", post(hec_event))
        .route("/services/collector/event", post(hec_event))
        .route("/services/collector/event/1.0", post(hec_event))
        .route("/services/collector/raw", post(hec_raw))
        .route("/services/collector/raw/1.0", post(hec_raw))
        .route("/services/collector/health", get(hec_health))
        .route("/services/collector/health/1.0", get(hec_health))
        .route("/_bulk", post(bulk))
        .route("/{index}/_bulk", post(bulk_with_index))
        .route("/", get(es_root).head(es_root))
        .merge(crate::web::routes())
        .merge(crate::admin::routes())
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            crate::web::csrf_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            crate::web::security_headers,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

// ---- errors and auth ------------------------------------------------------------------------

/// A JSON error answer `{"error", "status"}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": message.into(), "status": status.as_u16()})),
    )
        .into_response()
}

fn too_many(state: &AppState, message: &str) -> Response {
    state.ingest.metrics.http_rejected.add("overloaded", 1);
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

fn ingest_failure(state: &AppState, e: IngestError) -> Response {
    match e {
        IngestError::Overloaded => too_many(state, "the ledger is behind; retry after a second"),
        e @ IngestError::TooManyEvents { .. } => {
            state.ingest.metrics.http_rejected.add("too_large", 1);
            error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        IngestError::Ledger(e) => {
            state.ingest.metrics.http_rejected.add("ledger", 1);
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("events not stored: {e}"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
    }
}

/// The token in `Authorization`: `Bearer T`, `Splunk T`, `Basic base64(user:T)` or
/// `ApiKey base64(id:T)` (what Fluent Bit, Vector, Logstash and Filebeat send).
fn presented_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" | "splunk" | "token" => Some(rest.to_owned()),
        "basic" | "apikey" => {
            let decoded = String::from_utf8(B64.decode(rest).ok()?).ok()?;
            decoded.split_once(':').map(|(_, t)| t.to_owned())
        }
        _ => None,
    }
}

/// What a route needs a caller's role to allow.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    Ingest,
    Read,
    Triage,
    Ban,
    Admin,
}

/// Authenticates and authorises; failures are counted and written to the ledger as audit
/// events (`event.dataset: vigil.audit`).
pub(crate) async fn authorize(
    state: &Shared,
    headers: &HeaderMap,
    peer: SocketAddr,
    path: &str,
    need: Need,
) -> Result<Principal, (StatusCode, &'static str)> {
    let principal = match presented_token(headers) {
        Some(token) => match verify_token(state, token, peer, path).await {
            Ok(p) => p,
            Err(_) => return Err((StatusCode::UNAUTHORIZED, "invalid or revoked token")),
        },
        None => match crate::web::session_cookie(headers) {
            Some(cookie) => match state.sessions.lookup(&cookie) {
                Some(view) => Principal {
                    id: "session".into(),
                    name: view.user,
                    role: view.role,
                },
                None => {
                    audit_anonymous_failure(state, peer, path, "expired or unknown session");
                    return Err((
                        StatusCode::UNAUTHORIZED,
                        "the session has expired: log in again",
                    ));
                }
            },
            None => {
                audit_anonymous_failure(state, peer, path, "missing credentials");
                return Err((
                    StatusCode::UNAUTHORIZED,
                    "authentication required: send Authorization: Bearer <token>",
                ));
            }
        },
    };
    let allowed = match need {
        Need::Ingest => principal.role.can_ingest(),
        Need::Read => principal.role.can_read(),
        Need::Triage => principal.role.can_triage(),
        Need::Ban => principal.role.can_ban(),
        Need::Admin => principal.role.can_administer(),
    };
    if !allowed {
        state.ingest.metrics.http_rejected.add("forbidden", 1);
        return Err((
            StatusCode::FORBIDDEN,
            "this token's role does not allow this",
        ));
    }
    Ok(principal)
}

/// Verifies an API token. A token whose id names no stored token costs nothing to refuse; wrong
/// secrets for an existing id are limited per address and id (in [`crate::auth::TokenStore`]),
/// so a flood of guesses from an address costs neither CPU nor the address's valid tokens. An
/// address that sent too many invalid tokens lately gets no audit event per attempt (only
/// counted), so a flood costs no ledger space either.
async fn verify_token(
    state: &Shared,
    token: String,
    peer: SocketAddr,
    path: &str,
) -> Result<Principal, AuthError> {
    let tokens = Arc::clone(&state.tokens);
    let ip = peer.ip();
    let verified = tokio::task::spawn_blocking(move || tokens.verify_from(&token, Some(ip)))
        .await
        .unwrap_or(Err(AuthError::Invalid));
    if verified.is_err() {
        if state.token_limiter.check(ip).is_err() {
            state
                .ingest
                .metrics
                .auth_failures
                .fetch_add(1, Ordering::Relaxed);
            state
                .ingest
                .metrics
                .http_rejected
                .add("auth_rate_limited", 1);
        } else {
            state.token_limiter.failed(ip);
            audit_auth_failure(state, peer, path, "invalid or revoked token");
        }
    }
    verified
}

/// [`audit_auth_failure`] for requests that cost Vigil nothing to refuse (no credentials, an
/// unknown session cookie): audited up to the per-address limit, then only counted
/// (`vigil_auth_failures_total` and `vigil_http_rejected_total{reason="auth_unaudited"}`).
fn audit_anonymous_failure(state: &Shared, peer: SocketAddr, path: &str, reason: &str) {
    if !audit_quota(state, peer.ip()) {
        state
            .ingest
            .metrics
            .auth_failures
            .fetch_add(1, Ordering::Relaxed);
        return;
    }
    audit_auth_failure(state, peer, path, reason);
}

/// Whether a refusal that cost Vigil nothing (no credentials, an unknown session, a login
/// refused by a limiter) may still be audited for this address: up to 30 a minute, then only
/// counted (`vigil_http_rejected_total{reason="auth_unaudited"}`), so a flood cannot fill the
/// ledger.
pub(crate) fn audit_quota(state: &AppState, ip: std::net::IpAddr) -> bool {
    if state.anonymous_limiter.check(ip).is_err() {
        state.ingest.metrics.http_rejected.add("auth_unaudited", 1);
        return false;
    }
    state.anonymous_limiter.failed(ip);
    true
}

fn audit_auth_failure(state: &Shared, peer: SocketAddr, path: &str, reason: &str) {
    state
        .ingest
        .metrics
        .auth_failures
        .fetch_add(1, Ordering::Relaxed);
    tracing::warn!(%peer, path, reason, "authentication failed");
    let mut e = Event::audit(
        Timestamp::now(),
        "api_auth_failure",
        "authentication",
        "info",
        "failure",
    );
    e.insert("event.reason", reason);
    e.insert("source.ip", Value::Ip(peer.ip()));
    e.insert("url.path", path);
    e.insert(
        "message",
        format!("API authentication failed from {}: {reason}", peer.ip()),
    );
    crate::audit::append(&state.ingest, e);
}

// ---- bodies ---------------------------------------------------------------------------------

/// The request body, gunzipped if `Content-Encoding: gzip`, within the size limit. The error is
/// the response to send (a rare path, so its size does not matter).
#[allow(clippy::result_large_err)]
fn body_bytes(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Vec<u8>, Response> {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                state.ingest.metrics.http_rejected.add("too_large", 1);
                return Err(error(
                    status,
                    format!(
                        "request body exceeds the {}-byte limit; send smaller batches",
                        state.max_body_bytes
                    ),
                ));
            }
            return Err(error(status, rejection.body_text()));
        }
    };
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    let limit = state.max_body_bytes as u64;
    flate2::read::MultiGzDecoder::new(&body[..])
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("gzip body: {e}")))?;
    if out.len() as u64 > limit {
        state.ingest.metrics.http_rejected.add("too_large", 1);
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "decompressed body exceeds the {}-byte limit",
                state.max_body_bytes
            ),
        ));
    }
    Ok(out)
}

fn context(state: &AppState, source: String, peer: SocketAddr) -> ParseContext {
    let now = Timestamp::now();
    ParseContext {
        received: now,
        reference: now,
        source,
        keep_original: state.keep_original,
        peer: Some(peer.ip()),
        redactor: state.ingest.redactor(),
    }
}

/// Appends the events of one request as one ledger append and waits until they are durable:
/// stored whole (one range of consecutive sequence numbers, none of another sender's between)
/// or not at all (429 when the ledger is behind, 413 over [`crate::pipeline::MAX_REQUEST_EVENTS`] events, 503
/// when the ledger cannot write). Returns the range, none when the request held no events.
async fn store(
    state: &AppState,
    events: Vec<Event>,
    listener: &'static str,
    mark: Option<&crate::idempotency::Mark>,
) -> Result<Vec<std::ops::Range<u64>>, IngestError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let pending = state
        .ingest
        .append_marked(events, listener, HTTP_PATIENCE, mark)
        .await?;
    Ok(vec![pending.durable().await?])
}

fn count_parse_errors(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| {
            e.get("tags")
                .is_some_and(|t| t.to_string().contains("parse_error"))
        })
        .count()
}

// ---- /api/v1/ingest -----------------------------------------------------------------------

#[derive(Deserialize)]
struct IngestQuery {
    format: Option<String>,
    source: Option<String>,
}

async fn ingest(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<IngestQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let principal = match authorize(&state, &headers, peer, "/api/v1/ingest", Need::Ingest).await {
        Ok(p) => p,
        Err((status, msg)) => return error(status, msg),
    };
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
async fn ingest_batch(
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
    let events = tokio::task::spawn_blocking(move || lines_to_events(&body, format, &ctx))
        .await
        .unwrap_or_default();
    let parse_errors = count_parse_errors(&events);
    let n = events.len();
    // The key rides in the batch's first event, so it survives a crash with the batch.
    let mark = idempotency_key.map(|key| crate::idempotency::Mark {
        key,
        sender: principal.id.clone(),
        parse_errors,
    });
    match store(state, events, "http", mark.as_ref()).await {
        Ok(ranges) => Ok(crate::idempotency::answer(
            n,
            ranges.into_iter().next(),
            parse_errors,
        )),
        Err(e) => Err(ingest_failure(state, e)),
    }
}

/// One event per line; a body that is a JSON array holds one event per element.
fn lines_to_events(body: &[u8], format: Format, ctx: &ParseContext) -> Vec<Event> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[')
        && matches!(format, Format::Json | Format::Auto)
        && let Ok(items) = serde_json::from_slice::<Vec<JsonValue>>(body)
    {
        return items
            .iter()
            .map(|item| parse_line(item.to_string().as_bytes(), Format::Json, ctx))
            .collect();
    }
    body.split(|&b| b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .map(|line| parse_line(line, format, ctx))
        .collect()
}

// ---- Splunk HEC -----------------------------------------------------------------------------

fn hec(status: StatusCode, text: &str, code: u32) -> Response {
    (status, Json(json!({"text": text, "code": code}))).into_response()
}

fn hec_auth_error(status: StatusCode) -> Response {
    if status == StatusCode::FORBIDDEN {
        hec(StatusCode::FORBIDDEN, "Token does not allow ingest", 4)
    } else {
        hec(StatusCode::UNAUTHORIZED, "Invalid authorization", 3)
    }
}

async fn hec_health() -> Response {
    hec(StatusCode::OK, "HEC is healthy", 17)
}

fn format_for_sourcetype(sourcetype: Option<&str>) -> Format {
    match sourcetype.unwrap_or("").to_ascii_lowercase().as_str() {
        "syslog" | "linux_secure" | "linux_messages_syslog" => Format::Syslog,
        "access_combined" | "access_common" | "apache:access" | "nginx:access" => Format::Combined,
        "_json" | "json" => Format::Json,
        "cef" => Format::Cef,
        _ => Format::Auto,
    }
}

/// One HEC event object → an event, or why not.
fn hec_event_to_event(
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
async fn hec_prologue(
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

async fn hec_event(
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
    let parsed = tokio::task::spawn_blocking(move || {
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
    .await
    .unwrap_or_else(|_| Err((0, "internal error".into())));
    let events = match parsed {
        Ok(e) if e.is_empty() => return hec(StatusCode::BAD_REQUEST, "No data", 5),
        Ok(e) => e,
        Err((i, reason)) => {
            // Nothing of the request is stored: the sender sees which event to fix.
            return (StatusCode::BAD_REQUEST, Json(json!({"text": format!("Invalid data format: {reason}"), "code": 6, "invalid-event-number": i}))).into_response();
        }
    };
    match store(&state, events, "hec", None).await {
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
struct HecRawQuery {
    sourcetype: Option<String>,
    source: Option<String>,
    host: Option<String>,
    index: Option<String>,
}

async fn hec_raw(
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
    let mut events = tokio::task::spawn_blocking(move || lines_to_events(&body, format, &ctx))
        .await
        .unwrap_or_default();
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
    match store(&state, events, "hec", None).await {
        Ok(_) => hec(StatusCode::OK, "Success", 0),
        Err(e) => ingest_failure(&state, e),
    }
}

// ---- Elasticsearch _bulk ----------------------------------------------------------------------

async fn bulk(
    state: State<Shared>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    bulk_impl(state, peer, None, headers, body).await
}

async fn bulk_with_index(
    state: State<Shared>,
    peer: ConnectInfo<SocketAddr>,
    Path(index): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    bulk_impl(state, peer, Some(index), headers, body).await
}

fn es_error(status: StatusCode, kind: &str, reason: &str) -> Response {
    (
        status,
        Json(json!({"error": {"type": kind, "reason": reason}, "status": status.as_u16()})),
    )
        .into_response()
}

enum BulkItem {
    /// A document to store: action name, index, the event.
    Doc(String, String, Box<Event>),
    /// An action Vigil does not do (delete, update) or a document that does not parse.
    Refused(String, String, StatusCode, String),
}

async fn bulk_impl(
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
    let parsed =
        tokio::task::spawn_blocking(move || parse_bulk(&body, default_index.as_deref(), &ctx))
            .await
            .unwrap_or_else(|_| Err("internal error".into()));
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
    let ranges = match store(&state, docs, "bulk", None).await {
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

fn parse_bulk(
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

async fn es_root(
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

// ---- ledger reads, metrics --------------------------------------------------------------------

async fn checkpoint(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, msg)) =
        authorize(&state, &headers, peer, "/api/v1/checkpoint", Need::Read).await
    {
        return error(status, msg);
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
    let pipeline = vigil_query::parse(text).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.message, "column": e.column, "status": 400})),
        )
            .into_response()
    })?;
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
async fn turn_then(
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
fn search_json(r: vigil_query::QueryResult, took_ms: u64) -> Vec<u8> {
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
struct SearchRequest {
    query: String,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

/// `POST /api/v1/search` `{query, from, to, limit}` → `{columns, rows, took_ms, scanned, truncated}`.
/// Each search is written to the ledger as an audit event with its query text.
async fn search(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let principal = match authorize(&state, &headers, peer, "/api/v1/search", Need::Read).await {
        Ok(p) => p,
        Err((status, msg)) => return error(status, msg),
    };
    let body = match body_bytes(&state, &headers, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let request: SearchRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"query\": …, \"from\", \"to\", \"limit\"}}: {e}"),
            );
        }
    };
    let (pipeline, limits) = match prepare_query(
        &request.query,
        request.from.as_deref(),
        request.to.as_deref(),
        request.limit.unwrap_or(1000),
    ) {
        Ok(q) => q,
        Err(r) => return r,
    };
    // Audited once the turn is granted: a refused (503) search writes no audit event, so
    // waiting requests cannot fill the ledger.
    let audit = || {
        let mut audit = crate::audit::by(
            "search",
            "database",
            "access",
            "success",
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
    let result = execute_query(&state, pipeline, limits).await;
    match result {
        Ok(Ok(r)) => {
            let took_ms = started.elapsed().as_millis() as u64;
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
struct ProofQuery {
    seq: u64,
}

async fn inclusion_proof(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<ProofQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, msg)) = authorize(
        &state,
        &headers,
        peer,
        "/api/v1/proof/inclusion",
        Need::Read,
    )
    .await
    {
        return error(status, msg);
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

/// The inclusion proof JSON of DESIGN §5, shared by the API and `vigil proof`.
pub fn proof_json(p: &vigil_ledger::InclusionProof) -> JsonValue {
    json!({
        "seq": p.seq,
        "leaf_index": p.seq,
        "tree_size": p.tree_size,
        "leaf": B64.encode(&p.leaf),
        "leaf_hash": hex(&p.leaf_hash),
        "proof": p.proof.iter().map(hex).collect::<Vec<_>>(),
        "checkpoint": p.checkpoint.note,
    })
}

/// Lower-case hex of a hash.
pub fn hex(h: &[u8; 32]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

async fn metrics(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, msg)) = authorize(&state, &headers, peer, "/metrics", Need::Read).await {
        return error(status, msg);
    }
    let ledger = state.ingest.ledger();
    let mut text = state.ingest.metrics.render(
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
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// `GET /healthz`: `ok` while Vigil can store events; 503
/// `{"status":"degraded","reason":"ledger: …"}` while the ledger cannot write (it retries by
/// itself and this turns back to `ok` once it can).
async fn health(State(state): State<Shared>) -> Response {
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

    #[tokio::test]
    async fn a_refused_turn_runs_nothing_and_a_granted_one_runs_its_audit_once() {
        let turns = Arc::new(tokio::sync::Semaphore::new(1));
        let held = Arc::clone(&turns).acquire_owned().await.unwrap();
        let mut audited = 0;
        let refused = turn_then(&turns, Duration::from_millis(20), || audited += 1).await;
        assert!(refused.is_none());
        assert_eq!(audited, 0, "a refused request is not audited");
        drop(held);
        let granted = turn_then(&turns, Duration::from_secs(10), || audited += 1).await;
        assert!(granted.is_some());
        assert_eq!(audited, 1);
    }

    fn ctx() -> ParseContext {
        ParseContext::new(Timestamp::from_secs(1_800_000_000), "t")
    }

    #[test]
    fn bulk_pairs_and_refusals() {
        let body = b"{\"index\":{\"_index\":\"logs\"}}\n{\"message\":\"a\",\"source\":{\"ip\":\"10.0.0.1\"}}\n{\"create\":{}}\n{\"message\":\"b\"}\n{\"delete\":{\"_id\":\"1\"}}\n{\"index\":{}}\nnot json\n";
        let items = parse_bulk(body, Some("dflt"), &ctx()).unwrap();
        assert_eq!(items.len(), 4);
        assert!(
            matches!(&items[0], BulkItem::Doc(a, i, e) if a == "index" && i == "logs" && e.get_str("message") == Some("a"))
        );
        assert!(matches!(&items[1], BulkItem::Doc(a, i, _) if a == "create" && i == "dflt"));
        assert!(matches!(&items[2], BulkItem::Refused(a, ..) if a == "delete"));
        assert!(matches!(&items[3], BulkItem::Refused(a, ..) if a == "index"));
        assert!(parse_bulk(b"garbage\n", None, &ctx()).is_err());
        assert!(parse_bulk(b"{\"index\":{}}\n", None, &ctx()).is_err());
    }

    #[test]
    fn hec_objects() {
        let obj = serde_json::json!({"time": 1_700_000_000.5, "host": "web1", "sourcetype": "access_combined",
            "event": "203.0.113.5 - - [22/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"x\"", "fields": {"env": "prod"}});
        let e = hec_event_to_event(obj.as_object().unwrap(), &ctx()).unwrap();
        assert_eq!(e.get_str("vigil.parser"), Some("combined"));
        assert_eq!(e.get_str("host.name"), Some("web1"));
        assert_eq!(e.get_str("env"), Some("prod"));
        // The access log's own time wins over HEC's time field.
        assert_eq!(e.timestamp().to_rfc3339(), "2026-11-22T10:00:00Z");
        let obj = serde_json::json!({"time": "1700000000", "event": {"action": "login"}});
        let e = hec_event_to_event(obj.as_object().unwrap(), &ctx()).unwrap();
        assert_eq!(e.timestamp().as_secs(), 1_700_000_000);
        assert_eq!(e.get_str("action"), Some("login"));
        assert!(
            hec_event_to_event(serde_json::json!({"time": 1}).as_object().unwrap(), &ctx())
                .is_err()
        );
    }

    #[test]
    fn tokens_from_every_header_shape() {
        let mut h = HeaderMap::new();
        for (value, expected) in [
            ("Bearer vgl_1_a".to_string(), Some("vgl_1_a")),
            ("Splunk vgl_1_b".to_string(), Some("vgl_1_b")),
            (
                format!("Basic {}", B64.encode("fluent:vgl_1_c")),
                Some("vgl_1_c"),
            ),
            (
                format!("ApiKey {}", B64.encode("id:vgl_1_d")),
                Some("vgl_1_d"),
            ),
            ("Digest x".to_string(), None),
        ] {
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(presented_token(&h).as_deref(), expected);
        }
    }
}

// ---- alerts and rules -------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct AlertQuery {
    status: Option<String>,
    rule: Option<String>,
    level: Option<String>,
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
    limit: Option<usize>,
}

fn alert_json(a: &vigil_detect::alert::Alert) -> JsonValue {
    let iso = |t: Timestamp| t.to_rfc3339();
    json!({
        "id": a.id,
        "rule": {"id": a.rule.id, "title": a.rule.title, "level": a.rule.level.as_str(), "tags": a.rule.tags},
        "attack": a.rule.tags.iter().filter_map(|t| t.strip_prefix("attack.")).collect::<Vec<_>>(),
        "group": a.group.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "group_key": a.group_key(),
        "count": a.count,
        "first_seen": iso(a.first_seen),
        "last_seen": iso(a.last_seen),
        "samples": a.samples,
        "status": a.status.as_str(),
        "history": a.history.iter().map(|t| json!({"status": t.status.as_str(), "by": t.by, "at": iso(t.at), "comment": t.comment})).collect::<Vec<_>>(),
        "created": iso(a.created),
    })
}

async fn list_alerts(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<AlertQuery>,
) -> Response {
    if let Err((status, msg)) =
        authorize(&state, &headers, peer, "/api/v1/alerts", Need::Read).await
    {
        return error(status, msg);
    }
    let Some(detect) = state.detect.clone() else {
        return Json(
            json!({"alerts": [], "message": "detection is off: start serve with --rules DIR"}),
        )
        .into_response();
    };
    let now = Timestamp::now();
    let mut filter = vigil_detect::alert::AlertFilter {
        rule: q.rule.clone(),
        ..Default::default()
    };
    if let Some(s) = &q.status {
        match vigil_detect::alert::Status::parse(s) {
            Some(s) => filter.status = Some(s),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("status {s:?}: use open, acknowledged or closed"),
                );
            }
        }
    }
    if let Some(l) = &q.level {
        filter.min_level = Some(vigil_detect::alert::Level::parse(l));
    }
    match (
        crate::search::resolve_time(q.from.as_deref(), now),
        crate::search::resolve_time(q.to.as_deref(), now),
    ) {
        (Ok(from), Ok(to)) => {
            filter.since = from;
            filter.until = to;
        }
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    }
    let ocsf = q.format.as_deref() == Some("ocsf");
    let limit = q.limit.unwrap_or(500).min(10_000);
    let (alerts, total): (Vec<JsonValue>, usize) = detect.with_book(|book| {
        let matching = book.list(&filter);
        let total = matching.len();
        let page = matching
            .into_iter()
            .take(limit)
            .map(|a| if ocsf { a.to_ocsf() } else { alert_json(a) })
            .collect();
        (page, total)
    });
    Json(json!({"alerts": alerts, "total": total})).into_response()
}

async fn get_alert(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Query(q): Query<AlertQuery>,
) -> Response {
    if let Err((status, msg)) =
        authorize(&state, &headers, peer, "/api/v1/alerts/{id}", Need::Read).await
    {
        return error(status, msg);
    }
    let Some(detect) = state.detect.clone() else {
        return error(StatusCode::NOT_FOUND, "detection is off");
    };
    let ocsf = q.format.as_deref() == Some("ocsf");
    let found = detect.with_book(|b| {
        b.get(id).map(|a| {
            let body = if ocsf { a.to_ocsf() } else { alert_json(a) };
            (body, a.samples.clone())
        })
    });
    let Some((mut body, samples)) = found else {
        return error(StatusCode::NOT_FOUND, format!("no alert {id}"));
    };
    if !ocsf {
        // The matching events themselves, read from the ledger by sequence number.
        let dir = state.data_dir.clone();
        let events = tokio::task::spawn_blocking(move || {
            let Ok(mut reader) = vigil_ledger::LedgerReader::open(&dir) else {
                return Vec::new();
            };
            samples
                .iter()
                .take(100)
                .filter_map(|&seq| {
                    let event = reader.read_event(seq).ok()?;
                    let mut json = event.to_json();
                    json["vigil.seq"] = json!(seq);
                    Some(json)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        body["events"] = JsonValue::Array(events);
    }
    Json(body).into_response()
}

#[derive(Deserialize)]
struct TriageRequest {
    status: String,
    #[serde(default)]
    comment: String,
}

async fn triage_alert(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let principal =
        match authorize(&state, &headers, peer, "/api/v1/alerts/{id}", Need::Triage).await {
            Ok(p) => p,
            Err((status, msg)) => return error(status, msg),
        };
    let Some(detect) = state.detect.clone() else {
        return error(StatusCode::NOT_FOUND, "detection is off");
    };
    let request: TriageRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected {{\"status\": \"acknowledged\"|\"closed\"|\"open\", \"comment\": …}}: {e}"
                ),
            );
        }
    };
    let Some(status) = vigil_detect::alert::Status::parse(&request.status) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "status {:?}: use open, acknowledged or closed",
                request.status
            ),
        );
    };
    if request.comment.len() > 4096 {
        return error(StatusCode::BAD_REQUEST, "comment longer than 4096 bytes");
    }
    let change = vigil_detect::alert::Triage {
        status,
        by: principal.name.clone(),
        at: Timestamp::now(),
        comment: request.comment.clone(),
    };
    match tokio::task::spawn_blocking(move || detect.triage(id, change)).await {
        Ok(Ok(alert)) => {
            let mut e = crate::audit::by(
                "alert_triage",
                "configuration",
                "change",
                "success",
                &principal.name,
                Some(peer.ip()),
            );
            e.insert("vigil.alert.id", id as i64);
            e.insert("vigil.alert.status", status.as_str());
            e.insert("rule.name", alert.rule.title.as_str());
            if !request.comment.is_empty() {
                e.insert("vigil.alert.comment", request.comment.as_str());
            }
            e.insert(
                "message",
                format!("{} set alert {id} to {}", principal.name, status.as_str()),
            );
            crate::audit::append(&state.ingest, e);
            Json(alert_json(&alert)).into_response()
        }
        Ok(Err(e)) if e.starts_with("no alert") => error(StatusCode::NOT_FOUND, e),
        Ok(Err(e)) => error(StatusCode::CONFLICT, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn list_rules(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, msg)) = authorize(&state, &headers, peer, "/api/v1/rules", Need::Read).await
    {
        return error(status, msg);
    }
    let Some(detect) = state.detect.clone() else {
        return Json(json!({"rules": [], "issues": [], "message": "detection is off: start serve with --rules DIR"})).into_response();
    };
    let rules = detect.rules();
    let fired = detect.last_fired();
    let list: Vec<JsonValue> = rules
        .set
        .rules()
        .map(|(_, info)| {
            let r = crate::detect::alert_rule(&info.meta);
            json!({
                "id": r.id,
                "title": r.title,
                "level": r.level.as_str(),
                "tags": r.tags,
                "kind": "detection",
                "source": info.meta.source,
                "status": "loaded",
                "notes": info.notes,
                "last_fired": fired.get(&r.id).map(|t| t.to_rfc3339()),
            })
        })
        .chain(rules.set.correlations().iter().map(|c| {
            // Correlations too: their type, the rules they reference (as written) and the
            // notes Vigil has about them.
            let r = crate::detect::alert_rule(&c.rule.meta);
            let notes: Vec<&str> = rules
                .issues
                .iter()
                .filter(|i| match &i.id {
                    Some(id) => *id == r.id,
                    None => i.title == r.title,
                })
                .map(|i| i.reason.as_str())
                .collect();
            json!({
                "id": r.id,
                "title": r.title,
                "level": r.level.as_str(),
                "tags": r.tags,
                "kind": "correlation",
                "correlation": {
                    "type": c.rule.kind,
                    "rules": c.rule.rules,
                    "group_by": c.rule.group_by,
                    "timespan_secs": c.rule.timespan_ns / 1_000_000_000,
                },
                "source": c.rule.meta.source,
                "status": "loaded",
                "notes": notes,
                "last_fired": fired.get(&r.id).map(|t| t.to_rfc3339()),
            })
        }))
        .collect();
    let issues: Vec<JsonValue> = rules
        .issues
        .iter()
        .map(|i| json!({"title": i.title, "id": i.id, "source": i.source, "kind": i.kind, "reason": i.reason}))
        .chain(rules.file_errors.iter().map(|(p, e)| json!({"source": p.display().to_string(), "kind": "unsupported", "reason": e})))
        .collect();
    Json(json!({"rules": list, "issues": issues, "loaded_at": rules.loaded_at.to_rfc3339()}))
        .into_response()
}

// ---- ban decisions -----------------------------------------------------------------------------

async fn list_decisions(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, msg)) =
        authorize(&state, &headers, peer, "/api/v1/decisions", Need::Read).await
    {
        return error(status, msg);
    }
    let now = Timestamp::now();
    let list: Vec<JsonValue> = state
        .decisions
        .read(|b| b.active(now).into_iter().map(|d| d.to_json()).collect());
    Json(json!({ "decisions": list })).into_response()
}

#[derive(Deserialize)]
struct BanRequest {
    value: String,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

async fn add_decision(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let principal = match authorize(&state, &headers, peer, "/api/v1/decisions", Need::Ban).await {
        Ok(p) => p,
        Err((status, msg)) => return error(status, msg),
    };
    let request: BanRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected {{\"value\": \"203.0.113.5\", \"duration\": \"4h\", \"reason\": …}}: {e}"
                ),
            );
        }
    };
    let duration = match vigil_ledger::retention::parse_duration(
        request.duration.as_deref().unwrap_or("4h"),
    ) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => return error(StatusCode::BAD_REQUEST, "duration must be more than zero"),
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let reason = request.reason.unwrap_or_else(|| "manual".into());
    let decisions = Arc::clone(&state.decisions);
    let by = principal.name.clone();
    match tokio::task::spawn_blocking(move || {
        decisions.ban_by_hand(&request.value, duration, &reason, &by)
    })
    .await
    {
        Ok(Ok(d)) => (StatusCode::CREATED, Json(d.to_json())).into_response(),
        Ok(Err(e)) => error(StatusCode::CONFLICT, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn delete_decision(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    let principal =
        match authorize(&state, &headers, peer, "/api/v1/decisions/{id}", Need::Ban).await {
            Ok(p) => p,
            Err((status, msg)) => return error(status, msg),
        };
    let decisions = Arc::clone(&state.decisions);
    match tokio::task::spawn_blocking(move || decisions.unban(id, &principal.name)).await {
        Ok(Ok(d)) => Json(d.to_json()).into_response(),
        Ok(Err(e)) => error(StatusCode::NOT_FOUND, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// CrowdSec bouncers authenticate with `X-Api-Key`; a missing or wrong key is 403 (as the LAPI
/// answers) and audited.
async fn authorize_bouncer(
    state: &Shared,
    headers: &HeaderMap,
    peer: SocketAddr,
    path: &str,
) -> Result<Principal, Response> {
    // Refusals that cost nothing (no key, a key of another role) are audited within the
    // per-address quota like every other route's, so a flood of them cannot fill the ledger.
    let forbidden = |reason: &str| {
        audit_anonymous_failure(state, peer, path, reason);
        (
            StatusCode::FORBIDDEN,
            Json(json!({"message": "access forbidden"})),
        )
            .into_response()
    };
    let Some(key) = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
    else {
        return Err(forbidden("missing bouncer API key"));
    };
    let refused = || {
        (
            StatusCode::FORBIDDEN,
            Json(json!({"message": "access forbidden"})),
        )
            .into_response()
    };
    match verify_token(state, key, peer, path).await {
        Ok(p) if p.role.can_bounce() => Ok(p),
        Ok(_) => Err(forbidden("not a bouncer key")),
        // verify_token has audited the failure (or refused a flood without auditing).
        Err(_) => Err(refused()),
    }
}

#[derive(Deserialize)]
struct StreamQuery {
    #[serde(default)]
    startup: Option<String>,
}

async fn bouncer_stream(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Response {
    let bouncer = match authorize_bouncer(&state, &headers, peer, "/v1/decisions/stream").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let now = Timestamp::now();
    let startup = q.startup.as_deref() == Some("true");
    let since = {
        let mut polls = state
            .bouncer_polls
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let last = polls.insert(bouncer.id.clone(), now);
        if startup { None } else { last }
    };
    let (new, deleted): (Vec<JsonValue>, Vec<JsonValue>) = state.decisions.read(|b| {
        let (new, deleted) = b.stream(since, now);
        (
            new.into_iter().map(|d| d.to_lapi(now)).collect(),
            deleted.into_iter().map(|d| d.to_lapi(now)).collect(),
        )
    });
    Json(json!({ "new": new, "deleted": deleted })).into_response()
}

#[derive(Deserialize)]
struct DecisionsQuery {
    ip: Option<String>,
}

async fn bouncer_decisions(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<DecisionsQuery>,
) -> Response {
    if let Err(r) = authorize_bouncer(&state, &headers, peer, "/v1/decisions").await {
        return r;
    }
    let now = Timestamp::now();
    let Some(ip) = q.ip.as_deref() else {
        let all: Vec<JsonValue> = state
            .decisions
            .read(|b| b.active(now).into_iter().map(|d| d.to_lapi(now)).collect());
        return Json(all).into_response();
    };
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("ip {ip:?}: not an address"),
        );
    };
    let found: Vec<JsonValue> = state.decisions.read(|b| {
        b.covering(ip, now)
            .into_iter()
            .map(|d| d.to_lapi(now))
            .collect()
    });
    if found.is_empty() {
        // The LAPI answers `null` when nothing matches.
        return Json(JsonValue::Null).into_response();
    }
    Json(found).into_response()
}
