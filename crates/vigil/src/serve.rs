//! `vigil serve`: open (or create) the ledger and run the listeners until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use vigil_ledger::parse_duration;
use vigil_server::{ServerConfig, tls::CertSource};

use crate::DataDir;

/// Arguments of `vigil serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    data: DataDir,
    /// HTTP API address (ingest, HEC, _bulk, checkpoints, metrics); `off` to disable.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR|off")]
    http: String,
    /// Syslog over UDP; `off` to disable.
    #[arg(long, default_value = "127.0.0.1:5514", value_name = "ADDR|off")]
    syslog_udp: String,
    /// Syslog over TCP (LF framing or RFC 6587 octet counting); `off` to disable.
    #[arg(long, default_value = "127.0.0.1:5514", value_name = "ADDR|off")]
    syslog_tcp: String,
    /// Syslog over TLS (RFC 5425); `off` to disable.
    #[arg(long, default_value = "127.0.0.1:6514", value_name = "ADDR|off")]
    syslog_tls: String,
    /// TLS certificate chain (PEM); without it a self-signed one is generated in DATA_DIR/tls.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Longest syslog message kept whole (bytes); longer ones are cut and tagged `truncated`.
    #[arg(long, default_value_t = 64 * 1024)]
    max_message_bytes: usize,
    /// Largest HTTP request body (bytes); larger requests get 413.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Do not keep the raw text of events in `event.original`.
    #[arg(long)]
    no_original: bool,
    /// Extra secret pattern to mask, as KIND=REGEX (repeatable), e.g. employee_id=EMP-\d{6}.
    #[arg(long = "redact", value_name = "KIND=REGEX")]
    redact: Vec<String>,
    /// Remove sealed segments older than this (e.g. 365d); unset keeps everything.
    #[arg(long, value_parser = parse_duration)]
    retention: Option<Duration>,
    /// How often to sign a checkpoint while events arrive.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    checkpoint_interval: Duration,
}

fn address(value: &str, flag: &str) -> Result<Option<SocketAddr>> {
    if value.eq_ignore_ascii_case("off") || value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| anyhow!("--{flag} {value:?}: expected IP:PORT (e.g. 127.0.0.1:5514) or off"))
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
    let data_dir = args.data.data_dir.clone();
    let mut config = ServerConfig::defaults(data_dir.clone());
    config.http = address(&args.http, "http")?;
    config.syslog_udp = address(&args.syslog_udp, "syslog-udp")?;
    config.syslog_tcp = address(&args.syslog_tcp, "syslog-tcp")?;
    config.syslog_tls = address(&args.syslog_tls, "syslog-tls")?;
    config.tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => CertSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => CertSource::SelfSigned(data_dir.clone()),
    };
    config.max_message_bytes = args.max_message_bytes;
    config.max_body_bytes = args.max_body_bytes;
    config.keep_original = !args.no_original;
    let mut extra = Vec::new();
    for spec in &args.redact {
        let (kind, regex) = spec
            .split_once('=')
            .ok_or_else(|| anyhow!("--redact {spec:?}: expected KIND=REGEX"))?;
        extra.push((kind.to_owned(), regex.to_owned()));
    }
    config.redaction = Some(extra);
    config.retention = args.retention;
    config.ledger.checkpoint_interval = args.checkpoint_interval;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vigil")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let running = vigil_server::start(config).await.map_err(|e| anyhow!(e))?;
        for cut in &running.recovery.cut {
            eprintln!(
                "vigil: crash recovery cut {} bytes at offset {} of {}: {}",
                cut.bytes,
                cut.offset,
                cut.path.display(),
                cut.reason
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
            eprintln!("vigil: listening http://{a} (POST /api/v1/ingest, /services/collector, /_bulk)");
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
        eprintln!("vigil: ready; stop with Ctrl-C or SIGTERM (a final checkpoint is signed on the way out)");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("vigil: shutting down");
        running.shutdown().await.map_err(|e| anyhow!(e))?;
        eprintln!("vigil: stopped; every accepted event is durable and signed");
        Ok(ExitCode::SUCCESS)
    })
}
