//! Detection and the shared alert and ban books in cluster mode, against a real 3-node
//! `nats-server` cluster (JetStream, R3, `sync_interval: always`) and three Vigil nodes run in
//! this process (each with its own NATS connection, detector, alert book and ban book, as
//! `vigil serve --cluster` wires them). Events reach the stream the way the ingest door puts
//! them there (`codec::encode` + `Cluster::publish` to a data shard), each node's own events
//! (alerts, bans) go to the `sys` shard through an `Ingest` over the stream.
//!
//! Shows: an SSH brute force whose lines arrive on three nodes and three shards raises exactly
//! one alert and one ban, the same on every node's alert book and CrowdSec decisions stream;
//! when the detector's node dies (its lease is not renewed, its cursor is behind its alerts),
//! another node takes over, raises nothing again for the first attack and detects the next.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;
use vigil_cluster::detector::{CURSOR_KEY, Cursor};
use vigil_cluster::testing::NatsCluster;
use vigil_cluster::{Cluster, ClusterSettings, Shard, codec};
use vigil_detect::alert::{Status, Triage};
use vigil_event::{Event, Timestamp};
use vigil_ingest::log::OnDurable;
use vigil_ingest::{EventLog, Ingest};
use vigil_ledger::LedgerError;
use vigil_server::cluster::detect::{ClusterDetection, DetectPlan};
use vigil_server::decisions::{DecisionService, Responder};
use vigil_server::notify::{NotifyQueue, NotifyStats};

const RULES: &str = r#"title: SSH failed login
id: 5d0c0f6e-1111-4c1e-9d5e-000000000001
name: t_ssh_failed
status: stable
detection:
    selection:
        event.action: ssh_login
        event.outcome: failure
    condition: selection
level: low
---
title: SSH brute force
id: 5d0c0f6e-1111-4c1e-9d5e-000000000002
name: t_ssh_bruteforce
status: stable
correlation:
    type: event_count
    rules: [t_ssh_failed]
    group-by: [source.ip]
    timespan: 5m
    condition: {gte: 5}
level: high
"#;

const BRUTE_FORCE: &str = "SSH brute force";

fn skip() -> bool {
    vigil_cluster::testing::skip_without_nats()
}

/// The door of a cluster node as far as Vigil's own events go: each append is published to
/// the `sys` shard and answered with JetStream's ack (the stream sequences).
struct SysLog {
    cluster: Cluster,
    runtime: tokio::runtime::Handle,
    appends: AtomicU64,
}

impl EventLog for SysLog {
    fn append(&self, events: &[Event], done: OnDurable) {
        let n = self.appends.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}/own/{n}", self.cluster.node());
        let messages = codec::encode(events, self.cluster.max_payload() / 2);
        let cluster = self.cluster.clone();
        self.runtime.spawn(async move {
            let mut range: Option<std::ops::Range<u64>> = None;
            for (i, m) in messages.into_iter().enumerate() {
                match cluster
                    .publish(Shard::System, m.into(), &format!("{id}/{i}"))
                    .await
                {
                    Ok(seq) => {
                        let start = range.as_ref().map_or(seq, |r| r.start);
                        range = Some(start..seq + 1);
                    }
                    Err(_) => return done(Err(LedgerError::Closed)),
                }
            }
            done(Ok(range.unwrap_or(0..0)));
        });
    }

    fn durable_end(&self) -> u64 {
        0
    }
}

struct Node {
    cluster: Cluster,
    detection: ClusterDetection,
    decisions: Arc<DecisionService>,
    tasks: JoinSet<()>,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

fn settings(nats: &NatsCluster, node: &str) -> ClusterSettings {
    nats.settings("det", node, 3, Duration::from_secs(3))
}

async fn start_node(nats: &NatsCluster, name: &str, rules: &Path) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::connect(settings(nats, name)).await.unwrap();
    let log = SysLog {
        cluster: cluster.clone(),
        runtime: tokio::runtime::Handle::current(),
        appends: AtomicU64::new(0),
    };
    let door = Arc::new(Ingest::new(
        vigil_ingest::NodeLog::Stream(Arc::new(log)),
        vigil_ingest::pipeline::redactor(None).unwrap(),
        Arc::default(),
    ));
    let responders = vec![Responder {
        rules: vec![BRUTE_FORCE.into()],
        min_level: None,
        duration: Duration::from_secs(600),
        max_duration: Duration::from_secs(3600),
    }];
    let decisions = Arc::new(DecisionService::shared(
        responders,
        vigil_server::decisions::default_allowlist(),
        door.clone(),
    ));
    let (tx, _rx) = tokio::sync::mpsc::channel(1000);
    let notify = NotifyQueue::new(tx, Vec::new(), Arc::new(NotifyStats::default()));
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let plan = DetectPlan {
        data_dir: dir.path().to_path_buf(),
        rule_dirs: vec![rules.to_path_buf()],
        throttle_secs: 600,
        partitions: 1,
        door,
        notify,
        decisions: Arc::clone(&decisions),
        shared: Arc::new(vigil_server::cluster::books::SharedBooks::new(
            Arc::default(),
        )),
    };
    let detection = vigil_server::cluster::detect::start(&cluster, plan, &mut tasks, stop_rx)
        .await
        .unwrap();
    Node {
        cluster,
        detection,
        decisions,
        tasks,
        stop,
        _dir: dir,
    }
}

impl Node {
    /// The alerts of `rule` for `ip` in this node's book (what `GET /api/v1/alerts` lists).
    fn alerts(&self, rule: &str, ip: &str) -> Vec<(u64, u64, &'static str)> {
        let group = format!("source.ip={ip}");
        self.detection.detect.as_ref().unwrap().with_book(|b| {
            b.list(&Default::default())
                .into_iter()
                .filter(|a| a.rule.title == rule && a.group_key() == group)
                .map(|a| (a.id, a.count, a.status.as_str()))
                .collect()
        })
    }

    /// The decisions on `ip` a CrowdSec bouncer starting now receives
    /// (`/v1/decisions/stream?startup=true`), as `(id, value)`.
    fn bans(&self, ip: &str) -> Vec<(u64, String)> {
        let now = Timestamp::now();
        self.decisions.read(|b| {
            let (new, _) = b.stream(None, now);
            new.into_iter()
                .map(|d| d.to_lapi(now))
                .filter(|j| j["value"] == ip)
                .map(|j| (j["id"].as_u64().unwrap(), j["value"].to_string()))
                .collect()
        })
    }

    async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(d) = &self.detection.detect {
            let d = Arc::clone(d);
            let _ = tokio::task::spawn_blocking(move || d.stop()).await;
        }
        // As `vigil serve` does: the leases go once the detector has flushed.
        self.detection.release().await;
        while self.tasks.join_next().await.is_some() {}
    }
}

/// An sshd failure line from `ip`, parsed as any listener parses it.
fn failure(ip: &str, i: usize) -> Event {
    failure_at(ip, i, Timestamp::now())
}

/// An sshd failure line from `ip` dated `now` (to the second).
fn failure_at(ip: &str, i: usize, now: Timestamp) -> Event {
    let line = format!(
        "<38>{} web{i} sshd[{}]: Failed password for invalid user u{i} from {ip} port {} ssh2",
        now.to_datetime().format("%b %e %H:%M:%S"),
        800 + i,
        40_000 + i
    );
    let ctx = vigil_parse::ParseContext::new(now, "test");
    let e = vigil_parse::parse_line(line.as_bytes(), vigil_parse::Format::Auto, &ctx);
    assert_eq!(e.get_str("event.outcome"), Some("failure"), "{e:?}");
    e
}

/// Publishes `events` as node `node` does after ingest, to `shard`; returns the sequence.
async fn publish(node: &Node, shard: Shard, events: &[Event], id: &str) -> u64 {
    let payload = codec::encode(events, 1 << 20).remove(0);
    node.cluster
        .publish(shard, payload.into(), id)
        .await
        .unwrap()
}

async fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The shared cursor's sequence (0: none).
async fn cursor(node: &Node) -> u64 {
    match node.cluster.state().get(CURSOR_KEY).await.unwrap() {
        Some(bytes) => serde_json::from_slice::<Cursor>(&bytes).unwrap().seq,
        None => 0,
    }
}

/// Sends an attack of `n` failures from `ip`, line `i` through node `i % 3` to shard `i % 3`.
async fn attack(nodes: &[&Node], ip: &str, n: usize, tag: &str) -> u64 {
    let mut last = 0;
    for i in 0..n {
        let node = nodes[i % nodes.len()];
        last = publish(
            node,
            Shard::Data((i % 3) as u32),
            &[failure(ip, i)],
            &format!("{tag}/{i}"),
        )
        .await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_brute_force_over_three_nodes_is_one_alert_and_one_ban_on_every_node() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path(), 3);
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("ssh.yml"), RULES).unwrap();
    let mut nodes = Vec::new();
    for name in ["n1", "n2", "n3"] {
        nodes.push(start_node(&nats, name, &rules).await);
    }
    let detecting = |nodes: &[Node]| nodes.iter().filter(|n| n.detection.detecting()).count();
    wait_until("one detector", 30, || detecting(&nodes) == 1).await;

    // Twelve failed logins from one address, through all three nodes, into three shards.
    let attacker = "203.0.113.5";
    let all: Vec<&Node> = nodes.iter().collect();
    let before = cursor(&nodes[0]).await;
    // Hostile messages (not Vigil's layout) on the sys shard and a data shard: skipped and
    // counted by every reader, nothing else changes.
    for shard in [Shard::System, Shard::Data(1)] {
        let id = format!("garbage/{shard}");
        nodes[1]
            .cluster
            .publish(shard, b"\xffnot an event batch".to_vec().into(), &id)
            .await
            .unwrap();
    }
    let last = attack(&all, attacker, 12, "first").await;
    wait_until("the alert and the ban on every node", 30, || {
        nodes
            .iter()
            .all(|n| n.alerts(BRUTE_FORCE, attacker).len() == 1 && n.bans(attacker).len() == 1)
    })
    .await;
    // Everything up to the last line is evaluated and its effects are durable.
    let deadline = Instant::now() + Duration::from_secs(30);
    while cursor(&nodes[0]).await < last {
        assert!(Instant::now() < deadline, "the cursor does not pass {last}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The sys shard's last word is applied on every node: still exactly one of each.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first = nodes[0].alerts(BRUTE_FORCE, attacker);
    let ban = nodes[0].bans(attacker);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(ban.len(), 1, "{ban:?}");
    for n in &nodes {
        let alerts = n.alerts(BRUTE_FORCE, attacker);
        assert_eq!(
            alerts, first,
            "the same one alert, with its count, on every node"
        );
        assert_eq!(
            n.bans(attacker),
            ban,
            "the same ban in every CrowdSec stream"
        );
    }
    assert!(
        first[0].1 > 1,
        "the matches after the first are counted: {first:?}"
    );
    for n in &nodes {
        assert_eq!(n.detection.sys.undecodable.load(Ordering::Relaxed), 1);
    }
    let skipped: u64 = nodes
        .iter()
        .flat_map(|n| n.detection.roles.iter())
        .map(|r| r.undecodable.load(Ordering::Relaxed))
        .sum();
    assert_eq!(skipped, 2, "the detector skipped both hostile messages");

    // An analyst closes it on a node that does not detect: every node's book has it closed.
    let analyst = nodes.iter().position(|n| !n.detection.detecting()).unwrap();
    let detect = Arc::clone(nodes[analyst].detection.detect.as_ref().unwrap());
    let id = first[0].0;
    tokio::task::spawn_blocking(move || {
        detect.triage(
            id,
            Triage {
                status: Status::Closed,
                by: "ana".into(),
                at: Timestamp::now(),
                comment: "blocked upstream".into(),
            },
        )
    })
    .await
    .unwrap()
    .unwrap();
    wait_until("the alert closed on every node", 30, || {
        nodes
            .iter()
            .all(|n| n.alerts(BRUTE_FORCE, attacker)[0].2 == "closed")
    })
    .await;

    // The detector's node dies: its lease is no longer renewed and its books stop. The
    // cursor is put back before the attack, as when a detector dies after its alerts are in
    // `sys` but before it saved its cursor: the next detector evaluates the attack again, and
    // must raise nothing again for what the (closed) alert counted.
    kill_detector(&mut nodes);
    let rewound = Cursor {
        seq: before,
        node: "n0".into(),
        epoch: 0,
    };
    nodes[0]
        .cluster
        .state()
        .put(CURSOR_KEY, serde_json::to_vec(&rewound).unwrap().into())
        .await
        .unwrap();
    wait_until("another node to take over", 30, || detecting(&nodes) == 1).await;

    // The next attack, through the two live nodes.
    let second = "198.51.100.7";
    let live: Vec<&Node> = nodes.iter().collect();
    let last = attack(&live, second, 12, "second").await;
    wait_until("the second alert and ban on the live nodes", 30, || {
        nodes
            .iter()
            .all(|n| n.alerts(BRUTE_FORCE, second).len() == 1 && n.bans(second).len() == 1)
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while cursor(&nodes[0]).await < last {
        assert!(Instant::now() < deadline, "the cursor does not pass {last}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for n in &nodes {
        let again = n.alerts(BRUTE_FORCE, attacker);
        assert_eq!(
            again.len(),
            1,
            "no second alert for the first attack: {again:?}"
        );
        assert_eq!((again[0].0, again[0].1), (first[0].0, first[0].1));
        assert_eq!(n.bans(attacker), ban, "no second ban for the first attack");
        let new = n.alerts(BRUTE_FORCE, second);
        assert!(new[0].0 > first[0].0, "alert ids go on after the takeover");
        assert_ne!(n.bans(second)[0].0, ban[0].0, "decision ids are unique");
    }

    // A brute force that straddles a takeover: its first lines are evaluated by one detector
    // (its cursor is past them, no alert yet), the rest by the next one, which rebuilds its
    // correlation windows from the stream: one alert, as without the takeover.
    let third = "192.0.2.77";
    let live: Vec<&Node> = nodes.iter().collect();
    let half = attack(&live, third, 3, "third-a").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while cursor(&nodes[0]).await < half {
        assert!(Instant::now() < deadline, "the cursor does not pass {half}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        nodes
            .iter()
            .all(|n| n.alerts(BRUTE_FORCE, third).is_empty())
    );
    kill_detector(&mut nodes);
    wait_until("the last node to take over", 30, || detecting(&nodes) == 1).await;
    let live: Vec<&Node> = nodes.iter().collect();
    attack(&live, third, 3, "third-b").await;
    wait_until("the straddling attack's alert and ban", 30, || {
        nodes[0].alerts(BRUTE_FORCE, third).len() == 1 && nodes[0].bans(third).len() == 1
    })
    .await;
    // And it stays one: the re-read of the first half raised nothing of its own.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(nodes[0].alerts(BRUTE_FORCE, third).len(), 1);
    assert_eq!(nodes[0].bans(third).len(), 1);
    // Each detector numbers its alerts in its own lease epoch's range: the three alerts, each
    // raised by another detector after a hand-over, carry three growing epochs, so a deposed
    // detector's late alert can never take an id its successor hands out.
    let ids: Vec<u64> = [attacker, second, third]
        .iter()
        .map(|ip| nodes[0].alerts(BRUTE_FORCE, ip)[0].0)
        .collect();
    let epochs: Vec<u64> = ids
        .iter()
        .map(|id| id / vigil_detect::alert::ALERT_IDS_PER_EPOCH)
        .collect();
    assert!(
        epochs[0] >= 1 && epochs[0] < epochs[1] && epochs[1] < epochs[2],
        "alert ids {ids:?}"
    );
    // So are the bans those detectors decided: each in the epoch of the alert it answers.
    let ban_ids: Vec<u64> = [attacker, second, third]
        .iter()
        .map(|ip| nodes[0].bans(ip)[0].0)
        .collect();
    let ban_epochs: Vec<u64> = ban_ids
        .iter()
        .map(|id| id / vigil_server::decisions::DECISION_IDS_PER_EPOCH)
        .collect();
    assert_eq!(ban_epochs, epochs, "ban ids {ban_ids:?}, alert ids {ids:?}");
    for n in nodes {
        n.stop().await;
    }
}

const SHORT_RULES: &str = r#"title: SSH failed login
id: 5d0c0f6e-1111-4c1e-9d5e-000000000011
name: t_ssh_failed
status: stable
detection:
    selection:
        event.action: ssh_login
        event.outcome: failure
    condition: selection
level: low
---
title: SSH brute force
id: 5d0c0f6e-1111-4c1e-9d5e-000000000012
name: t_ssh_bruteforce
status: stable
correlation:
    type: event_count
    rules: [t_ssh_failed]
    group-by: [source.ip]
    timespan: 5s
    condition: {gte: 5}
level: high
"#;

/// A takeover after the detector fell behind by more than the longest correlation window
/// (here: the next holder takes over more than the window after the cursor's last event was
/// stored, as after a backlog or an outage of every detector). The windows to rebuild are
/// those at the cursor, not those at the takeover's "now": a brute force dated within 5 s,
/// whose first half was evaluated by the dead detector (stored > 5 s before the takeover)
/// and whose second half comes after it, is one alert — re-reading only the last 5 s before
/// the takeover would miss the first half and raise none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_windows_are_rebuilt_as_at_the_cursor_when_the_takeover_comes_late() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(dir.path(), 3);
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("ssh.yml"), SHORT_RULES).unwrap();
    let mut nodes = Vec::new();
    for name in ["m1", "m2"] {
        nodes.push(start_node(&nats, name, &rules).await);
    }
    let detecting = |nodes: &[Node]| nodes.iter().filter(|n| n.detection.detecting()).count();
    wait_until("one detector", 30, || detecting(&nodes) == 1).await;

    let ip = "192.0.2.99";
    let t0 = Timestamp::now();
    let all: Vec<&Node> = nodes.iter().collect();
    let mut last = 0;
    for i in 0..3 {
        let node = all[i % 2];
        let e = failure_at(ip, i, t0);
        last = publish(
            node,
            Shard::Data(i as u32 % 3),
            &[e],
            &format!("late-a/{i}"),
        )
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while cursor(&nodes[0]).await < last {
        assert!(Instant::now() < deadline, "the cursor does not pass {last}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The detector's own follow-ups (the low alert for the failures, its count) are written
    // within moments; the cursor is past them once it stops moving.
    let mut settled = cursor(&nodes[0]).await;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = cursor(&nodes[0]).await;
        if now == settled {
            break;
        }
        settled = now;
    }
    assert!(nodes.iter().all(|n| n.alerts(BRUTE_FORCE, ip).is_empty()));
    // More than the window later, the detector dies; the other node takes over.
    tokio::time::sleep(Duration::from_secs(7)).await;
    kill_detector(&mut nodes);
    wait_until("the other node to take over", 30, || detecting(&nodes) == 1).await;
    let t1 = Timestamp::from_nanos(t0.as_nanos() + 1_000_000_000);
    for i in 3..6 {
        let e = failure_at(ip, i, t1);
        publish(
            &nodes[0],
            Shard::Data(i as u32 % 3),
            &[e],
            &format!("late-b/{i}"),
        )
        .await;
    }
    wait_until("the late takeover's one alert and ban", 30, || {
        nodes[0].alerts(BRUTE_FORCE, ip).len() == 1 && nodes[0].bans(ip).len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(nodes[0].alerts(BRUTE_FORCE, ip).len(), 1);
    assert_eq!(nodes[0].bans(ip).len(), 1);
    for n in nodes {
        n.stop().await;
    }
}

/// The detector's node dies: its lease is no longer renewed, its tasks (the `sys` follower,
/// the lease) stop, and it saves nothing more.
fn kill_detector(nodes: &mut Vec<Node>) {
    let leader = nodes.iter().position(|n| n.detection.detecting()).unwrap();
    let dead = nodes.remove(leader);
    for role in &dead.detection.roles {
        role.lease().abandon();
    }
    let mut tasks = dead.tasks;
    tasks.abort_all();
}
