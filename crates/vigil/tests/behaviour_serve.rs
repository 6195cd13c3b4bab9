//! Behaviour rules in `vigil serve` (issue 18): a first-seen rule added to a server that
//! already holds a week of history learns that history first (backfill, no alerts for it) and
//! then flags only what is new after its addition — per entity; its memory survives a restart
//! (`detect/behaviour.bin`) and shows on `/metrics`.

mod common;
mod scenario;

use common::{Server, create_token, curl, ingest_ndjson, run_ok, vigil, wait_until};
use scenario::DAY;
use vigil_event::Timestamp;

const RULE: &str = "new_address_admin_login.yml";

fn login(user: &str, ip: &str) -> String {
    serde_json::json!({
        "@timestamp": Timestamp::now().to_rfc3339(),
        "event.category": "authentication",
        "event.outcome": "success",
        "user.name": user,
        "source.ip": ip,
        "message": format!("login ok for {user} from {ip}"),
    })
    .to_string()
}

/// The alerts of the first-seen rule: (group key, count).
fn alerts(url: &str, token: &str) -> Vec<(String, u64)> {
    let a = curl(
        "GET",
        &format!("{url}/api/v1/alerts"),
        &[format!("Authorization: Bearer {token}")],
        None,
    );
    a.json()["alerts"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|a| a["rule"]["title"] == "Admin login from a never-seen address")
                .map(|a| {
                    // Field order: a book restored from the ledger lists a group's fields
                    // sorted (alert.rs reads them back from `vigil.alert.group_fields.*`).
                    let mut parts: Vec<&str> =
                        a["group_key"].as_str().unwrap_or("").split(' ').collect();
                    parts.sort_unstable();
                    (parts.join(" "), a["count"].as_u64().unwrap_or(0))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_rule_added_to_a_server_with_history_flags_only_what_is_new_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    // A week of history that ended yesterday, imported before the rule exists.
    let now = Timestamp::now().as_nanos();
    let start = (now / DAY - 8) * DAY;
    let history = dir.path().join("history.json");
    std::fs::write(&history, scenario::benign(start).join("\n") + "\n").unwrap();
    run_ok(
        vigil()
            .args(["import", "--quiet", "--format", "json", "--data-dir"])
            .arg(&data)
            .arg(&history),
    );
    let token = create_token(&data, "admin", "behaviour-test");
    let server = Server::start(&data, &["--rules", rules.to_str().unwrap()]);
    let url = server.url.clone();

    // The rule arrives while the server runs.
    std::fs::copy(scenario::rules_dir().join(RULE), rules.join(RULE)).unwrap();
    let auth = [format!("Authorization: Bearer {token}")];
    assert!(
        wait_until(30, || {
            curl("GET", &format!("{url}/api/v1/rules"), &auth, None).json()["rules"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["kind"] == "new_terms"))
        }),
        "the rule was not loaded:\n{}",
        server.log()
    );

    // Known from the history: admin from either usual address, root from its own.
    // New after the rule's addition: admin from an outside address, and root from admin's
    // address (known globally, new for root).
    let body = [
        login("admin", "10.0.0.5"),
        login("admin", "10.0.0.6"),
        login("root", "10.0.0.7"),
        login("admin", "203.0.113.50"),
        login("root", "10.0.0.5"),
    ]
    .join("\n");
    let a = ingest_ndjson(&url, &token, &body);
    assert_eq!(a.status, 200, "{}", a.body);
    let want = [
        ("source.ip=10.0.0.5 user.name=root".to_owned(), 1),
        ("source.ip=203.0.113.50 user.name=admin".to_owned(), 1),
    ];
    assert!(
        wait_until(30, || alerts(&url, &token).len() >= 2),
        "no alerts: {:?}\n{}\nlast events: {:#?}",
        alerts(&url, &token),
        server.log(),
        common::ledger_events(&data)
            .iter()
            .rev()
            .take(4)
            .map(|e| e.to_json())
            .collect::<Vec<_>>()
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mut got = alerts(&url, &token);
    got.sort();
    assert_eq!(
        got,
        want.to_vec(),
        "only what is new after the rule's addition"
    );
    let log = server.log();
    assert!(log.contains("learned their history"), "{log}");
    // Each alert explains itself, in the list and in the alert's own view (what the UI shows).
    let list = curl("GET", &format!("{url}/api/v1/alerts"), &auth, None).json();
    for a in list["alerts"].as_array().unwrap() {
        if a["rule"]["title"] != "Admin login from a never-seen address" {
            continue;
        }
        let one = curl(
            "GET",
            &format!("{url}/api/v1/alerts/{}", a["id"]),
            &auth,
            None,
        )
        .json();
        let b = &one["baseline"];
        assert_eq!(b["kind"], "new_terms", "{one:#}");
        assert!(
            b["summary"]
                .as_str()
                .unwrap()
                .contains("was not seen for user.name="),
            "{b:#}"
        );
        assert_eq!(a["baseline"], *b);
    }

    let metrics = curl("GET", &format!("{url}/metrics"), &auth, None).body;
    let entries: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vigil_behaviour_entries "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no vigil_behaviour_entries in\n{metrics}"));
    assert!(entries >= 4, "admin and root addresses at least: {entries}");
    server.stop();

    // The memory survives a restart: a repeat of a new address is known now, another is new.
    assert!(data.join("detect/behaviour.bin").is_file());
    let server = Server::start(&data, &["--rules", rules.to_str().unwrap()]);
    let url = server.url.clone();
    let body = [
        login("admin", "203.0.113.50"),
        login("admin", "203.0.113.51"),
    ]
    .join("\n");
    assert_eq!(ingest_ndjson(&url, &token, &body).status, 200);
    assert!(
        wait_until(30, || alerts(&url, &token).len() >= 3),
        "{:?}\n{}",
        alerts(&url, &token),
        server.log()
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mut got = alerts(&url, &token);
    got.sort();
    let mut want = want.to_vec();
    want.push(("source.ip=203.0.113.51 user.name=admin".to_owned(), 1));
    want.sort();
    assert_eq!(got, want, "the repeat is not new after the restart");
    let log = server.stop();
    assert!(
        !log.contains("learned their history"),
        "the saved state was used, not rebuilt:\n{log}"
    );

    // A damaged state file is a cache: rebuilt from the ledger, without alerting, and the
    // addresses seen before are still known (their alerts' counts stay 1).
    std::fs::write(data.join("detect/behaviour.bin"), b"VGBH\x01garbage").unwrap();
    let server = Server::start(&data, &["--rules", rules.to_str().unwrap()]);
    let url = server.url.clone();
    let body = [login("admin", "203.0.113.51"), login("root", "10.0.0.5")].join("\n");
    assert_eq!(ingest_ndjson(&url, &token, &body).status, 200);
    // Evaluated: the detector has no lag left.
    let lag = || {
        curl("GET", &format!("{url}/metrics"), &auth, None)
            .body
            .lines()
            .find_map(|l| l.strip_prefix("vigil_detect_lag_events "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    assert!(wait_until(30, || lag() == Some(0)), "{:?}", lag());
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mut got = alerts(&url, &token);
    got.sort();
    assert_eq!(got, want, "nothing new after the rebuild");
    let log = server.stop();
    assert!(log.contains("rebuilding the behaviour state"), "{log}");
    assert!(log.contains("learned their history"), "{log}");
}
