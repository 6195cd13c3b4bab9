//! The CLI's contracts as DESIGN §5 and `--help` state them, checked with the real binary: the
//! forms a user types (`--from -24h`), the JSON shapes scripts read, the flags' places.

mod common;

use std::path::Path;
use std::process::Output;

use common::vigil;

fn run(args: &[&str]) -> Output {
    vigil().args(args).output().expect("run vigil")
}

fn ok_stdout(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "vigil {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Imports NDJSON `lines` into a new data directory under `dir`; returns its path.
fn import_ndjson(dir: &Path, lines: &[String]) -> String {
    let file = dir.join("events.ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let data = dir.join("data").display().to_string();
    ok_stdout(&[
        "import",
        "-q",
        "--data-dir",
        &data,
        "--format",
        "json",
        &file.display().to_string(),
    ]);
    data
}

fn rfc3339_ago(hours: i64) -> String {
    let t = chrono::Utc::now() - chrono::Duration::hours(hours);
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `--from -24h` (the form `--help`, the README and DESIGN §5 show) works exactly as
/// `--from=-24h`, and so does `--to -48h`.
#[test]
fn relative_times_take_a_leading_dash() {
    let dir = tempfile::tempdir().unwrap();
    let data = import_ndjson(
        dir.path(),
        &[
            format!(r#"{{"@timestamp":"{}","message":"recent one"}}"#, rfc3339_ago(1)),
            format!(r#"{{"@timestamp":"{}","message":"old one"}}"#, rfc3339_ago(72)),
        ],
    );
    let search = |time_args: &[&str]| -> serde_json::Value {
        let mut args = vec!["search", "--data-dir", &data, "--format", "json"];
        args.extend_from_slice(time_args);
        args.push("* | stats count");
        serde_json::from_str(&ok_stdout(&args)).unwrap()
    };
    let spaced = search(&["--from", "-24h"]);
    let joined = search(&["--from=-24h"]);
    assert_eq!(spaced["rows"], serde_json::json!([[1]]), "{spaced}");
    assert_eq!(spaced["rows"], joined["rows"]);
    let old = search(&["--from", "-7d", "--to", "-48h"]);
    assert_eq!(old["rows"], serde_json::json!([[1]]), "{old}");
    let all = search(&[]);
    assert_eq!(all["rows"], serde_json::json!([[2]]), "{all}");
}
