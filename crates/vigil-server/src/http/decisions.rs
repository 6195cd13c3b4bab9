//! Ban decisions: the API and the CrowdSec bouncer endpoints.

#[allow(unused_imports)]
use super::*;

// ---- ban decisions -----------------------------------------------------------------------------

pub(super) async fn list_decisions(State(state): State<Shared>) -> Response {
    let now = Timestamp::now();
    let list: Vec<JsonValue> = state
        .decisions
        .read(|b| b.active(now).into_iter().map(|d| d.to_json()).collect());
    Json(json!({ "decisions": list })).into_response()
}

#[derive(Deserialize)]
pub(super) struct BanRequest {
    value: String,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

pub(super) async fn add_decision(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    body: Bytes,
) -> Response {
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

pub(super) async fn delete_decision(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    Path(id): Path<u64>,
) -> Response {
    let decisions = Arc::clone(&state.decisions);
    match tokio::task::spawn_blocking(move || decisions.unban(id, &principal.name)).await {
        Ok(Ok(d)) => Json(d.to_json()).into_response(),
        Ok(Err(e)) => error(StatusCode::NOT_FOUND, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
pub(super) struct StreamQuery {
    #[serde(default)]
    startup: Option<String>,
}

pub(super) async fn bouncer_stream(
    State(state): State<Shared>,
    Caller {
        principal: bouncer, ..
    }: Caller,
    Query(q): Query<StreamQuery>,
) -> Response {
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
pub(super) struct DecisionsQuery {
    ip: Option<String>,
}

pub(super) async fn bouncer_decisions(
    State(state): State<Shared>,
    Query(q): Query<DecisionsQuery>,
) -> Response {
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
