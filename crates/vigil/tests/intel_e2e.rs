//! Threat intelligence and enrichment end to end (issue 18): a STIX 2.1 bundle and a MISP feed
//! loaded by a real `vigil serve`, a sshd line through the real syslog TCP listener and JSON
//! through the HTTP API matched, enriched before the ledger and alerted by the bundled rule; a
//! list change picked up without restart; a broken file keeping the previous list and saying
//! why; user/host tables and a tiny GeoIP database (built here) joined; a sender's forged
//! enrichment moved aside.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;

use common::*;
use vigil_enrich::geo::testing;

const STIX: &str = r#"{"type": "bundle", "id": "bundle--5d0c2a8e-0000-4000-8000-000000000001", "objects": [
  {"type": "identity", "spec_version": "2.1", "id": "identity--acme", "name": "ACME CERT"},
  {"type": "indicator", "spec_version": "2.1", "id": "indicator--1", "created_by_ref": "identity--acme",
   "name": "SSH brute forcer", "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z", "confidence": 80,
   "pattern": "[ipv4-addr:value = '198.51.100.7']"}
]}"#;

const MISP_UUID: &str = "5f1c0a2e-0000-4000-8000-0000000000aa";

fn misp_event(domain: &str) -> String {
    format!(
        r#"{{"Event": {{"uuid": "{MISP_UUID}", "info": "Phishing wave", "Orgc": {{"name": "CIRCL"}},
        "Attribute": [{{"type": "domain", "value": "{domain}", "to_ids": true, "timestamp": "1764547200"}}]}}}}"#
    )
}

/// Writes `text` to `path` by rename, as feed updaters do.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn intel_status(url: &str, token: &str) -> serde_json::Value {
    curl(
        "GET",
        &format!("{url}/api/v1/intel"),
        &[format!("Authorization: Bearer {token}")],
        None,
    )
    .json()
}

#[test]
fn stix_and_misp_feeds_enrich_alert_and_reload_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let intel = dir.path().join("intel");
    let misp_dir = dir.path().join("misp-feed");
    std::fs::create_dir_all(&intel).unwrap();
    std::fs::create_dir_all(&misp_dir).unwrap();
    let stix_path = intel.join("acme.json");
    std::fs::write(&stix_path, STIX).unwrap();
    std::fs::write(
        misp_dir.join("manifest.json"),
        format!(r#"{{"{MISP_UUID}": {{"info": "Phishing wave", "Orgc": {{"name": "CIRCL"}}}}}}"#),
    )
    .unwrap();
    let misp_file = misp_dir.join(format!("{MISP_UUID}.json"));
    std::fs::write(&misp_file, misp_event("phish.example")).unwrap();
    let users = dir.path().join("users.csv");
    std::fs::write(
        &users,
        "user.name,user.department,user.roles\nroot,it,admin;oncall\n",
    )
    .unwrap();
    let hosts = dir.path().join("hosts.csv");
    std::fs::write(
        &hosts,
        "host.name,host.owner,host.criticality\nweb1,platform,critical\n",
    )
    .unwrap();
    let geo = dir.path().join("test.mmdb");
    std::fs::write(
        &geo,
        testing::write(
            "Vigil-Test-City",
            &[(
                "198.51.100.0".parse().unwrap(),
                24,
                testing::record("NL", "Netherlands", "Amsterdam", 64500, "Example Transit"),
            )],
        ),
    )
    .unwrap();
    let config = dir.path().join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "[intel]\nfeeds = [{:?}, {:?}]\n[enrich]\ntables = [{:?}, {:?}]\ngeoip = [{:?}]\nreload = \"1s\"\n",
            intel.display().to_string(),
            misp_dir.display().to_string(),
            users.display().to_string(),
            hosts.display().to_string(),
            geo.display().to_string(),
        ),
    )
    .unwrap();
    std::fs::create_dir_all(&data).unwrap();
    let reader = create_token(&data, "viewer", "intel-viewer");
    let ingest = create_token(&data, "ingest", "intel-ingest");
    let port = unused_port();
    let tcp = format!("127.0.0.1:{port}");
    let server = Server::start(
        &data,
        &["--config", config.to_str().unwrap(), "--syslog-tcp", &tcp],
    );

    // The lists show in the API with their source, format, count and age.
    let status = intel_status(&server.url, &reader);
    assert_eq!(status["enabled"], true, "{status}");
    assert_eq!(status["indicators"], 2, "{status}");
    let sources = status["sources"].as_array().unwrap();
    let find = |suffix: &str| {
        sources
            .iter()
            .find(|s| s["path"].as_str().unwrap().ends_with(suffix))
            .unwrap_or_else(|| panic!("{suffix} not in {status}"))
            .clone()
    };
    assert_eq!(find("acme.json")["format"], "stix");
    assert_eq!(find("manifest.json")["format"], "misp");
    assert_eq!(find("users.csv")["count"], 1);
    assert_eq!(find("test.mmdb")["format"], "mmdb");
    assert!(find("acme.json")["loaded_at"].is_string());
    // Anonymous callers and ingest-only tokens do not see it.
    let anon = curl("GET", &format!("{}/api/v1/intel", server.url), &[], None);
    assert_eq!(anon.status, 401);
    let wrong = curl(
        "GET",
        &format!("{}/api/v1/intel", server.url),
        &[format!("Authorization: Bearer {ingest}")],
        None,
    );
    assert_eq!(wrong.status, 403);

    // A sshd failure from the listed address through the real syslog TCP listener.
    let mut stream = TcpStream::connect(&tcp).unwrap();
    stream
        .write_all(b"<38>Dec  6 10:00:01 web1 sshd[812]: Failed password for root from 198.51.100.7 port 52110 ssh2\n")
        .unwrap();
    drop(stream);
    // A DNS query below the MISP domain, and a forged enrichment, over HTTP.
    let body = concat!(
        r#"{"@timestamp": "2026-12-07T10:00:00Z", "message": "dns", "dns": {"question": {"name": "login.phish.example"}}}"#,
        "\n",
        r#"{"@timestamp": "2026-12-07T10:00:01Z", "message": "forged", "source": {"ip": "192.0.2.44"}, "threat": {"indicator": {"type": "ipv4-addr"}}, "host": {"name": "web1", "criticality": "low"}}"#,
        "\n"
    );
    let a = ingest_ndjson(&server.url, &ingest, body);
    assert_eq!(a.status, 200, "{}", a.body);

    let matched = |value: &str| {
        ledger_events(&data).into_iter().find(|e| {
            e.get_str("vigil.intel.indicator") == Some(value)
                && e.get_str("event.dataset") != Some("vigil.alert")
        })
    };
    assert!(
        wait_until(20, || matched("198.51.100.7").is_some()),
        "{}",
        server.log()
    );
    let ssh = matched("198.51.100.7").unwrap();
    assert_eq!(ssh.get_str("threat.indicator.provider"), Some("ACME CERT"));
    assert_eq!(ssh.get_str("threat.indicator.confidence"), Some("High"));
    assert_eq!(ssh.get_str("threat.indicator.type"), Some("ipv4-addr"));
    assert!(
        matches!(ssh.get("threat.enrichments"), Some(vigil_event::Value::List(l)) if l.len() == 1)
    );
    assert_eq!(ssh.get_str("user.department"), Some("it"));
    assert_eq!(ssh.get_str("host.criticality"), Some("critical"));
    assert_eq!(ssh.get_str("source.geo.country_iso_code"), Some("NL"));
    assert_eq!(
        ssh.get("source.as.number"),
        Some(&vigil_event::Value::Int(64500))
    );
    let dns = matched("phish.example").expect("the MISP domain matched");
    assert_eq!(dns.get_str("threat.indicator.provider"), Some("CIRCL"));
    assert_eq!(matched_field(&dns).as_deref(), Some("dns.question.name"));
    let events = ledger_events(&data);
    let forged = events
        .iter()
        .find(|e| e.get_str("message") == Some("forged"))
        .expect("stored");
    assert!(forged.get("threat.indicator.type").is_none(), "{forged:?}");
    assert_eq!(
        forged.get_str("external.threat.indicator.type"),
        Some("ipv4-addr")
    );
    assert_eq!(
        forged.get_str("host.criticality"),
        Some("critical"),
        "the table, not the sender"
    );

    // The bundled rule alerts on both matches.
    let auth = format!("Authorization: Bearer {reader}");
    let alerts = || {
        curl(
            "GET",
            &format!("{}/api/v1/alerts", server.url),
            std::slice::from_ref(&auth),
            None,
        )
        .json()["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["rule"]["title"] == "Threat intelligence indicator matched")
            .map(|a| a["count"].as_u64().unwrap_or(1))
            .sum::<u64>()
    };
    assert!(
        wait_until(20, || alerts() >= 2),
        "alerts: {}\n{}",
        alerts(),
        server.log()
    );

    // The STIX list changes on disk: picked up without restart.
    replace(&stix_path, &STIX.replace("198.51.100.7", "203.0.113.66"));
    assert!(
        wait_until(15, || {
            let s = intel_status(&server.url, &reader);
            s["sources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["path"].as_str().unwrap().ends_with("acme.json") && s["error"].is_null())
                && s["counters"]["reloads"].as_u64().unwrap_or(0) >= 2
        }),
        "{}",
        intel_status(&server.url, &reader)
    );
    let body = concat!(
        r#"{"@timestamp": "2026-12-07T10:01:00Z", "message": "new", "source": {"ip": "203.0.113.66"}}"#,
        "\n",
        r#"{"@timestamp": "2026-12-07T10:01:01Z", "message": "old", "source": {"ip": "198.51.100.7"}}"#,
        "\n"
    );
    assert_eq!(ingest_ndjson(&server.url, &ingest, body).status, 200);
    assert!(
        wait_until(20, || matched("203.0.113.66").is_some()),
        "{}",
        server.log()
    );
    let old = ledger_events(&data)
        .into_iter()
        .find(|e| e.get_str("message") == Some("old"))
        .unwrap();
    assert!(
        old.get("vigil.intel.matches").is_none(),
        "the removed indicator no longer matches"
    );

    // A broken MISP event file: the previous list stays and the status says why.
    replace(&misp_file, "{\"Event\": [[[[");
    assert!(
        wait_until(15, || {
            find_error(&intel_status(&server.url, &reader), "manifest.json").is_some()
        }),
        "{}",
        intel_status(&server.url, &reader)
    );
    let e = find_error(&intel_status(&server.url, &reader), "manifest.json").unwrap();
    assert!(e.contains(MISP_UUID), "{e}");
    let body = r#"{"@timestamp": "2026-12-07T10:02:00Z", "message": "still", "url": {"full": "https://www.phish.example/x"}}"#;
    assert_eq!(
        ingest_ndjson(&server.url, &ingest, &format!("{body}\n")).status,
        200
    );
    assert!(
        wait_until(20, || ledger_events(&data)
            .iter()
            .any(|e| e.get_str("message") == Some("still")
                && e.get_str("threat.indicator.provider") == Some("CIRCL"))),
        "{}",
        server.log()
    );
    server.stop();
}

fn find_error(status: &serde_json::Value, suffix: &str) -> Option<String> {
    status["sources"].as_array()?.iter().find_map(|s| {
        if s["path"].as_str()?.ends_with(suffix) {
            s["error"].as_str().map(str::to_owned)
        } else {
            None
        }
    })
}

/// `threat.enrichments[0].matched.field`.
fn matched_field(e: &vigil_event::Event) -> Option<String> {
    use vigil_event::Value;
    let Some(Value::List(list)) = e.get("threat.enrichments") else {
        return None;
    };
    let Value::Map(entry) = list.first()? else {
        return None;
    };
    let Value::Map(matched) = entry.get("matched")? else {
        return None;
    };
    matched.get("field")?.as_str().map(str::to_owned)
}
