//! Followers see only durable events (follow-up to issue 13, defects 7 and 9). The detector
//! and the indexer scan the segment files; they used to see the blocks of a write as soon as
//! they were in the file, before its fsync, so a write that then failed on a full disk and was
//! undone could raise alerts (and bans) on events the ledger does not hold, and leave index
//! documents at sequence numbers later reused by other events. Now they read through the
//! writer, never past its durable end.
//!
//! Runs on a small tmpfs (needs root); skipped with a message when mount is not permitted, a
//! failure under `VIGIL_REQUIRE_TOOLS=1`.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use vigil_event::{Event, Timestamp};
use vigil_ledger::files::{self, LedgerPaths};

use crate::common::{
    Server, create_token, curl, ingest_ndjson, ledger_events, missing_tool, wait_for_alert,
    wait_until,
};

const RULES: &[(&str, &str)] = &[
    (
        "refused.yml",
        r#"title: Refused event seen
id: 0b7f6c1e-3d2a-4e5f-9a8b-000000000131
status: test
logsource: {product: vigil, service: ingest}
detection:
    selection:
        message|startswith: 'refused'
    condition: selection
level: high
"#,
    ),
    (
        "after.yml",
        r#"title: Stored event seen
id: 0b7f6c1e-3d2a-4e5f-9a8b-000000000132
status: test
logsource: {product: vigil, service: ingest}
detection:
    selection:
        message|startswith: 'after'
    condition: selection
level: low
"#,
    ),
];

struct Tmpfs(tempfile::TempDir);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

fn mount_tmpfs(size: &str) -> Option<Tmpfs> {
    let dir = tempfile::tempdir().unwrap();
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success())
        .then_some(Tmpfs(dir))
}

/// `n` events with text zstd cannot squeeze much; several blocks (group boundaries every 256).
fn batch(tag: &str, n: usize) -> String {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut body = String::new();
    for i in 0..n {
        let noise: String = (0..8)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{x:016x}")
            })
            .collect();
        body.push_str(&format!(
            "{{\"message\":\"{tag} {i} {noise}\",\"user.name\":\"{tag}\"}}\n"
        ));
    }
    body
}

fn alerts(url: &str, token: &str) -> String {
    curl(
        "GET",
        &format!("{url}/api/v1/alerts"),
        &[format!("Authorization: Bearer {token}")],
        None,
    )
    .body
}

fn fill(dir: &Path, leave: u64) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut file = fs::File::create(&path).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let len = file.metadata().unwrap().len();
    file.set_len(len.saturating_sub(leave)).unwrap();
    path
}

#[test]
fn writes_undone_on_a_full_disk_raise_no_alert_and_leave_no_index_documents() {
    let Some(tmpfs) = mount_tmpfs("48m") else {
        missing_tool("mount -t tmpfs (root)");
        return;
    };
    let data = tmpfs.0.path().join("data");
    let rules = tmpfs.0.path().join("rules");
    fs::create_dir_all(&rules).unwrap();
    for (name, text) in RULES {
        fs::write(rules.join(name), text).unwrap();
    }
    let rules_arg = rules.display().to_string();
    let token = create_token(&data, "ingest", "undone");
    let viewer = create_token(&data, "analyst", "undone-reader");
    let server = Server::start(&data, &["--rules", &rules_arg]);
    let a = ingest_ndjson(&server.url, &token, &batch("before", 100));
    assert_eq!(a.status, 200, "{}", a.body);

    // A full disk with a little room: each refused batch is written in part (whole blocks of
    // it among them) before ENOSPC, then undone.
    let filler = fill(tmpfs.0.path(), 48 * 1024);
    for i in 0..20 {
        let a = ingest_ndjson(&server.url, &token, &batch(&format!("refused{i}"), 1500));
        assert_eq!(a.status, 503, "a full disk refuses the batch: {}", a.body);
    }
    fs::remove_file(&filler).unwrap();
    assert!(
        wait_until(30, || curl(
            "GET",
            &format!("{}/healthz", server.url),
            &[],
            None
        )
        .status
            == 200),
        "the ledger recovers once space is back"
    );
    // Stored events at the sequence numbers the refused ones had: detection must reach them.
    let a = ingest_ndjson(&server.url, &token, &batch("after", 1500));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_followers_saw_only_stored(&server.url, &viewer, &data, 1500);
    drop(server);
}

/// Asserts detection reached the `after` events, raised nothing on `refused` ones, and the
/// index holds exactly the ledger's events of this test's batches (`before` and `after`),
/// none of the `refused` ones. (Searches write audit events, so totals keep moving.)
fn assert_followers_saw_only_stored(url: &str, viewer: &str, data: &Path, after: u64) {
    assert!(
        wait_for_alert(url, viewer, "Stored event seen", ("user.name", "after"), 30)
            || alerts(url, viewer).contains("Stored event seen"),
        "detection reached the stored events: {}",
        alerts(url, viewer)
    );
    let listed = alerts(url, viewer);
    assert!(
        !listed.contains("Refused event seen"),
        "an alert on events that were never stored: {listed}"
    );
    let in_ledger = |name: &str| {
        ledger_events(data)
            .iter()
            .filter(|e| e.get_str("user.name") == Some(name))
            .count() as u64
    };
    assert_eq!(in_ledger("before"), 100);
    assert_eq!(in_ledger("after"), after);
    let refused_in_ledger = ledger_events(data)
        .iter()
        .filter(|e| {
            e.get_str("user.name")
                .is_some_and(|n| n.starts_with("refused"))
        })
        .count();
    assert_eq!(refused_in_ledger, 0);
    let by_user = || {
        curl(
            "POST",
            &format!("{url}/api/v1/search"),
            &[
                format!("Authorization: Bearer {viewer}"),
                "Content-Type: application/json".to_owned(),
            ],
            Some(r#"{"query": "* | stats count by user.name"}"#),
        )
    };
    let count = |body: &serde_json::Value, name: &str| {
        body["rows"].as_array().and_then(|rows| {
            rows.iter()
                .find(|r| r[0] == name)
                .and_then(|r| r[1].as_u64())
        })
    };
    let mut last = String::new();
    assert!(
        wait_until(30, || {
            let a = by_user();
            last = a.body.clone();
            let j = a.json();
            count(&j, "before") == Some(100) && count(&j, "after") == Some(after)
        }),
        "the index holds the stored events once: {last}"
    );
    let body = by_user().body;
    assert!(
        !body.contains("\"refused"),
        "index documents of undone events: {body}"
    );
}

/// The same, made deterministic: a whole block of events sits in the live segment past the
/// writer's durable end for seconds (as a write does between its write and its fsync, and
/// before a failed one is undone), then goes away. Detection and indexing must not act on it.
#[test]
fn blocks_past_the_durable_end_are_invisible_to_detection_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    fs::create_dir_all(&rules).unwrap();
    for (name, text) in RULES {
        fs::write(rules.join(name), text).unwrap();
    }
    let rules_arg = rules.display().to_string();
    let token = create_token(&data, "ingest", "undone");
    let viewer = create_token(&data, "analyst", "undone-reader");
    let server = Server::start(&data, &["--rules", &rules_arg]);
    let a = ingest_ndjson(&server.url, &token, &batch("before", 100));
    assert_eq!(a.status, 200, "{}", a.body);
    std::thread::sleep(std::time::Duration::from_millis(500));

    // A complete block at the ledger's end, never made durable by the writer.
    let end = ledger_events(&data).len() as u64;
    let events: Vec<Vec<u8>> = (0..50)
        .map(|i| {
            let mut e = Event::new(Timestamp::now());
            e.insert("message", format!("refused {i}"));
            e.insert("user.name", "refused");
            e.to_canonical()
        })
        .collect();
    let slices: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
    let mut block = Vec::new();
    vigil_ledger::format::encode_events_block(&mut block, end, &slices, 3, &mut Vec::new());
    let (_, segment) = files::list_segments(&LedgerPaths::new(&data))
        .unwrap()
        .pop()
        .unwrap();
    let mut expected = fs::read(&segment).unwrap();
    let len = expected.len() as u64;
    let mut f = fs::OpenOptions::new().append(true).open(&segment).unwrap();
    f.write_all(&block).unwrap();
    drop(f);
    expected.extend_from_slice(&block);
    assert_eq!(
        ledger_events(&data).len() as u64,
        end + 50,
        "the block is in the file"
    );
    // Followers poll every 50-100 ms: give them time to see it, then undo it.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(
        fs::read(&segment).unwrap() == expected,
        "the server wrote to the ledger while the block was there: it acted on events it never \
         stored (an alert on them?): {}",
        alerts(&server.url, &viewer)
    );
    fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len)
        .unwrap();

    let a = ingest_ndjson(&server.url, &token, &batch("after", 300));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["first_seq"], end, "{}", a.body);
    assert_followers_saw_only_stored(&server.url, &viewer, &data, 300);
    drop(server);
}
