//! Alerts, their triage, and the loaded rules.

#[allow(unused_imports)]
use super::*;

// ---- alerts and rules -------------------------------------------------------------------------

#[derive(Deserialize, Default)]
pub(super) struct AlertQuery {
    status: Option<String>,
    rule: Option<String>,
    level: Option<String>,
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
    limit: Option<usize>,
    /// `exclude` (default), `include` or `only`: drill alerts.
    drills: Option<String>,
}

pub(super) fn alert_json(a: &vigil_detect::alert::Alert) -> JsonValue {
    a.to_api_json()
}

pub(super) async fn list_alerts(
    State(state): State<Shared>,
    Query(q): Query<AlertQuery>,
) -> Response {
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
    if let Some(d) = &q.drills {
        match vigil_detect::alert::DrillFilter::parse(d) {
            Some(d) => filter.drills = d,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("drills {d:?}: use exclude, include or only"),
                );
            }
        }
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

pub(super) async fn get_alert(
    State(state): State<Shared>,
    Path(id): Path<u64>,
    Query(q): Query<AlertQuery>,
) -> Response {
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
        // The rule as loaded: its description and kind, for the analyst reading the alert.
        let rules = detect.rules();
        let rule_id = body["rule"]["id"].as_str().unwrap_or_default().to_owned();
        let meta = rules
            .set
            .rules()
            .map(|(_, r)| (&r.meta, "detection"))
            .chain(
                rules
                    .set
                    .correlations()
                    .iter()
                    .map(|c| (&c.rule.meta, "correlation")),
            )
            .find(|(m, _)| crate::detect::alert_rule(m).id == rule_id);
        if let Some((m, kind)) = meta {
            body["rule"]["description"] = json!(m.description);
            body["rule"]["kind"] = json!(kind);
            body["rule"]["references"] = json!(m.references);
            body["rule"]["falsepositives"] = json!(m.falsepositives);
        }
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
        // A correlation's evidence: every event that counted towards it.
        let alert = detect.with_book(|b| b.get(id).cloned());
        if let Some(alert) = alert
            && let Some((events, cut)) = super::alert_evidence::contributing(&state, &alert).await
        {
            body["contributing"] = JsonValue::Array(events);
            body["contributing_truncated"] = json!(cut);
        }
    }
    Json(body).into_response()
}

#[derive(Deserialize)]
pub(super) struct TriageRequest {
    status: String,
    #[serde(default)]
    comment: String,
}

pub(super) async fn triage_alert(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Response {
    let Some(detect) = state.detect.clone() else {
        return error(StatusCode::NOT_FOUND, "detection is off");
    };
    let request: TriageRequest = match json_body(
        &body,
        r#"{"status": "acknowledged"|"closed"|"open", "comment": …}"#,
    ) {
        Ok(r) => r,
        Err(r) => return r,
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
                vigil_event::Category::Configuration,
                vigil_event::EventType::Change,
                vigil_event::Outcome::Success,
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

pub(super) async fn list_rules(State(state): State<Shared>) -> Response {
    let Some(detect) = state.detect.clone() else {
        return Json(json!({"rules": [], "issues": [], "message": "detection is off: start serve with --rules DIR"})).into_response();
    };
    let rules = detect.rules();
    let fired = detect.last_fired();
    let list: Vec<JsonValue> = rules
        .set
        .rules()
        .map(|(id, info)| {
            let r = crate::detect::alert_rule(&info.meta);
            // Behaviour rules are listed with their kind (new_terms, outlier, peer_outlier).
            let kind = rules
                .set
                .behaviour_of(id)
                .and_then(|b| rules.set.behaviours().get(b))
                .map_or("detection", |b| b.rule.kind());
            json!({
                "id": r.id,
                "title": r.title,
                "level": r.level.as_str(),
                "tags": r.tags,
                "kind": kind,
                "source": info.meta.source,
                "status": "loaded",
                "notes": info.notes,
                "last_fired": fired.get(&r.id).map(|t| t.to_rfc3339()),
                "exceptions": rules.set.exceptions().of(&r.id),
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
                "exceptions": rules.set.exceptions().of(&r.id),
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
