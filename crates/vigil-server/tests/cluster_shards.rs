//! Shards, leases and their workers against a real 3-node NATS cluster, with several nodes'
//! ShardSets in this process (each its own data directory and node name): every shard is owned
//! by exactly one node; every published event is stored exactly once; a node stopped abruptly
//! loses its shards after the lease TTL and their new owners rebuild them from the stream; a
//! restarted node resumes from its local shard; a deposed owner stops appending before another
//! node takes over; a joining node takes some shards.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use vigil_cluster::balance::register;
use vigil_cluster::lease::LeaseValue;
use vigil_cluster::testing::NatsCluster;
use vigil_cluster::{Cluster, ClusterSettings, Names, NodeInfo, Shard, codec};
use vigil_event::{Event, Timestamp, field};
use vigil_ledger::LedgerReader;
use vigil_server::cluster::shards::ShardSet;

const PARTITIONS: u32 = 4;
const TTL: Duration = Duration::from_secs(3);

fn skip() -> bool {
    vigil_cluster::testing::skip_without_nats()
}

fn all_shards() -> Vec<Shard> {
    Shard::all(PARTITIONS).collect()
}

async fn connect(nats: &NatsCluster, node: &str) -> Cluster {
    Cluster::connect(ClusterSettings {
        urls: nats.urls(),
        creds: None,
        node: node.into(),
        names: Names::new("t"),
        partitions: PARTITIONS,
        replicas: 3,
        monitor: nats.monitor_urls(),
        lease_ttl: TTL,
    })
    .await
    .expect("connect")
}

/// A node of the test: its connection, registration, shard set and stop signal.
struct Node {
    name: String,
    data: PathBuf,
    cluster: Cluster,
    set: Arc<ShardSet>,
    stop: watch::Sender<bool>,
    registration: tokio::task::JoinHandle<()>,
}

impl Node {
    async fn start(nats: &NatsCluster, name: &str, data: &Path) -> Node {
        Node::start_indexed(nats, name, data, 0).await
    }

    /// A node whose shards have search indexes (`index_threads` each).
    async fn start_indexed(
        nats: &NatsCluster,
        name: &str,
        data: &Path,
        index_threads: usize,
    ) -> Node {
        let cluster = connect(nats, name).await;
        let registration = {
            let cluster = cluster.clone();
            let info = NodeInfo {
                node: name.into(),
                http: None,
                started: "2026-12-07T00:00:00Z".into(),
                version: "test".into(),
            };
            tokio::spawn(async move {
                loop {
                    let _ = register(&cluster, &info).await;
                    tokio::time::sleep(TTL / 3).await;
                }
            })
        };
        let (stop, stop_rx) = watch::channel(false);
        let set = ShardSet::start(cluster.clone(), data, index_threads, stop_rx);
        Node {
            name: name.into(),
            data: data.to_owned(),
            cluster,
            set,
            stop,
            registration,
        }
    }

    /// As `kill -9`: nothing released, the registration stops being renewed.
    async fn crash(self) {
        self.registration.abort();
        self.set.crash().await;
        drop(self.stop);
    }
}

/// What was published: per shard, (stream seq, event numbers).
#[derive(Default)]
struct Published {
    messages: BTreeMap<Shard, Vec<(u64, Vec<i64>)>>,
    next: i64,
}

impl Published {
    /// Publishes `batches` messages of 1–5 events, spread over every shard.
    async fn publish(&mut self, cluster: &Cluster, batches: usize) {
        let shards = all_shards();
        for b in 0..batches {
            let shard = shards[(self.next as usize + b) % shards.len()];
            let count = 1 + (self.next % 5) as usize;
            let mut events = Vec::new();
            let mut ns = Vec::new();
            for _ in 0..count {
                let n = self.next;
                self.next += 1;
                let mut e = Event::new(Timestamp::from_nanos(1_700_000_000_000_000_000 + n));
                e.insert("message", format!("event {n}"));
                e.insert("n", n);
                events.push(e);
                ns.push(n);
            }
            let payload = codec::encode(&events, 1 << 20).remove(0);
            let id = format!("test/{}", ns[0]);
            let seq = cluster
                .publish(shard, payload.into(), &id)
                .await
                .expect("publish");
            self.messages.entry(shard).or_default().push((seq, ns));
        }
    }

    fn expected(&self, shard: Shard) -> Vec<(u64, i64)> {
        self.messages
            .get(&shard)
            .into_iter()
            .flatten()
            .flat_map(|(seq, ns)| ns.iter().map(move |n| (*seq, *n)))
            .collect()
    }

    fn total(&self) -> usize {
        self.next as usize
    }
}

/// (vigil.stream.seq, n) of every durable event in a node's copy of a shard, in ledger order
/// (through the running writer when the node has the shard open).
fn contents(node: &Node, shard: Shard) -> Vec<(u64, i64)> {
    let reader = match node.set.ledger(shard) {
        Some(ledger) => ledger.reader(),
        None => LedgerReader::open(&node.set.shard_dir(shard)),
    };
    let Ok(mut reader) = reader else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for seq in reader.first_seq()..reader.end_seq() {
        let e = reader.read_event(seq).expect("read");
        let s = e
            .get(field::VIGIL_STREAM_SEQ)
            .and_then(|v| v.as_i64())
            .expect("every event carries vigil.stream.seq");
        let n = e.get("n").and_then(|v| v.as_i64()).expect("n");
        out.push((s as u64, n));
    }
    out
}

/// Who owns what, from the shard sets (each shard exactly once, or `None`).
fn ownership(nodes: &[&Node]) -> Option<BTreeMap<Shard, String>> {
    let mut owners = BTreeMap::new();
    for node in nodes {
        for shard in node.set.owned() {
            if owners.insert(shard, node.name.clone()).is_some() {
                panic!("{shard} owned by two nodes at once");
            }
        }
    }
    (owners.len() == all_shards().len()).then_some(owners)
}

/// Waits until every shard is owned by one of `nodes` and holds exactly what was published to
/// it, each event once, in stream order.
async fn wait_complete(nodes: &[&Node], published: &Published, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut missing = Vec::new();
        match ownership(nodes) {
            None => missing.push("not every shard is owned".to_string()),
            Some(owners) => {
                for (shard, owner) in owners {
                    let node = nodes.iter().find(|n| n.name == owner).unwrap();
                    let got = contents(node, shard);
                    let expected = published.expected(shard);
                    if got != expected {
                        // Never a duplicate or a reordering, even before complete.
                        assert!(
                            expected.starts_with(&got),
                            "{what}: shard {shard} on {owner} is not a prefix of the stream: \
                             got {} events, first difference at {:?}",
                            got.len(),
                            got.iter().zip(&expected).position(|(a, b)| a != b)
                        );
                        missing.push(format!("{shard}: {}/{}", got.len(), expected.len()));
                    }
                }
            }
        }
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not complete in 90 s: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shards_spread_move_on_a_crash_and_come_back_without_gap_or_duplicate() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let mut published = Published::default();

    // One node alone takes every shard.
    let a = Node::start(&nats, "a", &dir.path().join("a")).await;
    published.publish(&a.cluster, 40).await;
    wait_complete(&[&a], &published, "a alone").await;

    // A second and a third node join: each takes some shards, every shard has one owner.
    let b = Node::start(&nats, "b", &dir.path().join("b")).await;
    wait_for("b takes shards", || b.set.owned().len() >= 2).await;
    let c = Node::start(&nats, "c", &dir.path().join("c")).await;
    wait_for("c takes shards", || !c.set.owned().is_empty()).await;
    published.publish(&b.cluster, 40).await;
    wait_complete(&[&a, &b, &c], &published, "three nodes").await;
    let owners = ownership(&[&a, &b, &c]).unwrap();
    for node in ["a", "b", "c"] {
        let n = owners.values().filter(|o| *o == node).count();
        assert!((1..=2).contains(&n), "{node} owns {n} of 5 shards");
    }

    // The lease values name the owners and their progress.
    for (shard, owner) in &owners {
        let value = a.cluster.leases().get(shard.to_string()).await.unwrap();
        let value = LeaseValue::parse(&value.unwrap()).unwrap();
        assert_eq!(&value.node, owner);
        assert!(value.epoch >= 1);
    }

    // a is killed: its shards move to b and c after the TTL; they rebuild them from the
    // stream (or resume their own older copies) while events keep coming.
    let a_shards: BTreeSet<Shard> = a.set.owned().into_iter().collect();
    assert!(!a_shards.is_empty());
    let a_data = a.data.clone();
    a.crash().await;
    published.publish(&c.cluster, 40).await;
    wait_complete(&[&b, &c], &published, "after a's crash").await;
    for shard in &a_shards {
        let epoch = LeaseValue::parse(
            &b.cluster
                .leases()
                .get(shard.to_string())
                .await
                .unwrap()
                .unwrap(),
        )
        .unwrap()
        .epoch;
        assert!(epoch >= 2, "{shard} changed hands: epoch {epoch}");
    }

    // a comes back on its old data directory: it takes some shards again; where it holds an
    // older copy, it resumes after its last stored message (never storing one twice).
    let a = Node::start(&nats, "a", &a_data).await;
    wait_for("a takes shards again", || !a.set.owned().is_empty()).await;
    published.publish(&a.cluster, 40).await;
    wait_complete(&[&a, &b, &c], &published, "a restarted").await;
    // Every copy on every node, owned or not, is a prefix of its subject: no gap, no duplicate.
    for node in [&a, &b, &c] {
        for shard in all_shards() {
            let got = contents(node, shard);
            assert!(
                published.expected(shard).starts_with(&got),
                "{shard} on {}: not a prefix of the stream",
                node.name
            );
        }
    }
    let stored: usize = all_shards()
        .iter()
        .map(|s| published.expected(*s).len())
        .sum();
    assert_eq!(stored, published.total());

    // A shard can be queried on its owner, and it verifies as a data directory of its own
    // with the shard's origin.
    let owners = ownership(&[&a, &b, &c]).unwrap();
    let (shard, owner) = owners.iter().next().unwrap();
    let node = [&a, &b, &c].into_iter().find(|n| &n.name == owner).unwrap();
    let pipeline = vigil_query::parse("* | stats count").unwrap();
    let limits = vigil_query::Limits {
        from: None,
        to: None,
        max_rows: 100,
        now: Timestamp::now(),
    };
    let set = Arc::clone(&node.set);
    let shard = *shard;
    let result = tokio::task::spawn_blocking(move || set.run(shard, &pipeline, limits))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        result.rows[0][0].as_i64(),
        Some(published.expected(shard).len() as i64)
    );
    let ledger = node.set.ledger(shard).unwrap();
    assert_eq!(ledger.origin(), format!("vigil/t/{shard}/{owner}"));

    for node in [a, b, c] {
        let _ = node.stop.send(true);
        node.set.stopped().await;
        node.registration.abort();
    }
    // A clean stop releases every lease.
    let cluster = connect(&nats, "check").await;
    let owners = vigil_cluster::balance::owners(&cluster, &all_shards())
        .await
        .unwrap();
    assert!(
        owners.is_empty(),
        "leases left after a clean stop: {owners:?}"
    );

    // Every copy of every shard on every node verifies as a ledger of its own (what
    // `vigil verify --data-dir DATA/shards/<shard>` runs).
    let mut verified = 0;
    for node in ["a", "b", "c"] {
        for shard in all_shards() {
            let shard_dir = dir.path().join(node).join("shards").join(shard.to_string());
            if !shard_dir.exists() {
                continue;
            }
            let report = vigil_ledger::verify(
                &shard_dir,
                &vigil_ledger::VerifyOptions::default(),
                &mut |_, _| {},
            )
            .unwrap();
            assert!(
                report.problems.is_empty(),
                "{node}/{shard}: {:?}",
                report.problems
            );
            verified += 1;
        }
    }
    assert!(verified >= all_shards().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_node_resumes_from_its_own_shards() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let mut published = Published::default();
    let data = dir.path().join("a");
    let a = Node::start(&nats, "a", &data).await;
    published.publish(&a.cluster, 50).await;
    wait_complete(&[&a], &published, "before the crash").await;
    // Messages that are not batches of events (a hostile or foreign publisher) are skipped,
    // counted, and never stop the shard.
    let publisher = connect(&nats, "publisher").await;
    for (i, junk) in [
        b"not a batch".to_vec(),
        vec![1, 0xff, 0xff, 0xff, 0xff, 0x0f],
        vec![1, 1, 3, b'x', b'y', b'z'],
        Vec::new(),
    ]
    .into_iter()
    .enumerate()
    {
        publisher
            .publish(Shard::Data(1), junk.into(), &format!("junk/{i}"))
            .await
            .unwrap();
    }
    published.publish(&publisher, 10).await;
    wait_complete(&[&a], &published, "after hostile messages").await;
    assert!(
        a.set
            .metrics()
            .undecodable
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3
    );
    let before: BTreeMap<Shard, usize> = all_shards()
        .into_iter()
        .map(|s| (s, contents(&a, s).len()))
        .collect();
    a.crash().await;
    // More events while it is down; it comes back within the TTL: it takes its own leases back
    // and resumes after the last message each shard holds.
    published.publish(&publisher, 50).await;
    let a = Node::start_indexed(&nats, "a", &data, 1).await;
    wait_complete(&[&a], &published, "after the restart").await;
    for shard in all_shards() {
        let got = contents(&a, shard);
        assert!(got.len() >= before[&shard]);
        assert_eq!(got, published.expected(shard));
    }
    // Queries on an owned shard go through its index, which follows the shard's ledger.
    for shard in all_shards() {
        let expected = published.expected(shard).len() as i64;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let set = Arc::clone(&a.set);
            let counted = tokio::task::spawn_blocking(move || {
                let pipeline = vigil_query::parse("n=* | stats count").unwrap();
                let limits = vigil_query::Limits {
                    from: None,
                    to: None,
                    max_rows: 10,
                    now: Timestamp::now(),
                };
                set.run(shard, &pipeline, limits)
            })
            .await
            .unwrap()
            .unwrap()
            .rows
            .first()
            .and_then(|r| r[0].as_i64());
            if counted == Some(expected) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{shard}: the index counts {counted:?}, the shard holds {expected}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(
        a.set
            .run(
                Shard::Data(9),
                &vigil_query::parse("*").unwrap(),
                vigil_query::Limits {
                    from: None,
                    to: None,
                    max_rows: 10,
                    now: Timestamp::now(),
                }
            )
            .is_err(),
        "a shard this node does not own is refused"
    );
    let _ = a.stop.send(true);
    a.set.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deposed_owner_stops_appending_before_another_node_takes_over() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let mut published = Published::default();
    let a = Node::start(&nats, "a", &dir.path().join("a")).await;
    published.publish(&a.cluster, 20).await;
    wait_complete(&[&a], &published, "a alone").await;
    let epochs: BTreeMap<Shard, u64> = {
        let mut m = BTreeMap::new();
        for s in all_shards() {
            let v = a
                .cluster
                .leases()
                .get(s.to_string())
                .await
                .unwrap()
                .unwrap();
            m.insert(s, LeaseValue::parse(&v).unwrap().epoch);
        }
        m
    };

    // a is cut off: no renewal, no registration. Events keep coming; b is there to take over.
    a.registration.abort();
    a.set.pause_renewals(true);
    let b = Node::start(&nats, "b", &dir.path().join("b")).await;
    let publisher = connect(&nats, "publisher").await;
    // While b takes over, watch a's shards: once b holds a shard, a's copy never grows again.
    let mut frozen: BTreeMap<Shard, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while frozen.len() < all_shards().len() {
        assert!(Instant::now() < deadline, "b did not take every shard");
        published.publish(&publisher, 5).await;
        for shard in b.set.owned() {
            let len = contents(&a, shard).len();
            match frozen.get(&shard) {
                None => {
                    frozen.insert(shard, len);
                }
                Some(&was) => assert_eq!(
                    len, was,
                    "{shard}: a appended after b took the lease (deposed owner wrote)"
                ),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // a's workers wait at their closed fences.
    assert!(
        a.set.status().iter().all(|s| s.fenced),
        "{:?}",
        a.set.status()
    );
    published.publish(&publisher, 20).await;
    wait_complete(&[&b], &published, "b took over").await;
    for (shard, &len) in &frozen {
        assert_eq!(contents(&a, *shard).len(), len);
        let v = b
            .cluster
            .leases()
            .get(shard.to_string())
            .await
            .unwrap()
            .unwrap();
        let v = LeaseValue::parse(&v).unwrap();
        assert_eq!(v.node, "b");
        assert!(v.epoch > epochs[shard], "{shard}: the epoch increases");
    }
    let _ = b.stop.send(true);
    b.set.stopped().await;
    a.set.crash().await;
}
