//! The running system's plan, built from the one configuration type ([`vigil_config::Config`]):
//! the settings as the components take them (addresses, notifier targets, responders, query
//! rules, the ledger's tuning), checked before anything starts.

use vigil_config::{Config, ConfigError};
use vigil_detect::alert::Level;
use vigil_ledger::LedgerConfig;

use crate::checkpoint_sink::CheckpointSink;
use crate::decisions::{Net, Responder};
use crate::detect::QueryRule;
use crate::notify::{Notifier, Target};
use crate::{ServerConfig, listen, tls};

impl ServerConfig {
    /// The defaults of DESIGN §5, on loopback, for this data directory.
    pub fn defaults(data_dir: std::path::PathBuf) -> ServerConfig {
        ServerConfig::from_config(Config::new(data_dir)).expect("the defaults are valid")
    }

    /// The plan of `config`, or what is wrong with it.
    pub fn from_config(config: Config) -> Result<ServerConfig, ConfigError> {
        config.check()?;
        let c = &config;
        let data_dir = c.data_dir.root().to_owned();
        let (notifiers, checkpoint_sinks, targets) = notifiers(c)?;
        let redaction: Option<Vec<(String, String)>> = c.redaction.enabled.then(|| {
            c.redaction
                .patterns
                .iter()
                .map(|p| (p.reveal().kind.clone(), p.reveal().regex.clone()))
                .collect()
        });
        if let Some(extra) = &redaction {
            // Checked here, before anything is written to the data directory.
            vigil_parse::redact::Redactor::new(extra)
                .map_err(|message| ConfigError::invalid("[redaction] patterns", message))?;
        }
        let mut ledger = LedgerConfig::default();
        ledger.checkpoint_interval = c.ledger.checkpoint_interval.0;
        ledger.recover = c.recover.clone();
        Ok(ServerConfig {
            tls: match (&c.tls.cert, &c.tls.key) {
                (Some(cert), Some(key)) => tls::CertSource::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                },
                _ => tls::CertSource::SelfSigned(data_dir.clone()),
            },
            http: c.listen.http.addr(),
            syslog_udp: c.listen.syslog_udp.addr(),
            syslog_tcp: c.listen.syslog_tcp.addr(),
            syslog_tls: c.listen.syslog_tls.addr(),
            otlp_grpc: c.listen.otlp_grpc.addr(),
            max_message_bytes: c.limits.max_message_bytes,
            max_body_bytes: c.limits.max_body_bytes,
            keep_original: c.ingest.keep_original,
            redaction,
            retention: c.retention.max_age.map(|d| d.0),
            ledger,
            index_threads: c.index.threads,
            rule_dirs: c.detect.rules.clone(),
            alert_throttle_secs: c.detect.throttle.0.as_secs() as i64,
            notifiers,
            checkpoint_sinks,
            query_rules: query_rules(c)?,
            reports: crate::report_schedule::schedules(c, &targets)?,
            notify_backoff: c.detect.retry_backoff.0,
            responders: responders(c)?,
            allowlist: c
                .bans
                .allowlist
                .iter()
                .map(|cidr| {
                    Net::parse(cidr).map_err(|e| ConfigError::invalid("allowlist", e.to_string()))
                })
                .collect::<Result<_, _>>()?,
            demo: c.demo,
            http_tls: c.tls.http,
            session_idle: c.ui.session_idle.0,
            session_max: c.ui.session_max.0,
            builtin_rules: c.detect.builtin,
            connections: listen::ConnLimits {
                max_connections: c.limits.max_connections,
                max_per_address: c.limits.max_connections_per_address,
                header_timeout: c.limits.header_timeout.0,
                body_timeout: c.limits.body_timeout.0,
                syslog_idle_timeout: c.limits.syslog_idle_timeout.0,
                syslog_frame_timeout: c.limits.syslog_frame_timeout.0,
            },
            witnesses: crate::witness::witness_urls(c),
            witness_logs: crate::witness::witness_logs(c)?,
            data_dir,
            settings: config,
        })
    }
}

/// Every `[[notify]]` entry's name and target.
type Targets = Vec<(String, Target)>;

/// The `[[notify]]` entries as alert notifiers, checkpoint sinks, and every entry by name (for
/// `[[report]]`).
fn notifiers(c: &Config) -> Result<(Vec<Notifier>, Vec<CheckpointSink>, Targets), ConfigError> {
    let (mut notifiers, mut sinks, mut targets) = (Vec::new(), Vec::new(), Vec::new());
    for (i, n) in c.notify.iter().enumerate() {
        let what = format!("[[notify]] #{}", i + 1);
        let need = |field: &Option<String>, message: &str| {
            field
                .clone()
                .ok_or_else(|| ConfigError::invalid(&what, message))
        };
        let target = match n.kind.as_str() {
            "webhook" => Target::Webhook {
                url: n
                    .url
                    .as_ref()
                    .map(|u| u.reveal().to_owned())
                    .ok_or_else(|| ConfigError::invalid(&what, "a webhook needs url"))?,
                slack: n.slack,
            },
            "syslog" => Target::Syslog {
                addr: need(&n.address, "syslog needs address = \"host:port\"")?,
                tcp: n.tcp,
            },
            "email" => Target::Email {
                server: need(&n.server, "email needs server = \"host:port\"")?,
                starttls: n.starttls.unwrap_or(true),
                from: need(&n.from, "email needs from")?,
                to: if n.to.is_empty() {
                    return Err(ConfigError::invalid(&what, "email needs to = [\"…\"]"));
                } else {
                    n.to.clone()
                },
                username: n.username.clone(),
                password: n.password.as_ref().map(|p| p.reveal().to_owned()),
            },
            other => {
                return Err(ConfigError::invalid(
                    &what,
                    format!("type {other:?}: use webhook, email or syslog"),
                ));
            }
        };
        let name = n
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", n.kind, i + 1));
        targets.push((name.clone(), target.clone()));
        let reports = c.report.iter().any(|r| r.notify.contains(&name));
        if n.checkpoints {
            sinks.push(CheckpointSink {
                name: name.clone(),
                target: target.clone(),
            });
        }
        if !n.alerts.unwrap_or(true) {
            if !n.checkpoints && !reports {
                return Err(ConfigError::invalid(
                    &what,
                    "alerts = false, no checkpoints = true and no [[report]] names it: it would receive nothing",
                ));
            }
            continue;
        }
        notifiers.push(Notifier {
            name,
            target,
            min_level: n
                .min_level
                .as_deref()
                .map_or(Level::Informational, Level::parse),
            rules: n.rules.clone(),
        });
    }
    Ok((notifiers, sinks, targets))
}

/// `[bans] rules` (`--ban-rule`) and the `[[responder]]` entries.
fn responders(c: &Config) -> Result<Vec<Responder>, ConfigError> {
    let (first, max) = (c.bans.duration.0, c.bans.max_duration.0);
    let mut responders = Vec::new();
    if !c.bans.rules.is_empty() {
        responders.push(Responder {
            rules: c.bans.rules.clone(),
            min_level: None,
            duration: first,
            max_duration: max,
        });
    }
    for (i, r) in c.responder.iter().enumerate() {
        if r.rules.is_empty() && r.min_level.is_none() {
            return Err(ConfigError::invalid(
                format!("[[responder]] #{}", i + 1),
                "give rules = [\"…\"] or min_level",
            ));
        }
        responders.push(Responder {
            rules: r.rules.clone(),
            min_level: r.min_level.as_deref().map(Level::parse),
            duration: r.duration.map_or(first, |d| d.0),
            max_duration: r.max_duration.map_or(max, |d| d.0),
        });
    }
    Ok(responders)
}

/// The `[[query_rule]]` entries, their queries checked.
fn query_rules(c: &Config) -> Result<Vec<QueryRule>, ConfigError> {
    c.query_rule
        .iter()
        .map(|q| {
            let query = q.query.reveal();
            if let Err(e) = vigil_query::parse(query) {
                return Err(ConfigError::invalid(
                    format!("[[query_rule]] {:?}", q.name),
                    format!("query error at column {}: {}", e.column, e.message),
                ));
            }
            Ok(QueryRule {
                name: q.name.clone(),
                query: query.clone(),
                every: q.every.0,
                window: q.window.0,
                level: Level::parse(&q.level),
                tags: q.tags.clone(),
            })
        })
        .collect()
}

impl crate::ServerConfig {
    /// The logsources sources declare (`[[logsource]]`), for the ingest pipeline.
    pub(crate) fn logsources(&self) -> vigil_ingest::logsource::DeclaredSources {
        vigil_ingest::logsource::DeclaredSources::new(self.settings.logsource.iter().map(|l| {
            (
                l.source.clone(),
                vigil_ingest::logsource::Declared {
                    product: l.product.clone(),
                    category: l.category.clone(),
                    service: l.service.clone(),
                },
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(toml: &str) -> Result<ServerConfig, ConfigError> {
        let mut config = Config::from_toml(toml).map_err(|m| ConfigError::invalid("file", m))?;
        config.data_dir = vigil_config::DataDir::new("/d");
        config.expand_shortcuts();
        ServerConfig::from_config(config)
    }

    /// The example of docs/config.md plans: its `[[report]]` names one of its `[[notify]]`.
    #[test]
    fn the_documented_example_plans_with_its_scheduled_report() {
        let docs = include_str!("../../../docs/config.md");
        let example = docs
            .split("```toml")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/config.md has a TOML example");
        let c = plan(example).unwrap();
        assert_eq!(c.reports.len(), 1);
        assert_eq!(c.reports[0].name, "weekly-pci");
        assert_eq!(c.reports[0].targets[0].0, "soc-webhook");
    }

    #[test]
    fn notify_entries_become_notifiers_and_checkpoint_sinks() {
        let c = plan(
            r#"
            [[notify]]
            type = "syslog"
            address = "witness.example.org:514"
            checkpoints = true
            alerts = false
            [[notify]]
            type = "email"
            server = "smtp.example.org:587"
            from = "vigil@example.org"
            to = ["soc@example.org"]
            password = "pw"
            min_level = "high"
            [[responder]]
            min_level = "critical"
            [bans]
            duration = "1h"
            "#,
        )
        .unwrap();
        assert_eq!(c.checkpoint_sinks.len(), 1);
        assert_eq!(c.checkpoint_sinks[0].name, "syslog-1");
        assert_eq!(
            c.notifiers.len(),
            1,
            "the checkpoint-only sink gets no alerts"
        );
        assert_eq!(c.notifiers[0].name, "email-2");
        assert_eq!(c.notifiers[0].min_level, Level::High);
        assert!(matches!(
            &c.notifiers[0].target,
            Target::Email { password: Some(p), starttls: true, .. } if p == "pw"
        ));
        assert_eq!(c.responders.len(), 1);
        assert_eq!(
            c.responders[0].duration,
            std::time::Duration::from_secs(3600)
        );
    }

    #[test]
    fn entries_that_cannot_work_are_refused_by_name() {
        for (toml, expected) in [
            (
                "[[notify]]\ntype = \"webhook\"\n",
                "[[notify]] #1: a webhook needs url",
            ),
            (
                "[[notify]]\ntype = \"webhook\"\nurl = \"http://x\"\nalerts = false\n",
                "it would receive nothing",
            ),
            (
                "[[notify]]\ntype = \"email\"\nserver = \"s:25\"\nfrom = \"a@b\"\n",
                "email needs to",
            ),
            (
                "[[responder]]\nduration = \"1h\"\n",
                "[[responder]] #1: give rules",
            ),
            ("[bans]\nallowlist = [\"10.0.0.0/33\"]\n", "allowlist"),
            (
                "[redaction]\npatterns = [{ kind = \"k\", regex = \"(\" }]\n",
                "[redaction] patterns",
            ),
        ] {
            let err = plan(toml).unwrap_err().to_string();
            assert!(err.contains(expected), "{toml}: {err}");
        }
    }
}
