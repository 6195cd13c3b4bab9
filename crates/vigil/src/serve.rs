//! `vigil serve`: open (or create) the ledger and run the listeners until SIGINT/SIGTERM.
//!
//! Settings come from, in order of precedence: command-line flags, the `--config` TOML file,
//! then the built-in defaults (loopback listeners, see `ServerConfig::defaults`). The file's
//! shape is documented in `docs/config.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use vigil_detect::alert::Level;
use vigil_ledger::parse_duration;
use vigil_respond::checkpoint_sink::CheckpointSink;
use vigil_respond::decisions::{Net, Responder};
use vigil_respond::notify::{Notifier, Target};
use vigil_server::detect::QueryRule;
use vigil_server::{ServerConfig, tls::CertSource};

use crate::DataDir;

/// Arguments of `vigil serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    data: DataDir,
    /// TOML configuration file (flags given here win over it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// HTTP API address (ingest, HEC, _bulk, checkpoints, metrics) [default: 127.0.0.1:8080]; `off` to disable.
    #[arg(long, value_name = "ADDR|off")]
    http: Option<String>,
    /// Syslog over UDP [default: 127.0.0.1:5514]; `off` to disable.
    #[arg(long, value_name = "ADDR|off")]
    syslog_udp: Option<String>,
    /// Syslog over TCP, LF framing or RFC 6587 octet counting [default: 127.0.0.1:5514]; `off` to disable.
    #[arg(long, value_name = "ADDR|off")]
    syslog_tcp: Option<String>,
    /// Syslog over TLS, RFC 5425 [default: 127.0.0.1:6514]; `off` to disable.
    #[arg(long, value_name = "ADDR|off")]
    syslog_tls: Option<String>,
    /// TLS certificate chain (PEM); without it a self-signed one is generated in DATA_DIR/tls.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Longest syslog message kept whole, in bytes; longer ones are cut and tagged `truncated` [default: 65536].
    #[arg(long)]
    max_message_bytes: Option<usize>,
    /// Largest HTTP request body, in bytes; larger requests get 413 [default: 16777216].
    #[arg(long)]
    max_body_bytes: Option<usize>,
    /// Open connections allowed at once on each TCP listener (HTTP, syslog TCP, syslog TLS)
    /// [default: the open-file limit less 256, shared by the listeners, at most 4096].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Open connections allowed at once from one address (IPv6: one /64) on each TCP listener
    /// [default: a quarter of --max-connections, at most 256].
    #[arg(long, value_name = "N")]
    max_connections_per_address: Option<usize>,
    /// An HTTP request's header must arrive within this long; an idle keep-alive connection
    /// closes after this long [default: 20s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    header_timeout: Option<Duration>,
    /// An HTTP request's whole body must arrive within this long [default: 60s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    body_timeout: Option<Duration>,
    /// A syslog TCP/TLS connection that sends nothing for this long is closed [default: 5m].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    syslog_idle_timeout: Option<Duration>,
    /// A syslog TCP/TLS line still unfinished this long after its first byte is stored cut,
    /// tagged `truncated`, and the connection closed [default: 60s].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    syslog_frame_timeout: Option<Duration>,
    /// Do not keep the raw text of events in `event.original`.
    #[arg(long)]
    no_original: bool,
    /// Extra secret pattern to mask, as KIND=REGEX (repeatable), e.g. employee_id=EMP-\d{6}.
    #[arg(long = "redact", value_name = "KIND=REGEX")]
    redact: Vec<String>,
    /// Remove sealed segments older than this (e.g. 365d); unset keeps everything.
    #[arg(long, value_parser = parse_duration)]
    retention: Option<Duration>,
    /// How often to sign a checkpoint while events arrive [default: 5s].
    #[arg(long, value_parser = parse_duration)]
    checkpoint_interval: Option<Duration>,
    /// Threads building the search index; 0 turns the index off (searches scan the ledger)
    /// [default: the number of cores, at most 2].
    #[arg(long, value_name = "N")]
    index_threads: Option<usize>,
    /// Directory of Sigma rules to run on every event as it arrives (repeatable); rules reload
    /// when the files change.
    #[arg(long = "rules", value_name = "DIR")]
    rules: Vec<PathBuf>,
    /// Send alerts as JSON to this URL (repeatable); see `[[notify]]` in the config for routing,
    /// Slack's shape and syslog.
    #[arg(long = "webhook", value_name = "URL")]
    webhooks: Vec<String>,
    /// Send every signed checkpoint as JSON to this URL (repeatable), so a copy of the ledger's
    /// history lives off this host (`vigil verify --against` checks against it); see
    /// `checkpoints = true` in `[[notify]]` for syslog and email.
    #[arg(long = "checkpoint-webhook", value_name = "URL")]
    checkpoint_webhooks: Vec<String>,
    /// Ban the source address of alerts from this rule (id or title; repeatable); the CrowdSec
    /// bouncers enforce the bans (`vigil bouncer add NAME`).
    #[arg(long = "ban-rule", value_name = "RULE")]
    ban_rules: Vec<String>,
    /// How long a first ban lasts; repeat offenders get twice as long each time [default: 4h].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    ban_for: Option<Duration>,
    /// The longest ban after escalation [default: 7d].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    ban_max: Option<Duration>,
    /// Never ban this network (CIDR or address; repeatable). Loopback, link-local and the
    /// server's own addresses are always allowed.
    #[arg(long = "allow", value_name = "CIDR")]
    allow: Vec<String>,
    /// Start with a generated stream (web, SSH, sudo, application events) holding a brute
    /// force, a password spray, a scanner and an insider, with bundled rules and bans: alerts
    /// and bans appear within a minute.
    #[arg(long)]
    demo: bool,
    /// Serve the HTTP API and web UI over HTTPS, with --tls-cert/--tls-key or a generated
    /// self-signed certificate.
    #[arg(long)]
    tls: bool,
    /// A web UI session ends after this long without use [default: 30m].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    session_idle: Option<Duration>,
    /// A web UI session ends this long after login in any case [default: 12h].
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    session_max: Option<Duration>,
    /// Do not load Vigil's bundled rules (brute force against Vigil's own login).
    #[arg(long)]
    no_builtin_rules: bool,
    /// Start even though the ledger does not verify against its own signed checkpoints,
    /// re-signing what is stored. The reason and what was found are signed into
    /// ledger/recoveries.log and the ledger, and every later `vigil verify` reports them.
    #[arg(long, value_name = "REASON")]
    recover: Option<String>,
}

/// The `--config` file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    listen: ListenSection,
    #[serde(default)]
    tls: TlsSection,
    #[serde(default)]
    limits: LimitsSection,
    #[serde(default)]
    ingest: IngestSection,
    #[serde(default)]
    redaction: RedactionSection,
    #[serde(default)]
    retention: RetentionSection,
    #[serde(default)]
    ledger: LedgerSection,
    #[serde(default)]
    index: IndexSection,
    #[serde(default)]
    detect: DetectSection,
    #[serde(default)]
    notify: Vec<NotifySection>,
    #[serde(default)]
    query_rule: Vec<QueryRuleSection>,
    #[serde(default)]
    responder: Vec<ResponderSection>,
    #[serde(default)]
    bans: BansSection,
    #[serde(default)]
    ui: UiSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponderSection {
    #[serde(default)]
    rules: Vec<String>,
    min_level: Option<String>,
    duration: Option<String>,
    max_duration: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BansSection {
    #[serde(default)]
    allowlist: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryRuleSection {
    name: String,
    query: String,
    every: Option<String>,
    window: Option<String>,
    level: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectSection {
    #[serde(default)]
    rules: Vec<PathBuf>,
    builtin: Option<bool>,
    throttle: Option<String>,
    retry_backoff: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifySection {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    url: Option<String>,
    #[serde(default)]
    slack: bool,
    address: Option<String>,
    #[serde(default)]
    tcp: bool,
    server: Option<String>,
    #[serde(default)]
    starttls: Option<bool>,
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    username: Option<String>,
    password: Option<String>,
    min_level: Option<String>,
    #[serde(default)]
    rules: Vec<String>,
    /// Also send every signed checkpoint here.
    #[serde(default)]
    checkpoints: bool,
    /// Send alerts here (default true; false with `checkpoints = true` for a checkpoint-only sink).
    alerts: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexSection {
    threads: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenSection {
    http: Option<String>,
    syslog_udp: Option<String>,
    syslog_tcp: Option<String>,
    syslog_tls: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    /// Serve HTTP over TLS.
    http: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UiSection {
    session_idle: Option<String>,
    session_max: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    max_message_bytes: Option<usize>,
    max_body_bytes: Option<usize>,
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    header_timeout: Option<String>,
    body_timeout: Option<String>,
    syslog_idle_timeout: Option<String>,
    syslog_frame_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestSection {
    keep_original: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedactionSection {
    enabled: Option<bool>,
    #[serde(default)]
    patterns: Vec<RedactionPattern>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedactionPattern {
    kind: String,
    regex: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionSection {
    max_age: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerSection {
    checkpoint_interval: Option<String>,
}

/// Reads and checks a configuration file.
pub fn read_config(path: &Path) -> Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

fn address(value: &str, what: &str) -> Result<Option<SocketAddr>> {
    if value.eq_ignore_ascii_case("off") || value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| anyhow!("{what} {value:?}: expected IP:PORT (e.g. 127.0.0.1:5514) or off"))
}

/// Merges flags over the file over the defaults.
/// The operator's redaction: the `[redaction]` section and `--redact KIND=REGEX` flags, as
/// extra patterns over the defaults, or `None` when turned off. `vigil serve` and
/// `vigil import` mask secrets the same way.
pub fn redaction(file: &FileConfig, flags: &[String]) -> Result<Option<Vec<(String, String)>>> {
    let mut extra: Vec<(String, String)> = file
        .redaction
        .patterns
        .iter()
        .map(|p| (p.kind.clone(), p.regex.clone()))
        .collect();
    for spec in flags {
        let (kind, regex) = spec
            .split_once('=')
            .ok_or_else(|| anyhow!("--redact {spec:?}: expected KIND=REGEX"))?;
        extra.push((kind.to_owned(), regex.to_owned()));
    }
    if file.redaction.enabled == Some(false) {
        if !extra.is_empty() {
            bail!("redaction patterns are configured but [redaction] enabled = false");
        }
        Ok(None)
    } else {
        Ok(Some(extra))
    }
}

pub fn build_config(args: &ServeArgs, file: &FileConfig) -> Result<ServerConfig> {
    let data_dir = args.data.data_dir.clone();
    let mut config = ServerConfig::defaults(data_dir.clone());
    let listen = |flag: &Option<String>,
                  from_file: &Option<String>,
                  current: Option<SocketAddr>,
                  what: &str|
     -> Result<Option<SocketAddr>> {
        match flag.as_ref().or(from_file.as_ref()) {
            Some(v) => address(v, what),
            None => Ok(current),
        }
    };
    config.http = listen(&args.http, &file.listen.http, config.http, "http")?;
    config.syslog_udp = listen(
        &args.syslog_udp,
        &file.listen.syslog_udp,
        config.syslog_udp,
        "syslog_udp",
    )?;
    config.syslog_tcp = listen(
        &args.syslog_tcp,
        &file.listen.syslog_tcp,
        config.syslog_tcp,
        "syslog_tcp",
    )?;
    config.syslog_tls = listen(
        &args.syslog_tls,
        &file.listen.syslog_tls,
        config.syslog_tls,
        "syslog_tls",
    )?;
    let cert = args.tls_cert.clone().or(file.tls.cert.clone());
    let key = args.tls_key.clone().or(file.tls.key.clone());
    config.tls = match (cert, key) {
        (Some(cert), Some(key)) => CertSource::Files { cert, key },
        (None, None) => CertSource::SelfSigned(data_dir.clone()),
        _ => bail!("a TLS certificate needs both cert and key"),
    };
    if let Some(n) = args.max_message_bytes.or(file.limits.max_message_bytes) {
        config.max_message_bytes = n;
    }
    if let Some(n) = args.max_body_bytes.or(file.limits.max_body_bytes) {
        config.max_body_bytes = n;
    }
    if let Some(n) = args.max_connections.or(file.limits.max_connections) {
        config.connections.max_connections = n;
    }
    if let Some(n) = args
        .max_connections_per_address
        .or(file.limits.max_connections_per_address)
    {
        config.connections.max_per_address = n;
    }
    let timeout = |flag: Option<Duration>, text: &Option<String>, key: &str, current: Duration| {
        let d = match (flag, text) {
            (Some(d), _) => d,
            (None, Some(text)) => {
                parse_duration(text).map_err(|e| anyhow!("[limits] {key}: {e}"))?
            }
            (None, None) => current,
        };
        if d.is_zero() {
            bail!("[limits] {key} must be longer than zero");
        }
        Ok(d)
    };
    config.connections.header_timeout = timeout(
        args.header_timeout,
        &file.limits.header_timeout,
        "header_timeout",
        config.connections.header_timeout,
    )?;
    config.connections.body_timeout = timeout(
        args.body_timeout,
        &file.limits.body_timeout,
        "body_timeout",
        config.connections.body_timeout,
    )?;
    config.connections.syslog_idle_timeout = timeout(
        args.syslog_idle_timeout,
        &file.limits.syslog_idle_timeout,
        "syslog_idle_timeout",
        config.connections.syslog_idle_timeout,
    )?;
    config.connections.syslog_frame_timeout = timeout(
        args.syslog_frame_timeout,
        &file.limits.syslog_frame_timeout,
        "syslog_frame_timeout",
        config.connections.syslog_frame_timeout,
    )?;
    config.keep_original = !args.no_original && file.ingest.keep_original.unwrap_or(true);
    config.redaction = redaction(file, &args.redact)?;
    config.retention = match (args.retention, &file.retention.max_age) {
        (Some(d), _) => Some(d),
        (None, Some(text)) => {
            Some(parse_duration(text).map_err(|e| anyhow!("[retention] max_age: {e}"))?)
        }
        (None, None) => None,
    };
    config.ledger.checkpoint_interval =
        match (args.checkpoint_interval, &file.ledger.checkpoint_interval) {
            (Some(d), _) => d,
            (None, Some(text)) => {
                parse_duration(text).map_err(|e| anyhow!("[ledger] checkpoint_interval: {e}"))?
            }
            (None, None) => config.ledger.checkpoint_interval,
        };
    config.demo = args.demo;
    if let Some(reason) = &args.recover {
        if reason.trim().is_empty() {
            bail!(
                "--recover needs a reason (who decided, why): it is signed into the ledger's recovery record"
            );
        }
        config.ledger.recover = Some(reason.clone());
    }
    config.http_tls = args.tls || file.tls.http.unwrap_or(false);
    config.session_idle = match (args.session_idle, &file.ui.session_idle) {
        (Some(d), _) => d,
        (None, Some(text)) => {
            parse_duration(text).map_err(|e| anyhow!("[ui] session_idle: {e}"))?
        }
        (None, None) => config.session_idle,
    };
    config.session_max = match (args.session_max, &file.ui.session_max) {
        (Some(d), _) => d,
        (None, Some(text)) => parse_duration(text).map_err(|e| anyhow!("[ui] session_max: {e}"))?,
        (None, None) => config.session_max,
    };
    config.builtin_rules = !args.no_builtin_rules && file.detect.builtin.unwrap_or(true);
    if let Some(n) = args.index_threads.or(file.index.threads) {
        config.index_threads = n;
    }
    config.rule_dirs = args
        .rules
        .iter()
        .chain(&file.detect.rules)
        .cloned()
        .collect();
    if let Some(text) = &file.detect.throttle {
        let d = parse_duration(text).map_err(|e| anyhow!("[detect] throttle: {e}"))?;
        config.alert_throttle_secs = d.as_secs() as i64;
    }
    if let Some(text) = &file.detect.retry_backoff {
        config.notify_backoff =
            parse_duration(text).map_err(|e| anyhow!("[detect] retry_backoff: {e}"))?;
    }
    for (i, url) in args.webhooks.iter().enumerate() {
        config.notifiers.push(Notifier {
            name: format!("webhook-{}", i + 1),
            target: Target::Webhook {
                url: url.clone(),
                slack: false,
            },
            min_level: Level::Informational,
            rules: Vec::new(),
        });
    }
    for (i, url) in args.checkpoint_webhooks.iter().enumerate() {
        config.checkpoint_sinks.push(CheckpointSink {
            name: format!("checkpoint-webhook-{}", i + 1),
            target: Target::Webhook {
                url: url.clone(),
                slack: false,
            },
        });
    }
    for (i, n) in file.notify.iter().enumerate() {
        let what = format!("[[notify]] #{}", i + 1);
        let target = match n.kind.as_str() {
            "webhook" => Target::Webhook {
                url: n
                    .url
                    .clone()
                    .ok_or_else(|| anyhow!("{what}: a webhook needs url"))?,
                slack: n.slack,
            },
            "syslog" => Target::Syslog {
                addr: n
                    .address
                    .clone()
                    .ok_or_else(|| anyhow!("{what}: syslog needs address = \"host:port\""))?,
                tcp: n.tcp,
            },
            "email" => Target::Email {
                server: n
                    .server
                    .clone()
                    .ok_or_else(|| anyhow!("{what}: email needs server = \"host:port\""))?,
                starttls: n.starttls.unwrap_or(true),
                from: n
                    .from
                    .clone()
                    .ok_or_else(|| anyhow!("{what}: email needs from"))?,
                to: if n.to.is_empty() {
                    bail!("{what}: email needs to = [\"…\"]")
                } else {
                    n.to.clone()
                },
                username: n.username.clone(),
                password: n.password.clone(),
            },
            other => bail!("{what}: type {other:?}: use webhook, email or syslog"),
        };
        let name = n
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", n.kind, i + 1));
        if n.checkpoints {
            config.checkpoint_sinks.push(CheckpointSink {
                name: name.clone(),
                target: target.clone(),
            });
        }
        if !n.alerts.unwrap_or(true) {
            if !n.checkpoints {
                bail!("{what}: alerts = false and no checkpoints = true: it would receive nothing");
            }
            continue;
        }
        config.notifiers.push(Notifier {
            name,
            target,
            min_level: n
                .min_level
                .as_deref()
                .map_or(Level::Informational, Level::parse),
            rules: n.rules.clone(),
        });
    }
    let first = args.ban_for.unwrap_or(Duration::from_secs(4 * 3600));
    let max = args.ban_max.unwrap_or(Duration::from_secs(7 * 86_400));
    if !args.ban_rules.is_empty() {
        config.responders.push(Responder {
            rules: args.ban_rules.clone(),
            min_level: None,
            duration: first,
            max_duration: max,
        });
    }
    for (i, r) in file.responder.iter().enumerate() {
        let what = format!("[[responder]] #{}", i + 1);
        if r.rules.is_empty() && r.min_level.is_none() {
            bail!("{what}: give rules = [\"…\"] or min_level");
        }
        let duration = |text: &Option<String>, default: Duration, key: &str| match text {
            Some(t) => parse_duration(t).map_err(|e| anyhow!("{what}: {key}: {e}")),
            None => Ok(default),
        };
        config.responders.push(Responder {
            rules: r.rules.clone(),
            min_level: r.min_level.as_deref().map(Level::parse),
            duration: duration(&r.duration, first, "duration")?,
            max_duration: duration(&r.max_duration, max, "max_duration")?,
        });
    }
    for cidr in args.allow.iter().chain(&file.bans.allowlist) {
        config
            .allowlist
            .push(Net::parse(cidr).map_err(|e| anyhow!("allowlist: {e}"))?);
    }
    for q in &file.query_rule {
        let what = format!("[[query_rule]] {:?}", q.name);
        if let Err(e) = vigil_query::parse(&q.query) {
            bail!("{what}: query error at column {}: {}", e.column, e.message);
        }
        let duration = |text: &Option<String>, default: &str, key: &str| {
            parse_duration(text.as_deref().unwrap_or(default))
                .map_err(|e| anyhow!("{what}: {key}: {e}"))
        };
        config.query_rules.push(QueryRule {
            name: q.name.clone(),
            query: q.query.clone(),
            every: duration(&q.every, "1m", "every")?,
            window: duration(&q.window, "5m", "window")?,
            level: Level::parse(q.level.as_deref().unwrap_or("medium")),
            tags: q.tags.clone(),
        });
    }
    Ok(config)
}

/// `vigil serve`.
pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let file = match &args.config {
        Some(path) => read_config(path)?,
        None => FileConfig::default(),
    };
    let config = build_config(&args, &file)?;
    let config_demo = config.demo;
    let config_tls = config.http_tls;
    let data_dir = config.data_dir.clone();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vigil")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        // Handlers first: a SIGTERM that arrives while the ledger opens is held until
        // startup is done, then stops the server cleanly (not the default action, death
        // without a final checkpoint).
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut interrupt =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        // Startup can take a while (ledger recovery, a large index to open): a signal during
        // it is acknowledged at once and acted on as soon as the server is up.
        let starting = vigil_server::start(config);
        tokio::pin!(starting);
        let mut stop_requested = false;
        let running = loop {
            tokio::select! {
                r = &mut starting => break r.map_err(|e| anyhow!(e))?,
                _ = interrupt.recv(), if !stop_requested => stop_requested = true,
                _ = term.recv(), if !stop_requested => stop_requested = true,
            }
            eprintln!("vigil: stopping as soon as startup is done (a clean stop signs a final checkpoint)");
        };
        for cut in &running.recovery.cut {
            eprintln!(
                "vigil: crash recovery cut {} bytes at offset {} of {}: {}",
                cut.bytes,
                cut.offset,
                cut.path.display(),
                cut.reason
            );
        }
        if let Some(r) = &running.recovery.recovered {
            eprintln!(
                "vigil: WARNING: LEDGER RECOVERED: the ledger did not verify against its own checkpoints and was re-signed ({} events) as asked with --recover {:?}; found: {}. This is recorded in ledger/recoveries.log and the ledger, and `vigil verify` reports it from now on",
                r.size,
                r.reason,
                r.found.join("; ")
            );
        }
        if let Some(tail) = &running.recovery.unsigned_tail {
            eprintln!(
                "vigil: events {}..{} were not covered by a signed checkpoint (the previous run did not stop cleanly); they continue the signed tree and are signed now (recorded in the ledger)",
                tail.start, tail.end
            );
        }
        let paths = running.ledger.paths().clone();
        eprintln!("vigil: ledger {} ({} events)", paths.root().display(), running.recovery.end_seq);
        eprintln!("vigil: origin {}", running.ledger.origin());
        eprintln!(
            "vigil: signing key {} (mode 0600); verifier key {}",
            paths.signing_key().display(),
            paths.verifier_key().display()
        );
        if let Some(a) = running.http {
            let scheme = if config_tls { "https" } else { "http" };
            eprintln!("vigil: listening {scheme}://{a} (POST /api/v1/ingest, /services/collector, /_bulk)");
            eprintln!("vigil: web UI at {scheme}://{a}/ui/");
            if !config_tls && !a.ip().is_loopback() {
                eprintln!(
                    "vigil: warning: HTTP on {a} is not loopback and not TLS: passwords, tokens and \
                     session cookies cross the network in clear text; add --tls"
                );
            }
        }
        if let Some(path) = &running.initial_admin {
            eprintln!(
                "vigil: created the first account, admin; its password is in {} (mode 0600). The first login must change it (the web UI asks; or `vigil user passwd --data-dir {} admin`); the file goes with the change",
                path.display(),
                data_dir.display()
            );
        }
        if let Some(a) = running.syslog_udp {
            eprintln!("vigil: listening syslog udp://{a}");
        }
        if let Some(a) = running.syslog_tcp {
            eprintln!("vigil: listening syslog tcp://{a}");
        }
        if let Some(a) = running.syslog_tls {
            eprintln!("vigil: listening syslog tls://{a}");
        }
        if vigil_server::auth::list_tokens(&data_dir)
            .map(|t| t.is_empty())
            .unwrap_or(true)
        {
            eprintln!(
                "vigil: no API tokens yet; create one with `vigil token create --data-dir {} --role ingest --name NAME`",
                data_dir.display()
            );
        }
        if config_demo {
            let http = running
                .http
                .map_or_else(|| "127.0.0.1:8080".to_string(), |a| a.to_string());
            let scheme = if config_tls { "https" } else { "http" };
            eprintln!(
                "vigil: demo: a generated stream is running; a brute force, a password spray, a \
                 scanner and an insider arrive within 30 s. Watch them in the web UI at \
                 {scheme}://{http}/ui/#/alerts (log in as an account; `vigil user add` makes \
                 more), or with a token (`vigil token create --role analyst --name me`) at \
                 /api/v1/alerts and /api/v1/decisions"
            );
        }
        eprintln!("vigil: ready; stop with Ctrl-C or SIGTERM (a final checkpoint is signed on the way out)");
        if !stop_requested {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = term.recv() => {}
            }
        }
        eprintln!("vigil: shutting down");
        running.shutdown().await.map_err(|e| anyhow!(e))?;
        eprintln!("vigil: stopped; every accepted event is durable and signed");
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn args(list: &[&str]) -> ServeArgs {
        let mut v = vec!["vigil"];
        v.extend_from_slice(list);
        Wrapper::parse_from(v).serve
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let file: FileConfig = toml::from_str(
            r#"
            [listen]
            http = "127.0.0.1:9000"
            syslog_udp = "off"
            [limits]
            max_message_bytes = 1000
            max_connections = 500
            header_timeout = "20s"
            [redaction]
            patterns = [{ kind = "employee_id", regex = "EMP-\\d{6}" }]
            [retention]
            max_age = "365d"
            [ledger]
            checkpoint_interval = "2s"
            "#,
        )
        .unwrap();
        let c = build_config(
            &args(&["--http", "127.0.0.1:9100", "--redact", "x=y"]),
            &file,
        )
        .unwrap();
        assert_eq!(c.http, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(c.syslog_udp, None);
        assert_eq!(c.syslog_tcp, Some("127.0.0.1:5514".parse().unwrap()));
        assert_eq!(c.max_message_bytes, 1000);
        assert_eq!(c.connections.max_connections, 500);
        assert_eq!(c.connections.header_timeout, Duration::from_secs(20));
        assert_eq!(c.connections.body_timeout, Duration::from_secs(60));
        assert_eq!(c.retention, Some(Duration::from_secs(365 * 86_400)));
        assert_eq!(c.ledger.checkpoint_interval, Duration::from_secs(2));
        assert_eq!(c.redaction.unwrap().len(), 2);
    }

    #[test]
    fn checkpoint_sinks_from_notify_sections_and_flags() {
        let file: FileConfig = toml::from_str(
            r#"
            [[notify]]
            type = "syslog"
            address = "witness.example.org:514"
            checkpoints = true
            alerts = false
            [[notify]]
            type = "webhook"
            url = "https://hooks.example.org/alerts"
            "#,
        )
        .unwrap();
        let c = build_config(
            &args(&[
                "--checkpoint-webhook",
                "http://127.0.0.1:9/ckp",
                "--recover",
                "ticket 9",
            ]),
            &file,
        )
        .unwrap();
        assert_eq!(c.checkpoint_sinks.len(), 2);
        assert!(matches!(
            c.checkpoint_sinks[1].target,
            Target::Syslog { .. }
        ));
        assert_eq!(
            c.notifiers.len(),
            1,
            "the checkpoint-only sink gets no alerts"
        );
        assert_eq!(c.ledger.recover.as_deref(), Some("ticket 9"));
        let nothing: FileConfig =
            toml::from_str("[[notify]]\ntype = \"webhook\"\nurl = \"http://x\"\nalerts = false\n")
                .unwrap();
        assert!(build_config(&args(&[]), &nothing).is_err());
        assert!(build_config(&args(&["--recover", " "]), &FileConfig::default()).is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(toml::from_str::<FileConfig>("[listen]\nhtp = \"x\"").is_err());
        let file: FileConfig = toml::from_str("[listen]\nhttp = \"localhost\"").unwrap();
        let err = build_config(&args(&[]), &file).unwrap_err().to_string();
        assert!(err.contains("expected IP:PORT"), "{err}");
    }
}
