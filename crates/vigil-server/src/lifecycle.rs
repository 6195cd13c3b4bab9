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
//! * `settings.json`: `{"version": 1, "settings": {KEY: VALUE, …}}`, the settings of the last
//!   start (written with a temporary file and a rename once that start's audit events are
//!   durable);
//! * `running`: present while a server runs; found at start, it means the last run did not
//!   stop cleanly.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use vigil_event::{Event, Timestamp};

use crate::ServerConfig;

/// Format version of `settings.json`.
pub const SETTINGS_VERSION: u64 = 1;

fn state_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("server")
}

fn settings_path(data_dir: &Path) -> PathBuf {
    state_dir(data_dir).join("settings.json")
}

fn running_path(data_dir: &Path) -> PathBuf {
    state_dir(data_dir).join("running")
}

fn addr(a: Option<std::net::SocketAddr>) -> String {
    a.map_or_else(|| "off".to_owned(), |a| a.to_string())
}

fn secs(d: std::time::Duration) -> String {
    format!("{}s", d.as_secs())
}

/// A short fingerprint of a value that may be secret (a webhook URL carries its token): the
/// first 8 hex digits of its SHA-256. A change shows; the value does not.
fn fingerprint(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The settings of `config` that say how Vigil collects, keeps and watches logs, as text:
/// never a secret. A webhook is shown by its host and a fingerprint of the whole URL, an email
/// target by server and addresses (never the SMTP password), redaction patterns and query rule
/// queries by count or name and a fingerprint, so that any change shows.
pub fn settings(config: &ServerConfig) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        s.insert(k.to_owned(), v);
    };
    set("http", addr(config.http));
    set("http_tls", config.http_tls.to_string());
    set("syslog_udp", addr(config.syslog_udp));
    set("syslog_tcp", addr(config.syslog_tcp));
    set("syslog_tls", addr(config.syslog_tls));
    set(
        "tls_certificate",
        match &config.tls {
            crate::tls::CertSource::Files { cert, .. } => cert.display().to_string(),
            crate::tls::CertSource::SelfSigned(_) => "self-signed".to_owned(),
        },
    );
    set("max_message_bytes", config.max_message_bytes.to_string());
    set("max_body_bytes", config.max_body_bytes.to_string());
    let c = &config.connections;
    let limit = |n: usize| {
        if n == 0 {
            "auto".to_owned()
        } else {
            n.to_string()
        }
    };
    set("max_connections", limit(c.max_connections));
    set("max_connections_per_address", limit(c.max_per_address));
    set("header_timeout", secs(c.header_timeout));
    set("body_timeout", secs(c.body_timeout));
    set("syslog_idle_timeout", secs(c.syslog_idle_timeout));
    set("syslog_frame_timeout", secs(c.syslog_frame_timeout));
    set("keep_original", config.keep_original.to_string());
    set(
        "redaction",
        match &config.redaction {
            None => "off".to_owned(),
            Some(extra) => format!(
                "on, {} extra pattern(s) #{}",
                extra.len(),
                fingerprint(&format!("{extra:?}"))
            ),
        },
    );
    set(
        "retention",
        config.retention.map_or_else(|| "forever".to_owned(), secs),
    );
    set(
        "segment_max_bytes",
        config.ledger.segment_max_bytes.to_string(),
    );
    set("segment_max_age", secs(config.ledger.segment_max_age));
    set(
        "checkpoint_interval",
        format!("{}ms", config.ledger.checkpoint_interval.as_millis()),
    );
    set("index_threads", config.index_threads.to_string());
    set(
        "rule_dirs",
        config
            .rule_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );
    set("builtin_rules", config.builtin_rules.to_string());
    set(
        "query_rules",
        config
            .query_rules
            .iter()
            .map(|q| {
                format!(
                    "{} #{}",
                    q.name,
                    fingerprint(&format!(
                        "{}|{:?}|{:?}|{:?}|{:?}",
                        q.query, q.every, q.window, q.level, q.tags
                    ))
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
    set("alert_throttle", format!("{}s", config.alert_throttle_secs));
    set(
        "notify_backoff",
        format!("{}ms", config.notify_backoff.as_millis()),
    );
    set(
        "notifiers",
        config
            .notifiers
            .iter()
            .map(|n| {
                use crate::notify::Target;
                let target = match &n.target {
                    Target::Webhook { url, slack } => {
                        let host = reqwest::Url::parse(url)
                            .ok()
                            .and_then(|u| u.host_str().map(str::to_owned))
                            .unwrap_or_default();
                        let kind = if *slack { "slack" } else { "webhook" };
                        format!("{kind} to {host} #{}", fingerprint(url))
                    }
                    Target::Email {
                        server,
                        starttls,
                        from,
                        to,
                        username,
                        ..
                    } => format!(
                        "email from {from} to {} via {server}{}{}",
                        to.join(" "),
                        if *starttls { " starttls" } else { "" },
                        username
                            .as_ref()
                            .map_or_else(String::new, |u| format!(" as {u}"))
                    ),
                    Target::Syslog { addr, tcp } => {
                        format!("syslog to {addr}/{}", if *tcp { "tcp" } else { "udp" })
                    }
                };
                format!(
                    "{} ({target}; level>={:?}; rules {})",
                    n.name,
                    n.min_level,
                    if n.rules.is_empty() {
                        "all".to_owned()
                    } else {
                        n.rules.join("|")
                    }
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
    set(
        "responders",
        config
            .responders
            .iter()
            .map(|r| {
                let which = if r.rules.is_empty() {
                    r.min_level
                        .map_or_else(|| "any".to_owned(), |l| format!("level>={l:?}"))
                } else {
                    r.rules.join("|")
                };
                format!("{which} ban {}..{}", secs(r.duration), secs(r.max_duration))
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
    set(
        "allowlist",
        config
            .allowlist
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    set("demo", config.demo.to_string());
    set("session_idle", secs(config.session_idle));
    set("session_max", secs(config.session_max));
    s
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
    } else if before.is_some() {
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
        let mut config = ServerConfig::defaults(dir.path().to_owned());
        let first = record_start(dir.path(), &settings(&config));
        settings_stored(dir.path(), &settings(&config));
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].get_str("vigil.previous_stop"), Some("none"));
        assert_eq!(
            first[0].get_str("vigil.settings.http"),
            Some("127.0.0.1:8080")
        );
        record_clean_stop(dir.path());

        config.session_idle = std::time::Duration::from_secs(60);
        config.syslog_udp = None;
        let second = record_start(dir.path(), &settings(&config));
        settings_stored(dir.path(), &settings(&config));
        assert_eq!(second[0].get_str("vigil.previous_stop"), Some("clean"));
        let change = &second[1];
        assert_eq!(change.get_str("event.action"), Some("config_changed"));
        assert_eq!(change.get_str("vigil.settings.session_idle"), Some("60s"));
        assert_eq!(
            change.get_str("vigil.settings_before.session_idle"),
            Some("1800s")
        );
        assert_eq!(change.get_str("vigil.settings.syslog_udp"), Some("off"));
        assert!(change.get_str("vigil.settings.http").is_none(), "unchanged");

        // No clean stop: the next start says so, and nothing changed.
        let third = record_start(dir.path(), &settings(&config));
        assert_eq!(third.len(), 1);
        assert_eq!(third[0].get_str("vigil.previous_stop"), Some("unclean"));
    }

    #[test]
    fn settings_hold_no_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::defaults(dir.path().to_owned());
        config.notifiers.push(crate::notify::Notifier {
            name: "soc".into(),
            target: crate::notify::Target::Webhook {
                url: "https://hooks.example/T0/SECRET-TOKEN".into(),
                slack: true,
            },
            min_level: vigil_detect::alert::Level::High,
            rules: Vec::new(),
        });
        config.redaction = Some(vec![("key".into(), "SECRET-[0-9]+".into())]);
        config.notifiers.push(crate::notify::Notifier {
            name: "mail".into(),
            target: crate::notify::Target::Email {
                server: "smtp.example:587".into(),
                starttls: true,
                from: "vigil@example.org".into(),
                to: vec!["soc@example.org".into()],
                username: Some("vigil".into()),
                password: Some("SECRET-PASSWORD".into()),
            },
            min_level: vigil_detect::alert::Level::Medium,
            rules: Vec::new(),
        });
        let s = settings(&config);
        assert!(
            s["notifiers"].starts_with("soc (slack to hooks.example #"),
            "{}",
            s["notifiers"]
        );
        assert!(
            s["notifiers"].contains(
                "mail (email from vigil@example.org to soc@example.org via smtp.example:587 starttls as vigil;"
            ),
            "{}",
            s["notifiers"]
        );
        assert!(s["redaction"].starts_with("on, 1 extra pattern(s) #"));
        assert!(s.values().all(|v| !v.contains("SECRET")), "{s:?}");
        // Another token in the URL, another pattern: the settings differ.
        let before = s;
        if let crate::notify::Target::Webhook { url, .. } = &mut config.notifiers[0].target {
            *url = "https://hooks.example/T0/SECRET-OTHER".into();
        }
        config.redaction = Some(vec![("key".into(), "SECRET-[0-9a-f]+".into())]);
        let after = settings(&config);
        assert_ne!(before["notifiers"], after["notifiers"]);
        assert_ne!(before["redaction"], after["redaction"]);
    }
}
