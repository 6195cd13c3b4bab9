//! The parsers against real public logs in `../shared/corpus` (see its README for sources).
//!
//! For each file: no well-formed line becomes a `parse_error`, and the fields extracted agree with
//! counts computed independently here from the raw text with plain regular expressions.
//! Without the corpus these tests print what they skip; with `VIGIL_REQUIRE_CORPUS=1` (CI) a
//! missing corpus is a failure.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use common::corpus;
use regex::Regex;
use vigil_event::{Event, Timestamp, Value};
use vigil_parse::{Format, ParseContext, parse_line};

fn read_text(path: &PathBuf) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut out)
            .unwrap();
        return out;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn ctx(reference: &str) -> ParseContext {
    ParseContext::new(Timestamp::parse(reference).unwrap(), "corpus")
}

/// Parses every non-empty line; asserts none is a parse error; returns the events.
fn parse_all(text: &str, format: Format, ctx: &ParseContext, what: &str) -> Vec<Event> {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let e = parse_line(line.as_bytes(), format, ctx);
        if e.has_tag(vigil_event::tag::PARSE_ERROR) {
            errors.push(format!(
                "line {}: {:?}: {}",
                i + 1,
                line,
                e.get_str("error.message").unwrap_or("")
            ));
        }
        events.push(e);
    }
    assert!(
        errors.is_empty(),
        "{what}: {} parse errors, first: {}",
        errors.len(),
        errors[0]
    );
    assert!(!events.is_empty(), "{what}: no lines");
    events
}

fn count_by(
    events: &[Event],
    key: &str,
    filter: impl Fn(&Event) -> bool,
) -> BTreeMap<String, usize> {
    let mut map = BTreeMap::new();
    for e in events.iter().filter(|e| filter(e)) {
        if let Some(v) = e.get(key) {
            *map.entry(v.to_string()).or_insert(0) += 1;
        }
    }
    map
}

fn regex_count(text: &str, re: &str, group: usize) -> BTreeMap<String, usize> {
    let re = Regex::new(re).unwrap();
    let mut map = BTreeMap::new();
    for line in text.lines() {
        if let Some(c) = re.captures(line) {
            *map.entry(c[group].to_owned()).or_insert(0) += 1;
        }
    }
    map
}

fn is(e: &Event, key: &str, value: &str) -> bool {
    e.get_str(key) == Some(value)
}

#[test]
fn elastic_auth_log() {
    let Some(dir) = corpus() else { return };
    let text = read_text(&dir.join("elastic-examples/auth_log/auth.log.part1of3"));
    let events = parse_all(
        &text,
        Format::Auto,
        &ctx("2018-12-31T00:00:00Z"),
        "auth.log",
    );
    assert!(
        events
            .iter()
            .all(|e| e.get_str("vigil.parser") == Some("syslog"))
    );

    let failed = count_by(&events, "source.ip", |e| {
        is(e, "event.action", "ssh_login")
            && is(e, "event.outcome", "failure")
            && is(e, "vigil.auth.method", "password")
    });
    // Also inside rsyslog's "message repeated N times: [ … ]" (one event, event.count = N).
    let expected = regex_count(
        &text,
        r"sshd\[\d+\]: (?:message repeated \d+ times: \[ )?Failed password for (?:invalid user )?.+ from (\S+) port \d+",
        1,
    );
    assert!(!expected.is_empty());
    assert_eq!(failed, expected, "failed passwords per source IP");

    let accepted = count_by(&events, "user.name", |e| {
        is(e, "event.action", "ssh_login") && is(e, "event.outcome", "success")
    });
    let expected = regex_count(&text, r"sshd\[\d+\]: Accepted \S+ for (\S+) from", 1);
    assert_eq!(accepted, expected, "accepted logins per user");

    let invalid = count_by(&events, "source.ip", |e| {
        is(e, "event.action", "ssh_invalid_user")
    });
    let expected = regex_count(&text, r"sshd\[\d+\]: [Ii]nvalid user .*? from (\S+)", 1);
    assert_eq!(invalid, expected, "invalid users per source IP");

    // sudo's PWD= is a working directory, kept (not mistaken for a password).
    assert!(
        events
            .iter()
            .filter(|e| is(e, "event.action", "sudo"))
            .all(|e| e
                .get_str("process.working_directory")
                .is_some_and(|d| d.starts_with('/')))
    );
    let sudo = count_by(&events, "user.name", |e| is(e, "event.action", "sudo"));
    let expected = regex_count(&text, r"sudo(?:\[\d+\])?: +(\S+) : .*COMMAND=", 1);
    assert_eq!(sudo, expected, "sudo commands per user");
    // Host and time from the header.
    assert!(
        events
            .iter()
            .all(|e| e.get_str("host.name") == Some("ip-10-77-20-248"))
    );
}

#[test]
fn loghub_openssh() {
    let Some(dir) = corpus() else { return };
    let text = read_text(&dir.join("loghub/OpenSSH/OpenSSH_2k.log"));
    let events = parse_all(
        &text,
        Format::Auto,
        &ctx("2017-12-31T00:00:00Z"),
        "OpenSSH_2k",
    );
    let failed = count_by(&events, "source.ip", |e| {
        is(e, "event.action", "ssh_login") && is(e, "event.outcome", "failure")
    });
    let expected = regex_count(
        &text,
        r"sshd\[\d+\]: (?:message repeated \d+ times: \[ )?Failed \S+ for (?:invalid user )?.+ from (\S+) port \d+",
        1,
    );
    assert_eq!(failed, expected);
    let invalid = count_by(&events, "source.ip", |e| {
        is(e, "event.action", "ssh_invalid_user")
    });
    let expected = regex_count(&text, r"sshd\[\d+\]: Invalid user .*? from (\S+)", 1);
    assert_eq!(invalid, expected);
    let pam = count_by(&events, "source.ip", |e| {
        is(e, "event.action", "sshd_auth_failure")
    });
    let expected = regex_count(
        &text,
        r"pam_unix\(sshd:auth\): authentication failure;.* rhost=(\d+\.\d+\.\d+\.\d+)(?:\s|$)",
        1,
    );
    assert_eq!(pam, expected);
    // A host name in rhost goes to source.domain instead.
    let pam_domains = count_by(&events, "source.domain", |e| {
        is(e, "event.action", "sshd_auth_failure")
    });
    let expected = regex_count(
        &text,
        r"pam_unix\(sshd:auth\): authentication failure;.* rhost=([^\s]*[a-z][^\s]*)",
        1,
    );
    assert_eq!(pam_domains, expected);
    let breakin = events
        .iter()
        .filter(|e| is(e, "event.action", "ssh_reverse_mapping_failed"))
        .count();
    assert_eq!(breakin, text.matches("POSSIBLE BREAK-IN ATTEMPT").count());
}

#[test]
fn loghub_linux() {
    let Some(dir) = corpus() else { return };
    let text = read_text(&dir.join("loghub/Linux/Linux_2k.log"));
    let events = parse_all(
        &text,
        Format::Auto,
        &ctx("2005-12-31T00:00:00Z"),
        "Linux_2k",
    );
    let failures = count_by(&events, "source.ip", |e| {
        is(e, "event.category", "authentication") && is(e, "event.outcome", "failure")
    });
    let expected = regex_count(
        &text,
        r"\(pam_unix\)\[\d+\]: authentication failure;.* rhost=(\d+\.\d+\.\d+\.\d+)(?:\s|$)",
        1,
    );
    assert_eq!(failures, expected);
}

#[test]
fn elastic_apache_access_log() {
    let Some(dir) = corpus() else { return };
    let text = read_text(&dir.join("elastic-examples/apache_logs/apache_logs.part1of3"));
    let events = parse_all(
        &text,
        Format::Auto,
        &ctx("2016-01-01T00:00:00Z"),
        "apache_logs",
    );
    assert!(
        events
            .iter()
            .all(|e| is(e, "vigil.sourcetype", "access_combined"))
    );
    let status = count_by(&events, "http.response.status_code", |_| true);
    let expected = regex_count(
        &text,
        r#"^\S+ \S+ \S+ \[[^\]]+\] "(?:[^"\\]|\\.)*" (\d{3}) "#,
        1,
    );
    assert_eq!(status, expected, "status codes");
    let by_ip = count_by(&events, "source.ip", |e| {
        e.get("http.response.status_code").and_then(Value::as_i64) == Some(404)
    });
    let expected = regex_count(
        &text,
        r#"^(\S+) \S+ \S+ \[[^\]]+\] "(?:[^"\\]|\\.)*" 404 "#,
        1,
    );
    assert_eq!(by_ip, expected, "404s per client");
    let bytes: i64 = events
        .iter()
        .filter_map(|e| e.get("http.response.body.bytes").and_then(Value::as_i64))
        .sum();
    let re = Regex::new(r#"" \d{3} (\d+|-) ""#).unwrap();
    let expected: i64 = text
        .lines()
        .filter_map(|l| re.captures(l))
        .map(|c| c[1].parse::<i64>().unwrap_or(0))
        .sum();
    assert_eq!(bytes, expected, "response bytes");
}

#[test]
fn w3af_scan_access_log() {
    let Some(dir) = corpus() else { return };
    let text = read_text(&dir.join("apache-http-logs-scans/w3af.txt"));
    let events = parse_all(&text, Format::Auto, &ctx("2017-01-01T00:00:00Z"), "w3af");
    let scanner = events
        .iter()
        .filter(|e| {
            e.get_str("user_agent.original")
                .is_some_and(|ua| ua.contains("w3af"))
        })
        .count();
    assert_eq!(
        scanner,
        text.lines().filter(|l| l.contains("w3af.org")).count()
    );
    let methods = count_by(&events, "http.request.method", |_| true);
    let expected = regex_count(&text, r#"\] "([A-Z]+) "#, 1);
    assert_eq!(methods, expected);
}

#[test]
fn loghub_apache_error_log() {
    let Some(dir) = corpus() else { return };
    let text = read_text(&dir.join("loghub/Apache/Apache_2k.log"));
    let events = parse_all(
        &text,
        Format::Auto,
        &ctx("2006-01-01T00:00:00Z"),
        "Apache_2k",
    );
    let levels = count_by(&events, "log.level", |_| true);
    let expected = regex_count(&text, r"^\[[^\]]+\] \[(\w+)\]", 1);
    assert_eq!(levels, expected);
}

#[test]
fn zeek_json_logs() {
    let Some(dir) = corpus() else { return };
    let mut n_files = 0;
    for entry in std::fs::read_dir(dir.join("zeek-sample-data/zeek-json")).unwrap() {
        let path = entry.unwrap().path();
        let text = read_text(&path);
        let events = parse_all(
            &text,
            Format::Auto,
            &ctx("2019-01-01T00:00:00Z"),
            &path.display().to_string(),
        );
        let with_source = count_by(&events, "source.ip", |_| true);
        let expected = regex_count(&text, r#""id\.orig_h":"([^"]+)""#, 1);
        assert_eq!(with_source, expected, "{}", path.display());
        assert!(
            events
                .iter()
                .all(|e| e.timestamp() != Timestamp::parse("2019-01-01T00:00:00Z").unwrap()),
            "every Zeek record has its own time"
        );
        n_files += 1;
    }
    assert!(n_files >= 5);
}

#[test]
fn suricata_eve_alerts() {
    let Some(dir) = corpus() else { return };
    for sample in ["honeypot-2018", "first-org-conf-2015"] {
        let text = read_text(&dir.join(format!(
            "suricata-sample-data/samples/{sample}/alerts-only.json"
        )));
        let items: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        let lines: Vec<String> = items.iter().map(|v| v.to_string()).collect();
        let events = parse_all(
            &lines.join("\n"),
            Format::Auto,
            &ctx("2020-01-01T00:00:00Z"),
            sample,
        );
        assert_eq!(events.len(), items.len());
        let signatures = count_by(&events, "rule.name", |e| is(e, "event.kind", "alert"));
        let expected = regex_count(&text, r#""signature": "(.*)",$"#, 1);
        assert_eq!(signatures, expected, "{sample}");
    }
}

#[test]
fn evtx_attack_samples() {
    let Some(dir) = corpus() else { return };
    let mut files = Vec::new();
    let mut stack = vec![dir.join("evtx-attack-samples")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("evtx"))
            {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 90, "found {} evtx files", files.len());
    let mut total = 0;
    let mut logons_failed = 0;
    for path in &files {
        let records = vigil_parse::evtx::parse_file(std::fs::read(path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for record in records {
            let e = record.unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            assert!(
                e.contains("EventID"),
                "{}: record without EventID",
                path.display()
            );
            assert!(
                e.contains("Channel"),
                "{}: record without Channel",
                path.display()
            );
            assert!(
                e.timestamp().as_secs() > 1_000_000_000,
                "{}: no time",
                path.display()
            );
            if e.get_str("Channel") == Some("Security")
                && e.get("EventID").and_then(Value::as_i64) == Some(4625)
            {
                logons_failed += 1;
                assert_eq!(e.get_str("event.outcome"), Some("failure"));
            }
            total += 1;
        }
    }
    eprintln!(
        "{} EVTX files, {total} records, {logons_failed} failed logons",
        files.len()
    );
    assert!(total > 1000);
}
