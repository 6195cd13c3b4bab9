//! `vigil import`'s serial path with and without the door's second mask: the lines of FILEs
//! parsed with the door's redactor (as import's parser threads do), then handed to the door
//! in batches of 4096 into a real ledger — "before" as import did until now (masked once more
//! by the import sink, then by the door), "after" as an `Ingest::parsed` batch the door does
//! not mask again. Process CPU (user + system from `/proc/self/stat`, the ledger's committer
//! thread included) per million lines, the variants alternating.
//!
//! ```text
//! cargo run --release -p vigil-ingest --example import_mask -- ROUNDS FILE...
//! ```

use std::sync::Arc;

use vigil_event::{Event, Timestamp};
use vigil_ingest::{Ingest, NodeLog, Origin};
use vigil_ledger::{Ledger, LedgerConfig};
use vigil_parse::redact::Redactor;
use vigil_parse::{Format, ParseContext, parse_line};

fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn run(lines: &[String], vouch: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
    let ingest = Ingest::new(
        NodeLog::from(ledger.clone()),
        Redactor::default(),
        Arc::default(),
    );
    let mut ctx = ParseContext::new(Timestamp::now(), "import:bench");
    ctx.redactor = ingest.redactor();
    let t0 = process_cpu();
    let mut pending = std::collections::VecDeque::new();
    for chunk in lines.chunks(4096) {
        let mut events: Vec<Event> = chunk
            .iter()
            .map(|l| {
                let mut e = parse_line(l.as_bytes(), Format::Auto, &ctx);
                e.insert("log.file.path", "bench.log");
                e
            })
            .collect();
        let batch = if vouch {
            ingest.parsed(events, ctx.redactor.as_ref())
        } else {
            for e in &mut events {
                ctx.redactor.as_ref().unwrap().redact_event(e);
            }
            events.into()
        };
        pending.push_back(ingest.submit(batch, Origin::Import));
        while pending.len() >= 4 {
            pending.pop_front().unwrap().wait().unwrap();
        }
    }
    for p in pending {
        p.wait().unwrap();
    }
    drop(ingest);
    ledger.close().unwrap();
    process_cpu() - t0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let mut lines = Vec::new();
    for path in args {
        let text = std::fs::read_to_string(&path).unwrap();
        lines.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned),
        );
    }
    let per_m = |cpu: f64| cpu * 1e6 / lines.len() as f64;
    for round in 0..rounds {
        let before = run(&lines, false);
        let after = run(&lines, true);
        println!(
            "round {round}: {} lines; masked by the sink and the door again {:.2} CPU-s per million; parsed batch {:.2} CPU-s per million ({:+.1} %)",
            lines.len(),
            per_m(before),
            per_m(after),
            100.0 * (after - before) / before
        );
    }
}
