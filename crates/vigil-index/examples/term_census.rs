//! Counts the keyword, number and address terms the index makes of a ledger's events, by field
//! path and value type: which fields the index's term bytes go to.
//!
//! ```text
//! cargo run --release -p vigil-index --example term_census -- DATA_DIR [MAX_EVENTS]
//! ```

use std::collections::{HashMap, HashSet};

use vigil_event::{Event, Value};
use vigil_index::document::{MAX_KEYWORD_LEN, TEXT_ONLY_FIELDS, as_ip};
use vigil_ledger::LedgerReader;
use vigil_query::exec::numeric;

#[derive(Default)]
struct Census {
    postings: u64,
    distinct: HashSet<String>,
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
    let mut by: HashMap<(String, &'static str, &'static str), Census> = HashMap::new();
    reader.for_each_raw(reader.first_seq()..end, |_, raw| {
        let Ok(event) = Event::from_canonical(raw) else {
            return Ok(());
        };
        for (path, value) in event.fields() {
            if TEXT_ONLY_FIELDS.contains(&path) {
                continue;
            }
            let items: &[Value] = match value {
                Value::List(items) => items,
                other => std::slice::from_ref(other),
            };
            for item in items {
                let ty = match item {
                    Value::Int(_) => "int",
                    Value::Float(_) => "float",
                    Value::Str(_) => "str",
                    Value::Ip(_) => "ip",
                    Value::Bool(_) => "bool",
                    _ => "other",
                };
                let lower = item.to_string().to_lowercase();
                let mut add = |kind: &'static str, term: String| {
                    let c = by.entry((path.to_owned(), ty, kind)).or_default();
                    c.postings += 1;
                    c.distinct.insert(term);
                };
                if lower.len() <= MAX_KEYWORD_LEN {
                    add("kw", lower);
                }
                if let Some(x) = numeric(item)
                    && !x.is_nan()
                {
                    add("num", format!("{x}"));
                }
                if let Some(ip) = as_ip(item) {
                    add("ip", ip.to_string());
                }
            }
        }
        Ok(())
    })?;
    let mut rows: Vec<_> = by
        .into_iter()
        .map(|((path, ty, kind), c)| {
            let dict: usize = c.distinct.iter().map(|t| t.len() + path.len() + 1).sum();
            (path, ty, kind, c.postings, c.distinct.len(), dict)
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.3 + r.5 as u64));
    println!(
        "{:<36} {:>6} {:>4} {:>12} {:>10} {:>12}",
        "path", "type", "kind", "postings", "distinct", "dict bytes"
    );
    for (path, ty, kind, postings, distinct, dict) in rows {
        println!("{path:<36} {ty:>6} {kind:>4} {postings:>12} {distinct:>10} {dict:>12}");
    }
    Ok(())
}
