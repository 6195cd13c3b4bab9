//! The HTTP API: Vigil's own ingest, Splunk HEC and Elasticsearch `_bulk` compatible ingest,
//! checkpoints and proofs, metrics and health.
//!
//! Every route but `/healthz` (and HEC's health probe) needs a token. Ingest routes answer 2xx
//! only once the events are durable; when the ledger is behind they answer 429 with
//! `Retry-After`; a body over the limit gets 413; bodies may be gzip-compressed.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use vigil_event::{Event, Timestamp, Value};
use vigil_parse::{Format, ParseContext};

use crate::auth::{AuthError, Principal, TokenStore};
use crate::pipeline::{Ingest, IngestError};
use vigil_auth::{Access, RouteAccess};

/// How long an HTTP request waits for room in the pipeline before 429.
const HTTP_PATIENCE: Duration = Duration::from_secs(2);

/// What the handlers share.
pub struct AppState {
    /// The ingest pipeline.
    pub ingest: Arc<Ingest>,
    /// API tokens.
    pub tokens: Arc<TokenStore>,
    /// The data directory (for ledger reads).
    pub data_dir: PathBuf,
    /// Keep `event.original`.
    pub keep_original: bool,
    /// Largest accepted body (after decompression too).
    pub max_body_bytes: usize,
    /// The search index, when it is on.
    pub index: Option<Arc<crate::search::IndexService>>,
    /// Searches and exports running at once ([`MAX_SEARCHES_IN_FLIGHT`]).
    pub searches: Arc<tokio::sync::Semaphore>,
    /// The detector, when rules are loaded.
    pub detect: Option<Arc<crate::detect::DetectService>>,
    /// Notification delivery counters.
    pub notify_stats: Arc<crate::notify::NotifyStats>,
    /// Ban decisions.
    pub decisions: Arc<crate::decisions::DecisionService>,
    /// When each bouncer (token id) last polled the decision stream.
    pub bouncer_polls: vigil_respond::lapi::BouncerPolls,
    /// `Idempotency-Key`s of recent ingest batches.
    pub idempotency: crate::idempotency::Idempotency,
    /// Web UI sessions and the accounts behind them.
    pub sessions: Arc<crate::session::SessionStore>,
    /// Where accounts and tokens are changed: the data directory's files, or the cluster's
    /// shared buckets.
    pub accounts: vigil_auth::AuthStore,
    /// This node's connection to the cluster (cluster mode).
    pub cluster: Option<vigil_cluster::Cluster>,
    /// The cluster's last health report (reused briefly).
    pub cluster_health: crate::cluster::health::HealthCache,
    /// Failed logins per address.
    pub login_limiter: crate::session::LoginLimiter,
    /// Failed logins per account, from any address.
    pub account_limiter: crate::session::AccountLimiter,
    /// Invalid API tokens per address.
    pub token_limiter: crate::session::LoginLimiter,
    /// Requests without valid credentials (none, or an unknown session cookie) audited per
    /// address: beyond its limit they are only counted, so a flood costs no ledger space.
    pub anonymous_limiter: crate::session::LoginLimiter,
    /// Whether HTTP is served over TLS (cookies get `Secure`, responses HSTS).
    pub tls: bool,
    /// The result of the last verification run from the UI or API.
    pub last_verification: std::sync::Mutex<Option<JsonValue>>,
    /// This run: `{started, version, previous_stop}` (none, clean or unclean), for the UI.
    pub run: JsonValue,
    /// Whether a verification is running.
    pub verifying: std::sync::atomic::AtomicBool,
    /// The C2SP witness this server runs, and this ledger's witnesses.
    pub witness: crate::witness::WitnessState,
    /// Cases (incidents), rebuilt from the ledger on first use.
    pub cases: crate::cases::CaseService,
    /// The drill runner (standalone and cluster nodes alike).
    pub drills: Option<Arc<crate::drill::DrillService>>,
}

type Shared = Arc<AppState>;

/// The router.
pub fn router(state: Shared) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .route("/api/v1/ingest", post(ingest))
        .route("/api/v1/checkpoint", get(checkpoint))
        .route("/api/v1/search", post(search))
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/{id}", get(get_alert).post(triage_alert))
        .route("/api/v1/rules", get(list_rules))
        .route("/api/v1/rules/trace", post(trace::trace_rule))
        .route(
            "/api/v1/exceptions",
            get(exceptions::list_exceptions).post(exceptions::add_exception),
        )
        .route(
            "/api/v1/exceptions/{id}",
            axum::routing::delete(exceptions::delete_exception),
        )
        .route(
            "/api/v1/saved-searches",
            get(saved::list_saved).post(saved::add_saved),
        )
        .route(
            "/api/v1/saved-searches/{id}",
            post(saved::change_saved).delete(saved::delete_saved),
        )
        .route(
            "/api/v1/cases",
            get(cases::list_cases).post(cases::create_case),
        )
        .route(
            "/api/v1/cases/{id}",
            get(cases::get_case).post(cases::update_case),
        )
        .route("/api/v1/cases/{id}/comments", post(cases::comment_case))
        .route("/api/v1/cases/{id}/alerts", post(cases::add_case_alert))
        .route("/api/v1/cases/{id}/events", post(cases::add_case_event))
        .route("/api/v1/entity/{kind}/{value}", get(entity::entity))
        .route("/api/v1/coverage", get(coverage::coverage))
        .route("/api/v1/coverage/navigator", get(coverage::navigator))
        .route(
            "/api/v1/cluster",
            get(crate::cluster::health::cluster_health),
        )
        .route("/api/v1/drills", get(drills::list).post(drills::run))
        .route("/api/v1/decisions", get(list_decisions).post(add_decision))
        .route(
            "/api/v1/decisions/{id}",
            axum::routing::delete(delete_decision),
        )
        .route("/v1/decisions/stream", get(bouncer_stream))
        .route("/v1/decisions", get(bouncer_decisions))
        .route("/api/v1/proof/inclusion", get(inclusion_proof))
        .route("/api/v1/report/{framework}", get(report::report))
        .route("/services/collector", post(hec_event))
        .route("/services/collector/event", post(hec_event))
        .route("/services/collector/event/1.0", post(hec_event))
        .route("/services/collector/raw", post(hec_raw))
        .route("/services/collector/raw/1.0", post(hec_raw))
        .route("/services/collector/health", get(hec_health))
        .route("/services/collector/health/1.0", get(hec_health))
        .route("/v1/logs", post(otlp_logs))
        .route("/_bulk", post(bulk))
        .route("/{index}/_bulk", post(bulk_with_index))
        .route("/", get(es_root).head(es_root))
        .merge(crate::web::routes())
        .merge(crate::admin::routes())
        .merge(crate::witness::routes())
        .merge(crate::intel::routes())
        // The role table, enforced for every route above (none may bypass it): the outer layer
        // (added last) finds the route's entry or refuses, the inner one authenticates.
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            route_guard,
        ))
        .route_layer(axum::middleware::from_fn(listed_routes_only))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            crate::web::csrf_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            crate::web::security_headers,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

mod alert_evidence;
mod alerts;
mod authn;
mod body;
mod bulk;
mod cases;
mod coverage;
mod decisions;
mod drills;
mod entity;
mod exceptions;
mod hec;
mod ledger;
mod native;
mod otlp;
mod otlp_grpc;
mod report;
pub(crate) mod saved;
mod trace;

use alerts::*;
pub use authn::Caller;
pub(crate) use authn::*;
use body::*;
use bulk::*;
use decisions::*;
use hec::*;
pub(crate) use ledger::*;
pub use ledger::{MAX_SEARCHES_IN_FLIGHT, SEARCH_QUEUE_WAIT, hex, proof_json};
use native::*;
use otlp::*;
pub use otlp_grpc::{EXPORT_PATH, grpc_router};

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_turn_runs_nothing_and_a_granted_one_runs_its_audit_once() {
        let turns = Arc::new(tokio::sync::Semaphore::new(1));
        let held = Arc::clone(&turns).acquire_owned().await.unwrap();
        let mut audited = 0;
        let refused = turn_then(&turns, Duration::from_millis(20), || audited += 1).await;
        assert!(refused.is_none());
        assert_eq!(audited, 0, "a refused request is not audited");
        drop(held);
        let granted = turn_then(&turns, Duration::from_secs(10), || audited += 1).await;
        assert!(granted.is_some());
        assert_eq!(audited, 1);
    }

    fn ctx() -> ParseContext {
        ParseContext::new(Timestamp::from_secs(1_800_000_000), "t")
    }

    #[test]
    fn bulk_pairs_and_refusals() {
        let body = b"{\"index\":{\"_index\":\"logs\"}}\n{\"message\":\"a\",\"source\":{\"ip\":\"10.0.0.1\"}}\n{\"create\":{}}\n{\"message\":\"b\"}\n{\"delete\":{\"_id\":\"1\"}}\n{\"index\":{}}\nnot json\n";
        let items = parse_bulk(body, Some("dflt"), &ctx()).unwrap();
        assert_eq!(items.len(), 4);
        assert!(
            matches!(&items[0], BulkItem::Doc(a, i, e) if a == "index" && i == "logs" && e.get_str("message") == Some("a"))
        );
        assert!(matches!(&items[1], BulkItem::Doc(a, i, _) if a == "create" && i == "dflt"));
        assert!(matches!(&items[2], BulkItem::Refused(a, ..) if a == "delete"));
        assert!(matches!(&items[3], BulkItem::Refused(a, ..) if a == "index"));
        assert!(parse_bulk(b"garbage\n", None, &ctx()).is_err());
        assert!(parse_bulk(b"{\"index\":{}}\n", None, &ctx()).is_err());
    }

    #[test]
    fn hec_objects() {
        let obj = serde_json::json!({"time": 1_700_000_000.5, "host": "web1", "sourcetype": "access_combined",
            "event": "203.0.113.5 - - [22/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"x\"", "fields": {"env": "prod"}});
        let e = hec_event_to_event(obj.as_object().unwrap(), &ctx()).unwrap();
        assert_eq!(e.get_str("vigil.parser"), Some("combined"));
        assert_eq!(e.get_str("host.name"), Some("web1"));
        assert_eq!(e.get_str("env"), Some("prod"));
        // The access log's own time wins over HEC's time field.
        assert_eq!(e.timestamp().to_rfc3339(), "2026-11-22T10:00:00Z");
        let obj = serde_json::json!({"time": "1700000000", "event": {"action": "login"}});
        let e = hec_event_to_event(obj.as_object().unwrap(), &ctx()).unwrap();
        assert_eq!(e.timestamp().as_secs(), 1_700_000_000);
        assert_eq!(e.get_str("action"), Some("login"));
        assert!(
            hec_event_to_event(serde_json::json!({"time": 1}).as_object().unwrap(), &ctx())
                .is_err()
        );
    }

    #[test]
    fn tokens_from_every_header_shape() {
        let mut h = HeaderMap::new();
        for (value, expected) in [
            ("Bearer vgl_1_a".to_string(), Some("vgl_1_a")),
            ("Splunk vgl_1_b".to_string(), Some("vgl_1_b")),
            (
                format!("Basic {}", B64.encode("fluent:vgl_1_c")),
                Some("vgl_1_c"),
            ),
            (
                format!("ApiKey {}", B64.encode("id:vgl_1_d")),
                Some("vgl_1_d"),
            ),
            ("Digest x".to_string(), None),
        ] {
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(presented_token(&h).as_deref(), expected);
        }
    }
}
