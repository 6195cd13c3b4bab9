//! The cluster's health as this node sees it: `GET /api/v1/cluster` (the UI's Cluster page)
//! and the cluster gauges of `/metrics`.
//!
//! Read from the buckets and the stream, never from this node's memory alone: the live nodes
//! (the `nodes` bucket, whose entries expire unless renewed), each shard's lease (owner, epoch,
//! the last stream sequence the owner holds, its event count) against the shard's last stream
//! sequence (the owner's lag), and the detector's lease. Bounded: at most [`MAX_NODES`] nodes
//! are listed, every read waits at most [`READ_TIMEOUT`], and a report is reused for
//! [`REUSE`] so a busy page or scraper costs NATS little.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vigil_cluster::{Cluster, NodeInfo, Shard};

/// Nodes listed at most.
pub const MAX_NODES: usize = 1000;
/// The longest one read of the health report waits.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a report is reused.
pub const REUSE: Duration = Duration::from_secs(1);

/// A lease as the leases bucket holds it (`vigil_cluster::lease::LeaseValue`'s shape).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The owner.
    pub node: String,
    /// Increases each time the lease changes hands.
    #[serde(default)]
    pub epoch: u64,
    /// The last stream sequence the owner holds in its shard.
    #[serde(default)]
    pub applied: u64,
    /// The shard's event count.
    #[serde(default)]
    pub events: u64,
}

/// One shard's line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardHealth {
    /// `p0`…, `sys`.
    pub shard: String,
    /// Its owner, if any holds the lease.
    pub owner: Option<String>,
    /// The lease's epoch.
    pub epoch: Option<u64>,
    /// The last stream sequence the owner holds.
    pub applied: Option<u64>,
    /// The shard's event count.
    pub events: Option<u64>,
    /// The last stream sequence of the shard's subject (0 when it has none).
    pub stream_last_seq: u64,
    /// How far the owner is behind (`None` with no owner).
    pub lag: Option<u64>,
}

/// What `GET /api/v1/cluster` answers in cluster mode.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// This node.
    pub node: String,
    /// The cluster's name.
    pub cluster: String,
    /// Whether this node's NATS connection is up.
    pub connected: bool,
    /// What the start-up check found about the NATS servers' fsync setting.
    pub sync_check: vigil_cluster::SyncCheck,
    /// Nodes: live ones (registered) and those only named as a lease's owner (`alive: false`).
    pub nodes: Vec<Value>,
    /// Every shard.
    pub shards: Vec<ShardHealth>,
    /// The detector: `{"owner", "partitions"}` — with one detector partition the owner of
    /// the `detector` lease; with `K` > 1, `owner` null and `partitions` a list of
    /// `{"partition", "owner", "epoch"}`, one per `detector.<k>` lease.
    pub detector: Value,
    /// Witness state: filled by [`cluster_health`] from the node's own witness submitters
    /// (empty in the cached report).
    pub witnesses: Vec<Value>,
    /// Reads that failed while building the report (the rest is still shown).
    pub errors: Vec<String>,
}

impl Report {
    /// The shards this node owns.
    pub fn shards_owned(&self) -> usize {
        self.shards
            .iter()
            .filter(|s| s.owner.as_deref() == Some(self.node.as_str()))
            .count()
    }

    /// The gauges of `/metrics`: `vigil_cluster_connected`, `vigil_cluster_shards_owned` and
    /// `vigil_cluster_shard_lag{shard}` (owned shards only: the owner reports its lag).
    pub fn metrics(&self) -> String {
        let mut text = format!(
            "# HELP vigil_cluster_connected 1 while this node's NATS connection is up.\n\
             # TYPE vigil_cluster_connected gauge\nvigil_cluster_connected {}\n\
             # HELP vigil_cluster_shards_owned Shards whose lease this node holds.\n\
             # TYPE vigil_cluster_shards_owned gauge\nvigil_cluster_shards_owned {}\n\
             # HELP vigil_cluster_shard_lag Stream messages of an owned shard not yet in its ledger.\n\
             # TYPE vigil_cluster_shard_lag gauge\n",
            u8::from(self.connected),
            self.shards_owned()
        );
        for s in &self.shards {
            if s.owner.as_deref() == Some(self.node.as_str()) {
                text.push_str(&format!(
                    "vigil_cluster_shard_lag{{shard=\"{}\"}} {}\n",
                    s.shard,
                    s.lag.unwrap_or(0)
                ));
            }
        }
        text
    }
}

/// A report reused for [`REUSE`].
#[derive(Default)]
pub struct HealthCache(Mutex<Option<(Instant, Report)>>);

impl HealthCache {
    /// The cluster's health, read again when the last report is older than [`REUSE`].
    pub async fn report(&self, cluster: &Cluster) -> Report {
        if let Ok(cached) = self.0.lock()
            && let Some((at, report)) = cached.as_ref()
            && at.elapsed() < REUSE
        {
            return report.clone();
        }
        let report = read(cluster).await;
        if let Ok(mut cached) = self.0.lock() {
            *cached = Some((Instant::now(), report.clone()));
        }
        report
    }
}

async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    errors: &mut Vec<String>,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Option<T> {
    match tokio::time::timeout(READ_TIMEOUT, call).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            errors.push(format!("{what}: {e}"));
            None
        }
        Err(_) => {
            errors.push(format!("{what}: no answer within {READ_TIMEOUT:?}"));
            None
        }
    }
}

/// Reads the live nodes (at most [`MAX_NODES`]).
async fn live_nodes(cluster: &Cluster, errors: &mut Vec<String>) -> BTreeMap<String, NodeInfo> {
    let mut nodes = BTreeMap::new();
    let keys = async {
        let mut keys = cluster.nodes().keys().await.map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(key) = keys.next().await {
            out.push(key.map_err(|e| e.to_string())?);
            if out.len() >= MAX_NODES {
                break;
            }
        }
        Ok::<_, String>(out)
    };
    for key in bounded("nodes", errors, keys).await.unwrap_or_default() {
        let value = bounded("nodes", errors, cluster.nodes().get(key.as_str())).await;
        match value
            .flatten()
            .map(|v| serde_json::from_slice::<NodeInfo>(&v))
        {
            Some(Ok(info)) => {
                nodes.insert(key, info);
            }
            Some(Err(e)) => errors.push(format!("node {key}: {e}")),
            None => {}
        }
    }
    nodes
}

async fn lease(cluster: &Cluster, key: &str, errors: &mut Vec<String>) -> Option<Lease> {
    let value = bounded("leases", errors, cluster.leases().get(key))
        .await
        .flatten()?;
    match serde_json::from_slice::<Lease>(&value) {
        Ok(lease) => Some(lease),
        Err(e) => {
            errors.push(format!("lease {key}: {e}"));
            None
        }
    }
}

/// The cluster's detector partitions as recorded in the state bucket (1 without a record or
/// with one that does not parse: `vigil serve` refuses to start on such a record anyway).
async fn detector_partitions(cluster: &Cluster, errors: &mut Vec<String>) -> u32 {
    let key = super::detector_partitions::KEY;
    bounded("state", errors, cluster.state().get(key))
        .await
        .flatten()
        .and_then(|v| String::from_utf8_lossy(&v).trim().parse::<u32>().ok())
        .filter(|k| (1..=vigil_detect::partition::MAX_PARTITIONS).contains(k))
        .unwrap_or(1)
}

/// Reads the report from the buckets and the stream.
pub async fn read(cluster: &Cluster) -> Report {
    let mut errors = Vec::new();
    let settings = cluster.settings();
    let live = live_nodes(cluster, &mut errors).await;
    let mut shards = Vec::new();
    for shard in settings.shards() {
        shards.push(shard_health(cluster, shard, &mut errors).await);
    }
    let count = detector_partitions(cluster, &mut errors).await;
    let mut holders = Vec::new();
    let detector = if count <= 1 {
        let d = lease(cluster, "detector", &mut errors).await;
        holders.extend(d.iter().map(|d| d.node.clone()));
        json!({"owner": d.map(|d| d.node), "partitions": 1})
    } else {
        let mut parts = Vec::new();
        for k in 0..count {
            let d = lease(cluster, &format!("detector.{k}"), &mut errors).await;
            holders.extend(d.iter().map(|d| d.node.clone()));
            parts.push(
                json!({"partition": k, "owner": d.as_ref().map(|d| d.node.clone()),
                "epoch": d.map(|d| d.epoch)}),
            );
        }
        json!({"owner": null, "partitions": parts})
    };
    let mut nodes: Vec<Value> = live
        .values()
        .map(|n| json!({"node": n.node, "http": n.http, "started": n.started, "version": n.version, "alive": true}))
        .collect();
    let owners = shards.iter().filter_map(|s| s.owner.clone()).chain(holders);
    let mut gone: Vec<String> = owners.filter(|o| !live.contains_key(o)).collect();
    gone.sort();
    gone.dedup();
    nodes.extend(gone.into_iter().map(|node| {
        json!({"node": node, "http": null, "started": null, "version": null, "alive": false})
    }));
    Report {
        node: cluster.node().to_owned(),
        cluster: settings.names.cluster().to_owned(),
        connected: cluster.client().connection_state() == async_nats::connection::State::Connected,
        sync_check: cluster.sync_check(),
        nodes,
        shards,
        detector,
        witnesses: Vec::new(),
        errors,
    }
}

async fn shard_health(cluster: &Cluster, shard: Shard, errors: &mut Vec<String>) -> ShardHealth {
    let name = shard.to_string();
    let lease = lease(cluster, &name, errors).await;
    let subject = cluster.settings().names.shard_subject(shard);
    let last = tokio::time::timeout(
        READ_TIMEOUT,
        cluster
            .stream()
            .direct_get_last_for_subject(subject.as_str()),
    )
    .await;
    let stream_last_seq = match last {
        Ok(Ok(message)) => message.sequence,
        Ok(Err(e)) if e.kind() == async_nats::jetstream::stream::DirectGetErrorKind::NotFound => 0,
        Ok(Err(e)) => {
            errors.push(format!("stream {name}: {e}"));
            0
        }
        Err(_) => {
            errors.push(format!("stream {name}: no answer within {READ_TIMEOUT:?}"));
            0
        }
    };
    ShardHealth {
        shard: name,
        lag: lease
            .as_ref()
            .map(|l| stream_last_seq.saturating_sub(l.applied)),
        owner: lease.as_ref().map(|l| l.node.clone()),
        epoch: lease.as_ref().map(|l| l.epoch),
        applied: lease.as_ref().map(|l| l.applied),
        events: lease.as_ref().map(|l| l.events),
        stream_last_seq,
    }
}

/// `GET /api/v1/cluster`: the report with `"mode": "cluster"`, or `{"mode": "standalone"}`.
pub async fn cluster_health(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<crate::http::AppState>>,
) -> axum::Json<Value> {
    let Some(cluster) = &state.cluster else {
        return axum::Json(json!({"mode": "standalone"}));
    };
    let mut body = serde_json::to_value(state.cluster_health.report(cluster).await)
        .unwrap_or_else(|e| json!({"errors": [e.to_string()]}));
    body["mode"] = json!("cluster");
    // The witness state of the shards this node owns (or owned since its start): per shard
    // and witness node, the size last cosigned and any rollback it reports. Each node knows
    // its own shards' witnesses; ask a node for its shards.
    body["witnesses"] = state
        .witness
        .status
        .witnesses()
        .into_iter()
        .map(|(witness, v)| {
            json!({"node": cluster.node(), "witness": witness,
                   "cosigned_size": v.cosigned_size, "rollback": v.rollback})
        })
        .collect();
    axum::Json(body)
}
