//! The detector lease and cursor against a real 3-node NATS cluster: one holder at a time, a
//! new holder only after the old one's lease expired (or was given up) and with a higher
//! epoch, and the cursor written only by the holder, over the revision it knows.

use std::time::{Duration, Instant};

use vigil_cluster::detector::{CURSOR_KEY, Cursor, DetectorLease};
use vigil_cluster::testing::NatsCluster;
use vigil_cluster::{Cluster, ClusterSettings};

fn settings(nats: &NatsCluster, node: &str) -> ClusterSettings {
    nats.settings("lease", node, 2, Duration::from_secs(2))
}

fn skip() -> bool {
    vigil_cluster::testing::skip_without_nats()
}

/// Turns `lease` until it holds (at most 20 s).
async fn acquire(lease: &DetectorLease) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lease.turn().await {
        assert!(Instant::now() < deadline, "the lease was never acquired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_at_a_time_and_only_the_holder_moves_the_cursor() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path(), 3);
    let a = DetectorLease::new(Cluster::connect(settings(&nats, "a")).await.unwrap());
    let b = DetectorLease::new(Cluster::connect(settings(&nats, "b")).await.unwrap());

    // A free lease is acquired (retried: right after the NATS cluster starts, a loaded machine
    // can fail the first KV calls; a failed try may use up an epoch, so epochs are compared,
    // not counted).
    acquire(&a).await;
    let first = a.held().expect("a holds the lease");
    assert!(!b.turn().await, "a held lease is not");
    assert_eq!(b.held(), None);
    assert!(a.turn().await, "the holder renews");
    assert!(a.take_cursor().await.unwrap().is_none());
    a.write_cursor(5).await.unwrap();
    assert!(
        b.write_cursor(6).await.is_err(),
        "only the holder writes the cursor"
    );

    // The holder dies (stops renewing without giving the lease up): b holds it only once it
    // expired, with the next epoch, and resumes from a's cursor.
    a.abandon();
    assert_eq!(a.held(), None);
    assert!(!b.turn().await, "not before the lease expired");
    acquire(&b).await;
    assert!(
        b.held().unwrap() > first,
        "the epoch grows when the lease changes hands: {:?} after {first}",
        b.held()
    );
    let cursor = b.take_cursor().await.unwrap().unwrap();
    assert_eq!(
        (cursor.seq, cursor.node.as_str(), cursor.epoch),
        (5, "a", first)
    );
    b.write_cursor(7).await.unwrap();

    // Someone else moved the cursor (a deposed detector, a person): b's next write is refused
    // and b stops holding at once.
    let other = Cluster::connect(settings(&nats, "c")).await.unwrap();
    let foreign = Cursor {
        seq: 3,
        node: "c".into(),
        epoch: 9,
    };
    other
        .state()
        .put(CURSOR_KEY, serde_json::to_vec(&foreign).unwrap().into())
        .await
        .unwrap();
    assert!(b.write_cursor(8).await.is_err());
    assert_eq!(b.held(), None);

    // A clean stop gives the lease up: the next node acquires it on its first try, with an
    // epoch above every one seen (the cursor's included).
    acquire(&b).await;
    b.release().await;
    let c = DetectorLease::new(other);
    // At once: well before the lease's TTL (2 s) could have freed it (a read served by a
    // replica may lag the delete by a moment).
    let given_up = Instant::now();
    while !c.turn().await {
        assert!(
            given_up.elapsed() < Duration::from_millis(1000),
            "a given-up lease is free at once"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(c.held().unwrap() > 9, "{:?}", c.held());
}

/// A holder that dies before it ever saved a cursor: a node that never saw its lease still
/// acquires a higher epoch (alert ids are stamped with the epoch, so epochs never repeat).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_never_repeat_even_without_a_cursor() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path(), 3);
    let a = DetectorLease::new(Cluster::connect(settings(&nats, "a")).await.unwrap());
    acquire(&a).await;
    let first = a.held().unwrap();
    a.abandon();
    // A node that starts only now (it never saw a's lease) once a's lease expired.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let b = DetectorLease::new(Cluster::connect(settings(&nats, "b")).await.unwrap());
    acquire(&b).await;
    assert!(
        b.read_cursor().await.unwrap().is_none(),
        "no cursor was ever saved"
    );
    assert!(b.held().unwrap() > first, "{:?} after {first}", b.held());
}

/// Detector partitions: each its own lease and cursor, acquired by different nodes at the same
/// moment, with epochs from the one shared record that never coincide (alert and ban ids are
/// stamped with the epoch, so they stay unique across partitions too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_hold_their_own_leases_and_cursors_with_epochs_never_shared() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path(), 3);
    let mut leases = Vec::new();
    for (node, index) in [("a", 0), ("b", 1), ("c", 2)] {
        let cluster = Cluster::connect(settings(&nats, node)).await.unwrap();
        leases.push(DetectorLease::for_partition(cluster, index, 3));
    }
    // All three try at once, again and again, until each holds its partition.
    let deadline = Instant::now() + Duration::from_secs(20);
    while leases.iter().any(|l| l.held().is_none()) {
        assert!(
            Instant::now() < deadline,
            "every partition's lease is acquired"
        );
        futures_util::future::join_all(leases.iter().map(|l| l.turn())).await;
    }
    let mut epochs: Vec<u64> = leases.iter().map(|l| l.held().unwrap()).collect();
    epochs.sort_unstable();
    epochs.dedup();
    assert_eq!(
        epochs.len(),
        3,
        "three acquisitions, three epochs: {epochs:?}"
    );

    // A second node cannot take a partition that is held; the partitions' cursors are apart.
    let other =
        DetectorLease::for_partition(Cluster::connect(settings(&nats, "d")).await.unwrap(), 1, 3);
    assert!(!other.turn().await, "partition 1 is held by b");
    for (i, lease) in leases.iter().enumerate() {
        assert!(lease.take_cursor().await.unwrap().is_none());
        lease.write_cursor(100 + i as u64).await.unwrap();
    }
    for (i, lease) in leases.iter().enumerate() {
        let (cursor, _) = lease.read_cursor().await.unwrap().unwrap();
        assert_eq!(cursor.seq, 100 + i as u64, "partition {i}'s own cursor");
    }
    assert!(
        other.write_cursor(7).await.is_err(),
        "only partition 1's holder writes its cursor"
    );
    // The one-lease detector's keys are untouched by the partitions.
    let whole = DetectorLease::new(Cluster::connect(settings(&nats, "e")).await.unwrap());
    assert!(whole.read_cursor().await.unwrap().is_none());

    // A partition's holder dies: the next holder of that partition gets an epoch above all.
    leases[1].abandon();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !other.turn().await {
        assert!(Instant::now() < deadline, "partition 1 moves to d");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(other.held().unwrap() > *epochs.last().unwrap());
    let (cursor, _) = other.read_cursor().await.unwrap().unwrap();
    assert_eq!(cursor.seq, 101, "d resumes from partition 1's cursor");
}
