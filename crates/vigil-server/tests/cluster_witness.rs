//! Against a real 3-node NATS cluster: a node's witness cosigns another node's shard checkpoints
//! over NATS request/reply (C2SP tlog-witness bodies), the cosignatures land in the shard's
//! `ledger/cosignatures.log` and verify; the shard replaced by an older copy of itself is
//! detected as a rollback (audited into the shard through the door); and a second key for a
//! registered shard origin is refused (pinned on first use).

use std::sync::Arc;
use std::time::Duration;

use vigil_cluster::testing::NatsCluster;
use vigil_cluster::{Cluster, ClusterSettings};
use vigil_event::{Event, Timestamp};
use vigil_ledger::cosignature::CosignatureVerifier;
use vigil_ledger::note::NoteSigner;
use vigil_ledger::{Ledger, LedgerConfig, cosigned};
use vigil_respond::witness::{Witness, WitnessStatus};
use vigil_server::cluster::witness::{parse_reply, register_subject, respond, submit};
use vigil_server::pipeline::Ingest;

fn settings(nats: &NatsCluster, node: &str) -> ClusterSettings {
    nats.settings("w", node, 2, Duration::from_secs(3))
}

fn skip() -> bool {
    vigil_cluster::testing::skip_without_nats()
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

    // A shard ledger owned by n1, with its own key and origin; a copy of it is kept early on.
    let shard_dir = dir.path().join("n1-shards-p0");
    let snapshot = dir.path().join("n1-shards-p0-old");
    let config = LedgerConfig {
        checkpoint_interval: Duration::from_millis(200),
        ..LedgerConfig::default()
    };
    let events = |round: u64| -> Vec<Event> {
        (0..40)
            .map(|i| {
                let mut e = Event::new(Timestamp::from_secs(1_800_000_000 + i));
                e.insert("message", format!("shard event {round}/{i}"));
                e
            })
            .collect()
    };
    let (ledger, _) = Ledger::open(&shard_dir, config.clone()).unwrap();
    ledger.append(&events(0)).unwrap();
    ledger.close().unwrap();
    copy_dir(&shard_dir, &snapshot);

    let (ledger, _) = Ledger::open(&shard_dir, config.clone()).unwrap();
    let (door, status, stop_submit, submitter) = start_submitter(&n1, &ledger);
    for round in 1..4 {
        ledger.append(&events(round)).unwrap();
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
    stop_submit.send(true).unwrap();
    submitter.await.unwrap();
    drop(door);
    ledger.close().unwrap();

    // The shard replaced by its older copy (self-consistent, same key): the witness says so.
    std::fs::remove_dir_all(&shard_dir).unwrap();
    std::fs::rename(&snapshot, &shard_dir).unwrap();
    let (ledger, _) = Ledger::open(&shard_dir, config).unwrap();
    assert!(ledger.end_seq() < witnessed);
    let (door, status, stop_submit, submitter) = start_submitter(&n1, &ledger);
    let mut detected = None;
    for _ in 0..150 {
        detected = status.rollback();
        if detected.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let detected = detected.expect("the rollback of the shard was not detected");
    assert!(detected.contains("rolled back"), "{detected}");
    assert_eq!(
        witness.logs()[&origin].size,
        witnessed,
        "the witness kept its size"
    );
    let mut audited = false;
    for _ in 0..50 {
        let mut reader = ledger.reader().unwrap();
        reader.refresh().unwrap();
        let end = reader.end_seq();
        reader
            .for_each_raw(0..end, |_, raw| {
                let e = Event::from_canonical(raw).unwrap();
                audited |= e.get_str("event.action") == Some("witness_rollback");
                Ok(())
            })
            .unwrap();
        if audited {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(audited, "no witness_rollback audit event in the shard");
    stop_submit.send(true).unwrap();
    submitter.await.unwrap();
    drop(door);

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

    // A copy of the shard re-keyed under the same origin (a node that rewrote its shard from
    // scratch): the witness's refusal of the new key is reported as a rollback, not retried
    // quietly.
    let rekeyed_dir = dir.path().join("n1-shards-p0-rekeyed");
    let paths = vigil_ledger::LedgerPaths::new(&rekeyed_dir);
    std::fs::create_dir_all(paths.root()).unwrap();
    let rekeyed_signer = NoteSigner::generate(&origin).unwrap();
    std::fs::write(
        paths.signing_key(),
        format!("{}\n", rekeyed_signer.to_skey()),
    )
    .unwrap();
    std::fs::write(
        paths.verifier_key(),
        format!("{}\n", rekeyed_signer.verifier().to_vkey()),
    )
    .unwrap();
    let (rekeyed, _) = Ledger::open(&rekeyed_dir, config_for_rekey()).unwrap();
    rekeyed.append(&events(9)).unwrap();
    let (door, status, stop_submit, submitter) = start_submitter(&n1, &rekeyed);
    let mut reported = None;
    for _ in 0..100 {
        reported = status.rollback();
        if reported.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reported = reported.expect("a re-keyed shard is reported as a rollback");
    assert!(reported.contains("another key"), "{reported}");
    stop_submit.send(true).unwrap();
    submitter.await.unwrap();
    drop(door);
    rekeyed.close().unwrap();

    stop_tx.send(true).unwrap();
    responder.await.unwrap().unwrap();
    ledger.close().unwrap();
}

fn config_for_rekey() -> LedgerConfig {
    LedgerConfig {
        checkpoint_interval: Duration::from_millis(200),
        ..LedgerConfig::default()
    }
}

type Submitter = (
    Arc<Ingest>,
    Arc<WitnessStatus>,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
);

fn start_submitter(cluster: &Cluster, ledger: &Ledger) -> Submitter {
    let door = Arc::new(Ingest::new(
        vigil_ingest::NodeLog::from(ledger.clone()),
        vigil_ingest::pipeline::redactor(None).unwrap(),
        Arc::default(),
    ));
    let status = Arc::new(WitnessStatus::default());
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(submit(
        cluster.clone(),
        ledger.clone(),
        Arc::clone(&door),
        Arc::clone(&status),
        stop,
    ));
    (door, status, stop_tx, task)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}
