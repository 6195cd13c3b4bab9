//! Accounts, API tokens and browser sessions shared through JetStream KV: the
//! [`vigil_auth::SharedKv`] trait over a KV bucket, and the watch that keeps this node's
//! snapshot of the accounts and tokens current.
//!
//! `vigil-auth` is synchronous (its callers run on blocking threads or at start-up); a
//! [`KvBucket`] waits for NATS on the runtime that owns the connection, bounded by
//! [`KV_TIMEOUT`]. On a worker thread of a multi-threaded runtime it first tells the runtime
//! that the thread blocks (`block_in_place`), so other tasks move to other workers.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::watch;
use vigil_auth::{SharedAuth, SharedKv, StoreError};
use vigil_cluster::auth::AuthBuckets;

/// The longest one call to a bucket may wait.
pub const KV_TIMEOUT: Duration = Duration::from_secs(5);

/// One JetStream KV bucket as `vigil-auth` uses it.
pub struct KvBucket {
    store: kv::Store,
    handle: Handle,
}

impl KvBucket {
    /// The bucket, waited on through `handle` (the runtime its connection runs on).
    pub fn new(store: kv::Store, handle: Handle) -> KvBucket {
        KvBucket { store, handle }
    }

    fn run<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let bounded = async {
            tokio::time::timeout(KV_TIMEOUT, call)
                .await
                .map_err(|_| StoreError::Shared(format!("{what}: no answer within 5 s")))?
        };
        match Handle::try_current() {
            Ok(current) if current.runtime_flavor() == RuntimeFlavor::CurrentThread => {
                Err(StoreError::Shared(format!(
                    "{what}: cannot wait for the cluster on a single-threaded runtime"
                )))
            }
            Ok(_) => tokio::task::block_in_place(|| self.handle.block_on(bounded)),
            Err(_) => self.handle.block_on(bounded),
        }
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Shared(format!("{what}: {e}"))
}

impl SharedKv for KvBucket {
    /// Read from the stream's leader, not with a direct get (which any replica may answer, a
    /// lagging one with a value already replaced): a logout or a revocation acknowledged on one
    /// node is what every node reads next.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        self.run("reading", async {
            let subject = format!("{}{key}", self.store.prefix);
            match self.store.stream.get_last_raw_message_by_subject(&subject).await {
                Ok(message) => {
                    let operation = message
                        .headers
                        .get("KV-Operation")
                        .map(|v| v.as_str().to_owned());
                    match operation.as_deref() {
                        Some("DEL") | Some("PURGE") => Ok(None),
                        _ => Ok(Some((message.payload.to_vec(), message.sequence))),
                    }
                }
                Err(e)
                    if e.kind()
                        == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
                {
                    Ok(None)
                }
                Err(e) => Err(failed(key, e)),
            }
        })
    }

    fn create(&self, key: &str, value: Vec<u8>) -> Result<Option<u64>, StoreError> {
        self.run("creating", async {
            match self.store.create(key, value.into()).await {
                Ok(revision) => Ok(Some(revision)),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
                Err(e) => Err(failed(key, e)),
            }
        })
    }

    fn update(&self, key: &str, value: Vec<u8>, revision: u64) -> Result<Option<u64>, StoreError> {
        self.run("updating", async {
            match self.store.update(key, value.into(), revision).await {
                Ok(revision) => Ok(Some(revision)),
                Err(e) => {
                    // A moved revision is refused like any publish error: tell it apart by
                    // reading the key's revision now.
                    let now = self.store.entry(key).await.map_err(|e| failed(key, e))?;
                    match now {
                        Some(entry) if entry.revision == revision => Err(failed(key, e)),
                        _ => Ok(None),
                    }
                }
            }
        })
    }

    fn put(&self, key: &str, value: Vec<u8>) -> Result<u64, StoreError> {
        self.run("writing", async {
            self.store
                .put(key, value.into())
                .await
                .map_err(|e| failed(key, e))
        })
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.run("deleting", async {
            self.store.delete(key).await.map_err(|e| failed(key, e))
        })
    }

    fn keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        self.run("listing", async {
            let mut keys = self.store.keys().await.map_err(|e| failed(prefix, e))?;
            let mut out = Vec::new();
            while let Some(key) = keys.next().await {
                let key = key.map_err(|e| failed(prefix, e))?;
                if key.starts_with(prefix) {
                    if out.len() == limit {
                        return Err(StoreError::Shared(format!(
                            "more than {limit} entries {prefix}*"
                        )));
                    }
                    out.push(key);
                }
            }
            Ok(out)
        })
    }
}

/// The shared store over the cluster's authentication buckets.
pub fn shared_auth(buckets: AuthBuckets, handle: Handle) -> Arc<SharedAuth> {
    Arc::new(SharedAuth::new(
        Arc::new(KvBucket::new(buckets.auth, handle.clone())),
        Arc::new(KvBucket::new(buckets.sessions, handle)),
    ))
}

/// Keeps `shared`'s snapshot current: watches every key of the auth bucket (its current values
/// first, then each change) until `stop`, starting again after a pause when the watch ends.
pub async fn watch_accounts(
    shared: Arc<SharedAuth>,
    bucket: kv::Store,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match bucket.watch_with_history(">").await {
            Ok(mut changes) => loop {
                let next = tokio::select! {
                    next = changes.next() => next,
                    _ = stop.changed() => return,
                };
                match next {
                    Some(Ok(entry)) => {
                        let value = (entry.operation == kv::Operation::Put).then_some(&entry.value);
                        shared.apply(&entry.key, value.map(|v| v.as_ref()), entry.revision);
                    }
                    Some(Err(e)) => {
                        tracing::warn!("watching the cluster's accounts: {e}");
                        break;
                    }
                    None => break,
                }
            },
            Err(e) => tracing::warn!("watching the cluster's accounts: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// A node's shared accounts: the cluster connection, the shared store and the bucket its
/// watch follows.
#[derive(Clone)]
pub struct ClusterAuth {
    /// The node's connection to the cluster.
    pub cluster: vigil_cluster::Cluster,
    /// Accounts, tokens and sessions.
    pub shared: Arc<SharedAuth>,
    /// The auth bucket (watched).
    pub bucket: kv::Store,
}

impl ClusterAuth {
    /// Opens the cluster's authentication buckets (creating them on the cluster's first start)
    /// and fills this node's snapshot of the accounts and tokens.
    pub async fn open(
        cluster: vigil_cluster::Cluster,
        session_max: Duration,
    ) -> Result<ClusterAuth, vigil_cluster::ClusterError> {
        let buckets = cluster.auth_buckets(session_max).await?;
        let bucket = buckets.auth.clone();
        let shared = shared_auth(buckets, Handle::current());
        let loading = Arc::clone(&shared);
        tokio::task::spawn_blocking(move || loading.load_snapshot())
            .await
            .map_err(|e| vigil_cluster::ClusterError::JetStream(e.to_string()))?
            .map_err(|e| vigil_cluster::ClusterError::JetStream(e.to_string()))?;
        Ok(ClusterAuth {
            cluster,
            shared,
            bucket,
        })
    }
}
