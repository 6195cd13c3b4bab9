//! SigmaHQ's Zeek rules (`rules/network/zeek`) give the same matches on Zeek TSV and on Zeek
//! JSON of the same traffic (`zeek-sample-data`). The JSON is read as Zeek's default JSON
//! writer gives it, without `_path`: each record's type then comes from its field signature.

mod common;

use std::collections::BTreeMap;
use std::io::Read;

use vigil_detect::report::load_dir;
use vigil_detect::{Document, RuleSet, load_str};
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
    let sigmahq = docs.len();
    // Rules that must fire: one per log type, on every record of that type only (selected by
    // the logsource table through `event.dataset`, matched on Zeek's own `ts`), and two on
    // Zeek field values, whose counts are computed below from the raw JSON.
    let mut docs = docs;
    let mut inline = String::new();
    for entry in std::fs::read_dir(corpus.join("zeek-sample-data/zeek-json")).unwrap() {
        let name = entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .replace(".json.gz", "");
        inline.push_str(&format!(
            "title: every {name}\nlogsource: {{product: zeek, service: {name}}}\ndetection:\n    selection:\n        ts|startswith: '20'\n    condition: selection\n---\n"
        ));
    }
    inline.push_str("title: wrccdc query\nlogsource: {product: zeek, service: dns}\ndetection:\n    selection:\n        query|endswith: '.wrccdc.org'\n    condition: selection\n---\n");
    inline.push_str("title: vmware cert\nlogsource: {product: zeek, service: x509}\ndetection:\n    selection:\n        certificate.issuer: 'O=VMware Installer'\n    condition: selection\n");
    docs.extend(
        load_str(&inline, "inline")
            .into_iter()
            .filter_map(Result::ok),
    );
    let (set, _) = RuleSet::compile(docs);
    assert!(
        set.len() > 20 + 12,
        "{} of {sigmahq} Zeek rules compiled",
        set.len()
    );
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
        let json_text = gunzip(&base.join(format!("zeek-json/{name}.json.gz")));
        let json: Vec<Event> = json_text
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
        // Independently, from the raw JSON of the records compared.
        let raw: Vec<serde_json::Value> = json_text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(n)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let count = |f: &dyn Fn(&serde_json::Value) -> bool| raw.iter().filter(|r| f(r)).count();
        let mut expected = BTreeMap::new();
        expected.insert(format!("every {name}"), n);
        let wrccdc = count(&|r| {
            r["query"]
                .as_str()
                .is_some_and(|q| q.ends_with(".wrccdc.org"))
        });
        if wrccdc > 0 {
            expected.insert("wrccdc query".to_owned(), wrccdc);
        }
        let vmware = count(&|r| r["certificate.issuer"] == "O=VMware Installer");
        if vmware > 0 {
            expected.insert("vmware cert".to_owned(), vmware);
        }
        if name == "dns" {
            assert!(wrccdc > 0);
        }
        if name == "x509" {
            assert!(vmware > 0);
        }
        let sigmahq_fired: BTreeMap<String, usize> = ft
            .iter()
            .filter(|(k, _)| {
                !k.starts_with("every ") && *k != "wrccdc query" && *k != "vmware cert"
            })
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let ours: BTreeMap<String, usize> = ft
            .iter()
            .filter(|(k, _)| !sigmahq_fired.contains_key(*k))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        assert_eq!(ours, expected, "{name}");
        for (k, v) in sigmahq_fired {
            *total.entry(format!("{name}: {k}")).or_default() += v;
        }
    }
    eprintln!("SigmaHQ Zeek rules fired (TSV = JSON): {total:#?}");
}
