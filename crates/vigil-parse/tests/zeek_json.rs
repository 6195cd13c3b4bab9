//! Every record of every Zeek JSON log and every Suricata EVE file of the corpus: 0
//! `parse_error`, the right dataset, and the ECS fields each type gets, checked against counts
//! computed here from the raw JSON. Zeek's default JSON output has no `_path`: each record is
//! read a second time with `_path` cut out, and must give the same event (its type then comes
//! from its field signature).

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use common::corpus;
use serde_json::Value as Json;
use vigil_event::{Event, Timestamp, Value};
use vigil_parse::{Format, ParseContext, parse_line};

fn gunzip(path: &Path) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut out)
        .unwrap();
    out
}

fn ctx() -> ParseContext {
    ParseContext::new(Timestamp::parse("2026-12-07T00:00:00Z").unwrap(), "t")
}

/// The line with its leading `"_path":"…",` member cut out (Zeek's default JSON output).
fn without_path(line: &str) -> String {
    let rest = line
        .strip_prefix("{\"_path\":\"")
        .expect("the corpus writes _path first");
    let end = rest.find("\",").unwrap();
    format!("{{{}", &rest[end + 2..])
}

fn fields_but(e: &Event, skip: &[&str]) -> BTreeMap<String, Value> {
    e.fields()
        .filter(|(k, _)| !skip.contains(k))
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
}

/// For each Zeek type: (raw Zeek field, ECS field it must give).
const ECS: &[(&str, &str, &str)] = &[
    ("dns", "query", "dns.question.name"),
    ("dns", "rcode_name", "dns.response_code"),
    (
        "x509",
        "certificate.subject",
        "x509.subject.distinguished_name",
    ),
    (
        "x509",
        "certificate.issuer",
        "x509.issuer.distinguished_name",
    ),
    ("notice", "note", "rule.name"),
    ("notice", "msg", "message"),
    ("ssh", "auth_success", "event.outcome"),
    ("ssh", "client", "user_agent.original"),
    ("smtp", "mailfrom", "email.from.address"),
    ("smtp", "subject", "email.subject"),
    ("ftp", "user", "user.name"),
    ("ftp", "command", "event.action"),
    ("syslog", "message", "message"),
    ("known_hosts", "host", "host.ip"),
    ("dpd", "analyzer", "network.protocol"),
];

#[test]
fn every_zeek_json_record_with_and_without_path() {
    let Some(dir) = corpus() else { return };
    let ctx = ctx();
    let mut types = 0;
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.join("zeek-sample-data/zeek-json")).unwrap() {
        let path = entry.unwrap().path();
        let name = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".json.gz", "");
        let dataset = format!("zeek.{name}");
        let text = gunzip(&path);
        let mut raw_counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut ecs_counts: BTreeMap<&str, usize> = BTreeMap::new();
        let (mut conn_ids, mut sources) = (0, 0);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let raw: Json = serde_json::from_str(line).unwrap();
            let with = parse_line(line.as_bytes(), Format::Auto, &ctx);
            let bare = parse_line(without_path(line).as_bytes(), Format::Auto, &ctx);
            for e in [&with, &bare] {
                assert!(!e.has_tag(vigil_event::tag::PARSE_ERROR), "{name}: {line}");
                assert_eq!(e.get_str("event.dataset"), Some(dataset.as_str()), "{line}");
                assert_eq!(e.get_str("observer.product"), Some("zeek"));
            }
            assert_eq!(
                fields_but(&with, &["_path", "event.original"]),
                fields_but(&bare, &["_path", "event.original"]),
                "{name}: the same record without _path"
            );
            if raw.get("id.orig_h").is_some() {
                conn_ids += 1;
            }
            if with.get("source.ip").is_some() {
                sources += 1;
                assert_eq!(
                    with.get("source.ip").unwrap().to_string(),
                    raw["id.orig_h"].as_str().unwrap()
                );
            }
            for (kind, from, to) in ECS {
                if *kind != name {
                    continue;
                }
                if raw.get(*from).is_some_and(|v| !v.is_null()) {
                    *raw_counts.entry(to).or_default() += 1;
                }
                if with.contains(to) {
                    *ecs_counts.entry(to).or_default() += 1;
                }
            }
            checked += 1;
        }
        assert_eq!(sources, conn_ids, "{name}: source.ip from id.orig_h");
        assert_eq!(raw_counts, ecs_counts, "{name}: ECS fields");
        eprintln!("{name}: {ecs_counts:?}");
        types += 1;
    }
    assert_eq!(types, 12);
    assert!(checked > 58_000, "{checked} records");
}

#[test]
fn every_suricata_eve_record() {
    let Some(dir) = corpus() else { return };
    let ctx = ctx();
    let mut files = 0;
    for entry in std::fs::read_dir(dir.join("suricata-sample-data/samples")).unwrap() {
        let path = entry.unwrap().path().join("alerts-only.json");
        if !path.exists() {
            continue;
        }
        let raw: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let records = raw.as_array().unwrap();
        let (mut signatures, mut rule_names, mut alerts, mut kinds) = (0, 0, 0, 0);
        for r in records {
            let kind = r["event_type"].as_str().unwrap();
            let e = parse_line(r.to_string().as_bytes(), Format::Auto, &ctx);
            assert!(!e.has_tag(vigil_event::tag::PARSE_ERROR), "{r}");
            assert_eq!(
                e.get_str("event.dataset"),
                Some(format!("suricata.{kind}").as_str())
            );
            assert_eq!(
                e.get("source.ip").map(|v| v.to_string()).as_deref(),
                r["src_ip"].as_str()
            );
            assert_eq!(
                e.get("destination.port").and_then(Value::as_i64),
                r["dest_port"].as_i64()
            );
            if r["alert"]["signature"].is_string() {
                signatures += 1;
            }
            if kind == "alert" {
                alerts += 1;
            }
            if e.get_str("rule.name").is_some() {
                rule_names += 1;
            }
            if e.get_str("event.kind") == Some("alert") {
                kinds += 1;
            }
        }
        assert_eq!(rule_names, signatures, "{}", path.display());
        assert_eq!(kinds, alerts, "{}", path.display());
        assert!(!records.is_empty());
        eprintln!(
            "{}: {} records, {alerts} alerts",
            path.display(),
            records.len()
        );
        files += 1;
    }
    assert_eq!(files, 2);
}
