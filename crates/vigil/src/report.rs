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
