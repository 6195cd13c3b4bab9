//! The web UI: login and sessions, the embedded single-page application, and the API routes
//! only the UI needs (integrity, sources, export).
//!
//! The UI's files live in `crates/vigil-server/ui/` and are compiled into the binary, so
//! `cargo build` needs no Node toolchain. Every response carries a strict Content-Security-Policy
//! (no inline script or style) and the usual hardening headers ([`security_headers`]).
//! Cookie-authenticated requests that change state must carry the session's CSRF token in
//! `X-CSRF-Token` ([`csrf_guard`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use vigil_event::{Timestamp, Value};

use crate::audit;
use crate::http::{AppState, Caller, error};
use crate::session::{COOKIE, SessionStore};

type Shared = Arc<AppState>;

const LOGIN_HTML: &str = include_str!("../ui/login.html");
const INDEX_HTML: &str = include_str!("../ui/index.html");
const LOGIN_JS: &str = include_str!("../ui/login.js");
const APP_JS: &str = include_str!("../ui/app.js");
const VIGIL_CSS: &str = include_str!("../ui/vigil.css");

/// The Content-Security-Policy of every response: nothing inline, nothing from elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The UI's routes, merged into the API router.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/login", get(login_page))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(app_page))
        .route("/assets/login.js", get(login_js))
        .route("/assets/vigil.css", get(vigil_css))
        .route("/assets/app.js", get(app_js))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/session", get(session))
        .route("/api/v1/integrity", get(integrity))
        .route("/api/v1/integrity/verify", post(run_verification))
        .route("/api/v1/key", get(verifier_key))
        .route("/api/v1/sources", get(sources))
        .route("/api/v1/export", get(export))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The session cookie's value, if the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=')
                && name == COOKIE
            {
                return Some(value.to_owned());
            }
        }
    }
    None
}

async fn login_page() -> Response {
    asset("text/html; charset=utf-8", LOGIN_HTML)
}

async fn login_js() -> Response {
    asset("text/javascript; charset=utf-8", LOGIN_JS)
}

async fn vigil_css() -> Response {
    asset("text/css; charset=utf-8", VIGIL_CSS)
}

/// The live session behind the request's cookie, if any.
pub(crate) fn live_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Option<crate::session::SessionView> {
    session_cookie(headers).and_then(|c| state.sessions.lookup(&c))
}

/// The UI shell: the route guard has sent browsers without a session to the login page and
/// refused sessions whose role cannot read.
async fn app_page() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

// ---- login, logout, session --------------------------------------------------------------------

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
}

/// The `Set-Cookie` value of a session cookie (an empty value with `Max-Age=0` clears it).
pub(crate) fn cookie_header(state: &AppState, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut cookie = format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict");
    if state.tls {
        cookie.push_str("; Secure");
    }
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&cookie).expect("cookie text is ASCII")
}

/// `POST /api/v1/login` `{username, password}` (JSON only: a cross-site form cannot send it
/// without a CORS preflight, which Vigil never grants).
async fn login(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_body {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send {\"username\", \"password\"} as application/json",
        );
    }
    let request: LoginRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "expected {\"username\": …, \"password\": …}",
            );
        }
    };
    let ip = peer.ip();
    let name: String = request.username.chars().take(128).collect();
    if let Err(wait) = state.login_limiter.check(ip) {
        if crate::http::audit_quota(&state, ip) {
            audit_login_failure(
                &state,
                &name,
                ip,
                "rate limited",
                format!("Vigil login refused for {name} from {ip}: too many failed logins"),
            );
        }
        return too_many_failures(
            "too many failed logins from this address",
            wait.retry_after_secs,
        );
    }
    if let Err(wait) = state.account_limiter.check(&name, ip) {
        if crate::http::audit_quota(&state, ip) {
            audit_login_failure(
                &state,
                &name,
                ip,
                "account rate limited",
                format!(
                    "Vigil login refused for {name} from {ip}: too many failed logins for this account"
                ),
            );
        }
        return too_many_failures(
            "too many failed logins for this account",
            wait.retry_after_secs,
        );
    }
    let sessions = Arc::clone(&state.sessions);
    let (user_name, password) = (name.clone(), request.password);
    let verified = tokio::task::spawn_blocking(move || {
        crate::users::verify_login(&sessions.users_for(&user_name), &user_name, &password)
    })
    .await
    .ok()
    .flatten();
    let Some(user) = verified else {
        state.login_limiter.failed(ip);
        state.account_limiter.failed(&name);
        state
            .ingest
            .metrics
            .auth_failures
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%ip, user = %name, "login failed");
        audit_login_failure(
            &state,
            &name,
            ip,
            "wrong user name or password",
            format!("Vigil login failed for {name} from {ip}"),
        );
        return error(StatusCode::UNAUTHORIZED, "wrong user name or password");
    };
    state.login_limiter.succeeded(ip);
    state.account_limiter.succeeded(&name, ip);
    tracing::info!(%ip, user = %user.name, "login");
    let mut e = audit::by(
        "login_success",
        vigil_event::Category::Authentication,
        vigil_event::EventType::Start,
        vigil_event::Outcome::Success,
        &user.name,
        Some(ip),
    );
    e.insert("user.roles", user.role.name());
    e.insert("message", format!("Vigil login of {} from {ip}", user.name));
    audit::append(&state.ingest, e);
    start_session(&state, &user)
}

/// 429 with `Retry-After` for an attempt refused by a failure limiter (`what` says which).
pub(crate) fn too_many_failures(what: &str, wait: u64) -> Response {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        format!("{what}; try again in {wait} s"),
    );
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&wait.to_string()).expect("digits"),
    );
    r
}

/// Starts a session for a verified user: the cookie, and `{user, role, csrf, expires}`.
pub(crate) fn start_session(state: &AppState, user: &crate::users::User) -> Response {
    let (cookie, view) = state.sessions.create(user);
    let mut r = Json(view.to_json()).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie_header(state, &cookie, None));
    r
}

fn audit_login_failure(
    state: &AppState,
    name: &str,
    ip: std::net::IpAddr,
    reason: &str,
    message: String,
) {
    let mut e = audit::by(
        "login_failure",
        vigil_event::Category::Authentication,
        vigil_event::EventType::Start,
        vigil_event::Outcome::Failure,
        name,
        Some(ip),
    );
    e.insert("event.reason", reason);
    e.insert("message", message);
    audit::append(&state.ingest, e);
}

async fn logout(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    // The CSRF guard has checked the token already when a live session is presented.
    let Some(cookie) = session_cookie(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "not logged in");
    };
    let Some(user) = state.sessions.remove(&cookie) else {
        return error(StatusCode::UNAUTHORIZED, "not logged in");
    };
    let mut e = audit::by(
        "logout",
        vigil_event::Category::Authentication,
        vigil_event::EventType::End,
        vigil_event::Outcome::Success,
        &user,
        Some(peer.ip()),
    );
    e.insert("message", format!("Vigil logout of {user}"));
    audit::append(&state.ingest, e);
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie_header(&state, "", Some(0)));
    r
}

/// `GET /api/v1/session`: the route guard has found the live session (or answered 401).
async fn session(Caller { session, .. }: Caller) -> Response {
    match session {
        Some(v) => Json(v.to_json()).into_response(),
        None => error(StatusCode::UNAUTHORIZED, "not logged in"),
    }
}

/// Rejects requests that change state and carry a live session cookie without the session's
/// CSRF token. Requests without a live session (API tokens, bouncer keys) need none: nothing a
/// browser sends on its own authenticates them. Any other header (`Authorization`,
/// `X-Api-Key`, valid or not) never exempts a request whose cookie is a live session, since
/// some routes act on the session whatever else is sent.
pub async fn csrf_guard(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let headers = request.headers();
    if safe || request.uri().path() == "/api/v1/login" {
        return next.run(request).await;
    }
    if let Some(view) = live_session(&state, headers) {
        let presented = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !SessionStore::csrf_matches(&view, presented) {
            state.ingest.metrics.http_rejected.add("csrf", 1);
            return error(StatusCode::FORBIDDEN, "missing or wrong CSRF token");
        }
    }
    next.run(request).await
}

/// Adds the Content-Security-Policy and hardening headers to every response.
pub async fn security_headers(
    State(state): State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

// ---- integrity ---------------------------------------------------------------------------------

async fn integrity(
    State(state): State<Shared>,
    Query(q): Query<crate::cluster::integrity::ShardParam>,
) -> Response {
    if let Some(cluster) = &state.cluster {
        return crate::cluster::integrity::integrity_route(cluster, q.shard).await;
    }
    let dir = state.data_dir.clone();
    let read = tokio::task::spawn_blocking(move || {
        let paths = vigil_ledger::LedgerPaths::new(&dir);
        let key = vigil_ledger::load_verifier(&paths).map(|v| v.to_vkey());
        let latest = vigil_ledger::read_checkpoints(&paths).map(|mut c| c.pop());
        (key, latest)
    })
    .await;
    let (key, latest) = match read {
        Ok((Ok(key), Ok(latest))) => (key, latest),
        Ok((Err(e), _)) | Ok((_, Err(e))) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let time = latest.as_ref().and_then(|c| {
        c.checkpoint
            .extensions
            .iter()
            .find_map(|x| x.strip_prefix("time ").map(str::to_owned))
    });
    let last = state.last_verification.lock().ok().and_then(|v| v.clone());
    Json(json!({
        "checkpoint": latest.as_ref().map(|c| c.note.clone()),
        "tree_size": latest.as_ref().map(|c| c.checkpoint.size),
        "checkpoint_time": time,
        "key": key,
        "events": state.ingest.ledger().end_seq(),
        "last_verification": last,
        "run": state.run.clone(),
    }))
    .into_response()
}

/// The one verification (or report) that may run at a time: taken by [`VerifyTurn::take`],
/// given back when dropped. Moved into the blocking work, so it is given back when the work
/// ends — whether or not the client is still there: an aborted request neither locks the
/// next one out nor lets a second full read run beside the first.
pub(crate) struct VerifyTurn(Shared);

impl VerifyTurn {
    /// The turn, or `None` while another verification or report runs.
    pub(crate) fn take(state: &Shared) -> Option<VerifyTurn> {
        (!state.verifying.swap(true, Ordering::SeqCst)).then(|| VerifyTurn(Arc::clone(state)))
    }
}

impl Drop for VerifyTurn {
    fn drop(&mut self) {
        self.0.verifying.store(false, Ordering::SeqCst);
    }
}

/// `POST /api/v1/integrity/verify`: recomputes the whole ledger as `vigil verify` does (on a
/// cluster node, `?shard=` names the shard its owner verifies).
async fn run_verification(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<crate::cluster::integrity::ShardParam>,
) -> Response {
    if let Some(cluster) = &state.cluster {
        let ingest = &state.ingest;
        return crate::cluster::verify::route(cluster, ingest, q.shard, &principal.name, peer.ip())
            .await;
    }
    let Some(turn) = VerifyTurn::take(&state) else {
        return error(
            StatusCode::CONFLICT,
            "a verification is running; its result will show here when it ends",
        );
    };
    let dir = state.data_dir.clone();
    let report = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        vigil_ledger::verify(
            &dir,
            &vigil_ledger::VerifyOptions::default(),
            &mut |_, _| {},
        )
    })
    .await;
    let (ok, events, message) = match report {
        Ok(report) => crate::cluster::verify::summarize(report),
        Err(e) => (false, 0, e.to_string()),
    };
    let result = json!({
        "ok": ok,
        "at": Timestamp::now().to_rfc3339(),
        "by": principal.name,
        "events": events,
        "message": message,
    });
    if let Ok(mut last) = state.last_verification.lock() {
        *last = Some(result.clone());
    }
    let mut e = audit::by(
        vigil_report::tally::VERIFY_ACTION,
        vigil_event::Category::Configuration,
        vigil_event::EventType::Info,
        if ok {
            vigil_event::Outcome::Success
        } else {
            vigil_event::Outcome::Failure
        },
        &principal.name,
        Some(peer.ip()),
    );
    e.insert("message", format!("ledger verification: {message}"));
    audit::append(&state.ingest, e);
    Json(result).into_response()
}

async fn verifier_key(State(state): State<Shared>) -> Response {
    match vigil_ledger::load_verifier(&vigil_ledger::LedgerPaths::new(&state.data_dir)) {
        Ok(v) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", v.to_vkey()),
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

// ---- sources -----------------------------------------------------------------------------------

async fn sources(State(state): State<Shared>) -> Response {
    let list: Vec<JsonValue> = state
        .ingest
        .metrics
        .sources
        .snapshot()
        .into_iter()
        .map(|s| {
            json!({
                "source": s.source,
                "events": s.events,
                "last_seen": s.last_seen.to_rfc3339(),
                "per_minute": s.per_minute,
            })
        })
        .collect();
    Json(json!({"sources": list})).into_response()
}

// ---- export ------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ExportQuery {
    query: String,
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
    limit: Option<usize>,
}

fn csv_field(v: &JsonValue) -> String {
    let text = match v {
        JsonValue::Null => String::new(),
        JsonValue::String(s) => s.clone(),
        other => other.to_string(),
    };
    // Cells a spreadsheet would run as formulas (OWASP: starting with = + - @ tab or carriage
    // return) are quoted with a leading apostrophe (the `@timestamp` column name is Vigil's own
    // and stays as it is).
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']) && text != "@timestamp";
    let text = if formula && text.parse::<f64>().is_err() {
        format!("'{text}")
    } else {
        text
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// `GET /api/v1/export?query=…&from=…&to=…&format=csv|ndjson`: a query's results as a file.
/// Every export is audited with its query. On a cluster node the query fans out to every
/// shard's owner as a search does; shards that did not answer are named in the
/// `x-vigil-missing-shards` header (and the `x-vigil-truncated` message).
async fn export(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<ExportQuery>,
) -> Response {
    let csv = match q.format.as_deref().unwrap_or("csv") {
        "csv" => true,
        "ndjson" | "json" => false,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("format {other:?}: use csv or ndjson"),
            );
        }
    };
    let (pipeline, limits) = match crate::http::prepare_query(
        &q.query,
        q.from.as_deref(),
        q.to.as_deref(),
        q.limit.unwrap_or(10_000),
    ) {
        Ok(p) => p,
        Err(r) => return r,
    };
    // Audited once the turn is granted: a refused (503) export writes no audit event, so
    // waiting requests cannot fill the ledger.
    let audit = || {
        let mut e = audit::by(
            "export",
            vigil_event::Category::Database,
            vigil_event::EventType::Access,
            vigil_event::Outcome::Success,
            &principal.name,
            Some(peer.ip()),
        );
        e.insert("vigil.query", q.query.as_str());
        e.insert("file.type", if csv { "csv" } else { "ndjson" });
        audit::append(&state.ingest, e);
    };
    let turn = match crate::http::search_turn(&state, audit).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let result = match &state.cluster {
        // Cluster mode: every shard's owner answers for it, merged here (as a search).
        Some(cluster) => Ok(crate::cluster::query::search(cluster, &q.query, limits)
            .await
            .map_err(|e| e.to_string())),
        None => crate::http::execute_query(&state, pipeline, limits).await,
    };
    // The rows are in memory now (bounded by the query memory limit): give the turn back before
    // streaming, so clients that never read cannot hold every turn and lock search out.
    drop(turn);
    let r = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let (content_type, name) = if csv {
        ("text/csv; charset=utf-8", "vigil-export.csv")
    } else {
        ("application/x-ndjson", "vigil-export.ndjson")
    };
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        );
    if let Some(message) = &r.message {
        // A cut export says so where a script sees it without reading the file.
        let ascii: String = message
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        response = response.header("x-vigil-truncated", ascii);
    }
    if !r.missing_shards.is_empty() {
        let names = r.missing_shards.join(",");
        response = response.header("x-vigil-missing-shards", names);
    }
    let chunks = ExportChunks {
        columns: r.columns,
        rows: r.rows.into_iter(),
        csv,
        started: false,
    };
    response
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// An export written as it is sent, about 64 KiB at a time, each row freed once written. It
/// holds no search turn: a slow reader delays only itself.
struct ExportChunks {
    columns: Vec<String>,
    rows: std::vec::IntoIter<Vec<Value>>,
    csv: bool,
    /// Whether the first chunk (with the CSV header) went out.
    started: bool,
}

impl Iterator for ExportChunks {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn next(&mut self) -> Option<Self::Item> {
        const CHUNK: usize = 64 * 1024;
        let mut out = String::new();
        if !self.started && self.csv {
            let names: Vec<String> = self
                .columns
                .iter()
                .map(|c| csv_field(&JsonValue::String(c.clone())))
                .collect();
            out.push_str(&names.join(","));
            out.push_str("\r\n");
        }
        self.started = true;
        while out.len() < CHUNK {
            let Some(row) = self.rows.next() else { break };
            if self.csv {
                let cells: Vec<String> =
                    row.iter().map(|v| csv_field(&Value::to_json(v))).collect();
                out.push_str(&cells.join(","));
                out.push_str("\r\n");
            } else {
                let object: serde_json::Map<String, JsonValue> = self
                    .columns
                    .iter()
                    .zip(row)
                    .filter(|(_, v)| !matches!(v, Value::Null))
                    .map(|(c, v)| (c.clone(), v.to_json()))
                    .collect();
                out.push_str(&JsonValue::Object(object).to_string());
                out.push('\n');
            }
        }
        (!out.is_empty()).then(|| Ok(Bytes::from(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_never_formulas() {
        assert_eq!(csv_field(&json!("@timestamp")), "@timestamp");
        assert_eq!(
            csv_field(&json!("=HYPERLINK(\"x\")")),
            "\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert_eq!(csv_field(&json!("@SUM(A1)")), "'@SUM(A1)");
        assert_eq!(csv_field(&json!(-5)), "-5");
        assert_eq!(csv_field(&json!("a,b")), "\"a,b\"");
        assert_eq!(csv_field(&json!("\t=1+1")), "'\t=1+1");
        assert_eq!(csv_field(&json!("\r=1+1")), "\"'\r=1+1\"");
        assert_eq!(csv_field(&JsonValue::Null), "");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; vigil_session=abc; x=y"),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        h.insert(header::COOKIE, HeaderValue::from_static("vigil_sessionx=1"));
        assert_eq!(session_cookie(&h), None);
    }
}
