//! End-to-end `vigil agent` `[[folder]]`: a real `vigil serve` and the real agent binary
//! watching a folder laid out like a synced CloudTrail bucket prefix
//! (`AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/`), filled with the corpus's real delivery
//! files (`invictus-aws-cloudtrail`), gzip and plain. Every record must be in the ledger
//! exactly once as a CloudTrail event — across files that appear while the agent runs, a
//! `kill -9` in the middle of shipping, idle restarts, and a corrupt file that must not block
//! the files after it. Counts come from the raw JSON (each record's `eventID`).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{create_token, vigil};

fn corpus_deliveries() -> Option<Vec<PathBuf>> {
    let corpus = std::env::var_os("VIGIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    let dir = corpus.join("invictus-aws-cloudtrail/CloudTrail");
    let Ok(entries) = fs::read_dir(&dir) else {
        assert!(
            std::env::var("VIGIL_REQUIRE_CORPUS").as_deref() != Ok("1"),
            "corpus missing at {}",
            dir.display()
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIP: no CloudTrail deliveries at {}",
            dir.display()
        );
        return None;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Some(files)
}

/// The `eventID`s of a delivery file, read from the raw JSON.
fn event_ids(path: &Path) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    doc["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["eventID"].as_str().unwrap().to_owned())
        .collect()
}

/// Puts a delivery into the bucket-like tree, gzip-compressed (as CloudTrail writes it) or
/// plain, atomically (written beside under a dot-name, then renamed, as sync tools do).
fn deliver(root: &Path, src: &Path, gzip: bool) {
    let day = root.join("AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/10");
    fs::create_dir_all(&day).unwrap();
    let name = src.file_name().unwrap().to_string_lossy().into_owned();
    let bytes = fs::read(src).unwrap();
    let (name, bytes) = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&bytes).unwrap();
        (format!("{name}.gz"), enc.finish().unwrap())
    } else {
        (name, bytes)
    };
    let tmp = day.join(format!(".{name}.sync"));
    fs::write(&tmp, bytes).unwrap();
    fs::rename(&tmp, day.join(name)).unwrap();
}

struct Agent(Child);

impl Agent {
    fn start(config: &Path) -> Agent {
        Agent(
            vigil()
                .args(["agent", "--config"])
                .arg(config)
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    fn kill_9(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How many times each CloudTrail `eventID` is in the ledger; also checks each is a parsed
/// CloudTrail event from the folder's source.
fn stored(data: &Path) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for e in common::ledger_events(data) {
        if let Some(id) = e.get_str("eventID") {
            assert_eq!(e.get_str("event.dataset"), Some("aws.cloudtrail"));
            assert_eq!(e.get_str("vigil.source"), Some("cloudtrail-sync"));
            assert!(!e.has_tag(vigil_event::tag::PARSE_ERROR));
            *seen.entry(id.to_owned()).or_insert(0) += 1;
        }
    }
    seen
}

fn wait_for(data: &Path, n: usize) -> BTreeMap<String, usize> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored(data).len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(700));
    stored(data)
}

fn assert_once(seen: &BTreeMap<String, usize>, expected: &[String]) {
    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !seen.contains_key(*id))
        .collect();
    let dups: Vec<(&String, &usize)> = seen.iter().filter(|&(_, &c)| c != 1).collect();
    assert!(
        missing.is_empty(),
        "{} records missing: {missing:?}",
        missing.len()
    );
    assert!(dups.is_empty(), "duplicated records: {dups:?}");
    assert_eq!(seen.len(), expected.len());
}

/// docs/sending.md's `agent-folder` snippet, pointed at this test's server, state and folder.
fn doc_config(dir: &Path, url: &str, token: &str, folder: &Path) -> PathBuf {
    let docs = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/sending.md"
    ))
    .unwrap();
    let snippet = docs
        .split("<!-- snippet: agent-folder -->")
        .nth(1)
        .expect("the agent-folder snippet in docs/sending.md")
        .trim_start()
        .strip_prefix("```toml\n")
        .expect("a toml block")
        .split("```")
        .next()
        .unwrap();
    let mut table: toml::Table = snippet.parse().unwrap();
    table.insert("server".into(), url.into());
    table.remove("token_file");
    table.insert("token".into(), token.into());
    table.insert(
        "state_dir".into(),
        dir.join("state").display().to_string().into(),
    );
    table.insert("poll_interval_ms".into(), 50.into());
    for entry in table["folder"].as_array_mut().expect("[[folder]]") {
        let entry = entry.as_table_mut().unwrap();
        entry.insert("path".into(), folder.display().to_string().into());
        entry.insert("source".into(), "cloudtrail-sync".into());
    }
    let path = dir.join("agent.toml");
    fs::write(&path, toml::to_string(&table).unwrap()).unwrap();
    let o = vigil()
        .args(["agent", "--check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 folder(s)"));
    path
}

#[test]
fn a_synced_cloudtrail_prefix_is_shipped_once_across_kill_9_and_new_files() {
    let Some(files) = corpus_deliveries() else {
        return;
    };
    assert!(files.len() >= 30);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = create_token(&data, "ingest", "agent");
    let server = common::Server::start(&data, &[]);
    let bucket = dir.path().join("bucket");
    let config = doc_config(dir.path(), &server.url, &token, &bucket);
    // The folder does not exist yet when the agent starts.
    let mut agent = Agent::start(&config);
    let mut expected: Vec<String> = Vec::new();
    let (first, rest) = files.split_at(20);
    for (i, f) in first.iter().enumerate() {
        deliver(&bucket, f, i % 3 != 0);
        expected.extend(event_ids(f));
    }
    // A corrupt compressed file among them is skipped, not a blocker.
    let day = bucket.join("AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/10");
    fs::write(
        day.join("218007301253_CloudTrail_us-east-1_20230710T1200Z_0000corrupt.json.gz"),
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3],
    )
    .unwrap();
    // Kill it in the middle of shipping, twice, while more files arrive.
    std::thread::sleep(Duration::from_millis(600));
    agent.kill_9();
    agent = Agent::start(&config);
    for (i, f) in rest.iter().enumerate() {
        deliver(&bucket, f, i % 2 == 0);
        expected.extend(event_ids(f));
        if i == rest.len() / 2 {
            std::thread::sleep(Duration::from_millis(300));
            agent.kill_9();
            agent = Agent::start(&config);
        }
    }
    let seen = wait_for(&data, expected.len());
    assert_once(&seen, &expected);

    // Idle: a restart re-sends nothing, and the state remembers every file.
    let before = common::ledger_events(&data).len();
    agent.kill_9();
    let agent = Agent::start(&config);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        common::ledger_events(&data).len(),
        before,
        "re-sent after an idle restart"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("state/state.json")).unwrap()).unwrap();
    let done = state["folders"][bucket.display().to_string()]["done"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        done,
        files.len() + 1,
        "every delivery and the corrupt file are done"
    );
    drop(agent);
    drop(server);
}

/// One delivery larger than a batch: killed once the state shows part of it acknowledged, the
/// agent resumes inside the file at the first unacknowledged record, and every record is stored
/// once. (The corpus's records, all in one file; tried again with a fresh copy if the file was
/// finished before the kill landed.)
#[test]
fn a_kill_9_inside_a_file_resumes_at_its_first_unacknowledged_record() {
    let Some(files) = corpus_deliveries() else {
        return;
    };
    let mut records: Vec<serde_json::Value> = Vec::new();
    for f in &files {
        let doc: serde_json::Value = serde_json::from_slice(&fs::read(f).unwrap()).unwrap();
        records.extend(doc["Records"].as_array().unwrap().iter().cloned());
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = create_token(&data, "ingest", "agent");
    let server = common::Server::start(&data, &[]);
    let bucket = dir.path().join("bucket");
    fs::create_dir_all(&bucket).unwrap();
    let config = doc_config(dir.path(), &server.url, &token, &bucket);
    let state_file = dir.path().join("state/state.json");
    let key = bucket.display().to_string();
    let mut expected = Vec::new();
    let mut resumed = false;
    for attempt in 0..4 {
        // A file of about 3 MB: at least three batches.
        let mut copy = records.clone();
        for r in &mut copy {
            let id = format!("{}-{attempt}", r["eventID"].as_str().unwrap());
            r["eventID"] = id.clone().into();
            expected.push(id);
        }
        let body = serde_json::to_vec(&serde_json::json!({ "Records": copy })).unwrap();
        assert!(body.len() > 2 << 20);
        let mut agent = Agent::start(&config);
        let tmp = bucket.join(format!(".big-{attempt}.json.sync"));
        fs::write(&tmp, &body).unwrap();
        fs::rename(&tmp, bucket.join(format!("big-{attempt}.json"))).unwrap();
        // Wait for part of the file to be acknowledged, then kill.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut caught = None;
        while Instant::now() < deadline {
            let state: Option<serde_json::Value> = fs::read(&state_file)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let folder = state.as_ref().map(|s| &s["folders"][&key]);
            let units = folder
                .and_then(|f| f["current"]["units"].as_u64())
                .unwrap_or(0);
            let done = folder.and_then(|f| f["done"].as_array()).is_some_and(|d| {
                d.iter()
                    .any(|n| n.as_str() == Some(&format!("big-{attempt}.json")))
            });
            if units > 0 {
                caught = Some(units);
                break;
            }
            if done {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        agent.kill_9();
        if caught.is_none() {
            continue;
        }
        // Where the dead agent's checkpoint says it is (a batch may have been acknowledged
        // between the look above and the kill).
        let state: serde_json::Value =
            serde_json::from_slice(&fs::read(&state_file).unwrap()).unwrap();
        let current = &state["folders"][&key]["current"];
        let Some(units) = current["units"].as_u64().filter(|&u| u > 0) else {
            continue;
        };
        assert_eq!(
            current["name"].as_str(),
            Some(format!("big-{attempt}.json").as_str())
        );
        let mut child = vigil()
            .args(["agent", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let agent = Agent(child);
        let log = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut lines = Vec::new();
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let stop = line.contains("resuming");
                lines.push(line);
                if stop {
                    break;
                }
            }
            lines
        });
        let seen = wait_for(&data, expected.len());
        drop(agent);
        let lines = log.join().unwrap();
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("resuming big-{attempt}.json at unit {units}"))),
            "{lines:?}"
        );
        assert_once(&seen, &expected);
        resumed = true;
        break;
    }
    assert!(resumed, "the kill never landed inside the file in 4 tries");
    drop(server);
}

/// A CloudTrail delivery file posted as S3 stores it (`{"Records": [...]}`, gzip-compressed,
/// `Content-Encoding: gzip`) by curl: one `aws.cloudtrail` event per record, each once.
#[test]
fn a_gzip_delivery_posted_over_http_is_one_event_per_record() {
    if !common::require_tool("curl") {
        return;
    }
    let Some(files) = corpus_deliveries() else {
        return;
    };
    // The largest delivery of the corpus.
    let file = files
        .iter()
        .max_by_key(|f| fs::metadata(f).unwrap().len())
        .unwrap();
    let expected = event_ids(file);
    assert!(expected.len() > 100);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = create_token(&data, "ingest", "curl");
    let server = common::Server::start(&data, &[]);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&fs::read(file).unwrap()).unwrap();
    let gz = dir.path().join("delivery.json.gz");
    fs::write(&gz, enc.finish().unwrap()).unwrap();
    let answer = common::curl(
        "POST",
        &format!("{}/api/v1/ingest?source=cloudtrail-sync", server.url),
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/json".to_owned(),
            "Content-Encoding: gzip".to_owned(),
            "Expect:".to_owned(),
        ],
        Some(&format!("@{}", gz.display())),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let seen = wait_for(&data, expected.len());
    assert_once(&seen, &expected);
    drop(server);
}
