//! Defect 10 of issue 13: search memory was unbounded across queries — one 100k-row result
//! took 1.57 GB, four at once 4.4 GB. Now each query's rows are cut at
//! `vigil_query::exec::MAX_RESULT_BYTES` (32 MiB) with a message saying so, at most
//! `MAX_SEARCHES_IN_FLIGHT` (4) searches and exports run at once (more wait, then get 503 with
//! `Retry-After`), and exports are written as they are sent.

use std::path::Path;

use crate::common::{Server, create_token, curl};

/// The server's peak resident memory (VmHWM) in KiB, found by its data directory.
fn peak_rss_kib(data: &Path) -> u64 {
    let data = data.to_str().unwrap();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.iter().any(|a| *a == b"serve") && args.contains(&data.as_bytes()) {
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap();
            return status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .expect("VmHWM");
        }
    }
    panic!("no vigil serve process for {data}");
}

/// The documented bound this test holds the server to: 4 searches in flight, each with at most
/// 32 MiB of rows (estimated) and its answer on the way out, plus the server itself. Before the
/// limits, these searches took well over 2 GB.
const PEAK_RSS_BOUND_MIB: u64 = 1024;

#[test]
fn concurrent_large_searches_and_exports_stay_within_a_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let viewer = create_token(&data, "viewer", "viewer");
    let ingest = create_token(&data, "ingest", "sender");
    let server = Server::start(&data, &[]);
    let url = server.url.clone();

    // 6,000 events of 16 KiB (twice that with `event.original`): a 200 MB ledger, six times
    // what one query may hold.
    const EVENTS: usize = 6_000;
    let filler = "x".repeat(16 * 1024);
    for batch in 0..EVENTS / 200 {
        let body: String = (0..200)
            .map(|i| format!("{{\"message\":\"big {} {filler}\"}}\n", batch * 200 + i))
            .collect();
        let path = dir.path().join("batch.ndjson");
        std::fs::write(&path, body).unwrap();
        let a = curl(
            "POST",
            &format!("{url}/api/v1/ingest"),
            &[
                format!("Authorization: Bearer {ingest}"),
                "Content-Type: application/x-ndjson".into(),
                // No `100 Continue` before the answer curl's helper reads.
                "Expect:".into(),
            ],
            Some(&format!("@{}", path.display())),
        );
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let before = peak_rss_kib(&data);

    // Six large searches and two large exports at once.
    let auth = format!("Authorization: Bearer {viewer}");
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let (url, auth) = (url.clone(), auth.clone());
            std::thread::spawn(move || {
                if i < 6 {
                    curl(
                        "POST",
                        &format!("{url}/api/v1/search"),
                        &[auth],
                        Some(r#"{"query":"big","limit":100000}"#),
                    )
                } else {
                    curl(
                        "GET",
                        &format!("{url}/api/v1/export?format=ndjson&limit=100000&query=big"),
                        &[auth],
                        None,
                    )
                }
            })
        })
        .collect();
    let answers: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let peak = peak_rss_kib(&data);
    eprintln!(
        "peak RSS: {} MiB after ingest, {} MiB after searches",
        before / 1024,
        peak / 1024
    );
    assert!(
        peak / 1024 < PEAK_RSS_BOUND_MIB,
        "peak RSS {} MiB over the {PEAK_RSS_BOUND_MIB} MiB bound",
        peak / 1024
    );
    for (i, a) in answers.into_iter().enumerate() {
        if a.status == 503 {
            assert!(a.header("retry-after").is_some(), "{a:?}");
            continue;
        }
        assert_eq!(a.status, 200, "{}", &a.body[..a.body.len().min(300)]);
        if i < 6 {
            let r = a.json();
            assert_eq!(r["truncated"], true);
            let message = r["message"].as_str().unwrap();
            assert!(message.contains("query memory limit (32 MiB)"), "{message}");
            let rows = r["rows"].as_array().unwrap().len();
            assert!(rows > 500 && rows < EVENTS, "{rows} rows");
        } else {
            let cut = a.header("x-vigil-truncated").unwrap_or_default();
            assert!(cut.contains("query memory limit"), "{:?}", a.headers);
            let lines = a.body.lines().count();
            assert!(lines > 500 && lines < EVENTS, "{lines} lines");
        }
    }
    // Still answering.
    let a = curl("GET", &format!("{url}/healthz"), &[], None);
    assert_eq!(a.status, 200);
    server.stop();
}
