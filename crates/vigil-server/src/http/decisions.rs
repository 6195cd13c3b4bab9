//! Ban decisions: the API and the CrowdSec bouncer endpoints.

#[allow(unused_imports)]
use super::*;
use vigil_respond::lapi;

// ---- ban decisions -----------------------------------------------------------------------------

pub(super) async fn list_decisions(State(state): State<Shared>) -> Response {
    let now = Timestamp::now();
    Json(state.decisions.read(|b| lapi::active(b, now))).into_response()
}

pub(super) async fn add_decision(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    body: Bytes,
) -> Response {
    let request = match lapi::parse_ban_request(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let decisions = Arc::clone(&state.decisions);
    let by = principal.name.clone();
    if let Some(cluster) = &state.cluster {
        return ban_by_hand_in_cluster(decisions, cluster, request, by).await;
    }
    match tokio::task::spawn_blocking(move || {
        decisions.ban_by_hand(&request.value, request.duration, &request.reason, &by)
    })
    .await
    {
        Ok(banned) => ban_answer(banned),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The cluster-wide counter (in the state bucket) that numbers bans by hand.
const BY_HAND_BAN_COUNTER: &str = "decisions.by-hand";

/// A ban by hand on a cluster node: numbered from a counter in the cluster's state bucket
/// (compare-and-set), so two nodes banning at the same instant never give two bans one id
/// (each node's own book only knows the bans it has applied so far). Below the detectors'
/// epoch ranges ([`vigil_respond::decisions::DECISION_IDS_PER_EPOCH`]).
async fn ban_by_hand_in_cluster(
    decisions: Arc<vigil_respond::decisions::DecisionService>,
    cluster: &vigil_cluster::Cluster,
    request: lapi::BanRequest,
    by: String,
) -> Response {
    let unavailable = |why: String| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the ban could not be numbered, nothing was banned (retry): {why}"),
        )
    };
    for _ in 0..BY_HAND_TRIES {
        let above = decisions.read(|b| b.highest_by_hand_id());
        let id =
            match vigil_cluster::lease::reserve_number(cluster, BY_HAND_BAN_COUNTER, above).await {
                Ok(Some(id)) if id < vigil_respond::decisions::DECISION_IDS_PER_EPOCH => id,
                Ok(Some(_)) => return unavailable("every by-hand ban id is taken".into()),
                Ok(None) => continue,
                Err(e) => return unavailable(e.to_string()),
            };
        let (d, request, by) = (Arc::clone(&decisions), request.clone(), by.clone());
        match tokio::task::spawn_blocking(move || {
            d.ban_by_hand_numbered(id, &request.value, request.duration, &request.reason, &by)
        })
        .await
        {
            Ok(Some(banned)) => return ban_answer(banned),
            // The id was applied here from another node meanwhile: take the next.
            Ok(None) => continue,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
    unavailable("other nodes kept taking the next id".into())
}

/// How many ids a ban by hand on a cluster node tries.
const BY_HAND_TRIES: usize = 8;

fn ban_answer(
    banned: Result<vigil_respond::decisions::Decision, vigil_respond::decisions::DecisionError>,
) -> Response {
    match banned {
        Ok(d) => (StatusCode::CREATED, Json(d.to_json())).into_response(),
        Err(e @ vigil_respond::decisions::DecisionError::NotANetwork { .. }) => {
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
        Err(e) => error(StatusCode::CONFLICT, e.to_string()),
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
        Ok(Err(e)) => error(StatusCode::NOT_FOUND, e.to_string()),
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
    let since = state.bouncer_polls.poll(&bouncer.id, startup, now);
    let mut body = state.decisions.read(|b| lapi::stream(b, since, now));
    // Drill decisions, marked so bouncers do not enforce them (vigil_respond::decisions::drill);
    // each first fetch is recorded for the drill's report.
    let (new, deleted, fetched) = state.decisions.drills.stream(&bouncer.name, since, now);
    for (key, list) in [("new", new), ("deleted", deleted)] {
        if let Some(all) = body[key].as_array_mut() {
            all.extend(list);
        }
    }
    if !fetched.is_empty() {
        let _ = state.ingest.submit(fetched, vigil_ingest::Origin::Decision);
    }
    Json(body).into_response()
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
    match state
        .decisions
        .read(|b| lapi::decisions(b, q.ip.as_deref(), now))
    {
        Ok(body) => Json(body).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}
