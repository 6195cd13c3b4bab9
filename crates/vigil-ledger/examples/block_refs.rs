//! Measures the stored forms of events blocks (`vigil_ledger::columns`) over a ledger's events:
//! plain zstd, columns (compression 2) and columns with references (compression 3) under a few
//! reference policies, zstd levels and events per block, with compression and decompression
//! speed. Reads DATA_DIR's ledger; writes nothing.
//!
//! ```text
//! cargo run --release -p vigil-ledger --example block_refs -- DATA_DIR [MAX_EVENTS] [quick|pair]
//! ```

use vigil_ledger::LedgerReader;
use vigil_ledger::columns::{self, RefPolicy};

#[derive(Clone, Copy)]
enum Form {
    Plain,
    Columns,
    Refs(RefPolicy),
}

impl Form {
    fn name(self) -> String {
        match self {
            Form::Plain => "plain".into(),
            Form::Columns => "columns".into(),
            Form::Refs(p) => format!(
                "refs(min {}{})",
                p.min_str,
                if p.ints { ", ints" } else { "" }
            ),
        }
    }
    fn encode(self, framing: &[u8]) -> Vec<u8> {
        match self {
            Form::Plain => framing.to_vec(),
            Form::Columns => columns::encode(framing).expect("encodes"),
            Form::Refs(p) => columns::encode_references_with(framing, p).expect("encodes"),
        }
    }
    fn decode(self, bytes: Vec<u8>, len: usize) -> Vec<u8> {
        match self {
            Form::Plain => bytes,
            Form::Columns => columns::decode(&bytes, len).expect("decodes"),
            Form::Refs(_) => columns::decode_references(&bytes, len).expect("decodes"),
        }
    }
}

fn frame(events: &[Vec<u8>], per_block: usize) -> Vec<Vec<u8>> {
    events
        .chunks(per_block)
        .map(|chunk| {
            let mut b = Vec::new();
            for raw in chunk {
                let mut len = raw.len() as u64;
                while len >= 0x80 {
                    b.push((len as u8) | 0x80);
                    len >>= 7;
                }
                b.push(len as u8);
                b.extend_from_slice(raw);
            }
            b
        })
        .collect()
}

/// Stores `blocks` in `form` at `level`; prints bytes (with 32-byte headers) and speeds.
fn measure(blocks: &[Vec<u8>], form: Form, level: i32, label: &str) -> usize {
    let raw: usize = blocks.iter().map(Vec::len).sum();
    let cpu = cpu_seconds();
    let mut stored = Vec::with_capacity(blocks.len());
    let mut c = zstd::bulk::Compressor::new(level).expect("level");
    for b in blocks {
        stored.push(c.compress(&form.encode(b)).expect("compresses"));
    }
    let secs = cpu_seconds() - cpu;
    let cpu = cpu_seconds();
    let mut d = zstd::bulk::Decompressor::new().expect("decompressor");
    for (s, b) in stored.iter().zip(blocks) {
        let out = d.decompress(s, 2 * b.len() + 4096).expect("decompresses");
        assert_eq!(&form.decode(out, b.len()), b);
    }
    let dsecs = cpu_seconds() - cpu;
    let bytes: usize = stored.iter().map(Vec::len).sum::<usize>() + 32 * stored.len();
    println!(
        "{label:<12} level {level:>2} {:<20} {bytes:>12} bytes  {:.4}× canonical  {:>7.1} MB/s compress  {:>7.1} MB/s decompress (CPU)",
        form.name(),
        bytes as f64 / raw as f64,
        raw as f64 / secs / 1e6,
        raw as f64 / dsecs / 1e6,
    );
    bytes
}

/// User + system CPU seconds of this process (from /proc/self/stat).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of the file (utime, stime) are 11 and 12 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: DATA_DIR [MAX_EVENTS] [quick]")?);
    let max: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(u64::MAX);
    // "quick": the forms at level 3 only; "pair": columns and references at level 3 only.
    let mode = args.next().unwrap_or_default();
    let quick = mode == "quick" || mode == "pair";
    let mut reader = LedgerReader::open(&dir)?;
    let end = reader.end_seq().min(reader.first_seq().saturating_add(max));
    let mut events: Vec<Vec<u8>> = Vec::new();
    reader.for_each_raw(reader.first_seq()..end, |_, raw| {
        events.push(raw.to_vec());
        Ok(())
    })?;
    let blocks = frame(&events, 256);
    let raw: usize = blocks.iter().map(Vec::len).sum();
    println!(
        "{} events, {raw} framed canonical bytes, {} blocks of 256",
        events.len(),
        blocks.len()
    );
    let refs = Form::Refs(RefPolicy::default());
    println!("-- forms, 256 events per block");
    let policies = [
        RefPolicy {
            min_str: 2,
            ints: false,
        },
        RefPolicy {
            min_str: 4,
            ints: true,
        },
        RefPolicy {
            min_str: 8,
            ints: true,
        },
        RefPolicy {
            min_str: 16,
            ints: true,
        },
    ];
    let forms: Vec<Form> = if mode == "pair" {
        vec![Form::Columns, refs]
    } else {
        [Form::Plain, Form::Columns, refs]
            .into_iter()
            .chain(policies.into_iter().map(Form::Refs))
            .collect()
    };
    for form in forms {
        measure(&blocks, form, 3, "256/block");
    }
    if quick {
        return Ok(());
    }
    println!("-- zstd levels, 256 events per block");
    for level in [1, 6, 9, 12] {
        measure(&blocks, Form::Columns, level, "256/block");
        measure(&blocks, refs, level, "256/block");
    }
    println!("-- events per block (the writer's limit is 256: a block never crosses a group)");
    for per in [16, 64, 128, 512, 1024] {
        let b = frame(&events, per);
        measure(&b, Form::Columns, 3, &format!("{per}/block"));
        measure(&b, refs, 3, &format!("{per}/block"));
    }
    Ok(())
}
