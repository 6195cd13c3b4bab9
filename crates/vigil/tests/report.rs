//! `vigil report` (issue 17): a scenario generated here with known truth — four sources, each
//! with what it sends, which fields it leaves out, and when it stops — imported into a real
//! ledger; the JSON report's numbers must equal the counts this test computes on its own. A
//! tampered ledger must turn the integrity section red and say where.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::vigil;
use serde_json::{Value, json};

/// One generated event and what the test knows about it.
struct Truth {
    host: &'static str,
    json: Value,
}

const DAY: &str = "2026-12-01";

fn at(minute: u32) -> String {
    format!("{DAY}T{:02}:{:02}:00Z", minute / 60, minute % 60)
}

/// web1: logins all day (every 10 minutes), failures every 3rd, all fields;
/// db1: queries without a user every 15 minutes all day;
/// fw1: denied connections every minute until 06:00, then silent;
/// app1: bursts of 5 credential changes every 2 hours, the last at 22:00.
fn scenario() -> Vec<Truth> {
    let mut out = Vec::new();
    for i in 0..144u32 {
        let outcome = if i % 3 == 0 { "failure" } else { "success" };
        out.push(Truth {
            host: "web1",
            json: json!({"@timestamp": at(i * 10), "host.name": "web1", "event.category": ["authentication"],
                         "event.type": ["start"], "event.outcome": outcome, "user.name": format!("u{}", i % 7),
                         "source.ip": "198.51.100.7", "url.path": "/login", "message": format!("login {outcome}")}),
        });
    }
    for i in 0..96u32 {
        out.push(Truth {
            host: "db1",
            json: json!({"@timestamp": at(i * 15), "host.name": "db1", "event.category": ["database"],
                         "event.type": ["access"], "event.outcome": "success", "source.ip": "10.0.0.5",
                         "message": "SELECT"}),
        });
    }
    for i in 0..360u32 {
        out.push(Truth {
            host: "fw1",
            json: json!({"@timestamp": at(i), "host.name": "fw1", "event.category": ["network"],
                         "event.type": ["denied", "connection"], "event.outcome": "failure",
                         "source.ip": "203.0.113.9", "destination.ip": "10.0.0.1", "message": "DROP"}),
        });
    }
    for burst in 0..12u32 {
        for k in 0..5u32 {
            out.push(Truth {
                host: "app1",
                json: json!({"@timestamp": format!("{DAY}T{:02}:00:0{k}Z", burst * 2), "host.name": "app1",
                             "event.category": ["iam"], "event.type": ["change"], "event.outcome": "success",
                             "user.name": "admin", "user.target.name": format!("user{k}"),
                             "event.action": "password_changed", "message": "password changed"}),
            });
        }
    }
    out
}

fn import(dir: &Path, truth: &[Truth]) -> std::path::PathBuf {
    let data = dir.join("data");
    let file = dir.join("events.ndjson");
    let mut lines: String = truth.iter().map(|t| format!("{}\n", t.json)).collect();
    // gone1 sent the day before the period and nothing in it: silent since before it began.
    for i in 0..24 {
        lines.push_str(&format!(
            "{}\n",
            json!({"@timestamp": format!("2026-11-30T{i:02}:30:00Z"), "host.name": "gone1", "message": "heartbeat"})
        ));
    }
    std::fs::write(&file, lines).unwrap();
    let out = vigil()
        .args(["import", "--quiet", "--format", "json", "--data-dir"])
        .arg(&data)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    data
}

fn report(data: &Path, extra: &[&str]) -> Value {
    let out = vigil()
        .args([
            "report",
            "pci-dss",
            "--from",
            &format!("{DAY}T00:00:00Z"),
            "--to",
            "2026-12-02T00:00:00Z",
            "--data-dir",
        ])
        .arg(data)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn control<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no control {id}"))
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| host(s.as_str().unwrap()).to_owned())
        .collect();
    n.sort();
    n
}

/// The host of a source name: sources are keyed `HOST@SENDER`, and the import is the sender
/// of every event here.
fn host(source: &str) -> &str {
    source
        .strip_suffix("@import:events.ndjson")
        .unwrap_or_else(|| panic!("{source} was not sent by the import"))
}

#[test]
fn the_reports_numbers_equal_the_scenarios_known_truth_and_tampering_turns_it_red() {
    let dir = tempfile::tempdir().unwrap();
    let truth = scenario();
    let data = import(dir.path(), &truth);
    let r = report(&data, &[]);

    // Independent counts from the generated events.
    let has = |t: &Truth, f: &str| t.json.get(f).is_some();
    let list_has = |t: &Truth, f: &str, v: &str| {
        t.json[f]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == v))
            || t.json[f] == v
    };
    let mut per_host: BTreeMap<&str, Vec<&Truth>> = BTreeMap::new();
    for t in &truth {
        per_host.entry(t.host).or_default().push(t);
    }
    assert_eq!(r["events"], truth.len() as u64);
    assert_eq!(r["framework"], "pci-dss-4.0.1");

    // 10.2.1.4 invalid access: authentication failures or denials.
    let invalid: Vec<&Truth> = truth
        .iter()
        .filter(|t| {
            (list_has(t, "event.category", "authentication")
                && t.json["event.outcome"] == "failure")
                || list_has(t, "event.type", "denied")
        })
        .collect();
    let c = control(&r, "10.2.1.4");
    assert_eq!(c["events"], invalid.len() as u64);
    assert_eq!(names(&c["sources"]["covered"]), ["fw1", "web1"]);
    assert_eq!(names(&c["sources"]["missing"]), ["app1", "db1"]);
    assert_eq!(c["status"], "met");
    // 10.2.1.5 credential changes: app1's bursts only.
    let c = control(&r, "10.2.1.5");
    assert_eq!(c["events"], per_host["app1"].len() as u64);
    assert_eq!(names(&c["sources"]["covered"]), ["app1"]);
    // 10.2.1.3 access to audit logs: nobody read them in this period, so the gap shows.
    assert_eq!(control(&r, "10.2.1.3")["status"], "gap");

    // 10.2.2 completeness: ratios per source equal the generated ones; db1 has no user.
    let c = control(&r, "10.2.2");
    for (host, events) in &per_host {
        let users = events.iter().filter(|t| has(t, "user.name")).count() as f64;
        let expected = (users / events.len() as f64 * 10_000.0).round() / 10_000.0;
        assert_eq!(
            c["evidence"]["per_source"][format!("{host}@import:events.ndjson")]["user"].as_f64(),
            Some(expected),
            "{host}"
        );
        assert_eq!(
            c["evidence"]["per_source"][format!("{host}@import:events.ndjson")]["time"].as_f64(),
            Some(1.0)
        );
    }
    assert_eq!(c["status"], "gap");
    assert_eq!(
        names(&c["sources"]["missing"]),
        ["db1", "fw1"],
        "db1 lacks users, fw1 users"
    );

    // Silent sources: fw1 stopped at 06:00 (a minute's cadence); app1's two-hour bursts and the
    // others' steady sends are not silence.
    let silent: Vec<&str> = r["failures"]["silent_sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| host(s["source"].as_str().unwrap()))
        .collect();
    assert_eq!(silent, ["fw1", "gone1"]);
    assert_eq!(
        r["failures"]["silent_sources"][1]["last_seen"],
        "2026-11-30T23:30:00Z"
    );
    let fw1 = &r["failures"]["silent_sources"][0];
    assert_eq!(fw1["last_seen"], format!("{DAY}T05:59:00Z"));
    assert_eq!(fw1["silent_secs"], 18 * 3600 + 60);
    assert_eq!(control(&r, "10.7.2")["status"], "failed");

    // Integrity: verified, checkpoints signed, and the report itself signed.
    assert_eq!(r["integrity"]["verified"], true, "{:#}", r["integrity"]);
    assert_eq!(
        control(&r, "10.3.2")["status"]
            .as_str()
            .map(|s| s != "failed"),
        Some(true)
    );
    assert_eq!(r["signature"]["digest"].as_str().map(str::len), Some(64));
    assert!(
        r["signature"]["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("vigil-report/v1\npci-dss-4.0.1\n")),
        "{:#}",
        r["signature"]
    );

    // The HTML report names every control and escapes what came from events.
    let html = dir.path().join("report.html");
    let out = vigil()
        .args(["report", "pci-dss", "--format", "html", "--data-dir"])
        .arg(&data)
        .arg("--out")
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    for id in [
        "10.2.1.1", "10.2.1.7", "10.2.2", "10.3.2", "10.4.1", "10.5.1", "10.7.2",
    ] {
        assert!(page.contains(&format!("id=\"control-{id}\"")), "{id}");
    }
    assert!(page.contains(r["signature"]["digest"].as_str().unwrap()) || page.contains("SHA-256"));

    // One byte changed in the middle of the ledger: the integrity section fails and says where.
    let segment = std::fs::read_dir(data.join("ledger/segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .expect("a segment file");
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&segment, bytes).unwrap();
    let r = report(&data, &[]);
    assert_eq!(r["integrity"]["verified"], false);
    let problem = r["integrity"]["problems"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(problem.contains(".seg"), "the place is named: {problem}");
    assert_eq!(control(&r, "10.3.2")["status"], "failed");
}

/// `vigil report verify`: a JSON and an HTML report check, with the ledger's key pinned and
/// without; an independent verifier (Python, `hashlib` + `cryptography`) agrees; one byte
/// changed anywhere in either file, or another key, fails.
#[test]
fn a_signed_report_verifies_and_one_changed_byte_or_another_key_fails() {
    let dir = tempfile::tempdir().unwrap();
    let data = import(dir.path(), &scenario());
    let json_file = dir.path().join("report.json");
    let html_file = dir.path().join("report.html");
    for (format, file) in [("json", &json_file), ("html", &html_file)] {
        let out = vigil()
            .args(["report", "pci-dss", "--format", format, "--data-dir"])
            .arg(&data)
            .arg("--out")
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let key = common::run_ok(vigil().args(["key", "--data-dir"]).arg(&data));
    let key = key.trim().to_owned();
    let verify = |file: &Path, key: Option<&str>| {
        let mut cmd = vigil();
        cmd.args(["report", "verify"]).arg(file);
        if let Some(k) = key {
            cmd.args(["--key", k]);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let python = common::require_tool("python3") && common::require_python_module("cryptography");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verify_report.py");
    let independent = |file: &Path| {
        std::process::Command::new("python3")
            .arg(&script)
            .arg(&key)
            .arg(file)
            .output()
            .unwrap()
    };
    for file in [&json_file, &html_file] {
        let (code, out) = verify(file, Some(&key));
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("hashes to the stated SHA-256"), "{out}");
        assert!(out.contains("the key given with --key"), "{out}");
        let (code, out) = verify(file, None);
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("compare it with the key"), "{out}");
        if python {
            let out = independent(file);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    // Another key pinned: refused.
    let other = tempfile::tempdir().unwrap();
    let other_data = import(other.path(), &scenario()[..10]);
    let other_key = common::run_ok(vigil().args(["key", "--data-dir"]).arg(&other_data));
    let (code, out) = verify(&json_file, Some(other_key.trim()));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("FAILED"), "{out}");

    // One byte changed: a number in the JSON, a letter of the page's visible text, a digit of
    // the page's hidden JSON. Vigil and the independent verifier both refuse each.
    let json_text = std::fs::read_to_string(&json_file).unwrap();
    let page = std::fs::read_to_string(&html_file).unwrap();
    let events = json_text.find("\"events\": ").expect("an events count") + 10;
    let hidden = page.find("vigil-report-json").unwrap();
    let visible = page.find("log controls").unwrap();
    let changed = [
        ("changed.json", flip(json_text.as_bytes(), events)),
        ("visible.html", flip(page.as_bytes(), visible)),
        (
            "hidden.html",
            flip(
                page.as_bytes(),
                hidden + page[hidden..].find("&quot;events&quot;:").unwrap() + 19,
            ),
        ),
    ];
    for (name, bytes) in changed {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let (code, out) = verify(&file, Some(&key));
        assert_eq!(code, Some(1), "{name}: {out}");
        assert!(out.starts_with("FAILED"), "{name}: {out}");
        if python && name != "visible.html" {
            // (the independent check reads the JSON a page carries, not its look)
            let out = independent(&file);
            assert!(!out.status.success(), "{name}: python accepted it");
        }
    }
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at] ^= 0x01;
    b
}

/// The integrity section lists the verifications on record (`vigil verify`, stored by the next
/// start) and counts the witnesses' cosignatures of the period's checkpoints; a record that is
/// not this ledger's signed checkpoint does not count.
#[test]
fn verification_runs_and_witness_cosignatures_are_in_the_integrity_section() {
    use vigil_ledger::cosignature::CosignatureSigner;
    use vigil_ledger::{LedgerPaths, LedgerReader, cosigned, note::parse_note};
    let dir = tempfile::tempdir().unwrap();
    let data = import(dir.path(), &scenario()[..50]);
    // Not on record without --record; on record with it.
    common::run_ok(vigil().args(["verify", "--data-dir"]).arg(&data));
    common::run_ok(
        vigil()
            .args(["verify", "--record", "--data-dir"])
            .arg(&data),
    );
    // A start stores the pending audit event of the command line's verification.
    common::Server::start(&data, &[]).stop();

    let latest = LedgerReader::open(&data)
        .unwrap()
        .latest_checkpoint()
        .unwrap()
        .expect("a signed checkpoint");
    let text = parse_note(&latest.note).unwrap().text.to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let paths = LedgerPaths::new(&data);
    for name in ["witness-a.example", "witness-b.example"] {
        let w = CosignatureSigner::generate(name).unwrap();
        let line = w.cosign(&text, now).unwrap();
        cosigned::append(&paths, &format!("{}{line}", latest.note)).unwrap();
    }
    // Another log's checkpoint, cosigned: not this ledger's, not counted.
    let other = tempfile::tempdir().unwrap();
    let other_data = import(other.path(), &scenario()[..5]);
    let theirs = LedgerReader::open(&other_data)
        .unwrap()
        .latest_checkpoint()
        .unwrap()
        .unwrap();
    let w = CosignatureSigner::generate("witness-c.example").unwrap();
    let line = w
        .cosign(parse_note(&theirs.note).unwrap().text, now)
        .unwrap();
    cosigned::append(&paths, &format!("{}{line}", theirs.note)).unwrap();

    // Three sshd failures (syslog, imported) and a rule on linux/sshd: the logsource evidence.
    let minute_ago = |m: i64| {
        vigil_event::Timestamp::from_nanos(
            vigil_event::Timestamp::now().as_nanos() - m * 60_000_000_000,
        )
        .to_rfc3339()
    };
    let auth = dir.path().join("auth.log");
    let lines: String = (1..=3)
        .map(|m| {
            format!(
                "<38>1 {} host1 sshd 812 - - Failed password for root from 203.0.113.5 port 5211{m} ssh2\n",
                minute_ago(m)
            )
        })
        .collect();
    std::fs::write(&auth, lines).unwrap();
    common::run_ok(
        vigil()
            .args(["import", "--quiet", "--data-dir"])
            .arg(&data)
            .arg(&auth),
    );
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("ssh.yml"), common::SSH_FAILED_LOGIN_RULE).unwrap();

    let out = vigil()
        .args(["report", "pci-dss", "--from", "-1h", "--rules"])
        .arg(&rules)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let i = &r["integrity"];
    assert_eq!(i["verified"], true, "{i:#}");
    assert_eq!(i["verification_runs"]["total"], 1, "{i:#}");
    assert_eq!(i["verification_runs"]["failed"], 0, "{i:#}");
    assert_eq!(
        i["verification_runs"]["runs"][0]["outcome"], "success",
        "{i:#}"
    );
    assert_eq!(i["witness_cosignatures"], 2, "{i:#}");
    assert_eq!(i["cosigned_checkpoints"], 1, "{i:#}");
    assert_eq!(
        i["witnesses"],
        json!(["witness-a.example", "witness-b.example"]),
        "{i:#}"
    );
    let c = control(&r, "10.3.2");
    assert_eq!(c["evidence"]["witness_cosignatures"], 2);
    assert_eq!(c["evidence"]["verification_runs"], 1);

    let c = control(&r, "10.2.1.4");
    let sshd = c["evidence"]["logsources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["logsource"] == "product: linux, service: sshd")
        .unwrap_or_else(|| panic!("{c:#}"));
    assert_eq!(sshd["events"], 3, "{sshd:#}");
    assert_eq!(
        sshd["sources"],
        json!(["host1@import:auth.log"]),
        "{sshd:#}"
    );
    assert_eq!(sshd["rules"], json!(["SSH failed login"]), "{sshd:#}");
}
