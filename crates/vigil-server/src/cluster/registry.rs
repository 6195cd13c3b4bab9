//! The node registry: each node registers its [`NodeInfo`] in the cluster's `nodes` bucket
//! under its name, renews it every third of the lease TTL (an entry not renewed expires), and
//! deletes it on a clean stop.
//!
//! Two processes with one node name would split one node's shards between them: a node whose
//! name is registered and RENEWED by another process refuses to start. A registration that is
//! not renewed (the same node killed with `kill -9` a moment ago) is waited out: it expires, or
//! is taken over once a whole TTL passed without a renewal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{CreateErrorKind, UpdateErrorKind};
use bytes::Bytes;
use tokio::sync::{Mutex, watch};
use vigil_cluster::{Cluster, NodeInfo};

/// How often a registration that exists is looked at while waiting for it to expire.
const POLL: Duration = Duration::from_millis(250);

/// Why a node could not register.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Another live process runs under this node's name.
    #[error(
        "another process is running as node {node:?} (its registration was renewed while this one waited); \
         give every node a unique name with --node"
    )]
    NameTaken {
        /// The name.
        node: String,
    },
    /// The bucket could not be read or written.
    #[error("node registry: {0}")]
    Bucket(String),
}

/// This node's registration: renewed by a task until [`Registration::leave`].
pub struct Registration {
    cluster: Cluster,
    revision: Arc<Mutex<u64>>,
    stop: watch::Sender<bool>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Registration {
    /// Registers `info` under this node's name (see the module comment), then renews it every
    /// third of the lease TTL.
    pub async fn join(cluster: &Cluster, info: &NodeInfo) -> Result<Registration, RegistryError> {
        let value = Bytes::from(
            serde_json::to_vec(info).map_err(|e| RegistryError::Bucket(e.to_string()))?,
        );
        let revision = register(cluster, value.clone()).await?;
        let revision = Arc::new(Mutex::new(revision));
        let (stop, stopped) = watch::channel(false);
        let renewer = tokio::spawn(renew(
            cluster.clone(),
            value,
            Arc::clone(&revision),
            stopped,
        ));
        Ok(Registration {
            cluster: cluster.clone(),
            revision,
            stop,
            renewer,
        })
    }

    /// Stops renewing and deletes the registration (a clean stop).
    pub async fn leave(self) {
        let _ = self.stop.send(true);
        let _ = self.renewer.await;
        let node = self.cluster.node().to_string();
        let revision = *self.revision.lock().await;
        let deleted = self
            .cluster
            .nodes()
            .delete_expect_revision(&node, Some(revision))
            .await;
        if let Err(e) = deleted {
            tracing::warn!("node registry: removing {node}: {e}");
        }
    }
}

/// Creates the entry; waits out one left by an earlier run of this node; refuses when another
/// process renews it.
async fn register(cluster: &Cluster, value: Bytes) -> Result<u64, RegistryError> {
    let node = cluster.node();
    let nodes = cluster.nodes();
    let ttl = cluster.settings().lease_ttl;
    let mut seen: Option<(u64, Instant)> = None;
    // A bucket created a moment ago may not answer yet ("no responders"): transient errors
    // are tried again for a while.
    let patience = Instant::now() + Duration::from_secs(30);
    let transient = |e: String| {
        if Instant::now() < patience {
            tracing::debug!("node registry: {e}; trying again");
            Ok(())
        } else {
            Err(RegistryError::Bucket(e))
        }
    };
    loop {
        match nodes.create(node, value.clone()).await {
            Ok(revision) => return Ok(revision),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {}
            Err(e) => {
                transient(e.to_string())?;
                tokio::time::sleep(POLL).await;
                continue;
            }
        }
        let entry = match nodes.entry(node).await {
            Ok(entry) => entry,
            Err(e) => {
                transient(e.to_string())?;
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        let Some(entry) = entry else {
            // Gone between the create and the read (expired or deleted): try again, not in a
            // tight loop against NATS.
            tokio::time::sleep(POLL).await;
            continue;
        };
        match seen {
            None => {
                tracing::info!(
                    "node {node} is registered already (an earlier run that did not stop cleanly, \
                     or another process); waiting up to {} s to see whether it is renewed",
                    ttl.as_secs()
                );
                seen = Some((entry.revision, Instant::now()));
            }
            Some((revision, _)) if revision != entry.revision => {
                return Err(RegistryError::NameTaken {
                    node: node.to_string(),
                });
            }
            Some((revision, since)) if since.elapsed() > ttl + ttl / 2 => {
                // Not renewed for longer than a renewer would wait: nobody holds it.
                return nodes
                    .update(node, value.clone(), revision)
                    .await
                    .map_err(|e| RegistryError::Bucket(e.to_string()));
            }
            Some(_) => {}
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Renews the entry every third of the TTL until stopped. A renewal refused because the entry
/// changed means another process took the name: said loudly, and the entry is taken back.
async fn renew(
    cluster: Cluster,
    value: Bytes,
    revision: Arc<Mutex<u64>>,
    mut stopped: watch::Receiver<bool>,
) {
    let every = cluster.settings().lease_ttl / 3;
    let node = cluster.node().to_string();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped.changed() => return,
        }
        let mut rev = revision.lock().await;
        match cluster.nodes().update(&node, value.clone(), *rev).await {
            Ok(next) => *rev = next,
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                tracing::error!(
                    "node registry: the registration of {node} was changed by another process \
                     (two nodes with one name?); registering again"
                );
                match cluster.nodes().put(&node, value.clone()).await {
                    Ok(next) => *rev = next,
                    Err(e) => tracing::warn!("node registry: renewing {node}: {e}"),
                }
            }
            Err(e) => tracing::warn!("node registry: renewing {node}: {e}"),
        }
    }
}
