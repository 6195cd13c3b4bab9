//! `GET /api/v1/report/{framework}?from=&to=&scope=&format=json|html`: the compliance report
//! `vigil report` prints (`crate::report::compute`), for the UI's Compliance page. One report
//! or verification at a time (each reads and hashes the whole ledger); the read is audited
//! (`audit_read`, PCI DSS 10.2.1.3). On a cluster node, per shard (`?shard=p3`, or every
//! shard's side by side), computed by each shard's owner (`crate::cluster::report`).

#[allow(unused_imports)]
use super::*;

/// Query parameters of the report route.
#[derive(Debug, Deserialize)]
pub(super) struct ReportParams {
    from: Option<String>,
    to: Option<String>,
    scope: Option<String>,
    format: Option<String>,
    /// The shard, on a cluster node.
    shard: Option<String>,
}

pub(super) async fn report(
    State(state): State<Shared>,
    Caller { principal, .. }: Caller,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(framework): Path<String>,
    Query(params): Query<ReportParams>,
) -> Response {
    let html = match params.format.as_deref() {
        None | Some("json") => false,
        Some("html") => true,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("format {other:?}: json or html"),
            );
        }
    };
    let now = Timestamp::now();
    let (from, to) = match (
        crate::search::resolve_time(params.from.as_deref(), now),
        crate::search::resolve_time(params.to.as_deref(), now),
    ) {
        (Ok(from), Ok(to)) => (from.map(Timestamp::as_nanos), to.unwrap_or(now).as_nanos()),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    let mapping = vigil_report::Mapping::builtin();
    if mapping.framework(&framework).is_none() {
        let known: Vec<&str> = mapping.frameworks.iter().map(|f| f.id.as_str()).collect();
        return error(
            StatusCode::NOT_FOUND,
            format!("no framework {framework:?}; known: {}", known.join(", ")),
        );
    }
    let scope = params.scope.filter(|s| !s.trim().is_empty());
    let Some(turn) = crate::web::VerifyTurn::take(&state) else {
        return error(
            StatusCode::CONFLICT,
            "a verification or a report is running; try again when it ends",
        );
    };
    if let Some(cluster) = &state.cluster {
        // One report asked through this node at a time, as standalone (each owner computes
        // one at a time too); held until the answers are in.
        let _turn = turn;
        let asked = crate::cluster::report::Asked {
            framework,
            from,
            to,
            scope,
            shard: params.shard.filter(|s| !s.is_empty()),
            html,
        };
        return crate::cluster::report::route(
            cluster,
            &state.ingest,
            asked,
            &principal.name,
            peer.ip(),
        )
        .await;
    }
    let request = crate::report::ReportRequest {
        framework,
        from,
        to,
        scope,
        rules: state
            .detect
            .as_ref()
            .map(|d| crate::report::enabled_rules(&d.rules())),
    };
    let dir = state.data_dir.clone();
    // The turn is given back when the work ends, not when the request does: an aborted
    // request cannot start a second full read beside the first.
    let computed = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        crate::report::compute(&dir, &mapping, &request, &mut |_, _, _| {})
    })
    .await;
    let report = match computed {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, e),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let mut audit = crate::audit::by(
        "audit_read",
        vigil_event::Category::Database,
        vigil_event::EventType::Access,
        vigil_event::Outcome::Success,
        &principal.name,
        Some(peer.ip()),
    );
    let name = report["framework"].as_str().unwrap_or_default().to_owned();
    audit.insert("vigil.report.framework", name.as_str());
    audit.insert("message", format!("compliance report {name} computed"));
    crate::audit::append(&state.ingest, audit);
    if html {
        let disposition = format!("attachment; filename=\"vigil-{name}-report.html\"");
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            vigil_report::html::render(&report),
        )
            .into_response()
    } else {
        Json(report).into_response()
    }
}
