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
pub mod demo;
pub mod detect;
pub mod http;
pub mod lifecycle;
pub mod listen;
pub mod metrics;
pub mod search;
pub mod syslog;
pub mod tls;
pub mod web;

// Authentication lives in `vigil-auth`; these keep the server's old paths working.
pub use vigil_auth::token as auth;
pub use vigil_auth::{access, session, users};
pub use vigil_ingest::{idempotency, pipeline};
pub use vigil_respond::{checkpoint_sink, decisions, notify};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;
use vigil_event::Timestamp;
use vigil_ledger::{Ledger, LedgerConfig, PruneOutcome, RecoveryReport, RetentionPolicy};

use crate::metrics::Metrics;
use crate::pipeline::{Ingest, MAX_IN_FLIGHT_EVENTS};

/// Everything `vigil serve` can be told.
#[derive(Debug, Clone)]
pub struct ServerConfig {
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
}

impl ServerConfig {
    /// The zero-configuration defaults of DESIGN §5, on loopback.
    pub fn defaults(data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            tls: tls::CertSource::SelfSigned(data_dir.clone()),
            data_dir,
            http: Some("127.0.0.1:8080".parse().expect("static address")),
            syslog_udp: Some("127.0.0.1:5514".parse().expect("static address")),
            syslog_tcp: Some("127.0.0.1:5514".parse().expect("static address")),
            syslog_tls: Some("127.0.0.1:6514".parse().expect("static address")),
            max_message_bytes: 64 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
            keep_original: true,
            redaction: Some(Vec::new()),
            retention: None,
            ledger: LedgerConfig::default(),
            index_threads: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(2),
            rule_dirs: Vec::new(),
            alert_throttle_secs: 600,
            notifiers: Vec::new(),
            checkpoint_sinks: Vec::new(),
            query_rules: Vec::new(),
            notify_backoff: notify::DEFAULT_BACKOFF,
            responders: Vec::new(),
            allowlist: Vec::new(),
            demo: false,
            http_tls: false,
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(12 * 3600),
            builtin_rules: true,
            connections: listen::ConnLimits::default(),
        }
    }
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
    /// What ledger recovery found at start.
    pub recovery: RecoveryReport,
    /// The ledger writer.
    pub ledger: Ledger,
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

async fn bind_tcp(addr: SocketAddr, what: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for {what} on {addr}: {e} (is another process using it? choose another address with the matching flag)"))
}

/// Opens the ledger, binds the listeners and starts serving. A start that fails after it was
/// recorded in the ledger (a port in use, say) is recorded as a failed stop, stored by the
/// next start.
pub async fn start(config: ServerConfig) -> Result<Running, String> {
    let data_dir = config.data_dir.clone();
    let started = start_recorded(config).await;
    if let Err(e) = &started {
        lifecycle::record_failed_start(&data_dir, e);
    }
    started
}

async fn start_recorded(mut config: ServerConfig) -> Result<Running, String> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
    // The settings as the operator gave them (before the bundled rules are added).
    let start_settings = lifecycle::settings(&config);
    let initial_admin = users::ensure_initial_admin(&config.data_dir).map_err(|e| e.to_string())?;
    if config.builtin_rules {
        config
            .rule_dirs
            .push(audit::write_self_rules(&config.data_dir)?);
    }
    if config.demo {
        let dir = demo::write_rules(&config.data_dir)?;
        config.rule_dirs.push(dir);
        config.responders.push(decisions::Responder {
            rules: demo::BAN_RULES.iter().map(|s| s.to_string()).collect(),
            min_level: None,
            duration: Duration::from_secs(600),
            max_duration: Duration::from_secs(86_400),
        });
    }
    // The pipeline bounds in-flight events; the ledger queue must never be the one that blocks.
    config.ledger.queue_depth = config.ledger.queue_depth.max(MAX_IN_FLIGHT_EVENTS + 1024);
    let redactor = vigil_ingest::pipeline::redactor(config.redaction.as_deref())?;
    let data_dir = config.data_dir.clone();
    let ledger_config = config.ledger.clone();
    let (ledger, recovery) =
        tokio::task::spawn_blocking(move || Ledger::open(&data_dir, ledger_config))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    let index = if config.index_threads > 0 {
        let (dir, writer, threads) = (
            config.data_dir.clone(),
            ledger.clone(),
            config.index_threads,
        );
        let service =
            tokio::task::spawn_blocking(move || search::IndexService::start(&dir, writer, threads))
                .await
                .map_err(|e| e.to_string())??;
        Some(Arc::new(service))
    } else {
        None
    };
    let metrics = Arc::new(Metrics::default());
    let ingest = Arc::new(Ingest::new(ledger.clone(), redactor, Arc::clone(&metrics)));
    // This start (and any change of settings) is the first thing in the ledger from this run,
    // durable before any listener takes events; the settings are recorded for the next start
    // only then, so a change is never forgotten unrecorded.
    let start_events = lifecycle::record_start(&config.data_dir, &start_settings);
    let run = serde_json::json!({
        "started": Timestamp::now().to_rfc3339(),
        "version": env!("CARGO_PKG_VERSION"),
        "previous_stop": start_events.first().and_then(|e| e.get_str("vigil.previous_stop")),
    });
    ingest
        .append_waiting(start_events, vigil_ingest::Origin::Audit)
        .await
        .map_err(|e| e.to_string())?
        .durable()
        .await
        .map_err(|e| format!("storing the start's audit events: {e}"))?;
    lifecycle::settings_stored(&config.data_dir, &start_settings);
    let notify_stats = Arc::new(notify::NotifyStats::default());
    let mut tasks = JoinSet::new();
    let (stop, stop_rx) = watch::channel(false);
    let mut allowlist = decisions::default_allowlist();
    allowlist.extend(config.allowlist.iter().copied());
    for addr in [
        config.http,
        config.syslog_udp,
        config.syslog_tcp,
        config.syslog_tls,
    ]
    .into_iter()
    .flatten()
    {
        if !addr.ip().is_unspecified() {
            allowlist.push(decisions::Net::new(
                addr.ip(),
                if addr.is_ipv4() { 32 } else { 128 },
            ));
        }
    }
    let decisions = Arc::new(decisions::DecisionService::open(
        &config.data_dir,
        config.responders.clone(),
        allowlist,
        Arc::clone(&ingest),
    )?);
    {
        let decisions = Arc::clone(&decisions);
        let mut stop_expiry = stop_rx.clone();
        tasks.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = stop_expiry.changed() => return,
                }
                let d = Arc::clone(&decisions);
                let _ = tokio::task::spawn_blocking(move || d.tick()).await;
            }
        });
    }
    if !config.checkpoint_sinks.is_empty() {
        tasks.spawn(checkpoint_sink::run(
            config.checkpoint_sinks.clone(),
            ledger.clone(),
            Arc::clone(&ingest),
            config.notify_backoff,
            stop_rx.clone(),
        ));
    }
    let detect = if config.rule_dirs.is_empty() && config.query_rules.is_empty() {
        None
    } else {
        let (tx, rx) = tokio::sync::mpsc::channel(10_000);
        let tx = notify::NotifyQueue::new(tx, config.notifiers.clone(), Arc::clone(&notify_stats));
        tasks.spawn(notify::run(
            rx,
            config.notifiers.clone(),
            Arc::clone(&notify_stats),
            Arc::clone(&ingest),
            config.notify_backoff,
            stop_rx.clone(),
        ));
        let (dir, dirs, throttle, l, responders) = (
            config.data_dir.clone(),
            config.rule_dirs.clone(),
            config.alert_throttle_secs,
            Arc::clone(&ingest),
            Arc::clone(&decisions),
        );
        Some(
            tokio::task::spawn_blocking(move || {
                detect::DetectService::start(&dir, dirs, throttle, l, tx, Some(responders))
            })
            .await
            .map_err(|e| e.to_string())??,
        )
    };
    let tokens = Arc::new(auth::TokenStore::open(&config.data_dir).map_err(|e| e.to_string())?);
    {
        // Audit events of `vigil user|token` (run while serving, or while no server ran: the
        // first tick is immediate) and token last-used times.
        let (dir, l, tokens) = (
            config.data_dir.clone(),
            Arc::clone(&ingest),
            Arc::clone(&tokens),
        );
        let mut stop_bookkeeping = stop_rx.clone();
        tasks.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                let stopping = tokio::select! {
                    _ = every.tick() => false,
                    _ = stop_bookkeeping.changed() => true,
                };
                let (dir, l, tokens) = (dir.clone(), Arc::clone(&l), Arc::clone(&tokens));
                let _ = tokio::task::spawn_blocking(move || {
                    match audit::drain_pending(&dir, &l) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!("stored {n} audit events of command-line changes"),
                        Err(e) => tracing::error!("{e}"),
                    }
                    if let Err(e) = tokens.flush_usage() {
                        tracing::error!("token last-used times: {e}");
                    }
                })
                .await;
                if stopping {
                    return;
                }
            }
        });
    }
    let settings = syslog::SyslogSettings {
        max_message_bytes: config.max_message_bytes,
        keep_original: config.keep_original,
        idle_timeout: config.connections.syslog_idle_timeout,
        frame_timeout: config.connections.syslog_frame_timeout,
    };
    // The TCP listeners share the descriptors the open-file limit leaves for connections.
    let tcp_listeners = [config.http, config.syslog_tcp, config.syslog_tls]
        .iter()
        .flatten()
        .count();
    let limits = config
        .connections
        .resolved(tcp_listeners, listen::open_file_limit());
    if tcp_listeners > 0 {
        tracing::info!(
            "connections: at most {} per TCP listener, {} per address; header timeout {} s, body timeout {} s, syslog idle timeout {} s",
            limits.max_connections,
            limits.max_per_address,
            limits.header_timeout.as_secs(),
            limits.body_timeout.as_secs(),
            limits.syslog_idle_timeout.as_secs()
        );
    }
    let tracker = |name| listen::ConnTracker::new(name, limits, Arc::clone(&metrics));

    let mut bound = (None, None, None, None);
    // The syslog TCP/TLS listeners: a stop waits for them to store what their senders wrote
    // (they bound their own drains by bytes and by time spent waiting, never by how long
    // storing takes on a busy machine).
    let mut drains = JoinSet::new();
    if let Some(addr) = config.syslog_udp {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|e| format!("cannot listen for syslog/udp on {addr}: {e}"))?;
        bound.1 = socket.local_addr().ok();
        tasks.spawn(syslog::run_udp(
            socket,
            Arc::clone(&ingest),
            settings.clone(),
            stop_rx.clone(),
        ));
    }
    if let Some(addr) = config.syslog_tcp {
        let listener = bind_tcp(addr, "syslog/tcp").await?;
        bound.2 = listener.local_addr().ok();
        drains.spawn(syslog::run_tcp(
            listener,
            None,
            tracker("syslog-tcp"),
            Arc::clone(&ingest),
            settings.clone(),
            stop_rx.clone(),
        ));
    }
    if let Some(addr) = config.syslog_tls {
        let tls_config = tls::server_config(&config.tls)?;
        let listener = bind_tcp(addr, "syslog/tls").await?;
        bound.3 = listener.local_addr().ok();
        let acceptor = tokio_rustls::TlsAcceptor::from(tls_config);
        drains.spawn(syslog::run_tcp(
            listener,
            Some(acceptor),
            tracker("syslog-tls"),
            Arc::clone(&ingest),
            settings.clone(),
            stop_rx.clone(),
        ));
    }
    if let Some(addr) = config.http {
        // Keys of batches stored before a crash, read back before the first request. A ledger
        // that cannot be read back costs the keys (a retry may be stored twice), not the start.
        let idempotency = {
            let data_dir = config.data_dir.clone();
            let rebuilt = tokio::task::spawn_blocking(move || {
                idempotency::Idempotency::from_ledger(&data_dir)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
            rebuilt.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "idempotency keys not rebuilt from the ledger");
                idempotency::Idempotency::default()
            })
        };
        let listener = bind_tcp(addr, if config.http_tls { "https" } else { "http" }).await?;
        bound.0 = listener.local_addr().ok();
        let state = Arc::new(http::AppState {
            ingest: Arc::clone(&ingest),
            tokens,
            data_dir: config.data_dir.clone(),
            keep_original: config.keep_original,
            max_body_bytes: config.max_body_bytes,
            index: index.clone(),
            searches: Arc::new(tokio::sync::Semaphore::new(http::MAX_SEARCHES_IN_FLIGHT)),
            detect: detect.clone(),
            notify_stats: Arc::clone(&notify_stats),
            decisions: Arc::clone(&decisions),
            bouncer_polls: Default::default(),
            idempotency,
            sessions: Arc::new(session::SessionStore::new(
                &config.data_dir,
                config.session_idle,
                config.session_max,
            )),
            login_limiter: session::LoginLimiter::default(),
            account_limiter: session::AccountLimiter::default(),
            token_limiter: session::LoginLimiter::for_tokens(),
            anonymous_limiter: session::LoginLimiter::for_tokens(),
            tls: config.http_tls,
            last_verification: std::sync::Mutex::new(None),
            run: run.clone(),
            verifying: std::sync::atomic::AtomicBool::new(false),
        });
        let app = http::router(state);
        let acceptor = if config.http_tls {
            Some(tokio_rustls::TlsAcceptor::from(tls::http_server_config(
                &config.tls,
            )?))
        } else {
            None
        };
        let name = if config.http_tls { "https" } else { "http" };
        tasks.spawn(listen::serve_http(
            listener,
            acceptor,
            app,
            tracker(name),
            stop_rx.clone(),
        ));
    }
    if let Some(detect) = &detect {
        for rule in config.query_rules.clone() {
            tasks.spawn(run_query_rule(
                rule,
                Arc::clone(detect),
                index.clone(),
                ledger.clone(),
                stop_rx.clone(),
            ));
        }
    }
    if config.demo {
        tasks.spawn(demo::run(Arc::clone(&ingest), stop_rx.clone()));
    }
    if let Some(max_age) = config.retention {
        let ledger = ledger.clone();
        let mut stop_retention = stop_rx.clone();
        tasks.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = stop_retention.changed() => return,
                }
                let ledger = ledger.clone();
                let outcome = tokio::task::spawn_blocking(move || {
                    ledger.prune(RetentionPolicy { max_age }, Timestamp::now())
                })
                .await;
                match outcome {
                    Ok(Ok(PruneOutcome::Pruned(r))) => tracing::info!(
                        "retention removed events {}..{} ({} segments)",
                        r.start,
                        r.end,
                        r.segments.len()
                    ),
                    Ok(Ok(PruneOutcome::Held { reason })) => {
                        tracing::info!("retention skipped, legal hold: {reason}")
                    }
                    Ok(Ok(PruneOutcome::NothingToDo)) => {}
                    Ok(Err(e)) => tracing::error!("retention failed: {e}"),
                    Err(e) => tracing::error!("retention task: {e}"),
                }
            }
        });
    }
    Ok(Running {
        data_dir: config.data_dir.clone(),
        http: bound.0,
        syslog_udp: bound.1,
        syslog_tcp: bound.2,
        syslog_tls: bound.3,
        recovery,
        ledger,
        index,
        detect,
        notify_stats,
        initial_admin,
        stop,
        tasks,
        drains,
        ingest,
        decisions,
    })
}

/// Runs one query rule on its schedule until stopped.
async fn run_query_rule(
    rule: detect::QueryRule,
    detect: Arc<detect::DetectService>,
    index: Option<Arc<search::IndexService>>,
    ledger: Ledger,
    mut stop: watch::Receiver<bool>,
) {
    let pipeline = match vigil_query::parse(&rule.query) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(
                "query rule {}: column {}: {} (rule not run)",
                rule.name,
                e.column,
                e.message
            );
            return;
        }
    };
    let mut every = tokio::time::interval(rule.every.max(Duration::from_secs(1)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => return,
        }
        let now = Timestamp::now();
        let limits = vigil_query::Limits {
            from: Some(Timestamp::from_nanos(now.as_nanos().saturating_sub(
                rule.window.as_nanos().min(i64::MAX as u128) as i64,
            ))),
            to: None,
            max_rows: 1000,
            now,
        };
        let (pipeline, index, ledger, detect, rule) = (
            pipeline.clone(),
            index.clone(),
            ledger.clone(),
            Arc::clone(&detect),
            rule.clone(),
        );
        let ran = tokio::task::spawn_blocking(move || {
            let result = match index {
                Some(index) => index.run(&pipeline, limits),
                // Only durable events: never alert on a write that is undone.
                None => ledger
                    .reader()
                    .map_err(|e| e.to_string())
                    .and_then(|reader| search::run_on_reader(reader, &pipeline, limits)),
            };
            match result {
                Ok(r) if !r.rows.is_empty() => {
                    detect.raise_query_rule(&rule, detect::query_rule_groups(&r))
                }
                Ok(_) => {}
                Err(e) => tracing::error!("query rule {}: {e}", rule.name),
            }
        })
        .await;
        if let Err(e) = ran {
            tracing::error!("query rule task: {e}");
        }
    }
}

/// How long [`Running::shutdown`] waits for the other tasks (HTTP requests in progress, say)
/// before aborting them.
const STOP_TASKS_WITHIN: Duration = Duration::from_secs(10);

impl Running {
    /// Stops accepting, waits until every accepted event is durable, signs a final checkpoint.
    pub async fn shutdown(mut self) -> Result<(), String> {
        let _ = self.stop.send(true);
        // Syslog TCP/TLS connections are read until their senders' data is all in and stored
        // (bounded in `syslog`), however long storing takes.
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
        self.ingest.drain().await;
        // The detector evaluates what is left and saves its state while the ledger is open
        // (alerts are appended to it).
        if let Some(detect) = self.detect.take() {
            tokio::task::spawn_blocking(move || detect.stop())
                .await
                .map_err(|e| e.to_string())?;
        }
        // Responders' bans are saved in batches: save what is left.
        let decisions = Arc::clone(&self.decisions);
        tokio::task::spawn_blocking(move || decisions.save())
            .await
            .map_err(|e| e.to_string())?;
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
        let ledger = self.ledger;
        drop(self.ingest);
        let closed = tokio::task::spawn_blocking(move || ledger.close())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string());
        // The index takes in the last events and commits, so a clean restart has nothing to do.
        if let Some(index) = self.index {
            tokio::task::spawn_blocking(move || index.stop())
                .await
                .map_err(|e| e.to_string())?;
        }
        if closed.is_ok() {
            lifecycle::record_clean_stop(&self.data_dir);
        }
        closed
    }
}
