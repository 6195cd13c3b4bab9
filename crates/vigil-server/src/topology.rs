//! Builds the running system from its configuration: one function per component, called in
//! order by [`build`] (the order matters: the start is audited before any listener takes
//! events; the decisions exist before the detector that bans; the listeners come last).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use vigil_config::ConfigError;
use vigil_event::Timestamp;
use vigil_ledger::{Ledger, PruneOutcome, RecoveryReport, RetentionPolicy};
use vigil_parse::redact::Redactor;

use crate::error::StartError;
use crate::metrics::Metrics;
use crate::pipeline::{Ingest, MAX_IN_FLIGHT_EVENTS};
use crate::{
    Running, ServerConfig, audit, auth, checkpoint_sink, decisions, demo, detect, http, lifecycle,
    notify, search,
};

pub(crate) mod listeners;

use listeners::otlp_grpc_listener;
pub(crate) use listeners::{connection_trackers, http_listener, http_state, syslog_listeners};

/// The tasks of a running system and the signal that stops them.
pub(crate) struct Tasks {
    /// Listener and background tasks, stopped by `stop` (bounded wait at shutdown).
    pub(crate) tasks: JoinSet<()>,
    /// Syslog TCP/TLS listeners: a stop waits for them to store what their senders wrote
    /// (they bound their own drains by bytes and by time spent waiting, never by how long
    /// storing takes on a busy machine).
    pub(crate) drains: JoinSet<()>,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) stop_rx: watch::Receiver<bool>,
}

impl Tasks {
    pub(crate) fn new() -> Tasks {
        let (stop, stop_rx) = watch::channel(false);
        Tasks {
            tasks: JoinSet::new(),
            drains: JoinSet::new(),
            stop,
            stop_rx,
        }
    }
}

/// The components the HTTP API and the query rules use.
pub(crate) struct Core {
    pub(crate) ingest: Arc<Ingest>,
    pub(crate) index: Option<Arc<search::IndexService>>,
    pub(crate) detect: Option<Arc<detect::DetectService>>,
    pub(crate) decisions: Arc<decisions::DecisionService>,
    pub(crate) notify_stats: Arc<notify::NotifyStats>,
}

/// The addresses the listeners bound.
#[derive(Default)]
pub(crate) struct Bound {
    pub(crate) http: Option<SocketAddr>,
    pub(crate) syslog_udp: Option<SocketAddr>,
    pub(crate) syslog_tcp: Option<SocketAddr>,
    pub(crate) syslog_tls: Option<SocketAddr>,
    pub(crate) otlp_grpc: Option<SocketAddr>,
}

/// Builds the running system: every component of `config`, in order.
pub(crate) async fn build(mut config: ServerConfig) -> Result<Running, StartError> {
    create_data_dir(&config)?;
    // The settings as the operator gave them (before the bundled rules are added).
    let start_settings = lifecycle::settings(&config);
    let accounts = vigil_auth::AuthStore::Files(config.data_dir.clone());
    let initial_admin = initial_admin(&config, &accounts).await?;
    bundled_rules(&mut config).map_err(StartError::of("bundled rules"))?;
    let redactor = redactor(&config)?;
    let (ledger, recovery) = ledger(&mut config).await?;
    let index = index_service(&config, &ledger).await?;
    let metrics = Arc::new(Metrics::default());
    let mut ingest = Ingest::new(
        vigil_ingest::NodeLog::Local(ledger.clone()),
        redactor,
        Arc::clone(&metrics),
    );
    let enricher = crate::intel::enricher(&config.settings).await;
    if let Some(e) = &enricher {
        ingest = ingest.with_enricher(Arc::clone(e));
    }
    let ingest = Arc::new(
        ingest
            .with_declared_sources(config.logsources())
            .with_drills(Default::default()),
    );
    let run = audit_start(&config, &start_settings, &ingest).await?;
    let mut t = Tasks::new();
    let decisions = decision_service(&config, &ingest, &mut t)?;
    checkpoint_sinks(&config, &ledger, &ingest, &mut t);
    let witness = witnesses(&config, &ledger, &ingest, &mut t);
    let notify_stats = Arc::new(notify::NotifyStats::default());
    let detect = detector(&config, &ingest, &decisions, &notify_stats, &mut t).await?;
    let tokens = auth_stores(&config, &accounts, &ingest, &mut t)?;
    let tracker = connection_trackers(&config, &metrics);
    let mut bound = syslog_listeners(&config, &ingest, &tracker, &mut t).await?;
    let core = Core {
        ingest: Arc::clone(&ingest),
        index: index.clone(),
        detect: detect.clone(),
        decisions: Arc::clone(&decisions),
        notify_stats: Arc::clone(&notify_stats),
    };
    if config.http.is_some() || config.otlp_grpc.is_some() {
        let state = http_state(&config, &core, tokens, (&accounts, &None), run, witness).await;
        if let Some(addr) = config.otlp_grpc {
            bound.otlp_grpc = Some(otlp_grpc_listener(addr, &state, &tracker, &mut t).await?);
        }
        if let Some(addr) = config.http {
            bound.http =
                Some(http_listener(&config, addr, http::router(state), &tracker, &mut t).await?);
        }
    }
    query_rules(&config, &core, &ledger, &mut t);
    crate::silence::spawn(&config, &core, &ledger, &mut t);
    crate::report_schedule::spawn(&config, &core, &mut t);
    if config.demo {
        t.tasks
            .spawn(demo::run(Arc::clone(&ingest), t.stop_rx.clone()));
    }
    if let Some(e) = enricher {
        let every = config.settings.enrich.reload.0;
        t.tasks
            .spawn(crate::intel::reload(e, every, t.stop_rx.clone()));
    }
    retention(&config, &ledger, &mut t);
    Ok(Running {
        data_dir: config.data_dir.clone(),
        http: bound.http,
        syslog_udp: bound.syslog_udp,
        syslog_tcp: bound.syslog_tcp,
        syslog_tls: bound.syslog_tls,
        otlp_grpc: bound.otlp_grpc,
        recovery,
        ledger: Some(ledger),
        cluster: None,
        index,
        detect,
        notify_stats,
        initial_admin,
        stop: t.stop,
        tasks: t.tasks,
        drains: t.drains,
        ingest,
        decisions,
    })
}

/// The data directory, created if it is not there.
pub(crate) fn create_data_dir(config: &ServerConfig) -> Result<(), StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })
}

/// Vigil's own bundled rules, and the demo's rules and responder.
pub(crate) fn bundled_rules(config: &mut ServerConfig) -> Result<(), String> {
    if config.builtin_rules {
        let dir = audit::write_self_rules(&config.data_dir)?;
        crate::intel::write_rule(&config.settings, &dir)?;
        config.rule_dirs.push(dir);
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
    Ok(())
}

/// The redaction of the ingest pipeline (checked before the ledger opens).
pub(crate) fn redactor(config: &ServerConfig) -> Result<Redactor, StartError> {
    vigil_ingest::pipeline::redactor(config.redaction.as_deref()).map_err(|message| {
        StartError::Config(ConfigError::invalid("[redaction] patterns", message))
    })
}

/// Opens the ledger (recovery and the integrity check happen here).
async fn ledger(config: &mut ServerConfig) -> Result<(Ledger, RecoveryReport), StartError> {
    // The pipeline bounds in-flight events; the ledger queue must never be the one that blocks.
    config.ledger.queue_depth = config.ledger.queue_depth.max(MAX_IN_FLIGHT_EVENTS + 1024);
    let data_dir = config.data_dir.clone();
    let ledger_config = config.ledger.clone();
    let opened = tokio::task::spawn_blocking(move || Ledger::open(&data_dir, ledger_config))
        .await
        .map_err(|e| StartError::of("ledger")(e.to_string()))?;
    Ok(opened?)
}

/// The search index follower, unless the index is off.
async fn index_service(
    config: &ServerConfig,
    ledger: &Ledger,
) -> Result<Option<Arc<search::IndexService>>, StartError> {
    if config.index_threads == 0 {
        return Ok(None);
    }
    let (dir, writer, threads) = (
        config.data_dir.clone(),
        ledger.clone(),
        config.index_threads,
    );
    let service =
        tokio::task::spawn_blocking(move || search::IndexService::start(&dir, writer, threads))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(StartError::of("search index"))?;
    Ok(Some(Arc::new(service)))
}

/// This start (and any change of settings) is the first thing in the ledger from this run,
/// durable before any listener takes events; the settings are recorded for the next start
/// only then, so a change is never forgotten unrecorded. Returns the run's description for
/// the UI.
pub(crate) async fn audit_start(
    config: &ServerConfig,
    start_settings: &std::collections::BTreeMap<String, String>,
    ingest: &Ingest,
) -> Result<serde_json::Value, StartError> {
    let start_events = lifecycle::record_start(&config.data_dir, start_settings);
    let run = serde_json::json!({
        "started": Timestamp::now().to_rfc3339(),
        "version": env!("CARGO_PKG_VERSION"),
        "previous_stop": start_events.first().and_then(|e| e.get_str("vigil.previous_stop")),
    });
    ingest
        .append_waiting(start_events, vigil_ingest::Origin::Audit)
        .await
        .map_err(|e| StartError::Audit(e.to_string()))?
        .durable()
        .await
        .map_err(|e| StartError::Audit(e.to_string()))?;
    lifecycle::settings_stored(&config.data_dir, start_settings);
    Ok(run)
}

/// Ban decisions (never banning the server's own addresses), and their expiry task.
pub(crate) fn decision_service(
    config: &ServerConfig,
    ingest: &Arc<Ingest>,
    t: &mut Tasks,
) -> Result<Arc<decisions::DecisionService>, StartError> {
    let decisions = Arc::new(
        decisions::DecisionService::open(
            &config.data_dir,
            config.responders.clone(),
            allowlist(config),
            ingest.clone(),
        )
        .map_err(StartError::of("ban decisions"))?,
    );
    expire_decisions(&decisions, t);
    Ok(decisions)
}

/// The addresses never banned: the defaults, the configured ones, and the server's own
/// listener addresses.
pub(crate) fn allowlist(config: &ServerConfig) -> Vec<decisions::Net> {
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
    allowlist
}

/// Expires bans as their time runs out (twice a second, until the stop).
pub(crate) fn expire_decisions(decisions: &Arc<decisions::DecisionService>, t: &mut Tasks) {
    let decisions = Arc::clone(decisions);
    let mut stop_expiry = t.stop_rx.clone();
    t.tasks.spawn(async move {
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

/// Sends every signed checkpoint off the host.
fn checkpoint_sinks(config: &ServerConfig, ledger: &Ledger, ingest: &Arc<Ingest>, t: &mut Tasks) {
    if !config.checkpoint_sinks.is_empty() {
        t.tasks.spawn(checkpoint_sink::run(
            config.checkpoint_sinks.clone(),
            ledger.clone(),
            Arc::clone(ingest),
            config.notify_backoff,
            t.stop_rx.clone(),
        ));
    }
}

/// The C2SP witness this server runs for other logs (its key created on first use), and the
/// task that has this ledger's checkpoints cosigned by `[witness] urls`.
fn witnesses(
    config: &ServerConfig,
    ledger: &Ledger,
    ingest: &Arc<Ingest>,
    t: &mut Tasks,
) -> crate::witness::WitnessState {
    let dir = vigil_config::DataDir::new(&config.data_dir).witness();
    let witness = match vigil_respond::witness::Witness::open(&dir, &config.witness_logs) {
        Ok(w) => Some(Arc::new(w)),
        Err(e) => {
            tracing::error!("the witness is off: {e}");
            None
        }
    };
    let status = Arc::new(vigil_respond::witness::WitnessStatus::default());
    if !config.witnesses.is_empty() {
        t.tasks.spawn(vigil_respond::witness::client::run(
            config.witnesses.clone(),
            ledger.clone(),
            Arc::clone(ingest),
            Arc::clone(&status),
            t.stop_rx.clone(),
        ));
    }
    crate::witness::WitnessState {
        witness,
        limit: Default::default(),
        status,
    }
}

/// The detector and its notifiers, when there are rules.
async fn detector(
    config: &ServerConfig,
    ingest: &Arc<Ingest>,
    decisions: &Arc<decisions::DecisionService>,
    notify_stats: &Arc<notify::NotifyStats>,
    t: &mut Tasks,
) -> Result<Option<Arc<detect::DetectService>>, StartError> {
    if config.rule_dirs.is_empty() && config.query_rules.is_empty() {
        return Ok(None);
    }
    let tx = notify_queue(config, ingest, notify_stats, t);
    let (dir, dirs, throttle, l, responders) = (
        config.data_dir.clone(),
        config.rule_dirs.clone(),
        config.alert_throttle_secs,
        Arc::clone(ingest),
        Arc::clone(decisions),
    );
    Ok(Some(
        tokio::task::spawn_blocking(move || {
            detect::DetectService::start(&dir, dirs, throttle, l, tx, Some(responders))
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(StartError::of("detection"))?,
    ))
}

/// The notifiers' queue and the task that sends what is queued.
pub(crate) fn notify_queue(
    config: &ServerConfig,
    ingest: &Arc<Ingest>,
    notify_stats: &Arc<notify::NotifyStats>,
    t: &mut Tasks,
) -> notify::NotifyQueue {
    let (tx, rx) = tokio::sync::mpsc::channel(10_000);
    let tx = notify::NotifyQueue::new(tx, config.notifiers.clone(), Arc::clone(notify_stats));
    t.tasks.spawn(notify::run(
        rx,
        config.notifiers.clone(),
        Arc::clone(notify_stats),
        Arc::clone(ingest),
        config.notify_backoff,
        t.stop_rx.clone(),
    ));
    tx
}

/// The first admin, when there are no accounts (in cluster mode: created by one node only).
pub(crate) async fn initial_admin(
    config: &ServerConfig,
    accounts: &vigil_auth::AuthStore,
) -> Result<Option<std::path::PathBuf>, StartError> {
    let (accounts, dir) = (accounts.clone(), config.data_dir.clone());
    tokio::task::spawn_blocking(move || accounts.ensure_initial_admin(&dir))
        .await
        .map_err(StartError::of("accounts"))?
        .map_err(StartError::of("accounts"))
}

/// API tokens, and the bookkeeping task: audit events of `vigil user|token` (run while
/// serving, or while no server ran: the first tick is immediate) and token last-used times.
pub(crate) fn auth_stores(
    config: &ServerConfig,
    accounts: &vigil_auth::AuthStore,
    ingest: &Arc<Ingest>,
    t: &mut Tasks,
) -> Result<Arc<auth::TokenStore>, StartError> {
    let tokens = match accounts.shared() {
        Some(shared) => auth::TokenStore::open_shared(&config.data_dir, Arc::clone(shared)),
        None => auth::TokenStore::open(&config.data_dir),
    };
    let tokens = Arc::new(tokens.map_err(StartError::of("API tokens"))?);
    let (dir, l, store) = (
        config.data_dir.clone(),
        Arc::clone(ingest),
        Arc::clone(&tokens),
    );
    let mut stop_bookkeeping = t.stop_rx.clone();
    t.tasks.spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            let stopping = tokio::select! {
                _ = every.tick() => false,
                _ = stop_bookkeeping.changed() => true,
            };
            let (dir, l, tokens) = (dir.clone(), Arc::clone(&l), Arc::clone(&store));
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
    Ok(tokens)
}

/// The scheduled query rules, each on its own task.
fn query_rules(config: &ServerConfig, core: &Core, ledger: &Ledger, t: &mut Tasks) {
    if let Some(detect) = &core.detect {
        for rule in config.query_rules.clone() {
            t.tasks.spawn(run_query_rule(
                rule,
                Arc::clone(detect),
                core.index.clone(),
                ledger.clone(),
                t.stop_rx.clone(),
            ));
        }
    }
}

/// Retention: prunes sealed segments older than the configured age, hourly.
fn retention(config: &ServerConfig, ledger: &Ledger, t: &mut Tasks) {
    if let Some(max_age) = config.retention {
        let ledger = ledger.clone();
        let mut stop_retention = t.stop_rx.clone();
        t.tasks.spawn(async move {
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
