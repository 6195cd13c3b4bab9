//! Drills: "test incident response based on logging events" (OWASP), in production.
//!
//! A drill sends a scenario ([`scenario`]: SSH brute force, a web scan, sudo escalation,
//! Windows credential dumping, an insider; or the operator's own files) **through the real
//! listeners** of this server — syslog TCP/UDP, or `POST /api/v1/ingest` with a token made for
//! the run and revoked after it — and measures every step of the response ([`report`]):
//! ingest → stored, stored → alert, alert → each notifier's delivery, alert → ban decision →
//! fetched by each bouncer. The report is recorded in the ledger (`event.dataset: vigil.drill`)
//! through the one door; a failed drill's report raises the bundled alert "A drill failed".
//!
//! Drill events are marked by the door only (`vigil_ingest::drill`: one-time nonces, only
//! documentation addresses), so a sender can neither hide a real attack as a drill nor make a
//! drill count as real. Marked events and their alerts are left out of searches, dashboards
//! and alert lists unless asked for (`exclude_drills`, `?drills=include`); their bans are never
//! enforced (`vigil_respond::decisions::drill`).
//!
//! Entry points: `POST /api/v1/drills` (analysts and admins; `vigil drill NAME` calls it),
//! `GET /api/v1/drills` (scenarios and recent reports), the UI's Drills page, and the
//! `[drills]` schedule.

pub mod report;
pub mod scenario;
mod send;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigil_event::Timestamp;
use vigil_ingest::drill::DrillRegistry;
use vigil_ingest::{Ingest, Origin};

use crate::topology::Core;
use report::{DrillReport, Expect};
use scenario::Scenario;

/// Reports kept in memory for the UI (every report is in the ledger).
const KEPT_REPORTS: usize = 50;
/// How often a run looks at what the door has seen.
const POLL: Duration = Duration::from_millis(10);
/// Longest timeout a caller may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a drill did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrillError {
    /// No scenario of that name.
    #[error("no drill scenario {0:?} (GET /api/v1/drills lists them)")]
    Unknown(String),
    /// Another drill is running.
    #[error("a drill is running; try again when it has finished")]
    Busy,
    /// The scenario needs a listener this server does not have.
    #[error("scenario {scenario:?} sends over {listener}, which this server does not listen on")]
    NoListener {
        /// The scenario.
        scenario: String,
        /// The listener.
        listener: &'static str,
    },
    /// Something the run needs failed (the door refused the run, a token could not be made).
    #[error("{0}")]
    Failed(String),
}

/// Where the drill sends: this server's own listeners.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// Syslog TCP.
    pub syslog_tcp: Option<SocketAddr>,
    /// Syslog UDP.
    pub syslog_udp: Option<SocketAddr>,
    /// HTTP API.
    pub http: Option<SocketAddr>,
    /// Whether HTTP is served over TLS.
    pub http_tls: bool,
}

/// A listen address as a destination: an unspecified address is reached on loopback.
fn reachable(addr: Option<SocketAddr>) -> Option<SocketAddr> {
    let mut a = addr.filter(|a| a.port() != 0)?;
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv4() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        });
    }
    Some(a)
}

/// The drill runner of a server.
pub struct DrillService {
    registry: Arc<DrillRegistry>,
    ingest: Arc<Ingest>,
    detect: Option<Arc<crate::detect::DetectService>>,
    decisions: Arc<crate::decisions::DecisionService>,
    notifiers: Vec<crate::notify::Notifier>,
    responders: Vec<crate::decisions::Responder>,
    targets: Targets,
    accounts: vigil_auth::AuthStore,
    dirs: Vec<PathBuf>,
    settings: vigil_config::DrillsSection,
    reports: Arc<KeptReports>,
    /// Cluster mode: the reports every node keeps from the `sys` shard (every node's drills).
    shared: std::sync::OnceLock<Arc<KeptReports>>,
    running: tokio::sync::Semaphore,
}

/// The newest drill reports (at most [`KEPT_REPORTS`]), one per run: a node's own, or in
/// cluster mode every node's, as the `sys` shard's `vigil.drill` events tell them.
#[derive(Debug, Default)]
pub struct KeptReports(Mutex<VecDeque<serde_json::Value>>);

impl KeptReports {
    /// Keeps `report` (its API form) unless a report of its run is kept already.
    pub fn keep(&self, report: serde_json::Value) {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if kept.iter().any(|r| r["run"] == report["run"]) {
            return;
        }
        if kept.len() >= KEPT_REPORTS {
            kept.pop_front();
        }
        kept.push_back(report);
    }

    /// The reports, newest first.
    pub fn newest_first(&self) -> Vec<serde_json::Value> {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter().rev().cloned().collect()
    }
}

/// The drill runner, when the door marks drills (standalone and cluster nodes), with its schedule
/// started (it ends when the service is dropped).
pub(crate) fn service(
    config: &crate::ServerConfig,
    core: &Core,
    accounts: &vigil_auth::AuthStore,
) -> Option<Arc<DrillService>> {
    let registry = Arc::clone(core.ingest.drills()?);
    let service = Arc::new(DrillService {
        registry,
        ingest: Arc::clone(&core.ingest),
        detect: core.detect.clone(),
        decisions: Arc::clone(&core.decisions),
        notifiers: config.notifiers.clone(),
        responders: config.responders.clone(),
        targets: Targets {
            syslog_tcp: reachable(config.syslog_tcp),
            syslog_udp: reachable(config.syslog_udp),
            http: reachable(config.http),
            http_tls: config.http_tls,
        },
        accounts: accounts.clone(),
        dirs: scenario::dirs_beside(&config.rule_dirs),
        settings: config.settings.drills.clone(),
        reports: Arc::default(),
        shared: std::sync::OnceLock::new(),
        running: tokio::sync::Semaphore::new(1),
    });
    if !service.settings.scenarios.is_empty() {
        tokio::spawn(schedule(Arc::downgrade(&service)));
    }
    Some(service)
}

/// Runs the `[drills]` scenarios every `every` (the first run one period after the start),
/// while the service lives.
async fn schedule(service: std::sync::Weak<DrillService>) {
    loop {
        let Some(every) = service.upgrade().map(|s| s.settings.every.0) else {
            return;
        };
        tokio::time::sleep(every.max(Duration::from_secs(1))).await;
        let Some(s) = service.upgrade() else { return };
        for name in s.settings.scenarios.clone() {
            let timeout = s.settings.timeout.0;
            match s.run(&name, "schedule", timeout).await {
                Ok(r) if r.passed() => tracing::info!("drill {} ({name}) passed", r.run),
                Ok(r) => tracing::warn!("drill {} ({name}) failed: {:?}", r.run, r.missed()),
                Err(e) => tracing::error!("scheduled drill {name}: {e}"),
            }
        }
    }
}

impl DrillService {
    /// The scenarios (bundled and the operator's), and the files that did not read.
    pub fn scenarios(&self) -> (Vec<Scenario>, Vec<String>) {
        scenario::load_all(&self.dirs)
    }

    /// The `drills/` directories read for scenarios.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The recent reports, newest first: this node's, or on a cluster node every node's.
    pub fn reports(&self) -> Vec<serde_json::Value> {
        self.shared.get().unwrap_or(&self.reports).newest_first()
    }

    /// Cluster mode: lists the reports every node keeps from the `sys` shard instead of this
    /// node's own (called once at start).
    pub fn share_reports(&self, shared: Arc<KeptReports>) {
        let _ = self.shared.set(shared);
    }

    /// The schedule (`[drills]`).
    pub fn schedule(&self) -> &vigil_config::DrillsSection {
        &self.settings
    }

    /// Runs scenario `name` for `by`, waiting at most `timeout` for its effects; the report
    /// is recorded in the ledger before it is returned.
    pub async fn run(
        &self,
        name: &str,
        by: &str,
        timeout: Duration,
    ) -> Result<DrillReport, DrillError> {
        let (all, _) = self.scenarios();
        let scenario = all
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| DrillError::Unknown(name.to_owned()))?;
        let _turn = self.running.try_acquire().map_err(|_| DrillError::Busy)?;
        for e in &scenario.events {
            let have = match e.listener {
                scenario::DrillListener::SyslogTcp => self.targets.syslog_tcp.is_some(),
                scenario::DrillListener::SyslogUdp => self.targets.syslog_udp.is_some(),
                scenario::DrillListener::Http => self.targets.http.is_some(),
            };
            if !have {
                return Err(DrillError::NoListener {
                    scenario: scenario.name.clone(),
                    listener: e.listener.as_str(),
                });
            }
        }
        let timeout = timeout.min(MAX_TIMEOUT);
        let started = Timestamp::now();
        let run = format!(
            "drill-{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
            vigil_auth::token::random_hex(3)
        );
        let nonces: Vec<String> = (0..scenario.n_events()).map(|_| new_nonce()).collect();
        self.registry
            .begin(&run, &nonces, timeout + Duration::from_secs(30))
            .map_err(|e| DrillError::Failed(e.to_string()))?;
        let expect_base = Expect {
            rules: scenario.expect_rules.clone(),
            bouncers: self
                .decisions
                .drills
                .polled_since(Timestamp::from_nanos(started.as_nanos() - 60_000_000_000)),
            loaded: self.detect.as_ref().map(|d| loaded_rules(d)),
            ..Expect::default()
        };
        // Documentation address of the run: 192.0.2.1–254.
        let ip = IpAddr::V4(Ipv4Addr::new(
            192,
            0,
            2,
            1 + u8::from_str_radix(&vigil_auth::token::random_hex(1), 16).unwrap_or(0) % 254,
        ));
        let sent = send::send_all(self, &scenario, &run, &nonces, ip).await;
        let mut expect = Expect {
            sent,
            ..expect_base
        };
        let deadline = Instant::now() + timeout;
        let steps = loop {
            let journal = self.registry.journal(&run).unwrap_or_default();
            self.route(&journal, &mut expect);
            let (steps, complete) = report::assess(&journal, &expect);
            if complete || Instant::now() >= deadline {
                break steps;
            }
            tokio::time::sleep(POLL).await;
        };
        let journal = self.registry.finish(&run);
        let mut report = DrillReport {
            run,
            scenario: scenario.name.clone(),
            title: scenario.title.clone(),
            by: by.to_owned(),
            started,
            finished: Timestamp::now(),
            steps,
            alerts: report::alert_ids(&journal),
            seq: None,
        };
        // On the record before it is answered (the one door; not a drill event itself).
        match self
            .ingest
            .append_waiting(vec![report.to_event()], Origin::Audit)
            .await
        {
            Ok(pending) => match pending.durable().await {
                Ok(range) => report.seq = Some(range.start),
                Err(e) => tracing::error!("drill {}: recording the report: {e}", report.run),
            },
            Err(e) => tracing::error!("drill {}: recording the report: {e}", report.run),
        }
        // Kept here at once; on a cluster node every node (this one too, a no-op then) keeps it
        // again from `sys`.
        self.reports.keep(report.to_json());
        if let Some(shared) = self.shared.get() {
            shared.keep(report.to_json());
        }
        Ok(report)
    }

    /// Which notifiers route each alert of the run, and whether a responder bans for it.
    fn route(&self, journal: &vigil_ingest::drill::Journal, expect: &mut Expect) {
        let Some(detect) = &self.detect else { return };
        for (id, _, _) in report::alert_ids(journal) {
            if expect.routes.contains_key(&id) {
                continue;
            }
            let Some(alert) = detect.with_book(|b| b.get(id).cloned()) else {
                continue;
            };
            let notifiers = self
                .notifiers
                .iter()
                .filter(|n| n.routes(&alert))
                .map(|n| (n.name.clone(), n.target.kind().as_str().to_owned()))
                .collect();
            let bans = alert.group.iter().any(|(k, _)| k == "source.ip")
                && self.responders.iter().any(|r| r.wants(&alert));
            expect.routes.insert(id, (notifiers, bans));
        }
    }
}

/// Rule ids and titles the detector has loaded.
fn loaded_rules(detect: &crate::detect::DetectService) -> Vec<(String, String)> {
    let rules = detect.rules();
    rules
        .set
        .rules()
        .map(|(_, info)| crate::detect::alert_rule(&info.meta))
        .chain(
            rules
                .set
                .correlations()
                .iter()
                .map(|c| crate::detect::alert_rule(&c.rule.meta)),
        )
        .map(|r| (r.id, r.title))
        .collect()
}

/// A fresh one-time nonce (128 random bits).
fn new_nonce() -> String {
    let hex = vigil_auth::token::random_hex(16);
    let mut bytes = [0u8; 16];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    vigil_ingest::drill::nonce_from(bytes)
}

/// Leaves drill events out of a search unless it names a `vigil.drill` field: searches,
/// dashboards and exports count real events only by default.
pub fn exclude_drills(pipeline: &mut vigil_query::Pipeline) {
    use vigil_query::ast::Expr;
    fn names_drill(e: &Expr) -> bool {
        match e {
            Expr::And(v) | Expr::Or(v) => v.iter().any(names_drill),
            Expr::Not(a) => names_drill(a),
            Expr::Compare { field, .. } | Expr::In { field, .. } => {
                field.starts_with("vigil.drill")
            }
            Expr::Text(_) => false,
        }
    }
    if pipeline.search.as_ref().is_some_and(names_drill) {
        return;
    }
    let Ok(not_drill) =
        vigil_query::parse(&format!("NOT {}=*", vigil_event::field::VIGIL_DRILL_RUN))
    else {
        return;
    };
    let Some(not_drill) = not_drill.search else {
        return;
    };
    pipeline.search = Some(match pipeline.search.take() {
        None => not_drill,
        Some(Expr::And(mut all)) => {
            all.insert(0, not_drill);
            Expr::And(all)
        }
        Some(other) => Expr::And(vec![not_drill, other]),
    });
}

/// The bundled rule "A drill failed" (one of Vigil's own rules, `audit::SELF_RULES`): a
/// drill's report with outcome failure (`event.dataset: vigil.drill`,
/// which input can never claim).
pub const FAILED_DRILL_RULE: &str = r#"title: A drill failed
id: 0d1e11f0-5b0c-4c3a-9e5f-7669676c0001
status: stable
description: An incident-response drill (vigil drill) missed a step - an alert, a notification, a ban or a bouncer's fetch - or took none of them. Its report, in the ledger, says which and why.
logsource: {product: vigil, service: drill}
detection:
    selection:
        event.action: drill-run
        event.outcome: failure
    condition: selection
level: high
"#;
