//! Measures what other layouts of the `text` field would cost, on a ledger's events: each
//! variant is built with one writer thread from the same events, merged into one segment, and
//! its bytes reported per field and part.
//!
//! ```text
//! cargo run --release -p vigil-index --example index_variants -- DATA_DIR WORK_DIR VARIANT...
//! ```
//!
//! Variants: `base` (this build's layout), `nopos` (words without positions or frequencies),
//! `pairs` (`nopos` plus a term per pair of consecutive words, doc ids only).

use std::collections::HashMap;

use tantivy::schema::{IndexRecordOption, TextFieldIndexing, TextOptions};
use tantivy::{Index, IndexWriter, TantivyDocument};
use vigil_event::Event;
use vigil_index::document::{WORDS_TOKENIZER, document, register_tokenizers, schema};
use vigil_ledger::LedgerReader;
use vigil_query::exec::{search_text, words};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, work, variants @ ..] = &args[..] else {
        return Err("usage: DATA_DIR WORK_DIR VARIANT...".into());
    };
    for variant in variants {
        let (base, fields) = schema();
        let mut b = tantivy::schema::Schema::builder();
        for (_, entry) in base.fields() {
            let mut entry = entry.clone();
            if entry.name() == "text" && variant != "base" {
                let opts = TextOptions::default().set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer(WORDS_TOKENIZER)
                        .set_index_option(IndexRecordOption::Basic)
                        .set_fieldnorms(false),
                );
                entry = tantivy::schema::FieldEntry::new_text("text".into(), opts);
            }
            b.add_field(entry);
        }
        let pair = b.add_text_field(
            "pair",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("raw")
                    .set_index_option(IndexRecordOption::Basic)
                    .set_fieldnorms(false),
            ),
        );
        let dir = std::path::Path::new(work).join(variant);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let index = Index::create_in_dir(&dir, b.build())?;
        register_tokenizers(&index);
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 200_000_000)?;
        let mut reader = LedgerReader::open(std::path::Path::new(data))?;
        reader.for_each_raw(reader.first_seq()..reader.end_seq(), |seq, raw| {
            let Ok(event) = Event::from_canonical(raw) else {
                return Ok(());
            };
            let mut doc: TantivyDocument = document(&fields, seq, &event);
            if variant == "pairs" {
                let w: Vec<String> = words(search_text(&event)).collect();
                for p in w.windows(2) {
                    doc.add_text(pair, format!("{} {}", p[0], p[1]));
                }
            }
            writer
                .add_document(doc)
                .map_err(|e| vigil_ledger::LedgerError::Invalid(e.to_string()))?;
            Ok(())
        })?;
        writer.commit()?;
        let ids = index.searchable_segment_ids()?;
        if ids.len() > 1 {
            writer.merge(&ids).wait()?;
        }
        writer.wait_merging_threads()?;
        let index = Index::open_in_dir(&dir)?;
        register_tokenizers(&index);
        let searcher = index.reader()?.searcher();
        let usage = searcher.space_usage()?;
        let mut per: HashMap<String, u64> = HashMap::new();
        for segment in usage.segments() {
            for (part, usage) in [
                ("terms", segment.termdict()),
                ("postings", segment.postings()),
                ("positions", segment.positions()),
                ("columns", segment.fast_fields()),
            ] {
                for f in usage.fields() {
                    let name = f.field_name().split('.').next().unwrap_or("?").to_owned();
                    *per.entry(format!("{name}/{part}")).or_default() += f.total().get_bytes();
                }
            }
        }
        let total: u64 = std::fs::read_dir(&dir)?
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum();
        let mut rows: Vec<_> = per.into_iter().filter(|(_, b)| *b > 0).collect();
        rows.sort_by_key(|(_, b)| std::cmp::Reverse(*b));
        println!(
            "variant {variant}: {total} bytes, {} segment(s)",
            searcher.segment_readers().len()
        );
        for (k, b) in rows {
            println!("  {k:<24} {b:>12}");
        }
    }
    Ok(())
}
