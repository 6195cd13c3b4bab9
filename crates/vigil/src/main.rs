//! `vigil`: the command line. Thin glue: parse flags, call the library crates, map the outcome
//! to an exit code (0 success, 1 a check failed, 2 an error). A closed stdout (`vigil … | head`)
//! counts as success.

mod agent;
mod ban;
mod cli_audit;
mod cluster_target;
mod drill;
mod evidence;
mod hunt;
mod import;
mod ledger_cmds;
mod progress;
mod reindex;
mod report;
mod rules_test;
mod search;
mod serve;
mod token;
mod user;
mod witness_cmds;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: parsing builds ~16 short value strings per event and
/// drops them a moment later, and a thread-caching allocator serves those from a per-thread
/// free list (parse + mask of an sshd line: −14 % instructions; docs/BENCHMARKS.md, `parsefast`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Default data directory, relative to where Vigil runs.
pub const DEFAULT_DATA_DIR: &str = "vigil-data";

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Vigil: security logging and monitoring with a tamper-evident store",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: syslog and HTTP listeners into the ledger, signed checkpoints, retention.
    Serve(Box<serve::ServeArgs>),
    /// Import events from files into the ledger.
    Import(import::ImportArgs),
    /// Run a pipeline query over the stored events (works while serve runs).
    Search(search::SearchArgs),
    /// Run Sigma rules over stored events or raw files (.evtx, logs) and list the alerts.
    Hunt(hunt::HuntArgs),
    /// Sigma rules: `check DIR` lists each rule as supported or not, with the reason; `test DIR`
    /// runs each rule's test cases through the real parse → detect path.
    Rules(hunt::RulesArgs),
    /// Ban decisions by hand through the running server: add, del, list.
    Ban(ban::BanArgs),
    /// Run an incident-response drill on the running server: a bundled or own attack scenario
    /// sent through the real listeners, every step measured (ingest, alert, notifications,
    /// ban, bouncer). Exit 1 when a step failed.
    Drill(drill::DrillArgs),
    /// Tail log files and ship their lines to a Vigil server (rotation-aware, checkpointed).
    Agent(agent::AgentArgs),
    /// CrowdSec bouncers: `add NAME` prints the API key a bouncer uses to read Vigil's bans.
    Bouncer(ban::BouncerArgs),
    /// Rebuild the search index from the ledger (stop serve first).
    Reindex(reindex::ReindexArgs),
    /// Recompute the ledger from its files and check every signed checkpoint. Exit 0: verified
    /// by the key up to the named checkpoint; 1: FAILED (first bad place named); 2: could not
    /// run; 3: verified, but a recovery or an unvouched key rotation is on record.
    Verify(ledger_cmds::VerifyArgs),
    /// Print the latest signed checkpoint (C2SP signed note).
    Checkpoint(ledger_cmds::DataDirArgs),
    /// Print the verifier key (C2SP vkey) that checks this ledger's checkpoints.
    Key(ledger_cmds::DataDirArgs),
    /// Print the verifier key (C2SP vkey, type 0x04) of the witness this server runs for other
    /// ledgers, what they give `vigil verify --witness-key` (created on first use).
    WitnessKey(ledger_cmds::DataDirArgs),
    /// Print an inclusion proof (or with --old-size, a consistency proof) as JSON.
    Proof(ledger_cmds::ProofArgs),
    /// A compliance report (pci-dss, hipaa, iso27001, soc2) computed from the ledger, signed
    /// with the ledger key: coverage, field completeness, review, integrity, retention, failures.
    Report(report::ReportArgs),
    /// Evidence bundles: `export` selected events with their proofs (checkable without Vigil),
    /// `verify` a bundle.
    Evidence(evidence::EvidenceArgs),
    /// Retention: prune old segments, set or release a legal hold, show status.
    Retention(ledger_cmds::RetentionArgs),
    /// Ledger maintenance: `rotate-key` (an explicit, signed key rotation).
    Ledger(ledger_cmds::LedgerArgs),
    /// API tokens: create (printed once), list, revoke.
    Token(token::TokenArgs),
    /// Web UI accounts: add, passwd, del, list.
    User(user::UserArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Import(args) => import::run(args),
        Command::Search(args) => search::run_search(args),
        Command::Reindex(args) => reindex::run(args),
        Command::Hunt(args) => hunt::hunt(args),
        Command::Ban(args) => ban::ban(args),
        Command::Drill(args) => drill::run(args),
        Command::Bouncer(args) => ban::bouncer(args),
        Command::Agent(args) => agent::run(args),
        Command::Rules(args) => hunt::rules(args),
        Command::Verify(args) => ledger_cmds::verify(args),
        Command::Checkpoint(args) => ledger_cmds::checkpoint(args),
        Command::Key(args) => ledger_cmds::key(args),
        Command::WitnessKey(args) => witness_cmds::witness_key(args),
        Command::Proof(args) => ledger_cmds::proof(args),
        Command::Evidence(args) => evidence::run(args),
        Command::Report(args) => report::run(args),
        Command::Retention(args) => ledger_cmds::retention(args),
        Command::Ledger(args) => ledger_cmds::ledger(args),
        Command::Token(args) => token::run(args),
        Command::User(args) => user::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(io::stderr(), "vigil: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The `--data-dir` flag shared by every command.
#[derive(clap::Args, Debug, Clone)]
pub struct DataDir {
    /// Data directory (ledger, keys, index).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR, env = "VIGIL_DATA_DIR")]
    pub data_dir: PathBuf,
}
