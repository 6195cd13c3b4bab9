//! Witnesses between two real `vigil serve` processes (C2SP tlog-witness over HTTP): A
//! witnesses B. B's checkpoints carry A's cosignatures, `vigil verify --witness-key` checks them
//! (K = 1 passes, K = 2 fails), and B's data directory replaced by an older copy of itself is
//! DETECTED: A refuses (409 with its larger size), B's health, audit and alerts say rollback, and
//! A's audit records the refusal.

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    Server, audit_events, create_token, curl, ingest_ndjson, unused_port, vigil, wait_until,
};
use serde_json::Value;

fn ingest(server: &Server, token: &str, from: usize, n: usize) {
    let body: String = (from..from + n)
        .map(|i| format!("{{\"message\":\"witnessed event {i}\"}}\n"))
        .collect();
    let a = ingest_ndjson(&server.url, token, &body);
    assert_eq!(a.status, 200, "{}", a.body);
}

fn verify(data: &Path, key: &Path, k: usize) -> (i32, Value, String) {
    let out = vigil()
        .args(["verify", "--quiet", "--format", "json", "--data-dir"])
        .arg(data)
        .arg("--witness-key")
        .arg(key)
        .args(["--min-cosignatures", &k.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// The size of the newest checkpoint cosigned by the witness (0 when none).
fn witnessed_size(data: &Path, key: &Path) -> u64 {
    let (_, json, _) = verify(data, key, 1);
    json["cosignatures"]["newest_witnessed"]["size"]
        .as_u64()
        .unwrap_or(0)
}

fn checkpoint_size(data: &Path) -> u64 {
    let out = vigil()
        .args(["checkpoint", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    let note = String::from_utf8_lossy(&out.stdout).into_owned();
    note.lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_witness_cosigns_and_catches_a_rollback_of_the_whole_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir, snapshot) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("b-snapshot"),
    );
    let a_port = unused_port();
    let witness_url = format!("http://127.0.0.1:{a_port}/witness");
    let b_flags = ["--witness", witness_url.as_str()];

    // B first (its ledger key is what A is told to trust), then A on a known port.
    let b = Server::start(&b_dir, &b_flags);
    let b_vkey = b_dir.join("ledger/verifier.vkey");
    assert!(b_vkey.exists());
    let a_http = format!("127.0.0.1:{a_port}");
    let a = Server::start(
        &a_dir,
        &["--http", &a_http, "--witness-log", b_vkey.to_str().unwrap()],
    );
    let a_key = dir.path().join("a.vkey");
    let out = vigil()
        .args(["witness-key", "--data-dir"])
        .arg(&a_dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(&a_key, &out.stdout).unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(shown.starts_with("vigil-witness/"), "{shown}");

    // The witness's key is also in the API.
    let a_token = create_token(&a_dir, "viewer", "look");
    let info = curl(
        "GET",
        &format!("{}/api/v1/witness", a.url),
        &[format!("Authorization: Bearer {a_token}")],
        None,
    );
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.json()["witness"]["vkey"].as_str(), Some(shown.trim()));

    // B's checkpoints get A's cosignatures.
    let b_token = create_token(&b_dir, "ingest", "feed");
    ingest(&b, &b_token, 0, 50);
    assert!(
        wait_until(90, || witnessed_size(&b_dir, &a_key) >= 50),
        "B's checkpoints were not cosigned by A:\nB:\n{}\nA:\n{}",
        b.log(),
        a.log()
    );
    b.stop();

    // vigil verify: K = 1 passes, K = 2 cannot be met by one witness key.
    let (code, json, text) = verify(&b_dir, &a_key, 1);
    assert_eq!(code, 0, "{text}");
    assert_eq!(json["cosignatures"]["passed"], true, "{text}");
    let (code, json, text) = verify(&b_dir, &a_key, 2);
    assert_eq!(code, 1, "{text}");
    assert_eq!(json["cosignatures"]["passed"], false, "{text}");
    // Another witness's key finds no cosignature.
    let stranger = dir.path().join("stranger");
    let out = vigil()
        .args(["witness-key", "--data-dir"])
        .arg(&stranger)
        .output()
        .unwrap();
    let stranger_key = dir.path().join("stranger.vkey");
    std::fs::write(&stranger_key, &out.stdout).unwrap();
    let (code, _, text) = verify(&b_dir, &stranger_key, 1);
    assert_eq!(code, 1, "{text}");
    let out = vigil()
        .args(["verify", "--quiet", "--data-dir"])
        .arg(&b_dir)
        .arg("--witness-key")
        .arg(&stranger_key)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("no checkpoint carries 1 valid cosignature"),
        "{text}"
    );

    // A snapshot of B, then B goes on and A witnesses more of it.
    let status = Command::new("cp")
        .arg("-a")
        .arg(&b_dir)
        .arg(&snapshot)
        .status()
        .unwrap();
    assert!(status.success());
    let snapshot_size = checkpoint_size(&snapshot);
    let b = Server::start(&b_dir, &b_flags);
    ingest(&b, &b_token, 50, 200);
    assert!(
        wait_until(90, || witnessed_size(&b_dir, &a_key) >= snapshot_size + 200),
        "the restarted B was not cosigned again:\n{}",
        b.log()
    );
    let healthy = curl("GET", &format!("{}/healthz", b.url), &[], None);
    assert_eq!(healthy.status, 200, "{}", healthy.body);
    b.stop();

    // The rollback: B's data directory replaced by the older copy, which verifies on its own.
    std::fs::remove_dir_all(&b_dir).unwrap();
    std::fs::rename(&snapshot, &b_dir).unwrap();
    let out = vigil()
        .args(["verify", "--quiet", "--data-dir"])
        .arg(&b_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the old copy is self-consistent: no local check can see the rollback"
    );
    let b = Server::start(&b_dir, &b_flags);
    let detected = wait_until(60, || {
        let h = curl("GET", &format!("{}/healthz", b.url), &[], None);
        h.status == 503 && h.body.contains("rollback")
    });
    assert!(detected, "B's health does not say rollback:\n{}", b.log());
    let h = curl("GET", &format!("{}/healthz", b.url), &[], None);
    assert!(h.body.contains("rolled back"), "{}", h.body);
    let metrics = curl(
        "GET",
        &format!("{}/metrics", b.url),
        &[format!(
            "Authorization: Bearer {}",
            create_token(&b_dir, "viewer", "metrics")
        )],
        None,
    );
    assert!(
        metrics.body.contains("vigil_witness_rollback 1"),
        "{}",
        metrics.body
    );
    assert!(
        wait_until(20, || !audit_events(&b_dir, "witness_rollback").is_empty()),
        "B's audit has no witness_rollback event"
    );
    // The bundled self-rule turns it into an alert.
    let analyst = create_token(&b_dir, "analyst", "soc");
    let alerted = wait_until(30, || {
        let a = curl(
            "GET",
            &format!("{}/api/v1/alerts", b.url),
            &[format!("Authorization: Bearer {analyst}")],
            None,
        );
        a.status == 200
            && a.json()["alerts"].as_array().is_some_and(|alerts| {
                alerts
                    .iter()
                    .any(|al| al["rule"]["title"] == "Vigil's ledger was rolled back")
            })
    });
    assert!(alerted, "no rollback alert on B");
    // A refused with 409 and recorded it.
    let refusals = audit_events(&a_dir, "witness_refused");
    assert!(
        refusals
            .iter()
            .any(|e| e.get_str("vigil.witness.refusal") == Some("conflict")),
        "A's audit has no refused conflict: {refusals:?}"
    );
    b.stop();
    a.stop();
}

/// The endpoint takes no token, answers the protocol's status codes, and bounds the body.
#[test]
fn the_witness_endpoint_answers_the_protocol_status_codes() {
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(dir.path(), &[]);
    let url = format!("{}/witness/add-checkpoint", a.url);
    // Malformed.
    let r = curl("POST", &url, &[], Some("hello"));
    assert_eq!(r.status, 400, "{}", r.body);
    // Unknown log: a well-formed checkpoint of a log A does not know.
    let note = "vigil/elsewhere/0001\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} vigil/elsewhere/0001 AAAAAAAAAAA=\n";
    let r = curl("POST", &url, &[], Some(&format!("old 0\n\n{note}")));
    assert_eq!(r.status, 404, "{}", r.body);
    // Oversized.
    let big = "x".repeat(64 * 1024);
    let r = curl("POST", &url, &["Expect:".into()], Some(&big));
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(
        wait_until(20, || audit_events(dir.path(), "witness_refused").len()
            >= 2),
        "refusals are audited"
    );
    a.stop();
}
