//! Partitioned detection (`[cluster] detector_partitions` = 3) with the real binary: three
//! `vigil serve --cluster` nodes on a real 3-server NATS cluster.
//!
//! - The three detector partitions spread over the three nodes (one each).
//! - SSH brute forces from several addresses, each spread over the three nodes' syslog
//!   listeners, raise exactly one alert and one ban per attacker, the same on every node's
//!   alerts API and CrowdSec stream; the alerts come from every partition, each numbered in
//!   the epoch of the lease that raised it.
//! - After SIGKILL of a node holding a partition, the partition moves to a surviving node (a
//!   new epoch) and the attacks continued afterwards still count into the one alert of each
//!   attacker: none raised twice, none missing, no second ban.
//! - A brute force straddling that move — its first half evaluated by the killed holder
//!   (its cursor past them, below the threshold: no alert), its second half by the new holder
//!   — is exactly one alert and one ban: the new holder rebuilt the partition's correlation
//!   windows from the stream (not zero alerts: the windows were not lost; not two).
//! - The setting is the cluster's: fixed by its first record (`detector.partitions` in the
//!   state bucket); a node configured otherwise is refused, and so is a forged record.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::cluster::{CLUSTER, ClusterFixture, Node, send_syslog as send};
use common::{Server, curl, wait_until};
use serde_json::Value;
use vigil_cluster::Cluster;
use vigil_server::cluster::detector_partitions::KEY;

const RULES: &str = r#"title: SSH failed login
id: 5d0c0f6e-3333-4c1e-9d5e-000000000001
name: dp_ssh_failed
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
id: 5d0c0f6e-3333-4c1e-9d5e-000000000002
name: dp_ssh_bruteforce
status: stable
correlation:
    type: event_count
    rules: [dp_ssh_failed]
    group-by: [source.ip]
    timespan: 10m
    condition: {gte: 6}
level: high
"#;

const BRUTE_FORCE: &str = "SSH brute force";

const BRUTE_FORCE_ID: &str = "5d0c0f6e-3333-4c1e-9d5e-000000000002";

/// Attackers: three whose brute force group falls in each of the three detector partitions
/// (the stable hash of `vigil_detect::partition`; the alerts' `partition` is checked below).
fn attackers() -> Vec<String> {
    let mut per = [0; 3];
    let mut ips = Vec::new();
    for i in 1..=250 {
        let ip = format!("203.0.113.{i}");
        let k = vigil_detect::DetectorPartition::owner_of(BRUTE_FORCE_ID, [ip.as_str()], 3);
        if per[k as usize] < 3 {
            per[k as usize] += 1;
            ips.push(ip);
        }
    }
    assert_eq!(ips.len(), 9);
    ips
}

/// A node's flags besides the fixture's: `k` detector partitions, the rules in `rules`, bans
/// by the brute-force rule, and a syslog TCP listener (its port returned).
fn configure(node: &mut Node, k: &str, rules: &Path) -> u16 {
    let rules = rules.display().to_string();
    node.flags(&[
        "--detector-partitions",
        k,
        "--rules",
        &rules,
        "--ban-rule",
        BRUTE_FORCE,
    ]);
    node.syslog_tcp()
}

/// `n` failed SSH logins from `ip`, numbered from `from`.
fn failures(ip: &str, from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| {
            format!(
                "<38>Dec  7 10:{:02}:{:02} web{} sshd[8{i:03}]: Failed password for root from {ip} port {} ssh2",
                (i / 60) % 60,
                i % 60,
                i % 3,
                40000 + i
            )
        })
        .collect()
}

fn get(url: &str, path: &str, header: String) -> Value {
    let r = curl("GET", &format!("{url}{path}"), &[header], None);
    serde_json::from_str(&r.body).unwrap_or(Value::Null)
}

/// The brute-force alerts a node lists, by attacker address.
fn alerts(url: &str, token: &str) -> BTreeMap<String, Vec<Value>> {
    let mut by_ip: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let all = get(
        url,
        "/api/v1/alerts?limit=1000",
        format!("Authorization: Bearer {token}"),
    );
    for a in all["alerts"].as_array().cloned().unwrap_or_default() {
        if a["rule"]["title"] == BRUTE_FORCE {
            let ip = a["group"]["source.ip"].as_str().unwrap_or("?").to_string();
            by_ip.entry(ip).or_default().push(a);
        }
    }
    by_ip
}

/// The ban decisions a bouncer starting now receives, by address.
fn bans(url: &str, key: &str) -> BTreeMap<String, usize> {
    let mut by_ip = BTreeMap::new();
    let stream = get(
        url,
        "/v1/decisions/stream?startup=true",
        format!("X-Api-Key: {key}"),
    );
    for d in stream["new"].as_array().cloned().unwrap_or_default() {
        *by_ip
            .entry(d["value"].as_str().unwrap_or("?").to_string())
            .or_insert(0) += 1;
    }
    by_ip
}

/// Each detector partition's holder and epoch, from `GET /api/v1/cluster`.
fn holders(url: &str, token: &str) -> Vec<(Option<String>, Option<u64>)> {
    let health = get(
        url,
        "/api/v1/cluster",
        format!("Authorization: Bearer {token}"),
    );
    health["detector"]["partitions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| (p["owner"].as_str().map(str::to_string), p["epoch"].as_u64()))
        .collect()
}

#[test]
fn three_detector_partitions_raise_one_alert_per_attacker_and_move_when_a_holder_dies() {
    let Some(mut fx) = ClusterFixture::new(3, 4) else {
        return;
    };
    let rules = fx.dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("ssh.yml"), RULES).unwrap();
    let names = ["n0", "n1", "n2"];
    let syslog: Vec<u16> = fx
        .nodes
        .iter_mut()
        .map(|node| configure(node, "3", &rules))
        .collect();
    let nats = &fx.nats;

    let mut nodes: Vec<Option<Server>> = fx.spawn_all().into_iter().map(Some).collect();
    let url = |nodes: &[Option<Server>], i: usize| nodes[i].as_ref().unwrap().url.clone();
    let logs = |nodes: &[Option<Server>]| common::cluster::logs(nodes.iter().flatten());
    let analyst = fx.token("analyst", "analyst");
    let bouncer = fx.cli(&["bouncer", "add", "edge"]);

    // The partitions spread: one per node (the first node up may take all three; it hands
    // its extras over as the others become candidates).
    let spread = |nodes: &[Option<Server>]| {
        let h = holders(&url(nodes, 0), &analyst);
        let owners: BTreeSet<_> = h.iter().filter_map(|(o, _)| o.clone()).collect();
        h.len() == 3 && h.iter().all(|(o, _)| o.is_some()) && owners.len() == 3
    };
    assert!(
        wait_until(90, || spread(&nodes)),
        "partitions {:?}\n{}",
        holders(&url(&nodes, 0), &analyst),
        logs(&nodes)
    );
    let before = holders(&url(&nodes, 0), &analyst);
    common::say(&format!("detector partitions held: {before:?}"));
    // The partition whose holder is killed below: not node 0's (the node the test reads).
    let victim_partition = (0..3)
        .find(|k| before[*k].0.as_deref() != Some("n0"))
        .expect("a partition held by n1 or n2");
    // An attacker whose group that partition keeps: half of its brute force (3 of the 6
    // failures the rule needs) before the kill, half after.
    let straddler = (1..=250)
        .map(|i| format!("198.51.100.{i}"))
        .find(|ip| {
            vigil_detect::DetectorPartition::owner_of(BRUTE_FORCE_ID, [ip.as_str()], 3) as usize
                == victim_partition
        })
        .unwrap();

    // Every attacker's failures arrive through all three nodes in turn (the straddler's first
    // half first on each connection: once the others' are stored, so are they).
    let ips = attackers();
    let mut lines: Vec<Vec<String>> = vec![Vec::new(); 3];
    for (i, l) in failures(&straddler, 0, 3).into_iter().enumerate() {
        lines[i % 3].push(l);
    }
    for ip in &ips {
        for (i, l) in failures(ip, 0, 9).into_iter().enumerate() {
            lines[i % 3].push(l);
        }
    }
    let sent = std::time::Instant::now();
    for (i, l) in lines.iter().enumerate() {
        send(syslog[i], l);
    }

    // One alert and one ban per attacker, on every node.
    let complete = |nodes: &[Option<Server>], live: &[usize]| {
        live.iter().all(|&i| {
            let a = alerts(&url(nodes, i), &analyst);
            let b = bans(&url(nodes, i), &bouncer);
            ips.iter().all(|ip| {
                a.get(ip).map(Vec::len) == Some(1) && b.get(ip.as_str()).copied() == Some(1)
            }) && a.keys().filter(|ip| **ip != straddler).count() == ips.len()
        })
    };
    assert!(
        wait_until(90, || complete(&nodes, &[0, 1, 2])),
        "alerts {:?}\nbans {:?}\n{}",
        alerts(&url(&nodes, 0), &analyst),
        bans(&url(&nodes, 0), &bouncer),
        logs(&nodes)
    );
    common::say(&format!(
        "every alert and ban on every node {:.1} s after the lines were sent",
        sent.elapsed().as_secs_f64()
    ));
    std::thread::sleep(Duration::from_secs(3));
    assert!(complete(&nodes, &[0, 1, 2]), "still one each, later");
    let first = alerts(&url(&nodes, 0), &analyst);
    for i in 1..3 {
        let other = alerts(&url(&nodes, i), &analyst);
        for ip in &ips {
            assert_eq!(
                other[ip][0]["id"], first[ip][0]["id"],
                "{ip}: the same alert id on every node"
            );
        }
    }
    // Every partition raised some, each alert in the epoch of its partition's lease.
    let partition_of = |a: &Value| a["partition"].as_u64().expect("partition") as usize;
    let raised_by: BTreeSet<usize> = first.values().map(|a| partition_of(&a[0])).collect();
    assert_eq!(
        raised_by,
        (0..3).collect(),
        "alerts from every partition: {first:?}"
    );
    for (ip, a) in &first {
        let (id, k) = (a[0]["id"].as_u64().unwrap(), partition_of(&a[0]));
        assert_eq!(
            Some(id / vigil_detect::alert::ALERT_IDS_PER_EPOCH),
            before[k].1,
            "{ip}: alert {id} of partition {k} is numbered in its lease's epoch {before:?}"
        );
    }
    let ids: BTreeSet<u64> = first
        .values()
        .map(|a| a[0]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), ips.len(), "alert ids are unique: {first:?}");

    // The straddler's first half is evaluated by the victim partition's holder: its cursor
    // is past everything stored so far (which holds the first half), and it raised nothing
    // for 3 failures of the 6 the rule needs.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let probe = runtime.block_on(async {
        Cluster::connect(nats.settings(CLUSTER, "probe", 4, Duration::from_secs(6)))
            .await
            .unwrap()
    });
    let stored = runtime.block_on(async { probe.stream().get_info().await.unwrap() });
    let cursor_key = format!("detector.{victim_partition}.cursor");
    let cursor = || {
        runtime.block_on(async {
            probe
                .state()
                .get(cursor_key.as_str())
                .await
                .unwrap()
                .map_or(0, |v| {
                    serde_json::from_slice::<vigil_cluster::detector::Cursor>(&v)
                        .unwrap()
                        .seq
                })
        })
    };
    assert!(
        wait_until(60, || cursor() >= stored.state.last_sequence),
        "partition {victim_partition}'s cursor {} never passed {}\n{}",
        cursor(),
        stored.state.last_sequence,
        logs(&nodes)
    );
    assert!(
        !alerts(&url(&nodes, 0), &analyst).contains_key(&straddler),
        "3 failures of 6 raise nothing"
    );

    // SIGKILL of the node holding that partition.
    let victim_name = before[victim_partition].0.clone().unwrap();
    let victim = names.iter().position(|n| *n == victim_name).unwrap();
    drop(nodes[victim].take());
    let killed = std::time::Instant::now();
    let live: Vec<usize> = (0..3).filter(|i| *i != victim).collect();

    // The partition moves to a survivor, with a new epoch.
    let moved = |nodes: &[Option<Server>]| {
        let h = holders(&url(nodes, 0), &analyst);
        h.len() == 3
            && h.iter().all(|(o, _)| {
                o.as_deref()
                    .is_some_and(|o| o != victim_name && names.contains(&o))
            })
    };
    assert!(
        wait_until(90, || moved(&nodes)),
        "partition {victim_partition} did not move from {victim_name}: {:?}\n{}",
        holders(&url(&nodes, 0), &analyst),
        logs(&nodes)
    );
    let after = holders(&url(&nodes, 0), &analyst);
    common::say(&format!(
        "{:.1} s after SIGKILL of {victim_name}: detector partitions held: {after:?}",
        killed.elapsed().as_secs_f64()
    ));
    assert!(
        after[victim_partition].1 > before[victim_partition].1,
        "a new epoch: {before:?} -> {after:?}"
    );

    // The attacks go on through the survivors: each attacker's alert counts them, none is
    // raised again, no second ban.
    let counts = |nodes: &[Option<Server>]| -> BTreeMap<String, u64> {
        alerts(&url(nodes, live[0]), &analyst)
            .into_iter()
            .map(|(ip, a)| (ip, a[0]["count"].as_u64().unwrap_or(0)))
            .collect()
    };
    let counted_before = counts(&nodes);
    let mut lines: Vec<Vec<String>> = vec![Vec::new(); 2];
    for (i, l) in failures(&straddler, 3, 3).into_iter().enumerate() {
        lines[i % 2].push(l);
    }
    for ip in &ips {
        for (i, l) in failures(ip, 9, 6).into_iter().enumerate() {
            lines[i % 2].push(l);
        }
    }
    for (i, l) in lines.iter().enumerate() {
        send(syslog[live[i]], l);
    }
    let all_counted = |nodes: &[Option<Server>], before: &BTreeMap<String, u64>| {
        let now = counts(nodes);
        ips.iter()
            .all(|ip| now.get(ip).copied().unwrap_or(0) > before[ip])
    };
    let continued = std::time::Instant::now();
    assert!(
        wait_until(90, || all_counted(&nodes, &counted_before)),
        "counts before {counted_before:?}, now {:?}\n{}",
        counts(&nodes),
        logs(&nodes)
    );
    common::say(&format!(
        "the continued attacks counted into every alert {:.1} s after they were sent",
        continued.elapsed().as_secs_f64()
    ));
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        complete(&nodes, &live),
        "one alert and one ban per attacker after the move: alerts {:?} bans {:?}\n{}",
        alerts(&url(&nodes, live[0]), &analyst),
        bans(&url(&nodes, live[0]), &bouncer),
        logs(&nodes)
    );
    for &i in &live {
        let now = alerts(&url(&nodes, i), &analyst);
        for ip in &ips {
            assert_eq!(now[ip][0]["id"], first[ip][0]["id"], "{ip}: the same alert");
        }
    }
    // The straddling brute force: one alert (its first half was rebuilt into the new
    // holder's windows from the stream), raised by the moved partition, and one ban, on every
    // live node.
    let straddled = |nodes: &[Option<Server>]| {
        live.iter().all(|&i| {
            alerts(&url(nodes, i), &analyst)
                .get(&straddler)
                .map(Vec::len)
                == Some(1)
                && bans(&url(nodes, i), &bouncer).get(&straddler).copied() == Some(1)
        })
    };
    assert!(
        wait_until(60, || straddled(&nodes)),
        "the brute force of {straddler} straddling the move of partition {victim_partition}: \
         alerts {:?} bans {:?}\n{}",
        alerts(&url(&nodes, live[0]), &analyst).get(&straddler),
        bans(&url(&nodes, live[0]), &bouncer).get(&straddler),
        logs(&nodes)
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(straddled(&nodes), "still exactly one alert and one ban");
    let straddle_alerts = alerts(&url(&nodes, live[0]), &analyst);
    let straddle_alert = &straddle_alerts[&straddler][0];
    assert_eq!(
        partition_of(straddle_alert),
        victim_partition,
        "{straddle_alert}"
    );
    assert_eq!(
        Some(straddle_alert["id"].as_u64().unwrap() / vigil_detect::alert::ALERT_IDS_PER_EPOCH),
        after[victim_partition].1,
        "raised by the new holder, in its epoch: {straddle_alert}"
    );

    // The killed node comes back (same name, same data): it becomes a candidate again and a
    // node holding two partitions hands one over to it (a clean hand-over, not an expiry).
    // Attacks continued after that still count into the same alerts.
    nodes[victim] = Some(fx.nodes[victim].spawn(nats));
    let back = std::time::Instant::now();
    assert!(
        wait_until(90, || spread(&nodes)),
        "partitions after the restart {:?}\n{}",
        holders(&url(&nodes, 0), &analyst),
        logs(&nodes)
    );
    common::say(&format!(
        "{:.1} s after {victim_name} was ready again: detector partitions held: {:?}",
        back.elapsed().as_secs_f64(),
        holders(&url(&nodes, 0), &analyst)
    ));
    let counted_before = counts(&nodes);
    let mut lines: Vec<Vec<String>> = vec![Vec::new(); 3];
    for ip in &ips {
        for (i, l) in failures(ip, 15, 6).into_iter().enumerate() {
            lines[i % 3].push(l);
        }
    }
    for (i, l) in lines.iter().enumerate() {
        send(syslog[i], l);
    }
    assert!(
        wait_until(90, || all_counted(&nodes, &counted_before)),
        "after the hand-over: counts before {counted_before:?}, now {:?}\n{}",
        counts(&nodes),
        logs(&nodes)
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        complete(&nodes, &[0, 1, 2]),
        "one alert and one ban per attacker after the hand-over: alerts {:?} bans {:?}\n{}",
        alerts(&url(&nodes, 0), &analyst),
        bans(&url(&nodes, 0), &bouncer),
        logs(&nodes)
    );
    for i in 0..3 {
        let now = alerts(&url(&nodes, i), &analyst);
        for ip in &ips {
            assert_eq!(now[ip][0]["id"], first[ip][0]["id"], "{ip}: the same alert");
        }
    }

    // The setting is the cluster's: a node configured with 1 is refused.
    let mut d = fx.node("d");
    configure(&mut d, "1", &rules);
    let log = match d.try_spawn(nats) {
        Ok(server) => panic!(
            "a node disagreeing with the record runs:\n{}",
            server.stop()
        ),
        Err(log) => log,
    };
    assert!(
        log.contains("the cluster runs 3 detector partition(s), this node is configured with 1"),
        "{log}"
    );
    for n in nodes.iter_mut() {
        if let Some(n) = n.take() {
            n.stop();
        }
    }

    // Someone with access to the state bucket forges the record: refused, not guessed.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let cluster = Cluster::connect(nats.settings(CLUSTER, "probe", 4, Duration::from_secs(6)))
            .await
            .unwrap();
        assert_eq!(
            cluster.state().get(KEY).await.unwrap().as_deref(),
            Some(&b"3"[..])
        );
        cluster.state().put(KEY, "3; DROP".into()).await.unwrap();
    });
    let mut e = fx.node("e");
    configure(&mut e, "3", &rules);
    let log = match e.try_spawn(nats) {
        Ok(server) => panic!("a node runs on a forged record:\n{}", server.stop()),
        Err(log) => log,
    };
    assert!(log.contains("not a number of detector partitions"), "{log}");
}
