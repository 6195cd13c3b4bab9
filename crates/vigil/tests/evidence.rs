//! `vigil evidence export|verify` (issue 17): bundles of selected events that a third party
//! checks without Vigil. Each bundle is checked three ways — by `vigil evidence verify`, by the
//! bundled `verify.py`, and by an independent verifier written here from the RFCs (sha2 and
//! ed25519-dalek only, none of Vigil's proof code) — and one byte changed fails all three.

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::{SSH_FAILED_LOGIN_RULE, Server, vigil};
use sha2::{Digest, Sha256};

const ATTACKER: &str = "203.0.113.5";
const OTHER: &str = "198.51.100.7";

/// Failed logins: 3 from ATTACKER, 2 from OTHER, and 2 successful logins.
fn body() -> String {
    let mut lines = Vec::new();
    for (i, (ip, outcome)) in [
        (ATTACKER, "failure"),
        (OTHER, "failure"),
        (ATTACKER, "failure"),
        (OTHER, "success"),
        (OTHER, "failure"),
        (ATTACKER, "failure"),
        (ATTACKER, "success"),
    ]
    .iter()
    .enumerate()
    {
        lines.push(format!(
            "{{\"@timestamp\":\"2026-12-07T10:00:0{i}Z\",\"process.name\":\"sshd\",\"event.action\":\"ssh_login\",\"event.outcome\":\"{outcome}\",\"source.ip\":\"{ip}\",\"user.name\":\"root\",\"message\":\"login {outcome} for root from {ip}\"}}\n"
        ));
    }
    lines.concat()
}

// ---- An independent verifier: RFC 6962/9162 and C2SP signed notes, from the specs. ----

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The root of the subtree of `size` leaves holding leaf `index`, from the leaf hash and the
/// audit path (RFC 6962 §2.1.1 read recursively: the path is consumed from the bottom).
fn root_from_path(leaf: [u8; 32], index: u64, size: u64, path: &[[u8; 32]]) -> Option<[u8; 32]> {
    if size == 1 {
        return path.is_empty().then_some(leaf);
    }
    let (last, rest) = path.split_last()?;
    let k = 1u64 << (63 - (size - 1).leading_zeros());
    if index < k {
        let left = root_from_path(leaf, index, k, rest)?;
        Some(sha256(&[&[1], &left, last]))
    } else {
        let right = root_from_path(leaf, index - k, size - k, rest)?;
        Some(sha256(&[&[1], last, &right]))
    }
}

/// Consistency (RFC 6962 §2.1.2 `SUBPROOF`, checked recursively): returns (old root, new root)
/// of the subtree, consuming the proof from its end (each level appends its sibling last).
fn consistency_roots(
    m: u64,
    n: u64,
    complete: bool,
    old_root: [u8; 32],
    proof: &mut Vec<[u8; 32]>,
) -> Option<([u8; 32], [u8; 32])> {
    if m == n {
        if complete {
            return Some((old_root, old_root));
        }
        let h = proof.pop()?;
        return Some((h, h));
    }
    let k = 1u64 << (63 - (n - 1).leading_zeros());
    let sibling = proof.pop()?;
    if m <= k {
        let (old, new) = consistency_roots(m, k, complete, old_root, proof)?;
        Some((old, sha256(&[&[1], &new, &sibling])))
    } else {
        let (old, new) = consistency_roots(m - k, n - k, false, old_root, proof)?;
        Some((
            sha256(&[&[1], &sibling, &old]),
            sha256(&[&[1], &sibling, &new]),
        ))
    }
}

/// (origin, size, root) of a note signed by the vkey, or why not.
fn open_note(note: &str, vkey: &str) -> Result<(String, u64, [u8; 32]), String> {
    let mut parts = vkey.trim().splitn(3, '+');
    let (name, id, key) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let key = B64.decode(key).unwrap();
    assert_eq!(key[0], 1);
    let public = ed25519_dalek::VerifyingKey::from_bytes(&key[1..].try_into().unwrap()).unwrap();
    let split = note.rfind("\n\n").ok_or("no signatures")?;
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    let signed = signatures.lines().any(|line| {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return false;
        };
        let Some((signer, blob)) = rest.split_once(' ') else {
            return false;
        };
        let Ok(blob) = B64.decode(blob) else {
            return false;
        };
        signer == name
            && blob.len() == 68
            && hex(&blob[..4]) == id
            && public
                .verify_strict(
                    text.as_bytes(),
                    &ed25519_dalek::Signature::from_bytes(&blob[4..].try_into().unwrap()),
                )
                .is_ok()
    });
    if !signed {
        return Err("no valid signature by the bundle's key".into());
    }
    let lines: Vec<&str> = text.lines().collect();
    let root = B64.decode(lines[2]).map_err(|e| e.to_string())?;
    Ok((
        lines[0].to_owned(),
        lines[1].parse().map_err(|_| "size")?,
        root.try_into().map_err(|_| "root")?,
    ))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> [u8; 32] {
    let v: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

/// Checks a bundle with the code above; the leaves (canonical event bytes) when it holds.
fn independent_verify(bundle: &Path) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let read = |n: &str| std::fs::read_to_string(bundle.join(n)).unwrap();
    let vkey = read("vkey.txt");
    let (origin, size, root) = open_note(&read("checkpoint.txt"), &vkey)?;
    let (latest_origin, latest_size, latest_root) =
        open_note(&read("latest-checkpoint.txt"), &vkey)?;
    assert_eq!(origin, latest_origin);
    let proofs: serde_json::Value = serde_json::from_str(&read("proofs.json")).unwrap();
    let mut leaves = Vec::new();
    for line in read("events.ndjson").lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let seq = v["seq"].as_u64().unwrap();
        let leaf = B64.decode(v["leaf"].as_str().unwrap()).unwrap();
        let path: Vec<[u8; 32]> = proofs[seq.to_string()]["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| unhex(h.as_str().unwrap()))
            .collect();
        let leaf_hash = sha256(&[&[0], &leaf]);
        if root_from_path(leaf_hash, seq, size, &path) != Some(root) {
            return Err(format!("seq {seq} is not in the signed tree"));
        }
        leaves.push((seq, leaf));
    }
    let c: serde_json::Value = serde_json::from_str(&read("consistency.json")).unwrap();
    let mut proof: Vec<[u8; 32]> = c["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| unhex(h.as_str().unwrap()))
        .collect();
    if size < latest_size {
        let roots = consistency_roots(size, latest_size, true, root, &mut proof);
        if roots != Some((root, latest_root)) || !proof.is_empty() {
            return Err("the latest checkpoint does not extend the bundle's".into());
        }
    } else if (size, root) != (latest_size, latest_root) {
        return Err("the checkpoints differ at the same size".into());
    }
    Ok(leaves)
}

// ---- The tests ----

fn run(args: &[&str]) -> (i32, String, String) {
    let out = vigil().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `python3 verify.py BUNDLE` (the script in the bundle); `None` when Python or `cryptography`
/// is missing here (CI installs both).
fn python_verify(bundle: &Path) -> Option<(bool, String)> {
    if !common::require_python_module("cryptography") {
        return None;
    }
    let out = Command::new("python3")
        .arg(bundle.join("verify.py"))
        .arg(bundle)
        .output()
        .unwrap();
    Some((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// Exports until the selected events are under a signed checkpoint (one is signed within
/// seconds of an append while serve runs).
fn export(data: &Path, out: &Path, selection: &[&str]) -> String {
    let data = data.display().to_string();
    let out_arg = out.display().to_string();
    let mut last = String::new();
    let exported = common::wait_until(30, || {
        let mut args = vec!["evidence", "export", "--data-dir", &data, "--out", &out_arg];
        args.extend_from_slice(selection);
        let (code, stdout, stderr) = run(&args);
        last = format!("{stdout}{stderr}");
        code == 0
    });
    assert!(exported, "export never succeeded: {last}");
    last
}

fn source_ip(e: &vigil_event::Event) -> Option<String> {
    e.get("source.ip").map(|v| v.to_string())
}

/// A proven event is one of the attacker's failed logins (and nothing else).
fn assert_failed_login_from_attacker(e: &vigil_event::Event) {
    assert_eq!(source_ip(e).as_deref(), Some(ATTACKER), "{e:?}");
    assert_eq!(e.get_str("event.outcome"), Some("failure"), "{e:?}");
}

fn decoded(leaves: &[(u64, Vec<u8>)]) -> Vec<vigil_event::Event> {
    leaves
        .iter()
        .map(|(_, l)| vigil_event::Event::from_canonical(l).unwrap())
        .collect()
}

#[test]
fn a_query_bundle_checks_everywhere_and_one_changed_byte_fails_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ingest = common::create_token(&data, "ingest", "sender");
    let server = Server::start(&data, &[]);
    let a = common::ingest_ndjson(&server.url, &ingest, &body());
    assert_eq!(a.status, 200, "{}", a.body);

    let bundle = dir.path().join("bundle");
    let said = export(
        &data,
        &bundle,
        &[
            "--query",
            &format!("event.outcome=failure source.ip={ATTACKER}"),
        ],
    );
    assert!(said.contains("3 event(s)"), "{said}");

    // The independent verifier accepts it, and the proven bytes are the selected events.
    let leaves = independent_verify(&bundle).expect("independent check");
    let events = decoded(&leaves);
    assert_eq!(events.len(), 3);
    for e in &events {
        assert_failed_login_from_attacker(e);
    }
    let (code, stdout, _) = run(&["evidence", "verify", &bundle.display().to_string()]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.starts_with("OK: 3 event(s)"), "{stdout}");
    if let Some((ok, said)) = python_verify(&bundle) {
        assert!(ok && said.starts_with("OK: 3 event(s)"), "{said}");
    }
    // The export itself is on record (reading the audit trail out, PCI DSS 10.2.1.3).
    assert!(
        common::wait_until(20, || !common::audit_events(&data, "evidence-export")
            .is_empty()),
        "no evidence-export audit event"
    );

    // One byte of one event changed: every verifier refuses, naming the event.
    let tampered = dir.path().join("tampered");
    std::fs::create_dir(&tampered).unwrap();
    for f in std::fs::read_dir(&bundle).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, tampered.join(f.file_name().unwrap())).unwrap();
    }
    let lines = std::fs::read_to_string(tampered.join("events.ndjson")).unwrap();
    let mut out = String::new();
    for (i, line) in lines.lines().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        if i == 1 {
            let mut leaf = B64.decode(v["leaf"].as_str().unwrap()).unwrap();
            let last = leaf.len() - 1;
            leaf[last] ^= 1;
            v["leaf"] = B64.encode(&leaf).into();
        }
        out.push_str(&format!("{v}\n"));
    }
    std::fs::write(tampered.join("events.ndjson"), out).unwrap();
    let seq = leaves[1].0;
    assert_eq!(
        independent_verify(&tampered),
        Err(format!("seq {seq} is not in the signed tree"))
    );
    let (code, stdout, _) = run(&["evidence", "verify", &tampered.display().to_string()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(&format!("event seq {seq}")), "{stdout}");
    if let Some((ok, said)) = python_verify(&tampered) {
        assert!(!ok && said.contains(&format!("event seq {seq}")), "{said}");
    }

    // The readable copy changed, the proven bytes left alone: Vigil refuses (the copy must be
    // exactly what the leaf decodes to).
    let lines = std::fs::read_to_string(bundle.join("events.ndjson")).unwrap();
    let mut out = String::new();
    for (i, line) in lines.lines().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        if i == 0 {
            v["event"]["source.ip"] = "192.0.2.99".into();
        }
        out.push_str(&format!("{v}\n"));
    }
    std::fs::write(tampered.join("events.ndjson"), out).unwrap();
    let (code, stdout, _) = run(&["evidence", "verify", &tampered.display().to_string()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("readable copy"), "{stdout}");

    // A key other than the one trusted: refused even though the bundle checks with its own.
    let other = dir.path().join("other-data");
    let line = dir.path().join("one.log");
    std::fs::write(&line, "<38>Dec  7 10:00:00 h sshd[1]: hello\n").unwrap();
    let other_arg = other.display().to_string();
    let (code, _, stderr) = run(&[
        "import",
        "--quiet",
        "--data-dir",
        &other_arg,
        &line.display().to_string(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (code, other_key, stderr) = run(&["key", "--data-dir", &other_arg]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = run(&[
        "evidence",
        "verify",
        "--key",
        other_key.trim(),
        &bundle.display().to_string(),
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("not the trusted key"), "{stdout}");
    let (_, own_key, _) = run(&["key", "--data-dir", &data.display().to_string()]);
    let (code, stdout, _) = run(&[
        "evidence",
        "verify",
        "--key",
        own_key.trim(),
        &bundle.display().to_string(),
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("the key given with --key"), "{stdout}");

    // A checkpoint whose root was changed no longer carries a valid signature.
    let note = std::fs::read_to_string(bundle.join("checkpoint.txt")).unwrap();
    let mut lines: Vec<String> = note.split('\n').map(str::to_owned).collect();
    lines[1] = (lines[1].parse::<u64>().unwrap() + 1).to_string();
    std::fs::write(
        tampered.join("events.ndjson"),
        std::fs::read(bundle.join("events.ndjson")).unwrap(),
    )
    .unwrap();
    std::fs::write(tampered.join("checkpoint.txt"), lines.join("\n")).unwrap();
    assert!(independent_verify(&tampered).is_err());
    let (code, stdout, _) = run(&["evidence", "verify", &tampered.display().to_string()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("checkpoint.txt"), "{stdout}");
    if let Some((ok, said)) = python_verify(&tampered) {
        assert!(!ok, "{said}");
    }

    // Refusals that lose nothing: an existing bundle is not overwritten, a table is not events.
    let data_arg = data.display().to_string();
    let (code, _, stderr) = run(&[
        "evidence",
        "export",
        "--data-dir",
        &data_arg,
        "--query",
        "*",
        "--out",
        &bundle.display().to_string(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not empty"), "{stderr}");
    let (code, _, stderr) = run(&[
        "evidence",
        "export",
        "--data-dir",
        &data_arg,
        "--query",
        "* | stats count by source.ip",
        "--out",
        &dir.path().join("table").display().to_string(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("returns a table"), "{stderr}");
    drop(server);
}

#[test]
fn an_alert_bundle_holds_the_alert_and_the_events_it_matched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("ssh.yml"), SSH_FAILED_LOGIN_RULE).unwrap();
    let ingest = common::create_token(&data, "ingest", "sender");
    let viewer = common::create_token(&data, "viewer", "reader");
    let server = Server::start(&data, &["--rules", &rules.display().to_string()]);
    let a = common::ingest_ndjson(&server.url, &ingest, &body());
    assert_eq!(a.status, 200, "{}", a.body);
    let auth = [format!("Authorization: Bearer {viewer}")];
    let mut alert = serde_json::Value::Null;
    assert!(
        common::wait_until(30, || {
            let list =
                common::curl("GET", &format!("{}/api/v1/alerts", server.url), &auth, None).json();
            alert = list["alerts"]
                .as_array()
                .and_then(|l| {
                    l.iter()
                        .find(|a| a["group"]["source.ip"] == ATTACKER && a["count"] == 3)
                })
                .cloned()
                .unwrap_or_default();
            !alert.is_null()
        }),
        "no alert counting 3 failures from {ATTACKER}"
    );
    let id = alert["id"].as_u64().unwrap().to_string();
    let bundle = dir.path().join("bundle");
    // The alert's events reach the ledger shortly after the API shows it.
    let mut events = Vec::new();
    assert!(
        common::wait_until(30, || {
            let _ = std::fs::remove_dir_all(&bundle);
            export(&data, &bundle, &["--alert", &id]);
            events = decoded(&independent_verify(&bundle).expect("independent check"));
            events
                .iter()
                .filter(|e| source_ip(e).as_deref() == Some(ATTACKER))
                .count()
                == 3
        }),
        "{:#?}",
        events.iter().map(|e| e.to_json()).collect::<Vec<_>>()
    );
    let alerts: Vec<_> = events
        .iter()
        .filter(|e| e.get("event.dataset").and_then(|v| v.as_str()) == Some("vigil.alert"))
        .collect();
    assert!(
        !alerts.is_empty(),
        "the alert's own events are in the bundle"
    );
    for a in &alerts {
        assert_eq!(
            a.get("vigil.alert.id")
                .and_then(|v| v.as_i64())
                .map(|v| v.to_string()),
            Some(id.clone())
        );
    }
    // Only what the alert matched: no event from the other address, no success.
    for e in events
        .iter()
        .filter(|e| !alerts.iter().any(|a| std::ptr::eq(*a, *e)))
    {
        assert_failed_login_from_attacker(e);
    }
    let (code, stdout, _) = run(&["evidence", "verify", &bundle.display().to_string()]);
    assert_eq!(code, 0, "{stdout}");
    if let Some((ok, said)) = python_verify(&bundle) {
        assert!(ok, "{said}");
    }
    let (code, _, stderr) = run(&[
        "evidence",
        "export",
        "--data-dir",
        &data.display().to_string(),
        "--alert",
        "999999",
        "--out",
        &dir.path().join("none").display().to_string(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no alert 999999"), "{stderr}");
    drop(server);
}
