//! Ban decisions: the API and the CrowdSec bouncer endpoints.

#[allow(unused_imports)]
use super::*;
use vigil_respond::lapi;

// ---- ban decisions -----------------------------------------------------------------------------

pub(super) async fn list_decisions(
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
    Json(state.decisions.read(|b| lapi::active(b, now))).into_response()
}

pub(super) async fn add_decision(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let principal = match authorize(&state, &headers, peer, "/api/v1/decisions", Need::Ban).await {
        Ok(p) => p,
        Err((status, msg)) => return error(status, msg),
    };
    let request = match lapi::parse_ban_request(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let decisions = Arc::clone(&state.decisions);
    let by = principal.name.clone();
    match tokio::task::spawn_blocking(move || {
        decisions.ban_by_hand(&request.value, request.duration, &request.reason, &by)
    })
    .await
    {
        Ok(Ok(d)) => (StatusCode::CREATED, Json(d.to_json())).into_response(),
        Ok(Err(e @ vigil_respond::decisions::DecisionError::NotANetwork { .. })) => {
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
        Ok(Err(e)) => error(StatusCode::CONFLICT, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub(super) async fn delete_decision(
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
        Ok(Err(e)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// CrowdSec bouncers authenticate with `X-Api-Key`; a missing or wrong key is 403 (as the LAPI
/// answers) and audited.
pub(super) async fn authorize_bouncer(
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
pub(super) struct StreamQuery {
    #[serde(default)]
    startup: Option<String>,
}

pub(super) async fn bouncer_stream(
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
    let since = state.bouncer_polls.poll(&bouncer.id, startup, now);
    Json(state.decisions.read(|b| lapi::stream(b, since, now))).into_response()
}

#[derive(Deserialize)]
pub(super) struct DecisionsQuery {
    ip: Option<String>,
}

pub(super) async fn bouncer_decisions(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<DecisionsQuery>,
) -> Response {
    if let Err(r) = authorize_bouncer(&state, &headers, peer, "/v1/decisions").await {
        return r;
    }
    let now = Timestamp::now();
    match state
        .decisions
        .read(|b| lapi::decisions(b, q.ip.as_deref(), now))
    {
        Ok(body) => Json(body).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}
