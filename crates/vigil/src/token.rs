//! `vigil token create|list|revoke`: API tokens, stored hashed in the data directory (or, with
//! `--cluster`, in the cluster's shared bucket).

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use vigil_auth::Role;
use vigil_auth::token as auth;

use crate::DataDir;

/// Arguments of `vigil token`.
#[derive(clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    cluster: crate::cluster_target::ClusterTarget,
    #[command(subcommand)]
    action: TokenAction,
}

#[derive(clap::Subcommand)]
enum TokenAction {
    /// Create a token and print it once (only its hash is stored).
    Create {
        #[command(flatten)]
        data: DataDir,
        /// admin, analyst, viewer or ingest (send events only).
        #[arg(long, default_value = "ingest")]
        role: String,
        /// What the token is for, e.g. the sending host.
        #[arg(long)]
        name: String,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Revoke a token by id or name; takes effect at once, also in a running server.
    Revoke {
        #[command(flatten)]
        data: DataDir,
        /// Token id (8 hex digits) or name.
        id_or_name: String,
    },
}

/// `vigil token …`.
pub fn run(args: TokenArgs) -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    match args.action {
        TokenAction::Create { data, role, name } => {
            let role = Role::parse(&role).map_err(|e| anyhow!(e))?;
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let target = args.cluster.open(&data.data_dir)?;
            let (entry, token) = target
                .accounts
                .create_token(&name, role)
                .map_err(|e| anyhow!(e))?;
            crate::cli_audit::record(
                &data.data_dir,
                "token_created",
                &format!(
                    "{} token {} ({}) created",
                    entry.role.name(),
                    entry.id,
                    entry.name
                ),
                &[
                    ("vigil.token.id", &entry.id),
                    ("vigil.token.role", entry.role.name()),
                ],
            );
            writeln!(out, "{token}")?;
            eprintln!(
                "vigil: created {} token {} ({}); it is shown only now, keep it somewhere safe",
                entry.role.name(),
                entry.id,
                entry.name
            );
        }
        TokenAction::List { data } => {
            let target = args.cluster.open(&data.data_dir)?;
            let tokens = target.accounts.list_tokens().map_err(|e| anyhow!(e))?;
            let usage = auth::token_usage(&data.data_dir);
            writeln!(
                out,
                "{:<10} {:<8} {:<24} {:<32} {:<32} revoked",
                "id", "role", "name", "created", "last used"
            )?;
            for t in tokens {
                writeln!(
                    out,
                    "{:<10} {:<8} {:<24} {:<32} {:<32} {}",
                    t.id,
                    t.role.name(),
                    t.name,
                    t.created,
                    usage.get(&t.id).map_or("never", String::as_str),
                    t.revoked.as_deref().unwrap_or("-")
                )?;
            }
        }
        TokenAction::Revoke { data, id_or_name } => {
            let target = args.cluster.open(&data.data_dir)?;
            let n = target
                .accounts
                .revoke_token(&id_or_name)
                .map_err(|e| anyhow!(e))?;
            if n == 0 {
                bail!("no active token with id or name {id_or_name:?}");
            }
            crate::cli_audit::record(
                &data.data_dir,
                "token_revoked",
                &format!("{n} token(s) with id or name {id_or_name} revoked"),
                &[("vigil.token.id", &id_or_name)],
            );
            writeln!(out, "revoked {n} token(s)")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
