//! Measures the "columns" block transform (`vigil_ledger::columns`): a ledger's events in
//! blocks of the writer's size, stored with zstd as today and rearranged by field name before
//! zstd, at a few levels, with compression and decompression speed. Reads DATA_DIR's ledger;
//! writes nothing.
//!
//! ```text
//! cargo run --release -p vigil-ledger --example block_columns -- DATA_DIR [MAX_EVENTS]
//! ```

use std::time::Instant;

use vigil_ledger::LedgerReader;
use vigil_ledger::columns;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: DATA_DIR [MAX_EVENTS]")?);
    let max: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(u64::MAX);
    let mut reader = LedgerReader::open(&dir)?;
    let end = reader.end_seq().min(reader.first_seq().saturating_add(max));
    // Framed 256-event blocks, as the writer frames them.
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let mut n = 0u64;
    reader.for_each_raw(reader.first_seq()..end, |_, raw| {
        if n.is_multiple_of(256) {
            blocks.push(Vec::new());
        }
        n += 1;
        let b = blocks.last_mut().expect("pushed");
        let mut len = raw.len() as u64;
        while len >= 0x80 {
            b.push((len as u8) | 0x80);
            len >>= 7;
        }
        b.push(len as u8);
        b.extend_from_slice(raw);
        Ok(())
    })?;
    let raw: usize = blocks.iter().map(Vec::len).sum();
    println!(
        "{n} events, {raw} framed canonical bytes, {} blocks",
        blocks.len()
    );
    for level in [1, 3, 6] {
        for transform in [false, true] {
            let t = Instant::now();
            let mut stored = Vec::with_capacity(blocks.len());
            let mut c = zstd::bulk::Compressor::new(level)?;
            for b in &blocks {
                let input = if transform {
                    columns::encode(b).ok_or("a block did not encode")?
                } else {
                    b.clone()
                };
                stored.push(c.compress(&input)?);
            }
            let secs = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let mut d = zstd::bulk::Decompressor::new()?;
            for (s, b) in stored.iter().zip(&blocks) {
                let out = d.decompress(s, 2 * b.len() + 1024)?;
                let out = if transform {
                    columns::decode(&out, b.len()).ok_or("a block did not decode")?
                } else {
                    out
                };
                assert_eq!(&out, b);
            }
            let dsecs = t.elapsed().as_secs_f64();
            let bytes: usize = stored.iter().map(Vec::len).sum::<usize>() + 32 * stored.len();
            println!(
                "level {level:>2} {:<8} {bytes:>12} bytes  {:.4}× canonical  {:>6.1} MB/s compress  {:>6.1} MB/s decompress",
                if transform { "columns" } else { "plain" },
                bytes as f64 / raw as f64,
                raw as f64 / secs / 1e6,
                raw as f64 / dsecs / 1e6,
            );
        }
    }
    Ok(())
}
