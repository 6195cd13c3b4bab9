//! `vigil report FRAMEWORK`: a compliance report computed from the ledger (numbers from
//! `vigil-report`), its integrity section from a full verification, signed with the ledger key.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use vigil_event::{Event, Timestamp};
use vigil_ledger::{LedgerPaths, LedgerReader, VerifyOptions, hex, merkle};
use vigil_report::{IntegrityFacts, Mapping, Period, RetentionFacts, Tally};

use crate::DataDir;

/// Arguments of `vigil report`.
#[derive(clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    data: DataDir,
    /// The framework: pci-dss, hipaa, iso27001 or soc2 (or one your --mapping defines).
    #[arg(required_unless_present = "print_mapping")]
    framework: Option<String>,
    /// Print the built-in mapping (controls → event classes, tags) to start your own from.
    #[arg(long)]
    print_mapping: bool,
    /// Start of the period (relative like -90d, or RFC 3339). Default: the first event.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    from: Option<String>,
    /// End of the period (exclusive). Default: now.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    to: Option<String>,
    /// Only events this search selects count (e.g. 'host.name=pay-*'); Vigil's own events
    /// always count for integrity, review and failures.
    #[arg(long, value_name = "QUERY")]
    scope: Option<String>,
    /// json (the DESIGN report shape) or html (a page for people).
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Write here instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// A mapping file replacing the built-in one (see `vigil report --print-mapping`).
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Html,
}

/// `vigil report`.
pub fn run(args: ReportArgs) -> Result<ExitCode> {
    if args.print_mapping {
        std::io::stdout()
            .lock()
            .write_all(vigil_report::mapping::BUILTIN.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let wanted = args.framework.clone().unwrap_or_default();
    let mapping = match &args.mapping {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Mapping::parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?
        }
        None => Mapping::builtin(),
    };
    let Some(framework) = mapping.framework(&wanted) else {
        let known: Vec<&str> = mapping.frameworks.iter().map(|f| f.id.as_str()).collect();
        bail!(
            "no framework {:?} in the mapping; known: {}",
            wanted,
            known.join(", ")
        );
    };
    let scope =
        match &args.scope {
            Some(q) => Some(vigil_query::parse(q).map_err(|e| {
                anyhow!("--scope: query error at column {}: {}", e.column, e.message)
            })?),
            None => None,
        };
    let data_dir = &args.data.data_dir;
    let now = Timestamp::now();
    let from = vigil_query::resolve_time(args.from.as_deref(), now)
        .map_err(|e| anyhow!("--from: {e}"))?
        .map(Timestamp::as_nanos);
    let to = vigil_query::resolve_time(args.to.as_deref(), now)
        .map_err(|e| anyhow!("--to: {e}"))?
        .unwrap_or(now)
        .as_nanos();
    let mut reader = LedgerReader::open(data_dir)?;

    // One pass over the ledger: the period's events into the tally; the oldest event and the
    // retention setting of Vigil's latest start from everything.
    let (first, end) = (reader.first_seq(), reader.end_seq());
    let progress = crate::progress::bar(end - first, "reading the ledger", "events");
    let mut tally = Tally::default();
    let mut oldest: Option<i64> = None;
    let mut retention_setting: Option<String> = None;
    let mut period_from = from.unwrap_or(i64::MAX);
    // A ledger that cannot be read to its end still gets its report: the numbers of what was
    // read, and an integrity section that says what failed and where.
    let read = reader.for_each_raw(first..end, |seq, bytes| {
        progress.inc(1);
        let Ok(event) = Event::from_canonical(bytes) else {
            return Ok(());
        };
        let t = event.timestamp().as_nanos();
        oldest = Some(oldest.map_or(t, |o| o.min(t)));
        let own = event.get_str("vigil.source") == Some("vigil");
        if own && event.get_str("event.action") == Some("vigil_start") {
            retention_setting = event
                .get("vigil.settings.retention.max_age")
                .map(|v| v.to_string());
        }
        let in_period = from.is_none_or(|f| t >= f) && t < to;
        let in_scope = own
            || scope.as_ref().is_none_or(|p| {
                p.search
                    .as_ref()
                    .is_none_or(|s| vigil_query::exec::matches(s, &event))
            });
        if in_period && in_scope {
            if from.is_none() {
                period_from = period_from.min(t);
            }
            tally.observe(&mapping, seq, &event);
        }
        Ok(())
    });
    progress.finish_and_clear();
    let read_error = read.err().map(|e| e.to_string());
    let period = Period {
        from: Timestamp::from_nanos(if period_from == i64::MAX {
            to
        } else {
            period_from
        }),
        to: Timestamp::from_nanos(to),
        scope: args.scope.clone(),
    };

    let mut integrity = integrity(data_dir, &mut reader, &period)?;
    if let Some(e) = read_error {
        eprintln!(
            "vigil: warning: the ledger could not be read to its end; the report counts what was read: {e}"
        );
        integrity.verified = false;
        integrity
            .problems
            .push(format!("reading the events for this report stopped: {e}"));
    }
    let retention = retention(data_dir, oldest, retention_setting)?;
    let mut report =
        vigil_report::report(&mapping, framework, &period, &tally, &integrity, &retention);
    sign(data_dir, &mut reader, &mut report)?;
    let bytes = match args.format {
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&report)?),
        Format::Html => vigil_report::html::render(&report),
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?
        }
        None => std::io::stdout().lock().write_all(bytes.as_bytes())?,
    }
    // Reading the ledger for a report is access to the audit trail (PCI DSS 10.2.1.3).
    crate::cli_audit::record(
        data_dir,
        "audit_read",
        &format!(
            "compliance report {} computed",
            report["framework"].as_str().unwrap_or_default()
        ),
        &[(
            "vigil.report.framework",
            report["framework"].as_str().unwrap_or_default(),
        )],
    );
    Ok(ExitCode::SUCCESS)
}

/// A full verification, the period's checkpoints and the consistency proof between its first
/// and last.
fn integrity(
    data_dir: &std::path::Path,
    reader: &mut LedgerReader,
    period: &Period,
) -> Result<IntegrityFacts> {
    let progress = crate::progress::bar(0, "verifying the ledger", "events");
    let verified = vigil_ledger::verify(data_dir, &VerifyOptions::default(), &mut |done, total| {
        progress.set_length(total);
        progress.set_position(done);
    });
    progress.finish_and_clear();
    let (ok, problems) = match verified {
        Ok(r) => (
            r.problems.is_empty(),
            r.problems.iter().map(|p| p.to_string()).collect(),
        ),
        Err(e) => (false, vec![e.to_string()]),
    };
    let in_period: Vec<_> = reader
        .checkpoints()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            c.checkpoint
                .time()
                .and_then(|t| Timestamp::parse(t).ok())
                .is_some_and(|t| t >= period.from && t < period.to)
        })
        .collect();
    let checkpoints = in_period
        .iter()
        .map(|c| {
            json!({"size": c.checkpoint.size, "time": c.checkpoint.time(), "root": c.checkpoint.root_hex()})
        })
        .collect();
    let (mut consistency_proof, mut consistency_verified) = (Vec::new(), None);
    if let (Some(a), Some(b)) = (
        in_period.iter().min_by_key(|c| c.checkpoint.size),
        in_period.iter().max_by_key(|c| c.checkpoint.size),
    ) && a.checkpoint.size < b.checkpoint.size
        && a.checkpoint.size > 0
    {
        match reader.consistency_proof(a.checkpoint.size, b.checkpoint.size) {
            Ok(proof) => {
                consistency_verified = Some(
                    merkle::verify_consistency(
                        a.checkpoint.size,
                        b.checkpoint.size,
                        &proof,
                        &a.checkpoint.root,
                        &b.checkpoint.root,
                    )
                    .is_ok(),
                );
                consistency_proof = proof.iter().map(hex).collect();
            }
            Err(_) => consistency_verified = Some(false),
        }
    }
    Ok(IntegrityFacts {
        verified: ok,
        problems,
        checkpoints,
        consistency_proof,
        consistency_verified,
        witness_cosignatures: 0,
    })
}

fn retention(
    data_dir: &std::path::Path,
    oldest: Option<i64>,
    setting: Option<String>,
) -> Result<RetentionFacts> {
    let paths = LedgerPaths::new(data_dir);
    let pruned = vigil_ledger::prune_records(&paths)
        .unwrap_or_default()
        .iter()
        .map(|p| json!({"end": p.end, "time": p.time.to_rfc3339(), "reason": p.reason}))
        .collect();
    let holds = vigil_ledger::legal_hold(data_dir)?.into_iter().collect();
    let policy_days = setting
        .as_deref()
        .and_then(|s| vigil_ledger::parse_duration(s).ok())
        .map(|d| d.as_secs() / 86_400);
    Ok(RetentionFacts {
        oldest: oldest.map(|t| Timestamp::from_nanos(t).to_rfc3339()),
        policy: setting.map(|s| format!("remove sealed segments older than {s}")),
        policy_days,
        pruned,
        holds,
    })
}

/// Adds `signature`: the SHA-256 of the report's JSON, the latest checkpoint, and a signed
/// note over both with the ledger key (`vigil-report/v1`, framework, digest, checkpoint size).
fn sign(data_dir: &std::path::Path, reader: &mut LedgerReader, report: &mut Json) -> Result<()> {
    let digest: String = Sha256::digest(serde_json::to_vec(&report)?)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let checkpoint = reader.latest_checkpoint()?;
    let size = checkpoint.as_ref().map_or(0, |c| c.checkpoint.size);
    let text = format!(
        "vigil-report/v1\n{}\n{digest}\n{size}\n",
        report["framework"].as_str().unwrap_or_default()
    );
    let note = vigil_ledger::load_or_create_signer(&LedgerPaths::new(data_dir))
        .ok()
        .and_then(|s| s.sign(&text).ok());
    report["signature"] = json!({
        "digest": digest,
        "checkpoint": checkpoint.map(|c| c.note),
        "note": note,
    });
    Ok(())
}
