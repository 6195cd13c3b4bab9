//! The `vigil` command line, run as a user would: real files, real processes, exit codes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .expect("run vigil")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_ndjson(path: &Path, n: usize, bad_at: &[usize]) {
    let mut text = String::new();
    for i in 0..n {
        if bad_at.contains(&i) {
            text.push_str("{\"message\": \"truncated\n");
            continue;
        }
        text.push_str(&format!(
            "{{\"@timestamp\":\"2026-11-22T10:{:02}:{:02}Z\",\"message\":\"Failed password for root from 203.0.113.{} port 22\",\"source\":{{\"ip\":\"203.0.113.{}\"}},\"event\":{{\"outcome\":\"failure\"}}}}\n",
            (i / 60) % 60,
            i % 60,
            i % 250,
            i % 250
        ));
    }
    fs::write(path, text).unwrap();
}

fn data_dir(dir: &Path) -> String {
    dir.join("data").display().to_string()
}

fn import(dir: &Path, files: &[&PathBuf]) -> Output {
    import_as(dir, "json", files)
}

fn import_as(dir: &Path, format: &str, files: &[&PathBuf]) -> Output {
    let data = data_dir(dir);
    let mut args = vec![
        "import",
        "--quiet",
        "--data-dir",
        data.as_str(),
        "--format",
        format,
    ];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    vigil(&args)
}

fn verify_json(dir: &Path) -> (i32, serde_json::Value) {
    let data = data_dir(dir);
    let o = vigil(&["verify", "--data-dir", &data, "--format", "json"]);
    let json = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)));
    (o.status.code().unwrap(), json)
}

#[test]
fn malformed_lines_are_reported_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.ndjson");
    let b = dir.path().join("b.ndjson");
    write_ndjson(&a, 3000, &[10, 2500]);
    write_ndjson(&b, 500, &[0]);
    let o = import(dir.path(), &[&a, &b]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{}:11: not json: invalid JSON", a.display())),
        "{err}"
    );
    assert!(err.contains(&format!("{}:2501:", a.display())), "{err}");
    assert!(err.contains(&format!("{}:1:", b.display())), "{err}");
    assert!(
        stdout(&o).contains("imported 3500 events"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("3 lines did not parse"),
        "{}",
        stdout(&o)
    );

    // Every line is in the ledger: the good ones parsed, the bad ones raw with tag parse_error.
    let mut reader = vigil_ledger::LedgerReader::open(&dir.path().join("data")).unwrap();
    assert_eq!(reader.end_seq(), 3500);
    let bad = reader.read_event(10).unwrap();
    assert_eq!(
        bad.get_str("event.original"),
        Some("{\"message\": \"truncated")
    );
    assert!(bad.get("tags").unwrap().to_string().contains("parse_error"));
    assert_eq!(bad.get("log.offset").and_then(|v| v.as_i64()), Some(11));
    let good = reader.read_event(11).unwrap();
    assert_eq!(
        good.get("source.ip").and_then(|v| v.as_ip()),
        Some("203.0.113.11".parse().unwrap())
    );
    assert_eq!(good.get_str("vigil.source"), Some("import:a.ndjson"));

    let (code, report) = verify_json(dir.path());
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["intact"], true);
    assert_eq!(report["events"], 3500);
}

#[test]
fn missing_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    let o = vigil(&["import", "--data-dir", &data, "/nonexistent/x.ndjson"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/x.ndjson: no such file"),
        "{}",
        stderr(&o)
    );
    let o = vigil(&["verify", "--data-dir", &data]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no ledger at"), "{}", stderr(&o));
}

#[test]
fn verify_exit_code_names_the_first_bad_place() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.ndjson");
    write_ndjson(&a, 2000, &[]);
    assert!(import(dir.path(), &[&a]).status.success());
    let data = data_dir(dir.path());
    let o = vigil(&["verify", "--data-dir", &data, "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("OK: verified by key vigil/"),
        "{}",
        stdout(&o)
    );

    let seg = dir
        .path()
        .join("data/ledger/segments/00000000000000000000.seg");
    let mut bytes = fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&seg, bytes).unwrap();
    let o = vigil(&["verify", "--data-dir", &data, "--quiet"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("FIRST BAD PLACE: file 00000000000000000000.seg, block"),
        "{out}"
    );
    assert!(out.contains("seq "), "{out}");
}

#[test]
fn checkpoint_and_proof_verify_with_an_independent_implementation() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.ndjson");
    write_ndjson(&a, 1234, &[]);
    assert!(import(dir.path(), &[&a]).status.success());
    let data = data_dir(dir.path());

    let key = vigil(&["key", "--data-dir", &data]);
    assert!(key.status.success());
    let vkey = stdout(&key);
    // name+keyid+base64: the base64 part may itself contain '+'.
    let parts: Vec<&str> = vkey.trim().splitn(3, '+').collect();
    assert_eq!(parts.len(), 3, "{vkey}");
    assert_eq!(parts[1].len(), 8, "{vkey}");
    let cp = vigil(&["checkpoint", "--data-dir", &data]);
    assert!(cp.status.success());
    let note = stdout(&cp);
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(lines[1], "1234");
    assert!(lines.iter().any(|l| l.starts_with("\u{2014} ")), "{note}");

    let vkey_file = dir.path().join("vkey");
    fs::write(&vkey_file, &vkey).unwrap();
    for seq in ["0", "777", "1233"] {
        let proof = vigil(&["proof", "--data-dir", &data, "--seq", seq]);
        assert!(proof.status.success(), "{}", stderr(&proof));
        let json: serde_json::Value = serde_json::from_slice(&proof.stdout).unwrap();
        for field in [
            "seq",
            "leaf_index",
            "tree_size",
            "leaf",
            "leaf_hash",
            "proof",
            "checkpoint",
        ] {
            assert!(json.get(field).is_some(), "proof JSON lacks {field}");
        }
        assert_eq!(json["checkpoint"].as_str().unwrap(), note);
        let proof_file = dir.path().join(format!("proof-{seq}.json"));
        fs::write(&proof_file, &proof.stdout).unwrap();
        run_python_check(&vkey_file, &proof_file);
    }
    let proof = vigil(&["proof", "--data-dir", &data, "--seq", "5000"]);
    assert_eq!(proof.status.code(), Some(2));
    assert!(
        stderr(&proof).contains("not covered by the latest checkpoint"),
        "{}",
        stderr(&proof)
    );
}

/// Runs the Python verifier. Without python3 + `cryptography` the check is skipped with a
/// message, except where `VIGIL_REQUIRE_PYTHON=1` (CI sets it), where that is a failure.
fn run_python_check(vkey: &Path, proof: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verify_checkpoint.py");
    let required = std::env::var("VIGIL_REQUIRE_PYTHON").is_ok_and(|v| v == "1");
    let probe = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            !required,
            "python3 with the cryptography package is required (VIGIL_REQUIRE_PYTHON=1)"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIP: python3 with `cryptography` not found; independent checkpoint check not run"
        );
        return;
    }
    let o = Command::new("python3")
        .arg(script)
        .arg(vkey)
        .arg(proof)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "python verifier: {}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(stdout(&o).starts_with("OK "), "{}", stdout(&o));
}

#[test]
fn consistency_proof_and_retention_commands() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.ndjson");
    write_ndjson(&a, 600, &[]);
    assert!(import(dir.path(), &[&a]).status.success());
    assert!(import(dir.path(), &[&a]).status.success());
    let data = data_dir(dir.path());
    let o = vigil(&["proof", "--data-dir", &data, "--old-size", "600"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["tree_size"], 1200);
    let old_root = hex32(json["old_root"].as_str().unwrap());
    let proof: Vec<[u8; 32]> = json["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| hex32(h.as_str().unwrap()))
        .collect();
    let latest = vigil_ledger::LedgerReader::open(&dir.path().join("data"))
        .unwrap()
        .latest_checkpoint()
        .unwrap()
        .unwrap();
    vigil_ledger::merkle::verify_consistency(600, 1200, &proof, &old_root, &latest.checkpoint.root)
        .unwrap();

    let o = vigil(&[
        "retention",
        "hold",
        "--data-dir",
        &data,
        "--reason",
        "case 42",
    ]);
    assert!(o.status.success());
    let o = vigil(&["retention", "status", "--data-dir", &data]);
    assert!(stdout(&o).contains("legal hold: case 42"), "{}", stdout(&o));
    let o = vigil(&["retention", "prune", "--data-dir", &data, "--max-age", "0s"]);
    assert!(
        stdout(&o).contains("legal hold set, nothing pruned"),
        "{}",
        stdout(&o)
    );
    let o = vigil(&["retention", "release", "--data-dir", &data]);
    assert!(o.status.success());
    let o = vigil(&["retention", "prune", "--data-dir", &data, "--max-age", "0s"]);
    assert!(stdout(&o).contains("nothing to prune"), "{}", stdout(&o));
    let o = vigil(&[
        "retention",
        "prune",
        "--data-dir",
        &data,
        "--max-age",
        "ten days",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

fn hex32(s: &str) -> [u8; 32] {
    let v: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

#[test]
fn serve_creates_the_ledger_and_signs_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir(dir.path());
    // Ports the OS picks: the defaults may be taken on a shared machine.
    let child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "serve",
            "--data-dir",
            &data,
            "--http",
            "127.0.0.1:0",
            "--syslog-udp",
            "127.0.0.1:0",
            "--syslog-tcp",
            "127.0.0.1:0",
            "--syslog-tls",
            "127.0.0.1:0",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let key = dir.path().join("data/ledger/signing.key");
    // The verifier key is written just after the signing key: wait for both.
    let vkey = dir.path().join("data/ledger/verifier.vkey");
    for _ in 0..100 {
        if key.exists() && vkey.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(key.exists(), "serve did not create the signing key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A second writer is refused with a clear message while serve runs.
    let a = dir.path().join("a.ndjson");
    write_ndjson(&a, 5, &[]);
    let o = import(dir.path(), &[&a]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("in use by another Vigil process"),
        "{}",
        stderr(&o)
    );
    // Readers work alongside.
    assert!(vigil(&["key", "--data-dir", &data]).status.success());
    // SIGTERM: clean shutdown.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("signing key"), "{err}");
    assert!(err.contains("shutting down"), "{err}");
}

/// Every byte under `dir`, with ledger blocks decompressed, so a secret cannot hide in zstd.
pub fn all_bytes_of_data_dir(data: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![data.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.extend(fs::read(&p).unwrap());
            }
        }
    }
    if let Ok(mut reader) = vigil_ledger::LedgerReader::open(data) {
        let end = reader.end_seq();
        reader
            .for_each_raw(0..end, |_, bytes| {
                out.extend_from_slice(bytes);
                Ok(())
            })
            .unwrap();
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn import_reads_compressed_mixed_and_array_files_and_masks_secrets() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mixed = [
        "<38>Nov 22 09:59:58 bastion sshd[4242]: Failed password for invalid user admin from 203.0.113.5 port 51234 ssh2",
        r#"203.0.113.9 - - [22/Nov/2026:10:00:00 +0000] "GET /login?user=bob&password=Tr0ub4dor HTTP/1.1" 401 12 "-" "curl/8.5""#,
        r#"{"event.action":"authn_login_fail:carol","source.ip":"198.51.100.7","card":"4111 1111 1111 1111"}"#,
        "CEF:0|Acme|FW|1.0|100|Blocked|5|src=192.0.2.44 act=blocked",
        r#"level=warn msg="token leak" Authorization="Bearer abcdefghijklmnopqrstuvwxyz""#,
    ]
    .join("\n");
    let gz = dir.path().join("mixed.log.gz");
    let mut enc = flate2::write::GzEncoder::new(
        fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(mixed.as_bytes()).unwrap();
    enc.finish().unwrap();
    let zst = dir.path().join("mixed.log.zst");
    fs::write(&zst, zstd::encode_all(mixed.as_bytes(), 3).unwrap()).unwrap();
    let array = dir.path().join("alerts.json");
    fs::write(&array, r#"[{"timestamp":"2019-01-02T03:50:11.315110","event_type":"alert","src_ip":"8.42.77.171","alert":{"signature":"ET SCAN Potential SSH Scan"}}, {"event_type":"alert","src_ip":"8.42.77.172"}]"#).unwrap();

    let o = import_as(dir.path(), "auto", &[&gz, &zst, &array]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("imported 12 events"), "{}", stdout(&o));
    assert!(!stderr(&o).contains("parse_error"), "{}", stderr(&o));

    let data = dir.path().join("data");
    let mut reader = vigil_ledger::LedgerReader::open(&data).unwrap();
    let events: Vec<_> = (0..reader.end_seq())
        .map(|s| reader.read_event(s).unwrap())
        .collect();
    let parsers: Vec<&str> = events
        .iter()
        .map(|e| e.get_str("vigil.parser").unwrap())
        .collect();
    assert_eq!(
        &parsers[..5],
        &["syslog", "combined", "json", "cef", "logfmt"]
    );
    assert_eq!(events[0].get_str("user.name"), Some("admin"));
    assert_eq!(events[2].get_str("event.category"), Some("authentication"));
    assert_eq!(
        events[10].get_str("rule.name"),
        Some("ET SCAN Potential SSH Scan")
    );

    let bytes = all_bytes_of_data_dir(&data);
    for secret in [
        "Tr0ub4dor",
        "4111 1111 1111 1111",
        "abcdefghijklmnopqrstuvwxyz",
    ] {
        assert!(
            !contains(&bytes, secret),
            "{secret} reached the data directory"
        );
    }
    assert!(contains(&bytes, "[REDACTED:password]"));
    assert!(contains(&bytes, "[REDACTED:card]"));
}

#[test]
fn import_reads_evtx_from_the_corpus() {
    let corpus = std::env::var_os("VIGIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    let sample = corpus.join("evtx-attack-samples/Credential Access");
    let Some(file) = fs::read_dir(&sample).ok().and_then(|mut d| {
        d.find_map(|e| {
            let p = e.ok()?.path();
            p.extension().is_some_and(|x| x == "evtx").then_some(p)
        })
    }) else {
        assert!(
            std::env::var("VIGIL_REQUIRE_CORPUS").as_deref() != Ok("1"),
            "corpus missing"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIP: no EVTX samples at {}",
            sample.display()
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let o = import_as(dir.path(), "auto", &[&file]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut reader = vigil_ledger::LedgerReader::open(&dir.path().join("data")).unwrap();
    assert!(reader.end_seq() > 0);
    let e = reader.read_event(0).unwrap();
    assert!(e.contains("EventID") && e.contains("Channel"), "{e:?}");
    assert_eq!(e.get_str("vigil.parser"), Some("evtx"));
}
