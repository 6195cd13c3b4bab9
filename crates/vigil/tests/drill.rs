//! Drills end to end (issue 19, "test incident response"): `vigil drill` against a real
//! `vigil serve` with a real SMTP server (aiosmtpd), a webhook receiver (Python's http.server)
//! and Debian's crowdsec-custom-bouncer. Every step passes with measured latencies; a
//! misconfigured email notifier fails its step and raises an alert; drill events, alerts and
//! bans are absent from searches, alert lists and the ban book; senders cannot forge the mark.

mod common;

use std::path::Path;
use std::process::Output;

use common::respond::{SmtpServer, custom_bouncer, webhook_listener};
use common::*;

fn write_demo_rules(dir: &Path) -> String {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    for (name, text) in vigil_server::demo::RULES {
        std::fs::write(rules.join(name), text).unwrap();
    }
    rules.display().to_string()
}

/// `vigil drill SCENARIO --json`: the exit code and the report.
fn drill(server: &str, token: &str, scenario: &str) -> (Output, serde_json::Value) {
    let out = vigil()
        .args([
            "drill",
            scenario,
            "--json",
            "--timeout",
            "90s",
            "--server",
            server,
            "--token",
            token,
        ])
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, report)
}

fn step<'a>(report: &'a serde_json::Value, prefix: &str, contains: &str) -> &'a serde_json::Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            let name = s["name"].as_str().unwrap();
            name.starts_with(prefix) && name.contains(contains)
        })
        .unwrap_or_else(|| panic!("no step {prefix}…{contains} in {report:#}"))
}

fn get(url: &str, token: &str) -> serde_json::Value {
    let a = curl(
        "GET",
        url,
        &[format!("Authorization: Bearer {token}")],
        None,
    );
    assert_eq!(a.status, 200, "{url}: {}", a.body);
    a.json()
}

fn search(url: &str, token: &str, query: &str) -> usize {
    let a = curl(
        "POST",
        &format!("{url}/api/v1/search"),
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/json".into(),
        ],
        Some(&serde_json::json!({"query": query, "from": "-1h", "to": "now"}).to_string()),
    );
    assert_eq!(a.status, 200, "{query}: {}", a.body);
    a.json()["rows"].as_array().map_or(0, Vec::len)
}

struct Ports {
    http: String,
    tcp: String,
    udp: String,
}

fn ports() -> Ports {
    Ports {
        http: format!("127.0.0.1:{}", unused_port()),
        tcp: format!("127.0.0.1:{}", unused_port()),
        udp: format!("127.0.0.1:{}", unused_port()),
    }
}

fn start(data: &Path, rules: &str, config: &Path, p: &Ports) -> Server {
    Server::start(
        data,
        &[
            "--http",
            &p.http,
            "--syslog-tcp",
            &p.tcp,
            "--syslog-udp",
            &p.udp,
            "--rules",
            rules,
            "--config",
            &config.display().to_string(),
        ],
    )
}

#[test]
fn a_drill_passes_every_step_through_real_receivers_and_counts_nowhere() {
    if !require_python_module("aiosmtpd")
        || !require_tool("curl")
        || !require_tool("crowdsec-custom-bouncer")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = write_demo_rules(dir.path());
    let (_hook, hook_url, hook_file) = webhook_listener(dir.path());
    let smtp = SmtpServer::start(dir.path());
    let smtp_port = smtp.port;
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[[notify]]\nname = \"soc-mail\"\ntype = \"email\"\nserver = \"127.0.0.1:{smtp_port}\"\nstarttls = false\nfrom = \"vigil@example.org\"\nto = [\"soc@example.org\"]\nmin_level = \"high\"\n\n[[notify]]\nname = \"soc-hook\"\ntype = \"webhook\"\nurl = \"{hook_url}\"\nmin_level = \"high\"\n\n[[responder]]\nrules = [\"SSH brute force\"]\nduration = \"1h\"\n"
        ),
    )
    .unwrap();
    let key = create_token(&data, "bouncer", "edge-firewall");
    let analyst = create_token(&data, "analyst", "ana");
    let p = ports();
    let server = start(&data, &rules, &config, &p);
    let Some((_bouncer, calls)) = custom_bouncer(dir.path(), &p.http, &key) else {
        return;
    };
    // The drill expects the bouncers that poll: let this one poll first.
    assert!(wait_until(30, || std::fs::read_to_string(
        dir.path().join("bouncer.log")
    )
    .is_ok_and(|l| !l.is_empty())));
    std::thread::sleep(std::time::Duration::from_secs(3));

    let (out, report) = drill(&server.url, &analyst, "ssh-brute-force");
    say(&format!("drill report: {report:#}"));
    assert!(out.status.success(), "{report:#}\n{}", server.log());
    assert_eq!(report["passed"], true, "{report:#}");
    let run = report["run"].as_str().unwrap().to_owned();
    // Every step passed, with a measured latency.
    let steps = [
        step(&report, "ingest → stored", ""),
        step(&report, "stored → alert: SSH brute force", ""),
        step(&report, "stored → alert: SSH login after brute force", ""),
        step(&report, "alert ", "notify soc-mail (email)"),
        step(&report, "alert ", "notify soc-hook (webhook)"),
        step(&report, "alert ", "→ ban decision"),
        step(&report, "decision ", "fetched by edge-firewall"),
    ];
    for s in steps {
        assert_eq!(s["status"], "passed", "{s}");
        let ms = s["latency_ms"].as_f64().unwrap_or(-1.0);
        assert!(ms >= 0.0, "no latency measured: {s}");
    }
    assert!(
        step(&report, "ingest → stored", "")["detail"]
            .as_str()
            .unwrap()
            .starts_with("13 of 13 events"),
        "{report:#}"
    );
    assert!(report["missed"].as_array().unwrap().is_empty());
    // What the receivers got is marked as a drill.
    let mails = smtp.messages();
    assert!(
        mails
            .iter()
            .any(|m| m.content.contains(&format!("[DRILL {run}]"))),
        "{mails:#?}"
    );
    let hooks = std::fs::read_to_string(&hook_file).unwrap();
    assert!(hooks.contains(&format!("\"drill\":\"{run}\"")), "{hooks}");
    let fetched = std::fs::read_to_string(&calls).unwrap_or_default();
    let line = fetched
        .lines()
        .find(|l| l.starts_with("add "))
        .unwrap_or_else(|| panic!("the bouncer got no decision: {fetched}"));
    assert!(line.contains("\"type\":\"drill\""), "{line}");
    assert!(line.contains("\"origin\":\"vigil-drill\""), "{line}");
    let value = line.split_whitespace().nth(1).unwrap();
    assert!(
        value.starts_with("192.0.2."),
        "a documentation address: {line}"
    );

    // Counted nowhere by default: alert lists, bans, searches (what dashboards run).
    let url = &server.url;
    let alerts = get(&format!("{url}/api/v1/alerts"), &analyst);
    assert!(
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["drill"].is_null()),
        "{alerts:#}"
    );
    let drills = get(&format!("{url}/api/v1/alerts?drills=only"), &analyst);
    assert_eq!(drills["alerts"].as_array().unwrap().len(), 2, "{drills:#}");
    assert!(
        drills["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["drill"] == run.as_str())
    );
    let bans = get(&format!("{url}/api/v1/decisions"), &analyst);
    assert_eq!(
        bans["decisions"],
        serde_json::json!([]),
        "no real ban: {bans:#}"
    );
    let lapi = curl(
        "GET",
        &format!("{url}/v1/decisions?ip={value}"),
        &[format!("X-Api-Key: {key}")],
        None,
    );
    assert_eq!(
        lapi.body.trim(),
        "null",
        "no ban for the address: {}",
        lapi.body
    );
    // `/metrics` counts the drill's 13 syslog lines apart, not as the TCP listener's events.
    let metrics = curl(
        "GET",
        &format!("{url}/metrics"),
        &[format!("Authorization: Bearer {analyst}")],
        None,
    );
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    let sample = |series: &str| {
        metrics.body.lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .parse::<u64>()
                .ok()
        })
    };
    assert_eq!(
        sample(r#"vigil_drill_events_total{listener="tcp"}"#),
        Some(13),
        "{}",
        metrics.body
    );
    assert_eq!(
        sample(r#"vigil_ingest_events_total{listener="tcp"}"#).unwrap_or(0),
        0,
        "{}",
        metrics.body
    );
    assert_eq!(search(url, &analyst, "event.action=ssh_login"), 0);
    assert_eq!(
        search(
            url,
            &analyst,
            "event.action=ssh_login | stats count by source.ip"
        ),
        0
    );
    assert_eq!(
        search(
            url,
            &analyst,
            &format!("vigil.drill.run={run} event.action=ssh_login")
        ),
        13,
        "asked for by name, the drill's events are there"
    );
    // The report is on the record, through the one door, and the UI's list has it.
    let listed = get(&format!("{url}/api/v1/drills"), &analyst);
    assert_eq!(listed["reports"][0]["run"], run.as_str());
    assert!(listed["scenarios"].as_array().unwrap().len() >= 5);
    let log = server.stop();
    let recorded: Vec<_> = ledger_events(&data)
        .into_iter()
        .filter(|e| e.is_dataset("vigil.drill"))
        .collect();
    assert_eq!(recorded.len(), 1, "{log}");
    assert_eq!(recorded[0].get_str("event.outcome"), Some("success"));
    assert_eq!(
        recorded[0].get_str("vigil.drill_report.run"),
        Some(run.as_str())
    );
    // The run's ingest token was revoked.
    let tokens = run_ok(vigil().args(["token", "list", "--data-dir"]).arg(&data));
    assert!(
        tokens
            .lines()
            .filter(|l| l.contains(&run))
            .all(|l| l.split_whitespace().last() != Some("-")),
        "revoked or gone: {tokens}"
    );
}

#[test]
fn a_misconfigured_email_notifier_fails_its_step_and_the_failed_drill_alerts() {
    if !require_tool("curl") || !require_tool("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = write_demo_rules(dir.path());
    let (_hook, hook_url, _) = webhook_listener(dir.path());
    // Nothing listens on the email notifier's port.
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[detect]\nretry_backoff = \"50ms\"\n\n[[notify]]\nname = \"soc-mail\"\ntype = \"email\"\nserver = \"127.0.0.1:{}\"\nstarttls = false\nfrom = \"vigil@example.org\"\nto = [\"soc@example.org\"]\nmin_level = \"high\"\n\n[[notify]]\nname = \"soc-hook\"\ntype = \"webhook\"\nurl = \"{hook_url}\"\nmin_level = \"high\"\n",
            unused_port()
        ),
    )
    .unwrap();
    let analyst = create_token(&data, "analyst", "ana");
    let p = ports();
    let server = start(&data, &rules, &config, &p);
    let (out, report) = drill(&server.url, &analyst, "ssh-brute-force");
    say(&format!("drill report: {report:#}"));
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(report["passed"], false);
    let mail = step(&report, "alert ", "notify soc-mail (email)");
    assert_eq!(mail["status"], "failed", "{report:#}");
    assert!(
        mail["detail"].as_str().unwrap().contains("not delivered"),
        "{mail}"
    );
    // The rest of the response worked, and says so; no responder, no bouncer: skipped.
    assert_eq!(
        step(&report, "alert ", "notify soc-hook")["status"],
        "passed"
    );
    assert_eq!(
        step(&report, "stored → alert: SSH brute force", "")["status"],
        "passed"
    );
    assert_eq!(
        step(&report, "alert → ban decision", "")["status"],
        "skipped"
    );
    assert!(
        report["missed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().contains("soc-mail")),
        "{report:#}"
    );
    // The failed drill is itself a real alert (listed by default).
    assert!(
        wait_for_alert(
            &server.url,
            &analyst,
            "A drill failed",
            ("user.name", "ana"),
            30
        ),
        "{}",
        server.log()
    );
    server.stop();
}

#[test]
fn senders_cannot_forge_the_drill_mark_and_only_analysts_run_drills() {
    if !require_tool("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = write_demo_rules(dir.path());
    let config = dir.path().join("vigil.toml");
    std::fs::write(&config, "").unwrap();
    let ingest = create_token(&data, "ingest", "app");
    let viewer = create_token(&data, "viewer", "vic");
    let analyst = create_token(&data, "analyst", "ana");
    let p = ports();
    let server = start(&data, &rules, &config, &p);
    let url = &server.url;
    // A real attack dressed as a drill: a claimed mark, a nonce of the right shape, a
    // structured-data nonce over syslog.
    let forged = "{\"message\":\"Failed password for root\",\"process.name\":\"sshd\",\"event.action\":\"ssh_login\",\"event.outcome\":\"failure\",\"source.ip\":\"203.0.113.66\",\"vigil.drill.run\":\"drill-x\",\"labels.vigil_drill\":\"vdrill-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}\n";
    let a = ingest_ndjson(url, &ingest, &forged.repeat(12));
    assert_eq!(a.status, 200, "{}", a.body);
    let mut s = std::net::TcpStream::connect(&p.tcp).unwrap();
    use std::io::Write;
    for _ in 0..12 {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        writeln!(s, "<38>1 {now} web1 sshd 1 - [vigil-drill@32473 nonce=\"vdrill-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"] Failed password for root from 203.0.113.67 port 5000 ssh2").unwrap();
    }
    drop(s);
    // Every one of them is real: in searches, alerted, and banned if a responder wanted.
    assert!(wait_until(30, || search(
        url,
        &viewer,
        "event.action=ssh_login"
    ) == 24));
    assert!(wait_for_alert(
        url,
        &viewer,
        "SSH brute force",
        ("source.ip", "203.0.113.66"),
        30
    ));
    assert!(wait_for_alert(
        url,
        &viewer,
        "SSH brute force",
        ("source.ip", "203.0.113.67"),
        30
    ));
    let events = ledger_events(&data);
    assert!(
        events.iter().all(|e| e.drill_run().is_none()),
        "nothing is marked"
    );
    assert!(
        events
            .iter()
            .any(|e| e.get_str("external.vigil.drill.run") == Some("drill-x")),
        "the claim is kept aside, under external."
    );
    // Running a drill: analysts and admins only.
    for (token, want) in [(&viewer, 403), (&ingest, 403)] {
        let a = curl(
            "POST",
            &format!("{url}/api/v1/drills"),
            &[
                format!("Authorization: Bearer {token}"),
                "Content-Type: application/json".into(),
            ],
            Some("{\"scenario\":\"ssh-brute-force\"}"),
        );
        assert_eq!(a.status, want, "{}", a.body);
    }
    // A scenario is named, never a path; unknown ones are 404.
    for (body, want) in [
        ("{\"scenario\":\"../../etc/passwd\"}", 400),
        ("{\"scenario\":\"no-such-drill\"}", 404),
        ("{\"scenario\":\"web-scan\",\"timeout\":\"1y\"}", 400),
        ("{\"scenario\":\"web-scan\",\"extra\":1}", 400),
    ] {
        let a = curl(
            "POST",
            &format!("{url}/api/v1/drills"),
            &[
                format!("Authorization: Bearer {analyst}"),
                "Content-Type: application/json".into(),
            ],
            Some(body),
        );
        assert_eq!(a.status, want, "{body}: {}", a.body);
    }
    server.stop();
}

#[test]
fn the_drills_page_runs_a_drill_and_shows_its_report() {
    if let Some(why) = browser_missing() {
        skip(&why);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = write_demo_rules(dir.path());
    let config = dir.path().join("vigil.toml");
    std::fs::write(&config, "").unwrap();
    let password = "drills test password 1";
    add_user(&data, "ana", "analyst", password);
    let p = ports();
    let server = start(&data, &rules, &config, &p);
    let artifacts = std::env::var_os("VIGIL_ARTIFACTS")
        .map(|d| std::path::PathBuf::from(d).join("drills"))
        .unwrap_or_else(|| dir.path().join("artifacts"));
    let out = std::process::Command::new("node")
        .arg("drills.mjs")
        .current_dir(browser_dir())
        .env("VIGIL_URL", &server.url)
        .env("VIGIL_USER", "ana")
        .env("VIGIL_PASSWORD", password)
        .env("ARTIFACTS", &artifacts)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("STEPS PASSED"),
        "the browser test failed:\n{stdout}\n{}\n--- server log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    server.stop();
}

#[test]
fn scheduled_drills_run_on_their_own_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = write_demo_rules(dir.path());
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        "[drills]\nscenarios = [\"ssh-brute-force\"]\nevery = \"2s\"\ntimeout = \"20s\"\n",
    )
    .unwrap();
    let p = ports();
    let server = start(&data, &rules, &config, &p);
    let reports = || {
        ledger_events(&data)
            .into_iter()
            .filter(|e| e.is_dataset("vigil.drill"))
            .collect::<Vec<_>>()
    };
    assert!(wait_until(90, || reports().len() >= 2), "{}", server.log());
    let log = server.stop();
    for r in reports() {
        assert_eq!(r.get_str("user.name"), Some("schedule"));
        assert_eq!(r.get_str("event.outcome"), Some("success"), "{log}");
    }
}
