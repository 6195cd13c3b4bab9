//! Side by side: the same ledger events indexed with this build's schema (format 2: no word
//! positions) and with format 1's (`text` with frequencies and positions), the documents built
//! by the same [`vigil_index::document::document`]. Prints bytes per part of each index.
//!
//! ```text
//! cargo run --release -p vigil-index --example positions_cost -- DATA_DIR [MAX_EVENTS]
//! ```

use std::time::Instant;

use tantivy::schema::{IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::{Index, IndexWriter};
use vigil_event::Event;
use vigil_index::document::{WORDS_TOKENIZER, document, register_tokenizers, schema};
use vigil_ledger::LedgerReader;

/// Format 1's schema: the same fields in the same order, `text` with positions.
fn format1_schema() -> Schema {
    let (current, _) = schema();
    let mut b = Schema::builder();
    for (_, entry) in current.fields() {
        if entry.name() == "text" {
            let words = TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(WORDS_TOKENIZER)
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions)
                    .set_fieldnorms(false),
            );
            b.add_text_field("text", words);
        } else {
            b.add_field(entry.clone());
        }
    }
    b.build()
}

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
    let (_, fields) = schema();
    for (name, schema) in [("format 1", format1_schema()), ("format 2", schema().0)] {
        let tmp = tempfile::tempdir()?;
        let index = Index::create_in_dir(tmp.path(), schema)?;
        register_tokenizers(&index);
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 96 << 20)?;
        let t = Instant::now();
        reader.for_each_raw(reader.first_seq()..end, |seq, raw| {
            if let Ok(event) = Event::from_canonical(raw) {
                writer
                    .add_document(document(&fields, seq, &event))
                    .map_err(|e| vigil_ledger::LedgerError::Invalid(e.to_string()))?;
            }
            Ok(())
        })?;
        writer.commit()?;
        writer.wait_merging_threads()?;
        let secs = t.elapsed().as_secs_f64();
        let usage = index.reader()?.searcher().space_usage()?;
        let mut parts: std::collections::BTreeMap<String, u64> = Default::default();
        for segment in usage.segments() {
            for (part, usage) in [
                ("terms", segment.termdict()),
                ("postings", segment.postings()),
                ("positions", segment.positions()),
                ("columns", segment.fast_fields()),
            ] {
                for f in usage.fields() {
                    let field = f.field_name().split('.').next().unwrap_or("?");
                    *parts.entry(format!("{field}/{part}")).or_default() += f.total().get_bytes();
                }
            }
        }
        let total: u64 = std::fs::read_dir(tmp.path())?
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        println!(
            "{name}: {} events indexed in {secs:.1} s (one thread), {total} bytes on disk",
            end - reader.first_seq()
        );
        for (part, bytes) in parts.iter().filter(|(_, b)| **b > 0) {
            println!("  {part:>18}: {bytes:>12}");
        }
    }
    Ok(())
}
