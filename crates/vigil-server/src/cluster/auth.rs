//! Accounts, API tokens and browser sessions shared through JetStream KV: the
//! [`vigil_auth::SharedKv`] trait over a KV bucket, and the watch that keeps this node's
//! snapshot of the accounts and tokens current.
//!
//! `vigil-auth` is synchronous (its callers run on blocking threads or at start-up); a
//! [`KvBucket`] waits for NATS on the runtime that owns the connection, bounded by
//! [`KV_TIMEOUT`]. On a worker thread of a multi-threaded runtime it first tells the runtime
//! that the thread blocks (`block_in_place`), so other tasks move to other workers.
//!
//! Keys a bucket answered "absent" for are remembered for a few seconds
//! ([`super::negative::NegativeCache`]): a repeated unknown token or session costs one read
//! per TTL, not one per request; written keys are forgotten at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::watch;
use vigil_auth::{SharedAuth, SharedKv, StoreError};
use vigil_cluster::auth::AuthBuckets;

use super::negative::NegativeCache;

/// The longest one call to a bucket may wait.
pub const KV_TIMEOUT: Duration = Duration::from_secs(5);

/// One JetStream KV bucket as `vigil-auth` uses it.
pub struct KvBucket {
    store: kv::Store,
    handle: Handle,
    negative: Arc<NegativeCache>,
}

impl KvBucket {
    /// The bucket, waited on through `handle` (the runtime its connection runs on).
    pub fn new(store: kv::Store, handle: Handle) -> KvBucket {
        KvBucket::with_cache(store, handle, Arc::default())
    }

    /// The bucket, remembering absent keys in `negative`.
    pub fn with_cache(store: kv::Store, handle: Handle, negative: Arc<NegativeCache>) -> KvBucket {
        KvBucket {
            store,
            handle,
            negative,
        }
    }

    /// The keys this bucket found absent a moment ago.
    pub fn negative(&self) -> &Arc<NegativeCache> {
        &self.negative
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
        if self.negative.is_absent(key) {
            return Ok(None);
        }
        let found = self.read(key)?;
        if found.is_none() {
            self.negative.remember(key);
        }
        Ok(found)
    }

    fn create(&self, key: &str, value: Vec<u8>) -> Result<Option<u64>, StoreError> {
        self.negative.forget(key);
        self.run("creating", async {
            match self.store.create(key, value.into()).await {
                Ok(revision) => Ok(Some(revision)),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
                Err(e) => Err(failed(key, e)),
            }
        })
    }

    fn update(&self, key: &str, value: Vec<u8>, revision: u64) -> Result<Option<u64>, StoreError> {
        self.negative.forget(key);
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
        self.negative.forget(key);
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

impl KvBucket {
    /// One read from the bucket (no cache).
    fn read(&self, key: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
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
}

/// The shared store over the cluster's authentication buckets.
pub fn shared_auth(buckets: AuthBuckets, handle: Handle) -> Arc<SharedAuth> {
    shared_auth_cached(buckets, handle, Arc::default()).0
}

/// The shared store over the cluster's authentication buckets, with the negative cache of
/// the auth bucket (`auth_absent`, which the accounts watch updates) and of the sessions
/// bucket (returned).
pub fn shared_auth_cached(
    buckets: AuthBuckets,
    handle: Handle,
    auth_absent: Arc<NegativeCache>,
) -> (Arc<SharedAuth>, Arc<NegativeCache>) {
    let sessions_absent = Arc::new(NegativeCache::default());
    let shared = Arc::new(SharedAuth::new(
        Arc::new(KvBucket::with_cache(
            buckets.auth,
            handle.clone(),
            auth_absent,
        )),
        Arc::new(KvBucket::with_cache(
            buckets.sessions,
            handle,
            Arc::clone(&sessions_absent),
        )),
    ));
    (shared, sessions_absent)
}

/// Keeps `shared`'s snapshot current: watches every key of the auth bucket (its current values
/// first, then each change) until `stop`, starting again after a pause when the watch ends. A
/// key written on any node is forgotten by `absent` (a token created elsewhere works at once).
pub async fn watch_accounts(
    shared: Arc<SharedAuth>,
    bucket: kv::Store,
    absent: Arc<NegativeCache>,
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
                        if entry.operation == kv::Operation::Put {
                            absent.forget(&entry.key);
                        }
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
    /// Keys the auth bucket answered "absent" for a moment ago (unknown token ids).
    pub absent: Arc<NegativeCache>,
    /// Keys the sessions bucket answered "absent" for a moment ago (unknown sessions).
    pub sessions_absent: Arc<NegativeCache>,
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
        let absent = Arc::new(NegativeCache::default());
        let (shared, sessions_absent) =
            shared_auth_cached(buckets, Handle::current(), Arc::clone(&absent));
        let loading = Arc::clone(&shared);
        tokio::task::spawn_blocking(move || loading.load_snapshot())
            .await
            .map_err(|e| vigil_cluster::ClusterError::JetStream(e.to_string()))?
            .map_err(|e| vigil_cluster::ClusterError::JetStream(e.to_string()))?;
        Ok(ClusterAuth {
            cluster,
            shared,
            bucket,
            absent,
            sessions_absent,
        })
    }
}
