//! Scheduled compliance reports (`[[report]]`): every `every`, the report of the last `period`
//! is computed from the ledger (`crate::report::compute`, signed), rendered, and sent to the
//! schedule's `[[notify]]` entries (`vigil_respond::notify::report`: email attaches the HTML
//! page, a webhook gets the JSON, syslog a summary with the digest). Each run is audited: one
//! `report_sent` event with its outcome, the digest and where it went (computing a report reads
//! the audit trail: PCI DSS 10.2.1.3).
//!
//! When each schedule last ran is kept in `reports/schedule.json` (a cache: `{name: RFC 3339}`;
//! lost, each report is sent once more). A schedule never run before runs at start. Schedules
//! run one at a time, on a blocking thread (each reads and verifies the whole ledger).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vigil_config::{Config, ConfigError};
use vigil_event::Timestamp;
use vigil_respond::notify::Target;
use vigil_respond::notify::report::{ReportMessage, deliver_with_retries};

use crate::pipeline::Ingest;
use crate::report::ReportRequest;

/// One `[[report]]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSchedule {
    /// Its name.
    pub name: String,
    /// The framework id (`pci-dss`).
    pub framework: String,
    /// The period each report covers, ending when it runs.
    pub period: Duration,
    /// How often it runs.
    pub every: Duration,
    /// The scope query, if any.
    pub scope: Option<String>,
    /// Where it goes: `(notify name, target)`.
    pub targets: Vec<(String, Target)>,
}

/// The `[[report]]` entries of `c`, their notifiers looked up by name in `targets` (every
/// `[[notify]]` entry's name and target).
pub(crate) fn schedules(
    c: &Config,
    targets: &[(String, Target)],
) -> Result<Vec<ReportSchedule>, ConfigError> {
    let mapping = vigil_report::Mapping::builtin();
    let mut out: Vec<ReportSchedule> = Vec::new();
    for (i, r) in c.report.iter().enumerate() {
        let what = format!("[[report]] #{}", i + 1);
        let invalid = |m: String| ConfigError::invalid(&what, m);
        if mapping.framework(&r.framework).is_none() {
            let known: Vec<&str> = mapping.frameworks.iter().map(|f| f.id.as_str()).collect();
            return Err(invalid(format!(
                "framework {:?}: use {}",
                r.framework,
                known.join(", ")
            )));
        }
        if r.every.0 < Duration::from_secs(1) || r.period.0 < Duration::from_secs(1) {
            return Err(invalid("every and period must be at least 1s".into()));
        }
        if let Some(q) = &r.scope {
            vigil_query::parse(q).map_err(|e| {
                invalid(format!(
                    "scope: query error at column {}: {}",
                    e.column, e.message
                ))
            })?;
        }
        if r.notify.is_empty() {
            return Err(invalid(
                "notify = [\"NAME\", …] is needed: the [[notify]] entries it is sent to".into(),
            ));
        }
        let mut to = Vec::new();
        for name in &r.notify {
            let Some((_, target)) = targets.iter().find(|(n, _)| n == name) else {
                let known: Vec<&str> = targets.iter().map(|(n, _)| n.as_str()).collect();
                return Err(invalid(format!(
                    "notify {name:?} is no [[notify]] entry's name (known: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            };
            to.push((name.clone(), target.clone()));
        }
        let name = r
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", r.framework, i + 1));
        if out.iter().any(|s| s.name == name) {
            return Err(invalid(format!("a second schedule named {name:?}")));
        }
        out.push(ReportSchedule {
            name,
            framework: r.framework.clone(),
            period: r.period.0,
            every: r.every.0,
            scope: r.scope.clone(),
            targets: to,
        });
    }
    Ok(out)
}

/// When each schedule last ran (ns), from `reports/schedule.json`; empty when missing or
/// unreadable (a cache).
fn load_state(path: &Path) -> BTreeMap<String, i64> {
    let Ok(bytes) = std::fs::read(path) else {
        return BTreeMap::new();
    };
    let Ok(map) = serde_json::from_slice::<BTreeMap<String, String>>(&bytes) else {
        return BTreeMap::new();
    };
    map.into_iter()
        .filter_map(|(k, v)| Some((k, Timestamp::parse(&v).ok()?.as_nanos())))
        .collect()
}

fn save_state(path: &Path, state: &BTreeMap<String, i64>) {
    let map: BTreeMap<&String, String> = state
        .iter()
        .map(|(k, v)| (k, Timestamp::from_nanos(*v).to_rfc3339()))
        .collect();
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(&map).expect("a map serializes"),
        )?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        tracing::warn!("scheduled reports: cannot save {}: {e}", path.display());
    }
}

/// The schedules due at `now` (ns): never run, or run `every` ago or longer.
fn due<'a>(
    schedules: &'a [ReportSchedule],
    state: &BTreeMap<String, i64>,
    now: i64,
) -> Vec<&'a ReportSchedule> {
    schedules
        .iter()
        .filter(|s| {
            state
                .get(&s.name)
                .is_none_or(|last| now.saturating_sub(*last) >= s.every.as_nanos() as i64)
        })
        .collect()
}

/// Spawns the schedules' loop when there are any.
pub(crate) fn spawn(
    config: &crate::ServerConfig,
    core: &crate::topology::Core,
    t: &mut crate::topology::Tasks,
) {
    if config.reports.is_empty() {
        return;
    }
    t.tasks.spawn(run(
        config.reports.clone(),
        config.data_dir.clone(),
        Arc::clone(&core.ingest),
        core.detect.clone(),
        config.notify_backoff,
        t.stop_rx.clone(),
    ));
}

/// Runs the schedules until `stop`: checks every second which are due, and runs those.
pub async fn run(
    schedules: Vec<ReportSchedule>,
    data_dir: PathBuf,
    ingest: Arc<Ingest>,
    detect: Option<Arc<crate::detect::DetectService>>,
    backoff: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("scheduled reports are off: cannot build an HTTP client: {e}");
            return;
        }
    };
    let state_path = vigil_config::DataDir::new(&data_dir).report_schedule();
    let mut state = load_state(&state_path);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now = Timestamp::now().as_nanos();
        let due: Vec<ReportSchedule> = due(&schedules, &state, now).into_iter().cloned().collect();
        for schedule in due {
            // Recorded before it runs: a report that fails is not retried every second.
            state.insert(schedule.name.clone(), now);
            save_state(&state_path, &state);
            tokio::select! {
                _ = run_one(&schedule, &data_dir, &ingest, detect.as_deref(), &client, backoff, now) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// Computes, sends and audits one report of `schedule`, its period ending at `now` (ns).
async fn run_one(
    schedule: &ReportSchedule,
    data_dir: &Path,
    ingest: &Ingest,
    detect: Option<&crate::detect::DetectService>,
    client: &reqwest::Client,
    backoff: Duration,
    now: i64,
) {
    let request = ReportRequest {
        framework: schedule.framework.clone(),
        from: Some(now.saturating_sub(schedule.period.as_nanos() as i64)),
        to: now,
        scope: schedule.scope.clone(),
        rules: detect.map(|d| crate::report::enabled_rules(&d.rules())),
    };
    let dir = data_dir.to_owned();
    let computed = tokio::task::spawn_blocking(move || {
        let mapping = vigil_report::Mapping::builtin();
        crate::report::compute(&dir, &mapping, &request, &mut |_, _, _| {})
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let report = match computed {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("scheduled report {}: {e}", schedule.name);
            audit(ingest, schedule, None, Some(&format!("not computed: {e}")));
            return;
        }
    };
    let message = ReportMessage {
        schedule: schedule.name.clone(),
        framework: report["framework"].as_str().unwrap_or_default().to_owned(),
        digest: report["signature"]["digest"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        html: vigil_report::html::render(&report),
        json: report,
    };
    let mut failed = Vec::new();
    for (name, target) in &schedule.targets {
        if let Err(e) = deliver_with_retries(client, target, &message, backoff).await {
            tracing::warn!("scheduled report {} to {name}: {e}", schedule.name);
            failed.push(format!("{name}: {e}"));
        }
    }
    let error = (!failed.is_empty()).then(|| format!("not delivered to {}", failed.join("; ")));
    audit(ingest, schedule, Some(&message), error.as_deref());
}

/// The run's audit event: `report_sent`, success when every notifier took it.
fn audit(
    ingest: &Ingest,
    schedule: &ReportSchedule,
    message: Option<&ReportMessage>,
    error: Option<&str>,
) {
    let outcome = if error.is_none() {
        vigil_event::Outcome::Success
    } else {
        vigil_event::Outcome::Failure
    };
    let mut e = crate::audit::by(
        REPORT_SENT,
        vigil_event::Category::Database,
        vigil_event::EventType::Access,
        outcome,
        "scheduler",
        None,
    );
    e.insert("vigil.report.schedule", schedule.name.as_str());
    e.insert("vigil.report.framework", schedule.framework.as_str());
    let to: Vec<vigil_event::Value> = schedule
        .targets
        .iter()
        .map(|(n, _)| vigil_event::Value::from(n.as_str()))
        .collect();
    e.insert("vigil.notifier", vigil_event::Value::List(to));
    if let Some(m) = message {
        e.insert("vigil.report.digest", m.digest.as_str());
    }
    if let Some(err) = error {
        e.insert("error.message", err);
    }
    e.insert(
        "message",
        match (message, error) {
            (Some(m), None) => format!(
                "scheduled compliance report {} ({}) sent, sha256 {}",
                m.framework, schedule.name, m.digest
            ),
            (_, Some(err)) => format!(
                "scheduled compliance report {} ({}): {err}",
                schedule.framework, schedule.name
            ),
            (None, None) => unreachable!("no message means an error"),
        },
    );
    crate::audit::append(ingest, e);
}

/// The `event.action` of a scheduled report's audit event.
pub const REPORT_SENT: &str = "report_sent";

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(toml: &str) -> Result<Vec<ReportSchedule>, ConfigError> {
        let config = Config::from_toml(toml).unwrap();
        let targets = vec![(
            "mail".to_owned(),
            Target::Syslog {
                addr: "127.0.0.1:1".into(),
                tcp: false,
            },
        )];
        schedules(&config, &targets)
    }

    #[test]
    fn schedules_are_checked_and_their_notifiers_found_by_name() {
        let s = plan("[[report]]\nframework = \"pci-dss\"\nnotify = [\"mail\"]\nevery = \"1d\"\n")
            .unwrap();
        assert_eq!(s[0].name, "pci-dss-1");
        assert_eq!(s[0].every, Duration::from_secs(86_400));
        assert_eq!(s[0].period, Duration::from_secs(7 * 86_400));
        for (toml, says) in [
            (
                "framework = \"gdpr\"\nnotify = [\"mail\"]",
                "framework \"gdpr\"",
            ),
            (
                "framework = \"soc2\"\nnotify = [\"nope\"]",
                "notify \"nope\"",
            ),
            ("framework = \"soc2\"\nnotify = []", "notify = ["),
            (
                "framework = \"soc2\"\nnotify = [\"mail\"]\nevery = \"0s\"",
                "at least 1s",
            ),
            (
                "framework = \"soc2\"\nnotify = [\"mail\"]\nscope = \"a=(\"",
                "scope",
            ),
        ] {
            let err = plan(&format!("[[report]]\n{toml}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{toml}: {err}");
        }
    }

    #[test]
    fn a_schedule_is_due_when_never_run_or_every_has_passed() {
        let s = plan("[[report]]\nframework = \"pci-dss\"\nnotify = [\"mail\"]\nevery = \"1h\"\n")
            .unwrap();
        let hour = 3_600_000_000_000i64;
        let mut state = BTreeMap::new();
        assert_eq!(due(&s, &state, 10 * hour).len(), 1);
        state.insert("pci-dss-1".to_owned(), 10 * hour);
        assert!(due(&s, &state, 10 * hour + hour - 1).is_empty());
        assert_eq!(due(&s, &state, 11 * hour).len(), 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports/schedule.json");
        save_state(&path, &state);
        assert_eq!(load_state(&path), state);
    }
}
