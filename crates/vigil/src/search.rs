//! `vigil search`: run a pipeline query over the ledger of a data directory.
//!
//! Works on the data directory directly, also while `vigil serve` runs (readers take no lock).
//! Uses the search index when the data directory has one (events it has not reached yet are
//! scanned from the ledger), else scans the ledger.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, anyhow};
use serde_json::json;
use vigil_event::{Timestamp, Value};
use vigil_index::run_on_data_dir;
use vigil_query::{Limits, parse, resolve_time};

use crate::DataDir;

/// Arguments of `vigil search`.
#[derive(clap::Args)]
pub struct SearchArgs {
    #[command(flatten)]
    data: DataDir,
    /// Earliest event time: relative (-15m, -24h, -7d) or RFC 3339. Default: everything.
    /// `--from -24h` and `--from=-24h` are the same.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    from: Option<String>,
    /// Latest event time (exclusive): relative (-1h), RFC 3339, or now.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Rows returned at most.
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// The query, e.g. 'sourcetype=access_combined status=403 | stats count by src_ip'.
    query: String,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum Format {
    Table,
    Json,
    Csv,
}

/// `vigil search`.
pub fn run_search(args: SearchArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let pipeline = match parse(&args.query) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("vigil: query error at column {}: {}", e.column, e.message);
            eprintln!("  {}", args.query);
            eprintln!("  {}^", " ".repeat(e.column.saturating_sub(1)));
            return Ok(ExitCode::from(2));
        }
    };
    let now = Timestamp::now();
    let from = resolve_time(args.from.as_deref(), now).map_err(|e| anyhow!("--from: {e}"))?;
    let to = resolve_time(args.to.as_deref(), now).map_err(|e| anyhow!("--to: {e}"))?;
    let limits = Limits {
        from,
        to,
        max_rows: args.limit,
        now,
    };
    if !vigil_config::DataDir::new(&args.data.data_dir)
        .ledger()
        .exists()
    {
        return Err(anyhow!(
            "no ledger at {}: import or serve first",
            args.data.data_dir.display()
        ));
    }
    let progress = crate::progress::spinner(&format!("searching {}", args.data.data_dir.display()));
    let result = run_on_data_dir(&args.data.data_dir, &pipeline, limits);
    progress.finish_and_clear();
    let result = result.map_err(|e| anyhow!(e))?;
    let took_ms = started.elapsed().as_millis() as u64;
    let mut out = io::stdout().lock();
    match args.format {
        Format::Json => {
            let rows: Vec<Vec<serde_json::Value>> = result
                .rows
                .iter()
                .map(|r| r.iter().map(Value::to_json).collect())
                .collect();
            let mut body = json!({"columns": result.columns, "rows": rows, "took_ms": took_ms, "scanned": result.scanned, "truncated": result.truncated});
            if let Some(m) = &result.message {
                body["message"] = json!(m);
            }
            writeln!(out, "{body}")?;
        }
        Format::Csv => {
            writeln!(
                out,
                "{}",
                result
                    .columns
                    .iter()
                    .map(|c| csv_cell(c))
                    .collect::<Vec<_>>()
                    .join(",")
            )?;
            for row in &result.rows {
                writeln!(
                    out,
                    "{}",
                    row.iter()
                        .map(|v| csv_cell(&cell(v)))
                        .collect::<Vec<_>>()
                        .join(",")
                )?;
            }
        }
        Format::Table => {
            let cells: Vec<Vec<String>> = result
                .rows
                .iter()
                .map(|r| r.iter().map(|v| shorten(&cell(v))).collect())
                .collect();
            let widths: Vec<usize> = result
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    cells
                        .iter()
                        .map(|r| r[i].chars().count())
                        .chain([c.chars().count()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |values: Vec<&str>| -> String {
                values
                    .iter()
                    .zip(&widths)
                    .map(|(v, w)| format!("{v:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_owned()
            };
            writeln!(
                out,
                "{}",
                line(result.columns.iter().map(String::as_str).collect())
            )?;
            for row in &cells {
                writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
            }
            eprintln!(
                "{} rows, {} events scanned in {took_ms} ms{}",
                result.rows.len(),
                result.scanned,
                result
                    .message
                    .as_ref()
                    .map(|m| format!("; {m}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn shorten(s: &str) -> String {
    let one_line = s.replace(['\n', '\r'], " ");
    if one_line.chars().count() > 80 {
        format!("{}…", one_line.chars().take(79).collect::<String>())
    } else {
        one_line
    }
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}
