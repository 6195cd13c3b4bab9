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

    // `sync_always` checked on one of the three servers says nothing of the other two: a node
    // given only some of the stream's servers to monitor is refused, naming the others.
    let mut partial = settings(&nats, "d");
    let monitors = nats.monitor_urls();
    partial.monitor = vec![monitors[0].clone()];
    let err = Cluster::connect(partial).await.unwrap_err();
    assert!(matches!(err, ClusterError::Unsafe(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("not checked"), "{text}");
    assert!(text.contains("n2") && text.contains("n3"), "{text}");
    // The same endpoint three times is still one server.
    let mut repeated = settings(&nats, "e");
    repeated.monitor = vec![monitors[0].clone(); 3];
    let err = Cluster::connect(repeated).await.unwrap_err();
    assert!(matches!(err, ClusterError::Unsafe(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_bucket_in_memory_or_with_fewer_replicas_is_refused() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path(), 3);
    // Someone made the state bucket by hand before the first node started: one replica, in
    // memory. Cursors and lease epochs kept there would not survive one server.
    let client = async_nats::connect(nats.urls()[0].as_str()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.create_key_value(async_nats::jetstream::kv::Config {
        bucket: "m_state".into(),
        storage: async_nats::jetstream::stream::StorageType::Memory,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    let err = Cluster::connect(nats.settings("m", "a", 4, Duration::from_secs(3)))
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::Unsafe(_)), "{err}");
    assert!(err.to_string().contains("m_state"), "{err}");
    assert!(err.to_string().contains("memory"), "{err}");
    // File storage, but one replica: refused too.
    js.delete_key_value("m_state").await.unwrap();
    js.create_key_value(async_nats::jetstream::kv::Config {
        bucket: "m_state".into(),
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    let err = Cluster::connect(nats.settings("m", "a", 4, Duration::from_secs(3)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1 replica(s)"), "{err}");
    // Removed: the node creates it as required.
    js.delete_key_value("m_state").await.unwrap();
    let cluster = Cluster::connect(nats.settings("m", "a", 4, Duration::from_secs(3)))
        .await
        .unwrap();
    let status = cluster.state().status().await.unwrap();
    assert_eq!(status.info.config.num_replicas, 3);
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
