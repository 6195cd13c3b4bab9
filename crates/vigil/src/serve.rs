//! `vigil serve`: open (or create) the ledger and run the listeners until SIGINT/SIGTERM.
//!
//! Settings come from, in order of precedence: command-line flags, the `--config` TOML file,
//! then the built-in defaults (loopback listeners). All three are one type,
//! [`vigil_config::Config`]: its fields are the file's keys and the flags (see
//! `docs/config.md`); clap lays the flags given over the file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::{ArgMatches, Args, Command, FromArgMatches};
use vigil_config::Config;
use vigil_server::ServerConfig;

use crate::DataDir;

/// Arguments of `vigil serve`: the data directory, the file, and every setting of
/// [`Config`] as a flag (kept as clap's matches, laid over the file in [`run`]).
pub struct ServeArgs {
    data: DataDir,
    config: Option<PathBuf>,
    flags: ArgMatches,
}

/// The flags of `serve` that are not settings.
#[derive(clap::Args)]
struct ServeOwn {
    #[command(flatten)]
    data: DataDir,
    /// TOML configuration file (flags given here win over it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl Args for ServeArgs {
    fn augment_args(cmd: Command) -> Command {
        Config::augment_args(ServeOwn::augment_args(cmd))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        ServeArgs::augment_args(cmd)
    }
}

impl FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let own = ServeOwn::from_arg_matches(matches)?;
        Ok(ServeArgs {
            data: own.data,
            config: own.config,
            flags: matches.clone(),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = ServeArgs::from_arg_matches(matches)?;
        Ok(())
    }
}

/// The configuration of `args`: the defaults, the file over them, the flags over the file.
pub fn build_config(args: &ServeArgs) -> Result<ServerConfig> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.data_dir = vigil_config::DataDir::new(args.data.data_dir.clone());
    config.apply_flags(&args.flags)?;
    Ok(ServerConfig::from_config(config)?)
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
    let config = build_config(&args)?;
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
        if let Some(ledger) = &running.ledger {
            let paths = ledger.paths().clone();
            eprintln!("vigil: ledger {} ({} events)", paths.root().display(), running.recovery.end_seq);
            eprintln!("vigil: origin {}", ledger.origin());
            eprintln!(
                "vigil: signing key {} (mode 0600); verifier key {}",
                paths.signing_key().display(),
                paths.verifier_key().display()
            );
        }
        if let Some(node) = &running.cluster {
            for line in node.banner() {
                eprintln!("vigil: {line}");
            }
        }
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
            // In cluster mode the account is the cluster's, created by this node only.
            let change = match &running.cluster {
                Some(node) => format!(
                    "vigil user passwd --cluster NATS_URL --cluster-name {} admin",
                    node.cluster().settings().names.cluster()
                ),
                None => format!("vigil user passwd --data-dir {} admin", data_dir.display()),
            };
            eprintln!(
                "vigil: created the first account, admin; its password is in {} (mode 0600). Log in and change it with `{change}`",
                path.display(),
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
        if let Some(a) = running.otlp_grpc {
            eprintln!("vigil: listening otlp-grpc://{a}");
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
        // A cluster node fenced out of its name (another process registered as it) stops.
        let mut fenced = running.cluster.as_ref().map(|node| node.fenced());
        let fenced_out = async {
            match fenced.as_mut() {
                Some(rx) => match rx.wait_for(Option::is_some).await {
                    Ok(why) => why.clone().unwrap_or_default(),
                    Err(_) => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        };
        let mut fenced_why = None;
        if !stop_requested {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = term.recv() => {}
                why = fenced_out => fenced_why = Some(why),
            }
        }
        if let Some(why) = &fenced_why {
            eprintln!("vigil: FENCED: {why}; this process stops serving as this node");
        }
        eprintln!("vigil: shutting down");
        running.shutdown().await.map_err(|e| anyhow!(e))?;
        if fenced_why.is_some() {
            eprintln!("vigil: stopped (fenced); every event it accepted is durable");
            return Ok(ExitCode::FAILURE);
        }
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
    fn flags_and_file_make_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vigil.toml");
        std::fs::write(
            &file,
            "[listen]\nhttp = \"127.0.0.1:9000\"\n[[notify]]\ntype = \"syslog\"\naddress = \"w.example.org:514\"\ncheckpoints = true\nalerts = false\n",
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let c = build_config(&args(&[
            "--config",
            file,
            "--data-dir",
            "/d",
            "--syslog-udp",
            "off",
            "--checkpoint-webhook",
            "http://127.0.0.1:9/ckp",
            "--recover",
            "ticket 9",
        ]))
        .unwrap();
        assert_eq!(c.http, Some("127.0.0.1:9000".parse().unwrap()));
        assert_eq!(c.syslog_udp, None);
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        assert_eq!(c.checkpoint_sinks.len(), 2);
        assert_eq!(c.checkpoint_sinks[0].name, "checkpoint-webhook-1");
        assert!(
            c.notifiers.is_empty(),
            "checkpoint-only sinks get no alerts"
        );
        assert_eq!(c.ledger.recover.as_deref(), Some("ticket 9"));
        let c = build_config(&args(&[
            "--ban-rule",
            "SSH brute force",
            "--ban-for",
            "10s",
            "--allow",
            "192.0.2.0/24",
            "--rules",
            "/r",
        ]))
        .unwrap();
        assert_eq!(c.responders.len(), 1, "{:?}", c.settings);
        assert_eq!(c.responders[0].rules, ["SSH brute force"]);
        assert_eq!(c.responders[0].duration, std::time::Duration::from_secs(10));
        assert_eq!(c.allowlist.len(), 1);
        assert_eq!(c.rule_dirs, [PathBuf::from("/r")]);
        let err = build_config(&args(&["--config", "/nonexistent.toml"])).unwrap_err();
        assert!(err.to_string().contains("/nonexistent.toml"), "{err}");
    }
}
