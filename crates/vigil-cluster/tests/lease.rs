//! Leases against a real 3-node NATS cluster: one holder at a time, renewal by
//! compare-and-set, expiry after the TTL with the holder's fence closed first, a higher epoch
//! at each change of hands, release on a clean stop.

use std::time::{Duration, Instant};

use vigil_cluster::lease::{Lease, LeaseValue, Renewal};
use vigil_cluster::testing::NatsCluster;
use vigil_cluster::{Cluster, ClusterSettings, Names};

const TTL: Duration = Duration::from_secs(2);

fn skip() -> bool {
    vigil_cluster::testing::skip_without_nats()
}

async fn connect(nats: &NatsCluster, node: &str) -> Cluster {
    Cluster::connect(ClusterSettings {
        urls: nats.urls(),
        creds: None,
        node: node.into(),
        names: Names::new("l"),
        partitions: 2,
        replicas: 3,
        monitor: nats.monitor_urls(),
        lease_ttl: TTL,
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_at_a_time_and_the_fence_closes_before_the_key_expires() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path(), 3);
    let a = connect(&nats, "a").await;
    let b = connect(&nats, "b").await;

    let mut lease = Lease::acquire(&a, "p0").await.unwrap().expect("free");
    assert!(lease.valid());
    let first_epoch = lease.epoch();
    assert!(Lease::acquire(&b, "p0").await.unwrap().is_none(), "held");

    // Renewals keep it past the TTL, and carry the shard's progress.
    for i in 1..=4u64 {
        tokio::time::sleep(TTL / 3).await;
        assert!(matches!(
            lease.renew(&a, i * 10, i * 100).await,
            Renewal::Renewed
        ));
        assert!(Lease::acquire(&b, "p0").await.unwrap().is_none());
    }
    let value = LeaseValue::parse(&a.leases().get("p0").await.unwrap().unwrap()).unwrap();
    assert_eq!(
        value,
        LeaseValue {
            node: "a".into(),
            epoch: first_epoch,
            applied: 40,
            events: 400
        }
    );

    // a stops renewing: its fence closes first; b gets in only later, with a higher epoch.
    let until = lease.fence().valid_until().unwrap();
    let taken = loop {
        if let Some(taken) = Lease::acquire(&b, "p0").await.unwrap() {
            break taken;
        }
        assert!(
            Instant::now() < until + TTL * 10,
            "the lease did not expire"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let taken_at = Instant::now();
    assert!(
        taken_at > until,
        "b took the lease while a's fence was still open"
    );
    assert!(!lease.valid());
    assert!(taken.epoch() > first_epoch);

    // a's renewal now fails: it is deposed for good.
    assert!(matches!(lease.renew(&a, 50, 500).await, Renewal::Deposed));
    assert!(!lease.valid());

    // b releases on a clean stop; a takes it again, with a yet higher epoch.
    let b_epoch = taken.epoch();
    taken.release(&b).await.unwrap();
    let again = Lease::acquire(&a, "p0").await.unwrap().expect("released");
    assert!(again.epoch() > b_epoch);

    // A node that restarts within the TTL takes its own lease back.
    let a2 = connect(&nats, "a").await;
    let back = Lease::acquire(&a2, "p0").await.unwrap().expect("own lease");
    assert!(back.epoch() > again.epoch());
    // …and the older incarnation's renewal is refused.
    let mut again = again;
    assert!(matches!(again.renew(&a, 0, 0).await, Renewal::Deposed));

    // A value that is not a lease is never overwritten.
    a.leases().put("p1", "garbage".into()).await.unwrap();
    assert!(Lease::acquire(&b, "p1").await.unwrap().is_none());
}

/// A cluster-wide counter (the ids of bans by hand): two nodes reserving at the same time never
/// get the same number, and every number is above what the caller says it has seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_reserving_at_once_never_share_a_number() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path(), 3);
    let a = connect(&nats, "a").await;
    let b = connect(&nats, "b").await;
    let reserve = |cluster: Cluster| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..40 {
                if let Some(n) = vigil_cluster::lease::reserve_number(&cluster, "bans", 5)
                    .await
                    .unwrap()
                {
                    got.push(n);
                }
            }
            got
        })
    };
    let (from_a, from_b) = (reserve(a.clone()), reserve(b.clone()));
    let (from_a, from_b) = (from_a.await.unwrap(), from_b.await.unwrap());
    let mut all: Vec<u64> = from_a.iter().chain(&from_b).copied().collect();
    assert!(all.len() >= 40, "most reservations succeed: {all:?}");
    assert!(all.iter().all(|&n| n > 5), "above what was seen: {all:?}");
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), total, "a number was handed out twice");
    // The counter only grows: a later reservation is above every earlier one, and a caller
    // who has seen a higher id moves it past that.
    let next = vigil_cluster::lease::reserve_number(&a, "bans", 0)
        .await
        .unwrap()
        .unwrap();
    assert!(next > *all.last().unwrap());
    let jumped = vigil_cluster::lease::reserve_number(&b, "bans", 1_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(jumped, 1_001);
}

/// Three nodes, each connected to a different NATS server (so reads may be served by replicas
/// that have not seen the others' writes yet), acquire the same keys at the same moment: a
/// lost race is always "another node is acquiring" (`Ok(None)`), never an error, and each key
/// gets exactly one holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn nodes_acquiring_the_same_keys_at_once_lose_races_quietly() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path(), 3);
    let mut nodes = Vec::new();
    for (i, url) in nats.urls().into_iter().enumerate() {
        let cluster = Cluster::connect(ClusterSettings {
            urls: vec![url],
            creds: None,
            node: format!("n{i}"),
            names: Names::new("l"),
            partitions: 2,
            replicas: 3,
            monitor: Vec::new(),
            lease_ttl: Duration::from_secs(30),
        })
        .await
        .unwrap();
        nodes.push(cluster);
    }
    const KEYS: usize = 40;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(nodes.len()));
    let tasks: Vec<_> = nodes
        .iter()
        .cloned()
        .map(|cluster| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                // Errors are collected, not panicked on: a panicking task would leave the
                // others waiting at the barrier.
                let (mut held, mut errors) = (Vec::new(), Vec::new());
                for k in 0..KEYS {
                    barrier.wait().await;
                    match Lease::acquire(&cluster, &format!("race{k}")).await {
                        Ok(Some(lease)) => held.push((k, lease.epoch())),
                        Ok(None) => {}
                        Err(e) => errors.push(format!("{}: race{k}: {e}", cluster.node())),
                    }
                }
                (held, errors)
            })
        })
        .collect();
    let mut holders = vec![Vec::new(); KEYS];
    let mut errors = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let (held, failed) = task.await.unwrap();
        errors.extend(failed);
        for (k, epoch) in held {
            holders[k].push((i, epoch));
        }
    }
    assert!(
        errors.is_empty(),
        "a lost race came back as an error: {errors:#?}"
    );
    for (k, h) in holders.iter().enumerate() {
        assert_eq!(h.len(), 1, "race{k}: exactly one holder: {h:?}");
    }
    // What each key's lease says is the winner's own acquisition.
    for (k, h) in holders.iter().enumerate() {
        let value = nodes[0]
            .leases()
            .get(format!("race{k}"))
            .await
            .unwrap()
            .unwrap();
        let value = LeaseValue::parse(&value).unwrap();
        assert_eq!(
            (value.node.as_str(), value.epoch),
            (format!("n{}", h[0].0).as_str(), h[0].1),
            "race{k}"
        );
    }
}
