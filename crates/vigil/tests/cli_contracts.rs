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
            format!(
                r#"{{"@timestamp":"{}","message":"recent one"}}"#,
                rfc3339_ago(1)
            ),
            format!(
                r#"{{"@timestamp":"{}","message":"old one"}}"#,
                rfc3339_ago(72)
            ),
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

const SSH_RULE: &str = r#"title: SSH failed login
id: 5d0c2a8e-1b7f-4c44-9f0e-00000000c001
status: test
logsource: {product: linux, service: sshd}
detection:
    selection:
        event.action: ssh_login
        event.outcome: failure
    condition: selection
level: high
tags:
    - attack.credential_access
    - attack.t1110
"#;

/// `vigil hunt --format json` prints one alert per line in the shape `GET /api/v1/alerts`
/// gives: the same rules over the same stored events give the same objects. Fields that
/// legitimately differ and are left out of the comparison: `created` (the wall-clock time each
/// raised the alert) and `sources` (hunt's addition: the files or sources of the events).
#[test]
fn hunt_json_is_the_alerts_api_shape() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("ssh.yml"), SSH_RULE).unwrap();
    let rules_arg = rules.display().to_string();
    let ingest = common::create_token(&data, "ingest", "sender");
    let viewer = common::create_token(&data, "viewer", "reader");
    let server = common::Server::start(&data, &["--rules", &rules_arg]);
    let body: String = [
        ("203.0.113.5", 1),
        ("203.0.113.5", 2),
        ("198.51.100.7", 3),
        ("203.0.113.5", 4),
        ("198.51.100.7", 5),
    ]
    .iter()
    .map(|(ip, s)| {
        format!(
            "{{\"@timestamp\":\"2026-11-22T10:00:0{s}Z\",\"process.name\":\"sshd\",\"event.action\":\"ssh_login\",\"event.outcome\":\"failure\",\"source.ip\":\"{ip}\",\"message\":\"Failed password for root from {ip}\"}}\n"
        )
    })
    .collect();
    let a = common::ingest_ndjson(&server.url, &ingest, &body);
    assert_eq!(a.status, 200, "{}", a.body);
    let auth = [format!("Authorization: Bearer {viewer}")];
    let alerts_url = format!("{}/api/v1/alerts", server.url);
    let mut api = serde_json::Value::Null;
    assert!(
        common::wait_until(20, || {
            api = common::curl("GET", &alerts_url, &auth, None).json();
            let counts: u64 = api["alerts"]
                .as_array()
                .map(|l| l.iter().filter_map(|a| a["count"].as_u64()).sum())
                .unwrap_or(0);
            counts == 5
        }),
        "alerts never counted 5 matches: {api:#}"
    );

    // While serve runs (readers take no lock), over the same ledger.
    let out = ok_stdout(&[
        "hunt",
        "--rules",
        &rules_arg,
        "--data-dir",
        &data.display().to_string(),
        "--format",
        "json",
    ]);
    let strip = |mut a: serde_json::Value| {
        let o = a.as_object_mut().unwrap();
        o.remove("created");
        o.remove("sources");
        a
    };
    let mut hunted: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .map(strip)
        .collect();
    let mut listed: Vec<serde_json::Value> = api["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(strip)
        .collect();
    let by_id =
        |a: &serde_json::Value, b: &serde_json::Value| a["id"].as_u64().cmp(&b["id"].as_u64());
    hunted.sort_by(by_id);
    listed.sort_by(by_id);
    assert_eq!(hunted.len(), 2, "{out}");
    assert_eq!(hunted, listed);
    // The shape DESIGN §5 promises: `group` an object.
    assert_eq!(hunted[0]["group"]["source.ip"], "203.0.113.5");
    assert_eq!(hunted[0]["count"], 3);
    assert_eq!(
        hunted[0]["attack"],
        serde_json::json!(["credential_access", "t1110"])
    );
    drop(server);
}

/// `vigil rules check --format json` gives `{"total", "supported", "rules": [...]}` (DESIGN §5),
/// and a rule whose logsource no source declares is not counted as supported, with the reason.
#[test]
fn rules_check_json_has_the_counts_on_top_and_refuses_sourceless_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("a_ssh.yml"), SSH_RULE).unwrap();
    std::fs::write(
        rules.join("b_cloudtrail.yml"),
        "title: Cloud thing\nid: 5d0c2a8e-1b7f-4c44-9f0e-00000000c002\nlogsource: {product: salesforce, service: eventmonitoring}\ndetection:\n    selection:\n        eventName: DeleteTrail\n    condition: selection\nlevel: high\n",
    )
    .unwrap();
    // Events from applications (JSON and HTTP ingest) are a declared source.
    std::fs::write(
        rules.join("c_app.yml"),
        "title: App authz failure\nlogsource: {category: application, product: owasp}\ndetection:\n    selection:\n        event.action: authz_fail\n    condition: selection\nlevel: low\n",
    )
    .unwrap();
    let out = ok_stdout(&[
        "rules",
        "check",
        "--format",
        "json",
        &rules.display().to_string(),
    ]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["total"], 3, "{report:#}");
    assert_eq!(report["supported"], 2, "{report:#}");
    let list = report["rules"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["title"], "SSH failed login");
    assert_eq!(list[0]["supported"], true);
    assert!(list[0]["path"].as_str().unwrap().ends_with("a_ssh.yml"));
    assert_eq!(list[0]["id"], "5d0c2a8e-1b7f-4c44-9f0e-00000000c001");
    assert_eq!(list[1]["title"], "Cloud thing");
    assert_eq!(list[1]["supported"], false, "{report:#}");
    let reason = list[1]["reason"].as_str().unwrap();
    assert!(reason.contains("no declared source"), "{reason}");
    assert!(
        reason.contains("product: salesforce, service: eventmonitoring"),
        "{reason}"
    );
    // The table says the same.
    let table = ok_stdout(&["rules", "check", &rules.display().to_string()]);
    assert!(
        table
            .trim_end()
            .ends_with("2 of 3 rules supported (66.67 %)"),
        "{table}"
    );
}

/// `--token` and `--server` are accepted after the action too (`vigil ban list --token T`, as
/// a user types it), and `VIGIL_TOKEN` / `VIGIL_SERVER` stand in for them.
#[test]
fn ban_token_and_server_go_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let analyst = common::create_token(&data, "analyst", "hand");
    let server = common::Server::start(&data, &[]);
    let url = server.url.clone();
    let out = ok_stdout(&[
        "ban",
        "add",
        "203.0.113.9",
        "--for",
        "1h",
        "--token",
        &analyst,
        "--server",
        &url,
    ]);
    assert!(out.contains("203.0.113.9"), "{out}");
    let listed = ok_stdout(&["ban", "list", "--token", &analyst, "--server", &url]);
    assert!(listed.contains("203.0.113.9"), "{listed}");
    // Before the action, as before.
    let before = ok_stdout(&["ban", "--token", &analyst, "--server", &url, "list"]);
    assert_eq!(before, listed);
    // From the environment.
    let o = vigil()
        .args(["ban", "list"])
        .env("VIGIL_TOKEN", &analyst)
        .env("VIGIL_SERVER", &url)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8(o.stdout).unwrap(), listed);
    // No token at all: a clear error, not a request.
    let o = vigil()
        .args(["ban", "list", "--server", &url])
        .env_remove("VIGIL_TOKEN")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("VIGIL_TOKEN"), "{err}");
    // `--help` names the variables.
    let help = ok_stdout(&["ban", "list", "--help"]);
    assert!(
        help.contains("VIGIL_TOKEN") && help.contains("VIGIL_SERVER"),
        "{help}"
    );
    drop(server);
}

/// `vigil search`, `vigil hunt`, `vigil proof` and `vigil verify` use the lower crates (index,
/// query, detect, ledger), not the server crate as a utility library.
#[test]
fn the_reading_commands_do_not_use_the_server_crate() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for file in ["search.rs", "hunt.rs", "ledger_cmds.rs", "reindex.rs"] {
        let text = std::fs::read_to_string(src.join(file)).unwrap();
        assert!(
            !text.contains("vigil_server"),
            "{file} uses vigil_server: {}",
            text.lines()
                .filter(|l| l.contains("vigil_server"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// Run only by [`a_missing_tool_is_a_visible_skip_or_a_ci_failure`], in a child process.
#[test]
#[ignore = "a probe run by a_missing_tool_is_a_visible_skip_or_a_ci_failure"]
fn probe_missing_tool() {
    if !common::require_tool("vigil-no-such-tool") || !common::require_python_module("vigil_nope") {
        return;
    }
    panic!("a tool that does not exist was found");
}

/// A test whose outside tool is missing says so in a plain `cargo test` (libtest's capture does
/// not hide it), passes as a skip, and fails instead under `VIGIL_REQUIRE_TOOLS=1` (CI), so CI
/// never skips silently.
#[test]
fn a_missing_tool_is_a_visible_skip_or_a_ci_failure() {
    let probe = |require: Option<&str>| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "probe_missing_tool",
            "--ignored",
            "--test-threads=1",
        ]);
        match require {
            Some(v) => cmd.env("VIGIL_REQUIRE_TOOLS", v),
            None => cmd.env_remove("VIGIL_REQUIRE_TOOLS"),
        };
        cmd.output().unwrap()
    };
    let skipped = probe(None);
    let err = String::from_utf8_lossy(&skipped.stderr);
    assert!(skipped.status.success(), "{err}");
    assert!(
        err.contains("SKIP probe_missing_tool: vigil-no-such-tool not installed"),
        "the skip is not visible: {err:?}"
    );
    let required = probe(Some("1"));
    assert!(
        !required.status.success(),
        "a missing tool passed under VIGIL_REQUIRE_TOOLS=1"
    );
    let out = String::from_utf8_lossy(&required.stdout);
    assert!(out.contains("vigil-no-such-tool not installed"), "{out}");
}

/// `vigil hunt` and `vigil search` show progress on standard error when it is a terminal (run
/// here under `script`, which gives them one), and print nothing of it otherwise; standard
/// output stays the results only.
#[test]
fn progress_on_a_terminal_only() {
    if !common::require_tool("script") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..500)
        .map(|i| {
            format!(
                r#"{{"@timestamp":"2026-11-22T10:00:00Z","process.name":"sshd","event.action":"ssh_login","event.outcome":"failure","source.ip":"10.0.0.{}","message":"m {i}"}}"#,
                i % 7
            )
        })
        .collect();
    let data = import_ndjson(dir.path(), &lines);
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("ssh.yml"), SSH_RULE).unwrap();
    let bin = env!("CARGO_BIN_EXE_vigil");
    let out_file = dir.path().join("out");
    let commands = [
        (
            format!(
                "'{bin}' hunt --rules '{}' --data-dir '{data}' --format json",
                rules.display()
            ),
            "hunting",
        ),
        (
            format!("'{bin}' search --data-dir '{data}' 'm | stats count'"),
            "searching",
        ),
    ];
    let created = regex::Regex::new(r#""created":"[^"]*""#).unwrap();
    for (command, progress) in commands {
        // On a terminal: the progress is on the terminal, the results in the file.
        let tty = vigil_on_a_terminal(&format!("{command} > '{}'", out_file.display()));
        assert!(tty.contains(progress), "no progress on a terminal: {tty:?}");
        let results = std::fs::read_to_string(&out_file).unwrap();
        assert!(!results.contains(progress), "{results}");
        // Not a terminal: no progress at all.
        let o = std::process::Command::new("sh")
            .args(["-c", &command])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !err.contains(progress) && !err.contains('\u{1b}'),
            "{err:?}"
        );
        // The same results (but for the wall-clock time hunt raised each alert).
        assert_eq!(
            created.replace_all(&String::from_utf8(o.stdout).unwrap(), ""),
            created.replace_all(&results, "")
        );
    }
}

/// What `command` writes on its terminal, run by `script` on a pseudo-terminal.
fn vigil_on_a_terminal(command: &str) -> String {
    let o = std::process::Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}
