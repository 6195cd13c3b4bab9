//! Cases through the API (`crate::cases` keeps the book): list and open cases, read one with
//! its alerts, events, comments and timeline, change its title, status, severity or assignee,
//! comment, and add alerts and stored events. Reading is for every role that reads; changes
//! are triage (admin, analyst), each one a `vigil.audit` event made durable before it is
//! answered.

#[allow(unused_imports)]
use super::*;

use vigil_detect::case::{CaseFilter, CaseStatus, Change, EventRef, parse_severity};

/// Events shown with a case at most (the case may hold more; they stay listed by number).
const MAX_SHOWN_EVENTS: usize = 200;

#[derive(Deserialize, Default)]
pub(super) struct CaseListQuery {
    status: Option<String>,
    alert: Option<u64>,
    assignee: Option<String>,
    limit: Option<usize>,
}

pub(super) async fn list_cases(
    State(state): State<Shared>,
    Query(q): Query<CaseListQuery>,
) -> Response {
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match CaseStatus::parse(s) {
            Some(s) => Some(s),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("status {s:?}: use open, in_progress or closed"),
                );
            }
        },
    };
    let filter = CaseFilter {
        status,
        alert: q.alert,
        assignee: q.assignee,
    };
    let limit = q.limit.unwrap_or(500).min(10_000);
    let listed = state
        .cases
        .read(&state, |book| {
            let all = book.list(&filter);
            let total = all.len();
            let cases: Vec<JsonValue> = all
                .into_iter()
                .take(limit)
                .map(|c| c.summary_json())
                .collect();
            (cases, total)
        })
        .await;
    match listed {
        Ok((cases, total)) => Json(json!({"cases": cases, "total": total})).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewCase {
    title: String,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    assignee: Option<String>,
    /// Alerts to add at once.
    #[serde(default)]
    alerts: Vec<u64>,
    /// A first comment.
    #[serde(default)]
    comment: Option<String>,
}

#[allow(clippy::result_large_err)]
fn severity(text: Option<&str>) -> Result<Option<vigil_detect::alert::Level>, Response> {
    match text {
        None => Ok(None),
        Some(s) => parse_severity(s).map(Some).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                format!("severity {s:?}: use informational, low, medium, high or critical"),
            )
        }),
    }
}

/// Refuses alert ids the alert book does not hold.
#[allow(clippy::result_large_err)]
fn known_alert(state: &AppState, id: u64) -> Result<(), Response> {
    let known = state
        .detect
        .as_ref()
        .is_some_and(|d| d.with_book(|b| b.get(id).is_some()));
    if known {
        Ok(())
    } else {
        Err(error(StatusCode::NOT_FOUND, format!("no alert {id}")))
    }
}

pub(super) async fn create_case(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let req: NewCase = match json_body(
        &body,
        r#"{"title", "severity"?, "assignee"?, "alerts"?: [id], "comment"?}"#,
    ) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let level = match severity(req.severity.as_deref()) {
        Ok(l) => l.unwrap_or(vigil_detect::alert::Level::Medium),
        Err(r) => return r,
    };
    if req.alerts.len() > vigil_detect::case::MAX_ITEMS {
        return error(StatusCode::BAD_REQUEST, "too many alerts at once");
    }
    for &a in &req.alerts {
        if let Err(r) = known_alert(&state, a) {
            return r;
        }
    }
    let create = Change::Create {
        title: req.title,
        severity: level,
        assignee: req.assignee.unwrap_or_default(),
    };
    if let Err(e) = create.validate() {
        return error(StatusCode::BAD_REQUEST, e.to_string());
    }
    if let Some(c) = &req.comment
        && let Err(e) = (Change::Comment { text: c.clone() }).validate()
    {
        return error(StatusCode::BAD_REQUEST, e.to_string());
    }
    let who = principal.name.as_str();
    let mut case = match state
        .cases
        .change(&state, None, create, who, Some(peer.ip()))
        .await
    {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut follow = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    follow.extend(
        req.alerts
            .iter()
            .filter(|a| seen.insert(**a))
            .map(|&alert| Change::AddAlert { alert }),
    );
    follow.extend(req.comment.map(|text| Change::Comment { text }));
    for change in follow {
        match state
            .cases
            .change(&state, Some(case.id), change, who, Some(peer.ip()))
            .await
        {
            Ok(c) => case = c,
            Err(r) => return r,
        }
    }
    (StatusCode::CREATED, Json(case.to_json())).into_response()
}

/// One line of a case's combined timeline.
fn line(at: &str, kind: &str, text: String, extra: JsonValue) -> JsonValue {
    json!({"at": at, "kind": kind, "text": text, "ref": extra})
}

pub(super) async fn get_case(State(state): State<Shared>, Path(id): Path<u64>) -> Response {
    let case = match state.cases.read(&state, |book| book.get(id).cloned()).await {
        Ok(Some(c)) => c,
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("no case {id}")),
        Err(r) => return r,
    };
    let mut body = case.to_json();
    // The alerts as the alert book holds them now.
    let alerts: Vec<JsonValue> = case
        .alerts
        .iter()
        .map(|&a| {
            state
                .detect
                .as_ref()
                .and_then(|d| d.with_book(|b| b.get(a).map(|x| x.to_api_json())))
                .unwrap_or_else(|| json!({"id": a, "missing": true}))
        })
        .collect();
    let shown: Vec<EventRef> = case.events.iter().take(MAX_SHOWN_EVENTS).cloned().collect();
    // Standalone: read from the ledger; a cluster's (`{shard, seq}`): asked of each shard's owner.
    let events = match crate::cases::case_events(&state, shown).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    // One timeline: the case's changes, its alerts (first and last seen) and its events.
    let mut timeline: Vec<JsonValue> = case
        .timeline
        .iter()
        .map(|t| {
            line(
                &t.at.to_rfc3339(),
                "change",
                format!("{} {}: {}", t.by, t.action, t.detail),
                json!({"seq": t.seq}),
            )
        })
        .collect();
    for a in alerts.iter().filter(|a| a.get("missing").is_none()) {
        let title = a["rule"]["title"].as_str().unwrap_or("?");
        let at = a["first_seen"].as_str().unwrap_or("");
        timeline.push(line(
            at,
            "alert",
            format!(
                "alert #{} {title} ({})",
                a["id"],
                a["group_key"].as_str().unwrap_or("")
            ),
            json!({"alert": a["id"]}),
        ));
    }
    for e in events.iter().filter(|e| e.get("missing").is_none()) {
        let at = e["@timestamp"].as_str().unwrap_or("");
        let text = e["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("event {}", e["vigil.seq"]));
        let mut at_ref = json!({"seq": e["vigil.seq"]});
        if let Some(shard) = e.get("vigil.shard") {
            at_ref["shard"] = shard.clone();
        }
        timeline.push(line(at, "event", text, at_ref));
    }
    // In time order (parsed: RFC 3339 texts of one second with and without a fraction do not
    // sort as text).
    let when = |j: &JsonValue| {
        j["at"]
            .as_str()
            .and_then(|t| Timestamp::parse(t).ok())
            .map_or(i64::MIN, Timestamp::as_nanos)
    };
    timeline.sort_by_key(when);
    body["alert_details"] = JsonValue::Array(alerts);
    body["event_details"] = JsonValue::Array(events);
    body["combined_timeline"] = JsonValue::Array(timeline);
    Json(body).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CaseUpdate {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    assignee: Option<String>,
}

pub(super) async fn update_case(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let req: CaseUpdate =
        match json_body(&body, r#"{"title"?, "status"?, "severity"?, "assignee"?}"#) {
            Ok(r) => r,
            Err(r) => return r,
        };
    let status = match req.status.as_deref() {
        None => None,
        Some(s) => match CaseStatus::parse(s) {
            Some(s) => Some(s),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("status {s:?}: use open, in_progress or closed"),
                );
            }
        },
    };
    let severity = match severity(req.severity.as_deref()) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let change = Change::Update {
        title: req.title,
        status,
        severity,
        assignee: req.assignee,
    };
    answer(&state, id, change, &principal.name, peer).await
}

async fn answer(state: &Shared, id: u64, change: Change, by: &str, peer: SocketAddr) -> Response {
    match state
        .cases
        .change(state, Some(id), change, by, Some(peer.ip()))
        .await
    {
        Ok(c) => Json(c.to_json()).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewComment {
    text: String,
}

pub(super) async fn comment_case(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    match json_body::<NewComment>(&body, r#"{"text"}"#) {
        Ok(c) => {
            answer(
                &state,
                id,
                Change::Comment { text: c.text },
                &principal.name,
                peer,
            )
            .await
        }
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddAlert {
    alert: u64,
}

pub(super) async fn add_case_alert(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let req: AddAlert = match json_body(&body, r#"{"alert": id}"#) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Err(r) = known_alert(&state, req.alert) {
        return r;
    }
    let change = Change::AddAlert { alert: req.alert };
    answer(&state, id, change, &principal.name, peer).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddEvent {
    seq: u64,
    /// Cluster mode: the shard whose ledger numbers `seq` (a search row's `vigil.shard`).
    #[serde(default)]
    shard: Option<String>,
}

pub(super) async fn add_case_event(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let req: AddEvent = match json_body(
        &body,
        r#"{"seq": n} ({"shard": "p3", "seq": n} on a cluster node)"#,
    ) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let event = match (&state.cluster, req.shard) {
        // A cluster has one ledger per shard, each numbering its own events: the sequence
        // alone names no event (docs/cluster.md, "Cases and saved searches").
        (Some(_), None) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "this is a cluster node: each shard numbers its own events, so name the \
                     event by its shard and its sequence there, {{\"shard\": \"p3\", \"seq\": {}}} \
                     (a search row's vigil.shard and vigil.seq)",
                    req.seq
                ),
            );
        }
        (None, Some(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                r#"this server has one ledger, not shards: name the event by its sequence number alone, {"seq": n}"#,
            );
        }
        (Some(_), Some(shard)) => EventRef::in_shard(shard, req.seq),
        (None, None) => EventRef::local(req.seq),
    };
    // Only events stored (durably): the ledger, or the shard's owner.
    if let Err(r) = crate::cases::check_event(&state, &event).await {
        return r;
    }
    answer(
        &state,
        id,
        Change::AddEvent { event },
        &principal.name,
        peer,
    )
    .await
}
