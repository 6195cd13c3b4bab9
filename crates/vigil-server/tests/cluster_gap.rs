//! Stream retention against a real 3-node NATS cluster: a stream whose limits discard old
//! messages is named at connect (and one that removes consumed messages is refused), and a
//! shard copy that finds messages discarded before it had them records the gap — a
//! `ledger_stream_gap` audit event in the shard's ledger, the gap counter — and goes on after
//! it, instead of skipping it silently.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::stream;
use tokio::sync::watch;
use vigil_cluster::balance::register;
use vigil_cluster::testing::NatsCluster;
use vigil_cluster::{Cluster, ClusterError, ClusterSettings, Names, NodeInfo, Shard, codec};
use vigil_event::{Event, Timestamp, field};
use vigil_server::cluster::shards::ShardSet;

const TTL: Duration = Duration::from_secs(3);

fn settings(nats: &NatsCluster, cluster: &str, node: &str) -> ClusterSettings {
    ClusterSettings {
        urls: nats.urls(),
        creds: None,
        node: node.into(),
        names: Names::new(cluster),
        partitions: 1,
        replicas: 3,
        monitor: Vec::new(),
        lease_ttl: TTL,
    }
}

/// A stream made by hand (as an operator might) with what Vigil needs, plus `change`.
async fn stream_by_hand(nats: &NatsCluster, cluster: &str, change: impl Fn(&mut stream::Config)) {
    let client = async_nats::connect(nats.urls()[0].as_str()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let names = Names::new(cluster);
    let mut config = stream::Config {
        name: names.stream(),
        subjects: vec![names.stream_subjects()],
        storage: stream::StorageType::File,
        num_replicas: 3,
        metadata: HashMap::from([("vigil.partitions".to_string(), "1".to_string())]),
        ..Default::default()
    };
    change(&mut config);
    js.create_stream(config).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_is_checked_and_a_gap_is_recorded_not_skipped() {
    if vigil_cluster::testing::skip_without_nats() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&dir.path().join("nats"), 3);

    // A work-queue stream removes what is consumed: refused. A stream with max_age: named.
    stream_by_hand(&nats, "wq", |c| {
        c.retention = stream::RetentionPolicy::WorkQueue
    })
    .await;
    match Cluster::connect(settings(&nats, "wq", "n1")).await {
        Err(ClusterError::Unsafe(why)) => assert!(why.contains("limits retention"), "{why}"),
        other => panic!("a work-queue stream must be refused: {other:?}"),
    }
    stream_by_hand(&nats, "aged", |c| {
        c.max_age = Duration::from_secs(7 * 86_400)
    })
    .await;
    let aged = Cluster::connect(settings(&nats, "aged", "n1"))
        .await
        .unwrap();
    assert_eq!(aged.retention_warnings().len(), 1);
    assert!(aged.retention_warnings()[0].contains("max_age 604800s"));
    let own = Cluster::connect(settings(&nats, "own", "n1"))
        .await
        .unwrap();
    assert!(
        own.retention_warnings().is_empty(),
        "Vigil's own stream keeps everything"
    );

    // Five messages on p0, the first three purged before any node copied the shard.
    let mut seqs = Vec::new();
    for n in 0..5i64 {
        let mut e = Event::new(Timestamp::from_nanos(1_700_000_000_000_000_000 + n));
        e.insert("n", n);
        let payload = codec::encode(&[e], 1 << 20).remove(0);
        seqs.push(
            own.publish(Shard::Data(0), payload.into(), &format!("gap/{n}"))
                .await
                .unwrap(),
        );
    }
    own.stream().purge().sequence(seqs[3]).await.unwrap();

    // A node takes the shard: its copy records the gap, then holds the two messages left.
    let info = NodeInfo {
        node: "n1".into(),
        http: None,
        started: "2026-12-07T00:00:00Z".into(),
        version: "test".into(),
    };
    register(&own, &info).await.unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let set = ShardSet::start(own.clone(), &dir.path().join("n1"), 0, stop_rx);
    let deadline = Instant::now() + Duration::from_secs(30);
    let events = loop {
        let events: Vec<Event> = set
            .ledger(Shard::Data(0))
            .and_then(|l| l.reader().ok())
            .map(|mut r| {
                let (first, end) = (r.first_seq(), r.end_seq());
                (first..end).map(|s| r.read_event(s).unwrap()).collect()
            })
            .unwrap_or_default();
        if events.len() >= 3 {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "the copy never caught up: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let int = |e: &Event, k: &str| e.get(k).and_then(|v| v.as_i64());
    assert_eq!(events[0].get_str("event.action"), Some("ledger_stream_gap"));
    assert_eq!(int(&events[0], "vigil.gap.first"), Some(1));
    assert_eq!(int(&events[0], "vigil.gap.last"), Some(seqs[2] as i64));
    let rest: Vec<(Option<i64>, Option<i64>)> = events[1..]
        .iter()
        .map(|e| (int(e, field::VIGIL_STREAM_SEQ), int(e, "n")))
        .collect();
    assert_eq!(
        rest,
        [
            (Some(seqs[3] as i64), Some(3)),
            (Some(seqs[4] as i64), Some(4))
        ]
    );
    // The sys shard's copy starts behind the trimmed stream too: which discarded messages
    // were whose is not knowable, so it reports the same gap.
    let sys_gap = wait_until(|| {
        set.ledger(Shard::System)
            .and_then(|l| l.reader().ok())
            .and_then(|mut r| (r.end_seq() > 0).then(|| r.read_event(0).unwrap()))
    })
    .await;
    assert_eq!(sys_gap.get_str("event.action"), Some("ledger_stream_gap"));
    assert_eq!(
        set.metrics()
            .stream_gaps
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    let _ = stop.send(true);
    Arc::clone(&set).stopped().await;
}

/// Polls `f` until it gives a value (at most 30 s).
async fn wait_until<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
