//! The negative cache of the cluster's auth buckets, against a real 3-node NATS cluster: a
//! repeated unknown token costs one bucket read, not one per request; a key written on this
//! node, or on another node (seen by the accounts watch), is read again at once, well before
//! the cache's TTL; and a token created on another node authenticates here at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil_auth::SharedKv;
use vigil_cluster::Cluster;
use vigil_cluster::testing::NatsCluster;
use vigil_server::cluster::auth::{ClusterAuth, KvBucket, watch_accounts};
use vigil_server::cluster::negative::NEGATIVE_TTL;

async fn node(nats: &NatsCluster, name: &str) -> ClusterAuth {
    let cluster = Cluster::connect(nats.settings("neg", name, 1, Duration::from_secs(3)))
        .await
        .unwrap();
    ClusterAuth::open(cluster, Duration::from_secs(3600))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_keys_cost_one_read_and_writes_anywhere_are_seen_at_once() {
    if vigil_cluster::testing::skip_without_nats() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path(), 3);
    let (n1, n2) = (node(&nats, "n1").await, node(&nats, "n2").await);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let watch = tokio::spawn(watch_accounts(
        Arc::clone(&n1.shared),
        n1.bucket.clone(),
        Arc::clone(&n1.absent),
        stop,
    ));

    // A flood of one unknown (well-formed) token id: one read, then the cache answers.
    let shared = Arc::clone(&n1.shared);
    let looked_up = tokio::task::spawn_blocking(move || {
        (0..200)
            .filter(|_| shared.fetch_token("0badc0de").is_some())
            .count()
    })
    .await
    .unwrap();
    assert_eq!(looked_up, 0);
    assert_eq!(n1.absent.hits(), 199, "199 of 200 lookups asked no bucket");

    // The same key written on another node: n1's watch forgets it; n1 reads it at once.
    let key = "user.absent-then-present";
    let bucket = KvBucket::with_cache(
        n1.bucket.clone(),
        tokio::runtime::Handle::current(),
        Arc::clone(&n1.absent),
    );
    let bucket = Arc::new(bucket);
    let b = Arc::clone(&bucket);
    let first = tokio::task::spawn_blocking(move || b.get(key).unwrap())
        .await
        .unwrap();
    assert!(first.is_none());
    n2.bucket.put(key, b"{}".to_vec().into()).await.unwrap();
    let written = Instant::now();
    loop {
        let b = Arc::clone(&bucket);
        if tokio::task::spawn_blocking(move || b.get(key).unwrap())
            .await
            .unwrap()
            .is_some()
        {
            break;
        }
        assert!(
            written.elapsed() < NEGATIVE_TTL / 2,
            "a key written on another node stays absent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Written on this node: read again at once (no watch needed).
    let own = "user.written-here";
    let b = Arc::clone(&bucket);
    let seen = tokio::task::spawn_blocking(move || {
        assert!(b.get(own).unwrap().is_none());
        b.put(own, b"{}".to_vec()).unwrap();
        b.get(own).unwrap()
    })
    .await
    .unwrap();
    assert!(seen.is_some());

    // A token created on n2 authenticates on n1 (through the shared store) at once.
    let (n1_shared, n2_shared) = (Arc::clone(&n1.shared), Arc::clone(&n2.shared));
    let found = tokio::task::spawn_blocking(move || {
        let (entry, _) = n2_shared
            .create_token("shipper", vigil_auth::Role::Ingest)
            .unwrap();
        n1_shared.fetch_token(&entry.id)
    })
    .await
    .unwrap();
    assert!(found.is_some());

    let _ = stop_tx.send(true);
    let _ = watch.await;
}
