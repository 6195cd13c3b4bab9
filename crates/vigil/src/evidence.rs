//! `vigil evidence export|verify`: evidence bundles a third party can check without Vigil
//! (the bundle format is documented in `vigil_ledger::evidence`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use serde_json::json;
use vigil_event::{Timestamp, Value};
use vigil_index::run_on_data_dir;
use vigil_ledger::LedgerReader;
use vigil_ledger::evidence::{Bundle, MAX_EVENTS};
use vigil_query::{Limits, parse, resolve_time};

use crate::DataDir;

/// Arguments of `vigil evidence`.
#[derive(clap::Args)]
pub struct EvidenceArgs {
    #[command(subcommand)]
    command: EvidenceCommand,
}

#[derive(clap::Subcommand)]
enum EvidenceCommand {
    /// Write the events a query or an alert selects, with an inclusion proof for each, the
    /// signed checkpoint, its consistency proof to the latest, the verifier key and a
    /// stand-alone Python verifier, into a new directory.
    Export(ExportArgs),
    /// Check a bundle: signatures, every inclusion proof, the consistency proof. Exit 0 when it
    /// checks, 1 when it does not.
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
struct ExportArgs {
    #[command(flatten)]
    data: DataDir,
    /// The events a query returns (a search, not a table: no stats), e.g. 'user.name=alice
    /// event.outcome=failure'.
    #[arg(long, conflicts_with_all = ["alert", "case"], required_unless_present_any = ["alert", "case"])]
    query: Option<String>,
    /// An alert: its events in the ledger (created, updated, triaged) and the events it
    /// matched (its samples).
    #[arg(long, value_name = "ID", conflicts_with = "case")]
    alert: Option<u64>,
    /// A case: its own events in the ledger (every change, comment and addition), the events
    /// added to it, and each of its alerts as `--alert` exports it.
    #[arg(long, value_name = "ID")]
    case: Option<u64>,
    /// With --query: earliest event time (relative like -7d, or RFC 3339).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    from: Option<String>,
    /// With --query: latest event time (exclusive).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    to: Option<String>,
    /// Events at most (the newest first when a query returns more).
    #[arg(long, default_value_t = 10_000)]
    limit: usize,
    /// The bundle directory to create (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The bundle directory.
    bundle: PathBuf,
    /// The verifier key you trust (a vkey, or a file holding one, e.g. from `vigil key`): the
    /// bundle's own `vkey.txt` must be this key. Without it the output names the key to compare.
    #[arg(long, value_name = "VKEY|FILE")]
    key: Option<String>,
}

/// `vigil evidence`.
pub fn run(args: EvidenceArgs) -> Result<ExitCode> {
    match args.command {
        EvidenceCommand::Export(a) => export(a),
        EvidenceCommand::Verify(a) => verify(a),
    }
}

fn export(args: ExportArgs) -> Result<ExitCode> {
    if args.limit == 0 || args.limit > MAX_EVENTS {
        bail!("--limit must be between 1 and {MAX_EVENTS}");
    }
    vigil_ledger::evidence::usable_dir(&args.out)?;
    let data_dir = &args.data.data_dir;
    let (seqs, selection) = match (&args.query, args.alert, args.case) {
        (Some(q), _, _) => (
            query_seqs(data_dir, q, &args)?,
            json!({"query": q, "from": args.from, "to": args.to}),
        ),
        (None, Some(id), _) => (alert_seqs(data_dir, id, args.limit)?, json!({"alert": id})),
        (None, None, Some(id)) => (case_seqs(data_dir, id, args.limit)?, json!({"case": id})),
        (None, None, None) => bail!("give --query, --alert or --case"),
    };
    if seqs.is_empty() {
        bail!("the selection matched no events: nothing to export");
    }
    let mut reader = LedgerReader::open(data_dir)?;
    let created = Timestamp::now().to_rfc3339();
    let bundle = Bundle::build(&mut reader, &seqs, selection.clone(), created)?;
    bundle.write_to(&args.out)?;
    // Reading the ledger out is access to the audit trail (PCI DSS 10.2.1.3): on record.
    crate::cli_audit::record(
        data_dir,
        "evidence-export",
        &format!(
            "evidence bundle of {} event(s) exported to {}",
            bundle.events.len(),
            args.out.display()
        ),
        &[("vigil.evidence.selection", &selection.to_string())],
    );
    let checked = bundle
        .verify()
        .map_err(|e| anyhow!("the bundle just written does not check: {e}"))?;
    println!(
        "wrote {}: {} event(s), proven against the checkpoint of tree size {}, consistent with the latest (tree size {})",
        args.out.display(),
        checked.events,
        checked.checkpoint_size,
        checked.latest_size
    );
    println!(
        "check it without Vigil: python3 {}/verify.py {}",
        args.out.display(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn query_seqs(data_dir: &std::path::Path, q: &str, args: &ExportArgs) -> Result<Vec<u64>> {
    let pipeline =
        parse(q).map_err(|e| anyhow!("query error at column {}: {}", e.column, e.message))?;
    let now = Timestamp::now();
    let limits = Limits {
        from: resolve_time(args.from.as_deref(), now).map_err(|e| anyhow!("--from: {e}"))?,
        to: resolve_time(args.to.as_deref(), now).map_err(|e| anyhow!("--to: {e}"))?,
        max_rows: args.limit,
        now,
    };
    let result = run_on_data_dir(data_dir, &pipeline, limits).map_err(|e| anyhow!(e))?;
    let Some(column) = result.columns.iter().position(|c| c == "vigil.seq") else {
        bail!(
            "the query returns a table, not events: export needs a search (drop stats, table and the like)"
        );
    };
    if result.truncated {
        eprintln!(
            "vigil: warning: the query matched more than --limit {} events; the newest {} are exported",
            args.limit,
            result.rows.len()
        );
    }
    Ok(result
        .rows
        .iter()
        .filter_map(|r| r.get(column).and_then(Value::as_i64))
        .filter_map(|s| u64::try_from(s).ok())
        .collect())
}

fn alert_seqs(data_dir: &std::path::Path, id: u64, limit: usize) -> Result<Vec<u64>> {
    let q = format!("event.dataset=vigil.alert vigil.alert.id={id}");
    let pipeline = parse(&q).map_err(|e| anyhow!("{}", e.message))?;
    let limits = Limits {
        from: None,
        to: None,
        max_rows: limit,
        now: Timestamp::now(),
    };
    let result = run_on_data_dir(data_dir, &pipeline, limits).map_err(|e| anyhow!(e))?;
    let column = |name: &str| result.columns.iter().position(|c| c == name);
    let (Some(seq), samples) = (column("vigil.seq"), column("vigil.alert.samples")) else {
        bail!("no alert {id} in this ledger");
    };
    let mut seqs = Vec::new();
    for row in &result.rows {
        seqs.extend(row.get(seq).and_then(Value::as_i64));
        if let Some(Value::List(items)) = samples.and_then(|c| row.get(c)) {
            seqs.extend(items.iter().filter_map(Value::as_i64));
        }
    }
    if seqs.is_empty() {
        bail!("no alert {id} in this ledger");
    }
    // Matches counted since the alert's last event (throttled updates) are in the detector's
    // saved book: which events to include comes from there too; what proves them is the
    // ledger, as for every event of the bundle.
    seqs.extend(saved_samples(data_dir, id));
    seqs.sort_unstable();
    seqs.dedup();
    // The newest `limit`, as for a query.
    let keep_from = seqs.len().saturating_sub(limit);
    seqs.drain(..keep_from);
    Ok(seqs
        .into_iter()
        .filter_map(|s| u64::try_from(s).ok())
        .collect())
}

/// The events of case `id`: its change events (the case book is rebuilt from every case event
/// in the ledger, as the server does), the events added to it, and its alerts' events.
fn case_seqs(data_dir: &std::path::Path, id: u64, limit: usize) -> Result<Vec<u64>> {
    let pipeline = parse("event.dataset=vigil.audit event.action=case_*")
        .map_err(|e| anyhow!("{}", e.message))?;
    let limits = Limits {
        from: None,
        to: None,
        max_rows: 100_000,
        now: Timestamp::now(),
    };
    let result = run_on_data_dir(data_dir, &pipeline, limits).map_err(|e| anyhow!(e))?;
    let Some(column) = result.columns.iter().position(|c| c == "vigil.seq") else {
        bail!("no case {id} in this ledger");
    };
    let mut change_seqs: Vec<u64> = result
        .rows
        .iter()
        .filter_map(|r| r.get(column).and_then(Value::as_i64))
        .filter_map(|s| u64::try_from(s).ok())
        .collect();
    change_seqs.sort_unstable();
    let mut reader = LedgerReader::open(data_dir)?;
    let mut book = vigil_detect::case::CaseBook::new();
    let mut mine = Vec::new();
    for &seq in &change_seqs {
        let event = reader.read_event(seq)?;
        if let Ok(Some(case)) = book.apply(&event, Some(seq))
            && case == id
        {
            mine.push(seq);
        }
    }
    let Some(case) = book.get(id) else {
        bail!("no case {id} in this ledger");
    };
    let mut seqs = mine;
    // A standalone ledger's events (a cluster's name their shard: exported on its owner).
    seqs.extend(
        case.events
            .iter()
            .filter(|e| e.shard.is_none())
            .map(|e| e.seq),
    );
    for &alert in &case.alerts {
        seqs.extend(alert_seqs(data_dir, alert, limit)?);
    }
    seqs.sort_unstable();
    seqs.dedup();
    if seqs.len() > limit {
        eprintln!(
            "vigil: warning: case {id} has {} events, more than --limit {limit}; the newest {limit} are exported",
            seqs.len()
        );
        let keep_from = seqs.len() - limit;
        seqs.drain(..keep_from);
    }
    Ok(seqs)
}

/// The samples of alert `id` in the detector's saved book (`detect/state.json`), if any.
fn saved_samples(data_dir: &std::path::Path, id: u64) -> Vec<i64> {
    let path = vigil_config::DataDir::new(data_dir).detect_state();
    let Ok(bytes) = std::fs::read(&path) else {
        return Vec::new();
    };
    let Ok(state) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Vec::new();
    };
    state["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["vigil.alert.id"].as_u64() == Some(id))
        .flat_map(|a| {
            a["vigil.alert.samples"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|s| s.as_i64())
        .collect()
}

fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let trusted = match &args.key {
        Some(k) => {
            let text = if std::path::Path::new(k).is_file() {
                std::fs::read_to_string(k)?
            } else {
                k.clone()
            };
            Some(
                vigil_ledger::note::NoteVerifier::from_vkey(text.trim())
                    .map_err(|e| anyhow!("--key: {e}"))?
                    .to_vkey(),
            )
        }
        None => None,
    };
    let outcome = Bundle::read_from(&args.bundle).and_then(|b| {
        if let Some(trusted) = &trusted
            && b.vkey.trim() != trusted
        {
            return Err(vigil_ledger::evidence::EvidenceError::Signature {
                file: "vkey.txt".into(),
                reason: format!("the bundle's key is not the trusted key {trusted}"),
            });
        }
        b.verify()
    });
    match outcome {
        Ok(v) => {
            println!(
                "OK: {} event(s) are in the log {} at tree size {} (signed {}); the latest checkpoint (tree size {}) extends it",
                v.events,
                v.origin,
                v.checkpoint_size,
                v.checkpoint_time
                    .as_deref()
                    .unwrap_or("at an unrecorded time"),
                v.latest_size
            );
            if trusted.is_some() {
                println!("signed by {}, the key given with --key", v.key);
            } else {
                println!(
                    "signed by {}: compare it with the key the ledger's operator publishes (`vigil key`), or pass it with --key",
                    v.key
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAILED: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
