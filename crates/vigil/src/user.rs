//! `vigil user add|passwd|del|list`: web UI accounts, stored with argon2 password hashes.
//!
//! Passwords are read from standard input (`--password-stdin`, for scripts), asked for on the
//! terminal, or generated and printed once (`--generate`). Every change is an audit event in
//! the ledger (through the pending audit file when a server holds the ledger).

use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use vigil_auth::Role;
use vigil_auth::users;

use crate::DataDir;

/// Arguments of `vigil user`.
#[derive(clap::Args)]
pub struct UserArgs {
    #[command(flatten)]
    cluster: crate::cluster_target::ClusterTarget,
    #[command(subcommand)]
    action: UserAction,
}

#[derive(clap::Args)]
struct PasswordSource {
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "generate")]
    password_stdin: bool,
    /// Generate a strong password and print it once.
    #[arg(long)]
    generate: bool,
}

#[derive(clap::Subcommand)]
enum UserAction {
    /// Add an account.
    Add {
        #[command(flatten)]
        data: DataDir,
        /// admin, analyst (search, triage, ban), viewer (read only) or ingest.
        #[arg(long, default_value = "analyst")]
        role: String,
        #[command(flatten)]
        password: PasswordSource,
        /// Login name.
        name: String,
    },
    /// Set an account's password (and, with --role, its role); its sessions end.
    Passwd {
        #[command(flatten)]
        data: DataDir,
        /// A new role.
        #[arg(long)]
        role: Option<String>,
        #[command(flatten)]
        password: PasswordSource,
        /// Login name.
        name: String,
    },
    /// Delete an account; its sessions end.
    Del {
        #[command(flatten)]
        data: DataDir,
        /// Login name.
        name: String,
    },
    /// List accounts (never their hashes).
    List {
        #[command(flatten)]
        data: DataDir,
    },
}

fn read_password(source: &PasswordSource) -> Result<(String, bool)> {
    if source.generate {
        return Ok((users::generate_password(), true));
    }
    let stdin = io::stdin();
    if !source.password_stdin && stdin.is_terminal() {
        eprint!(
            "password (at least {} characters, shown as you type): ",
            users::MIN_PASSWORD_CHARS
        );
        io::stderr().flush()?;
    } else if !source.password_stdin {
        bail!("give --password-stdin (and the password on standard input) or --generate");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        bail!("no password given on standard input");
    }
    Ok((password, false))
}

/// `vigil user …`.
pub fn run(args: UserArgs) -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    match args.action {
        UserAction::Add {
            data,
            role,
            password,
            name,
        } => {
            let role = Role::parse(&role).map_err(|e| anyhow!(e))?;
            let (password, generated) = read_password(&password)?;
            let target = args.cluster.open(&data.data_dir)?;
            let user = target
                .accounts
                .add_user(&name, role, &password)
                .map_err(|e| anyhow!(e))?;
            crate::cli_audit::record(
                &data.data_dir,
                "user_created",
                &format!("account {} ({}) created", user.name, user.role.name()),
                &[
                    ("user.target.name", &user.name),
                    ("user.target.roles", user.role.name()),
                ],
            );
            if generated {
                writeln!(out, "{password}")?;
            }
            eprintln!("vigil: added {} ({})", user.name, user.role.name());
        }
        UserAction::Passwd {
            data,
            role,
            password,
            name,
        } => {
            let role = role
                .map(|r| Role::parse(&r).map_err(|e| anyhow!(e)))
                .transpose()?;
            let (password, generated) = read_password(&password)?;
            let target = args.cluster.open(&data.data_dir)?;
            let user = target
                .accounts
                .set_password(&name, &password, role)
                .map_err(|e| anyhow!(e))?;
            crate::cli_audit::record(
                &data.data_dir,
                "user_updated",
                &format!(
                    "password of {} changed (role {})",
                    user.name,
                    user.role.name()
                ),
                &[
                    ("user.target.name", &user.name),
                    ("user.target.roles", user.role.name()),
                ],
            );
            if generated {
                writeln!(out, "{password}")?;
            }
            eprintln!(
                "vigil: password of {} changed; its sessions have ended",
                user.name
            );
        }
        UserAction::Del { data, name } => {
            let target = args.cluster.open(&data.data_dir)?;
            let user = target.accounts.delete_user(&name).map_err(|e| anyhow!(e))?;
            crate::cli_audit::record(
                &data.data_dir,
                "user_deleted",
                &format!("account {} deleted", user.name),
                &[("user.target.name", &user.name)],
            );
            eprintln!("vigil: deleted {}", user.name);
        }
        UserAction::List { data } => {
            let target = args.cluster.open(&data.data_dir)?;
            let list = target.accounts.load_users().map_err(|e| anyhow!(e))?;
            writeln!(
                out,
                "{:<24} {:<8} {:<32} changed",
                "name", "role", "created"
            )?;
            for u in list {
                writeln!(
                    out,
                    "{:<24} {:<8} {:<32} {}",
                    u.name,
                    u.role.name(),
                    u.created,
                    u.changed
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
