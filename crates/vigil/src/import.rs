//! `vigil import`: files into the ledger, one event per line, with a progress bar.
//!
//! A line that does not parse is reported (file and line number) and still stored, as an event
//! tagged `parse_error` holding the raw text in `event.original`, so nothing is lost.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::{Context, Result, bail};
use vigil_event::{Event, Timestamp};
use vigil_ledger::{Ledger, LedgerConfig, LedgerError};

use crate::DataDir;
use crate::ledger_cmds::progress_bar;

/// Events per append (one group commit covers at least this many).
const BATCH: usize = 4096;
/// Batches in flight while the next is being parsed.
const IN_FLIGHT: usize = 4;
/// Raw text kept from a line too long to store whole.
const MAX_ORIGINAL_BYTES: usize = 256 * 1024;

/// Arguments of `vigil import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    data: DataDir,
    /// Input format: `json` is NDJSON, one event per line (`auto` means json for now).
    #[arg(long, value_enum, default_value = "auto")]
    format: ImportFormat,
    /// Name recorded in `vigil.source` (default: import:<file name>).
    #[arg(long)]
    source: Option<String>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Files to import (`-` reads standard input).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
enum ImportFormat {
    Auto,
    Json,
}

struct Totals {
    events: u64,
    bad_lines: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
}

impl Totals {
    fn absorb(&mut self, result: Result<std::ops::Range<u64>, LedgerError>) -> Result<()> {
        let range = result.context("appending to the ledger")?;
        self.events += range.end - range.start;
        self.first_seq = Some(self.first_seq.map_or(range.start, |f| f.min(range.start)));
        self.last_seq = Some(self.last_seq.map_or(range.end, |l| l.max(range.end)));
        Ok(())
    }
}

/// `vigil import`.
pub fn run(args: ImportArgs) -> Result<ExitCode> {
    let _ = args.format; // json is the only format so far; auto resolves to it.
    for path in &args.files {
        if path != Path::new("-") && !path.is_file() {
            bail!("{}: no such file", path.display());
        }
    }
    let (ledger, recovery) = Ledger::open(&args.data.data_dir, LedgerConfig::default())
        .with_context(|| format!("opening the ledger in {}", args.data.data_dir.display()))?;
    for cut in &recovery.cut {
        eprintln!(
            "vigil: recovered from an interrupted write: cut {} bytes at offset {} of {} ({})",
            cut.bytes,
            cut.offset,
            cut.path.display(),
            cut.reason
        );
    }
    let total_bytes: u64 = args
        .files
        .iter()
        .filter_map(|p| p.metadata().ok())
        .map(|m| m.len())
        .sum();
    let bar = progress_bar(args.quiet, "importing");
    bar.set_length(total_bytes);
    let mut totals = Totals {
        events: 0,
        bad_lines: 0,
        first_seq: None,
        last_seq: None,
    };
    let (done_tx, done_rx) = mpsc::channel::<Result<std::ops::Range<u64>, LedgerError>>();
    let mut in_flight = 0usize;
    let received = Timestamp::now();
    for path in &args.files {
        let name = if path == Path::new("-") {
            "stdin".to_string()
        } else {
            path.display().to_string()
        };
        let source = args.source.clone().unwrap_or_else(|| {
            format!(
                "import:{}",
                path.file_name()
                    .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned())
            )
        });
        let input: Box<dyn Read> = if path == Path::new("-") {
            Box::new(io::stdin().lock())
        } else {
            Box::new(File::open(path).with_context(|| format!("opening {name}"))?)
        };
        let mut reader = BufReader::with_capacity(1 << 20, input);
        let mut line = Vec::new();
        let mut line_no = 0u64;
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .with_context(|| format!("reading {name}"))?;
            if n == 0 {
                break;
            }
            bar.inc(n as u64);
            line_no += 1;
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            let mut event = match parse_line(text, received) {
                Ok(event) => event,
                Err(message) => {
                    totals.bad_lines += 1;
                    bar.suspend(|| {
                        eprintln!("{name}:{line_no}: {message} (stored with tag parse_error)")
                    });
                    parse_error_event(text, &message, line_no, received)
                }
            };
            event.insert("vigil.source", source.as_str());
            event.insert("vigil.received", received.to_rfc3339());
            event.insert("log.file.path", name.as_str());
            batch.push(event);
            if batch.len() == BATCH {
                send_batch(&ledger, &mut batch, &done_tx);
                in_flight += 1;
                // Bounded memory: wait for a batch to be durable before reading more.
                while in_flight >= IN_FLIGHT {
                    totals.absorb(done_rx.recv().unwrap_or(Err(LedgerError::Closed)))?;
                    in_flight -= 1;
                }
            }
        }
        if !batch.is_empty() {
            send_batch(&ledger, &mut batch, &done_tx);
            in_flight += 1;
        }
    }
    while in_flight > 0 {
        totals.absorb(done_rx.recv().unwrap_or(Err(LedgerError::Closed)))?;
        in_flight -= 1;
    }
    bar.finish_and_clear();
    ledger.close()?;
    let mut out = io::stdout().lock();
    match (totals.first_seq, totals.last_seq) {
        (Some(first), Some(end)) => writeln!(
            out,
            "imported {} events (seq {}..{}){}",
            totals.events,
            first,
            end,
            if totals.bad_lines > 0 {
                format!(
                    "; {} lines did not parse and were stored with tag parse_error",
                    totals.bad_lines
                )
            } else {
                String::new()
            }
        )?,
        _ => writeln!(out, "no events found")?,
    }
    Ok(ExitCode::SUCCESS)
}

fn send_batch(
    ledger: &Ledger,
    batch: &mut Vec<Event>,
    done: &mpsc::Sender<Result<std::ops::Range<u64>, LedgerError>>,
) {
    let events = std::mem::replace(batch, Vec::with_capacity(BATCH));
    let done = done.clone();
    ledger.append_with(&events, move |result| {
        let _ = done.send(result);
    });
}

/// One NDJSON line to an event.
fn parse_line(text: &str, received: Timestamp) -> Result<Event, String> {
    Event::from_json(text, received).map_err(|e| e.to_string())
}

/// The event stored for a line that did not parse: its raw text and why.
fn parse_error_event(text: &str, message: &str, line_no: u64, received: Timestamp) -> Event {
    let mut event = Event::new(received);
    let mut original = text;
    if original.len() > MAX_ORIGINAL_BYTES {
        let mut cut = MAX_ORIGINAL_BYTES;
        while !original.is_char_boundary(cut) {
            cut -= 1;
        }
        original = &original[..cut];
        event.add_tag("truncated");
    }
    event.insert("event.original", original);
    event.insert("error.message", message);
    event.insert("log.offset", line_no as i64);
    event.add_tag("parse_error");
    event
}
