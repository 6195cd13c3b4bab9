//! Vigil's own starts, stops and configuration changes, as audit events (DESIGN invariant 6;
//! PCI DSS v4 10.2.1.6 asks for the starting and stopping of audit logs, and 10.2.1.2/10.2.2
//! for changes to how they are kept).
//!
//! * `vigil_start` (`event.category: process`, `event.type: start`): the version, the process
//!   id, every setting that is not a secret (`vigil.settings.*`), and how the previous run
//!   ended (`vigil.previous_stop`: `clean`, `unclean` after a crash or `kill -9`, or `none` on
//!   the first start).
//! * `config_changed` (`configuration`/`change`): the settings that differ from the previous
//!   start, each as `vigil.settings.KEY` (now) and `vigil.settings_before.KEY` (then), and
//!   `vigil.settings_changed` (their names).
//! * `vigil_stop` (`process`/`end`): a clean stop, stored before the ledger closes.
//!
//! State in `DATA_DIR/server/` (derived, disposable: without it the next start records no
//! changes and `previous_stop: none`):
//!
//! * `settings.json`: `{"version": 2, "settings": {SECTION.KEY: VALUE, …}}`, the settings of
//!   the last start (written with a temporary file and a rename once that start's audit events are
//!   durable);
//! * `running`: present while a server runs; found at start, it means the last run did not
//!   stop cleanly.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use vigil_config::DataDir;
use vigil_event::{Event, Timestamp};

use crate::ServerConfig;

/// Format version of `settings.json`: 2 since the settings are named `SECTION.KEY` after the
/// configuration type (version 1 named them by hand). A version 1 file still tells that a
/// previous run was recorded; its settings are not compared.
pub const SETTINGS_VERSION: u64 = 2;

fn state_dir(data_dir: &Path) -> PathBuf {
    DataDir::new(data_dir).server()
}

fn settings_path(data_dir: &Path) -> PathBuf {
    DataDir::new(data_dir).settings()
}

fn running_path(data_dir: &Path) -> PathBuf {
    DataDir::new(data_dir).running()
}

/// The settings of `config`, as the start's audit event records them: derived from the one
/// configuration type ([`vigil_config::Config::settings`], `SECTION.KEY` → text), so a new
/// setting is audited without a line here, and a secret is never shown (a webhook URL, a
/// redaction pattern or a query rule's query as a fingerprint, so that any change shows; the
/// SMTP password not at all).
pub fn settings(config: &ServerConfig) -> BTreeMap<String, String> {
    config.settings.settings()
}

/// How the previous run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviousStop {
    /// No earlier start is recorded.
    None,
    /// It stopped cleanly.
    Clean,
    /// It did not (a crash, `kill -9`, a power cut).
    Unclean,
}

impl PreviousStop {
    fn name(self) -> &'static str {
        match self {
            PreviousStop::None => "none",
            PreviousStop::Clean => "clean",
            PreviousStop::Unclean => "unclean",
        }
    }
}

/// Marks this run as running in `DATA_DIR/server/` and returns its audit events:
/// `vigil_start`, and `config_changed` when settings differ from the previous start's. Once
/// they are durable, [`settings_stored`] records these settings for the next start.
/// The files are derived state: failing to write them is a warning (the next start then
/// cannot tell what changed or how this run ended), not a failed start.
pub fn record_start(data_dir: &Path, settings: &BTreeMap<String, String>) -> Vec<Event> {
    let dir = state_dir(data_dir);
    if let Err(e) = fs::create_dir_all(&dir) {
        tracing::warn!(
            "{}: {e}; the next start cannot tell how this one ended",
            dir.display()
        );
    }
    let before = read_settings(&settings_path(data_dir));
    let previous = if running_path(data_dir).exists() {
        PreviousStop::Unclean
    } else if settings_path(data_dir).exists() {
        PreviousStop::Clean
    } else {
        PreviousStop::None
    };
    if let Err(e) = fs::write(running_path(data_dir), std::process::id().to_string()) {
        tracing::warn!(
            "{}: {e}; the next start cannot tell how this one ended",
            running_path(data_dir).display()
        );
    }
    start_events(settings, before.as_ref(), previous)
}

/// Records `settings` as the last start's (after its audit events are durable, so a change is
/// never forgotten unrecorded).
pub fn settings_stored(data_dir: &Path, settings: &BTreeMap<String, String>) {
    if let Err(e) = write_settings(&settings_path(data_dir), settings) {
        tracing::warn!("{e}; the next start cannot tell which settings changed");
    }
}

/// The events of a start (pure: [`record_start`] does the files).
pub fn start_events(
    settings: &BTreeMap<String, String>,
    before: Option<&BTreeMap<String, String>>,
    previous: PreviousStop,
) -> Vec<Event> {
    let now = Timestamp::now();
    let version = env!("CARGO_PKG_VERSION");
    let mut start = Event::audit(now, "vigil_start", "process", "start", "success");
    start.insert("service.version", version);
    start.insert("process.pid", i64::from(std::process::id()));
    start.insert("vigil.previous_stop", previous.name());
    for (k, v) in settings {
        start.insert(format!("vigil.settings.{k}"), v.as_str());
    }
    let how = match previous {
        PreviousStop::None => "no earlier run recorded in this data directory",
        PreviousStop::Clean => "the previous run stopped cleanly",
        PreviousStop::Unclean => {
            "the previous run did not stop cleanly (crash or kill): logs sent over plain syslog \
             while it was going down may be missing"
        }
    };
    start.insert("message", format!("Vigil {version} started; {how}"));
    if previous == PreviousStop::Unclean {
        start.insert("log.level", "warning");
    }
    let mut events = vec![start];
    let Some(before) = before else {
        return events;
    };
    let changed: Vec<&String> = settings
        .keys()
        .chain(before.keys())
        .filter(|k| settings.get(*k) != before.get(*k))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if changed.is_empty() {
        return events;
    }
    let mut e = Event::audit(now, "config_changed", "configuration", "change", "success");
    let mut parts = Vec::new();
    for k in &changed {
        let (was, is) = (
            before.get(*k).map_or("(unset)", String::as_str),
            settings.get(*k).map_or("(unset)", String::as_str),
        );
        e.insert(format!("vigil.settings.{k}"), is);
        e.insert(format!("vigil.settings_before.{k}"), was);
        parts.push(format!("{k}: {was} → {is}"));
    }
    e.insert(
        "vigil.settings_changed",
        vigil_event::Value::List(
            changed
                .iter()
                .map(|k| vigil_event::Value::Str((*k).clone()))
                .collect(),
        ),
    );
    e.insert(
        "message",
        format!(
            "Vigil settings changed since the last start: {}",
            parts.join("; ")
        ),
    );
    events.push(e);
    events
}

/// The audit event of a clean stop.
pub fn stop_event() -> Event {
    let mut e = Event::audit(Timestamp::now(), "vigil_stop", "process", "end", "success");
    e.insert("service.version", env!("CARGO_PKG_VERSION"));
    e.insert("process.pid", i64::from(std::process::id()));
    e.insert("message", "Vigil stopping cleanly");
    e
}

/// A start that failed after [`record_start`]: its marker goes, and a `vigil_stop` with
/// `event.outcome: failure` and the reason is left for the next server to store (through the
/// pending audit file, as the CLI's changes are).
pub fn record_failed_start(data_dir: &Path, reason: &str) {
    let ours = fs::read_to_string(running_path(data_dir))
        .is_ok_and(|pid| pid.trim() == std::process::id().to_string());
    if !ours {
        return;
    }
    let _ = fs::remove_file(running_path(data_dir));
    let mut e = Event::audit(Timestamp::now(), "vigil_stop", "process", "end", "failure");
    e.insert("service.version", env!("CARGO_PKG_VERSION"));
    e.insert("process.pid", i64::from(std::process::id()));
    e.insert("event.reason", reason);
    e.insert("message", format!("Vigil failed to start: {reason}"));
    if let Err(err) = crate::audit::record_offline(data_dir, &e) {
        tracing::warn!("the failed start was not recorded: {err}");
    }
}

/// Marks the clean end of this run (after the ledger closed).
pub fn record_clean_stop(data_dir: &Path) {
    let _ = fs::remove_file(running_path(data_dir));
}

fn read_settings(path: &Path) -> Option<BTreeMap<String, String>> {
    let text = fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    if json["version"].as_u64() != Some(SETTINGS_VERSION) {
        return None;
    }
    let map = json["settings"].as_object()?;
    Some(
        map.iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect(),
    )
}

fn write_settings(path: &Path, settings: &BTreeMap<String, String>) -> Result<(), String> {
    let text = serde_json::json!({"version": SETTINGS_VERSION, "settings": settings}).to_string();
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_record_changes_and_unclean_stops() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = vigil_config::Config::new(dir.path());
        let plan = |c: &vigil_config::Config| ServerConfig::from_config(c.clone()).unwrap();
        let first = record_start(dir.path(), &settings(&plan(&config)));
        settings_stored(dir.path(), &settings(&plan(&config)));
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].get_str("vigil.previous_stop"), Some("none"));
        assert_eq!(
            first[0].get_str("vigil.settings.listen.http"),
            Some("127.0.0.1:8080")
        );
        record_clean_stop(dir.path());

        config.ui.session_idle = vigil_config::Duration::secs(60);
        config.listen.syslog_udp = vigil_config::Listen::Off;
        let second = record_start(dir.path(), &settings(&plan(&config)));
        settings_stored(dir.path(), &settings(&plan(&config)));
        assert_eq!(second[0].get_str("vigil.previous_stop"), Some("clean"));
        let change = &second[1];
        assert_eq!(change.get_str("event.action"), Some("config_changed"));
        assert_eq!(change.get_str("vigil.settings.ui.session_idle"), Some("1m"));
        assert_eq!(
            change.get_str("vigil.settings_before.ui.session_idle"),
            Some("30m")
        );
        assert_eq!(
            change.get_str("vigil.settings.listen.syslog_udp"),
            Some("off")
        );
        assert!(
            change.get_str("vigil.settings.listen.http").is_none(),
            "unchanged"
        );

        // No clean stop: the next start says so, and nothing changed.
        let third = record_start(dir.path(), &settings(&plan(&config)));
        assert_eq!(third.len(), 1);
        assert_eq!(third[0].get_str("vigil.previous_stop"), Some("unclean"));
    }

    #[test]
    fn a_version_1_settings_file_is_a_previous_run_but_not_compared() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(state_dir(dir.path())).unwrap();
        std::fs::write(
            settings_path(dir.path()),
            r#"{"version": 1, "settings": {"http": "127.0.0.1:8080"}}"#,
        )
        .unwrap();
        let config = ServerConfig::defaults(dir.path().to_owned());
        let events = record_start(dir.path(), &settings(&config));
        assert_eq!(events.len(), 1, "no config_changed from renamed settings");
        assert_eq!(events[0].get_str("vigil.previous_stop"), Some("clean"));
    }

    #[test]
    fn settings_hold_no_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = vigil_config::Config::new(dir.path());
        config.notify.push(vigil_config::NotifySection {
            name: Some("soc".into()),
            kind: "webhook".into(),
            url: Some(vigil_config::SecretUrl(
                "https://hooks.example/T0/SECRET-TOKEN".into(),
            )),
            slack: true,
            min_level: Some("high".into()),
            ..Default::default()
        });
        config.notify.push(vigil_config::NotifySection {
            name: Some("mail".into()),
            kind: "email".into(),
            server: Some("smtp.example:587".into()),
            from: Some("vigil@example.org".into()),
            to: vec!["soc@example.org".into()],
            username: Some("vigil".into()),
            password: Some("SECRET-PASSWORD".into()),
            ..Default::default()
        });
        config.redaction.patterns = vec!["key=SECRET-[0-9]+".parse().unwrap()];
        let plan = ServerConfig::from_config(config).unwrap();
        assert_eq!(plan.notifiers.len(), 2);
        let s = settings(&plan);
        assert!(s["notify"].contains("\"name\":\"soc\""), "{}", s["notify"]);
        assert!(
            s["notify"].contains("\"url\":\"https://hooks.example/… #"),
            "{}",
            s["notify"]
        );
        assert!(
            s["notify"].contains("\"server\":\"smtp.example:587\""),
            "{}",
            s["notify"]
        );
        assert!(s["redaction.patterns"].starts_with('#'));
        assert!(s.values().all(|v| !v.contains("SECRET")), "{s:?}");
    }
}
