//! `vigil hunt` and `vigil rules check`: Sigma over history or raw files (the forensic mode of
//! Chainsaw and Hayabusa), and which rules Vigil supports.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use serde_json::json;
use vigil_detect::alert::{AlertBook, Observed};
use vigil_detect::compile::IssueKind;
use vigil_detect::load::load_rules;
use vigil_event::{Event, Timestamp};

mod parallel;
mod walk;

/// Per alert id, the files (or sources) its events came from.
type Sources = std::collections::HashMap<u64, std::collections::BTreeSet<String>>;

/// Arguments of `vigil hunt`.
#[derive(clap::Args)]
pub struct HuntArgs {
    /// Directory of Sigma rules (repeatable).
    #[arg(long = "rules", value_name = "DIR", required = true)]
    rules: Vec<PathBuf>,
    /// Hunt over the events stored in this data directory.
    #[arg(long, value_name = "DIR", conflicts_with = "files")]
    data_dir: Option<PathBuf>,
    /// Output format: `json` prints one alert per line (NDJSON) in the shape of
    /// `GET /api/v1/alerts`, with `sources` added.
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
    /// Files to hunt through (any format `vigil import` reads, .evtx included); a directory
    /// means every file under it, recursively (hidden ones skipped).
    #[arg(value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Under directories, take only files with this extension (repeatable, e.g. `--ext evtx`).
    #[arg(long = "ext", value_name = "EXT")]
    extensions: Vec<String>,
    /// Threads reading files at once (default: one per core). The alerts are the same whatever
    /// the number: results are taken in the order of the files.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

/// `table` or `json`.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned text.
    Table,
    /// JSON (`hunt`: one alert per line, as `GET /api/v1/alerts` shows it).
    Json,
}

/// `vigil hunt`.
pub fn hunt(args: HuntArgs) -> Result<ExitCode> {
    if args.data_dir.is_none() && args.files.is_empty() {
        bail!("give --data-dir DIR or files to hunt through");
    }
    let rules = load_rules(&args.rules);
    for (path, e) in &rules.file_errors {
        eprintln!("vigil: {}: {e}", path.display());
    }
    let unsupported = rules
        .issues
        .iter()
        .filter(|i| i.kind == IssueKind::Unsupported)
        .count();
    if unsupported > 0 {
        eprintln!(
            "vigil: {unsupported} rules not supported (see `vigil rules check`); hunting with {}",
            rules.set.len()
        );
    }
    let mut book = AlertBook::new(i64::MAX);
    // Which files (or sources) each alert's events came from, for the report.
    let mut sources: Sources = std::collections::HashMap::new();
    let mut evaluator = vigil_detect::Evaluator::new(&rules.set, vigil_detect::Limits::default());
    let now = Timestamp::now();
    let mut events = 0u64;
    let started = std::time::Instant::now();
    // The same evaluation as `serve` (vigil_detect::Evaluator), into an in-memory book; Vigil's
    // own alert events are never evidence.
    let mut take = |seq: u64, event: &Event, raised: Vec<vigil_detect::Raised>| {
        for raised in raised {
            let observed = book.observe(&raised.rule, raised.group, raised.time, Some(seq), now);
            if let Some(x) = raised.explain
                && let Observed::New(id) | Observed::Updated { id, .. } = observed
            {
                // A behaviour rule's reason: the baseline and the value that broke it.
                book.explain(id, x);
            }
            note_source(&mut sources, observed, event);
        }
    };
    let mut files_read = 0usize;
    match &args.data_dir {
        Some(dir) => {
            let mut reader = vigil_ledger::LedgerReader::open(dir)?;
            let (first, end) = (reader.first_seq(), reader.end_seq());
            // Progress on stderr when it is a terminal.
            let progress = crate::progress::bar(end - first, "hunting", "events");
            reader.for_each_raw(first..end, |seq, raw| {
                progress.inc(1);
                if let Ok(e) = Event::from_canonical(raw)
                    && !e.is_dataset(vigil_event::dataset::VIGIL_ALERT)
                {
                    events += 1;
                    take(seq, &e, evaluator.evaluate(&rules.set, &e));
                }
                Ok(())
            })?;
            progress.finish_and_clear();
        }
        None => {
            let files = walk::expand(&args.files, &args.extensions)?;
            let threads = args.threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            });
            let progress = crate::progress::counter("hunting", "events");
            progress.set_message(format!("0/{} files", files.len()));
            let tick = |n: u64| progress.inc(n);
            // Numbers across files, as one stream: the first event of a file follows the
            // last of the file before.
            let mut base = 0u64;
            parallel::hunt_files(&files, &rules.set, threads, &tick, |_, _, result| {
                for m in result.matched {
                    let raised = evaluator.evaluate_matched(&rules.set, &m.event, &m.rules);
                    take(base + m.index, &m.event, raised);
                }
                events += result.events - result.own_alerts;
                base += result.events;
                files_read += 1;
                progress.set_message(format!("{files_read}/{} files", files.len()));
                Ok(())
            })?;
            progress.finish_and_clear();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    if args.data_dir.is_none() {
        eprintln!(
            "vigil: hunted {events} events in {files_read} files in {secs:.2} s ({:.0} events/s)",
            events as f64 / secs.max(1e-9)
        );
    }
    let alerts = book.list(&Default::default());
    let mut out = io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            // One alert per line, in the shape of `GET /api/v1/alerts` (DESIGN §5), plus
            // `sources`: the files (or sources) its events came from.
            for a in alerts.iter().rev() {
                let mut line = a.to_api_json();
                line["sources"] = json!(
                    sources
                        .get(&a.id)
                        .map(|s| s.iter().collect::<Vec<_>>())
                        .unwrap_or_default()
                );
                writeln!(out, "{line}")?;
            }
            eprintln!("vigil: {} alerts from {events} events", alerts.len());
        }
        OutputFormat::Table => {
            writeln!(
                out,
                "{:<9} {:>6}  {:<20}  {:<20}  {:<40}  group",
                "level", "count", "first seen", "last seen", "rule"
            )?;
            for a in alerts.iter().rev() {
                writeln!(
                    out,
                    "{:<9} {:>6}  {:<20}  {:<20}  {:<40}  {}",
                    a.rule.level.as_str(),
                    a.count,
                    a.first_seen
                        .to_rfc3339()
                        .chars()
                        .take(19)
                        .collect::<String>(),
                    a.last_seen
                        .to_rfc3339()
                        .chars()
                        .take(19)
                        .collect::<String>(),
                    a.rule.title.chars().take(40).collect::<String>(),
                    a.group_key()
                )?;
                if let Some(x) = &a.explain {
                    writeln!(out, "          why: {}", x.summary)?;
                }
            }
            writeln!(out, "{} alerts from {events} events", alerts.len())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Remembers where an alert's event came from (`log.file.path`, else `vigil.source`), up to 200.
fn note_source(sources: &mut Sources, observed: Observed, event: &Event) {
    let id = match observed {
        Observed::New(id) | Observed::Updated { id, .. } => id,
    };
    let from = event
        .get_str("log.file.path")
        .or_else(|| event.get_str("vigil.source"));
    if let Some(from) = from {
        let set = sources.entry(id).or_default();
        if set.len() < 200 {
            set.insert(from.to_owned());
        }
    }
}

/// Arguments of `vigil rules`.
#[derive(clap::Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    command: RulesCommand,
}

#[derive(clap::Subcommand)]
enum RulesCommand {
    /// List every rule under DIR as supported or not, with the reason.
    Check {
        /// Rules directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
    },
    /// Run each rule's test cases (SigmaHQ `regression_tests_path`, Vigil's inline `tests:`)
    /// through the real parse → detect path; exit 1 if any fails, with the reason.
    Test {
        /// Rules directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where relative test paths may also be found (besides the rule file's ancestors).
        #[arg(long = "root", value_name = "DIR")]
        roots: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
    },
}

/// `vigil rules`.
pub fn rules(args: RulesArgs) -> Result<ExitCode> {
    let (dirs, format) = match args.command {
        RulesCommand::Check { dirs, format } => (dirs, format),
        RulesCommand::Test {
            dirs,
            roots,
            format,
        } => return crate::rules_test::run(&dirs, &roots, format),
    };
    let mut report = vigil_detect::report::SupportReport {
        files: Vec::new(),
        supported: 0,
        unsupported: 0,
    };
    for dir in &dirs {
        if !dir.is_dir() {
            bail!("{}: no such directory", dir.display());
        }
        let one = vigil_detect::report::check_dir(dir, &Default::default());
        report.files.extend(one.files);
        report.supported += one.supported;
        report.unsupported += one.unsupported;
    }
    let mut out = io::stdout().lock();
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report.rules_check())?;
            writeln!(out)?;
        }
        OutputFormat::Table => {
            for file in &report.files {
                for doc in &file.documents {
                    let verdict = match doc.support {
                        vigil_detect::report::Support::Supported => "supported",
                        vigil_detect::report::Support::Unsupported => "UNSUPPORTED",
                    };
                    write!(
                        out,
                        "{verdict:<11} {:<11} {}  {}",
                        doc.kind,
                        file.path.display(),
                        doc.title.as_deref().unwrap_or("(untitled)")
                    )?;
                    if !doc.reasons.is_empty() {
                        write!(out, "  — {}", doc.reasons.join("; "))?;
                    }
                    writeln!(out)?;
                }
            }
            writeln!(
                out,
                "{} of {} rules supported ({:.2} %)",
                report.supported,
                report.supported + report.unsupported,
                report.ratio() * 100.0
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
