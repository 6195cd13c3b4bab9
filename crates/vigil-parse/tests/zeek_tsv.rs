//! Zeek TSV and Zeek JSON of the same traffic (`zeek-sample-data`: the same WRCCDC capture
//! written by both of Zeek's writers, 12 log types) give the same events: for every log type,
//! 0 `parse_error`, the same number of records, and record by record the same fields with the
//! same values (times to the microsecond, intervals to the TSV writer's 6 decimals), except
//! `_write_ts` (only the JSON writer has it) and the raw line.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use common::corpus;
use vigil_event::{Event, Timestamp, Value};
use vigil_parse::zeek_tsv::ZeekTsv;
use vigil_parse::{Format, ParseContext, parse_line};

fn gunzip(path: &PathBuf) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut out)
        .unwrap();
    out
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => (x - y).abs() <= 5e-7 * x.abs().max(1.0),
        (Value::Float(x), Value::Int(y)) | (Value::Int(y), Value::Float(x)) => {
            (x - *y as f64).abs() < 1e-6
        }
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        _ => a == b,
    }
}

fn comparable(e: &Event) -> BTreeMap<String, Value> {
    e.fields()
        .filter(|(k, _)| !matches!(*k, "_write_ts" | "event.original" | "vigil.received"))
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
}

#[test]
fn tsv_and_json_of_the_same_traffic_give_the_same_events() {
    let Some(dir) = corpus() else { return };
    let ctx = ParseContext::new(Timestamp::parse("2026-12-07T00:00:00Z").unwrap(), "zeek");
    let mut types = 0;
    for entry in std::fs::read_dir(dir.join("zeek-sample-data/zeek-default")).unwrap() {
        let tsv_path = entry.unwrap().path();
        let name = tsv_path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".log.gz", "");
        let json_path = dir.join(format!("zeek-sample-data/zeek-json/{name}.json.gz"));
        let tsv_text = gunzip(&tsv_path);
        let json_text = gunzip(&json_path);
        let mut reader = ZeekTsv::new();
        let from_tsv: Vec<Event> = tsv_text
            .lines()
            .filter_map(|l| reader.line(l, &ctx))
            .collect();
        let from_json: Vec<Event> = json_text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| parse_line(l.as_bytes(), Format::Auto, &ctx))
            .collect();
        // Independently: records are the non-comment lines.
        let records = tsv_text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count();
        assert_eq!(from_tsv.len(), records, "{name}");
        let errors: Vec<_> = from_tsv
            .iter()
            .filter(|e| e.has_tag(vigil_event::tag::PARSE_ERROR))
            .map(|e| e.get_str("error.message").unwrap_or("").to_owned())
            .take(3)
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
        // The JSON sample of a few types holds a handful fewer records (the writers flushed at
        // different moments): compare the records both have, in order, by uid/ts.
        let n = from_tsv.len().min(from_json.len());
        assert!(
            from_tsv.len().abs_diff(from_json.len()) * 100 <= from_tsv.len().max(1),
            "{name}: {} TSV vs {} JSON records",
            from_tsv.len(),
            from_json.len()
        );
        let mut differing = Vec::new();
        for (t, j) in from_tsv.iter().zip(&from_json).take(n) {
            let (t, j) = (comparable(t), comparable(j));
            let keys: std::collections::BTreeSet<&String> = t.keys().chain(j.keys()).collect();
            for k in keys {
                let ok = match (t.get(k), j.get(k)) {
                    (Some(a), Some(b)) => same(a, b),
                    _ => false,
                };
                if !ok && differing.len() < 5 {
                    differing.push(format!("{k}: tsv {:?} json {:?}", t.get(k), j.get(k)));
                }
            }
        }
        assert!(differing.is_empty(), "{name}: {differing:#?}");
        assert_eq!(
            from_tsv[0].timestamp(),
            from_json[0].timestamp(),
            "{name}: event time"
        );
        types += 1;
    }
    assert_eq!(types, 12);
}
