//! Cluster-mode helpers for the `cluster_*` tests: the flags that make `vigil serve` a node of
//! a test NATS cluster, one node on a fixed HTTP port that can be killed and started again,
//! each shard's lease as an outside observer sees it, and the set-up they share
//! ([`ClusterFixture`]: NATS, nodes, rules, syslog listeners, tokens).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use vigil_cluster::lease::LeaseValue;
use vigil_cluster::testing::NatsCluster;
use vigil_cluster::{Cluster, ClusterSettings, Names, Shard};

use super::{Server, wait_until};

/// The name of the test cluster every node joins (`--cluster-name`).
pub const CLUSTER: &str = "t";

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

    /// The `serve` flags of this node of cluster `t` on `nats` (besides `--data-dir`).
    pub fn args(&self, nats: &NatsCluster) -> Vec<String> {
        let mut flags = vec![
            "--node".to_string(),
            self.name.clone(),
            "--partitions".into(),
            self.partitions.to_string(),
            "--http".into(),
            format!("127.0.0.1:{}", self.http),
        ];
        flags.extend(cluster_flags(nats, CLUSTER, self.monitor));
        flags.extend(self.extra.iter().cloned());
        flags
    }

    /// Starts `vigil serve` as this node and waits until it is ready; the caller keeps the
    /// server (dropping it is SIGKILL). What it said when it exited before it was ready is
    /// the error.
    pub fn try_spawn(&self, nats: &NatsCluster) -> Result<Server, String> {
        let flags = self.args(nats);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        Server::try_start(&self.data, &flags)
    }

    /// [`Node::try_spawn`], panicking with the server's log if it did not start.
    pub fn spawn(&self, nats: &NatsCluster) -> Server {
        self.try_spawn(nats)
            .unwrap_or_else(|log| panic!("{} did not start:\n{log}", self.name))
    }

    /// Starts `vigil serve` as this node of cluster `t` on `nats`; waits until it is ready.
    pub fn start(&mut self, nats: &NatsCluster) {
        self.server = Some(self.spawn(nats));
    }

    /// Adds `serve` flags.
    pub fn flags(&mut self, flags: &[&str]) {
        self.extra.extend(flags.iter().map(|f| f.to_string()));
    }

    /// Gives the node a syslog TCP listener on a free port of 127.0.0.1; returns the port.
    pub fn syslog_tcp(&mut self) -> u16 {
        let port = super::unused_port();
        self.flags(&["--syslog-tcp", &format!("127.0.0.1:{port}")]);
        port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }
}

/// Sends `lines` to a syslog TCP listener on 127.0.0.1:`port`, one a line.
pub fn send_syslog(port: u16, lines: &[String]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("syslog TCP");
    for l in lines {
        s.write_all(format!("{l}\n").as_bytes()).unwrap();
    }
    s.flush().unwrap();
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
            names: Names::new(CLUSTER),
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
                .get_last_raw_message_by_subject(&Names::new(CLUSTER).shard_subject(shard))
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
        let names: Vec<String> = (0..nodes).map(|i| format!("n{i}")).collect();
        let mut fx = ClusterFixture::with_nodes(&names, partitions)?;
        for (i, node) in fx.nodes.iter_mut().enumerate() {
            node.data = fx.dir.path().join(format!("v{i}"));
        }
        Some(fx)
    }

    /// [`ClusterFixture::new`] with nodes of these names (data in `DIR/NAME`).
    pub fn with_nodes(names: &[impl AsRef<str>], partitions: u32) -> Option<ClusterFixture> {
        if vigil_cluster::testing::skip_without_nats() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let nats = NatsCluster::start(&dir.path().join("nats"), 3);
        let nodes = names
            .iter()
            .map(|name| {
                let name = name.as_ref();
                Node::new(name.into(), dir.path().join(name), partitions, false)
            })
            .collect();
        Some(ClusterFixture {
            dir,
            nats,
            nodes,
            partitions,
        })
    }

    /// Another node of the cluster, not among [`ClusterFixture::nodes`] and without their
    /// flags (data in `DIR/NAME`, a free HTTP port).
    pub fn node(&self, name: &str) -> Node {
        Node::new(
            name.into(),
            self.dir.path().join(name),
            self.partitions,
            false,
        )
    }

    /// Adds `serve` flags to every node.
    pub fn flags(&mut self, flags: &[&str]) {
        for node in &mut self.nodes {
            node.flags(flags);
        }
    }

    /// Writes rule files (name, text) into `DIR/rules` and has every node load them
    /// (`--rules`); returns the directory.
    pub fn write_rules(&mut self, files: &[(&str, &str)]) -> PathBuf {
        let rules = self.dir.path().join("rules");
        std::fs::create_dir_all(&rules).unwrap();
        for (name, text) in files {
            std::fs::write(rules.join(name), text).unwrap();
        }
        let flag = rules.display().to_string();
        self.flags(&["--rules", &flag]);
        rules
    }

    /// Gives every node a syslog TCP listener ([`Node::syslog_tcp`]); their ports, in order.
    pub fn syslog_tcp(&mut self) -> Vec<u16> {
        self.nodes.iter_mut().map(Node::syslog_tcp).collect()
    }

    /// Starts every node at once and waits until each is ready (not for shard owners); the
    /// caller keeps the servers, in order.
    pub fn spawn_all(&self) -> Vec<Server> {
        let nats = &self.nats;
        std::thread::scope(|s| {
            let started: Vec<_> = self
                .nodes
                .iter()
                .map(|node| s.spawn(move || node.spawn(nats)))
                .collect();
            started.into_iter().map(|h| h.join().unwrap()).collect()
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
        self.cli(&["token", "create", "--role", role, "--name", name])
    }

    /// Runs the real CLI (`vigil ARGS… --data-dir DIR/cli` and the cluster's flags) against
    /// the cluster's shared state; its standard output, trimmed. Panics unless it succeeds.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = super::vigil();
        cmd.args(args)
            .arg("--data-dir")
            .arg(self.dir.path().join("cli"))
            .args(cluster_flags(&self.nats, CLUSTER, false));
        super::run_ok(&mut cmd).trim().to_owned()
    }
}

/// The logs of `servers`, one after another.
pub fn logs<'a>(servers: impl IntoIterator<Item = &'a Server>) -> String {
    servers
        .into_iter()
        .map(Server::log)
        .collect::<Vec<_>>()
        .join("\n-----\n")
}
