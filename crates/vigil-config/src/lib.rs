//! # vigil-config: what `vigil serve` can be told, stated once
//!
//! [`Config`] is the one list of settings. Each field is at once:
//!
//! * a key of the TOML file (`serde`, sections as tables, unknown keys refused: a typo never
//!   silently does nothing), documented in `docs/config.md`;
//! * a `vigil serve` flag (`clap`; its doc comment is the `--help` text), or `#[arg(skip)]`
//!   where the setting lives only in the file; flags override the file through clap's own
//!   [`clap::FromArgMatches::update_from_arg_matches`] (see [`Config::apply_flags`]);
//! * a setting in the start's audit event (`vigil.settings.SECTION.KEY`): [`Config::settings`]
//!   flattens the serialized config, so a secret is marked once, by its type ([`Secret`]
//!   serializes as a fingerprint) or by `#[serde(skip_serializing)]` (the SMTP password).
//!
//! A section's `Default` holds DESIGN §5's zero-configuration defaults, on loopback.
//!
//! [`DataDir`] owns the layout of the data directory. The crate sits below the server and the
//! CLI, so both read the configuration without the CLI depending on the server's internals.
#![deny(missing_docs)]

mod data_dir;
mod drills;
mod enrich;
mod logsource;
mod report;
mod settings;
mod types;

use std::path::{Path, PathBuf};

use clap::ArgAction;
use serde::{Deserialize, Serialize};

pub use data_dir::DataDir;
pub use drills::DrillsSection;
pub use enrich::{EnrichSection, IntelSection};
pub use logsource::LogSourceSection;
pub use report::ReportSection;
pub use types::{Duration, Listen, Password, RedactPattern, Secret, SecretUrl, fingerprint};

/// A configuration that cannot be used: what is wrong and where. Retrying does not help; the
/// file or the flags must change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for [`Config`] (an unknown key, a wrong type, a bad value).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's account, with line and column.
        message: String,
    },
    /// A setting's value is not acceptable.
    #[error("{setting}: {message}")]
    Invalid {
        /// Which setting (`[[notify]] #2`, `--recover`, …).
        setting: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// A setting that is not acceptable.
    pub fn invalid(setting: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

/// Everything `vigil serve` can be told. See the crate documentation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The data directory (given apart, by `--data-dir`; never in the file).
    #[serde(skip)]
    #[arg(skip)]
    pub data_dir: DataDir,
    /// Listener addresses.
    #[command(flatten)]
    pub listen: ListenSection,
    /// Certificates.
    #[command(flatten)]
    pub tls: TlsSection,
    /// Limits on input, connections and time.
    #[command(flatten)]
    pub limits: LimitsSection,
    /// How events are kept.
    #[command(flatten)]
    pub ingest: IngestSection,
    /// Masking of secrets before storage.
    #[command(flatten)]
    pub redaction: RedactionSection,
    /// Removal of old events.
    #[command(flatten)]
    pub retention: RetentionSection,
    /// The ledger.
    #[command(flatten)]
    pub ledger: LedgerSection,
    /// The search index.
    #[command(flatten)]
    pub index: IndexSection,
    /// Detection.
    #[command(flatten)]
    pub detect: DetectSection,
    /// Alerts when a source that sends regularly goes quiet.
    #[command(flatten)]
    pub silence: SilenceSection,
    /// Where alerts and checkpoints are sent (`[[notify]]`, file only; `--webhook` and
    /// `--checkpoint-webhook` add entries).
    #[arg(skip)]
    pub notify: Vec<NotifySection>,
    /// Scheduled queries that alert (`[[query_rule]]`, file only).
    #[arg(skip)]
    pub query_rule: Vec<QueryRuleSection>,
    /// Which alerts ban their address (`[[responder]]`, file only; `--ban-rule` adds one).
    #[arg(skip)]
    pub responder: Vec<ResponderSection>,
    /// Compliance reports computed and sent on a schedule (`[[report]]`, file only).
    #[arg(skip)]
    pub report: Vec<ReportSection>,
    /// Bans.
    #[command(flatten)]
    pub bans: BansSection,
    /// The web UI.
    #[command(flatten)]
    pub ui: UiSection,
    /// Cluster mode on NATS JetStream (off unless `--cluster` or `[cluster] nats` is given).
    #[command(flatten)]
    pub cluster: ClusterSection,
    /// C2SP witnesses: who cosigns this ledger's checkpoints, and whose this server cosigns.
    #[command(flatten)]
    pub witness: WitnessSection,
    /// Threat-intelligence feeds matched at ingest.
    #[command(flatten)]
    pub intel: IntelSection,
    /// User and host tables and GeoIP joined at ingest.
    #[command(flatten)]
    pub enrich: EnrichSection,
    /// The Sigma logsource of what a source receives (`[[logsource]]`, file only).
    #[arg(skip)]
    pub logsource: Vec<LogSourceSection>,
    /// Incident-response drills on a schedule (file only).
    #[command(flatten)]
    pub drills: DrillsSection,
    /// Start with a generated stream (web, SSH, sudo, application events) holding a brute
    /// force, a password spray, a scanner and an insider, with bundled rules and bans: alerts
    /// and bans appear within a minute.
    #[arg(long)]
    #[serde(skip_deserializing)]
    pub demo: bool,
    /// Start even though the ledger does not verify against its own signed checkpoints,
    /// re-signing what is stored. The reason and what was found are signed into
    /// ledger/recoveries.log and the ledger, and every later `vigil verify` reports them.
    #[arg(long, value_name = "REASON")]
    #[serde(skip)]
    pub recover: Option<String>,
    /// Send alerts as JSON to this URL (repeatable); see `[[notify]]` in the config for routing,
    /// Slack's shape and syslog.
    #[arg(long = "webhook", value_name = "URL")]
    #[serde(skip)]
    pub webhook: Vec<SecretUrl>,
    /// Send every signed checkpoint as JSON to this URL (repeatable), so a copy of the ledger's
    /// history lives off this host (`vigil verify --against` checks against it); see
    /// `checkpoints = true` in `[[notify]]` for syslog and email.
    #[arg(long = "checkpoint-webhook", value_name = "URL")]
    #[serde(skip)]
    pub checkpoint_webhook: Vec<SecretUrl>,
}

/// `[listen]`: listener addresses; `off` disables one.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct ListenSection {
    /// HTTP API address (ingest, HEC, _bulk, checkpoints, metrics) [default: 127.0.0.1:8080]; `off` to disable.
    #[arg(long = "http", value_name = "ADDR|off", required = false)]
    pub http: Listen,
    /// Syslog over UDP [default: 127.0.0.1:5514]; `off` to disable.
    #[arg(long = "syslog-udp", value_name = "ADDR|off", required = false)]
    pub syslog_udp: Listen,
    /// Syslog over TCP, LF framing or RFC 6587 octet counting [default: 127.0.0.1:5514]; `off` to disable.
    #[arg(long = "syslog-tcp", value_name = "ADDR|off", required = false)]
    pub syslog_tcp: Listen,
    /// Syslog over TLS, RFC 5425 [default: 127.0.0.1:6514]; `off` to disable.
    #[arg(long = "syslog-tls", value_name = "ADDR|off", required = false)]
    pub syslog_tls: Listen,
    /// OpenTelemetry logs over OTLP/gRPC, plaintext HTTP/2 (the usual port is 4317)
    /// [default: off]. OTLP/HTTP needs no listener of its own: `POST /v1/logs` on the HTTP API.
    #[arg(long = "otlp-grpc", value_name = "ADDR|off", required = false)]
    pub otlp_grpc: Listen,
}

impl Default for ListenSection {
    fn default() -> Self {
        ListenSection {
            http: Listen::local("127.0.0.1:8080"),
            syslog_udp: Listen::local("127.0.0.1:5514"),
            syslog_tcp: Listen::local("127.0.0.1:5514"),
            syslog_tls: Listen::local("127.0.0.1:6514"),
            otlp_grpc: Listen::Off,
        }
    }
}

/// `[tls]`: the certificate of the TLS listeners.
#[derive(Debug, Clone, Default, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// TLS certificate chain (PEM); without it a self-signed one is generated in DATA_DIR/tls.
    #[arg(
        long = "tls-cert",
        id = "tls_cert",
        value_name = "TLS_CERT",
        requires = "tls_key"
    )]
    pub cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(
        long = "tls-key",
        id = "tls_key",
        value_name = "TLS_KEY",
        requires = "tls_cert"
    )]
    pub key: Option<PathBuf>,
    /// Serve the HTTP API and web UI over HTTPS, with --tls-cert/--tls-key or a generated
    /// self-signed certificate.
    #[arg(long = "tls", id = "tls_http", action = ArgAction::Set, num_args = 0, default_missing_value = "true", required = false)]
    pub http: bool,
}

/// `[limits]`: bounds on messages, bodies, connections and time.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Longest syslog message kept whole, in bytes; longer ones are cut and tagged `truncated` [default: 65536].
    #[arg(long, required = false)]
    pub max_message_bytes: usize,
    /// Largest HTTP request body, in bytes; larger requests get 413 [default: 16777216].
    #[arg(long, required = false)]
    pub max_body_bytes: usize,
    /// Open connections allowed at once on each TCP listener (HTTP, syslog TCP, syslog TLS)
    /// [default: the open-file limit less 256, shared by the listeners, at most 4096].
    #[arg(long, value_name = "N", required = false)]
    pub max_connections: usize,
    /// Open connections allowed at once from one address (IPv6: one /64) on each TCP listener
    /// [default: a quarter of --max-connections, at most 256].
    #[arg(long, value_name = "N", required = false)]
    pub max_connections_per_address: usize,
    /// An HTTP request's header must arrive within this long; an idle keep-alive connection
    /// closes after this long [default: 20s].
    #[arg(long, value_name = "DURATION", required = false)]
    pub header_timeout: Duration,
    /// An HTTP request's whole body must arrive within this long [default: 60s].
    #[arg(long, value_name = "DURATION", required = false)]
    pub body_timeout: Duration,
    /// A syslog TCP/TLS connection that sends nothing for this long is closed [default: 5m].
    #[arg(long, value_name = "DURATION", required = false)]
    pub syslog_idle_timeout: Duration,
    /// A syslog TCP/TLS line still unfinished this long after its first byte is stored cut,
    /// tagged `truncated`, and the connection closed [default: 60s].
    #[arg(long, value_name = "DURATION", required = false)]
    pub syslog_frame_timeout: Duration,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_message_bytes: 64 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
            max_connections: 0,
            max_connections_per_address: 0,
            header_timeout: Duration::secs(20),
            body_timeout: Duration::secs(60),
            syslog_idle_timeout: Duration::secs(300),
            syslog_frame_timeout: Duration::secs(60),
        }
    }
}

/// `[ingest]`: how events are kept.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// Do not keep the raw text of events in `event.original`.
    #[arg(long = "no-original", id = "no_original", action = ArgAction::Set, num_args = 0, default_missing_value = "false", required = false)]
    pub keep_original: bool,
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection {
            keep_original: true,
        }
    }
}

/// `[redaction]`: secrets masked before storage.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct RedactionSection {
    /// Whether secrets are masked at all (file only).
    #[arg(skip = true)]
    pub enabled: bool,
    /// Extra secret pattern to mask, as KIND=REGEX (repeatable), e.g. employee_id=EMP-\d{6}.
    #[arg(long = "redact", id = "redact", value_name = "KIND=REGEX")]
    pub patterns: Vec<Secret<RedactPattern>>,
}

impl Default for RedactionSection {
    fn default() -> Self {
        RedactionSection {
            enabled: true,
            patterns: Vec::new(),
        }
    }
}

/// `[cluster]`: cluster mode on NATS JetStream (see docs/cluster.md). Off unless `nats` is
/// given; standalone is the default and needs none of this.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// Run as a node of a cluster: the NATS server(s) to connect to (repeatable,
    /// `nats://HOST:PORT`; give every server of the NATS cluster).
    #[arg(long = "cluster", value_name = "NATS_URL")]
    pub nats: Vec<SecretUrl>,
    /// A NATS credentials file (`.creds`: user JWT and NKey seed) for the connection.
    #[arg(long = "cluster-creds", value_name = "FILE")]
    pub creds: Option<PathBuf>,
    /// This node's name, unique in the cluster [default: the host name].
    #[arg(long = "node", value_name = "NAME")]
    pub node: Option<String>,
    /// The cluster's name: prefixes its stream, subjects and buckets, so several clusters can
    /// share one NATS system [default: vigil].
    #[arg(long = "cluster-name", value_name = "NAME", required = false)]
    pub name: String,
    /// Partitions of the event stream, fixed when the cluster is first created [default: 8].
    #[arg(long = "partitions", value_name = "N", required = false)]
    pub partitions: u32,
    /// Detector partitions `K` (docs/cluster.md, "Detection"): `K` detectors each keep their
    /// share of the alert groups. Fixed when the cluster first records it, checked at every
    /// start [default: 1, one detector for the cluster]. With more, every node holds its share
    /// of the `K` detector leases.
    #[arg(long = "detector-partitions", value_name = "K", required = false)]
    pub detector_partitions: u32,
    /// JetStream replicas of the stream and buckets [default: 3]. Fewer than 3 is refused
    /// unless `allow_unsafe_replicas` is set (tests, a laptop).
    #[arg(long = "cluster-replicas", value_name = "N", required = false)]
    pub replicas: usize,
    /// Accept fewer than 3 replicas (an acknowledged event may then be lost with one machine).
    #[arg(long = "cluster-allow-unsafe-replicas")]
    pub allow_unsafe_replicas: bool,
    /// NATS monitoring endpoints (`http://HOST:8222`, repeatable): at start-up each must report
    /// `sync_always` (`sync_interval: always`), or `serve` refuses to start. Without them the
    /// setting cannot be checked from a client, and the cluster's health says "unverified".
    #[arg(long = "cluster-monitor", value_name = "URL")]
    pub monitor: Vec<SecretUrl>,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            nats: Vec::new(),
            creds: None,
            node: None,
            name: "vigil".into(),
            partitions: 8,
            detector_partitions: 1,
            replicas: 3,
            allow_unsafe_replicas: false,
            monitor: Vec::new(),
        }
    }
}

impl ClusterSection {
    /// Whether this node runs in cluster mode.
    pub fn enabled(&self) -> bool {
        !self.nats.is_empty()
    }
}

/// `[witness]`: C2SP witnesses (see docs/witness.md). A witness that cosigns this ledger's
/// checkpoints is the only way a rollback of the whole data directory to an older consistent
/// copy is detected.
#[derive(Debug, Clone, Default, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct WitnessSection {
    /// Witnesses that cosign this ledger's checkpoints: their C2SP submission prefix
    /// (`https://HOST:8080/witness` for another Vigil; repeatable). Each signed checkpoint is
    /// sent with a consistency proof; the cosignatures are kept in `ledger/cosignatures.log`.
    #[arg(long = "witness", value_name = "URL")]
    pub urls: Vec<SecretUrl>,
    /// Logs this server witnesses (`POST /witness/add-checkpoint`): each log's verifier key, a
    /// vkey string or a file holding one (its key name is the log's origin; repeatable).
    #[arg(long = "witness-log", value_name = "VKEY|FILE")]
    pub logs: Vec<String>,
}

/// `[retention]`: removal of old sealed segments.
#[derive(Debug, Clone, Default, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSection {
    /// Remove sealed segments older than this (e.g. 365d); unset keeps everything.
    #[arg(long = "retention", id = "retention", value_name = "DURATION")]
    pub max_age: Option<Duration>,
}

/// `[ledger]`: the ledger's checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerSection {
    /// How often to sign a checkpoint while events arrive [default: 5s].
    #[arg(long, value_name = "DURATION", required = false)]
    pub checkpoint_interval: Duration,
}

impl Default for LedgerSection {
    fn default() -> Self {
        LedgerSection {
            checkpoint_interval: Duration(
                vigil_ledger::LedgerConfig::default().checkpoint_interval,
            ),
        }
    }
}

/// `[index]`: the search index.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct IndexSection {
    /// Threads building the search index; 0 turns the index off (searches scan the ledger)
    /// [default: the number of cores, at most 2].
    #[arg(
        long = "index-threads",
        id = "index_threads",
        value_name = "N",
        required = false
    )]
    pub threads: usize,
}

impl Default for IndexSection {
    fn default() -> Self {
        IndexSection {
            threads: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(2),
        }
    }
}

/// `[silence]`: a source that sends regularly and goes quiet for much longer than usual raises
/// a "Source went silent" alert (PCI DSS 10.7.2; attackers blind a SIEM by stopping its
/// sources).
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct SilenceSection {
    /// Watch every source's cadence (needs detection on: rules or the bundled ones).
    #[arg(skip = true)]
    pub enabled: bool,
    /// The shortest silence that alerts [default: 15m].
    #[arg(
        long = "silence-min",
        id = "silence_min",
        value_name = "DURATION",
        required = false
    )]
    pub min: Duration,
    /// A source is silent after this many times its usual longest gap (its 99th percentile).
    #[arg(skip = 4u64)]
    pub factor: u64,
}

impl Default for SilenceSection {
    fn default() -> Self {
        SilenceSection {
            enabled: true,
            min: Duration::secs(900),
            factor: 4,
        }
    }
}

/// `[detect]`: Sigma rules and alerting.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct DetectSection {
    /// Directory of Sigma rules to run on every event as it arrives (repeatable); rules reload
    /// when the files change.
    #[arg(long = "rules", id = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// Do not load Vigil's bundled rules (brute force against Vigil's own login).
    #[arg(long = "no-builtin-rules", id = "no_builtin_rules", action = ArgAction::Set, num_args = 0, default_missing_value = "false", required = false)]
    pub builtin: bool,
    /// An open alert's updates notify at most this often (file only).
    #[arg(skip = Duration::secs(600))]
    pub throttle: Duration,
    /// A failed notification is retried after this, then ×4, ×16 (file only).
    #[arg(skip = Duration(std::time::Duration::from_secs(1)))]
    pub retry_backoff: Duration,
}

impl Default for DetectSection {
    fn default() -> Self {
        DetectSection {
            rules: Vec::new(),
            builtin: true,
            throttle: Duration::secs(600),
            retry_backoff: Duration::secs(1),
        }
    }
}

/// `[[notify]]`: one place alerts (and, with `checkpoints = true`, signed checkpoints) go.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    /// A name for logs and the ledger [default: TYPE-N].
    pub name: Option<String>,
    /// `webhook`, `email` or `syslog`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Webhook: the URL (a secret: it often carries a token; shown by scheme and host).
    pub url: Option<SecretUrl>,
    /// Webhook: a Slack-compatible `{"text": …}` body.
    #[serde(default)]
    pub slack: bool,
    /// Syslog: `host:port`.
    pub address: Option<String>,
    /// Syslog: octet-counted TCP instead of UDP.
    #[serde(default)]
    pub tcp: bool,
    /// Email: the SMTP server, `host:port`.
    pub server: Option<String>,
    /// Email: STARTTLS [default: true].
    pub starttls: Option<bool>,
    /// Email: the sender.
    pub from: Option<String>,
    /// Email: the recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// Email: the SMTP login.
    pub username: Option<String>,
    /// Email: the SMTP password; never serialized, not even as a fingerprint, nor printed.
    #[serde(skip_serializing)]
    pub password: Option<Password>,
    /// Only alerts of this level or above [default: informational].
    pub min_level: Option<String>,
    /// Only alerts of these rules (ids or titles) [default: every rule].
    #[serde(default)]
    pub rules: Vec<String>,
    /// Also send every signed checkpoint here.
    #[serde(default)]
    pub checkpoints: bool,
    /// Send alerts here [default: true; false with `checkpoints = true` for a checkpoint-only
    /// sink].
    pub alerts: Option<bool>,
}

/// `[[query_rule]]`: a pipeline query run on a schedule; non-empty results alert.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRuleSection {
    /// Its name (the alert's rule id and title).
    pub name: String,
    /// The pipeline query (fingerprinted in the audit).
    pub query: Secret<String>,
    /// How often it runs [default: 1m].
    #[serde(default = "default_every")]
    pub every: Duration,
    /// How far back each run looks [default: 5m].
    #[serde(default = "default_window")]
    pub window: Duration,
    /// Alert level [default: medium].
    #[serde(default = "default_level")]
    pub level: String,
    /// Tags (ATT&CK).
    #[serde(default)]
    pub tags: Vec<String>,
}

fn default_every() -> Duration {
    Duration::secs(60)
}

fn default_window() -> Duration {
    Duration::secs(300)
}

fn default_level() -> String {
    "medium".to_owned()
}

/// `[[responder]]`: alerts that ban their source address.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponderSection {
    /// Rule ids or titles.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Or: any rule at this level or above.
    pub min_level: Option<String>,
    /// The first ban's length [default: `[bans] duration`].
    pub duration: Option<Duration>,
    /// The longest ban after escalation [default: `[bans] max_duration`].
    pub max_duration: Option<Duration>,
}

/// `[bans]`: ban lengths, the allowlist, and the simple responder of `--ban-rule`.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct BansSection {
    /// Never ban this network (CIDR or address; repeatable). Loopback, link-local and the
    /// server's own addresses are always allowed.
    #[arg(long = "allow", id = "allow", value_name = "CIDR")]
    pub allowlist: Vec<String>,
    /// Ban the source address of alerts from this rule (id or title; repeatable); the CrowdSec
    /// bouncers enforce the bans (`vigil bouncer add NAME`).
    #[arg(long = "ban-rule", id = "ban_rule", value_name = "RULE")]
    pub rules: Vec<String>,
    /// How long a first ban lasts; repeat offenders get twice as long each time [default: 4h].
    #[arg(
        long = "ban-for",
        id = "ban_for",
        value_name = "DURATION",
        required = false
    )]
    pub duration: Duration,
    /// The longest ban after escalation [default: 7d].
    #[arg(
        long = "ban-max",
        id = "ban_max",
        value_name = "DURATION",
        required = false
    )]
    pub max_duration: Duration,
}

impl Default for BansSection {
    fn default() -> Self {
        BansSection {
            allowlist: Vec::new(),
            rules: Vec::new(),
            duration: Duration::secs(4 * 3600),
            max_duration: Duration::secs(7 * 86_400),
        }
    }
}

/// `[ui]`: web UI sessions.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct UiSection {
    /// A web UI session ends after this long without use [default: 30m].
    #[arg(long, value_name = "DURATION", required = false)]
    pub session_idle: Duration,
    /// A web UI session ends this long after login in any case [default: 12h].
    #[arg(long, value_name = "DURATION", required = false)]
    pub session_max: Duration,
}

impl Default for UiSection {
    fn default() -> Self {
        UiSection {
            session_idle: Duration::secs(30 * 60),
            session_max: Duration::secs(12 * 3600),
        }
    }
}

impl Config {
    /// The defaults, for this data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: DataDir::new(data_dir),
            ..Config::default()
        }
    }

    /// Reads a TOML file (every key optional; unknown keys are errors).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML text. The error says where (line and column) and what, but never quotes
    /// the offending line or a value: a mistyped key may hold a password or a webhook token.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e: toml::de::Error| {
            let what = without_quoted_values(e.message());
            match e.span() {
                Some(span) => {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!("line {line}, column {column}: {what}")
                }
                None => what,
            }
        })
    }

    /// Lays the flags given on the command line over this configuration (clap updates only
    /// the settings whose flags were given). Lists add to the file's (a `--redact` pattern
    /// adds to the file's patterns, never drops them; `--rules` directories come first); the
    /// shortcut flags become entries:
    /// `--webhook` and `--checkpoint-webhook` a `[[notify]]` each, `--ban-rule` a
    /// `[[responder]]` (through [`BansSection::rules`]).
    pub fn apply_flags(&mut self, flags: &clap::ArgMatches) -> Result<(), ConfigError> {
        use clap::FromArgMatches;
        let file = self.clone();
        self.update_from_arg_matches(flags)
            .map_err(|e| ConfigError::invalid("flags", e.to_string()))?;
        prepend(&mut self.redaction.patterns, file.redaction.patterns);
        // Rule directories: the flags' first, as before the one configuration type.
        self.detect.rules.extend(file.detect.rules);
        prepend(&mut self.bans.allowlist, file.bans.allowlist);
        prepend(&mut self.bans.rules, file.bans.rules);
        self.expand_shortcuts();
        self.check()
    }

    /// Turns `--webhook` and `--checkpoint-webhook` into `[[notify]]` entries (before the
    /// file's, as before), so the audit and the server see one list; names the file's entries
    /// that have no name (`TYPE-N`, N counting in the file).
    pub fn expand_shortcuts(&mut self) {
        for (i, n) in self.notify.iter_mut().enumerate() {
            n.name
                .get_or_insert_with(|| format!("{}-{}", n.kind, i + 1));
        }
        let mut notify: Vec<NotifySection> = Vec::new();
        for (i, url) in self.webhook.drain(..).enumerate() {
            notify.push(NotifySection {
                name: Some(format!("webhook-{}", i + 1)),
                kind: "webhook".into(),
                url: Some(url),
                ..NotifySection::default()
            });
        }
        for (i, url) in self.checkpoint_webhook.drain(..).enumerate() {
            notify.push(NotifySection {
                name: Some(format!("checkpoint-webhook-{}", i + 1)),
                kind: "webhook".into(),
                url: Some(url),
                checkpoints: true,
                alerts: Some(false),
                ..NotifySection::default()
            });
        }
        prepend(&mut self.notify, notify);
    }

    /// Checks what the types cannot: settings that must not be zero or empty.
    pub fn check(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        for (key, d) in [
            ("header_timeout", l.header_timeout),
            ("body_timeout", l.body_timeout),
            ("syslog_idle_timeout", l.syslog_idle_timeout),
            ("syslog_frame_timeout", l.syslog_frame_timeout),
        ] {
            if d.0.is_zero() {
                return Err(ConfigError::invalid(
                    format!("[limits] {key}"),
                    "must be longer than zero",
                ));
            }
        }
        if let Some(reason) = &self.recover
            && reason.trim().is_empty()
        {
            return Err(ConfigError::invalid(
                "--recover",
                "needs a reason (who decided, why): it is signed into the ledger's recovery record",
            ));
        }
        if !self.redaction.enabled && !self.redaction.patterns.is_empty() {
            return Err(ConfigError::invalid(
                "[redaction]",
                "patterns are configured but enabled = false",
            ));
        }
        LogSourceSection::check_all(&self.logsource)?;
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::invalid(
                "[tls]",
                "a TLS certificate needs both cert and key",
            ));
        }
        self.check_cluster()
    }

    /// The cluster settings that cannot work: checked before anything connects.
    fn check_cluster(&self) -> Result<(), ConfigError> {
        let c = &self.cluster;
        if !c.enabled() {
            return Ok(());
        }
        for url in &c.nats {
            let u = url.reveal();
            if !(u.starts_with("nats://") || u.starts_with("tls://")) {
                return Err(ConfigError::invalid(
                    "--cluster",
                    format!("{} is not a nats:// or tls:// URL", url.shown()),
                ));
            }
        }
        let valid_name = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !valid_name(&c.name) {
            return Err(ConfigError::invalid(
                "[cluster] name",
                "must be 1-64 letters, digits, '-' or '_'",
            ));
        }
        if let Some(node) = &c.node
            && !valid_name(node)
        {
            return Err(ConfigError::invalid(
                "--node",
                "must be 1-64 letters, digits, '-' or '_' (it names NATS subjects and keys)",
            ));
        }
        if c.partitions == 0 || c.partitions > 1024 {
            return Err(ConfigError::invalid(
                "--partitions",
                "must be between 1 and 1024",
            ));
        }
        if c.detector_partitions == 0 || c.detector_partitions > 1024 {
            return Err(ConfigError::invalid(
                "--detector-partitions",
                "must be between 1 and 1024",
            ));
        }
        if c.replicas == 0 || c.replicas > 5 {
            return Err(ConfigError::invalid(
                "--cluster-replicas",
                "must be between 1 and 5 (JetStream's limit)",
            ));
        }
        if c.replicas < 3 && !c.allow_unsafe_replicas {
            return Err(ConfigError::invalid(
                "--cluster-replicas",
                "fewer than 3 replicas can lose acknowledged events with one machine; \
                 set --cluster-allow-unsafe-replicas to accept that",
            ));
        }
        Ok(())
    }
}

fn prepend<T>(list: &mut Vec<T>, mut front: Vec<T>) {
    front.append(list);
    *list = front;
}

#[cfg(test)]
mod tests;

/// `message` with the text between double quotes replaced by `…` (values, which may be
/// secrets; names are quoted with backticks and stay).
fn without_quoted_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        if c == '"' {
            if !inside {
                out.push_str("\"…");
            } else {
                out.push('"');
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}
