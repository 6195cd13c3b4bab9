//! The node registry against a real 3-node NATS cluster (issue 15: a second process started
//! as `n0` was once let in because the real n0's registration was not renewed for 1.5 × TTL).
//!
//! - While NATS servers are killed, restarted and frozen (SIGSTOP: a server that holds its
//!   connections and answers nothing, i.e. a slow KV), the registration stays this process's,
//!   and a second process joining under the same name all that time is refused every time.
//! - Renewals heal themselves: an entry deleted by hand is created again; a revision moved
//!   under the renewer with this process's own bytes (an update that succeeded while its answer
//!   was lost) is adopted.
//! - Another process's value under the name fences the node: `fenced()` says why, the renewer
//!   ends (counted), and `leave` leaves the other's entry alone.
//! - A registration dropped without `leave` is an error counted, not a silent end.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use vigil_cluster::testing::NatsCluster;
use vigil_cluster::{Cluster, NodeInfo};
use vigil_server::cluster::registry::{Registration, RegistryError};

const TTL: Duration = Duration::from_secs(3);

fn info(node: &str, started: &str) -> NodeInfo {
    NodeInfo {
        node: node.into(),
        http: None,
        started: started.into(),
        version: "test".into(),
    }
}

async fn connect(nats: &NatsCluster, cluster: &str, node: &str) -> Cluster {
    Cluster::connect(nats.settings(cluster, node, 1, TTL))
        .await
        .unwrap()
}

/// The registry entry of `node` as this process wrote it, or what is there instead.
async fn entry_of(cluster: &Cluster, node: &str) -> Option<Bytes> {
    for _ in 0..50 {
        if let Ok(entry) = cluster.nodes().entry(node).await {
            return entry
                .filter(|e| e.operation == async_nats::jetstream::kv::Operation::Put)
                .map(|e| e.value);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the nodes bucket did not answer");
}

async fn eventually(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within {within:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_survive_nats_failures_and_an_impostor_is_always_refused() {
    if vigil_cluster::testing::skip_without_nats() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let real = connect(&nats, "reg", "n0").await;
    let mine = info("n0", "2026-12-07T09:00:00.000000001Z");
    let registration = Registration::join(&real, &mine).await.unwrap();
    let my_bytes = Bytes::from(serde_json::to_vec(&mine).unwrap());

    // A second process named n0 keeps trying to join while NATS servers fail one by one.
    let impostor = connect(&nats, "reg", "n0").await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attempts = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut refused = 0;
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let other = info("n0", &format!("2026-12-07T09:00:00.{n:09}Z"));
                match Registration::join(&impostor, &other).await {
                    Err(RegistryError::NameTaken { .. }) => refused += 1,
                    // NATS unreachable for 30 s would be an error, not an admission.
                    Err(RegistryError::Bucket(e)) => eprintln!("impostor attempt: {e}"),
                    Ok(_) => panic!("a second process named n0 was let in (attempt {n})"),
                }
            }
            refused
        })
    };
    for i in 0..3 {
        tokio::time::sleep(TTL).await;
        tokio::task::block_in_place(|| nats.kill(i));
        tokio::time::sleep(TTL * 2).await;
        tokio::task::block_in_place(|| nats.restart(i));
    }
    // A slow KV: a server that holds its clients' connections and answers nothing for 2 TTLs.
    for i in 0..3 {
        nats.freeze(i);
        tokio::time::sleep(TTL * 2).await;
        nats.thaw(i);
        tokio::time::sleep(TTL).await;
    }
    stop.store(true, Ordering::SeqCst);
    let refused = attempts.await.expect("no impostor was let in");
    assert!(refused >= 3, "the impostor was refused {refused} times");
    assert_eq!(
        *registration.fenced().borrow(),
        None,
        "the real n0 was fenced"
    );
    eventually("the entry is the real n0's", TTL * 3, async || {
        entry_of(&real, "n0").await.as_ref() == Some(&my_bytes)
    })
    .await;
    let stats = Arc::clone(registration.stats());
    assert_eq!(stats.renewer_stopped.load(Ordering::SeqCst), 0);
    eprintln!(
        "renewal failures {}, adopted {}, recreated {}, taken back {}",
        stats.failures.load(Ordering::SeqCst),
        stats.adopted.load(Ordering::SeqCst),
        stats.recreated.load(Ordering::SeqCst),
        stats.taken_back.load(Ordering::SeqCst)
    );
    registration.leave().await;
    eventually("a clean leave removes the entry", TTL, async || {
        entry_of(&real, "n0").await.is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_heal_a_deleted_or_moved_entry_and_step_down_for_another_process() {
    if vigil_cluster::testing::skip_without_nats() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let cluster = connect(&nats, "heal", "n1").await;
    let mine = info("n1", "2026-12-07T09:00:00.000000002Z");
    let my_bytes = Bytes::from(serde_json::to_vec(&mine).unwrap());
    let registration = Registration::join(&cluster, &mine).await.unwrap();
    let stats = Arc::clone(registration.stats());

    // A quiet NATS: renewed from the start on (the start's probation used part of the TTL;
    // the first renewal must come before the entry can expire), nothing to heal.
    tokio::time::sleep(TTL * 2).await;
    assert_eq!(stats.failures.load(Ordering::SeqCst), 0);
    assert_eq!(stats.recreated.load(Ordering::SeqCst), 0);
    assert_eq!(entry_of(&cluster, "n1").await, Some(my_bytes.clone()));

    // Deleted by hand (or expired during an outage): created again at the next renewal.
    cluster.nodes().delete("n1").await.unwrap();
    eventually("the deleted entry is created again", TTL * 2, async || {
        stats.recreated.load(Ordering::SeqCst) == 1
            && entry_of(&cluster, "n1").await.as_ref() == Some(&my_bytes)
    })
    .await;

    // The revision moves under the renewer with this process's own bytes (an update that was
    // stored although its answer was lost): adopted, not taken for another process.
    cluster.nodes().put("n1", my_bytes.clone()).await.unwrap();
    eventually("the moved revision is adopted", TTL * 2, async || {
        stats.adopted.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert_eq!(*registration.fenced().borrow(), None);

    // A later start's value (one that created the name while this registration had lapsed):
    // this process, the earlier start, takes the name back.
    let later =
        Bytes::from(serde_json::to_vec(&info("n1", "2026-12-07T09:00:05.000000003Z")).unwrap());
    cluster.nodes().put("n1", later).await.unwrap();
    eventually(
        "the name is taken back from a later start",
        TTL * 2,
        async || {
            stats.taken_back.load(Ordering::SeqCst) == 1
                && entry_of(&cluster, "n1").await.as_ref() == Some(&my_bytes)
        },
    )
    .await;
    assert_eq!(*registration.fenced().borrow(), None);

    // An earlier start's value: this node is the newcomer and steps down, loudly and counted.
    let theirs =
        Bytes::from(serde_json::to_vec(&info("n1", "2026-12-07T08:00:00.000000003Z")).unwrap());
    cluster.nodes().put("n1", theirs.clone()).await.unwrap();
    let mut fenced = registration.fenced();
    tokio::time::timeout(TTL * 2, fenced.wait_for(Option::is_some))
        .await
        .expect("fenced within two TTLs")
        .unwrap();
    let why = fenced.borrow().clone().unwrap();
    assert!(
        why.contains("another process registered as node \"n1\""),
        "{why}"
    );
    assert_eq!(stats.fenced.load(Ordering::SeqCst), 1);
    assert_eq!(stats.renewer_stopped.load(Ordering::SeqCst), 1);
    // Not renewed any more: the other's entry is left as it is, and a leave does not delete it.
    tokio::time::sleep(TTL / 2).await;
    assert_eq!(entry_of(&cluster, "n1").await, Some(theirs.clone()));
    registration.leave().await;
    assert_eq!(entry_of(&cluster, "n1").await, Some(theirs));

    // A registration dropped without leave: its renewer ends, as an error that is counted.
    let dropped = Registration::join(&cluster, &info("n2", "2026-12-07T09:00:00.000000004Z"))
        .await
        .unwrap();
    let dropped_stats = Arc::clone(dropped.stats());
    drop(dropped);
    eventually(
        "a dropped registration's renewer is counted",
        TTL,
        async || dropped_stats.renewer_stopped.load(Ordering::SeqCst) == 1,
    )
    .await;
}
