//! SigmaHQ's Zeek rules (`rules/network/zeek`) give the same matches on Zeek TSV and on Zeek
//! JSON of the same traffic (`zeek-sample-data`). The JSON is read as Zeek's default JSON
//! writer gives it, without `_path`: each record's type then comes from its field signature.

mod common;

use std::collections::BTreeMap;
use std::io::Read;

use vigil_detect::report::load_dir;
use vigil_detect::{Document, RuleSet};
use vigil_event::{Event, Timestamp};
use vigil_parse::zeek_tsv::ZeekTsv;
use vigil_parse::{Format, ParseContext, parse_line};

fn gunzip(path: &std::path::Path) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut out)
        .unwrap();
    out
}

fn fired(set: &RuleSet, events: &[Event]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in events {
        for id in set.matches(e) {
            *out.entry(set.rule(id).unwrap().meta.title.clone())
                .or_default() += 1;
        }
    }
    out
}

#[test]
fn zeek_tsv_and_json_give_the_same_rule_matches() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let docs: Vec<Document> = load_dir(&corpus.join("sigma/rules/network/zeek"))
        .into_iter()
        .flat_map(|(_, d)| d)
        .filter_map(Result::ok)
        .collect();
    let (set, _) = RuleSet::compile(docs);
    assert!(set.len() > 20, "{} Zeek rules compiled", set.len());
    let ctx = ParseContext::new(Timestamp::parse("2026-12-07T00:00:00Z").unwrap(), "zeek");
    let base = corpus.join("zeek-sample-data");
    let mut total: BTreeMap<String, usize> = BTreeMap::new();
    for entry in std::fs::read_dir(base.join("zeek-default")).unwrap() {
        let tsv_path = entry.unwrap().path();
        let name = tsv_path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".log.gz", "");
        let mut reader = ZeekTsv::new();
        let tsv: Vec<Event> = gunzip(&tsv_path)
            .lines()
            .filter_map(|l| reader.line(l, &ctx))
            .collect();
        let json: Vec<Event> = gunzip(&base.join(format!("zeek-json/{name}.json.gz")))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                // Zeek's default JSON writer has no `_path`: cut it out.
                let rest = l.strip_prefix("{\"_path\":\"").unwrap();
                let bare = format!("{{{}", &rest[rest.find("\",").unwrap() + 2..]);
                parse_line(bare.as_bytes(), Format::Auto, &ctx)
            })
            .collect();
        // The two writers flushed a handful of records apart: compare the records both have.
        let n = tsv.len().min(json.len());
        assert!(n > 0, "{name}");
        for (t, j) in tsv.iter().zip(&json).take(n) {
            assert_eq!(
                t.get_str("event.dataset"),
                Some(format!("zeek.{name}").as_str())
            );
            assert_eq!(t.get_str("event.dataset"), j.get_str("event.dataset"));
            for f in [
                "source.ip",
                "source.port",
                "destination.ip",
                "destination.port",
            ] {
                assert_eq!(t.get(f), j.get(f), "{name} {f}");
            }
        }
        let (ft, fj) = (fired(&set, &tsv[..n]), fired(&set, &json[..n]));
        assert_eq!(ft, fj, "{name}: rule matches");
        for (k, v) in ft {
            *total.entry(format!("{name}: {k}")).or_default() += v;
        }
    }
    eprintln!("Zeek rules fired (TSV = JSON): {total:#?}");
}
