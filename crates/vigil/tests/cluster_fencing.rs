//! Cluster mode, fencing of a node's name with the real binary: a `vigil serve --cluster`
//! node that finds its registration in the `nodes` bucket replaced by another process's —
//! one that started earlier, so the name is the other's — stops serving as that node: it
//! says `FENCED` and why, shuts down, and exits with a failure. (The registry's renewal
//! logic itself is tested against NATS failures in vigil-server's `cluster_registry`.)

mod common;

use std::time::Duration;

use common::{Server, wait_until};
use vigil_cluster::testing::NatsCluster;
use vigil_cluster::{Cluster, NodeInfo};

#[test]
fn a_node_whose_name_another_process_holds_is_fenced_and_stops() {
    if vigil_cluster::testing::skip_without_nats() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let mut flags = vec![
        "--node".to_string(),
        "n0".into(),
        "--cluster-name".into(),
        "f".into(),
        "--partitions".into(),
        "2".into(),
    ];
    for url in nats.urls() {
        flags.extend(["--cluster".into(), url]);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut server = Server::start(&dir.path().join("v"), &flags);

    // Another process's registration under n0, of a start an hour before this node's.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let cluster = Cluster::connect(nats.settings("f", "intruder", 2, Duration::from_secs(6)))
            .await
            .unwrap();
        let entry = cluster
            .nodes()
            .entry("n0")
            .await
            .unwrap()
            .expect("n0 registered");
        let mine: NodeInfo = serde_json::from_slice(&entry.value).unwrap();
        let started = vigil_event::Timestamp::parse(&mine.started).unwrap();
        let other = NodeInfo {
            started: vigil_event::Timestamp::from_nanos(started.as_nanos() - 3_600_000_000_000)
                .to_rfc3339(),
            http: Some("http://192.0.2.1:8080".into()),
            ..mine
        };
        cluster
            .nodes()
            .put("n0", serde_json::to_vec(&other).unwrap().into())
            .await
            .unwrap();
    });

    let stopped = wait_until(30, || server.exited().is_some());
    let log = server.log();
    assert!(stopped, "a fenced node keeps running:\n{log}");
    let status = server.exited().unwrap();
    assert!(
        !status.success(),
        "a fenced node exits with a failure:\n{log}"
    );
    assert!(log.contains("vigil: FENCED"), "{log}");
    assert!(
        log.contains("another process registered as node \"n0\""),
        "{log}"
    );
}
