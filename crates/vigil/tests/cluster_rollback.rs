//! A node whose data directory is replaced by an older copy, with three real `vigil serve
//! --cluster` nodes witnessing each other over a real 3-server NATS cluster.
//!
//! Node `n2` starts first and alone, so it holds every shard; when `n0` and `n1` join it keeps
//! its most preferred ones, `X` first (the balancing is hashed by node name), and it gets `X`
//! back the same way after each restart. A copy of `n2`'s data directory is taken while it is
//! frozen (SIGSTOP: what a crash or a snapshot of a running machine leaves), events go on,
//! both witnesses cosign `X` past the copy, then every node stops, the older copy is put back
//! in `n2`'s place and the nodes start again:
//!
//! 1. while the stream still holds everything the copy lacks, `n2`'s copy of `X` re-fills from
//!    it to the very tree the witnesses cosigned: nothing is lost, the witnesses cosign again
//!    and `vigil verify` passes (a checkpoint of the older copy signed before the re-fill may
//!    be reported as the rollback it is first; that is timing, and not asserted either way);
//! 2. once the stream's limits discarded what the copy lacks (`max_msgs`, set on the stream as
//!    an operator would), the copy cannot re-fill: the witnesses see a tree that is not the one
//!    they cosigned and the rollback is reported — in `n2`'s cluster health (`witnesses`), as
//!    `vigil_witness_rollback 1` on its `/metrics`, and as a `witness_rollback` audit event
//!    searchable through any node.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::cluster::{ClusterFixture, leases};
use common::{curl, ledger_events, wait_until};
use serde_json::Value as Json;
use vigil_cluster::balance::preference;
use vigil_cluster::{Cluster, ClusterSettings, Names, Shard};

/// Four data partitions and `sys`: `n2`'s most preferred shard is then a data partition
/// (`p3`), so the rolled-back copy holds ingested events, not only audit events.
const PARTITIONS: u32 = 4;

/// Each shard's owner, as the leases say.
fn owners(fx: &ClusterFixture) -> BTreeMap<Shard, Option<String>> {
    leases(&fx.nats, PARTITIONS)
        .into_iter()
        .map(|(s, (l, _))| (s, l.map(|l| l.node)))
        .collect()
}

fn get(url: &str, token: &str) -> common::Answer {
    curl(
        "GET",
        url,
        &[format!("Authorization: Bearer {token}")],
        None,
    )
}

/// `n2`'s witness state of its copy of `shard`: (witness shown name, cosigned size, rollback).
fn witnesses(fx: &ClusterFixture, token: &str, shard: Shard) -> Vec<(String, u64, Option<String>)> {
    let body = get(&format!("{}/api/v1/cluster", fx.nodes[2].url()), token).json();
    let origin = format!("(shard vigil/t/{shard}/n2)");
    body["witnesses"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|w| w["witness"].as_str().is_some_and(|n| n.ends_with(&origin)))
        .map(|w| {
            (
                w["witness"].as_str().unwrap_or("").to_owned(),
                w["cosigned_size"].as_u64().unwrap_or(0),
                w["rollback"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// The events in a copy of a shard's ledger.
fn shard_size(data: &Path, shard: Shard) -> u64 {
    vigil_ledger::LedgerReader::open(&data.join("shards").join(shard.to_string()))
        .map(|r| r.end_seq())
        .unwrap_or(0)
}

/// Some events with many keys (so every data shard gets some) through every node, and a few
/// searches (audited: the `sys` shard grows too).
fn traffic(fx: &ClusterFixture, shipper: &str, analyst: &str, round: usize) {
    for (i, node) in fx.nodes.iter().enumerate() {
        let body: String = (0..40)
            .map(|j| {
                format!(
                    "{{\"message\":\"round {round} node {i} event {j}\",\"source.ip\":\"10.{round}.{i}.{j}\",\"host.name\":\"h{j}\"}}\n"
                )
            })
            .collect();
        let r = common::ingest_ndjson(&node.url(), shipper, &body);
        assert_eq!(r.status, 200, "{}", r.body);
        let r = curl(
            "POST",
            &format!("{}/api/v1/search", node.url()),
            &[
                format!("Authorization: Bearer {analyst}"),
                "Content-Type: application/json".into(),
            ],
            Some(r#"{"query": "round | stats count"}"#),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

/// Waits until `n2`'s copy of `shard` is caught up and both other nodes cosigned at least
/// `size` of it (and at least everything it holds); returns the size cosigned.
fn wait_cosigned(fx: &ClusterFixture, token: &str, shard: Shard, size: u64) -> u64 {
    assert!(
        fx.wait_caught_up(90),
        "owners catch up: {:?}",
        leases(&fx.nats, PARTITIONS)
    );
    let data = fx.nodes[2].data.clone();
    let mut last = Vec::new();
    let ok = wait_until(90, || {
        let held = shard_size(&data, shard).max(size);
        last = witnesses(fx, token, shard);
        last.len() == 2
            && last
                .iter()
                .all(|(_, cosigned, rollback)| *cosigned >= held && rollback.is_none())
    });
    assert!(
        ok,
        "both witnesses cosign {shard} of n2 up to {size}: {last:?}"
    );
    last.iter().map(|(_, s, _)| *s).min().unwrap()
}

/// Starts `n2` alone and waits until it holds `shard`, then the other two, and waits until
/// every shard has an owner and `n2` holds its share, `shard` among it (it gives up its least
/// preferred shards first).
fn start_n2_first(fx: &mut ClusterFixture, shard: Shard) {
    fx.nodes[2].start(&fx.nats);
    assert!(
        wait_until(60, || owners(fx).get(&shard).cloned().flatten().as_deref()
            == Some("n2")),
        "n2 takes {shard}: {:?}",
        owners(fx)
    );
    for i in 0..2 {
        fx.nodes[i].start(&fx.nats);
    }
    // Balanced: every shard owned, n2 down to its share (⌈shards / 3⌉), X still among them.
    let share = (PARTITIONS as usize + 1).div_ceil(3);
    let settled = || {
        let o = owners(fx);
        let mine: Vec<Shard> = o
            .iter()
            .filter(|(_, n)| n.as_deref() == Some("n2"))
            .map(|(s, _)| *s)
            .collect();
        o.values().all(Option::is_some) && mine.len() == share && mine.contains(&shard)
    };
    assert!(
        wait_until(90, settled),
        "n2 keeps {shard} among its share: {:?}",
        owners(fx)
    );
}

fn stop_all(fx: &mut ClusterFixture) {
    for node in &mut fx.nodes {
        if let Some(server) = node.server.take() {
            server.stop();
        }
    }
}

/// Copies `n2`'s data directory to `to` while it is frozen (SIGSTOP … SIGCONT).
fn frozen_copy(fx: &ClusterFixture, to: &Path) {
    let pid = fx.nodes[2].server.as_ref().unwrap().pid().to_string();
    let signal = |s: &str| {
        assert!(
            Command::new("kill")
                .args([s, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&fx.nodes[2].data)
        .arg(to)
        .status();
    signal("-CONT");
    assert!(copied.unwrap().success(), "cp -a of n2's data directory");
}

/// Puts the older copy `from` in `n2`'s place (the newer directory is kept as `keep`).
fn put_back(fx: &ClusterFixture, from: &Path, keep: &Path) {
    let data = &fx.nodes[2].data;
    std::fs::rename(data, keep).unwrap();
    let status = Command::new("cp").arg("-a").arg(from).arg(data).status();
    assert!(status.unwrap().success());
}

/// Sets `max_msgs` on the cluster's stream, as an operator bounding NATS's disk would: the
/// oldest messages beyond it are discarded at once.
fn limit_stream(fx: &ClusterFixture, max_msgs: i64) -> u64 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let cluster = Cluster::connect(ClusterSettings {
            urls: fx.nats.urls(),
            creds: None,
            node: "operator".into(),
            names: Names::new("t"),
            partitions: PARTITIONS,
            replicas: 3,
            monitor: Vec::new(),
            lease_ttl: Duration::from_secs(6),
        })
        .await
        .expect("operator connects");
        let mut config = cluster
            .stream()
            .clone()
            .info()
            .await
            .unwrap()
            .config
            .clone();
        config.max_messages = max_msgs;
        cluster.jetstream().update_stream(config).await.unwrap();
        cluster.first_available_seq().await.unwrap()
    })
}

fn verify(shard_dir: &Path) -> (bool, String) {
    let out = common::vigil()
        .args(["verify", "--data-dir"])
        .arg(shard_dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// How many `witness_rollback` audit events a search through `url` finds.
fn audited(analyst: &str, url: &str) -> usize {
    let r = curl(
        "POST",
        &format!("{url}/api/v1/search"),
        &[
            format!("Authorization: Bearer {analyst}"),
            "Content-Type: application/json".into(),
        ],
        Some(r#"{"query": "event.action=witness_rollback | table vigil.witness.name"}"#),
    );
    let v: Json = serde_json::from_str(&r.body).unwrap_or(Json::Null);
    v["rows"].as_array().map_or(0, Vec::len)
}

#[test]
fn a_rolled_back_data_directory_refills_when_the_stream_allows_and_is_reported_when_not() {
    let Some(mut fx) = ClusterFixture::new(3, PARTITIONS) else {
        return;
    };
    let (shipper, analyst, admin) = (
        fx.token("ingest", "shipper"),
        fx.token("analyst", "analyst"),
        fx.token("admin", "admin"),
    );
    // X: the shard n2 prefers; n2 holds it whenever it starts first.
    let all: Vec<Shard> = Shard::all(PARTITIONS).collect();
    let x = preference("n2", &all)[0];
    assert!(matches!(x, Shard::Data(_)), "{x} is a data partition");
    start_n2_first(&mut fx, x);
    let n2 = fx.nodes[2].data.clone();
    let root = fx.dir.path().to_owned();

    traffic(&fx, &shipper, &analyst, 1);
    wait_cosigned(&fx, &admin, x, 1);
    let old1: PathBuf = root.join("n2-old1");
    frozen_copy(&fx, &old1);
    let old1_size = shard_size(&old1, x);
    traffic(&fx, &shipper, &analyst, 2);
    traffic(&fx, &shipper, &analyst, 3);
    let cosigned = wait_cosigned(&fx, &admin, x, old1_size + 1);
    assert!(cosigned > old1_size, "{cosigned} > {old1_size}");

    // 1. The stream still holds everything: the older copy re-fills to the same tree.
    stop_all(&mut fx);
    let newer = root.join("n2-newer1");
    put_back(&fx, &old1, &newer);
    assert_eq!(shard_size(&n2, x), old1_size, "the older copy is in place");
    start_n2_first(&mut fx, x);
    // The witnesses cosign the re-filled tree again. (Whether the rollback is also reported
    // depends on timing: a checkpoint of the older copy signed before the re-fill reached the
    // witnesses' size is refused and reported — truthfully, the directory was rolled back —
    // while one signed after it is simply cosigned. Both happen; neither loses anything.)
    wait_cosigned(&fx, &admin, x, cosigned);
    // Nothing lost: the re-filled copy holds the newer copy's events, in the same order.
    let before = ledger_events(&newer.join("shards").join(x.to_string()));
    let after = ledger_events(&n2.join("shards").join(x.to_string()));
    assert!(
        after.len() >= before.len() && after[..before.len()] == before[..],
        "the re-filled copy of {x} starts with the {} events the newer copy held ({} now)",
        before.len(),
        after.len()
    );

    let audited_before = fx
        .nodes
        .iter()
        .map(|n| audited(&analyst, &n.url()))
        .max()
        .unwrap();

    // 2. The stream's limits discarded what the older copy lacks: reported, not refilled.
    let old2 = root.join("n2-old2");
    frozen_copy(&fx, &old2);
    let old2_size = shard_size(&old2, x);
    for round in 4..8 {
        traffic(&fx, &shipper, &analyst, round);
    }
    let cosigned = wait_cosigned(&fx, &admin, x, old2_size + 1);
    stop_all(&mut fx);
    let first = limit_stream(&fx, 2);
    assert!(
        first > 1,
        "the stream discarded its oldest messages (first {first})"
    );
    let newer2 = root.join("n2-newer2");
    put_back(&fx, &old2, &newer2);
    start_n2_first(&mut fx, x);
    let mut last = Vec::new();
    let reported = wait_until(90, || {
        last = witnesses(&fx, &admin, x);
        last.len() == 2 && last.iter().all(|(_, _, r)| r.is_some())
    });
    assert!(
        reported,
        "both witnesses report the rollback of n2's copy of {x} (cosigned {cosigned}, the copy held {old2_size}): {last:?}\n{}",
        fx.nodes[2].server.as_ref().unwrap().log()
    );
    eprintln!("cluster_rollback: reported: {last:?}");
    let metrics = get(&format!("{}/metrics", fx.nodes[2].url()), &admin);
    assert!(
        metrics.body.contains("vigil_witness_rollback 1"),
        "{}",
        metrics.body
    );
    assert!(
        wait_until(60, || fx
            .nodes
            .iter()
            .all(|n| audited(&analyst, &n.url()) > audited_before)),
        "a new witness_rollback audit event is searchable through every node (had {audited_before}): {:?}",
        fx.nodes
            .iter()
            .map(|n| audited(&analyst, &n.url()))
            .collect::<Vec<_>>()
    );
    stop_all(&mut fx);
    // The copy re-filled in 1 (and grown since) verifies on its own.
    let (ok, out) = verify(&newer2.join("shards").join(x.to_string()));
    assert!(ok, "{out}");
}
