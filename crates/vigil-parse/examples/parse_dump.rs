//! Prints the event every line of the given files parses into, one JSON object per line, for
//! comparing two versions of the parsers over the same input (a differential run):
//! `cargo run --release -p vigil-parse --example parse_dump -- FILE… > out.ndjson`.
//! The receive and reference times are fixed, so two runs differ only where the parsers do.
//! With `--canonical` first, each line is the event's canonical bytes (what the ledger hashes)
//! in hex instead, for comparing two versions of the event model.

use std::io::{BufRead, Write};

use vigil_event::Timestamp;
use vigil_parse::{Format, ParseContext, parse_line};

fn main() {
    let at = Timestamp::parse("2026-11-22T12:00:00Z").expect("static time");
    let ctx = ParseContext::new(at, "dump");
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let canonical = args.first().is_some_and(|a| a == "--canonical");
    if canonical {
        args.remove(0);
    }
    for path in args {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        for line in std::io::BufReader::new(file).split(b'\n') {
            let line = line.unwrap_or_else(|e| panic!("{path}: {e}"));
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let event = parse_line(&line, Format::Auto, &ctx);
            if canonical {
                let hex: String = event
                    .to_canonical()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                writeln!(out, "{hex}").expect("stdout");
            } else {
                writeln!(out, "{}", event.to_json()).expect("stdout");
            }
        }
    }
}
