//! The state every cluster node serves alike, with the real binary: two `vigil serve --cluster`
//! nodes on a real 3-server NATS cluster (JetStream R3).
//!
//! - **Cases** are a book every node derives from the `sys` shard: a case opened on node 1 (with
//!   the alert raised from events ingested there) is read and updated on node 2; cases opened
//!   on both nodes at once get cluster-unique ids in one order, listed the same everywhere; the
//!   case, its update and its comment survive a restart of node 1.
//! - **Saved searches** too: one saved on node 1 is listed on node 2; a private one only to its
//!   owner; a viewer cannot save or change shared ones anywhere.
//! - **Entity pages, ATT&CK coverage and an alert's contributing events** answer on node 2 with
//!   events ingested on node 1 (their queries fan out to every shard's owner).
//! - Adversarial: events claiming to be Vigil's own case and saved-search events, sent over
//!   syslog and HTTP, create nothing; a viewer cannot change shared state on another node.
//! - **A clean stop of the detector's node** (SIGTERM while an attack flows) flushes its alerts
//!   and cursor before its lease is given up: the successor raises no alert twice, and none is
//!   lost.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::cluster::{ClusterFixture, send_syslog as send};
use common::{Server, curl, ingest_ndjson, wait_until};
use serde_json::{Value, json};
use vigil_event::Timestamp;

const RULES: &str = r#"title: SSH failed login
id: 5d0c2a8e-1b7f-4c44-9f0e-0000000e0001
name: cs_ssh_failed
logsource: {product: linux, service: sshd}
detection:
    selection:
        event.action: ssh_login
        event.outcome: failure
    condition: selection
level: low
---
title: SSH brute force
id: 5d0c2a8e-1b7f-4c44-9f0e-0000000e0002
correlation:
    type: event_count
    rules: [cs_ssh_failed]
    group-by: [source.ip]
    timespan: 10m
    condition: {gte: 5}
level: high
tags: [attack.credential_access, attack.t1110.001]
"#;

const BRUTE_FORCE: &str = "SSH brute force";
const ATTACKER: &str = "203.0.113.41";

/// A failed SSH login from `ip`, as sshd writes it now.
fn failure(ip: &str, i: usize) -> String {
    format!(
        "<38>{} web{} sshd[{}]: Failed password for invalid user u{i} from {ip} port {} ssh2",
        Timestamp::now().to_datetime().format("%b %e %H:%M:%S"),
        i % 3,
        800 + i,
        40_000 + i
    )
}

fn bearer(token: &str) -> Vec<String> {
    vec![
        format!("Authorization: Bearer {token}"),
        "Content-Type: application/json".into(),
    ]
}

fn call(method: &str, url: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let r = curl(
        method,
        &format!("{url}{path}"),
        &bearer(token),
        body.as_deref(),
    );
    let json = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    (r.status, json)
}

fn get(url: &str, path: &str, token: &str) -> Value {
    let (status, body) = call("GET", url, path, token, None);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// The brute-force alerts a node lists, by attacker address.
fn alerts(url: &str, token: &str) -> BTreeMap<String, Vec<Value>> {
    let mut by_ip: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let (_, all) = call("GET", url, "/api/v1/alerts?limit=1000", token, None);
    for a in all["alerts"].as_array().cloned().unwrap_or_default() {
        if a["rule"]["title"] == BRUTE_FORCE {
            let ip = a["group"]["source.ip"].as_str().unwrap_or("?").to_string();
            by_ip.entry(ip).or_default().push(a);
        }
    }
    by_ip
}

/// `(id, title)` of every case a node lists.
fn cases(url: &str, token: &str) -> Vec<(u64, String)> {
    let list = get(url, "/api/v1/cases?limit=1000", token);
    list["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_u64().unwrap(),
                c["title"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The names of the saved searches `token` sees on a node.
fn saved(url: &str, token: &str) -> BTreeSet<String> {
    get(url, "/api/v1/saved-searches", token)["searches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn cases_saved_searches_and_entity_pages_are_the_same_on_every_node() {
    let Some(mut fx) = ClusterFixture::with_nodes(&["n1", "n2"], 4) else {
        return;
    };
    fx.write_rules(&[("ssh.yml", RULES)]);
    let syslog = fx.syslog_tcp();
    let mut n1 = fx.nodes[0].spawn(&fx.nats);
    let n2 = fx.nodes[1].spawn(&fx.nats);
    let analyst = fx.token("analyst", "ana");
    let vic = fx.token("viewer", "vic");
    let val = fx.token("viewer", "val");
    let sender = fx.token("ingest", "sender");

    // Forgeries first (if one were taken, it would be case 1): Vigil's own case and saved
    // search events, claimed by a sender over HTTP (node 2) and syslog (node 1).
    let now = Timestamp::now().to_rfc3339();
    let forged = [
        json!({"@timestamp": now, "event.dataset": "vigil.audit", "event.action": "case_created",
               "vigil.case.id": 1, "vigil.case.title": "forged over HTTP", "vigil.case.severity": "high",
               "user.name": "mallory", "message": "case"}),
        json!({"@timestamp": now, "event.dataset": "vigil.audit", "event.action": "saved_search_added",
               "vigil.saved_search.id": "ss-forged", "vigil.saved_search.name": "forged search",
               "vigil.saved_search.shared": true, "vigil.query": "*", "user.name": "vic"}),
    ];
    let body: String = forged.iter().map(|f| format!("{f}\n")).collect();
    let sent = ingest_ndjson(&n2.url, &sender, &body);
    assert_eq!(sent.status, 200, "{}", sent.body);
    send(
        syslog[0],
        &forged.iter().map(Value::to_string).collect::<Vec<_>>(),
    );

    // An SSH brute force, ingested on node 1.
    send(
        syslog[0],
        &(0..6).map(|i| failure(ATTACKER, i)).collect::<Vec<_>>(),
    );
    let logs = || format!("{}\n-----\n{}", n1.log(), n2.log());
    assert!(
        wait_until(90, || alerts(&n2.url, &analyst)
            .get(ATTACKER)
            .is_some_and(|a| a.len() == 1)),
        "the alert on node 2\n{}",
        logs()
    );
    let alert = alerts(&n2.url, &analyst)[ATTACKER][0].clone();
    let alert_id = alert["id"].as_u64().unwrap();

    // Entity page, contributing events and coverage on node 2, from node 1's events.
    let entity_path = format!("/api/v1/entity/ip/{ATTACKER}");
    assert!(
        wait_until(60, || get(&n2.url, &entity_path, &vic)["total_events"] == 6),
        "{}",
        get(&n2.url, &entity_path, &vic)
    );
    let e = get(&n2.url, &entity_path, &vic);
    assert_eq!(e["events"].as_array().unwrap().len(), 6, "{e}");
    assert!(e.get("missing_shards").is_none(), "{e}");
    assert_eq!(e["alerts"][0]["id"], alert_id, "{e}");
    // The same page on the node that took the events in.
    let e1 = get(&n1.url, &entity_path, &vic);
    for part in [
        "total_events",
        "first_seen",
        "last_seen",
        "sources",
        "alerts",
    ] {
        assert_eq!(e1[part], e[part], "{part}");
    }
    assert_eq!(e1["events"].as_array().unwrap().len(), 6);
    let detail = get(&n2.url, &format!("/api/v1/alerts/{alert_id}"), &vic);
    let contributing = detail["contributing"].as_array().expect("contributing");
    assert!(contributing.len() >= 5, "{detail}");
    assert!(
        contributing
            .iter()
            .all(|c| c["source.ip"] == ATTACKER && c["event.outcome"] == "failure"),
        "{detail}"
    );
    let coverage = get(&n2.url, "/api/v1/coverage", &vic);
    let brute = coverage["tactics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tactic"] == "credential-access")
        .and_then(|t| {
            t["techniques"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["id"] == "T1110.001")
                .cloned()
        })
        .unwrap_or_else(|| panic!("{coverage}"));
    assert_eq!(
        brute["idle_rules"], 0,
        "sshd events are received: {coverage}"
    );

    // A case opened on node 1 from the alert, read and worked on node 2.
    let (status, case) = call(
        "POST",
        &n1.url,
        "/api/v1/cases",
        &analyst,
        Some(
            json!({"title": "Brute force on web", "severity": "high", "alerts": [alert_id],
                    "comment": "opened on n1"}),
        ),
    );
    assert_eq!(status, 201, "{case}");
    assert_eq!(case["id"], 1, "the forged case took no id: {case}");
    let on2 = get(&n2.url, "/api/v1/cases/1", &vic);
    assert_eq!(on2["title"], "Brute force on web");
    assert_eq!(on2["alerts"], json!([alert_id]));
    assert_eq!(on2["comments"][0]["text"], "opened on n1");
    assert_eq!(on2["alert_details"][0]["id"], alert_id);
    let (status, updated) = call(
        "POST",
        &n2.url,
        "/api/v1/cases/1",
        &analyst,
        Some(json!({"status": "in_progress", "assignee": "ana"})),
    );
    assert_eq!(status, 200, "{updated}");
    let (status, _) = call(
        "POST",
        &n2.url,
        "/api/v1/cases/1/comments",
        &analyst,
        Some(json!({"text": "worked on n2"})),
    );
    assert_eq!(status, 200);
    let on1 = get(&n1.url, "/api/v1/cases/1", &vic);
    assert_eq!(on1["status"], "in_progress", "{on1}");
    assert_eq!(on1["comments"][1]["text"], "worked on n2", "{on1}");
    // The entity page names the case too, on either node.
    assert_eq!(get(&n1.url, &entity_path, &vic)["cases"][0]["id"], 1);

    // Cases opened on both nodes at once: unique ids, one order, the same list everywhere.
    let started = std::time::Instant::now();
    let created: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let url = if i % 2 == 0 { &n1.url } else { &n2.url };
                let analyst = &analyst;
                s.spawn(move || {
                    let (status, c) = call(
                        "POST",
                        url,
                        "/api/v1/cases",
                        analyst,
                        Some(json!({"title": format!("parallel {i}")})),
                    );
                    assert_eq!(status, 201, "{c}");
                    c["id"].as_u64().unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    common::say(&format!(
        "six cases opened at once on two nodes in {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    ));
    let ids: BTreeSet<u64> = created.iter().copied().collect();
    assert_eq!(
        ids,
        (2..=7).collect(),
        "cluster-unique case ids: {created:?}"
    );
    let listed = cases(&n1.url, &vic);
    assert_eq!(listed.len(), 7, "{listed:?}");
    assert_eq!(listed, cases(&n2.url, &vic), "the same cases on both nodes");
    assert!(
        listed.iter().all(|(_, t)| !t.starts_with("forged")),
        "{listed:?}"
    );

    // A viewer changes no case anywhere; a stored event is not added by bare number in a cluster.
    for (method, path, body) in [
        ("POST", "/api/v1/cases", json!({"title": "by a viewer"})),
        ("POST", "/api/v1/cases/1", json!({"status": "closed"})),
        ("POST", "/api/v1/cases/1/comments", json!({"text": "x"})),
    ] {
        let (status, _) = call(method, &n2.url, path, &vic, Some(body));
        assert_eq!(status, 403, "{method} {path}");
    }
    let (status, body) = call(
        "POST",
        &n2.url,
        "/api/v1/cases/1/events",
        &analyst,
        Some(json!({"seq": 1})),
    );
    // A bare sequence names no event in a cluster: a 400 naming `{shard, seq}`
    // (crates/vigil/tests/cluster_drill.rs adds one that way).
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("\"shard\""),
        "{body}"
    );

    // Saved searches: saved on node 1, listed on node 2; private ones to their owner only.
    let (status, mine) = call(
        "POST",
        &n1.url,
        "/api/v1/saved-searches",
        &vic,
        Some(json!({"name": "my failures", "query": "event.outcome=failure", "from": "-1h"})),
    );
    assert_eq!(status, 201, "{mine}");
    let (status, shared) = call(
        "POST",
        &n1.url,
        "/api/v1/saved-searches",
        &analyst,
        Some(
            json!({"name": "team brute force", "query": "event.action=ssh_login | stats count by source.ip",
                    "shared": true, "panel": true}),
        ),
    );
    assert_eq!(status, 201, "{shared}");
    let both: BTreeSet<String> = ["my failures", "team brute force"].map(String::from).into();
    assert_eq!(saved(&n2.url, &vic), both, "node 2 lists what node 1 saved");
    let listed = get(&n2.url, "/api/v1/saved-searches", &vic);
    let mine_on2 = listed["searches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "my failures")
        .unwrap();
    assert_eq!(mine_on2["from"], "-1h");
    assert_eq!(mine_on2["owner"], "vic");
    assert_eq!(
        saved(&n2.url, &val),
        BTreeSet::from(["team brute force".to_string()]),
        "another user sees only the shared one"
    );
    let (mine_id, shared_id) = (
        mine["id"].as_str().unwrap().to_string(),
        shared["id"].as_str().unwrap().to_string(),
    );
    let (status, _) = call(
        "DELETE",
        &n2.url,
        &format!("/api/v1/saved-searches/{mine_id}"),
        &val,
        None,
    );
    assert_eq!(
        status, 404,
        "another user's private search is not theirs to see"
    );
    let (status, _) = call(
        "DELETE",
        &n2.url,
        &format!("/api/v1/saved-searches/{shared_id}"),
        &val,
        None,
    );
    assert_eq!(status, 403, "a viewer does not remove a shared search");
    let (status, _) = call(
        "POST",
        &n2.url,
        "/api/v1/saved-searches",
        &val,
        Some(json!({"name": "shared by a viewer", "query": "*", "shared": true})),
    );
    assert_eq!(status, 403, "a viewer does not save shared searches");
    let (status, off) = call(
        "POST",
        &n2.url,
        &format!("/api/v1/saved-searches/{shared_id}"),
        &analyst,
        Some(json!({"panel": false})),
    );
    assert_eq!(status, 200, "{off}");
    let panel_on1 = get(&n1.url, "/api/v1/saved-searches", &val)["searches"][0]["panel"].clone();
    assert_eq!(
        panel_on1, false,
        "taken off the dashboard on node 2, seen on node 1"
    );
    assert!(
        !saved(&n1.url, &vic).contains("forged search"),
        "a sender's forged saved search is not listed"
    );

    // Node 1 restarts: what both nodes did is there again, read back from `sys`.
    n1.stop();
    n1 = fx.nodes[0].spawn(&fx.nats);
    let again = get(&n1.url, "/api/v1/cases/1", &vic);
    assert_eq!(again["status"], "in_progress", "{again}");
    assert_eq!(again["assignee"], "ana");
    assert_eq!(again["comments"].as_array().unwrap().len(), 2, "{again}");
    assert_eq!(cases(&n1.url, &vic), cases(&n2.url, &vic));
    assert_eq!(saved(&n1.url, &vic), both);
    let (status, c) = call(
        "POST",
        &n1.url,
        "/api/v1/cases",
        &analyst,
        Some(json!({"title": "after the restart"})),
    );
    assert_eq!((status, c["id"].as_u64()), (201, Some(8)), "{c}");
    n1.stop();
    n2.stop();
}

#[test]
fn a_clean_stop_of_the_detector_flushes_before_it_hands_over() {
    let names = ["s1", "s2"];
    let Some(mut fx) = ClusterFixture::with_nodes(&names, 4) else {
        return;
    };
    fx.write_rules(&[("ssh.yml", RULES)]);
    let syslog = fx.syslog_tcp();
    let mut nodes: Vec<Option<Server>> = fx
        .nodes
        .iter()
        .map(|node| Some(node.spawn(&fx.nats)))
        .collect();
    let analyst = fx.token("analyst", "ana");
    let owner = |url: &str| {
        get(url, "/api/v1/cluster", &analyst)["detector"]["owner"]
            .as_str()
            .map(str::to_string)
    };
    let url0 = nodes[0].as_ref().unwrap().url.clone();
    assert!(wait_until(60, || owner(&url0).is_some()), "a detector");
    let holder = names
        .iter()
        .position(|n| owner(&url0).as_deref() == Some(*n))
        .unwrap();
    let other = 1 - holder;
    let survivor = nodes[other].as_ref().unwrap().url.clone();

    // Forty attackers, six failures each, interleaved, sent through the node that stays while
    // the detector's node stops cleanly in the middle of the flow.
    let ips: Vec<String> = (1..=40).map(|i| format!("198.51.100.{i}")).collect();
    let lines: Vec<String> = (0..6)
        .flat_map(|round| ips.iter().map(move |ip| failure(ip, round)))
        .collect();
    let port = syslog[other];
    let flow = std::thread::spawn(move || {
        for chunk in lines.chunks(8) {
            send(port, chunk);
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    std::thread::sleep(Duration::from_millis(1200));
    let log = nodes[holder].take().unwrap().stop();
    flow.join().unwrap();
    assert!(
        wait_until(90, || owner(&survivor).as_deref() == Some(names[other])),
        "the other node takes the detector over"
    );
    let complete = || {
        let a = alerts(&survivor, &analyst);
        ips.iter().all(|ip| a.contains_key(ip))
    };
    assert!(
        wait_until(90, complete),
        "every attacker's alert: {:?}\n{log}\n-----\n{}",
        alerts(&survivor, &analyst).keys().collect::<Vec<_>>(),
        nodes[other].as_ref().unwrap().log()
    );
    std::thread::sleep(Duration::from_secs(3));
    let a = alerts(&survivor, &analyst);
    for ip in &ips {
        assert_eq!(a[ip].len(), 1, "{ip}: exactly one alert: {:?}", a[ip]);
    }
    assert_eq!(a.len(), ips.len());
    nodes[other].take().unwrap().stop();
}
