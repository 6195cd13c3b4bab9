//! Live Windows (issue 20): SigmaHQ's EVTX regression cases, shipped the way Winlogbeat ships
//! them (ECS JSON with `winlog.*`, over Elasticsearch's `_bulk`) to a real `vigil serve`, raise
//! the same named rules, as many times, as `vigil hunt` raises over the `.evtx` files
//! themselves; so do the records rendered as JSON lines. The Winlogbeat documents are built here from the records the `evtx` crate reads,
//! field by field as Winlogbeat writes them (every event data value as text, `event_id` as
//! text as Winlogbeat 8 does, unnamed `<Data>` as `param1…`), not by Vigil's own code.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("VIGIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    if dir.join("sigma/regression_data").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("VIGIL_REQUIRE_CORPUS").as_deref() != Ok("1"),
        "corpus missing at {}",
        dir.display()
    );
    let _ = writeln!(std::io::stderr(), "SKIP: no corpus at {}", dir.display());
    None
}

/// Every `.evtx` under `dir`, sorted.
fn evtx_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("evtx"))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `#text` of an element, or the value itself.
fn text(v: &Value) -> Value {
    match v.get("#text") {
        Some(t) => t.clone(),
        None => v.clone(),
    }
}

fn attr(v: &Value, name: &str) -> Option<Value> {
    v.get("#attributes").and_then(|a| a.get(name)).cloned()
}

/// A value as Winlogbeat writes event data: text.
fn as_text(v: &Value) -> Option<Value> {
    Some(Value::String(match v {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => items
            .iter()
            .filter_map(as_text)
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(_) => return as_text(&text(v)).filter(|t| !t.is_object()),
    }))
}

/// The data of `EventData` or of `UserData`'s element, as Winlogbeat's `event_data` /
/// `user_data`.
fn data(section: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let Value::Object(fields) = section else {
        return out;
    };
    for (name, value) in fields {
        if name == "#attributes" {
            continue;
        }
        // Unnamed <Data> elements: Winlogbeat numbers them param1, param2, …
        if name == "Data" {
            let items = match text(value) {
                Value::Array(items) => items,
                other => vec![other],
            };
            for (n, item) in items.iter().enumerate() {
                if let Some(t) = as_text(item) {
                    out.insert(format!("param{}", n + 1), t);
                }
            }
            continue;
        }
        if let Some(t) = as_text(value) {
            out.insert(name.clone(), t);
        }
    }
    out
}

/// One EVTX record (as the `evtx` crate renders it) as Winlogbeat 8 ships it.
fn winlogbeat(record: &Value) -> Value {
    let event = &record["Event"];
    let system = &event["System"];
    let id = as_text(&text(&system["EventID"])).unwrap();
    let computer = text(&system["Computer"]);
    let provider = attr(&system["Provider"], "Name").unwrap_or(Value::Null);
    let mut winlog = json!({
        "api": "wineventlog",
        "channel": text(&system["Channel"]),
        "event_id": id,
        "provider_name": provider,
        "computer_name": computer,
        "record_id": text(&system["EventRecordID"]),
    });
    if let Some(guid) = attr(&system["Provider"], "Guid") {
        winlog["provider_guid"] = guid;
    }
    if let Some(pid) = attr(&system["Execution"], "ProcessID") {
        winlog["process"] = json!({"pid": pid});
        if let Some(tid) = attr(&system["Execution"], "ThreadID") {
            winlog["process"]["thread"] = json!({"id": tid});
        }
    }
    if let Some(sid) = attr(&system["Security"], "UserID") {
        winlog["user"] = json!({"identifier": sid});
    }
    if let Some(v) = system.get("Version").filter(|v| !v.is_null()) {
        winlog["version"] = text(v);
    }
    let event_data = data(&event["EventData"]);
    if !event_data.is_empty() {
        winlog["event_data"] = Value::Object(event_data);
    }
    if let Some(Value::Object(user)) = event.get("UserData")
        && let Some((element, inner)) = user.iter().find(|(k, _)| *k != "#attributes")
    {
        let mut user_data = data(inner);
        user_data.insert("xml_name".into(), Value::String(element.clone()));
        winlog["user_data"] = Value::Object(user_data);
    }
    let time = attr(&system["TimeCreated"], "SystemTime").unwrap_or(Value::Null);
    json!({
        "@timestamp": time,
        "agent": {"type": "winlogbeat", "version": "8.17.0"},
        "ecs": {"version": "8.0.0"},
        "event": {"code": id, "kind": "event", "provider": provider, "module": null},
        "host": {"name": computer},
        "log": {"level": "information"},
        "winlog": winlog,
    })
}

/// Sum of `count` per rule title over alerts (NDJSON lines or the API's list).
fn counts<'a>(alerts: impl Iterator<Item = &'a Value>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for a in alerts {
        let title = a["rule"]["title"].as_str().unwrap_or_default().to_owned();
        *out.entry(title).or_default() += a["count"].as_u64().unwrap_or(0);
    }
    out
}

/// `vigil hunt --format json` over `files` with the rules of `rule_dirs`: matches per rule.
fn hunt(rule_dirs: &[String], files: &[PathBuf]) -> BTreeMap<String, u64> {
    let mut hunt = common::vigil();
    hunt.arg("hunt");
    for d in rule_dirs {
        hunt.args(["--rules", d]);
    }
    hunt.args(["--format", "json", "--threads", "1"])
        .args(files);
    let out = hunt.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hunted: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    counts(hunted.iter())
}

/// SigmaHQ's Windows rule trees and regression cases.
fn sigma_cases(corpus: &Path) -> (Vec<String>, Vec<PathBuf>) {
    let sigma = corpus.join("sigma");
    let rule_dirs: Vec<String> = [
        "rules/windows",
        "rules-threat-hunting/windows",
        "rules-emerging-threats",
    ]
    .iter()
    .map(|d| sigma.join(d).display().to_string())
    .collect();
    let files = evtx_files(&sigma.join("regression_data"));
    assert_eq!(files.len(), 68, "SigmaHQ's regression cases");
    (rule_dirs, files)
}

/// The same records rendered as JSON (`{"Event": {"System": …}}`, what `evtx_dump -o jsonl`
/// writes), one per line, raise the same rules as the `.evtx` files.
#[test]
fn evtx_records_rendered_as_json_raise_the_same_rules_as_the_evtx_files() {
    let Some(corpus) = corpus() else {
        return;
    };
    let (rule_dirs, files) = sigma_cases(&corpus);
    let from_evtx = hunt(&rule_dirs, &files);
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("records.jsonl");
    let mut out = String::new();
    for file in &files {
        let mut parser = evtx::EvtxParser::from_path(file).unwrap();
        for record in parser.records_json_value() {
            out.push_str(&record.unwrap().data.to_string());
            out.push('\n');
        }
    }
    std::fs::write(&jsonl, out).unwrap();
    let from_json = hunt(&rule_dirs, &[jsonl]);
    assert!(from_evtx.len() >= 60, "{from_evtx:#?}");
    assert_eq!(from_json, from_evtx);
}

#[test]
fn a_winlogbeat_bulk_stream_raises_the_same_rules_as_the_evtx_files() {
    let Some(corpus) = corpus() else {
        return;
    };
    if !common::require_tool("curl") {
        return;
    }
    let (rule_dirs, files) = sigma_cases(&corpus);

    // The EVTX files, through `vigil hunt`.
    let from_evtx = hunt(&rule_dirs, &files);
    let expected_total: u64 = from_evtx.values().sum();
    assert!(
        from_evtx.len() >= 60,
        "the regression cases raise their rules: {from_evtx:#?}"
    );

    // The same records as Winlogbeat documents, over `_bulk`.
    let mut body = String::new();
    let mut records = 0usize;
    for file in &files {
        let mut parser = evtx::EvtxParser::from_path(file).unwrap();
        for record in parser.records_json_value() {
            let record = record.unwrap();
            body.push_str("{\"create\":{\"_index\":\"winlogbeat-8.17.0\"}}\n");
            body.push_str(&winlogbeat(&record.data).to_string());
            body.push('\n');
            records += 1;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ingest = common::create_token(&data, "ingest", "winlogbeat");
    let viewer = common::create_token(&data, "viewer", "reader");
    let mut args = vec!["--no-builtin-rules"];
    for d in &rule_dirs {
        args.extend(["--rules", d.as_str()]);
    }
    let server = common::Server::start(&data, &args);
    let bulk_file = dir.path().join("bulk.ndjson");
    std::fs::write(&bulk_file, &body).unwrap();
    let a = common::curl(
        "POST",
        &format!("{}/_bulk", server.url),
        &[
            format!("Authorization: Bearer {ingest}"),
            "Content-Type: application/x-ndjson".to_owned(),
            "Expect:".to_owned(),
        ],
        Some(&format!("@{}", bulk_file.display())),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let answer = a.json();
    assert_eq!(answer["errors"], false, "{answer:#}");
    assert_eq!(answer["items"].as_array().unwrap().len(), records);

    let auth = [format!("Authorization: Bearer {viewer}")];
    let url = format!("{}/api/v1/alerts?limit=10000", server.url);
    let mut from_bulk = BTreeMap::new();
    let settled = common::wait_until(120, || {
        let api = common::curl("GET", &url, &auth, None).json();
        from_bulk = counts(api["alerts"].as_array().into_iter().flatten());
        from_bulk.values().sum::<u64>() >= expected_total
    });
    // Whatever more might still come in.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let api = common::curl("GET", &url, &auth, None).json();
    from_bulk = counts(api["alerts"].as_array().into_iter().flatten());
    let only_evtx: Vec<_> = from_evtx
        .iter()
        .filter(|(k, v)| from_bulk.get(*k) != Some(v))
        .collect();
    let only_bulk: Vec<_> = from_bulk
        .iter()
        .filter(|(k, v)| from_evtx.get(*k) != Some(v))
        .collect();
    assert!(
        settled && only_evtx.is_empty() && only_bulk.is_empty(),
        "EVTX and Winlogbeat differ ({} records, {} rules from EVTX):\nEVTX: {only_evtx:#?}\nWinlogbeat: {only_bulk:#?}",
        records,
        from_evtx.len()
    );
    common::say(&format!(
        "{records} records: the same {} rules, {expected_total} matches, from EVTX and from Winlogbeat over _bulk",
        from_evtx.len()
    ));
    server.stop();
}
