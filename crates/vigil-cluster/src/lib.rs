//! Cluster mode on NATS JetStream (DESIGN §8, docs/cluster.md).
//!
//! Vigil does no consensus or replication of its own: every node accepts ingest and publishes
//! each accepted batch to one JetStream stream, replicated across the NATS cluster (R3, file
//! storage, `sync_interval: always`), and answers its sender only after JetStream's publish
//! ack. The stream's subjects are split into partitions ([`Shard`]) by a stable key
//! ([`partition::partition_of`]); each partition is owned by one node at a time through a lease
//! in a JetStream KV bucket, and the owner keeps that partition's ledger shard and index on its
//! disk. Vigil's own events (audit, alerts, triage, bans) go to the system partition, which
//! every node follows to keep the alert book and the ban book the same everywhere.
//!
//! This crate holds what every part of cluster mode shares: the names ([`names`]), the message
//! layout ([`codec`]), the partitioning ([`partition`]), the connection with its start-up
//! checks ([`Cluster::connect`]), the leases with their fencing ([`lease`]), how shards
//! spread over the live nodes ([`balance`]), the buckets of shared accounts, tokens and
//! sessions ([`auth`]), and the detector partitions' behaviour-rule checkpoints ([`behaviour`]).

pub mod auth;
pub mod balance;
pub mod behaviour;
pub mod codec;
mod connect;
mod consume;
pub mod detector;
pub mod follow;
pub mod lease;
pub mod names;
pub mod partition;
pub mod retention;
#[doc(hidden)]
pub mod testing;

use std::path::PathBuf;
use std::time::Duration;

pub use connect::{Cluster, SyncCheck};
pub use consume::ShardMessage;
pub use names::{Names, Shard};
use serde::{Deserialize, Serialize};

/// How long a lease (partition ownership, the detector, a node's registration) lives unless
/// renewed. An owner stops writing a bit before its lease could have expired anywhere.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(6);

/// The cluster part of a node's configuration, resolved (the node's name chosen).
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// NATS server URLs.
    pub urls: Vec<String>,
    /// A NATS credentials file.
    pub creds: Option<PathBuf>,
    /// This node's name.
    pub node: String,
    /// The cluster's names.
    pub names: Names,
    /// Data partitions (the system partition comes on top).
    pub partitions: u32,
    /// JetStream replicas of the stream and buckets.
    pub replicas: usize,
    /// NATS monitoring endpoints to check `sync_always` on.
    pub monitor: Vec<String>,
    /// How long leases live unless renewed.
    pub lease_ttl: Duration,
}

impl ClusterSettings {
    /// The settings of `[cluster]`, or `None` when cluster mode is off. The node's name
    /// defaults to the host name.
    pub fn from_section(section: &vigil_config::ClusterSection) -> Option<ClusterSettings> {
        if !section.enabled() {
            return None;
        }
        let node = section.node.clone().unwrap_or_else(host_name);
        Some(ClusterSettings {
            urls: section
                .nats
                .iter()
                .map(|u| u.reveal().to_string())
                .collect(),
            creds: section.creds.clone(),
            node,
            names: Names::new(&section.name),
            partitions: section.partitions,
            replicas: section.replicas,
            monitor: section
                .monitor
                .iter()
                .map(|u| u.reveal().to_string())
                .collect(),
            lease_ttl: DEFAULT_LEASE_TTL,
        })
    }

    /// Every shard of the cluster.
    pub fn shards(&self) -> Vec<Shard> {
        Shard::all(self.partitions).collect()
    }
}

/// The host name (letters, digits, `-`, `_` kept; anything else becomes `-`), or `node`.
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() { "node".into() } else { name }
}

/// What a node says about itself in the nodes bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's name.
    pub node: String,
    /// Its HTTP API address, if it serves one (`http://127.0.0.1:8080`).
    pub http: Option<String>,
    /// When it started (RFC 3339).
    pub started: String,
    /// Vigil's version.
    pub version: String,
}

/// What went wrong in cluster mode.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The NATS servers could not be reached or refused the connection.
    #[error("cannot connect to NATS ({urls}): {message}")]
    Connect {
        /// The URLs tried (without credentials).
        urls: String,
        /// Why.
        message: String,
    },
    /// JetStream refused or failed a request.
    #[error("JetStream: {0}")]
    JetStream(String),
    /// The stream or the NATS servers are not configured as cluster mode requires.
    #[error("unsafe NATS configuration: {0}")]
    Unsafe(String),
    /// The existing stream was created with other settings that cannot change.
    #[error("the cluster's stream does not match this node's settings: {0}")]
    Mismatch(String),
    /// A message did not decode.
    #[error("message does not decode: {0}")]
    Codec(#[from] codec::CodecError),
}

impl ClusterError {
    /// Whether retrying the same request later can succeed (a publish that timed out, a
    /// leader election), as opposed to a configuration that must change.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ClusterError::Connect { .. } | ClusterError::JetStream(_)
        )
    }
}
