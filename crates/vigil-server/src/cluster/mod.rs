//! Cluster mode (DESIGN §8, docs/cluster.md): the running system of a node of a Vigil cluster
//! on NATS JetStream, built by [`build`] from the same components as
//! `crate::topology::build`, with the one door writing to the cluster's stream
//! ([`door::StreamLog`]) instead of a local ledger.
//!
//! What needs a local ledger and is not cluster-aware yet (query rules, retention, checkpoint
//! sinks) is off on a cluster node. Checkpoints, proofs, the integrity summary, the
//! whole-ledger verification and compliance reports are per shard, from the shard's owner
//! ([`integrity`], [`verify`], [`report`]); the export fans out as a search does.
//!
//! Accounts, tokens and sessions are shared through JetStream KV ([`auth`]); the cluster's
//! health is `GET /api/v1/cluster` and the cluster gauges of `/metrics` ([`health`]).

pub mod auth;
pub mod books;
pub mod detect;
mod detect_balance;
pub mod detector_partitions;
pub mod door;
pub mod drills;
pub mod gap;
pub mod health;
pub mod integrity;
pub mod negative;
pub mod query;
pub mod query_wire;
pub mod registry;
pub mod report;
pub mod shard_worker;
pub mod shards;
pub mod state;
pub mod verify;
mod wire;
pub mod witness;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use vigil_cluster::{Cluster, ClusterSettings, NodeInfo, SyncCheck};
use vigil_event::Timestamp;
use vigil_ingest::NodeLog;

use crate::error::StartError;
use crate::metrics::Metrics;
use crate::pipeline::Ingest;
use crate::topology::{self, Core, Tasks};
use crate::{Running, ServerConfig, http, lifecycle, notify};

/// A running node's part in the cluster: its connection, its registration and its shards.
pub struct ClusterNode {
    cluster: Cluster,
    registration: registry::Registration,
    shards: Arc<shards::ShardSet>,
    /// Answers other nodes' queries while it lives.
    _queries: query::Responder,
    /// Answers other nodes' reads of this node's shards (checkpoints, proofs) while it lives.
    _reads: integrity::Responder,
    detection: detect::ClusterDetection,
}

impl ClusterNode {
    /// The connection to the cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The shards this node owns (queries, witnesses and health use them).
    pub fn shards(&self) -> &Arc<shards::ShardSet> {
        &self.shards
    }

    /// Detection and the shared books on this node.
    pub fn detection(&self) -> &detect::ClusterDetection {
        &self.detection
    }

    /// Becomes `Some(why)` when another process registered under this node's name: the node
    /// must stop ([`registry::Registration::fenced`]).
    pub fn fenced(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.registration.fenced()
    }

    /// What `vigil serve` says about the node at start.
    pub fn banner(&self) -> Vec<String> {
        let s = self.cluster.settings();
        let mut lines = vec![format!(
            "cluster {} node {}: stream {} (R{}, {} partitions); an ack means JetStream stored \
             the batch on a majority of its replicas",
            s.names.cluster(),
            s.node,
            s.names.stream(),
            s.replicas,
            s.partitions
        )];
        for warning in self.cluster.retention_warnings() {
            lines.push(format!("warning: {warning}"));
        }
        if self.cluster.sync_check() == SyncCheck::Unverified {
            lines.push(
                "warning: no --cluster-monitor given: `sync_interval: always` on the NATS \
                 servers is not checked"
                    .into(),
            );
        }
        lines
    }

    /// Leaves the cluster cleanly (after the stop signal): the shards' workers stop, their
    /// ledgers close and their leases are released, then the registration is removed.
    pub(crate) async fn leave(self) {
        self.shards.stopped().await;
        self.registration.leave().await;
    }
}

/// Builds a cluster node: every component of `config` that works in cluster mode, in order.
pub(crate) async fn build(
    config: ServerConfig,
    settings: ClusterSettings,
) -> Result<Running, StartError> {
    topology::create_data_dir(&config)?;
    let redactor = topology::redactor(&config)?;
    let cluster = connect(settings).await?;
    detector_partitions::check(&cluster, config.settings.cluster.detector_partitions)
        .await
        .map_err(StartError::of("cluster detector partitions"))?;
    let (shared, accounts, initial_admin) = accounts(&config, &cluster).await?;
    let registration = register(&config, &cluster).await?;
    let metrics = Arc::new(Metrics::default());
    let door = NodeLog::Stream(Arc::new(door::StreamLog::new(cluster.clone())));
    let mut ingest = Ingest::new(door, redactor, Arc::clone(&metrics));
    let enricher = crate::intel::enricher(&config.settings).await;
    if let Some(e) = &enricher {
        ingest = ingest.with_enricher(Arc::clone(e));
    }
    // Drills run on the node they were started on; what other nodes raise of them comes back
    // through `sys` (`drills`).
    let ingest = Arc::new(ingest.with_drills(Default::default()));
    let run = topology::audit_start(&config, &start_settings(&config, &cluster), &ingest).await?;
    let mut t = Tasks::new();
    if let Some(e) = enricher {
        let every = config.settings.enrich.reload.0;
        t.tasks
            .spawn(crate::intel::reload(e, every, t.stop_rx.clone()));
    }
    // One index thread per shard: a node holds several shards, each with its own index.
    let shards = shards::ShardSet::start(
        cluster.clone(),
        &config.data_dir,
        config.index_threads.min(1),
        t.stop_rx.clone(),
    );
    let queries = wire::query_responder(&cluster, &shards).await?;
    let reads = integrity::Responder::start(&cluster, shards.clone())
        .await
        .map_err(StartError::of("cluster shard reads"))?;
    let witness = wire::witnesses(&config, &cluster, &shards, &ingest, &mut t);
    let decisions = wire::shared_decisions(&config, &ingest, &mut t);
    let notify_stats = Arc::new(notify::NotifyStats::default());
    let shared_books = Arc::new(books::SharedBooks::new(Arc::default()));
    if let Some(registry) = ingest.drills() {
        shared_books.drills.attach(Arc::clone(registry));
    }
    let detection = wire::detection(
        &config,
        &cluster,
        &ingest,
        &decisions,
        &notify_stats,
        &shared_books,
        &mut t,
    )
    .await?;
    t.tasks.spawn(auth::watch_accounts(
        Arc::clone(&shared.shared),
        shared.bucket.clone(),
        Arc::clone(&shared.absent),
        t.stop_rx.clone(),
    ));
    let tokens = topology::auth_stores(&config, &accounts, &ingest, &mut t)?;
    let tracker = topology::connection_trackers(&config, &metrics);
    let mut bound = topology::syslog_listeners(&config, &ingest, &tracker, &mut t).await?;
    let detect_service = detection.detect.clone();
    let core = Core {
        ingest: Arc::clone(&ingest),
        index: None,
        detect: detection.detect.clone(),
        decisions: Arc::clone(&decisions),
        notify_stats: Arc::clone(&notify_stats),
    };
    if let Some(addr) = config.http {
        let node = Some(cluster.clone());
        let state =
            topology::http_state(&config, &core, tokens, (&accounts, &node), run, witness).await;
        if let Some(drills) = &state.drills {
            drills.share_reports(Arc::clone(&shared_books.drills.reports));
        }
        state.cases.attach(shared_books);
        let app = gate(http::router(state), &cluster);
        bound.http = Some(topology::http_listener(&config, addr, app, &tracker, &mut t).await?);
    }
    Ok(Running {
        data_dir: config.data_dir.clone(),
        http: bound.http,
        syslog_udp: bound.syslog_udp,
        syslog_tcp: bound.syslog_tcp,
        syslog_tls: bound.syslog_tls,
        otlp_grpc: None,
        recovery: Default::default(),
        ledger: None,
        cluster: Some(ClusterNode {
            cluster,
            registration,
            shards,
            _queries: queries,
            _reads: reads,
            detection,
        }),
        index: None,
        detect: detect_service,
        notify_stats,
        initial_admin,
        stop: t.stop,
        tasks: t.tasks,
        drains: t.drains,
        ingest,
        decisions,
    })
}

/// How long a start keeps trying transient NATS failures (a timeout, no responders yet).
const CONNECT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// The cluster's shared accounts, and the first admin if there is none. Buckets just created
/// on a busy NATS cluster can answer their first listing late: that is tried again for a while
/// (the first-admin creation is a compare-and-set, so trying again creates no second admin).
async fn accounts(
    config: &ServerConfig,
    cluster: &Cluster,
) -> Result<
    (
        auth::ClusterAuth,
        vigil_auth::AuthStore,
        Option<std::path::PathBuf>,
    ),
    StartError,
> {
    let deadline = std::time::Instant::now() + CONNECT_PATIENCE;
    loop {
        let attempt = async {
            let shared = auth::ClusterAuth::open(cluster.clone(), config.session_max)
                .await
                .map_err(StartError::of("cluster accounts"))?;
            let accounts = vigil_auth::AuthStore::Shared(Arc::clone(&shared.shared));
            let initial_admin = topology::initial_admin(config, &accounts).await?;
            Ok::<_, StartError>((shared, accounts, initial_admin))
        };
        match attempt.await {
            Ok(opened) => return Ok(opened),
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::warn!("cluster accounts: {e}; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Connects to NATS with the start-up checks (`sync_always` on the monitored servers, the
/// stream's file storage, replicas and partitions), and checks that the servers' `max_payload`
/// holds the largest event with room to spare.
async fn connect(settings: ClusterSettings) -> Result<Cluster, StartError> {
    // A NATS cluster that has just formed (or nodes creating the stream at the same moment)
    // can time out a first request: transient failures are tried again for a while.
    let deadline = std::time::Instant::now() + CONNECT_PATIENCE;
    let cluster = loop {
        match Cluster::connect(settings.clone()).await {
            Ok(cluster) => break cluster,
            Err(e) if e.retryable() && std::time::Instant::now() < deadline => {
                tracing::warn!("cluster: {e}; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let max_payload = cluster.max_payload();
    if max_payload < door::MIN_MAX_PAYLOAD {
        return Err(StartError::Component {
            component: "cluster",
            message: format!(
                "the NATS servers accept messages of at most {max_payload} bytes; Vigil needs at \
                 least {} (set `max_payload: 8MB` in nats-server.conf)",
                door::MIN_MAX_PAYLOAD
            ),
        });
    }
    for warning in cluster.retention_warnings() {
        tracing::warn!("cluster {}: {warning}", cluster.settings().names.cluster());
    }
    match cluster.sync_check() {
        SyncCheck::Verified { servers } => tracing::info!(
            "cluster {}: {servers} NATS server(s) fsync every write (sync_interval: always)",
            cluster.settings().names.cluster()
        ),
        SyncCheck::Unverified => tracing::warn!(
            "cluster {}: no --cluster-monitor given, so `sync_interval: always` could not be \
             checked; an acknowledged event may be lost on a power failure without it",
            cluster.settings().names.cluster()
        ),
    }
    Ok(cluster)
}

/// Registers this node under its name (refusing a name another live process holds).
async fn register(
    config: &ServerConfig,
    cluster: &Cluster,
) -> Result<registry::Registration, StartError> {
    let scheme = if config.http_tls { "https" } else { "http" };
    let info = NodeInfo {
        node: cluster.node().to_string(),
        http: config.http.map(|a| format!("{scheme}://{a}")),
        started: Timestamp::now().to_rfc3339(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    registry::Registration::join(cluster, &info)
        .await
        .map_err(StartError::of("cluster"))
}

/// The settings the start records, with what the cluster's start-up checks found.
fn start_settings(
    config: &ServerConfig,
    cluster: &Cluster,
) -> std::collections::BTreeMap<String, String> {
    let mut settings = lifecycle::settings(config);
    let s = cluster.settings();
    let sync = match cluster.sync_check() {
        SyncCheck::Verified { servers } => format!("verified on {servers} server(s)"),
        SyncCheck::Unverified => "unverified (no monitoring endpoint given)".to_string(),
    };
    settings.insert("cluster.node".into(), s.node.clone());
    settings.insert("cluster.stream".into(), s.names.stream());
    settings.insert("cluster.replicas".into(), s.replicas.to_string());
    settings.insert("cluster.partitions".into(), s.partitions.to_string());
    settings.insert("cluster.sync_always".into(), sync);
    let retention = match cluster.retention_warnings() {
        [] => "keeps every message (no limits)".to_string(),
        warnings => warnings.join("; "),
    };
    settings.insert("cluster.retention".into(), retention);
    settings
}

/// The HTTP API of a cluster node: `/healthz` says whether the node is connected to NATS.
fn gate(app: axum::Router, cluster: &Cluster) -> axum::Router {
    let client = cluster.client().clone();
    app.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let client = client.clone();
            async move { gated(&client, request, next).await }
        },
    ))
}

async fn gated(client: &async_nats::Client, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/healthz" {
        return match client.connection_state() {
            async_nats::connection::State::Connected => "ok\n".into_response(),
            state => (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({
                    "status": "degraded",
                    "reason": format!("NATS connection {state:?}").to_lowercase(),
                })),
            )
                .into_response(),
        };
    }
    next.run(request).await
}
