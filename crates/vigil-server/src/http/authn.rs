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

/// Who is calling a route, as [`route_guard`] established it from the role table
/// ([`vigil_auth::ROUTES`]). A handler that needs its caller takes it as an extractor
/// (`Caller { principal, .. }: Caller`); the guard has already refused every caller the table
/// does not allow, so handlers check nothing themselves.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's identity, or the session's user (with id `"session"`).
    pub principal: Principal,
    /// The browser session, when the caller is one.
    pub session: Option<crate::session::SessionView>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            // Only a handler of a public route (or one outside the guard) gets here.
            tracing::error!(path = %parts.uri.path(), "a handler asked for a caller the route guard did not establish");
            error(StatusCode::INTERNAL_SERVER_ERROR, "no authenticated caller for this route")
        })
    }
}

/// How a family of routes words a refusal: Vigil's JSON, Splunk HEC's codes, Elasticsearch's
/// `security_exception`, or the CrowdSec LAPI's `{"message"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Vigil,
    Hec,
    Elastic,
    CrowdSec,
}

impl Dialect {
    fn of(route: &RouteAccess) -> Dialect {
        if route.access == Access::Bouncer {
            Dialect::CrowdSec
        } else if route.path.starts_with("/services/collector") {
            Dialect::Hec
        } else if route.path.ends_with("/_bulk") || route.path == "/" {
            Dialect::Elastic
        } else {
            Dialect::Vigil
        }
    }

    fn refuse(self, headers: &HeaderMap, status: StatusCode, message: &str) -> Response {
        match self {
            Dialect::Vigil => error(status, message),
            Dialect::Hec
                if status == StatusCode::UNAUTHORIZED && presented_token(headers).is_none() =>
            {
                hec(StatusCode::UNAUTHORIZED, "Token is required", 2)
            }
            Dialect::Hec => hec_auth_error(status),
            Dialect::Elastic => es_error(status, "security_exception", message),
            Dialect::CrowdSec => (
                StatusCode::FORBIDDEN,
                Json(json!({"message": "access forbidden"})),
            )
                .into_response(),
        }
    }
}

/// Deny by default: for the matched route (path template and method; `HEAD` as `GET`), finds
/// what [`vigil_auth::ROUTES`] asks and hands it on to [`route_guard`]; a route missing from the
/// table is refused with 403, a method the table does not list for a listed path with 405.
/// Installed with `Router::route_layer` outside [`route_guard`], so unmatched paths still get
/// 404.
pub(crate) async fn listed_routes_only(
    matched: Option<axum::extract::MatchedPath>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().as_str();
    let path = matched.as_ref().map_or("", |m| m.as_str());
    let Some(route) = vigil_auth::access::lookup(method, path) else {
        // The router wraps its own 405 answer in this layer too: a method the table does not
        // list for a listed path stays a 405, whether or not the router has a handler for it.
        if vigil_auth::ROUTES.iter().any(|r| r.path == path) {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {path}"),
            );
        }
        tracing::error!(
            method,
            path,
            "a routed path is not in the role table: refused"
        );
        return error(StatusCode::FORBIDDEN, "this route is not in the role table");
    };
    request.extensions_mut().insert(route);
    next.run(request).await
}

/// The role table enforced: for the route [`listed_routes_only`] found, authenticates the
/// caller (token or browser session, with the limiters and the audit of failures), refuses in
/// the route's own dialect, and hands the handler a [`Caller`].
pub(crate) async fn route_guard(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(route) = request.extensions().get::<&'static RouteAccess>().copied() else {
        // Only a router built without `listed_routes_only` gets here: refuse, never serve.
        tracing::error!(path = %request.uri().path(), "the route guard runs without the role table's entry");
        return error(StatusCode::FORBIDDEN, "this route is not in the role table");
    };
    match authenticate(&state, request.headers(), peer, route).await {
        Ok(Some(caller)) => {
            if caller
                .session
                .as_ref()
                .is_some_and(|s| s.must_change_password)
                && !open_before_password_change(route)
            {
                state.ingest.metrics.http_rejected.add("forbidden", 1);
                return error(
                    StatusCode::FORBIDDEN,
                    "change the generated password first: POST /api/v1/password {\"current\", \"new\"}",
                );
            }
            request.extensions_mut().insert(caller);
        }
        Ok(None) => {}
        Err(refusal) => return refusal,
    }
    next.run(request).await
}

/// What a session whose password was generated (the first admin's) may use before changing
/// it: the login and session routes, the password change itself, and the UI that shows the
/// change form.
fn open_before_password_change(route: &RouteAccess) -> bool {
    matches!(
        route.access,
        Access::Public | Access::UiSession | Access::SessionOnly
    ) || route.path == "/assets/app.js"
}

/// What [`route_guard`] does for one route: `Ok(None)` for a route anyone may call.
async fn authenticate(
    state: &Shared,
    headers: &HeaderMap,
    peer: SocketAddr,
    route: &RouteAccess,
) -> Result<Option<Caller>, Response> {
    let dialect = Dialect::of(route);
    let session_caller = |view: crate::session::SessionView| Caller {
        principal: Principal {
            id: "session".into(),
            name: view.user.clone(),
            role: view.role,
        },
        session: Some(view),
    };
    match route.access {
        Access::Public => return Ok(None),
        Access::UiSession => {
            return match crate::web::live_session(state, headers) {
                Some(view) if view.role.can_read() => Ok(Some(session_caller(view))),
                Some(_) => Err(error(
                    StatusCode::FORBIDDEN,
                    "this account's role cannot use the web UI",
                )),
                None => Err(axum::response::Redirect::to("/login").into_response()),
            };
        }
        Access::SessionOnly => {
            return match crate::web::live_session(state, headers) {
                Some(view) => Ok(Some(session_caller(view))),
                None => Err(error(StatusCode::UNAUTHORIZED, "not logged in")),
            };
        }
        Access::Bouncer => return authenticate_bouncer(state, headers, peer, route.path).await,
        // A browser (no Authorization header) asking for `/` wants the web UI: the handler
        // redirects it.
        _ if route.path == "/" && !headers.contains_key(header::AUTHORIZATION) => return Ok(None),
        _ => {}
    }
    let (principal, session) = match presented_token(headers) {
        Some(token) => match verify_token(state, token, peer, route.path).await {
            Ok(p) => (p, None),
            Err(_) => {
                return Err(dialect.refuse(
                    headers,
                    StatusCode::UNAUTHORIZED,
                    "invalid or revoked token",
                ));
            }
        },
        None => match crate::web::session_cookie(headers) {
            Some(cookie) => match state.sessions.lookup(&cookie) {
                Some(view) => {
                    let caller = session_caller(view);
                    (caller.principal, caller.session)
                }
                None => {
                    audit_anonymous_failure(state, peer, route.path, "expired or unknown session");
                    return Err(dialect.refuse(
                        headers,
                        StatusCode::UNAUTHORIZED,
                        "the session has expired: log in again",
                    ));
                }
            },
            None => {
                audit_anonymous_failure(state, peer, route.path, "missing credentials");
                return Err(dialect.refuse(
                    headers,
                    StatusCode::UNAUTHORIZED,
                    "authentication required: send Authorization: Bearer <token>",
                ));
            }
        },
    };
    if !route.access.allows(principal.role) {
        state.ingest.metrics.http_rejected.add("forbidden", 1);
        return Err(dialect.refuse(
            headers,
            StatusCode::FORBIDDEN,
            "this token's role does not allow this",
        ));
    }
    Ok(Some(Caller { principal, session }))
}

/// CrowdSec bouncers authenticate with `X-Api-Key`; a missing or wrong key is 403 (as the LAPI
/// answers) and audited.
async fn authenticate_bouncer(
    state: &Shared,
    headers: &HeaderMap,
    peer: SocketAddr,
    path: &str,
) -> Result<Option<Caller>, Response> {
    let refused = || Dialect::CrowdSec.refuse(headers, StatusCode::FORBIDDEN, "");
    // Refusals that cost nothing (no key, a key of another role) are audited within the
    // per-address quota like every other route's, so a flood of them cannot fill the ledger.
    let forbidden = |reason: &str| {
        audit_anonymous_failure(state, peer, path, reason);
        refused()
    };
    let Some(key) = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
    else {
        return Err(forbidden("missing bouncer API key"));
    };
    match verify_token(state, key, peer, path).await {
        Ok(p) if Access::Bouncer.allows(p.role) => Ok(Some(Caller {
            principal: p,
            session: None,
        })),
        Ok(_) => Err(forbidden("not a bouncer key")),
        // verify_token has audited the failure (or refused a flood without auditing).
        Err(_) => Err(refused()),
    }
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
    let mut e = Event::audit_builder("api_auth_failure")
        .category(vigil_event::Category::Authentication)
        .event_type(vigil_event::EventType::Info)
        .outcome(vigil_event::Outcome::Failure)
        .build();
    e.insert("event.reason", reason);
    e.insert("source.ip", Value::Ip(peer.ip()));
    e.insert("url.path", path);
    e.insert(
        "message",
        format!("API authentication failed from {}: {reason}", peer.ip()),
    );
    crate::audit::append(&state.ingest, e);
}

#[cfg(test)]
mod tests {
    use vigil_auth::ROUTES;

    /// `(method, path)` of every `.route("PATH", get(..).post(..))` in a router source file.
    fn declared(source: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (at, _) in source.match_indices(".route(") {
            let rest = &source[at + 7..];
            let Some(open) = rest.find('"') else { continue };
            let Some(close) = rest[open + 1..].find('"') else {
                continue;
            };
            let path = &rest[open + 1..open + 1 + close];
            // The handler expression runs to the matching close parenthesis.
            let mut depth = 1;
            let mut end = 0;
            for (i, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let handlers = &rest[..end];
            for (method, marks) in [
                ("GET", ["get(", ".get("]),
                ("POST", ["post(", ".post("]),
                ("DELETE", ["delete(", ".delete("]),
            ] {
                if marks.iter().any(|m| handlers.contains(m)) {
                    out.push((method.to_owned(), path.to_owned()));
                }
            }
        }
        out
    }

    #[test]
    fn every_declared_route_is_in_the_role_table() {
        let mut routes = declared(include_str!("mod.rs"));
        routes.extend(declared(include_str!("../web.rs")));
        routes.extend(declared(include_str!("../admin.rs")));
        routes.extend(declared(include_str!("../witness.rs")));
        routes.extend(declared(include_str!("../intel.rs")));
        // The OTLP/gRPC method is served by its own listener's router (a tonic service).
        assert!(include_str!("otlp_grpc.rs").contains(".route_service(EXPORT_PATH, service)"));
        routes.push(("POST".to_owned(), super::otlp_grpc::EXPORT_PATH.to_owned()));
        assert!(routes.len() >= 45, "found only {routes:?}");
        for (method, path) in &routes {
            assert!(
                ROUTES.iter().any(|r| r.method == method && r.path == path),
                "{method} {path} is routed but not in access::ROUTES"
            );
        }
        for r in ROUTES {
            assert!(
                routes.iter().any(|(m, p)| m == r.method && p == r.path),
                "{} {} is in access::ROUTES but not routed",
                r.method,
                r.path
            );
        }
    }

    #[tokio::test]
    async fn a_route_missing_from_the_role_table_is_refused() {
        use axum::body::Body;
        use axum::http::{Request, StatusCode};
        use axum::routing::get;
        use tower::ServiceExt;

        let app: axum::Router = axum::Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/api/v1/not-in-the-table", get(|| async { "served" }))
            .route_layer(axum::middleware::from_fn(super::listed_routes_only));
        let status = |method: &str, path: &str| {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            let app = app.clone();
            async move { app.oneshot(request).await.unwrap().status() }
        };
        assert_eq!(status("GET", "/healthz").await, StatusCode::OK);
        assert_eq!(status("HEAD", "/healthz").await, StatusCode::OK);
        assert_eq!(
            status("GET", "/api/v1/not-in-the-table").await,
            StatusCode::FORBIDDEN,
            "routed but not in the table: refused"
        );
        assert_eq!(status("GET", "/nowhere").await, StatusCode::NOT_FOUND);
        assert_eq!(
            status("POST", "/healthz").await,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
