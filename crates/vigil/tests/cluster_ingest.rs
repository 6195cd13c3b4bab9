//! Cluster mode, ingest end to end: a real 3-node NATS cluster and 3 real `vigil serve
//! --cluster` nodes on loopback. Senders post NDJSON batches with an `Idempotency-Key` through
//! all three nodes (retrying through the next node on a failure or a timeout, as a shipper
//! would) and a syslog sender writes over TCP, while one Vigil node is killed with SIGKILL and
//! restarted and one NATS server is killed and restarted. Afterwards the stream, read back with
//! the real client, holds every acknowledged event exactly once. Plus the start-up refusals: a
//! NATS server without `sync_interval: always`, and a second node with a name already running.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, serve_args, unused_port, vigil, wait_until};
use vigil_cluster::testing::NatsCluster;
use vigil_cluster::{Cluster, ClusterSettings, Names, codec};
use vigil_event::Event;

const SENDERS: usize = 3;
const BATCHES: usize = 40;
const EVENTS: usize = 25;
const SYSLOG_LINES: usize = 600;

fn nats_or_skip() -> bool {
    !vigil_cluster::testing::skip_without_nats()
}

/// One Vigil node: its data directory, fixed ports (a restart listens where senders send),
/// and its process while it runs.
struct Node {
    name: String,
    data: PathBuf,
    http: u16,
    syslog: u16,
    server: Option<Server>,
}

fn cluster_flags(nats: &NatsCluster, node: &str) -> Vec<String> {
    let mut flags = vec![
        "--node".to_string(),
        node.to_string(),
        "--partitions".into(),
        "4".into(),
    ];
    flags.extend(common::cluster::cluster_flags(nats, "t", true));
    flags
}

impl Node {
    fn start(&mut self, nats: &NatsCluster) {
        let mut flags = cluster_flags(nats, &self.name);
        flags.extend([
            "--http".into(),
            format!("127.0.0.1:{}", self.http),
            "--syslog-tcp".into(),
            format!("127.0.0.1:{}", self.syslog),
        ]);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        self.server = Some(Server::start(&self.data, &flags));
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }
}

/// `POST /api/v1/ingest` with a key: the status, or `None` when there was no answer (refused
/// connection, timeout).
fn post(url: &str, token: &str, key: &str, body: &Path) -> Option<u16> {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
        ])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", "Content-Type: application/x-ndjson"])
        .args(["-H", &format!("Idempotency-Key: {key}")])
        .args(["-H", "Expect:"])
        .args(["--data-binary", &format!("@{}", body.display())])
        .arg(format!("{url}/api/v1/ingest"))
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .ok()
        .filter(|s| *s != 0)
}

/// Every event in the stream, read back message by message with the real client.
fn stream_events(nats: &NatsCluster) -> Vec<Event> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let cluster = Cluster::connect(ClusterSettings {
            urls: nats.urls(),
            creds: None,
            node: "reader".into(),
            names: Names::new("t"),
            partitions: 4,
            replicas: 3,
            monitor: Vec::new(),
            lease_ttl: Duration::from_secs(6),
        })
        .await
        .expect("reader connects");
        let info = cluster.stream().get_info().await.unwrap();
        let mut events = Vec::new();
        for seq in info.state.first_sequence..=info.state.last_sequence {
            let message = cluster.stream().get_raw_message(seq).await.unwrap();
            let shard = Names::new("t").shard_of_subject(message.subject.as_str());
            assert!(shard.is_some(), "subject {}", message.subject);
            events.extend(codec::decode(&message.payload).expect("every message decodes"));
        }
        events
    })
}

#[test]
fn every_acknowledged_event_is_in_the_stream_exactly_once_across_kills() {
    if !nats_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| Node {
            name: format!("n{i}"),
            data: dir.path().join(format!("v{i}")),
            http: unused_port(),
            syslog: unused_port(),
            server: None,
        })
        .collect();
    // One ingest token, valid on every node: made in the cluster's shared bucket.
    let mut create = common::vigil();
    create.args(["token", "create", "--role", "ingest", "--name", "shipper"]);
    create.args(["--data-dir", &dir.path().join("cli").display().to_string()]);
    create.args(["--cluster-name", "t"]);
    for url in nats.urls() {
        create.args(["--cluster", &url]);
    }
    let token = common::run_ok(&mut create).trim().to_owned();
    for node in &mut nodes {
        node.start(&nats);
    }
    let urls: Vec<String> = nodes.iter().map(Node::url).collect();

    // A cluster node is healthy while connected. The export is served in cluster mode now
    // (cluster_integrity shows it), and an ingest token may not read it.
    let health = common::curl("GET", &format!("{}/healthz", urls[0]), &[], None);
    assert_eq!(health.status, 200, "{}", health.body);
    let export = common::curl(
        "GET",
        &format!("{}/api/v1/export?query=*", urls[0]),
        &[format!("Authorization: Bearer {token}")],
        None,
    );
    assert_eq!(export.status, 403, "{}", export.body);

    // Senders: each batch goes to the sender's node first, then the next on a failure.
    let acked: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
    let given_up: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
    let progress = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (urls, token, acked, given_up, progress) = (
                urls.clone(),
                token.clone(),
                Arc::clone(&acked),
                Arc::clone(&given_up),
                Arc::clone(&progress),
            );
            let dir = dir.path().to_owned();
            std::thread::spawn(move || {
                for b in 0..BATCHES {
                    let body = dir.join(format!("batch-{s}-{b}.ndjson"));
                    let mut f = std::fs::File::create(&body).unwrap();
                    for e in 0..EVENTS {
                        writeln!(
                            f,
                            r#"{{"event.id":"s{s}-b{b}-e{e}","message":"login from 10.{s}.{}.{e}","source.ip":"10.{s}.{}.{e}"}}"#,
                            b % 250,
                            b % 250
                        )
                        .unwrap();
                    }
                    drop(f);
                    let key = format!("s{s}-b{b}");
                    let deadline = Instant::now() + Duration::from_secs(90);
                    let mut target = s;
                    loop {
                        if post(&urls[target % urls.len()], &token, &key, &body) == Some(200) {
                            acked.lock().unwrap().push((s, b));
                            break;
                        }
                        if Instant::now() > deadline {
                            given_up.lock().unwrap().push((s, b));
                            break;
                        }
                        target += 1;
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    progress.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    // Syslog over TCP to node 0 (never killed), paced over the whole run.
    let syslog_done = Arc::new(AtomicBool::new(false));
    let syslog = {
        let (port, done) = (nodes[0].syslog, Arc::clone(&syslog_done));
        std::thread::spawn(move || {
            let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            for i in 0..SYSLOG_LINES {
                writeln!(
                    conn,
                    "<13>Dec  6 10:00:01 host{} app: syslog-line-{i} end",
                    i % 5
                )
                .unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
            conn.flush().unwrap();
            drop(conn);
            done.store(true, Ordering::SeqCst);
        })
    };

    let total = SENDERS * BATCHES;
    assert!(wait_until(120, || progress.load(Ordering::SeqCst) >= total / 4));
    // kill -9 of Vigil node 1, and its restart (it waits out its old registration).
    drop(nodes[1].server.take());
    std::thread::sleep(Duration::from_millis(500));
    nodes[1].start(&nats);
    assert!(wait_until(120, || progress.load(Ordering::SeqCst) >= total / 2));
    // One NATS server lost and back: JetStream keeps a majority of the R3 stream.
    nats.kill(2);
    std::thread::sleep(Duration::from_secs(2));
    nats.restart(2);
    for sender in senders {
        sender.join().unwrap();
    }
    syslog.join().unwrap();
    assert!(syslog_done.load(Ordering::SeqCst));
    let given_up = given_up.lock().unwrap().clone();
    assert!(
        given_up.is_empty(),
        "batches never acknowledged: {given_up:?}"
    );
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), total);

    // Read back: each acknowledged event exactly once; each syslog line at most once, and
    // all of them once node 0 has published what it read.
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut lines: BTreeMap<usize, usize> = BTreeMap::new();
    let mut read = || {
        ids.clear();
        lines.clear();
        for e in stream_events(&nats) {
            assert!(e.get_str("vigil.node").is_some(), "stamped: {e:?}");
            if let Some(id) = e.get_str("event.id") {
                *ids.entry(id.to_string()).or_default() += 1;
            }
            if let Some(n) = e
                .get_str("message")
                .and_then(|m| m.split("syslog-line-").nth(1))
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse::<usize>().ok())
            {
                *lines.entry(n).or_default() += 1;
            }
        }
        lines.len() == SYSLOG_LINES
    };
    assert!(
        wait_until(60, &mut read),
        "syslog lines stored: {} of {SYSLOG_LINES}",
        lines.len()
    );
    for (s, b) in &acked {
        for e in 0..EVENTS {
            let id = format!("s{s}-b{b}-e{e}");
            assert_eq!(ids.get(&id), Some(&1), "{id} stored once");
        }
    }
    assert_eq!(ids.len(), total * EVENTS, "nothing else under test ids");
    let repeated: Vec<_> = lines.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        repeated.is_empty(),
        "syslog lines stored twice: {repeated:?}"
    );

    // A second process under a name that runs already is refused, and says why.
    let other = dir.path().join("impostor");
    let mut flags = cluster_flags(&nats, "n0");
    flags.extend(["--http".into(), "127.0.0.1:0".into()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let args = serve_args(
        &other,
        &[
            ("--syslog-udp", "off"),
            ("--syslog-tcp", "off"),
            ("--syslog-tls", "off"),
        ],
        &flags,
    );
    // Bounded: an impostor that is wrongly let in would otherwise run (and this test wait) forever.
    let mut impostor = vigil()
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let refused = wait_until(60, || impostor.try_wait().ok().flatten().is_some());
    if !refused {
        let _ = impostor.kill();
    }
    let out = impostor.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        refused,
        "a second process named n0 was not refused within 60 s (it registered and ran):\n{stderr}"
    );
    assert!(!out.status.success(), "refused: {stderr}");
    assert!(
        stderr.contains("another process is running as node \"n0\""),
        "{stderr}"
    );

    // A clean stop removes a node's registration (at once: not after the TTL).
    for node in &mut nodes {
        node.server.take().unwrap().stop();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let registered: Vec<String> = runtime.block_on(async {
        let mut settings = nats.settings("t", "reader", 4, Duration::from_secs(6));
        settings.monitor = Vec::new();
        let cluster = Cluster::connect(settings).await.expect("reader connects");
        let mut left = Vec::new();
        for name in ["n0", "n1", "n2"] {
            if cluster.nodes().get(name).await.unwrap().is_some() {
                left.push(name.to_string());
            }
        }
        left
    });
    assert!(
        registered.is_empty(),
        "registrations left after a clean stop: {registered:?}"
    );
}

#[test]
fn a_nats_server_without_sync_always_is_refused_at_start() {
    if !nats_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut nats = NatsCluster::start(&dir.path().join("nats"), 1);
    let conf = dir.path().join("nats/n1.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("sync_interval: always"));
    std::fs::write(&conf, text.replace("sync_interval: always", "")).unwrap();
    nats.kill(0);
    nats.restart(0);
    let mut flags = cluster_flags(&nats, "n0");
    flags.extend([
        "--cluster-replicas".into(),
        "1".into(),
        "--cluster-allow-unsafe-replicas".into(),
        "--http".into(),
        "127.0.0.1:0".into(),
    ]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let args = serve_args(
        &dir.path().join("v"),
        &[
            ("--syslog-udp", "off"),
            ("--syslog-tcp", "off"),
            ("--syslog-tls", "off"),
        ],
        &flags,
    );
    let out = vigil().args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {stderr}");
    assert!(stderr.contains("sync_interval: always"), "{stderr}");
    assert!(!stderr.contains("vigil: ready"), "{stderr}");
}

#[test]
fn a_node_without_nats_says_degraded_and_refuses_ingest_until_nats_is_back() {
    if !nats_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut nats = NatsCluster::start(&dir.path().join("nats"), 1);
    let data = dir.path().join("v");
    // The token is the cluster's (one NATS server here: buckets of one replica).
    let mut create = common::vigil();
    create.args(["token", "create", "--role", "ingest", "--name", "shipper"]);
    create.args(["--data-dir", &dir.path().join("cli").display().to_string()]);
    create.args(["--cluster-name", "t", "--cluster-replicas", "1"]);
    for url in nats.urls() {
        create.args(["--cluster", &url]);
    }
    let token = common::run_ok(&mut create).trim().to_owned();
    let mut flags = cluster_flags(&nats, "n0");
    flags.extend([
        "--cluster-replicas".into(),
        "1".into(),
        "--cluster-allow-unsafe-replicas".into(),
    ]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start(&data, &flags);
    let health = || common::curl("GET", &format!("{}/healthz", server.url), &[], None);
    assert_eq!(health().status, 200);
    let body = dir.path().join("one.ndjson");
    std::fs::write(&body, "{\"message\":\"hello\"}\n").unwrap();
    assert_eq!(post(&server.url, &token, "k1", &body), Some(200));

    nats.kill(0);
    assert!(
        wait_until(30, || health().status == 503),
        "{}",
        health().body
    );
    assert!(health().body.contains("degraded"), "{}", health().body);
    let refused = post(&server.url, &token, "k2", &body);
    assert_eq!(refused, Some(503), "a retryable refusal, not a 200");

    nats.restart(0);
    assert!(wait_until(30, || health().status == 200));
    assert!(wait_until(30, || post(&server.url, &token, "k2", &body) == Some(200)));
    server.stop();
}
