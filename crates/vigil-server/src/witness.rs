//! Witnessing in the server: `POST /witness/add-checkpoint` (C2SP `tlog-witness`, no token:
//! the log's signature authenticates; rate-limited per address, body bounded), `GET
//! /api/v1/witness` (this witness's key and logs, and this ledger's witnesses), and the
//! settings they come from. The logic is `vigil_respond::witness`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use vigil_config::{Config, ConfigError};
use vigil_event::{Category, Event, EventType, Outcome};
use vigil_ledger::note::NoteVerifier;
use vigil_respond::witness::limit::RateLimit;
use vigil_respond::witness::protocol::{MAX_REQUEST_BYTES, SIZE_CONTENT_TYPE};
use vigil_respond::witness::{Witness, WitnessError, WitnessStatus, WitnessUrl};

use crate::http::AppState;

/// The witness side and the client side, as the HTTP layer sees them.
#[derive(Debug, Default)]
pub struct WitnessState {
    /// This server's witness (`None` when its key or state could not be opened: the endpoint
    /// then answers 503).
    pub witness: Option<Arc<Witness>>,
    /// Requests per address to the witness endpoint.
    pub limit: RateLimit,
    /// This ledger's witnesses: cosignatures, failures, a reported rollback.
    pub status: Arc<WitnessStatus>,
}

/// `[witness] logs`: each a vkey string or a file holding one.
pub fn witness_logs(c: &Config) -> Result<Vec<NoteVerifier>, ConfigError> {
    c.witness
        .logs
        .iter()
        .map(|entry| {
            let text = std::fs::read_to_string(entry).unwrap_or_else(|_| entry.clone());
            NoteVerifier::from_vkey(&text).map_err(|e| {
                ConfigError::invalid(
                    "[witness] logs",
                    format!("{entry:?} is not a log's verifier key: {e}"),
                )
            })
        })
        .collect()
}

/// `[witness] urls`, with how each is shown.
pub fn witness_urls(c: &Config) -> Vec<WitnessUrl> {
    c.witness
        .urls
        .iter()
        .map(|u| WitnessUrl {
            url: u.reveal().to_owned(),
            shown: u.shown(),
        })
        .collect()
}

/// The witness routes (their access is in `vigil_auth::ROUTES`).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/witness/add-checkpoint",
            post(add_checkpoint).layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES)),
        )
        .route("/api/v1/witness", get(info))
}

fn refusal_event(e: &WitnessError, from: std::net::IpAddr) -> Event {
    Event::audit_builder("witness_refused")
        .category(Category::IntrusionDetection)
        .event_type(EventType::Denied)
        .outcome(Outcome::Failure)
        .source(from)
        .field("http.response.status_code", i64::from(e.status()))
        .field("vigil.witness.refusal", e.kind())
        .message(format!("the witness refused a checkpoint: {e}"))
        .build()
}

async fn add_checkpoint(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let w = &state.witness;
    if !w.limit.allow(peer.ip(), Instant::now()) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "too many requests\n",
        )
            .into_response();
    }
    let Some(witness) = w.witness.clone() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the witness is not available\n",
        )
            .into_response();
    };
    let body = match body {
        Ok(b) => b,
        Err(_) => {
            return answer_refusal(&state, WitnessError::TooLarge, peer);
        }
    };
    // The state is fsynced before the cosignature leaves: off the runtime's threads.
    let result = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body)).await;
    match result {
        Ok(Ok(lines)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            lines,
        )
            .into_response(),
        Ok(Err(e)) => answer_refusal(&state, e, peer),
        Err(e) => answer_refusal(&state, WitnessError::Internal(e.to_string()), peer),
    }
}

fn answer_refusal(state: &AppState, e: WitnessError, peer: SocketAddr) -> Response {
    crate::audit::append(&state.ingest, refusal_event(&e, peer.ip()));
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let content_type = if matches!(e, WitnessError::Conflict { .. }) {
        SIZE_CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    (status, [(header::CONTENT_TYPE, content_type)], e.body()).into_response()
}

async fn info(State(state): State<Arc<AppState>>) -> Response {
    let w = &state.witness;
    let witnesses = w.status.witnesses();
    axum::Json(json!({
        "witness": w.witness.as_ref().map(|w| json!({
            "name": w.name(),
            "vkey": w.vkey(),
            "logs": w.logs().into_iter().map(|(origin, l)| json!({
                "origin": origin, "size": l.size, "source": l.source,
            })).collect::<Vec<_>>(),
        })),
        "cosigners": witnesses.into_iter().map(|(name, v)| json!({
            "witness": name, "cosigned_size": v.cosigned_size, "rollback": v.rollback,
        })).collect::<Vec<_>>(),
        "rollback": w.status.rollback(),
    }))
    .into_response()
}
