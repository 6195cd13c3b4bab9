//! Where a data directory's index bytes go: rebuilds the index from the ledger the way
//! `vigil reindex` does (THREADS writer threads, same batch, same merges), prints the CPU time it
//! took, then the bytes per tantivy file type, per field and part, and per term class of every
//! inverted field (the `text` field's words by kind, the `PATH \0 …` fields by path).
//!
//! ```text
//! cargo run --release -p vigil-index --example index_space -- DATA_DIR [THREADS] [--keep]
//! ```
//!
//! The index of DATA_DIR is deleted first (it is derived data); with `--keep` the existing one
//! is measured instead of rebuilt. Sizes do not depend on the machine's load; the CPU seconds
//! are the process's user + system time (`/proc/self/stat`), less sensitive to load than wall
//! time.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use tantivy::Index;
use vigil_index::document::{SEP, schema};
use vigil_index::{Indexer, index_all, index_dir};
use vigil_ledger::LedgerReader;

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn by_extension(dir: &Path) -> (u64, Vec<(String, u64)>, usize) {
    let mut per: HashMap<String, u64> = HashMap::new();
    let mut segments = std::collections::HashSet::new();
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(m) = e.metadata() else { continue };
        if !m.is_file() {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let (stem, ext) = name.rsplit_once('.').unwrap_or((&name, ""));
        if stem.len() == 32 {
            segments.insert(stem.to_owned());
        }
        *per.entry(ext.to_owned()).or_default() += m.len();
        total += m.len();
    }
    let mut v: Vec<_> = per.into_iter().collect();
    v.sort_by_key(|(_, b)| std::cmp::Reverse(*b));
    (total, v, segments.len())
}

fn report_files(dir: &Path, label: &str) -> u64 {
    let (total, exts, segments) = by_extension(dir);
    println!("{label}: index {total} bytes in {segments} segments");
    for (ext, bytes) in exts {
        println!("  .{ext:<10} {bytes:>12}");
    }
    total
}

/// A word of the `text` field by kind.
fn word_class(w: &[u8]) -> &'static str {
    if w.iter().all(u8::is_ascii_digit) {
        if w.len() <= 2 {
            "digits 1-2"
        } else {
            "digits 3+"
        }
    } else if w.iter().all(u8::is_ascii_hexdigit) {
        "hex"
    } else if w.iter().all(u8::is_ascii_alphabetic) {
        "letters"
    } else if w.is_ascii() {
        "letters+digits"
    } else {
        "non-ascii"
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    terms: u64,
    key_bytes: u64,
    postings: u64,
    positions: u64,
    docs: u64,
}

fn report_terms(index: &Index) -> Result<(), Box<dyn std::error::Error>> {
    let (_, fields) = schema();
    let reader = index.reader()?;
    let searcher = reader.searcher();
    for (name, field) in [
        ("text", fields.text),
        ("kw", fields.kw),
        ("num", fields.num),
        ("ip", fields.ip),
        ("has", fields.has),
        ("odd", fields.odd),
    ] {
        let mut by: HashMap<String, Tally> = HashMap::new();
        let mut top: Vec<(u64, String, u64)> = Vec::new();
        for seg in searcher.segment_readers() {
            let inv = seg.inverted_index(field)?;
            let mut stream = inv.terms().stream()?;
            while stream.advance() {
                let key = stream.key();
                let info = stream.value();
                let class = if name == "text" {
                    word_class(key).to_owned()
                } else {
                    let text = String::from_utf8_lossy(key);
                    match name {
                        "odd" => text.replace(SEP, " "),
                        _ => text.split(SEP).next().unwrap_or("").to_owned(),
                    }
                };
                let t = by.entry(class).or_default();
                t.terms += 1;
                t.key_bytes += key.len() as u64;
                t.postings += info.postings_range.len() as u64;
                t.positions += info.positions_range.len() as u64;
                t.docs += u64::from(info.doc_freq);
                if name == "text" {
                    top.push((
                        (info.postings_range.len() + info.positions_range.len()) as u64,
                        String::from_utf8_lossy(key).into_owned(),
                        u64::from(info.doc_freq),
                    ));
                }
            }
        }
        let mut rows: Vec<_> = by.into_iter().collect();
        rows.sort_by_key(|(_, t)| std::cmp::Reverse(t.postings + t.positions + t.key_bytes));
        println!(
            "field {name}: {:<34} {:>9} {:>11} {:>12} {:>12} {:>12}",
            "class/path", "terms", "key bytes", "postings", "positions", "docs"
        );
        for (class, t) in rows.iter().take(40) {
            println!(
                "  {class:<42} {:>9} {:>11} {:>12} {:>12} {:>12}",
                t.terms, t.key_bytes, t.postings, t.positions, t.docs
            );
        }
        if !top.is_empty() {
            top.sort_by_key(|(b, _, _)| std::cmp::Reverse(*b));
            let list: Vec<String> = top
                .iter()
                .take(25)
                .map(|(b, k, d)| format!("{k}:{b}/{d}"))
                .collect();
            println!(
                "  largest words (bytes/docs, per segment): {}",
                list.join(" ")
            );
        }
    }
    Ok(())
}

fn report_fields(index: &Index) -> Result<(), Box<dyn std::error::Error>> {
    let searcher = index.reader()?.searcher();
    let usage = searcher.space_usage()?;
    let mut per: HashMap<String, u64> = HashMap::new();
    let mut store = 0;
    for segment in usage.segments() {
        for (part, usage) in [
            ("terms", segment.termdict()),
            ("postings", segment.postings()),
            ("positions", segment.positions()),
            ("columns", segment.fast_fields()),
            ("norms", segment.fieldnorms()),
        ] {
            for f in usage.fields() {
                *per.entry(format!("{}/{part}", f.field_name())).or_default() +=
                    f.total().get_bytes();
            }
        }
        store += segment.store().total().get_bytes();
    }
    let mut rows: Vec<_> = per.into_iter().collect();
    rows.sort_by_key(|(_, b)| std::cmp::Reverse(*b));
    println!("by field and part (store {store}):");
    for (k, b) in rows.iter().filter(|(_, b)| *b > 0).take(60) {
        println!("  {k:<48} {b:>12}");
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let keep = args.iter().any(|a| a == "--keep");
    args.retain(|a| a != "--keep");
    let dir = std::path::PathBuf::from(args.first().ok_or("usage: DATA_DIR [THREADS] [--keep]")?);
    let threads: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(2);
    let idx = index_dir(&dir);
    if !keep {
        let _ = std::fs::remove_dir_all(&idx);
        let mut ledger = LedgerReader::open(&dir)?;
        let (cpu0, t0) = (cpu_seconds(), Instant::now());
        let mut indexer = Indexer::open(&dir, threads)?;
        let n = index_all(&mut indexer, &mut ledger, 500_000, |_, _| {})?;
        indexer.close()?;
        println!(
            "indexed {n} events: {:.1} CPU s ({:.0} events per CPU second), {:.1} s wall, {threads} threads",
            cpu_seconds() - cpu0,
            n as f64 / (cpu_seconds() - cpu0).max(1e-9),
            t0.elapsed().as_secs_f64()
        );
    }
    report_files(&idx, "as written");
    let index = Index::open_in_dir(&idx)?;
    vigil_index::document::register_tokenizers(&index);
    report_fields(&index)?;
    report_terms(&index)?;
    Ok(())
}
