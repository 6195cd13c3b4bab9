//! Cluster mode end to end, as an operator runs it: a real 3-server NATS cluster and three
//! real `vigil serve --cluster` nodes on loopback ports.
//!
//! - An SSH brute force whose lines arrive through all three nodes' syslog listeners is ONE
//!   alert and ONE ban, the same on every node's alerts API and in every node's CrowdSec
//!   decision stream (one detector in the cluster; every node's books follow `sys`).
//! - Searches give the same answer on every node, and the answer a standalone Vigil fed the
//!   same lines gives (queries fan out to every shard's owner and merge).

mod common;

use std::time::Duration;

use common::cluster::{ClusterFixture, logs, send_syslog as send};
use common::{Server, curl, unused_port, wait_until};
use serde_json::Value;

const RULES: &str = r#"title: SSH failed login
id: 5d0c0f6e-2222-4c1e-9d5e-000000000001
name: e2e_ssh_failed
status: stable
logsource: {product: linux, service: sshd}
detection:
    selection:
        event.action: ssh_login
        event.outcome: failure
    condition: selection
level: low
---
title: SSH brute force
id: 5d0c0f6e-2222-4c1e-9d5e-000000000002
name: e2e_ssh_bruteforce
status: stable
correlation:
    type: event_count
    rules: [e2e_ssh_failed]
    group-by: [source.ip]
    timespan: 10m
    condition: {gte: 8}
level: high
"#;

const ATTACKER: &str = "203.0.113.77";

/// The lines of the scenario: 12 failed SSH logins from the attacker, and some others.
fn lines() -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..12 {
        lines.push(format!(
            "<38>Dec  6 10:00:{i:02} web{} sshd[8{i:02}]: Failed password for root from {ATTACKER} port {} ssh2",
            i % 3,
            52000 + i
        ));
    }
    for (i, ip) in ["198.51.100.7", "198.51.100.8", "192.0.2.10"]
        .iter()
        .enumerate()
    {
        lines.push(format!(
            "<38>Dec  6 10:01:{i:02} web{i} sshd[9{i:02}]: Accepted password for alice from {ip} port 40{i:03} ssh2"
        ));
        lines.push(format!(
            "<38>Dec  6 10:02:{i:02} web{i} sshd[7{i:02}]: Failed password for invalid user admin from {ip} port 41{i:03} ssh2"
        ));
    }
    lines
}

fn json(server_url: &str, path: &str, headers: &[String]) -> Value {
    let r = curl("GET", &format!("{server_url}{path}"), headers, None);
    serde_json::from_str(&r.body).unwrap_or(Value::Null)
}

fn search(url: &str, token: &str, query: &str) -> Value {
    let r = curl(
        "POST",
        &format!("{url}/api/v1/search"),
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/json".into(),
        ],
        Some(&serde_json::json!({"query": query, "limit": 1000}).to_string()),
    );
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    let mut v: Value = serde_json::from_str(&r.body).unwrap();
    // How long it took, and how many events were read (searches are audited: the `sys`
    // shard grows with every one), are not part of the answer.
    if let Some(o) = v.as_object_mut() {
        o.remove("took_ms");
        o.remove("scanned");
    }
    v
}

fn brute_force_alerts(url: &str, token: &str) -> Vec<Value> {
    json(
        url,
        "/api/v1/alerts",
        &[format!("Authorization: Bearer {token}")],
    )["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["rule"]["title"] == "SSH brute force" || a["rule"] == "SSH brute force")
        .collect()
}

fn bans(url: &str, key: &str) -> Vec<Value> {
    json(
        url,
        "/v1/decisions/stream?startup=true",
        &[format!("X-Api-Key: {key}")],
    )["new"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d["value"] == ATTACKER)
        .collect()
}

#[test]
fn a_brute_force_through_three_nodes_is_one_alert_and_one_ban_everywhere_and_searches_agree() {
    let Some(mut fx) = ClusterFixture::new(3, 4) else {
        return;
    };
    for node in &mut fx.nodes {
        node.monitor = true;
    }
    fx.write_rules(&[("ssh.yml", RULES)]);
    fx.flags(&["--ban-rule", "SSH brute force"]);
    let syslog = fx.syslog_tcp();
    let nodes: Vec<Server> = fx.spawn_all();
    let analyst = fx.token("analyst", "analyst");
    let bouncer = fx.cli(&["bouncer", "add", "edge"]);

    // The attack arrives through all three nodes, one line at a time in turn.
    let lines = lines();
    for (i, line) in lines.iter().enumerate() {
        send(syslog[i % 3], std::slice::from_ref(line));
    }

    // One alert and one ban, on every node.
    let everywhere = || {
        nodes.iter().all(|n| {
            brute_force_alerts(&n.url, &analyst).len() == 1 && bans(&n.url, &bouncer).len() == 1
        })
    };
    assert!(
        wait_until(60, everywhere),
        "alerts {:?}; bans {:?}; logs:\n{}",
        nodes
            .iter()
            .map(|n| brute_force_alerts(&n.url, &analyst))
            .collect::<Vec<_>>(),
        nodes
            .iter()
            .map(|n| bans(&n.url, &bouncer))
            .collect::<Vec<_>>(),
        logs(&nodes)
    );
    // And it stays one: no node raises its own copy later.
    std::thread::sleep(Duration::from_secs(3));
    let first = brute_force_alerts(&nodes[0].url, &analyst);
    assert_eq!(first.len(), 1, "{first:?}");
    for n in &nodes {
        let alerts = brute_force_alerts(&n.url, &analyst);
        assert_eq!(alerts.len(), 1, "{}: {alerts:?}", n.url);
        assert_eq!(
            alerts[0]["id"], first[0]["id"],
            "the same alert id on every node"
        );
        let b = bans(&n.url, &bouncer);
        assert_eq!(b.len(), 1, "{}: {b:?}", n.url);
    }

    // Searches: every event is searchable through every node, and the answers agree.
    let all = lines.len() as u64;
    let counted =
        |url: &str| search(url, &analyst, "sshd | stats count")["rows"][0][0].as_u64() == Some(all);
    assert!(
        wait_until(60, || nodes.iter().all(|n| counted(&n.url))),
        "every node counts {all} sshd events: {:?}",
        nodes
            .iter()
            .map(|n| search(&n.url, &analyst, "sshd | stats count"))
            .collect::<Vec<_>>()
    );
    let queries = [
        "sshd | stats count by source.ip | sort source.ip",
        "sshd | stats dc(source.ip) as addresses, dc(host.name) as hosts",
        "\"Failed password\" | stats count by user.name | sort user.name",
        "sshd event.outcome=failure | timechart span=1m count",
        "sshd | top source.ip",
        "sshd source.ip=198.51.100.8 | table message",
        "sshd | sort @timestamp | table @timestamp, message | head 5",
    ];
    let answers: Vec<Vec<Value>> = nodes
        .iter()
        .map(|n| {
            queries
                .iter()
                .map(|q| search(&n.url, &analyst, q))
                .collect()
        })
        .collect();
    for (i, q) in queries.iter().enumerate() {
        assert_eq!(answers[0][i], answers[1][i], "{q}: node 0 vs node 1");
        assert_eq!(answers[0][i], answers[2][i], "{q}: node 0 vs node 2");
    }

    // A standalone Vigil fed the same lines answers the same.
    let port = unused_port();
    let single_dir = fx.dir.path().join("single");
    let single = Server::start(&single_dir, &["--syslog-tcp", &format!("127.0.0.1:{port}")]);
    let single_token = common::create_token(&single_dir, "analyst", "single");
    send(port, &lines);
    assert!(wait_until(30, || {
        search(&single.url, &single_token, "sshd | stats count")["rows"][0][0].as_u64() == Some(all)
    }));
    for (i, q) in queries.iter().enumerate() {
        let alone = search(&single.url, &single_token, q);
        assert_eq!(answers[0][i]["columns"], alone["columns"], "{q}");
        assert_eq!(
            answers[0][i]["rows"], alone["rows"],
            "{q}: cluster vs standalone"
        );
    }
}
