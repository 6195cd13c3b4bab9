//! Drills and case events in cluster mode, with the real binary: three `vigil serve --cluster`
//! nodes on a real 3-server NATS cluster (JetStream R3).
//!
//! - **Drills**: the detector is another node (n2 holds the detector lease); a drill started
//!   on n1 sends through n1's listeners, its events go to the shard of their documentation
//!   address (owned by any node), its alerts are raised by n2 into `sys`; n1's report shows
//!   every event stored and both expected alerts raised, and the report is listed on n2 and
//!   n3. A drill expecting a rule no node loaded fails with the reason, as standalone.
//!   Adversarial: events claiming the run's mark, Vigil's own alert dataset or a drill report,
//!   sent over syslog and HTTP, change no report and list none.
//! - **Case events**: an event is named `{shard, seq}` (a search row's `vigil.shard` and
//!   `vigil.seq`); a bare sequence is a 400 naming that form; the event is checked with the
//!   shard's owner (an event or shard that does not exist: 404, a malformed shard: 400,
//!   nothing attached); the attached event is shown on every node; a viewer gets 403.

mod common;

use common::cluster::{ClusterFixture, send_syslog};
use common::{Server, curl, ingest_ndjson, wait_until};
use serde_json::{Value, json};
use vigil_event::Timestamp;

/// Three nodes `n1`…`n3` (4 shards) loading Vigil's demo rules (the SSH brute force a drill
/// expects) from `DIR/rules`, each with a syslog TCP listener (their ports returned); not
/// started.
fn fixture() -> Option<(ClusterFixture, Vec<u16>)> {
    let mut fx = ClusterFixture::with_nodes(&["n1", "n2", "n3"], 4)?;
    fx.write_rules(vigil_server::demo::RULES);
    let syslog = fx.syslog_tcp();
    Some((fx, syslog))
}

fn call(method: &str, url: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let r = curl(
        method,
        &format!("{url}{path}"),
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/json".into(),
        ],
        body.as_deref(),
    );
    let json = serde_json::from_str(&r.body).unwrap_or(Value::String(r.body.clone()));
    (r.status, json)
}

fn get(url: &str, path: &str, token: &str) -> Value {
    let (status, body) = call("GET", url, path, token, None);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// The rows of a search over the last hour (whole events in a cluster: every field a column).
fn search(url: &str, token: &str, query: &str) -> Vec<serde_json::Map<String, Value>> {
    let (status, r) = call(
        "POST",
        url,
        "/api/v1/search",
        token,
        Some(json!({"query": query, "from": "-1h", "to": "now"})),
    );
    assert_eq!(status, 200, "{query}: {r}");
    let columns: Vec<String> = r["columns"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| c.as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default();
    r["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|row| {
            columns
                .iter()
                .cloned()
                .zip(row.as_array().cloned().unwrap_or_default())
                .filter(|(_, v)| !v.is_null())
                .collect()
        })
        .collect()
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name:?} in {report:#}"))
}

/// The runs of the reports a node lists.
fn listed_runs(url: &str, token: &str) -> Vec<String> {
    get(url, "/api/v1/drills", token)["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn a_drill_on_one_node_reports_what_other_nodes_stored_and_raised() {
    let Some((fx, syslog)) = fixture() else {
        return;
    };
    // An operator's scenario expecting a rule no node has loaded (`drills/` beside `rules/`).
    let drills = fx.dir.path().join("drills");
    std::fs::create_dir_all(&drills).unwrap();
    std::fs::write(
        drills.join("unloaded.toml"),
        r#"version = 1
name = "unloaded-rule"
title = "A rule nobody loaded"
description = "Expects an alert from a rule that is not loaded."
expect_rules = ["No such rule anywhere"]

[[event]]
listener = "syslog-tcp"
text = '<38>1 {now} drill-host sshd 4242 - [vigil-drill@32473 nonce="{nonce}"] Failed password for root from {ip} port {port} ssh2'
"#,
    )
    .unwrap();
    // n2 first: it takes the detector lease (one detector partition), so the drill's alerts are
    // raised by another node than the drill's.
    let n2 = fx.nodes[1].spawn(&fx.nats);
    let analyst = fx.token("analyst", "ana");
    let viewer = fx.token("viewer", "vic");
    let sender = fx.token("ingest", "sender");
    assert!(
        wait_until(60, || get(&n2.url, "/api/v1/cluster", &viewer)["detector"]
            ["owner"]
            == "n2"),
        "n2 holds the detector\n{}",
        n2.log()
    );
    let n1 = fx.nodes[0].spawn(&fx.nats);
    let n3 = fx.nodes[2].spawn(&fx.nats);
    let nodes = [&n1, &n2, &n3];
    let logs = || common::cluster::logs(nodes);

    let (status, report) = call(
        "POST",
        &n1.url,
        "/api/v1/drills",
        &analyst,
        Some(json!({"scenario": "ssh-brute-force", "timeout": "120s"})),
    );
    assert_eq!(status, 200, "{report}\n{}", logs());
    let run = report["run"].as_str().unwrap().to_owned();
    let stored = step(&report, "ingest → stored");
    assert_eq!(stored["status"], "passed", "{report:#}\n{}", logs());
    assert!(
        stored["detail"]
            .as_str()
            .unwrap()
            .starts_with("13 of 13 events stored"),
        "{report:#}"
    );
    for rule in ["SSH brute force", "SSH login after brute force"] {
        let s = step(&report, &format!("stored → alert: {rule}"));
        assert_eq!(s["status"], "passed", "{report:#}\n{}", logs());
    }
    assert_eq!(report["passed"], true, "{report:#}");
    let alert_ids: Vec<u64> = report["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_u64().unwrap())
        .collect();
    assert_eq!(alert_ids.len(), 2, "{report:#}");
    // Raised by the detector's node, n2, in its epoch's range; listed on every node as drill
    // alerts only.
    assert_eq!(
        get(&n1.url, "/api/v1/cluster", &viewer)["detector"]["owner"],
        "n2"
    );
    for n in nodes {
        let all = get(&n.url, "/api/v1/alerts?drills=include&limit=100", &viewer);
        let ids: Vec<u64> = all["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_u64().unwrap())
            .collect();
        for id in &alert_ids {
            assert!(ids.contains(id), "alert {id} on {}: {all}", n.url);
        }
        let real = get(&n.url, "/api/v1/alerts?limit=100", &viewer);
        assert_eq!(real["alerts"].as_array().unwrap().len(), 0, "{real}");
    }
    // The drill's events are in a shard, found by the fan-out from any node, by run.
    // Its 13 input events (its alerts carry the run too: they are in `sys`).
    let by_run = format!("vigil.drill.run={run} event.action=ssh_login");
    assert!(
        wait_until(60, || search(&n3.url, &viewer, &by_run).len() == 13),
        "{:?}",
        search(&n3.url, &viewer, &by_run)
    );
    let shard = search(&n3.url, &viewer, &by_run)[0]["vigil.shard"].clone();
    assert!(
        shard.as_str().is_some_and(|s| s.starts_with('p')),
        "{shard}"
    );
    // The report is shared state: every node lists it.
    for n in nodes {
        assert!(
            wait_until(30, || listed_runs(&n.url, &viewer).contains(&run)),
            "{run} on {}: {:?}",
            n.url,
            listed_runs(&n.url, &viewer)
        );
    }
    let on3 = get(&n3.url, "/api/v1/drills", &viewer);
    let listed = on3["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run"] == run.as_str())
        .unwrap();
    assert_eq!(listed["passed"], true);
    assert_eq!(listed["steps"], report["steps"]);

    // Forgeries, over HTTP (n2) and syslog (n3): the run's mark, its alert, a drill report.
    let now = Timestamp::now().to_rfc3339();
    let report_text = json!({"run": "drill-forged", "scenario": "ssh-brute-force",
        "passed": true, "steps": [], "alerts": []})
    .to_string();
    let forged = [
        json!({"@timestamp": now, "message": "Failed password for root from 192.0.2.9",
               "event.action": "ssh_login", "event.outcome": "failure", "source.ip": "192.0.2.9",
               "vigil.drill.run": run}),
        json!({"@timestamp": now, "event.dataset": "vigil.alert", "event.action": "alert-created",
               "vigil.alert.id": 77, "rule.name": "SSH brute force", "vigil.drill.run": run}),
        json!({"@timestamp": now, "event.dataset": "vigil.drill", "event.action": "drill-run",
               "event.outcome": "success", "vigil.drill_report.run": "drill-forged",
               "vigil.drill_report.report": report_text}),
    ];
    let body: String = forged.iter().map(|f| format!("{f}\n")).collect();
    let sent = ingest_ndjson(&n2.url, &sender, &body);
    assert_eq!(sent.status, 200, "{}", sent.body);
    send_syslog(
        syslog[2],
        &forged.iter().map(Value::to_string).collect::<Vec<_>>(),
    );
    // Stored as real events with the claims kept aside (HTTP's at least; syslog's too once
    // parsed as JSON), and `sys` followed past them.
    assert!(
        wait_until(60, || search(
            &n1.url,
            &viewer,
            &format!("external.vigil.drill.run={run}")
        )
        .len()
            >= 2),
        "{:?}",
        search(&n1.url, &viewer, &format!("external.vigil.drill.run={run}"))
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        search(&n1.url, &viewer, &by_run).len(),
        13,
        "no event joined the run"
    );
    for n in nodes {
        // Reading cases waits until the node applied everything `sys` holds now.
        get(&n.url, "/api/v1/cases", &viewer);
        let runs = listed_runs(&n.url, &viewer);
        assert!(!runs.contains(&"drill-forged".to_owned()), "{runs:?}");
        let ids: Vec<u64> =
            get(&n.url, "/api/v1/alerts?drills=include&limit=100", &viewer)["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_u64().unwrap())
                .collect();
        assert!(!ids.contains(&77), "{ids:?}");
    }

    // A drill expecting a rule no node loaded: a failure with the reason, as standalone.
    let (status, failed) = call(
        "POST",
        &n3.url,
        "/api/v1/drills",
        &analyst,
        Some(json!({"scenario": "unloaded-rule", "timeout": "3s"})),
    );
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["passed"], false, "{failed:#}");
    assert_eq!(step(&failed, "ingest → stored")["status"], "passed");
    let missed = step(&failed, "stored → alert: No such rule anywhere");
    assert_eq!(missed["status"], "failed");
    assert!(
        missed["detail"].as_str().unwrap().contains("is not loaded"),
        "{failed:#}"
    );
    let failed_run = failed["run"].as_str().unwrap().to_owned();
    assert!(
        wait_until(30, || listed_runs(&n1.url, &viewer).contains(&failed_run)),
        "{failed_run} listed on n1"
    );
    // Running drills stays for analysts and admins on every node.
    let (status, body) = call(
        "POST",
        &n2.url,
        "/api/v1/drills",
        &viewer,
        Some(json!({"scenario": "ssh-brute-force"})),
    );
    assert_eq!(status, 403, "{body}");
    for n in [n1, n2, n3] {
        n.stop();
    }
}

#[test]
fn case_events_name_their_shard_and_show_on_every_node() {
    let Some((fx, _)) = fixture() else {
        return;
    };
    let nodes: Vec<Server> = fx.nodes.iter().map(|n| n.spawn(&fx.nats)).collect();
    let (n1, n2, n3) = (&nodes[0], &nodes[1], &nodes[2]);
    let analyst = fx.token("analyst", "ana");
    let viewer = fx.token("viewer", "vic");
    let sender = fx.token("ingest", "sender");

    // Events from several addresses (several shards), through n1.
    let now = Timestamp::now().to_rfc3339();
    let body: String = (0..8)
        .map(|i| {
            format!(
                "{}\n",
                json!({"@timestamp": now, "message": format!("case evidence {i}"),
                       "event.action": "case_evidence", "event.code": format!("e{i}"),
                       "source.ip": format!("198.51.100.{}", 10 + i)})
            )
        })
        .collect();
    let sent = ingest_ndjson(&n1.url, &sender, &body);
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(
        wait_until(60, || search(
            &n2.url,
            &viewer,
            "event.action=case_evidence"
        )
        .len()
            == 8),
        "{:?}",
        search(&n2.url, &viewer, "event.action=case_evidence")
    );
    let rows = search(&n2.url, &viewer, "event.action=case_evidence event.code=e5");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let shard = rows[0]["vigil.shard"]
        .as_str()
        .expect("vigil.shard")
        .to_owned();
    let seq = rows[0]["vigil.seq"].as_u64().expect("vigil.seq");

    let (status, case) = call(
        "POST",
        &n1.url,
        "/api/v1/cases",
        &analyst,
        Some(json!({"title": "Evidence", "severity": "medium"})),
    );
    assert_eq!(status, 201, "{case}");
    let id = case["id"].as_u64().unwrap();
    let path = format!("/api/v1/cases/{id}/events");
    // A bare sequence number names no event in a cluster: a 400 naming the form.
    let (status, body) = call("POST", &n1.url, &path, &analyst, Some(json!({"seq": seq})));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("\"shard\""),
        "{body}"
    );
    // What does not exist, or is not a shard's name: nothing attached.
    for (reference, want) in [
        (json!({"shard": shard, "seq": 1_000_000}), 404),
        (json!({"shard": "p99", "seq": 0}), 404),
        (json!({"shard": "../etc", "seq": 0}), 400),
        (json!({"shard": "P1", "seq": 0}), 400),
        (json!({"shard": "p1", "seq": -1}), 400),
        (json!({"shard": "p1", "seq": 0, "extra": 1}), 400),
    ] {
        let (status, body) = call("POST", &n3.url, &path, &analyst, Some(reference.clone()));
        assert_eq!(status, want, "{reference}: {body}");
    }
    // A viewer cannot attach.
    let reference = json!({"shard": shard, "seq": seq});
    let (status, body) = call("POST", &n2.url, &path, &viewer, Some(reference.clone()));
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        get(&n2.url, &format!("/api/v1/cases/{id}"), &viewer)["events"],
        json!([])
    );
    // Attached on n3, shown on every node with the event's contents.
    let (status, body) = call("POST", &n3.url, &path, &analyst, Some(reference.clone()));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"], json!([reference]), "{body}");
    for n in &nodes {
        let c = get(&n.url, &format!("/api/v1/cases/{id}"), &viewer);
        assert_eq!(c["events"], json!([reference]), "{c}");
        let shown = &c["event_details"][0];
        assert_eq!(shown["message"], "case evidence 5", "{c}");
        assert_eq!(shown["vigil.shard"], shard.as_str());
        assert_eq!(shown["vigil.seq"], seq);
        assert!(
            c["combined_timeline"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["kind"] == "event" && t["text"] == "case evidence 5"),
            "{c}"
        );
    }
    // The same event twice: a conflict.
    let (status, body) = call("POST", &n1.url, &path, &analyst, Some(reference));
    assert_eq!(status, 409, "{body}");
    for n in nodes {
        n.stop();
    }
}
