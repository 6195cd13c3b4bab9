//! Line files parsed on every core, events handed on in input order.
//!
//! Three stages: a reader thread cuts the input into chunks of whole lines (overlong lines cut
//! and marked, blank lines skipped, line numbers kept), parser threads turn each chunk into
//! events (`parse_line`, masking included), and the calling thread puts the chunks back in
//! input order and hands every event to the sink (for `vigil import`, the ingest pipeline,
//! whose ledger appends on its own thread). Every queue is bounded, so memory stays bounded
//! whatever the input size; a sink error stops the readers and parsers.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use vigil_event::Event;
use vigil_parse::{Format, ParseContext, parse_line};

use super::{EventSink, MAX_LINE_BYTES, report};

/// Lines per chunk (a chunk also ends at [`CHUNK_BYTES`]).
const CHUNK_LINES: usize = 2048;
/// Bytes per chunk, about.
const CHUNK_BYTES: usize = 1 << 20;

/// Whole lines read from the input: `buf` holds them back to back.
struct Chunk {
    buf: Vec<u8>,
    /// `(line number, start, end, truncated)` of each non-blank line in `buf`.
    lines: Vec<(u64, usize, usize, bool)>,
}

/// A parsed line: its event, its line number, and why it did not parse (if it did not).
struct Parsed {
    event: Event,
    line_no: u64,
    error: Option<String>,
}

/// How many threads parse: one per core.
fn parser_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Reads `input` line by line, parses every line as `format` on every core and hands the
/// events to `sink` in input order, like the one-thread loop it replaces: lines that do not
/// parse are reported (file and line number) and handed on as `parse_error` events with
/// `log.offset`; every event gets `log.file.path`.
pub(super) fn import_lines(
    input: Box<dyn BufRead + Send>,
    name: &str,
    format: Format,
    ctx: &ParseContext,
    sink: &mut impl EventSink,
    bar: &indicatif::ProgressBar,
) -> Result<()> {
    let threads = parser_threads();
    std::thread::scope(|scope| {
        let (work_tx, work_rx) = sync_channel::<(u64, Chunk)>(threads * 2);
        let (done_tx, done_rx) = sync_channel::<(u64, Vec<Parsed>)>(threads * 2);
        let reader = scope.spawn(move || read_chunks(input, name, work_tx));
        let work_rx = Arc::new(Mutex::new(work_rx));
        for _ in 0..threads {
            let work_rx = Arc::clone(&work_rx);
            let done_tx = done_tx.clone();
            scope.spawn(move || parse_chunks(&work_rx, &done_tx, name, format, ctx));
        }
        // Only the parsers hold these now: when they stop, the reader's sends fail and it
        // stops too.
        drop(work_rx);
        drop(done_tx);
        // The receiver is dropped when this returns, which stops the parsers (and through
        // them the reader) if the sink failed.
        let pushed = push_in_order(done_rx, name, ctx, sink, bar);
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("{name}: the reader thread panicked")));
        pushed.and(read)
    })
}

/// The reader stage: chunks of whole lines, numbered from 0, until the input ends or nobody
/// takes them any more.
fn read_chunks(
    mut input: Box<dyn BufRead + Send>,
    name: &str,
    work: SyncSender<(u64, Chunk)>,
) -> Result<()> {
    let mut line_no = 0u64;
    let mut next = 0u64;
    let mut chunk = Chunk {
        buf: Vec::with_capacity(CHUNK_BYTES + 4096),
        lines: Vec::with_capacity(CHUNK_LINES),
    };
    loop {
        let start = chunk.buf.len();
        let n = (&mut input)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut chunk.buf)
            .with_context(|| format!("reading {name}"))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let line = &chunk.buf[start..];
        let truncated = !line.ends_with(b"\n") && line.len() > MAX_LINE_BYTES;
        if truncated {
            // Skip the rest of an overlong line; keep its first part.
            let mut rest = Vec::new();
            input.read_until(b'\n', &mut rest).ok();
            chunk.buf.truncate(start + MAX_LINE_BYTES);
        }
        if chunk.buf[start..].iter().all(u8::is_ascii_whitespace) {
            chunk.buf.truncate(start);
            continue;
        }
        chunk
            .lines
            .push((line_no, start, chunk.buf.len(), truncated));
        if chunk.lines.len() >= CHUNK_LINES || chunk.buf.len() >= CHUNK_BYTES {
            let full = std::mem::replace(
                &mut chunk,
                Chunk {
                    buf: Vec::with_capacity(CHUNK_BYTES + 4096),
                    lines: Vec::with_capacity(CHUNK_LINES),
                },
            );
            if work.send((next, full)).is_err() {
                return Ok(()); // the sink stopped; its error is the one reported
            }
            next += 1;
        }
    }
    if !chunk.lines.is_empty() {
        let _ = work.send((next, chunk));
    }
    Ok(())
}

/// A parser stage: takes chunks until there are none, sends back their events.
fn parse_chunks(
    work: &Mutex<Receiver<(u64, Chunk)>>,
    done: &SyncSender<(u64, Vec<Parsed>)>,
    name: &str,
    format: Format,
    ctx: &ParseContext,
) {
    loop {
        // The lock is held only while waiting for the next chunk, not while parsing it.
        let next = match work.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((seq, chunk)) = next else {
            return;
        };
        let parsed = chunk
            .lines
            .iter()
            .map(|&(line_no, start, end, truncated)| {
                parse_one(
                    &chunk.buf[start..end],
                    line_no,
                    truncated,
                    name,
                    format,
                    ctx,
                )
            })
            .collect();
        if done.send((seq, parsed)).is_err() {
            return;
        }
    }
}

/// One line, as the one-thread loop read it.
fn parse_one(
    line: &[u8],
    line_no: u64,
    truncated: bool,
    name: &str,
    format: Format,
    ctx: &ParseContext,
) -> Parsed {
    let mut event = parse_line(line, format, ctx);
    if truncated {
        event.add_tag(vigil_event::tag::TRUNCATED);
    }
    let error = if event.has_tag(vigil_event::tag::PARSE_ERROR) {
        event.insert("log.offset", line_no as i64);
        Some(event.get_str("error.message").unwrap_or("").to_owned())
    } else {
        None
    };
    event.insert("log.file.path", name);
    Parsed {
        event,
        line_no,
        error,
    }
}

/// The last stage, on the calling thread: chunks back in input order, errors reported, events
/// handed to the sink as parsed with `ctx` ([`EventSink::push_parsed`]); the bar's message shows lines per second.
fn push_in_order(
    done: Receiver<(u64, Vec<Parsed>)>,
    name: &str,
    ctx: &ParseContext,
    sink: &mut impl EventSink,
    bar: &indicatif::ProgressBar,
) -> Result<()> {
    let mut waiting: BTreeMap<u64, Vec<Parsed>> = BTreeMap::new();
    let mut next = 0u64;
    let started = Instant::now();
    let mut shown = started;
    let mut lines = 0u64;
    for (seq, parsed) in done {
        waiting.insert(seq, parsed);
        while let Some(parsed) = waiting.remove(&next) {
            next += 1;
            for p in parsed {
                if let Some(message) = &p.error {
                    report(sink, bar, name, p.line_no, message, "line");
                }
                // Made by `parse_line` with `ctx`: masked with its redactor already.
                sink.push_parsed(p.event, ctx.redactor.as_ref())?;
                lines += 1;
            }
            if !bar.is_hidden() && shown.elapsed() >= Duration::from_millis(500) {
                shown = Instant::now();
                let rate = lines as f64 / started.elapsed().as_secs_f64().max(1e-3);
                bar.set_message(format!("importing, {rate:.0} lines/s"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use vigil_event::Timestamp;

    use super::*;

    struct Collect {
        events: Vec<Event>,
        bad: u64,
    }

    impl EventSink for Collect {
        fn push(&mut self, event: Event) -> Result<()> {
            self.events.push(event);
            Ok(())
        }
        fn bad_line(&mut self) -> u64 {
            self.bad += 1;
            self.bad
        }
    }

    /// Many chunks' worth of lines come out in input order, each exactly as `parse_line`
    /// makes it alone; blank lines are skipped but counted in line numbers; bad lines are
    /// counted and kept with their line number; an overlong line is cut and tagged.
    #[test]
    fn parallel_lines_keep_order_and_lose_nothing() {
        let ctx = ParseContext::new(Timestamp::parse("2026-11-22T12:00:00Z").unwrap(), "t");
        let mut text = String::new();
        let mut expected = Vec::new();
        for i in 0..(CHUNK_LINES * 3 + 17) {
            let line = match i % 5 {
                0 => format!(
                    "<38>Nov 22 10:00:{:02} bastion sshd[{i}]: Failed password for u{i} from 203.0.113.{} port {i} ssh2",
                    i % 60,
                    i % 250
                ),
                1 => format!("{{\"n\":{i},\"password\":\"s{i}\"}}"),
                2 => "{not json".to_string(),
                3 => String::from("   "),
                _ => format!("level=info msg=\"line {i}\""),
            };
            text.push_str(&line);
            text.push('\n');
            if i % 5 != 3 {
                expected.push((i as u64 + 1, line));
            }
        }
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        text.push_str(&long);
        text.push('\n');
        text.push_str("last line without newline");
        let mut sink = Collect {
            events: Vec::new(),
            bad: 0,
        };
        let input: Box<dyn BufRead + Send> = Box::new(Cursor::new(text.into_bytes()));
        let bar = indicatif::ProgressBar::hidden();
        import_lines(input, "f.log", Format::Auto, &ctx, &mut sink, &bar).unwrap();
        assert_eq!(sink.events.len(), expected.len() + 2);
        for ((line_no, line), got) in expected.iter().zip(&sink.events) {
            let mut want = parse_line(line.as_bytes(), Format::Auto, &ctx);
            if want.has_tag(vigil_event::tag::PARSE_ERROR) {
                want.insert("log.offset", *line_no as i64);
            }
            want.insert("log.file.path", "f.log");
            assert_eq!(got, &want, "line {line_no}");
        }
        assert_eq!(
            sink.bad,
            expected.iter().filter(|(_, l)| l == "{not json").count() as u64
        );
        let cut = &sink.events[expected.len()];
        assert!(cut.has_tag(vigil_event::tag::TRUNCATED));
        assert_eq!(
            sink.events.last().unwrap().get_str("message"),
            Some("last line without newline")
        );
    }

    /// A sink that fails stops the import with its error instead of hanging.
    #[test]
    fn a_failing_sink_stops_everything() {
        struct Fail(u64);
        impl EventSink for Fail {
            fn push(&mut self, _: Event) -> Result<()> {
                self.0 += 1;
                if self.0 == 3000 {
                    anyhow::bail!("disk full");
                }
                Ok(())
            }
            fn bad_line(&mut self) -> u64 {
                0
            }
        }
        let ctx = ParseContext::new(Timestamp::parse("2026-11-22T12:00:00Z").unwrap(), "t");
        let text: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
        let input: Box<dyn BufRead + Send> = Box::new(Cursor::new(text.into_bytes()));
        let bar = indicatif::ProgressBar::hidden();
        let err = import_lines(input, "f", Format::Raw, &ctx, &mut Fail(0), &bar).unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
    }
}
