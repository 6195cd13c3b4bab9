//! `vigil report FRAMEWORK`: a compliance report computed from the ledger
//! (`vigil_server::report::compute`), printed as JSON or HTML, the read audited.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use vigil_event::Timestamp;
use vigil_report::Mapping;
use vigil_server::report::{ReportRequest, Stage, compute};

use crate::DataDir;

/// Arguments of `vigil report`.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReportArgs {
    #[command(subcommand)]
    command: Option<ReportCommand>,
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
    /// The Sigma rule directories in force (repeatable): each control's logsources then name the
    /// rules that watch them (the UI's and the scheduled reports know the server's own).
    #[arg(long, value_name = "DIR")]
    rules: Vec<PathBuf>,
}

#[derive(clap::Subcommand)]
enum ReportCommand {
    /// Check a report file (JSON or HTML): its content hashes to the digest it states, an HTML
    /// page is the rendering of the report it carries, and the ledger key signed the digest and
    /// the checkpoint it names. Exit 0 when it checks, 1 when it does not.
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The report file (`vigil report … --format json|html`, or downloaded from the UI).
    file: PathBuf,
    /// The verifier key you trust (a vkey, or a file holding one, e.g. from `vigil key`). Without
    /// it the key the report names is used, and printed for you to compare.
    #[arg(long, value_name = "VKEY|FILE")]
    key: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Html,
}

/// `vigil report`.
pub fn run(args: ReportArgs) -> Result<ExitCode> {
    if let Some(ReportCommand::Verify(v)) = args.command {
        return verify(v);
    }
    if args.print_mapping {
        std::io::stdout()
            .lock()
            .write_all(vigil_report::mapping::BUILTIN.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mapping = match &args.mapping {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Mapping::parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?
        }
        None => Mapping::builtin(),
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
    let request = ReportRequest {
        framework: args.framework.clone().unwrap_or_default(),
        from,
        to,
        scope: args.scope.clone(),
        rules: (!args.rules.is_empty()).then(|| {
            vigil_server::report::enabled_rules(&vigil_detect::load::load_rules(&args.rules))
        }),
    };
    let reading = crate::progress::bar(0, "reading the ledger", "events");
    let verifying = crate::progress::bar(0, "verifying the ledger", "events");
    let report = compute(data_dir, &mapping, &request, &mut |stage, done, total| {
        let bar = match stage {
            Stage::Reading => &reading,
            Stage::Verifying => &verifying,
        };
        bar.set_length(total);
        bar.set_position(done);
    })
    .map_err(|e| anyhow!(e))?;
    reading.finish_and_clear();
    verifying.finish_and_clear();
    if report["integrity"]["verified"] != true {
        eprintln!(
            "vigil: warning: the ledger does not verify; the report's integrity section says where"
        );
    }
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
    let framework = report["framework"].as_str().unwrap_or_default();
    crate::cli_audit::record(
        data_dir,
        "audit_read",
        &format!("compliance report {framework} computed"),
        &[("vigil.report.framework", framework)],
    );
    Ok(ExitCode::SUCCESS)
}

/// `vigil report verify FILE`: prints what was checked; exit 1 on the first check that fails.
fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let trusted = match &args.key {
        Some(k) => {
            let text = if std::path::Path::new(k).is_file() {
                std::fs::read_to_string(k)?
            } else {
                k.clone()
            };
            Some(text.trim().to_owned())
        }
        None => None,
    };
    match check_report(&bytes, trusted.as_deref()) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAILED: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Every check of a report file, in order; the lines saying what checked, or the first failure.
fn check_report(bytes: &[u8], trusted: Option<&str>) -> Result<Vec<String>, String> {
    use vigil_ledger::note::{Checkpoint, NoteVerifier};
    let claims = vigil_report::signature::check(bytes).map_err(|e| e.to_string())?;
    let mut lines = vec![format!(
        "OK: {} report for {} to {}: {}its content hashes to the stated SHA-256 {}",
        claims.framework,
        claims.period.0,
        claims.period.1,
        if claims.kind == vigil_report::signature::FileKind::Html {
            "the page is the rendering of the report it carries, and "
        } else {
            ""
        },
        claims.digest
    )];
    let key_text = match (trusted, &claims.key) {
        (Some(t), _) => t.to_owned(),
        (None, Some(k)) => {
            // Anyone can sign a report with a key of their own and name it: without --key this
            // checks only that the report is self-consistent.
            eprintln!(
                "warning: no --key given: checked against the key the report itself names ({}); \
                 pin the ledger's key (`vigil key`) with --key to know who signed it",
                k.lines().next().unwrap_or_default()
            );
            k.clone()
        }
        (None, None) => return Err("the report names no key: give the ledger's with --key".into()),
    };
    let verifier = NoteVerifier::from_vkey(&key_text).map_err(|e| format!("the key: {e}"))?;
    // The checkpoint the report was computed at, signed by the same key.
    let size = match &claims.checkpoint {
        Some(note) => {
            let text = verifier
                .open(note)
                .map_err(|e| format!("the report's checkpoint is not signed by this key: {e}"))?;
            let checkpoint =
                Checkpoint::parse(text).map_err(|e| format!("the report's checkpoint: {e}"))?;
            lines.push(format!(
                "OK: computed at the ledger's signed checkpoint of tree size {} (root {})",
                checkpoint.size,
                checkpoint.root_hex()
            ));
            checkpoint.size
        }
        None => 0,
    };
    let signed = verifier
        .open(&claims.note)
        .map_err(|e| format!("the report's signed note: {e}"))?;
    if signed != claims.note_text(size) {
        return Err(format!(
            "the signed note says {signed:?}, not this report's framework, digest and checkpoint size"
        ));
    }
    lines.push(format!(
        "OK: the ledger key signed this digest at tree size {size}"
    ));
    lines.push(match trusted {
        Some(_) => format!("signed by {}, the key given with --key", verifier.to_vkey()),
        None => format!(
            "signed by {}, the key the report names: compare it with the key the ledger's operator publishes (`vigil key`), or pass it with --key",
            verifier.to_vkey()
        ),
    });
    Ok(lines)
}
