//! Winlogbeat's own output (the corpus's `logprep-winlogbeat`: Winlogbeat 7.2 System/Security/
//! Application events, Winlogbeat 7.10 with its Sysmon module) parses with no `parse_error`
//! into events with the names an EVTX record has; every expectation is counted here from the
//! raw JSON with serde_json, independently of the parser.

mod common;

use std::collections::BTreeMap;

use common::corpus_with;
use serde_json::Value as Json;
use vigil_event::{Event, Timestamp, Value, tag};
use vigil_parse::{Format, ParseContext, parse_line};

/// A JSON scalar as the text Sigma compares.
fn text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

fn read(file: &str) -> Option<Vec<(Json, Event)>> {
    let path = corpus_with("logprep-winlogbeat")?
        .join("logprep-winlogbeat")
        .join(file);
    let text = std::fs::read_to_string(path).unwrap();
    let ctx = ParseContext::new(Timestamp::parse("2026-01-01T00:00:00Z").unwrap(), "t");
    Some(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                (
                    serde_json::from_str(l).unwrap(),
                    parse_line(l.as_bytes(), Format::Auto, &ctx),
                )
            })
            .collect(),
    )
}

#[test]
fn winlogbeat_system_security_application() {
    let Some(lines) = read("wineventlog_raw.jsonl") else {
        return;
    };
    assert_eq!(lines.len(), 559);
    let mut channels: BTreeMap<String, usize> = BTreeMap::new();
    let (mut data_fields, mut logons, mut logon_users) = (0usize, 0usize, 0usize);
    for (raw, e) in &lines {
        assert!(!e.has_tag(tag::PARSE_ERROR), "{raw}");
        assert_eq!(e.get_str("vigil.parser"), Some("winlog"), "{raw}");
        let w = &raw["winlog"];
        *channels
            .entry(w["channel"].as_str().unwrap().to_owned())
            .or_default() += 1;
        // System fields under their EVTX names.
        assert_eq!(e.get_str("Channel"), w["channel"].as_str());
        assert_eq!(
            e.get("EventID").and_then(Value::as_i64),
            Some(text(&w["event_id"]).parse::<i64>().unwrap())
        );
        assert_eq!(e.get_str("event.code"), Some(text(&w["event_id"]).as_str()));
        assert_eq!(e.get_str("Provider_Name"), w["provider_name"].as_str());
        assert_eq!(e.get_str("Computer"), w["computer_name"].as_str());
        assert_eq!(
            e.get("EventRecordID").and_then(Value::as_i64),
            w["record_id"].as_i64()
        );
        // Every event data field under its own name, with its value (masking aside).
        if let Some(Json::Object(data)) = w.get("event_data") {
            for (k, v) in data {
                let name: String = k.chars().filter(|c| !c.is_whitespace()).collect();
                let got = e.get(&name).map(value_text);
                assert!(
                    got.as_deref() == Some(text(v).as_str())
                        || got.as_deref().is_some_and(|g| g.contains("[REDACTED")),
                    "{name}: {got:?} vs {v}"
                );
                assert_eq!(e.get(&format!("winlog.event_data.{k}")), None, "moved");
                data_fields += 1;
            }
        }
        if w["channel"] == "Security" && text(&w["event_id"]) == "4624" {
            logons += 1;
            assert_eq!(e.get_str("event.category"), Some("authentication"));
            assert_eq!(e.get_str("event.outcome"), Some("success"));
            // Winlogbeat 7 moved the logon's target user to `user.*`: Sigma's name again.
            let user = w["event_data"]["TargetUserName"]
                .as_str()
                .or(raw["user"]["name"].as_str());
            if let Some(user) = user {
                logon_users += 1;
                assert_eq!(e.get_str("TargetUserName"), Some(user));
                assert_eq!(e.get_str("user.name"), Some(user));
            }
        }
        // The event time is Winlogbeat's @timestamp.
        assert_eq!(
            e.timestamp(),
            Timestamp::parse(raw["@timestamp"].as_str().unwrap()).unwrap()
        );
    }
    assert_eq!(channels["System"], 369);
    assert_eq!(channels["Security"], 136);
    assert_eq!(channels["Application"], 54);
    assert!(
        data_fields > 1000,
        "{data_fields} event data fields checked"
    );
    assert!(
        logons > 0 && logon_users == logons,
        "{logons} {logon_users}"
    );
    eprintln!(
        "winlogbeat 7.2: {} events, {data_fields} event data fields, {logons} logons",
        lines.len()
    );
}

#[test]
fn winlogbeat_sysmon_module_fields_come_back_to_sysmon_names() {
    let Some(lines) = read("amides_input.jsonl") else {
        return;
    };
    assert_eq!(lines.len(), 14);
    for (raw, e) in &lines {
        assert!(!e.has_tag(tag::PARSE_ERROR), "{raw}");
        assert_eq!(
            e.get_str("Channel"),
            Some("Microsoft-Windows-Sysmon/Operational")
        );
        assert_eq!(e.get("EventID").and_then(Value::as_i64), Some(1));
        assert_eq!(e.get_str("Image"), raw["process"]["executable"].as_str());
        assert_eq!(
            e.get_str("CommandLine"),
            raw["process"]["command_line"].as_str()
        );
        assert_eq!(
            e.get_str("ParentImage"),
            raw["process"]["parent"]["executable"].as_str()
        );
        let user = format!(
            "{}\\{}",
            raw["user"]["domain"].as_str().unwrap(),
            raw["user"]["name"].as_str().unwrap()
        );
        assert_eq!(e.get_str("User"), Some(user.as_str()));
        // Hashes as Sysmon writes them, from the md5/sha256 Winlogbeat split out.
        let md5 = raw["hash"]["md5"].as_str().unwrap().to_ascii_uppercase();
        assert!(
            e.get_str("Hashes")
                .is_some_and(|h| h.contains(&format!("MD5={md5}"))),
            "{:?}",
            e.get_str("Hashes")
        );
        // What stayed in event_data keeps its value.
        for (k, v) in raw["winlog"]["event_data"].as_object().unwrap() {
            assert_eq!(e.get(k).map(value_text), Some(text(v)), "{k}");
        }
        assert_eq!(e.get_str("event.category"), Some("process"));
    }
}

/// The first member of a zip file (stored or deflated, sizes in the local header): the
/// corpus's OTRF Security Datasets are zipped JSON lines.
fn unzip_first(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    assert_eq!(&bytes[..4], b"PK\x03\x04", "a zip local file header");
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]) as usize;
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let (method, size) = (u16_at(8), u32_at(18) as usize);
    let start = 30 + u16_at(26) + u16_at(28);
    let data = &bytes[start..start + size];
    match method {
        0 => data.to_vec(),
        8 => {
            let mut out = Vec::new();
            flate2::read::DeflateDecoder::new(data)
                .read_to_end(&mut out)
                .unwrap();
            out
        }
        m => panic!("zip method {m}"),
    }
}

/// OTRF Security Datasets (Mordor) ship Windows events as NXLog writes them: `EventID`,
/// `Channel`, `SourceName`, `Hostname` and the event data at the top level.
#[test]
fn nxlog_shaped_security_datasets() {
    let Some(corpus) = corpus_with("logprep-winlogbeat") else {
        return;
    };
    let zip = corpus.join(
        "security-datasets/datasets/atomic/windows/credential_access/host/psh_lsass_memory_dump_comsvcs.zip",
    );
    let Ok(bytes) = std::fs::read(&zip) else {
        eprintln!("SKIP: {} missing", zip.display());
        return;
    };
    let text = String::from_utf8(unzip_first(&bytes)).unwrap();
    let ctx = ParseContext::new(Timestamp::parse("2026-01-01T00:00:00Z").unwrap(), "t");
    let mut n = 0;
    let mut sysmon_process = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let raw: Json = serde_json::from_str(line).unwrap();
        let e = parse_line(line.as_bytes(), Format::Auto, &ctx);
        n += 1;
        assert!(!e.has_tag(tag::PARSE_ERROR), "{line}");
        assert_eq!(e.get_str("winlog.shipper"), Some("nxlog"), "{line}");
        assert_eq!(e.get_str("Provider_Name"), raw["SourceName"].as_str());
        assert_eq!(e.get_str("Computer"), raw["Hostname"].as_str());
        assert_eq!(e.get_str("Channel"), raw["Channel"].as_str());
        // `2020-10-18 07:50:06.220`: the event time.
        let t = raw["TimeCreated"].as_str().unwrap().replace(' ', "T") + "Z";
        assert_eq!(e.timestamp(), Timestamp::parse(&t).unwrap(), "{line}");
        assert_eq!(
            e.get("EventID").and_then(Value::as_i64),
            Some(text_of(&raw["EventID"]).parse().unwrap())
        );
        if raw["Channel"] == "Microsoft-Windows-Sysmon/Operational" && raw["EventID"] == 1 {
            sysmon_process += 1;
            assert_eq!(
                e.get_str("process.command_line"),
                raw["CommandLine"].as_str()
            );
            assert_eq!(e.get_str("event.category"), Some("process"));
        }
    }
    assert_eq!(n, 184);
    eprintln!(
        "security datasets (NXLog shape): {n} events, {sysmon_process} Sysmon process creations"
    );
}

fn text_of(v: &Json) -> String {
    text(v)
}
