//! Cluster queries against a real 3-node NATS cluster: three nodes' responders, backed by
//! events in memory split over the shards as ingest splits them, answer every query through
//! any node exactly as one store holding every event does; a shard whose owner does not answer,
//! answers too late or no longer owns it is named missing while the rest is answered; and an
//! answer larger than the servers' max_payload arrives in chunks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use vigil_cluster::partition::partition_of;
use vigil_cluster::testing::NatsCluster;
use vigil_cluster::{Cluster, ClusterSettings, Shard};
use vigil_event::{Event, Timestamp, Value};
use vigil_query::{Limits, Pipeline, QueryResult, parse, run};
use vigil_server::cluster::query::{Responder, ShardSearch, fan_out};

const PARTITIONS: u32 = 4;

fn settings(nats: &NatsCluster, node: &str) -> ClusterSettings {
    nats.settings("q", node, PARTITIONS, Duration::from_secs(600))
}

fn skip() -> bool {
    vigil_cluster::testing::skip_without_nats()
}

/// A node's shards in memory: what it owns, and every shard's events (sequence, event).
struct MemShards {
    owned: Vec<Shard>,
    events: Arc<BTreeMap<Shard, Vec<(u64, Event)>>>,
    /// How long each shard query takes (a slow node).
    delay: Duration,
}

impl ShardSearch for MemShards {
    fn owned(&self) -> Vec<Shard> {
        self.owned.clone()
    }
    fn run(
        &self,
        shard: Shard,
        pipeline: &Pipeline,
        limits: Limits,
    ) -> Result<QueryResult, String> {
        std::thread::sleep(self.delay);
        let events = self.events.get(&shard).cloned().unwrap_or_default();
        Ok(run(pipeline, events, limits))
    }
}

/// Events as a cluster would split them: by partition key, Vigil's own events in `sys`.
fn events(n: u64) -> Vec<(u64, Event)> {
    let ips = [
        "203.0.113.5",
        "198.51.100.7",
        "10.0.0.1",
        "2001:db8::1",
        "192.0.2.9",
    ];
    let users = ["root", "admin", "alice", "bob"];
    (0..n)
        .map(|i| {
            let mut e = Event::new(Timestamp::from_secs(1_700_000_000 + (i as i64 * 37) % 7200));
            let ip = ips[(i * 7 % 5) as usize];
            if i % 11 != 0 {
                e.insert("source.ip", ip.parse::<std::net::IpAddr>().unwrap());
            }
            e.insert("user.name", users[(i * 3 % 4) as usize]);
            e.insert(
                "http.response.status_code",
                [200i64, 403, 404, 500][(i % 4) as usize],
            );
            e.insert("bytes", (i * 97 % 5000) as i64);
            e.insert("host.name", ["web-1", "web-2", "db"][(i % 3) as usize]);
            if i % 13 == 0 {
                e.insert("event.dataset", "vigil.audit");
                e.insert("message", format!("user login {i}"));
            } else {
                e.insert(
                    "message",
                    format!("Failed password for {} from {ip}", users[(i % 4) as usize]),
                );
            }
            (i, e)
        })
        .collect()
}

fn shard_of(e: &Event) -> Shard {
    if e.get_str("event.dataset")
        .is_some_and(|d| d.starts_with("vigil."))
    {
        Shard::System
    } else {
        Shard::Data(partition_of(e, PARTITIONS))
    }
}

fn by_shard(all: &[(u64, Event)]) -> Arc<BTreeMap<Shard, Vec<(u64, Event)>>> {
    let mut map: BTreeMap<Shard, Vec<(u64, Event)>> = BTreeMap::new();
    for (seq, e) in all {
        map.entry(shard_of(e)).or_default().push((*seq, e.clone()));
    }
    Arc::new(map)
}

async fn lease(cluster: &Cluster, shard: Shard, node: &str) {
    let value = serde_json::json!({"node": node, "epoch": 1, "applied": 0, "events": 0});
    cluster
        .leases()
        .put(shard.to_string(), value.to_string().into_bytes().into())
        .await
        .unwrap();
}

fn limits(max_rows: usize) -> Limits {
    Limits {
        from: None,
        to: None,
        max_rows,
        now: Timestamp::from_secs(1_700_010_000),
    }
}

/// Columns, rows and the truncation flag, comparable: floats to 12 significant digits (sums of
/// fractions add in another order across shards: equal up to rounding, as docs/cluster.md says).
fn render(r: &QueryResult) -> String {
    let rows: Vec<String> = r
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| match v {
                    Value::Float(x) => format!("Float({x:.11e})"),
                    v => format!("{v:?}"),
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    format!("{:?} {}\n{}", r.columns, r.truncated, rows.join("\n"))
}

const QUERIES: &[&str] = &[
    "*",
    "failed root",
    "* | stats count",
    "* | stats count by src_ip",
    "status>=400 | stats count, dc(user), avg(bytes), min(bytes), max(status), median(bytes), values(host) by host",
    "* | stats sum(bytes), earliest(user), latest(user), perc90(bytes)",
    "* | timechart span=15m count by host",
    "* | timechart span=30m avg(bytes), dc(src_ip)",
    "* | top 3 user",
    "* | rare src_ip",
    "* | stats count by user | where count > 5 | sort -count",
    "* | head 7",
    "* | sort 5 -bytes",
    "* | dedup host | table host, user",
    "* | eval kb = bytes / 1000 | stats sum(kb) by host",
    "event.dataset=vigil.audit | stats count",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_answers_like_one_store_and_names_missing_shards() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path(), 3);
    let n1 = Cluster::connect(settings(&nats, "n1")).await.unwrap();
    let n2 = Cluster::connect(settings(&nats, "n2")).await.unwrap();
    let n3 = Cluster::connect(settings(&nats, "n3")).await.unwrap();

    let all = events(400);
    let shards = by_shard(&all);
    assert!(
        shards.len() >= 4,
        "events reach several shards: {:?}",
        shards.keys()
    );
    let owners = [
        ("n1", vec![Shard::Data(0), Shard::Data(1)]),
        ("n2", vec![Shard::Data(2), Shard::Data(3)]),
        ("n3", vec![Shard::System]),
    ];
    let mut responders = BTreeMap::new();
    for (node, owned) in &owners {
        for s in owned {
            lease(&n1, *s, node).await;
        }
        let cluster = [&n1, &n2, &n3][node[1..].parse::<usize>().unwrap() - 1];
        let mem = MemShards {
            owned: owned.clone(),
            events: Arc::clone(&shards),
            delay: Duration::ZERO,
        };
        let responder = Responder::start(cluster, Arc::new(mem)).await.unwrap();
        responders.insert(*node, responder);
    }

    for query in QUERIES {
        let pipeline = parse(query).unwrap();
        let expected = run(&pipeline, all.clone(), limits(50));
        for (name, node) in [("n1", &n1), ("n3", &n3)] {
            let actual = fan_out(node, query, limits(50), Duration::from_secs(20))
                .await
                .unwrap();
            assert!(
                actual.missing_shards.is_empty(),
                "{query} on {name}: {actual:?}"
            );
            assert_eq!(render(&actual), render(&expected), "{query} on {name}");
            assert_eq!(actual.message, expected.message, "{query} on {name}");
        }
    }

    // n3 stops answering: `sys` is named missing, the data shards still count.
    responders.remove("n3");
    let data_events = all
        .iter()
        .filter(|(_, e)| shard_of(e) != Shard::System)
        .count();
    let r = fan_out(&n1, "* | stats count", limits(50), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.rows, vec![vec![Value::Int(data_events as i64)]]);
    assert_eq!(r.missing_shards, ["sys"]);
    assert!(r.truncated);
    let message = r.message.as_deref().unwrap();
    assert!(message.contains("shards sys did not answer"), "{message}");
    assert!(message.contains("(sys: "), "the reason is given: {message}");

    // n3 answers again, but too slowly; and n2's lease on p3 names n2 though n2 lost p3.
    let slow = MemShards {
        owned: vec![Shard::System],
        events: Arc::clone(&shards),
        delay: Duration::from_secs(4),
    };
    let _slow = Responder::start(&n3, Arc::new(slow)).await.unwrap();
    responders.remove("n2");
    let lost_p3 = MemShards {
        owned: vec![Shard::Data(2)],
        events: Arc::clone(&shards),
        delay: Duration::ZERO,
    };
    let _n2 = Responder::start(&n2, Arc::new(lost_p3)).await.unwrap();
    let started = std::time::Instant::now();
    let r = fan_out(&n2, "* | stats count", limits(50), Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the timeout bounds the wait"
    );
    let answered: usize = [Shard::Data(0), Shard::Data(1), Shard::Data(2)]
        .iter()
        .map(|s| shards.get(s).map_or(0, Vec::len))
        .sum();
    assert_eq!(r.rows, vec![vec![Value::Int(answered as i64)]]);
    assert_eq!(r.missing_shards, ["p3", "sys"]);
    let message = r.message.as_deref().unwrap();
    assert!(message.contains("p3: not owned by this node"), "{message}");
    assert!(message.contains("sys: no answer in time"), "{message}");

    // A shard without a lease has no owner.
    n1.leases().delete("p1").await.unwrap();
    let r = fan_out(
        &n1,
        "* | stats count by host",
        limits(50),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert!(
        r.missing_shards.contains(&"p1".to_string()),
        "{:?}",
        r.missing_shards
    );
    assert!(
        r.message.as_deref().unwrap().contains("p1: no owner"),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_over_max_payload_arrives_in_chunks() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path(), 3);
    let n1 = Cluster::connect(settings(&nats, "n1")).await.unwrap();
    let max_payload = n1.max_payload();
    // One shard holding more than one message's worth of events, all of which a query returns.
    let big = "x".repeat(64 * 1024);
    let all: Vec<(u64, Event)> = (0..(max_payload / (64 * 1024) + 40) as u64)
        .map(|i| {
            let mut e = Event::new(Timestamp::from_secs(1_700_000_000 + i as i64));
            e.insert("message", format!("{i} {big}"));
            (i, e)
        })
        .collect();
    let shards = Arc::new(BTreeMap::from([(Shard::Data(0), all.clone())]));
    for s in Shard::all(PARTITIONS) {
        lease(&n1, s, "n1").await;
    }
    let mem = MemShards {
        owned: Shard::all(PARTITIONS).collect(),
        events: shards,
        delay: Duration::ZERO,
    };
    let _responder = Responder::start(&n1, Arc::new(mem)).await.unwrap();
    let query = "* | table message";
    let r = fan_out(&n1, query, limits(10_000), Duration::from_secs(30))
        .await
        .unwrap();
    let bytes: usize = r
        .rows
        .iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::len)
        .sum();
    assert!(
        bytes > max_payload,
        "{bytes} bytes of rows, max_payload {max_payload}"
    );
    assert!(r.missing_shards.is_empty(), "{:?}", r.message);
    let expected = run(&parse(query).unwrap(), all, limits(10_000));
    assert_eq!(r.rows, expected.rows);
}
