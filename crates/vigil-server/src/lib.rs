//! # vigil-server: the running system
//!
//! Wires the pieces together for `vigil serve`:
//!
//! ```text
//!  syslog UDP/TCP/TLS ─┐
//!  HTTP ingest, HEC,  ─┼─► parse (vigil-parse) ─► Ingest pipeline ─► Ledger (group commit) ─► ack
//!  Elasticsearch bulk ─┘                          redact, bound memory
//! ```
//!
//! [`start`] opens the ledger, binds every configured listener (failing early and clearly when an
//! address is taken), and returns a [`Running`] server; [`Running::shutdown`] stops the
//! listeners, waits for every accepted event to become durable, and closes the ledger with a
//! final signed checkpoint.
#![deny(missing_docs)]

pub mod admin;
pub mod audit;
pub mod cases;
pub mod cluster;
mod config;
pub mod demo;
pub mod detect;
pub mod drill;
mod error;
pub mod http;
pub mod intel;
pub mod lifecycle;
pub mod listen;
pub mod listen_grpc;
pub mod metrics;
pub mod report;
pub mod report_schedule;
pub mod search;
pub mod silence;
pub mod syslog;
pub mod tls;
mod topology;
pub mod web;
pub mod witness;

// Authentication lives in `vigil-auth`, the pipeline in `vigil-ingest`, responses in
// `vigil-respond`; these keep the server's old paths working.
pub use vigil_auth::token as auth;
pub use vigil_auth::{access, session, users};
pub use vigil_ingest::{idempotency, pipeline};
pub use vigil_respond::{checkpoint_sink, decisions, notify};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use vigil_ledger::{Ledger, LedgerConfig, RecoveryReport};

use crate::pipeline::Ingest;

pub use error::StartError;
pub use vigil_config::{Config, ConfigError};

/// The plan of a running system: the settings of [`vigil_config::Config`] as the components
/// take them, built by [`ServerConfig::from_config`] (which checks them).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The configuration this plan was built from (its settings are audited at start).
    pub settings: vigil_config::Config,
    /// Data directory.
    pub data_dir: PathBuf,
    /// HTTP API address.
    pub http: Option<SocketAddr>,
    /// Syslog over UDP.
    pub syslog_udp: Option<SocketAddr>,
    /// Syslog over TCP.
    pub syslog_tcp: Option<SocketAddr>,
    /// Syslog over TLS (RFC 5425).
    pub syslog_tls: Option<SocketAddr>,
    /// OpenTelemetry logs over OTLP/gRPC (plaintext HTTP/2).
    pub otlp_grpc: Option<SocketAddr>,
    /// Certificate for TLS listeners.
    pub tls: tls::CertSource,
    /// Longest syslog message kept whole.
    pub max_message_bytes: usize,
    /// Largest HTTP body.
    pub max_body_bytes: usize,
    /// Keep `event.original`.
    pub keep_original: bool,
    /// Extra redaction patterns `(kind, regex)`; `None` turns redaction off.
    pub redaction: Option<Vec<(String, String)>>,
    /// Retention: remove sealed segments older than this.
    pub retention: Option<Duration>,
    /// Ledger tuning.
    pub ledger: LedgerConfig,
    /// Threads that build the search index; 0 runs without an index (searches scan).
    pub index_threads: usize,
    /// Directories of Sigma rules; none turns detection off.
    pub rule_dirs: Vec<PathBuf>,
    /// Seconds between two notifications of one alert's updates.
    pub alert_throttle_secs: i64,
    /// Where alerts are sent.
    pub notifiers: Vec<notify::Notifier>,
    /// Where every signed checkpoint is sent (an off-host copy of the ledger's history).
    pub checkpoint_sinks: Vec<checkpoint_sink::CheckpointSink>,
    /// Scheduled pipeline queries that alert on non-empty results.
    pub query_rules: Vec<detect::QueryRule>,
    /// Compliance reports computed and sent on a schedule (`[[report]]`).
    pub reports: Vec<report_schedule::ReportSchedule>,
    /// First retry delay of a failed notification (then ×4, ×16).
    pub notify_backoff: Duration,
    /// Responders: which alerts ban their address, for how long.
    pub responders: Vec<decisions::Responder>,
    /// Networks never banned, besides loopback, link-local and the server's own addresses.
    pub allowlist: Vec<decisions::Net>,
    /// Run the demo: a generated stream with attacks, bundled rules, bans.
    pub demo: bool,
    /// Serve HTTP (API and UI) over TLS with the certificate of [`ServerConfig::tls`].
    pub http_tls: bool,
    /// A UI session ends after this long without a request.
    pub session_idle: Duration,
    /// A UI session ends this long after login in any case.
    pub session_max: Duration,
    /// Load Vigil's own bundled rules (brute force against Vigil's login).
    pub builtin_rules: bool,
    /// Connection limits and timeouts of the TCP listeners (0 limits are sized from the
    /// open-file limit at start).
    pub connections: listen::ConnLimits,
    /// Witnesses that cosign this ledger's checkpoints (`[witness] urls`).
    pub witnesses: Vec<vigil_respond::witness::WitnessUrl>,
    /// Logs this server witnesses (`[witness] logs`).
    pub witness_logs: Vec<vigil_ledger::note::NoteVerifier>,
}

/// A server that is running.
pub struct Running {
    /// Bound HTTP address.
    pub http: Option<SocketAddr>,
    /// Bound syslog UDP address.
    pub syslog_udp: Option<SocketAddr>,
    /// Bound syslog TCP address.
    pub syslog_tcp: Option<SocketAddr>,
    /// Bound syslog TLS address.
    pub syslog_tls: Option<SocketAddr>,
    /// Bound OTLP/gRPC address.
    pub otlp_grpc: Option<SocketAddr>,
    /// What ledger recovery found at start (nothing on a cluster node).
    pub recovery: RecoveryReport,
    /// The ledger writer (`None` on a cluster node: the door writes to the stream).
    pub ledger: Option<Ledger>,
    /// This node's part in the cluster, in cluster mode.
    pub cluster: Option<cluster::ClusterNode>,
    /// The search index follower, if the index is on.
    pub index: Option<Arc<search::IndexService>>,
    /// The detector, if rules were given.
    pub detect: Option<Arc<detect::DetectService>>,
    /// Notification delivery counters.
    pub notify_stats: Arc<notify::NotifyStats>,
    /// Where the generated first admin password was written, when this start created it.
    pub initial_admin: Option<PathBuf>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    drains: JoinSet<()>,
    ingest: Arc<Ingest>,
    data_dir: PathBuf,
    decisions: Arc<decisions::DecisionService>,
}

/// Opens the ledger, binds the listeners and starts serving. A start that fails after it was
/// recorded in the ledger (a port in use, say) is recorded as a failed stop, stored by the
/// next start.
pub async fn start(config: ServerConfig) -> Result<Running, StartError> {
    let data_dir = config.data_dir.clone();
    let started = match vigil_cluster::ClusterSettings::from_section(&config.settings.cluster) {
        Some(settings) => cluster::build(config, settings).await,
        None => topology::build(config).await,
    };
    if let Err(e) = &started {
        lifecycle::record_failed_start(&data_dir, &e.to_string());
    }
    started
}

/// How long [`Running::shutdown`] waits for the other tasks (HTTP requests in progress, say)
/// before aborting them.
const STOP_TASKS_WITHIN: Duration = Duration::from_secs(10);

impl Running {
    /// Stops accepting, waits until every accepted event is durable, signs a final checkpoint.
    pub async fn shutdown(mut self) -> Result<(), String> {
        self.stop_tasks().await;
        self.ingest.drain().await;
        // The detector evaluates what is left and saves its state while the ledger is open
        // (alerts are appended to it).
        if let Some(detect) = self.detect.take() {
            blocking(move || detect.stop()).await?;
        }
        // Cluster mode: only now, with the detector's last alerts, bans and cursor durable,
        // are its leases given up (a successor resumes from exactly there).
        if let Some(node) = &self.cluster {
            node.detection().release().await;
        }
        // Responders' bans are saved in batches: save what is left.
        let decisions = Arc::clone(&self.decisions);
        blocking(move || decisions.save()).await?;
        // The stop is the last event of the run, durable before the ledger closes (the
        // listeners are down, so this waits only for the ledger).
        let stop = self
            .ingest
            .append_waiting(vec![lifecycle::stop_event()], vigil_ingest::Origin::Audit)
            .await
            .map_err(|e| e.to_string())?;
        stop.durable()
            .await
            .map_err(|e| format!("storing the stop's audit event: {e}"))?;
        drop(self.ingest);
        let closed = match self.ledger {
            Some(ledger) => tokio::task::spawn_blocking(move || ledger.close())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string()),
            None => Ok(()),
        };
        if let Some(node) = self.cluster {
            node.leave().await;
        }
        // The index takes in the last events and commits, so a clean restart has nothing to do.
        if let Some(index) = self.index {
            blocking(move || index.stop()).await?;
        }
        if closed.is_ok() {
            lifecycle::record_clean_stop(&self.data_dir);
        }
        closed
    }

    /// Signals every task to stop; waits for the syslog TCP/TLS listeners to store what their
    /// senders wrote (bounded in `syslog`, however long storing takes), and for the other tasks
    /// at most [`STOP_TASKS_WITHIN`] before aborting them.
    async fn stop_tasks(&mut self) {
        let _ = self.stop.send(true);
        while self.drains.join_next().await.is_some() {}
        let deadline = tokio::time::sleep(STOP_TASKS_WITHIN);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = self.tasks.join_next() => if next.is_none() { break },
                _ = &mut deadline => {
                    tracing::warn!("{} listener tasks did not stop within {} s; aborting them", self.tasks.len(), STOP_TASKS_WITHIN.as_secs());
                    self.tasks.abort_all();
                    break;
                }
            }
        }
    }
}

/// Runs `f` on the blocking pool; a panic in it is an error.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())
}
