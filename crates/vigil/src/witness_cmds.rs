//! `vigil verify --witness-key`: the ledger's checkpoints as its witnesses cosigned them; and
//! `vigil witness-key`: the verifier key of the witness this server runs.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use vigil_ledger::cosignature::CosignatureVerifier;
use vigil_ledger::cosigned;

use crate::ledger_cmds::DataDirArgs;

/// The cosignature options of `vigil verify`.
#[derive(clap::Args, Default)]
pub struct CosignatureArgs {
    /// A witness's cosignature verifier key (a vkey string or a file holding one; repeatable):
    /// the ledger's checkpoints must carry cosignatures by these witnesses (C2SP
    /// tlog-cosignature), kept in ledger/cosignatures.log.
    #[arg(long = "witness-key", value_name = "VKEY|FILE")]
    witness_keys: Vec<String>,
    /// How many of the given witnesses must have cosigned [default: 1].
    #[arg(long, value_name = "K", requires = "witness_keys")]
    min_cosignatures: Option<usize>,
}

/// What the cosignature check found, ready to print.
pub struct CosignatureOutcome {
    /// Whether it passed.
    pub passed: bool,
    /// The JSON form (`"cosignatures"` of `vigil verify --format json`).
    pub json: Value,
    /// The text lines.
    pub lines: Vec<String>,
}

/// Runs the check when witness keys were given.
pub fn check(
    data_dir: &std::path::Path,
    args: &CosignatureArgs,
) -> Result<Option<CosignatureOutcome>> {
    if args.witness_keys.is_empty() {
        return Ok(None);
    }
    let keys = args
        .witness_keys
        .iter()
        .map(|k| {
            let text = std::fs::read_to_string(k).unwrap_or_else(|_| k.clone());
            CosignatureVerifier::from_vkey(&text).with_context(|| format!("--witness-key {k}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let min = args.min_cosignatures.unwrap_or(1);
    let report = cosigned::check(data_dir, &keys, min)?;
    let enough = min <= keys.len();
    let passed = report.passed() && enough;
    let mut lines = Vec::new();
    lines.push(format!(
        "cosigned:    {} checkpoint(s) carry cosignatures; {min} of the {} given witness key(s) required",
        report.checkpoints.iter().filter(|c| !c.witnesses.is_empty()).count(),
        keys.len()
    ));
    if !enough {
        lines.push(format!(
            "FAILED: --min-cosignatures {min} cannot be met by {} witness key(s)",
            keys.len()
        ));
    }
    match &report.newest_sufficient {
        Some(c) => lines.push(format!(
            "{}: checkpoint size {} (root {}) is cosigned by {}; {} event(s) after it are not yet witnessed",
            if passed { "WITNESSED" } else { "witnessed" },
            c.checkpoint.size,
            c.checkpoint.root_hex(),
            c.witnesses.keys().cloned().collect::<Vec<_>>().join(", "),
            report.unwitnessed_events
        )),
        None => {
            let best = report
                .checkpoints
                .iter()
                .map(|c| c.witnesses.len())
                .max()
                .unwrap_or(0);
            lines.push(format!(
                "FAILED: no checkpoint carries {min} valid cosignature(s) from the given witness keys (the most any carries: {best})"
            ));
        }
    }
    for p in &report.problems {
        lines.push(format!("FAILED: {p}"));
    }
    let json = json!({
        "passed": passed,
        "min": min,
        "keys": keys.iter().map(CosignatureVerifier::label).collect::<Vec<_>>(),
        "newest_witnessed": report.newest_sufficient.as_ref().map(|c| json!({
            "size": c.checkpoint.size,
            "root": c.checkpoint.root_hex(),
            "witnesses": c.witnesses,
        })),
        "unwitnessed_events": report.unwitnessed_events,
        "problems": report.problems,
    });
    Ok(Some(CosignatureOutcome {
        passed,
        json,
        lines,
    }))
}

/// `vigil witness-key`: the verifier key of this data directory's witness (created on first use,
/// as the server does), what a log gives `vigil verify --witness-key`.
pub fn witness_key(args: DataDirArgs) -> Result<ExitCode> {
    let dir = vigil_config::DataDir::new(&args.data.data_dir).witness();
    let signer =
        vigil_respond::witness::core::load_or_create_key(&dir).map_err(anyhow::Error::msg)?;
    writeln!(io::stdout(), "{}", signer.verifier().to_vkey())?;
    Ok(ExitCode::SUCCESS)
}
