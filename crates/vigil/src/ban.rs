//! `vigil bouncer add NAME` (a CrowdSec bouncer's API key) and `vigil ban add|del|list` (ban
//! decisions by hand, through the running server's API).

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use vigil_auth::Role;

use crate::DataDir;

/// Arguments of `vigil bouncer`.
#[derive(clap::Args)]
pub struct BouncerArgs {
    #[command(flatten)]
    cluster: crate::cluster_target::ClusterTarget,
    #[command(subcommand)]
    action: BouncerAction,
}

#[derive(clap::Subcommand)]
enum BouncerAction {
    /// Create an API key for a CrowdSec bouncer (printed once; its `api_key`).
    Add {
        #[command(flatten)]
        data: DataDir,
        /// The bouncer's name, e.g. firewall-edge-1.
        name: String,
    },
}

/// `vigil bouncer …`.
pub fn bouncer(args: BouncerArgs) -> Result<ExitCode> {
    let BouncerAction::Add { data, name } = args.action;
    if name.trim().is_empty() {
        bail!("the bouncer needs a name");
    }
    // With --cluster the key goes to the cluster's shared bucket: every node's CrowdSec
    // endpoint accepts it.
    let target = args.cluster.open(&data.data_dir)?;
    let (entry, key) = target
        .accounts
        .create_token(&name, Role::Bouncer)
        .map_err(|e| anyhow!(e))?;
    crate::cli_audit::record(
        &data.data_dir,
        "token_created",
        &format!("bouncer key {} ({name}) created", entry.id),
        &[
            ("vigil.token.id", &entry.id),
            ("vigil.token.role", "bouncer"),
        ],
    );
    writeln!(io::stdout().lock(), "{key}")?;
    eprintln!(
        "vigil: bouncer {name} ({}) created; put the key above in its config as api_key, with \
         api_url pointing at this server (e.g. http://127.0.0.1:8080/); revoke it with \
         `vigil token revoke {}`",
        entry.id, entry.id
    );
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `vigil ban`.
#[derive(clap::Args)]
pub struct BanArgs {
    /// The running server's HTTP address (before or after the action: `vigil ban list
    /// --server URL`).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        default_value = "http://127.0.0.1:8080",
        env = "VIGIL_SERVER"
    )]
    server: String,
    /// An admin or analyst API token (`vigil token create --role analyst`), before or after the
    /// action; or set VIGIL_TOKEN so it stays out of the shell history.
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "VIGIL_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    #[command(subcommand)]
    action: BanAction,
}

#[derive(clap::Subcommand)]
enum BanAction {
    /// Ban an address or network (an IPv6 /64 is written 2001:db8::/64).
    Add {
        /// Address or CIDR.
        value: String,
        /// For how long (30m, 4h, 7d).
        #[arg(long = "for", default_value = "4h")]
        duration: String,
        /// Why.
        #[arg(long, default_value = "manual")]
        reason: String,
    },
    /// Lift a ban by decision id.
    Del {
        /// Decision id (see `vigil ban list`).
        id: u64,
    },
    /// The active bans.
    List,
}

/// `vigil ban …`.
pub fn ban(args: BanArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(ban_async(args))
}

async fn ban_async(args: BanArgs) -> Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let base = args.server.trim_end_matches('/');
    let Some(token) = &args.token else {
        bail!("an API token is needed: --token TOKEN or VIGIL_TOKEN (see `vigil token create`)");
    };
    let auth = format!("Bearer {token}");
    let response =
        match &args.action {
            BanAction::Add {
                value,
                duration,
                reason,
            } => client
                .post(format!("{base}/api/v1/decisions"))
                .header("Authorization", &auth)
                .json(&serde_json::json!({"value": value, "duration": duration, "reason": reason}))
                .send()
                .await,
            BanAction::Del { id } => {
                client
                    .delete(format!("{base}/api/v1/decisions/{id}"))
                    .header("Authorization", &auth)
                    .send()
                    .await
            }
            BanAction::List => {
                client
                    .get(format!("{base}/api/v1/decisions"))
                    .header("Authorization", &auth)
                    .send()
                    .await
            }
        }
        .with_context(|| format!("reaching {base} (is `vigil serve` running?)"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        bail!(
            "{}: {}",
            status,
            body["error"].as_str().unwrap_or("request refused")
        );
    }
    let mut out = io::stdout().lock();
    let line = |d: &serde_json::Value| {
        format!(
            "{:>6}  {:<28}  until {:<30}  {}",
            d["id"],
            d["value"].as_str().unwrap_or(""),
            d["until"].as_str().unwrap_or(""),
            d["reason"].as_str().unwrap_or("")
        )
    };
    match args.action {
        BanAction::List => {
            for d in body["decisions"].as_array().into_iter().flatten() {
                writeln!(out, "{}", line(d))?;
            }
        }
        BanAction::Add { .. } => writeln!(out, "banned: {}", line(&body))?,
        BanAction::Del { .. } => writeln!(out, "lifted: {}", line(&body))?,
    }
    Ok(ExitCode::SUCCESS)
}
