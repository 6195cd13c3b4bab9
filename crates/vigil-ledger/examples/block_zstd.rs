//! Measures what zstd makes of a ledger's canonical event bytes under other block settings than
//! the writer's (256-event blocks at level 3): higher levels, bigger blocks, and a dictionary
//! trained on the ledger's first events. Reads DATA_DIR's ledger; writes nothing.
//!
//! ```text
//! cargo run --release -p vigil-ledger --example block_zstd -- DATA_DIR [MAX_EVENTS] [MAX_LEVEL]
//! ```

use std::time::Instant;

use vigil_ledger::LedgerReader;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Framed payloads of `per_block` events each, as the writer frames a block.
fn blocks(events: &[Vec<u8>], per_block: usize) -> Vec<Vec<u8>> {
    events
        .chunks(per_block)
        .map(|chunk| {
            let mut b = Vec::new();
            for e in chunk {
                varint(&mut b, e.len() as u64);
                b.extend_from_slice(e);
            }
            b
        })
        .collect()
}

fn report(name: &str, raw: usize, stored: usize, secs: f64, dsecs: f64) {
    println!(
        "{name:<44} {:>12} bytes  {:>6.3}× canonical  {:>7.1} MB/s compress  {:>7.1} MB/s decompress",
        stored,
        stored as f64 / raw as f64,
        raw as f64 / secs / 1e6,
        raw as f64 / dsecs / 1e6
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: DATA_DIR [MAX_EVENTS]")?);
    let max: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(u64::MAX);
    let max_level: i32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(19);
    let mut reader = LedgerReader::open(&dir)?;
    let end = reader.end_seq().min(reader.first_seq().saturating_add(max));
    let mut events = Vec::new();
    reader.for_each_raw(reader.first_seq()..end, |_, raw| {
        events.push(raw.to_vec());
        Ok(())
    })?;
    let raw: usize = events.iter().map(Vec::len).sum();
    let stored: u64 = reader
        .segments()
        .iter()
        .filter_map(|s| std::fs::metadata(&s.path).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "{} events, {raw} canonical bytes ({:.0} per event); segment files {stored} bytes",
        events.len(),
        raw as f64 / events.len().max(1) as f64
    );

    let plain = |per_block: usize, level: i32| -> Result<(), Box<dyn std::error::Error>> {
        let blocks = blocks(&events, per_block);
        let t = Instant::now();
        let out: Vec<Vec<u8>> = blocks
            .iter()
            .map(|b| zstd::bulk::compress(b, level))
            .collect::<Result<_, _>>()?;
        let secs = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for (c, b) in out.iter().zip(&blocks) {
            zstd::bulk::decompress(c, b.len())?;
        }
        let dsecs = t.elapsed().as_secs_f64();
        let n: usize = out.iter().map(Vec::len).sum::<usize>() + 32 * out.len();
        report(
            &format!("{per_block} events/block, level {level}"),
            raw,
            n,
            secs,
            dsecs,
        );
        Ok(())
    };
    for (per_block, level) in [
        (256, 3),
        (256, 6),
        (256, 9),
        (256, 12),
        (256, 19),
        (1024, 3),
        (4096, 3),
        (4096, 9),
        (16384, 3),
        (16384, 19),
    ] {
        if level <= max_level {
            plain(per_block, level)?;
        }
    }

    // A dictionary trained on the first events (as a writer would train on what it has seen),
    // used for every block after them.
    for (train_events, dict_size) in [(20_000usize, 32 * 1024), (50_000, 112 * 1024)] {
        let train = &events[..train_events.min(events.len())];
        let samples = blocks(train, 16);
        let t = Instant::now();
        let dict = zstd::dict::from_samples(&samples, dict_size)?;
        let train_secs = t.elapsed().as_secs_f64();
        println!(
            "dictionary: {} bytes from {} events in {train_secs:.2} s",
            dict.len(),
            train.len()
        );
        for (per_block, level) in [(16usize, 3), (256, 3), (256, 6), (256, 9), (256, 19)] {
            if level > max_level {
                continue;
            }
            let blocks = blocks(&events, per_block);
            let mut c = zstd::bulk::Compressor::with_dictionary(level, &dict)?;
            let t = Instant::now();
            let out: Vec<Vec<u8>> = blocks
                .iter()
                .map(|b| c.compress(b))
                .collect::<Result<_, _>>()?;
            let secs = t.elapsed().as_secs_f64();
            let mut d = zstd::bulk::Decompressor::with_dictionary(&dict)?;
            let t = Instant::now();
            for (c, b) in out.iter().zip(&blocks) {
                d.decompress(c, b.len())?;
            }
            let dsecs = t.elapsed().as_secs_f64();
            let n: usize = out.iter().map(Vec::len).sum::<usize>() + 32 * out.len() + dict.len();
            report(
                &format!("dict {dict_size}, {per_block} events/block, level {level}"),
                raw,
                n,
                secs,
                dsecs,
            );
        }
        // Without the dictionary, the same small blocks (what live ingest with small group
        // commits writes).
        if train_events == 20_000 {
            plain(16, 3)?;
        }
    }
    Ok(())
}
