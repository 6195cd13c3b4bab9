//! Issue 13, defect 9 (and the disk-full half of defect 7): on a full disk `/healthz` said 200
//! while every ingest got 503, freeing space did not recover (only a restart did), and events
//! answered 503 came back at the next start. Now a failed write is undone, `/healthz` and
//! `/metrics` say the ledger is degraded, the ledger recovers by itself once space is back, and
//! nothing answered 503 is ever stored.
//!
//! Runs on a small tmpfs mounted for the test (needs root); skipped with a message when mount
//! is not permitted, a failure under `VIGIL_REQUIRE_TOOLS=1`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{
    Server, create_token, curl, ingest_ndjson, ledger_events, missing_tool, wait_until,
};

/// A tmpfs mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Fills the file system holding `dir` with one file; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = fs::File::create(&path).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
    path
}

fn batch(tag: &str, n: usize) -> String {
    // Text zstd cannot squeeze much, so the write needs real room.
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
        body.push_str(&format!("{{\"message\":\"{tag} {i} {noise}\"}}\n"));
    }
    body
}

fn stored(data: &Path, tag: &str) -> usize {
    ledger_events(data)
        .iter()
        .filter(|e| {
            e.get_str("message")
                .is_some_and(|m| m.starts_with(&format!("{tag} ")))
        })
        .count()
}

#[test]
fn full_disk_degrades_health_recovers_by_itself_and_stores_nothing_refused() {
    let Some(fs_) = Tmpfs::mount("48m") else {
        missing_tool("mount -t tmpfs (root)");
        return;
    };
    let data = fs_.path().join("data");
    let token = create_token(&data, "ingest", "disk");
    let viewer = create_token(&data, "viewer", "metrics-disk");
    let server = Server::start(&data, &[]);
    let a = ingest_ndjson(&server.url, &token, &batch("before", 100));
    assert_eq!(a.status, 200, "{}", a.body);

    // Fill the disk, then give back a little: a batch larger than that is written in part
    // before ENOSPC, and the part must not stay.
    let filler = fill(fs_.path());
    let len = fs::metadata(&filler).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(len - 16 * 1024)
        .unwrap();
    let mut refused = Vec::new();
    for i in 0..5 {
        let tag = format!("refused{i}");
        let a = ingest_ndjson(&server.url, &token, &batch(&tag, 300));
        assert_eq!(a.status, 503, "a full disk refuses the batch: {}", a.body);
        assert!(a.body.contains("not stored"), "{}", a.body);
        refused.push(tag);
    }
    let health = curl("GET", &format!("{}/healthz", server.url), &[], None);
    assert_eq!(health.status, 503, "{}", health.body);
    assert_eq!(health.json()["status"], "degraded");
    assert!(
        health.json()["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("ledger: ") && r.contains("No space left")),
        "{}",
        health.body
    );
    let metrics = curl(
        "GET",
        &format!("{}/metrics", server.url),
        &[format!("Authorization: Bearer {viewer}")],
        None,
    );
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    assert!(
        metrics.body.contains("vigil_ledger_degraded 1"),
        "{}",
        metrics.body
    );

    // Space back: no restart, the ledger takes writes again by itself.
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
        "health recovers once space is back"
    );
    let a = ingest_ndjson(&server.url, &token, &batch("after", 300));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["accepted"], 300);
    let metrics = curl(
        "GET",
        &format!("{}/metrics", server.url),
        &[format!("Authorization: Bearer {viewer}")],
        None,
    );
    assert!(
        metrics.body.contains("vigil_ledger_degraded 0"),
        "{}",
        metrics.body
    );

    // A crash now, and a restart: nothing answered 503 comes back, everything answered 200 is
    // there once.
    drop(server);
    let server = Server::start(&data, &[]);
    for tag in &refused {
        assert_eq!(
            stored(&data, tag),
            0,
            "{tag} was answered 503 but is stored"
        );
    }
    assert_eq!(stored(&data, "before"), 100);
    assert_eq!(stored(&data, "after"), 300);
    let verify = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["verify", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    drop(server);
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}
