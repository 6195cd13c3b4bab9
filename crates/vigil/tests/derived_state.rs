//! DESIGN invariant 3, "derived state is disposable", for detection and response (issue 14):
//! the detector's `detect/state.json` and the ban book's `decisions.json` are caches of what
//! Vigil wrote to its ledger. Deleted, after a clean stop or a `kill -9`, a restart rebuilds the
//! same alert book (ids, counts, samples, triage) and the same active bans from the ledger —
//! it neither forgets them, nor re-alerts on old events, nor misses the ones it had not counted.

mod common;

use std::path::Path;

use common::{Server, create_token, curl, ingest_ndjson, wait_until};
use serde_json::Value;

use common::SSH_FAILED_LOGIN_RULE as RULE;

struct Tokens {
    ingest: String,
    analyst: String,
}

fn failures(ips: &[&str]) -> String {
    ips.iter()
        .map(|ip| {
            format!(
                "{{\"process.name\":\"sshd\",\"event.action\":\"ssh_login\",\"event.outcome\":\"failure\",\"source.ip\":\"{ip}\",\"message\":\"Failed password for root from {ip}\"}}\n"
            )
        })
        .collect()
}

fn get(url: &str, token: &str, path: &str) -> Value {
    let a = curl(
        "GET",
        &format!("{url}{path}"),
        &[format!("Authorization: Bearer {token}")],
        None,
    );
    assert_eq!(a.status, 200, "{path}: {}", a.body);
    a.json()
}

fn send(method: &str, url: &str, token: &str, path: &str, body: &str) -> Value {
    let a = curl(
        method,
        &format!("{url}{path}"),
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/json".into(),
        ],
        Some(body),
    );
    assert!(a.status < 300, "{method} {path}: {} {}", a.status, a.body);
    a.json()
}

/// The alert book and the active bans as the API shows them.
fn snapshot(url: &str, token: &str) -> (Value, Value) {
    (
        get(url, token, "/api/v1/alerts")["alerts"].clone(),
        get(url, token, "/api/v1/decisions")["decisions"].clone(),
    )
}

/// Waits until the detector has evaluated every event in the ledger (its own alert and ban
/// events included), so everything it decided is written.
fn settle(url: &str, token: &str) {
    let lag = || {
        let a = curl(
            "GET",
            &format!("{url}/metrics"),
            &[format!("Authorization: Bearer {token}")],
            None,
        );
        a.body
            .lines()
            .find_map(|l| l.strip_prefix("vigil_detect_lag_events "))
            .map(str::to_owned)
    };
    assert!(
        wait_until(30, || lag().as_deref() == Some("0")),
        "detection lag {:?}",
        lag()
    );
}

fn counts(alerts: &Value) -> Vec<(u64, u64, String)> {
    alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_u64().unwrap(),
                a["count"].as_u64().unwrap(),
                a["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn start(data: &Path, rules: &Path) -> Server {
    Server::start(
        data,
        &[
            "--rules",
            rules.to_str().unwrap(),
            "--ban-rule",
            "SSH failed login",
        ],
    )
}

/// Deletes both caches and restarts; waits until the rebuilt book and bans equal `expected`.
fn restart_without_caches(data: &Path, rules: &Path, tokens: &Tokens, expected: &(Value, Value)) {
    std::fs::remove_file(data.join("detect/state.json")).expect("detect/state.json exists");
    std::fs::remove_file(data.join("decisions.json")).expect("decisions.json exists");
    let server = start(data, rules);
    settle(&server.url, &tokens.analyst);
    let mut now = snapshot(&server.url, &tokens.analyst);
    // Bans that expire meanwhile would differ; none do here (the first lasts 4 h).
    wait_until(10, || {
        now = snapshot(&server.url, &tokens.analyst);
        &now == expected
    });
    assert_eq!(
        counts(&now.0),
        counts(&expected.0),
        "alert ids, counts and status"
    );
    assert_eq!(now.0, expected.0, "the alert book");
    assert_eq!(now.1, expected.1, "the active bans");
    server.stop();
}

#[test]
fn alerts_and_bans_are_rebuilt_from_the_ledger_when_their_files_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("ssh_failed.yml"), RULE).unwrap();
    let tokens = Tokens {
        ingest: create_token(&data, "ingest", "sender"),
        analyst: create_token(&data, "admin", "ana"),
    };
    let server = start(&data, &rules);
    let url = server.url.clone();
    let ingest = |ips: &[&str]| {
        let a = ingest_ndjson(&url, &tokens.ingest, &failures(ips));
        assert_eq!(a.status, 200, "{}", a.body);
        settle(&url, &tokens.analyst);
    };

    // Three attackers: three alerts and three bans.
    ingest(&["203.0.113.5", "198.51.100.7", "192.0.2.44"]);
    // More matches of open alerts: throttled updates (the default throttle is 10 minutes), so
    // the counts grow without an alert event each.
    ingest(&["203.0.113.5", "203.0.113.5", "198.51.100.7"]);
    let alerts = get(&url, &tokens.analyst, "/api/v1/alerts")["alerts"].clone();
    let id_of = |ip: &str| {
        alerts
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["group"]["source.ip"] == ip)
            .unwrap()["id"]
            .as_u64()
            .unwrap()
    };
    let (a1, a2, a3) = (
        id_of("203.0.113.5"),
        id_of("198.51.100.7"),
        id_of("192.0.2.44"),
    );
    // Triage: one acknowledged, one acknowledged then closed.
    let triage = |id: u64, status: &str, comment: &str| {
        send(
            "POST",
            &url,
            &tokens.analyst,
            &format!("/api/v1/alerts/{id}"),
            &format!("{{\"status\":\"{status}\",\"comment\":\"{comment}\"}}"),
        );
    };
    triage(a2, "acknowledged", "looking");
    triage(a3, "acknowledged", "mine");
    triage(a3, "closed", "false positive");
    // A ban lifted by hand, a ban by hand.
    let decisions = get(&url, &tokens.analyst, "/api/v1/decisions")["decisions"].clone();
    let ban_of = |ip: &str| {
        decisions
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["value"] == ip)
            .unwrap_or_else(|| panic!("no ban of {ip}: {decisions}"))["id"]
            .as_u64()
            .unwrap()
    };
    send(
        "DELETE",
        &url,
        &tokens.analyst,
        &format!("/api/v1/decisions/{}", ban_of("192.0.2.44")),
        "",
    );
    send(
        "POST",
        &url,
        &tokens.analyst,
        "/api/v1/decisions",
        r#"{"value":"198.18.0.0/24","duration":"2h","reason":"scanner"}"#,
    );
    // The closed alert's address again: a new alert, and a second (so longer) ban.
    ingest(&["192.0.2.44", "203.0.113.5"]);
    // An alert closed after a throttled match that no alert event wrote (the last match
    // above, after the new alert's event): a rebuild must not raise it again for that match.
    triage(a1, "closed", "handled");

    let before = snapshot(&url, &tokens.analyst);
    assert_eq!(
        counts(&before.0),
        vec![
            (a3 + 1, 1, "open".into()),
            (a3, 1, "closed".into()),
            (a2, 2, "acknowledged".into()),
            (a1, 4, "closed".into()),
        ],
        "{}",
        before.0
    );
    assert_eq!(before.1.as_array().unwrap().len(), 4, "{}", before.1);

    // A clean stop, both files deleted, a restart: the same book and bans.
    server.stop();
    restart_without_caches(&data, &rules, &tokens, &before);

    // Again, after more alerts and a kill -9 instead of a clean stop.
    let server = start(&data, &rules);
    let url = server.url.clone();
    let a = ingest_ndjson(
        &url,
        &tokens.ingest,
        &failures(&["100.64.0.9", "100.64.0.9"]),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    settle(&url, &tokens.analyst);
    let before = snapshot(&url, &tokens.analyst);
    assert_eq!(before.0.as_array().unwrap().len(), 5, "{}", before.0);
    assert_eq!(before.1.as_array().unwrap().len(), 5, "{}", before.1);
    drop(server); // SIGKILL
    restart_without_caches(&data, &rules, &tokens, &before);
}

/// A `kill -9` lands between two saves of the caches: they are stale, not gone. The ledger
/// holds what came after them (a new alert, a throttled update written later, a triage, a
/// ban), and a restart on the stale files gives the same book and bans as before the kill.
/// (Emulated deterministically: the files of an earlier clean stop are put back.)
#[test]
fn stale_caches_catch_up_with_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("ssh_failed.yml"), RULE).unwrap();
    let tokens = Tokens {
        ingest: create_token(&data, "ingest", "sender"),
        analyst: create_token(&data, "admin", "ana"),
    };
    let ingest = |url: &str, ips: &[&str]| {
        let a = ingest_ndjson(url, &tokens.ingest, &failures(ips));
        assert_eq!(a.status, 200, "{}", a.body);
        settle(url, &tokens.analyst);
    };
    let server = start(&data, &rules);
    ingest(&server.url, &["203.0.113.5", "203.0.113.5"]);
    server.stop();
    let state = std::fs::read(data.join("detect/state.json")).unwrap();
    let decisions = std::fs::read(data.join("decisions.json")).unwrap();

    let server = start(&data, &rules);
    let url = server.url.clone();
    ingest(&url, &["203.0.113.5", "198.51.100.7"]);
    ingest(&url, &["198.51.100.7"]);
    let id = get(&url, &tokens.analyst, "/api/v1/alerts")["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["group"]["source.ip"] == "203.0.113.5")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    send(
        "POST",
        &url,
        &tokens.analyst,
        &format!("/api/v1/alerts/{id}"),
        r#"{"status":"acknowledged","comment":"on it"}"#,
    );
    let before = snapshot(&url, &tokens.analyst);
    assert_eq!(
        counts(&before.0),
        vec![(id + 1, 2, "open".into()), (id, 3, "acknowledged".into())],
        "{}",
        before.0
    );
    assert_eq!(before.1.as_array().unwrap().len(), 2, "{}", before.1);
    server.stop();

    std::fs::write(data.join("detect/state.json"), state).unwrap();
    std::fs::write(data.join("decisions.json"), decisions).unwrap();
    let server = start(&data, &rules);
    settle(&server.url, &tokens.analyst);
    let mut now = snapshot(&server.url, &tokens.analyst);
    wait_until(10, || {
        now = snapshot(&server.url, &tokens.analyst);
        now == before
    });
    assert_eq!(
        counts(&now.0),
        counts(&before.0),
        "alert ids, counts and status"
    );
    assert_eq!(now.0, before.0, "the alert book");
    assert_eq!(now.1, before.1, "the active bans");
    server.stop();
}
