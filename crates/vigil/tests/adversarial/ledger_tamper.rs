//! Someone with disk access against the ledger (issue 13, defect 2): removing evidence is caught
//! by `vigil verify`, `vigil serve` refuses to sign over it (no laundering) unless told to
//! recover, which is recorded for good; no new key for an existing ledger; a checkpoint copy
//! sent off the host catches a rollback that leaves no trace on it.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use vigil_event::Event;
use vigil_ledger::LedgerPaths;
use vigil_ledger::files;
use vigil_ledger::format::{self, BLOCK_HEADER_LEN};

use crate::common::{Server, audit_events, create_token, curl, vigil, wait_until};

fn run(args: &[&str]) -> Output {
    vigil().args(args).output().expect("run vigil")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn verify(data: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["verify", "--quiet", "--data-dir", data.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

/// A data directory with `n` events imported by the real CLI.
fn imported(dir: &Path, n: usize) -> PathBuf {
    let data = dir.join("data");
    let file = dir.join("events.ndjson");
    let mut lines = String::new();
    for i in 0..n {
        lines.push_str(&format!(
            "{{\"@timestamp\":\"2026-11-22T10:00:{:02}Z\",\"message\":\"Accepted publickey for alice from 198.51.100.{} port 22\"}}\n",
            i % 60,
            i % 250
        ));
    }
    fs::write(&file, lines).unwrap();
    let o = run(&[
        "import",
        "--quiet",
        "--data-dir",
        data.to_str().unwrap(),
        "--format",
        "json",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    data
}

/// Rewrites the first event of the first block of the first segment, with a valid checksum.
fn edit_first_event(data: &Path) {
    let (_, path) = files::list_segments(&LedgerPaths::new(data)).unwrap()[0].clone();
    let scanned = files::scan_segment(&path).unwrap();
    let location = scanned.blocks[0];
    let bytes = fs::read(&path).unwrap();
    let start = location.offset as usize;
    let end = start + location.header.stored_len() as usize;
    let raw =
        format::block_raw_payload(&location.header, &bytes[start + BLOCK_HEADER_LEN..end]).unwrap();
    let mut events: Vec<Vec<u8>> = format::split_events(&raw, location.header.n_events)
        .unwrap()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    let mut first = Event::from_canonical(&events[0]).unwrap();
    first.insert("message", "nothing happened here");
    events[0] = first.to_canonical();
    let refs: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
    let mut block = Vec::new();
    format::encode_events_block(
        &mut block,
        location.header.first_seq,
        &refs,
        3,
        &mut Vec::new(),
    );
    let mut out = bytes[..start].to_vec();
    out.extend_from_slice(&block);
    out.extend_from_slice(&bytes[end..]);
    fs::write(&path, out).unwrap();
}

#[test]
fn deleted_checkpoints_and_tiles_fail_verify_and_serve_does_not_launder_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = imported(dir.path(), 1500);
    let o = verify(&data, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    let ok = out
        .lines()
        .find(|l| l.starts_with("OK: verified by key vigil/"))
        .unwrap_or_else(|| panic!("{out}"));
    // The key is named as name+keyid (no key material), then the checkpoint.
    let label = ok.split_whitespace().nth(4).unwrap();
    let (_, id) = label.split_once('+').unwrap();
    assert!(
        id.len() == 8 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{ok}"
    );
    assert!(ok.contains("up to checkpoint size 1500, root "), "{ok}");

    // The attack of the issue: edit an event, delete checkpoints.log and tiles.dat (and the
    // witness, which would name the deletion outright).
    let paths = LedgerPaths::new(&data);
    edit_first_event(&data);
    fs::remove_file(paths.checkpoints()).unwrap();
    fs::remove_file(paths.tiles()).unwrap();
    fs::remove_file(paths.witness()).unwrap();
    let o = verify(&data, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("FAILED:"), "{}", text(&o));
    assert!(
        text(&o).contains("not covered by any checkpoint signed by this key"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("OK"), "{}", text(&o));

    // serve refuses: signing now would launder the edit.
    let log = Server::try_start(&data, &[]).err().expect("serve started");
    assert!(log.contains("does not verify"), "{log}");
    assert!(log.contains("--recover"), "{log}");
    // …and rewrote nothing: a later verify still fails.
    let o = verify(&data, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // The operator decides to go on: the recovery is signed, in the ledger, and reported by
    // every later verify (exit 3, not 0).
    let server = Server::start(&data, &["--recover", "disk restored from backup, ticket 7"]);
    assert!(
        server.log().contains("LEDGER RECOVERED"),
        "{}",
        server.log()
    );
    server.stop();
    let recovered = audit_events(&data, "ledger_recovered");
    assert_eq!(recovered.len(), 1);
    assert!(
        recovered[0]
            .get_str("message")
            .unwrap()
            .contains("ticket 7")
    );
    let o = verify(&data, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("RECOVERED:"), "{}", text(&o));
    assert!(text(&o).contains("ticket 7"), "{}", text(&o));
    // Later starts are ordinary and the record stays.
    Server::start(&data, &[]).stop();
    let o = verify(&data, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["verdict"], "verified_recovered");
    assert_eq!(json["recoveries"].as_array().unwrap().len(), 1);
}

#[test]
fn deleted_last_segment_and_removed_latest_checkpoint_fail_verify_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let data = imported(dir.path(), 600);
    // A second import: its checkpoint is the latest.
    let more = dir.path().join("more.ndjson");
    fs::write(&more, "{\"message\":\"the newest event\"}\n".repeat(10)).unwrap();
    let o = run(&[
        "import",
        "--quiet",
        "--data-dir",
        data.to_str().unwrap(),
        "--format",
        "json",
        more.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let paths = LedgerPaths::new(&data);
    let checkpoints = vigil_ledger::read_checkpoints(&paths).unwrap();
    assert_eq!(checkpoints.last().unwrap().checkpoint.size, 610);
    let mut log = format::encode_file_header(format::CHECKPOINTS_MAGIC).to_vec();
    for c in &checkpoints[..checkpoints.len() - 1] {
        format::encode_record(&mut log, c.note.as_bytes());
    }
    fs::write(paths.checkpoints(), log).unwrap();
    let o = verify(&data, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("checkpoints were removed"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("the last checkpoint whose root was recomputed and matched is size 600"),
        "{}",
        text(&o)
    );
    let log = Server::try_start(&data, &[]).err().expect("serve started");
    assert!(log.contains("checkpoints were removed"), "{log}");
}

#[test]
fn serve_makes_no_new_key_for_an_existing_ledger_and_verify_names_the_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = imported(dir.path(), 100);
    let paths = LedgerPaths::new(&data);
    let vkey = fs::read_to_string(paths.verifier_key()).unwrap();

    // Only the verifier key is gone: say so, not "no ledger".
    fs::remove_file(paths.verifier_key()).unwrap();
    let o = verify(&data, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!text(&o).contains("no ledger"), "{}", text(&o));
    assert!(text(&o).contains("verifier.vkey"), "{}", text(&o));
    assert!(text(&o).contains("is missing"), "{}", text(&o));
    let key_file = dir.path().join("saved.vkey");
    fs::write(&key_file, &vkey).unwrap();
    let o = verify(&data, &["--key", key_file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // Both key files gone: serve refuses to make a new key that would sign a new history.
    fs::remove_file(paths.signing_key()).unwrap();
    let log = Server::try_start(&data, &[]).err().expect("serve started");
    assert!(log.contains("signing.key"), "{log}");
    assert!(log.contains("never makes a new signing key"), "{log}");
    assert!(!paths.signing_key().exists());
    assert!(!paths.verifier_key().exists());
}

/// A webhook receiver on 127.0.0.1: stores every request body, answers 200.
fn webhook_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/checkpoints", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_ok() {
                sink.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, bodies)
}

/// The largest checkpoint the receiver holds: `(size, body)`.
fn latest_received(bodies: &Mutex<Vec<String>>) -> Option<(u64, String)> {
    bodies
        .lock()
        .unwrap()
        .iter()
        .filter_map(|b| {
            let v: serde_json::Value = serde_json::from_str(b).ok()?;
            Some((v["size"].as_u64()?, b.clone()))
        })
        .max_by_key(|(size, _)| *size)
}

fn ingest(server: &Server, token: &str, n: usize, tag: &str) {
    let body: String = (0..n)
        .map(|i| format!("{{\"message\":\"{tag} {i}\"}}\n"))
        .collect();
    let a = curl(
        "POST",
        &format!("{}/api/v1/ingest", server.url),
        &[format!("Authorization: Bearer {token}")],
        Some(&body),
    );
    assert_eq!(a.status, 200, "{}", a.body);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn checkpoint_sink_copy_catches_a_rollback_that_verifies_locally() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (url, bodies) = webhook_receiver();
    let token = create_token(&data, "ingest", "shipper");
    let flags = ["--checkpoint-webhook", &url, "--checkpoint-interval", "1s"];

    let server = Server::start(&data, &flags);
    ingest(&server, &token, 50, "before");
    server.stop();
    let backup = dir.path().join("backup-ledger");
    copy_dir(LedgerPaths::new(&data).root(), &backup);
    let backup_size = vigil_ledger::read_checkpoints(&LedgerPaths::new(&data))
        .unwrap()
        .last()
        .unwrap()
        .checkpoint
        .size;

    let server = Server::start(&data, &flags);
    ingest(&server, &token, 50, "the events the attacker wants gone");
    assert!(
        wait_until(30, || latest_received(&bodies)
            .is_some_and(|(size, _)| size > backup_size + 50)),
        "no checkpoint past {backup_size} reached the sink: {:?}\n{}",
        bodies.lock().unwrap(),
        server.log()
    );
    server.stop();
    let (size, body) = latest_received(&bodies).unwrap();
    let copy = dir.path().join("received-checkpoint.json");
    fs::write(&copy, &body).unwrap();
    let o = verify(&data, &["--against", copy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("the outside checkpoint (size {size}")),
        "{}",
        text(&o)
    );

    // Rollback: the attacker puts back the older ledger. On the host it is self-consistent…
    let root = LedgerPaths::new(&data).root().to_owned();
    fs::remove_dir_all(&root).unwrap();
    copy_dir(&backup, &root);
    let o = verify(&data, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // …but the copy the sink received names it.
    let o = verify(&data, &["--against", copy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("rollback"), "{}", text(&o));
}

#[test]
fn a_lost_key_is_replaced_only_by_an_explicit_rotation_that_verify_reports() {
    let dir = tempfile::tempdir().unwrap();
    let data = imported(dir.path(), 300);
    let paths = LedgerPaths::new(&data);
    let old_key = dir.path().join("old.vkey");
    fs::copy(paths.verifier_key(), &old_key).unwrap();
    fs::remove_file(paths.signing_key()).unwrap();
    assert!(Server::try_start(&data, &[]).is_err());

    let o = run(&[
        "ledger",
        "rotate-key",
        "--data-dir",
        data.to_str().unwrap(),
        "--reason",
        "signing.key lost with the old disk",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("UNVOUCHED"), "{}", text(&o));
    Server::start(&data, &[]).stop();
    let rotated = audit_events(&data, "ledger_key_rotated");
    assert_eq!(rotated.len(), 1);

    let o = verify(&data, &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("UNVOUCHED KEY ROTATION"), "{}", text(&o));
    // An auditor holding the old key refuses what the unvouched key signed.
    let o = verify(&data, &["--key", old_key.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn verify_while_serve_runs_is_not_a_failure_for_the_tail_it_is_about_to_sign() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = create_token(&data, "ingest", "shipper");
    let server = Server::start(&data, &["--checkpoint-interval", "1h"]);
    ingest(&server, &token, 20, "live");
    // The events are durable but the next checkpoint is an hour away: the running writer
    // holds the tail; verify names it and does not call it tampering.
    let o = verify(&data, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("are not signed yet"), "{}", text(&o));
    server.stop();
    let o = verify(&data, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!text(&o).contains("not signed"), "{}", text(&o));
}

#[test]
fn a_kill_9_tail_fails_verify_until_serve_checks_and_signs_it_on_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = create_token(&data, "ingest", "shipper");
    let server = Server::start(&data, &["--checkpoint-interval", "1h"]);
    ingest(&server, &token, 30, "acknowledged");
    drop(server); // SIGKILL: no final checkpoint
    let o = verify(&data, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("after the last signed checkpoint")
            && text(&o).contains("`vigil serve` signs it at its next start"),
        "{}",
        text(&o)
    );
    let server = Server::start(&data, &[]);
    assert!(
        server
            .log()
            .contains("were not covered by a signed checkpoint"),
        "{}",
        server.log()
    );
    server.stop();
    assert_eq!(audit_events(&data, "ledger_unsigned_tail_signed").len(), 1);
    let o = verify(&data, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}
