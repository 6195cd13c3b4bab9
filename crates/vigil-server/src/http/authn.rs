//! Who is calling: the token or session behind a request, its role, and the audit of refusals.

#[allow(unused_imports)]
use super::*;

// ---- errors and auth ------------------------------------------------------------------------

/// A JSON error answer `{"error", "status"}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": message.into(), "status": status.as_u16()})),
    )
        .into_response()
}

pub(super) fn too_many(state: &AppState, message: &str) -> Response {
    state.ingest.metrics.http_rejected.add("overloaded", 1);
    let mut r = error(StatusCode::TOO_MANY_REQUESTS, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

pub(super) fn ingest_failure(state: &AppState, e: IngestError) -> Response {
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
pub(super) fn presented_token(headers: &HeaderMap) -> Option<String> {
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
pub(super) async fn verify_token(
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
pub(super) fn audit_anonymous_failure(state: &Shared, peer: SocketAddr, path: &str, reason: &str) {
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

pub(super) fn audit_auth_failure(state: &Shared, peer: SocketAddr, path: &str, reason: &str) {
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
