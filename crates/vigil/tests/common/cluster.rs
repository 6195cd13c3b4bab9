//! Cluster-mode helpers for the `cluster_*` tests: the flags that make `vigil serve` a node of
//! a test NATS cluster, one node on a fixed HTTP port that can be killed and started again,
//! and each shard's lease as an outside observer sees it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use vigil_cluster::lease::LeaseValue;
use vigil_cluster::testing::NatsCluster;
use vigil_cluster::{Cluster, ClusterSettings, Names, Shard};

use super::{Server, wait_until};

/// `--cluster-name NAME` and one `--cluster URL` per NATS server; with `monitor`, one
/// `--cluster-monitor URL` each as well.
pub fn cluster_flags(nats: &NatsCluster, name: &str, monitor: bool) -> Vec<String> {
    let mut flags = vec!["--cluster-name".to_string(), name.to_string()];
    for url in nats.urls() {
        flags.extend(["--cluster".to_string(), url]);
    }
    if monitor {
        for url in nats.monitor_urls() {
            flags.extend(["--cluster-monitor".to_string(), url]);
        }
    }
    flags
}

/// One Vigil node of cluster `t`: its data directory, a fixed HTTP port (a restart listens
/// where clients send), and its process while it runs.
pub struct Node {
    /// `--node`.
    pub name: String,
    /// Its data directory.
    pub data: PathBuf,
    /// Its HTTP port on 127.0.0.1.
    pub http: u16,
    /// `--partitions`.
    pub partitions: u32,
    /// Whether it is given the NATS monitoring URLs (`--cluster-monitor`).
    pub monitor: bool,
    /// The running server, if it runs.
    pub server: Option<Server>,
    /// More `serve` flags (none by default).
    pub extra: Vec<String>,
}

impl Node {
    /// A node not started yet, on a free HTTP port.
    pub fn new(name: String, data: PathBuf, partitions: u32, monitor: bool) -> Node {
        Node {
            name,
            data,
            http: super::unused_port(),
            partitions,
            monitor,
            server: None,
            extra: Vec::new(),
        }
    }

    /// Starts `vigil serve` as this node of cluster `t` on `nats`; waits until it is ready.
    pub fn start(&mut self, nats: &NatsCluster) {
        let mut flags = vec![
            "--node".to_string(),
            self.name.clone(),
            "--partitions".into(),
            self.partitions.to_string(),
            "--http".into(),
            format!("127.0.0.1:{}", self.http),
        ];
        flags.extend(cluster_flags(nats, "t", self.monitor));
        flags.extend(self.extra.iter().cloned());
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        self.server = Some(Server::start(&self.data, &flags));
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }
}

/// The cluster `t` as a client sees it: each shard's lease, and the last stream sequence of
/// its subject (0 when it has none).
pub fn leases(nats: &NatsCluster, partitions: u32) -> BTreeMap<Shard, (Option<LeaseValue>, u64)> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let cluster = Cluster::connect(ClusterSettings {
            urls: nats.urls(),
            creds: None,
            node: "observer".into(),
            names: Names::new("t"),
            partitions,
            replicas: 3,
            monitor: Vec::new(),
            lease_ttl: Duration::from_secs(6),
        })
        .await
        .expect("observer connects");
        let mut out = BTreeMap::new();
        for shard in Shard::all(partitions) {
            let lease = cluster
                .leases()
                .get(shard.to_string())
                .await
                .ok()
                .flatten()
                .and_then(|v| LeaseValue::parse(&v));
            let last = cluster
                .stream()
                .get_last_raw_message_by_subject(&Names::new("t").shard_subject(shard))
                .await
                .map(|m| m.sequence)
                .unwrap_or(0);
            out.insert(shard, (lease, last));
        }
        out
    })
}

/// The set-up the cluster tests repeat: a temporary directory, a real NATS cluster of 3
/// servers, and `nodes` Vigil nodes `n0`, `n1`, … of cluster `t` (data in `DIR/vN`, not
/// started yet: set [`Node::extra`] first if needed, then [`ClusterFixture::start_all`]).
pub struct ClusterFixture {
    /// Holds every directory of the test.
    pub dir: tempfile::TempDir,
    /// The NATS servers.
    pub nats: NatsCluster,
    /// The Vigil nodes.
    pub nodes: Vec<Node>,
    /// `--partitions`.
    pub partitions: u32,
}

impl ClusterFixture {
    /// The fixture, or `None` (after saying SKIP) when `nats-server` is not installed; fails
    /// instead under `VIGIL_REQUIRE_TOOLS`.
    pub fn new(nodes: usize, partitions: u32) -> Option<ClusterFixture> {
        if vigil_cluster::testing::skip_without_nats() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let nats = NatsCluster::start(&dir.path().join("nats"), 3);
        let nodes = (0..nodes)
            .map(|i| {
                Node::new(
                    format!("n{i}"),
                    dir.path().join(format!("v{i}")),
                    partitions,
                    false,
                )
            })
            .collect();
        Some(ClusterFixture {
            dir,
            nats,
            nodes,
            partitions,
        })
    }

    /// Starts every node (at once) and waits until every shard has an owner.
    pub fn start_all(&mut self) {
        let nats = &self.nats;
        std::thread::scope(|s| {
            for node in &mut self.nodes {
                s.spawn(move || node.start(nats));
            }
        });
        self.wait_for_owners();
    }

    /// Waits (up to 60 s) until every shard has an owner; panics otherwise.
    pub fn wait_for_owners(&self) {
        assert!(
            wait_until(60, || leases(&self.nats, self.partitions)
                .values()
                .all(|(l, _)| l.is_some())),
            "every shard gets an owner: {:?}",
            leases(&self.nats, self.partitions)
        );
    }

    /// Waits (up to `secs`) until every shard's owner has appended the whole of its subject.
    pub fn wait_caught_up(&self, secs: u64) -> bool {
        wait_until(secs, || {
            leases(&self.nats, self.partitions)
                .values()
                .all(|(l, last)| l.as_ref().is_some_and(|l| l.applied >= *last))
        })
    }

    /// A token of `role` made with the real CLI against the cluster's shared state.
    pub fn token(&self, role: &str, name: &str) -> String {
        let mut create = super::vigil();
        create
            .args(["token", "create", "--role", role, "--name", name])
            .args(["--cluster-name", "t", "--data-dir"])
            .arg(self.dir.path().join("cli"));
        for url in self.nats.urls() {
            create.args(["--cluster", &url]);
        }
        super::run_ok(&mut create).trim().to_owned()
    }
}
