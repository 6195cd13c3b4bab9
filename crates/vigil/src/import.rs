//! `vigil import`: files into the ledger, with a progress bar.
//!
//! Every line format of `vigil-parse` (detected per line, or forced with `--format`), JSON arrays,
//! Windows `.evtx` files, and gzip- or zstd-compressed files (recognised by their magic bytes).
//! Events go into the ledger through the same ingest pipeline as `vigil serve`'s
//! (`vigil_ingest::Ingest`, origin `import`), and secrets are masked with the same
//! configuration (`--config`'s `[redaction]`, `--redact`) before anything is stored. The search
//! index is brought up to date at the end (unless `--no-index`). A line that does not parse is reported (file
//! and line number) and still stored, as an event tagged `parse_error` holding the raw text, so
//! nothing is lost.

use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use vigil_event::{Event, Timestamp};
use vigil_ingest::{Ingest, IngestError, Origin, Pending};
use vigil_ledger::{Ledger, LedgerConfig};
use vigil_parse::redact::Redactor;
use vigil_parse::{Format, ParseContext, parse_line};

use crate::DataDir;
use crate::ledger_cmds::progress_bar;

mod lines;

/// Events per append (one group commit covers at least this many).
const BATCH: usize = 4096;
/// Batches in flight while the next is being parsed.
const IN_FLIGHT: usize = 4;
/// Longest line kept whole; longer lines are cut here (and tagged `truncated`).
const MAX_LINE_BYTES: usize = 256 * 1024;
/// Parse errors printed one by one before only counting them.
const MAX_REPORTED_ERRORS: u64 = 50;

/// Arguments of `vigil import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    data: DataDir,
    /// Input format: auto (detect per line), syslog, combined, json, cef, logfmt, apache_error,
    /// raw, or evtx. Compression (gzip, zstd) is detected whatever the format.
    #[arg(long, default_value = "auto")]
    format: String,
    /// Name recorded in `vigil.source` (default: import:<file name>).
    #[arg(long)]
    source: Option<String>,
    /// Do not keep the raw text in `event.original`.
    #[arg(long)]
    no_original: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// The `vigil serve` configuration file whose `[redaction]` section applies here too.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Extra secret pattern to mask, as KIND=REGEX (repeatable), like `vigil serve --redact`.
    #[arg(long = "redact", value_name = "KIND=REGEX")]
    redact: Vec<String>,
    /// Do not bring the search index up to date after the import (searches scan the new
    /// events until `vigil serve` or `vigil reindex --resume` indexes them).
    #[arg(long)]
    no_index: bool,
    /// Files to import (`-` reads standard input).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[derive(Default)]
struct Totals {
    events: u64,
    bad_lines: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    /// Kinds of secret masked.
    redacted_kinds: BTreeSet<String>,
    /// Events with a secret masked.
    redacted_events: u64,
}

impl Totals {
    fn absorb(&mut self, result: Result<std::ops::Range<u64>, IngestError>) -> Result<()> {
        let range = result.context("appending to the ledger")?;
        self.events += range.end - range.start;
        self.first_seq = Some(self.first_seq.map_or(range.start, |f| f.min(range.start)));
        self.last_seq = Some(self.last_seq.map_or(range.end, |l| l.max(range.end)));
        Ok(())
    }
}

/// Where parsed events go: the ledger (`vigil import`) or a hunt (`vigil hunt`).
pub trait EventSink {
    /// Takes one event not known to be masked (an EVTX record, a Zeek header line).
    fn push(&mut self, event: Event) -> Result<()>;
    /// Takes one event made by `parse_line` with `parsed_with` as the parse context's
    /// redactor (masked already), plus only Vigil's own fields (`log.file.path`,
    /// `log.offset`, the `truncated` tag). The ledger's sink hands such events to the door
    /// as an [`Ingest::parsed`] batch, so they are not masked again.
    fn push_parsed(&mut self, event: Event, parsed_with: Option<&Arc<Redactor>>) -> Result<()> {
        let _ = parsed_with;
        self.push(event)
    }
    /// Counts a line that did not parse; returns how many so far.
    fn bad_line(&mut self) -> u64;
}

/// Hands each event to a closure.
struct FnSink<F> {
    f: F,
    bad: u64,
}

impl<F: FnMut(Event)> EventSink for FnSink<F> {
    fn push(&mut self, event: Event) -> Result<()> {
        (self.f)(event);
        Ok(())
    }
    fn bad_line(&mut self) -> u64 {
        self.bad += 1;
        self.bad
    }
}

impl EventSink for Sink<'_> {
    fn push(&mut self, event: Event) -> Result<()> {
        Sink::push(self, event)
    }
    fn push_parsed(&mut self, event: Event, parsed_with: Option<&Arc<Redactor>>) -> Result<()> {
        Sink::push_parsed(self, event, parsed_with)
    }
    fn bad_line(&mut self) -> u64 {
        self.totals.bad_lines += 1;
        self.totals.bad_lines
    }
}

/// Sends batches through the ingest pipeline, keeping a bounded number in flight.
///
/// Events made by `parse_line` with the door's redactor (and only Vigil's own fields added)
/// go to the door as [`Ingest::parsed`] batches, which it does not mask again; any other
/// event (an EVTX record) is masked here, to count what was masked, and by the door. A batch
/// holds one kind or the other: a change of kind sends the batch gathered so far.
struct Sink<'a> {
    ingest: &'a Ingest,
    batch: Vec<Event>,
    /// The redactor every event of `batch` was parsed with, when all were (`Some`); `None`
    /// when the batch holds events not known to be masked (or nothing yet).
    parsed_with: Option<Option<Arc<Redactor>>>,
    /// Whether the file being read lets its parsed lines skip the door's mask: its name
    /// (`log.file.path`, added after parsing) holds nothing the redactor would mask.
    vouch_file: bool,
    in_flight: VecDeque<Pending>,
    totals: Totals,
}

impl Sink<'_> {
    /// Sets the file whose events come next: parsed lines of a file whose name the redactor
    /// would change are masked by the door as before.
    fn start_file(&mut self, name: &str) {
        self.vouch_file = match self.ingest.redactor() {
            None => true,
            Some(redactor) => {
                let mut probe = Event::new(Timestamp::from_secs(0));
                probe.insert("log.file.path", name);
                let expected = probe.clone();
                redactor.redact_event(&mut probe);
                probe == expected
            }
        };
    }

    fn push_parsed(&mut self, event: Event, parsed_with: Option<&Arc<Redactor>>) -> Result<()> {
        if !self.vouch_file {
            return self.push(event);
        }
        let same = match (&self.parsed_with, parsed_with) {
            (Some(Some(a)), Some(b)) => Arc::ptr_eq(a, b),
            (Some(None), None) => true,
            _ => false,
        };
        if !same {
            self.flush()?;
            self.parsed_with = Some(parsed_with.cloned());
        }
        self.take(event)
    }

    fn push(&mut self, mut event: Event) -> Result<()> {
        if self.parsed_with.is_some() {
            self.flush()?;
            self.parsed_with = None;
        }
        // Not parsed by `parse_line` (EVTX records), or not vouched for: masked here to
        // count what was masked (the door masks again, which finds nothing new).
        if let Some(redactor) = self.ingest.redactor() {
            redactor.redact_event(&mut event);
        }
        self.take(event)
    }

    /// Counts what was masked in `event` and adds it to the batch.
    fn take(&mut self, event: Event) -> Result<()> {
        if let Some(vigil_event::Value::List(kinds)) = event.get("vigil.redacted") {
            self.totals.redacted_events += 1;
            for kind in kinds.iter().filter_map(vigil_event::Value::as_str) {
                if !self.totals.redacted_kinds.contains(kind) {
                    self.totals.redacted_kinds.insert(kind.to_owned());
                }
            }
        }
        self.batch.push(event);
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = self.take_batch();
        self.in_flight
            .push_back(self.ingest.submit(batch, Origin::Import));
        // Bounded memory: wait for a batch to be durable before reading more.
        while self.in_flight.len() >= IN_FLIGHT {
            self.wait_one()?;
        }
        Ok(())
    }

    /// The events gathered so far, as the door is to see them: vouched for as masked when
    /// all were parsed with one redactor (the door checks that it is its own).
    fn take_batch(&mut self) -> vigil_ingest::Batch {
        let events = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        match self.parsed_with.take() {
            Some(with) => self.ingest.parsed(events, with.as_ref()),
            None => events.into(),
        }
    }

    fn wait_one(&mut self) -> Result<()> {
        match self.in_flight.pop_front() {
            Some(pending) => self.totals.absorb(pending.wait()),
            None => Ok(()),
        }
    }

    fn finish(mut self) -> Result<Totals> {
        self.flush()?;
        while !self.in_flight.is_empty() {
            self.wait_one()?;
        }
        Ok(self.totals)
    }
}

/// `vigil import`.
pub fn run(args: ImportArgs) -> Result<ExitCode> {
    let evtx_forced = args.format.eq_ignore_ascii_case("evtx");
    let format: Format = if evtx_forced {
        Format::Auto
    } else {
        args.format
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?
    };
    for path in &args.files {
        if path != Path::new("-") && !path.is_file() {
            bail!("{}: no such file", path.display());
        }
    }
    let redaction = redaction(args.config.as_deref(), &args.redact)?;
    let redactor =
        vigil_ingest::pipeline::redactor(redaction.as_deref()).map_err(|e| anyhow::anyhow!(e))?;
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
    let ingest = Ingest::new(
        vigil_ingest::NodeLog::from(ledger.clone()),
        redactor,
        Arc::default(),
    );
    let mut sink = Sink {
        ingest: &ingest,
        batch: Vec::with_capacity(BATCH),
        parsed_with: None,
        vouch_file: false,
        in_flight: VecDeque::new(),
        totals: Totals::default(),
    };
    let received = Timestamp::now();
    for path in &args.files {
        let stdin = path == Path::new("-");
        let name = if stdin {
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
        // Syslog lines without a year belong to the year before the file was last written.
        let reference = if stdin {
            received
        } else {
            path.metadata()
                .and_then(|m| m.modified())
                .map(|t| Timestamp::from_datetime(t.into()))
                .unwrap_or(received)
        };
        let ctx = ParseContext {
            received,
            reference,
            source,
            keep_original: !args.no_original,
            peer: None,
            redactor: ingest.redactor(),
        };
        let raw: Box<dyn Read + Send> = if stdin {
            Box::new(io::stdin())
        } else {
            Box::new(bar.wrap_read(File::open(path).with_context(|| format!("opening {name}"))?))
        };
        let input = decompressing(raw, &name)?;
        sink.start_file(&name);
        import_one(input, &name, format, evtx_forced, &ctx, &mut sink, &bar)?;
    }
    let totals = sink.finish()?;
    bar.finish_and_clear();
    drop(ingest);
    ledger.close()?;
    let mut out = io::stdout().lock();
    match (totals.first_seq, totals.last_seq) {
        (Some(first), Some(end)) => {
            write!(
                out,
                "imported {} events (seq {first}..{end})",
                totals.events
            )?;
            if totals.bad_lines > 0 {
                write!(
                    out,
                    "; {} lines did not parse and were stored with tag parse_error",
                    totals.bad_lines
                )?;
            }
            if totals.redacted_events > 0 {
                write!(
                    out,
                    "; secrets masked ({} kinds across {} events)",
                    totals.redacted_kinds.len(),
                    totals.redacted_events
                )?;
            }
            writeln!(out)?;
        }
        _ => writeln!(out, "no events found")?,
    }
    drop(out);
    if !args.no_index && totals.events > 0 {
        // A search right after the import answers from the index, not by scanning the ledger.
        let (indexed, _, _) = crate::reindex::index(&args.data.data_dir, 2, true, args.quiet)
            .context("bringing the search index up to date (the events are imported; `vigil reindex --resume` retries)")?;
        if !args.quiet {
            eprintln!("search index up to date ({indexed} events indexed)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Wraps a reader so gzip and zstd input (recognised by magic bytes) comes out decompressed.
fn decompressing(raw: Box<dyn Read + Send>, name: &str) -> Result<Box<dyn BufRead + Send>> {
    let mut reader = BufReader::with_capacity(1 << 20, raw);
    let magic = reader
        .fill_buf()
        .with_context(|| format!("reading {name}"))?;
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(reader)))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(BufReader::new(
            zstd::stream::read::Decoder::with_buffer(reader)
                .with_context(|| format!("{name}: zstd"))?,
        ))
    } else {
        Box::new(reader)
    })
}

/// Parses one file the way `vigil import` does (any line format, JSON arrays, EVTX, gzip,
/// zstd; secrets masked) and hands every event to `f`, without storing anything: the input of
/// `vigil hunt FILE…`. Lines that do not parse arrive as `parse_error` events; returns how many.
pub fn for_each_event_in_file(path: &Path, f: impl FnMut(Event)) -> Result<u64> {
    let name = path.display().to_string();
    let received = Timestamp::now();
    let reference = path
        .metadata()
        .and_then(|m| m.modified())
        .map(|t| Timestamp::from_datetime(t.into()))
        .unwrap_or(received);
    let ctx = ParseContext {
        received,
        reference,
        source: format!(
            "hunt:{}",
            path.file_name()
                .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned())
        ),
        keep_original: true,
        peer: None,
        redactor: Some(std::sync::Arc::new(vigil_parse::redact::Redactor::default())),
    };
    let raw: Box<dyn Read + Send> =
        Box::new(File::open(path).with_context(|| format!("opening {name}"))?);
    let input = decompressing(raw, &name)?;
    let mut sink = FnSink { f, bad: 0 };
    let bar = indicatif::ProgressBar::hidden();
    import_one(input, &name, Format::Auto, false, &ctx, &mut sink, &bar)?;
    Ok(sink.bad)
}

fn import_one(
    mut input: Box<dyn BufRead + Send>,
    name: &str,
    format: Format,
    evtx_forced: bool,
    ctx: &ParseContext,
    sink: &mut impl EventSink,
    bar: &indicatif::ProgressBar,
) -> Result<()> {
    let head = input
        .fill_buf()
        .with_context(|| format!("reading {name}"))?;
    if evtx_forced || head.starts_with(b"ElfFile\0") {
        let mut bytes = Vec::new();
        input
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {name}"))?;
        let records =
            vigil_parse::evtx::parse_file(bytes).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        for (i, record) in records.into_iter().enumerate() {
            let mut event = match record {
                Ok(event) => event,
                Err(e) => {
                    report(
                        sink,
                        bar,
                        name,
                        i as u64 + 1,
                        &format!("unreadable EVTX record: {e}"),
                        "record",
                    );
                    let mut event = Event::new(ctx.received);
                    event.insert("error.message", format!("unreadable EVTX record: {e}"));
                    event.add_tag(vigil_event::tag::PARSE_ERROR);
                    event
                }
            };
            event.insert("vigil.source", ctx.source.as_str());
            event.insert("vigil.received", ctx.received.to_rfc3339());
            event.insert("log.file.path", name);
            sink.push(event)?;
        }
        return Ok(());
    }
    let first_char = head.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if head.starts_with(b"#separator ") && matches!(format, Format::Auto) {
        // Zeek's default TSV log: the `#fields`/`#types` header drives the parse.
        let mut reader = vigil_parse::zeek_tsv::ZeekTsv::new();
        let mut line = String::new();
        let mut line_no = 0u64;
        loop {
            line.clear();
            if input
                .read_line(&mut line)
                .with_context(|| format!("reading {name}"))?
                == 0
            {
                break;
            }
            line_no += 1;
            if let Some(event) = reader.line(&line, ctx) {
                push_line_event(sink, bar, name, line_no, event, None)?;
            }
        }
        return Ok(());
    }
    let records_head = head
        .iter()
        .position(|b| !b.is_ascii_whitespace() && *b != b'{')
        .is_some_and(|i| {
            head[i..].starts_with(b"\"Records\"") || head[i..].starts_with(b"\"records\"")
        });
    if first_char == Some(b'{') && records_head && matches!(format, Format::Auto | Format::Json) {
        // A CloudTrail delivery as stored in S3 (`{"Records": [...]}`, gzip or not) or an Azure
        // Monitor batch (`{"records": [...]}`): one event per record.
        let mut text = String::new();
        input
            .read_to_string(&mut text)
            .with_context(|| format!("reading {name}"))?;
        if let Some(records) = vigil_parse::cloud::split_records(&text) {
            for (i, line) in records.iter().enumerate() {
                let event = parse_line(line.as_bytes(), Format::Json, ctx);
                push_line_event(sink, bar, name, i as u64 + 1, event, Some(ctx))?;
            }
            return Ok(());
        }
        for (i, line) in text.lines().enumerate() {
            if !line.trim().is_empty() {
                let event = parse_line(line.as_bytes(), format, ctx);
                push_line_event(sink, bar, name, i as u64 + 1, event, Some(ctx))?;
            }
        }
        return Ok(());
    }
    if first_char == Some(b'[') && matches!(format, Format::Auto | Format::Json) {
        // A JSON array of events (Suricata samples, API exports).
        let mut text = String::new();
        input
            .read_to_string(&mut text)
            .with_context(|| format!("reading {name}"))?;
        if let Ok(items) = serde_json::from_str::<Vec<serde_json::Value>>(&text) {
            for (i, item) in items.iter().enumerate() {
                let line = item.to_string();
                let event = parse_line(line.as_bytes(), Format::Json, ctx);
                push_line_event(sink, bar, name, i as u64 + 1, event, Some(ctx))?;
            }
            return Ok(());
        }
        // Not a JSON array after all: fall back to lines.
        for (i, line) in text.lines().enumerate() {
            if !line.trim().is_empty() {
                let event = parse_line(line.as_bytes(), format, ctx);
                push_line_event(sink, bar, name, i as u64 + 1, event, Some(ctx))?;
            }
        }
        return Ok(());
    }
    // Line by line, parsed on every core, handed on in input order.
    lines::import_lines(input, name, format, ctx, sink, bar)
}

fn push_line_event(
    sink: &mut impl EventSink,
    bar: &indicatif::ProgressBar,
    name: &str,
    line_no: u64,
    mut event: Event,
    parsed_by: Option<&ParseContext>,
) -> Result<()> {
    if event.has_tag(vigil_event::tag::PARSE_ERROR) {
        let message = event.get_str("error.message").unwrap_or("").to_owned();
        report(sink, bar, name, line_no, &message, "line");
        event.insert("log.offset", line_no as i64);
    }
    event.insert("log.file.path", name);
    match parsed_by {
        // `parse_line` with this context made it: masked with the context's redactor.
        Some(ctx) => sink.push_parsed(event, ctx.redactor.as_ref()),
        None => sink.push(event),
    }
}

fn report(
    sink: &mut impl EventSink,
    bar: &indicatif::ProgressBar,
    name: &str,
    n: u64,
    message: &str,
    what: &str,
) {
    let bad = sink.bad_line();
    if bad <= MAX_REPORTED_ERRORS {
        bar.suspend(|| eprintln!("{name}:{n}: {message} (stored with tag parse_error)"));
    } else if bad == MAX_REPORTED_ERRORS + 1 {
        bar.suspend(|| eprintln!("vigil: more {what}s did not parse; only counting from here on"));
    }
}

/// The operator's redaction, as `vigil serve` applies it: the `[redaction]` section of the
/// configuration file (when given) and the `--redact KIND=REGEX` flags; `None` when the file
/// turns redaction off.
fn redaction(config: Option<&Path>, flags: &[String]) -> Result<Option<Vec<(String, String)>>> {
    let section = match config {
        Some(path) => vigil_config::Config::from_file(path)?.redaction,
        None => vigil_config::RedactionSection::default(),
    };
    let mut extra: Vec<(String, String)> = section
        .patterns
        .iter()
        .map(|p| (p.reveal().kind.clone(), p.reveal().regex.clone()))
        .collect();
    for spec in flags {
        let pattern: vigil_config::RedactPattern = spec
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--redact {e}"))?;
        extra.push((pattern.kind, pattern.regex));
    }
    if !section.enabled {
        if !extra.is_empty() {
            bail!("redaction patterns are configured but [redaction] enabled = false");
        }
        return Ok(None);
    }
    Ok(Some(extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingest(dir: &Path) -> (Ingest, Ledger) {
        let (ledger, _) = Ledger::open(dir, LedgerConfig::default()).unwrap();
        let ingest = Ingest::new(
            vigil_ingest::NodeLog::from(ledger.clone()),
            Redactor::default(),
            Arc::default(),
        );
        (ingest, ledger)
    }

    fn sink(ingest: &Ingest) -> Sink<'_> {
        Sink {
            ingest,
            batch: Vec::new(),
            parsed_with: None,
            vouch_file: false,
            in_flight: VecDeque::new(),
            totals: Totals::default(),
        }
    }

    fn ctx(redactor: Option<Arc<Redactor>>) -> ParseContext {
        let mut ctx = ParseContext::new(Timestamp::from_secs(1_700_000_000), "import:t");
        ctx.redactor = redactor;
        ctx
    }

    const LINES: [&str; 2] = [
        "<38>Nov 22 10:00:00 bastion sshd[1]: Failed password for root from 203.0.113.9 port 22 ssh2",
        "{\"message\":\"login\",\"password\":\"hunter2\"}",
    ];

    /// Lines parsed with the door's own redactor reach the door vouched for (its mask is
    /// skipped); a lookalike redactor, a file name the redactor would change, or an event not
    /// made by `parse_line` are masked by the door as before, in a batch of their own.
    #[test]
    fn only_lines_parsed_with_the_doors_redactor_skip_its_mask() {
        let dir = tempfile::tempdir().unwrap();
        let (ingest, ledger) = ingest(dir.path());
        let own = ctx(ingest.redactor());
        let lookalike = ctx(Some(Arc::new(Redactor::default())));
        let mut sink = sink(&ingest);

        sink.start_file("auth.log");
        for line in LINES {
            let event = parse_line(line.as_bytes(), Format::Auto, &own);
            push_line_event(
                &mut sink,
                &indicatif::ProgressBar::hidden(),
                "auth.log",
                1,
                event,
                Some(&own),
            )
            .unwrap();
        }
        let batch = sink.take_batch();
        assert_eq!(batch.len(), 2);
        assert!(
            batch.masked(),
            "parsed with the door's redactor: vouched for"
        );
        assert!(
            sink.totals.redacted_events == 1,
            "the password line was counted"
        );

        for line in LINES {
            let event = parse_line(line.as_bytes(), Format::Auto, &lookalike);
            sink.push_parsed(event, lookalike.redactor.as_ref())
                .unwrap();
        }
        let batch = sink.take_batch();
        assert_eq!(batch.len(), 2);
        assert!(!batch.masked(), "another redactor is not vouched for");

        // A file name holding a secret: `log.file.path` is added after parsing.
        let name = "password=hunter2.log";
        sink.start_file(name);
        let event = parse_line(LINES[0].as_bytes(), Format::Auto, &own);
        push_line_event(
            &mut sink,
            &indicatif::ProgressBar::hidden(),
            name,
            1,
            event,
            Some(&own),
        )
        .unwrap();
        let batch = sink.take_batch();
        assert!(!batch.masked(), "the door masks the file name");

        // Parsed then unparsed: two batches, the unparsed one masked by the door.
        sink.start_file("mixed.log");
        let event = parse_line(LINES[0].as_bytes(), Format::Auto, &own);
        sink.push_parsed(event, own.redactor.as_ref()).unwrap();
        let mut record = Event::new(Timestamp::from_secs(1));
        record.insert("message", "login password=hunter4 ok");
        sink.push(record).unwrap();
        assert_eq!(sink.in_flight.len(), 1, "the parsed event went on alone");
        let batch = sink.take_batch();
        assert_eq!(batch.len(), 1);
        assert!(!batch.masked());
        let message = batch.events()[0].get_str("message").unwrap();
        assert!(
            !message.contains("hunter4"),
            "masked by the sink too, so the summary counts it: {message}"
        );
        assert_eq!(sink.totals.redacted_events, 4);
        sink.finish().unwrap();
        drop(ingest);
        ledger.close().unwrap();
    }

    /// End to end through the door: every line of a file whose lines and name hold secrets is
    /// stored masked, whether vouched for or not.
    #[test]
    fn nothing_stored_holds_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let (ingest, ledger) = ingest(dir.path());
        let own = ctx(ingest.redactor());
        let mut sink = sink(&ingest);
        for name in ["auth.log", "password=hunter3.log"] {
            sink.start_file(name);
            for line in LINES {
                let event = parse_line(line.as_bytes(), Format::Auto, &own);
                push_line_event(
                    &mut sink,
                    &indicatif::ProgressBar::hidden(),
                    name,
                    1,
                    event,
                    Some(&own),
                )
                .unwrap();
            }
        }
        let totals = sink.finish().unwrap();
        assert_eq!(totals.events, 4);
        drop(ingest);
        ledger.close().unwrap();
        let mut reader = vigil_ledger::LedgerReader::open(dir.path()).unwrap();
        let mut seen = 0;
        reader
            .for_each_raw(0..4, |_, raw| {
                let text = String::from_utf8_lossy(raw);
                assert!(
                    !text.contains("hunter2") && !text.contains("hunter3"),
                    "{text}"
                );
                seen += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, 4);
    }
}
