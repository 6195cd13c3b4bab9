//! `vigil search` on real logs: the answers are checked against counts computed here from the
//! raw files with plain regular expressions, not by the engine under test.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .expect("run vigil")
}

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("VIGIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    if dir.join("README.md").exists() {
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

struct Fixture {
    _dir: tempfile::TempDir,
    data: String,
    access: String,
    auth: String,
}

fn fixture() -> Option<Fixture> {
    let corpus = corpus()?;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let access = corpus.join("elastic-examples/apache_logs/apache_logs.part1of3");
    let auth = corpus.join("elastic-examples/auth_log/auth.log.part1of3");
    let o = vigil(&[
        "import",
        "-q",
        "--data-dir",
        &data,
        &access.display().to_string(),
        &auth.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(Fixture {
        _dir: dir,
        data,
        access: std::fs::read_to_string(access).unwrap(),
        auth: std::fs::read_to_string(auth).unwrap(),
    })
}

fn search_json(f: &Fixture, query: &str) -> serde_json::Value {
    let o = vigil(&[
        "search",
        "--data-dir",
        &f.data,
        "--format",
        "json",
        "--limit",
        "100000",
        query,
    ]);
    assert!(
        o.status.success(),
        "{query}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `(key, count)` pairs from result rows whose first column is the key and last the count.
fn pairs(result: &serde_json::Value) -> BTreeMap<String, i64> {
    result["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            (
                r[0].as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| r[0].to_string()),
                r[r.len() - 1].as_i64().unwrap(),
            )
        })
        .collect()
}

fn regex_counts(text: &str, re: &str) -> BTreeMap<String, i64> {
    let re = regex::Regex::new(re).unwrap();
    let mut m = BTreeMap::new();
    for line in text.lines() {
        if let Some(c) = re.captures(line) {
            *m.entry(c[1].to_owned()).or_insert(0) += 1;
        }
    }
    m
}

/// The goldens hold for both engines: scanning the ledger (no index yet), then through the
/// index `vigil reindex` builds.
#[test]
fn seed_example_and_friends_match_independent_counts() {
    let Some(f) = fixture() else { return };
    check_goldens(&f);
    let o = vigil(&["reindex", "--data-dir", &f.data]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.starts_with("indexed "), "{said}");
    assert!(Path::new(&f.data).join("index/meta.json").exists());
    check_goldens(&f);
}

fn check_goldens(f: &Fixture) {
    // The seed example, literally.
    let r = search_json(
        f,
        "sourcetype=access_combined | search status=404 | stats count by src_ip | where count > 5",
    );
    assert_eq!(r["columns"], serde_json::json!(["src_ip", "count"]));
    let mut expected = regex_counts(
        &f.access,
        r#"^(\S+) \S+ \S+ \[[^\]]+\] "(?:[^"\\]|\\.)*" 404 "#,
    );
    expected.retain(|_, n| *n > 5);
    assert!(!expected.is_empty());
    assert_eq!(pairs(&r), expected);

    // Status codes.
    let r = search_json(f, "sourcetype=access_combined | stats count by status");
    let expected = regex_counts(
        &f.access,
        r#"^\S+ \S+ \S+ \[[^\]]+\] "(?:[^"\\]|\\.)*" (\d{3}) "#,
    );
    assert_eq!(pairs(&r), expected);

    // Failed logins per source address from the auth log.
    let r = search_json(
        f,
        "event.category=authentication event.outcome=failure process.name=sshd event.action=ssh_login | stats count by source.ip",
    );
    let expected = regex_counts(
        &f.auth,
        r"sshd\[\d+\]: (?:message repeated \d+ times: \[ )?Failed \S+ for (?:invalid user )?.+ from (\S+) port \d+",
    );
    assert_eq!(pairs(&r), expected);

    // A phrase, NOT, and `* | stats count`.
    let r = search_json(f, r#""Failed password" NOT user.name=root | stats count"#);
    let expected = f
        .auth
        .lines()
        .filter(|l| l.contains("Failed password") && !l.contains("Failed password for root "))
        .count() as i64;
    assert_eq!(r["rows"][0][0].as_i64(), Some(expected));
    let r = search_json(f, "* | stats count");
    assert_eq!(r["columns"], serde_json::json!(["count"]));
    let total =
        (f.access.lines().count() + f.auth.lines().filter(|l| !l.trim().is_empty()).count()) as i64;
    assert_eq!(r["rows"][0][0].as_i64(), Some(total));
    assert_eq!(r["scanned"].as_i64(), Some(total));

    // CIDR and IN.
    let r = search_json(
        f,
        "sourcetype=access_combined src_ip=66.249.0.0/16 status IN (200, 304) | stats count",
    );
    let re =
        regex::Regex::new(r#"^66\.249\.\d+\.\d+ \S+ \S+ \[[^\]]+\] "(?:[^"\\]|\\.)*" (200|304) "#)
            .unwrap();
    let expected = f.access.lines().filter(|l| re.is_match(l)).count() as i64;
    assert_eq!(r["rows"][0][0].as_i64(), Some(expected));

    // top, dc, sort, head.
    let r = search_json(f, "sourcetype=access_combined | top 3 src_ip");
    let mut all = regex_counts(&f.access, r"^(\S+) ");
    let mut ranked: Vec<(String, i64)> = std::mem::take(&mut all).into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let got: Vec<(String, i64)> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row[0].as_str().unwrap().to_owned(),
                row[1].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, ranked[..3].to_vec());
    let r = search_json(
        f,
        "sourcetype=access_combined | stats dc(src_ip) as clients",
    );
    assert_eq!(r["rows"][0][0].as_i64(), Some(ranked.len() as i64));
}

#[test]
fn event_results_and_errors() {
    let Some(f) = fixture() else { return };
    let r = search_json(&f, "user.name=root event.outcome=failure | head 5");
    let cols: Vec<&str> = r["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(&cols[..3], &["@timestamp", "vigil.seq", "message"]);
    assert_eq!(r["rows"].as_array().unwrap().len(), 5);
    // Newest first.
    let times: Vec<&str> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[0].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);

    let o = vigil(&[
        "search",
        "--data-dir",
        &f.data,
        "status=404 | stats count by",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("column 28"), "{err}");
    assert!(err.contains("^"), "{err}");

    let o = vigil(&[
        "search",
        "--data-dir",
        &f.data,
        "--format",
        "csv",
        "sourcetype=access_combined | stats count by status | sort -count | head 2",
    ]);
    assert!(o.status.success());
    let csv = String::from_utf8_lossy(&o.stdout);
    assert!(csv.starts_with("status,count\n200,"), "{csv}");
}
