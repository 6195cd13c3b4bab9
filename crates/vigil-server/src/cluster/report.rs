//! Compliance reports on a cluster node (`GET /api/v1/report/{framework}`; docs/cluster.md,
//! "Compliance reports and exports"). A report is computed from one ledger — its events, its
//! full verification, its checkpoints, its signature — and each shard is its own ledger, so a
//! cluster report is **per shard**, computed by the shard's owner on its copy and relayed over
//! NATS request/reply ([`super::integrity::ask`] with [`super::integrity::Read::Report`]):
//!
//! - `?shard=p3`: that shard's report, exactly as a standalone Vigil reports its ledger (JSON,
//!   signed with the shard's key, or `format=html`), the shard and its owner in the headers
//!   `x-vigil-shard` and `x-vigil-node`;
//! - no `shard`: `{"mode": "cluster", "cluster", "framework", "covers", "shards": [{"shard",
//!   "node", "report"}], "missing_shards": [{"shard", "reason"}]}` (JSON only), every shard's
//!   report asked of the owners one shard after another (an owner computes one at a time),
//!   the shards that did not answer named. The reports are side by side, not merged:
//!   each keeps its own integrity section (its own key, checkpoints and verification), and
//!   Vigil's own events (audit trail, alerts, bans) are in the `sys` shard's.
//!
//! An owner computes one report or verification at a time (each reads its whole shard): a
//! report asked while another runs is refused at once (409, the shard named as missing); the
//! node asked waits up to [`super::verify::VERIFY_TIMEOUT`] for each answer and records the read in the audit trail (`audit_read`, naming the
//! shards).

use std::net::IpAddr;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};
use vigil_cluster::Cluster;

use super::integrity::{Answer, Read, ask, ask_each};
use super::verify::Turn;

/// The owner's side (blocking): the report of the shard copy in `dir`, or 409 at once while
/// another report or verification runs on this node (it never waits for the turn while
/// holding one of the owner's responder slots: a few report requests must not stall its
/// checkpoint, proof and verify reads).
pub fn compute(dir: &std::path::Path, request: &crate::report::ReportRequest) -> Answer {
    let Some(_turn) = Turn::take() else {
        return (
            409,
            json!({"error": "a report or verification is running on this shard's owner; try again when it ends"}),
        );
    };
    let mapping = vigil_report::Mapping::builtin();
    match crate::report::compute(dir, &mapping, request, &mut |_, _, _| {}) {
        Ok(report) => (200, report),
        Err(e) => (400, json!({ "error": e })),
    }
}

/// What the report route was asked.
pub struct Asked {
    /// The framework id.
    pub framework: String,
    /// Period start (ns).
    pub from: Option<i64>,
    /// Period end (ns, exclusive).
    pub to: i64,
    /// The scope query.
    pub scope: Option<String>,
    /// The shard, if one is named.
    pub shard: Option<String>,
    /// HTML rather than JSON (one shard only).
    pub html: bool,
}

/// `GET /api/v1/report/{framework}` on a cluster node: one shard's report (`shard`), or every
/// shard's side by side; audited by this node as `audit_read`.
pub async fn route(
    cluster: &Cluster,
    ingest: &crate::pipeline::Ingest,
    asked: Asked,
    by: &str,
    peer: IpAddr,
) -> Response {
    let make = |shard: String| Read::Report {
        shard,
        framework: asked.framework.clone(),
        from: asked.from,
        to: asked.to,
        scope: asked.scope.clone(),
    };
    let (body, shards, node) = match &asked.shard {
        Some(shard) => {
            let (status, body) = ask(cluster, &make(shard.clone())).await;
            if status != 200 {
                let message = body["error"].as_str().unwrap_or("no answer").to_owned();
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                return crate::http::error(status, message);
            }
            let node = body["node"].as_str().unwrap_or_default().to_owned();
            (body["report"].clone(), vec![shard.clone()], Some(node))
        }
        None if asked.html => {
            return crate::http::error(
                StatusCode::BAD_REQUEST,
                "an HTML report is one ledger's: name the shard, as in ?shard=p0&format=html \
                 (without shard the JSON lists every shard's report)",
            );
        }
        None => {
            let mut all = ask_each(cluster, make).await;
            let answered: Vec<String> = all["shards"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r["shard"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            all["mode"] = json!("cluster");
            all["cluster"] = json!(cluster.settings().names.cluster());
            all["framework"] = json!(asked.framework);
            all["covers"] = json!(
                "one report per shard, each computed by the shard's owner from its own ledger \
                 (its own events, key, checkpoints and verification); Vigil's own events \
                 (audit trail, alerts, bans) are in the sys shard's report"
            );
            (all, answered, None)
        }
    };
    let mut audit = crate::audit::by(
        "audit_read",
        vigil_event::Category::Database,
        vigil_event::EventType::Access,
        vigil_event::Outcome::Success,
        by,
        Some(peer),
    );
    audit.insert("vigil.report.framework", asked.framework.as_str());
    audit.insert(
        "message",
        format!(
            "compliance report {} computed (shards {})",
            asked.framework,
            shards.join(", ")
        ),
    );
    crate::audit::append(ingest, audit);
    let names = |mut response: Response| {
        if let (Some(shard), Some(node)) = (shards.first(), &node) {
            for (name, value) in [("x-vigil-shard", shard), ("x-vigil-node", node)] {
                if let Ok(value) = header::HeaderValue::from_str(value) {
                    response.headers_mut().insert(name, value);
                }
            }
        }
        response
    };
    if asked.html {
        let disposition = format!(
            "attachment; filename=\"vigil-{}-{}-report.html\"",
            asked.framework,
            shards.first().map_or("cluster", String::as_str)
        );
        return names(
            (
                [
                    (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                vigil_report::html::render(&body),
            )
                .into_response(),
        );
    }
    names(axum::Json::<Json>(body).into_response())
}
