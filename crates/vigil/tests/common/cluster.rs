//! Cluster-mode helpers for the `cluster_*` tests: the flags that make `vigil serve` a node of
//! a test NATS cluster, one node on a fixed HTTP port that can be killed and started again,
//! and each shard's lease as an outside observer sees it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use vigil_cluster::lease::LeaseValue;
use vigil_cluster::testing::NatsCluster;
use vigil_cluster::{Cluster, ClusterSettings, Names, Shard};

use super::Server;

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
