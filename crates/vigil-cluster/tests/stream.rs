//! Against a real 3-node NATS cluster: the stream is created as cluster mode requires, a
//! publish is acked with its sequence and de-duplicated on retry, and unsafe settings are
//! refused at connect.

use std::time::Duration;

use bytes::Bytes;
use vigil_cluster::testing::NatsCluster;
use vigil_cluster::{Cluster, ClusterError, ClusterSettings, Shard, SyncCheck, codec};
use vigil_event::{Event, Timestamp};

fn settings(nats: &NatsCluster, node: &str) -> ClusterSettings {
    nats.settings("t", node, 4, Duration::from_secs(3))
}

fn skip() -> bool {
    vigil_cluster::testing::skip_without_nats()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_is_acked_replicated_and_deduplicated() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path(), 3);
    let cluster = Cluster::connect(settings(&nats, "a")).await.unwrap();
    assert_eq!(cluster.sync_check(), SyncCheck::Verified { servers: 3 });
    let info = cluster.stream().get_info().await.unwrap();
    assert_eq!(info.config.num_replicas, 3);

    let mut e = Event::new(Timestamp::from_nanos(1_000));
    e.insert("message", "hello");
    let payload = Bytes::from(codec::encode(std::slice::from_ref(&e), 1 << 20).remove(0));
    let seq = cluster
        .publish(Shard::Data(2), payload.clone(), "a/1")
        .await
        .unwrap();
    let again = cluster
        .publish(Shard::Data(2), payload, "a/1")
        .await
        .unwrap();
    assert_eq!(seq, again, "a retried publish is stored once");
    let info = cluster.stream().get_info().await.unwrap();
    assert_eq!(info.state.messages, 1);

    // A second node sees the same stream and reads the message back.
    let other = Cluster::connect(settings(&nats, "b")).await.unwrap();
    let msg = other.stream().get_raw_message(seq).await.unwrap();
    assert_eq!(msg.subject.as_str(), "t.events.p2");
    assert_eq!(codec::decode(&msg.payload).unwrap(), vec![e]);

    // Another partition count for the same cluster is refused.
    let mut wrong = settings(&nats, "c");
    wrong.partitions = 5;
    let err = Cluster::connect(wrong).await.unwrap_err();
    assert!(matches!(err, ClusterError::Mismatch(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_sync_always_is_refused() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path(), 1);
    // Rewrite the server's configuration without `sync_interval: always` and restart it.
    let conf = dir.path().join("n1.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, text.replace("sync_interval: always", "")).unwrap();
    let mut nats = nats;
    nats.kill(0);
    nats.restart(0);
    let mut s = settings(&nats, "a");
    s.replicas = 1;
    let err = Cluster::connect(s).await.unwrap_err();
    assert!(matches!(err, ClusterError::Unsafe(_)), "{err}");
    assert!(err.to_string().contains("sync_interval: always"), "{err}");
}
