//! Cluster mode, `[cluster] detector_partitions` with the real binary against a real 3-node
//! NATS cluster: the setting is the cluster's, fixed when first recorded in the state bucket
//! (`detector.partitions`) and checked at every start. Only 1 runs yet: a node started with
//! more is refused with a clear error, before it records anything; a node whose setting
//! differs from the record is refused; a record someone forged is refused, not guessed.

mod common;

use std::time::Duration;

use common::Server;
use vigil_cluster::Cluster;
use vigil_cluster::testing::NatsCluster;
use vigil_server::cluster::detector_partitions::KEY;

fn flags(nats: &NatsCluster, node: &str, k: Option<&str>) -> Vec<String> {
    let mut flags = vec![
        "--node".to_string(),
        node.into(),
        "--cluster-name".into(),
        "dp".into(),
        "--partitions".into(),
        "2".into(),
    ];
    if let Some(k) = k {
        flags.extend(["--detector-partitions".into(), k.into()]);
    }
    for url in nats.urls() {
        flags.extend(["--cluster".into(), url]);
    }
    flags
}

fn start(dir: &std::path::Path, flags: &[String]) -> Result<Server, String> {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::try_start(dir, &flags)
}

#[test]
fn detector_partitions_are_fixed_by_the_first_record_and_only_one_runs_yet() {
    if vigil_cluster::testing::skip_without_nats() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cluster = runtime.block_on(async {
        Cluster::connect(nats.settings("dp", "probe", 2, Duration::from_secs(6)))
            .await
            .unwrap()
    });
    let record = || {
        runtime.block_on(async {
            cluster
                .state()
                .get(KEY)
                .await
                .unwrap()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        })
    };

    // K = 3 on a fresh cluster: refused (not wired yet), and nothing recorded.
    let log = match start(&dir.path().join("a"), &flags(&nats, "a", Some("3"))) {
        Ok(server) => panic!("a node with 3 detector partitions runs:\n{}", server.stop()),
        Err(log) => log,
    };
    assert!(
        log.contains("detector_partitions = 3: partitioned detection is not wired yet"),
        "{log}"
    );
    assert_eq!(record(), None, "a refused start records nothing");

    // The default (1): the node runs and records 1; a second node with an explicit 1 joins.
    let first = start(&dir.path().join("b"), &flags(&nats, "b", None)).unwrap();
    assert_eq!(record().as_deref(), Some("1"));
    let second = start(&dir.path().join("c"), &flags(&nats, "c", Some("1"))).unwrap();
    second.stop();
    first.stop();

    // A node configured otherwise than the record: refused, and the record stays.
    let log = match start(&dir.path().join("d"), &flags(&nats, "d", Some("2"))) {
        Ok(server) => panic!(
            "a node disagreeing with the record runs:\n{}",
            server.stop()
        ),
        Err(log) => log,
    };
    assert!(
        log.contains("the cluster runs 1 detector partition(s), this node is configured with 2"),
        "{log}"
    );
    assert_eq!(record().as_deref(), Some("1"));

    // Someone with access to the state bucket forges the record: refused, not guessed.
    runtime.block_on(async {
        cluster.state().put(KEY, "1; DROP".into()).await.unwrap();
    });
    let log = match start(&dir.path().join("e"), &flags(&nats, "e", None)) {
        Ok(server) => panic!("a node runs on a forged record:\n{}", server.stop()),
        Err(log) => log,
    };
    assert!(log.contains("not a number of detector partitions"), "{log}");
}
