//! Connecting to NATS, creating (or checking) the stream and buckets, and the start-up checks
//! of what JetStream must guarantee for an ack to mean "stored".

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;

use crate::{ClusterError, ClusterSettings, Shard};

/// The stream metadata key holding the number of data partitions (fixed at creation).
const PARTITIONS_METADATA: &str = "vigil.partitions";
/// JetStream's window for `Nats-Msg-Id` de-duplication: a node retrying a publish within it
/// stores the batch once.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long one publish may wait for JetStream's ack before the sender is told to retry.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the NATS servers were seen to fsync every write (`sync_interval: always`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncCheck {
    /// Every monitoring endpoint given reported `sync_always`.
    Verified {
        /// How many servers were checked.
        servers: usize,
    },
    /// No monitoring endpoint was given: the setting could not be checked from a client.
    Unverified,
}

/// A node's connection to the cluster: the NATS client, JetStream, the event stream and the
/// shared buckets.
#[derive(Clone)]
pub struct Cluster {
    settings: ClusterSettings,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream: stream::Stream,
    leases: kv::Store,
    nodes: kv::Store,
    state: kv::Store,
    sync: SyncCheck,
    retention: Vec<String>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.settings.node)
            .field("cluster", &self.settings.names.cluster())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects, checks the NATS servers' `sync_always` on the monitoring endpoints given,
    /// and creates the stream and buckets (or checks the existing ones: replicas, file
    /// storage, partitions).
    pub async fn connect(settings: ClusterSettings) -> Result<Cluster, ClusterError> {
        let (sync, monitored) = check_sync(&settings.monitor).await?;
        let client = nats_client(
            &settings,
            format!("vigil/{}/{}", settings.names.cluster(), settings.node),
            None,
        )
        .await?;
        let jetstream = jetstream::new(client.clone());
        let (js, s) = (&jetstream, &settings);
        let (stream, retention) = while_starting(|| ensure_stream(js, s)).await?;
        check_monitored(&stream, &monitored)?;
        let ttl = Some(settings.lease_ttl);
        let leases =
            while_starting(|| ensure_bucket(js, s, settings.names.leases_bucket(), ttl)).await?;
        let nodes =
            while_starting(|| ensure_bucket(js, s, settings.names.nodes_bucket(), ttl)).await?;
        let state =
            while_starting(|| ensure_bucket(js, s, settings.names.state_bucket(), None)).await?;
        Ok(Cluster {
            settings,
            client,
            jetstream,
            stream,
            leases,
            nodes,
            state,
            sync,
            retention,
        })
    }

    /// The settings this node runs with.
    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.settings.node
    }

    /// The NATS client (request/reply between nodes).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// JetStream.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// The event stream.
    pub fn stream(&self) -> &stream::Stream {
        &self.stream
    }

    /// The leases bucket (entries expire after the lease TTL unless renewed).
    pub fn leases(&self) -> &kv::Store {
        &self.leases
    }

    /// The live nodes bucket (entries expire after the lease TTL unless renewed).
    pub fn nodes(&self) -> &kv::Store {
        &self.nodes
    }

    /// The shared state bucket (entries do not expire).
    pub fn state(&self) -> &kv::Store {
        &self.state
    }

    /// What the start-up check found about the servers' fsync setting.
    pub fn sync_check(&self) -> SyncCheck {
        self.sync
    }

    /// What the stream's limits may discard (warnings; empty when it keeps everything, as Vigil
    /// creates it). See [`crate::retention`].
    pub fn retention_warnings(&self) -> &[String] {
        &self.retention
    }

    /// The stream's first stored sequence now (0 when it is empty): what a copy starting after
    /// an older sequence can no longer read.
    pub async fn first_available_seq(&self) -> Result<u64, ClusterError> {
        let info = self
            .stream
            .clone()
            .info()
            .await
            .map_err(|e| ClusterError::JetStream(format!("stream info: {e}")))?
            .clone();
        Ok(info.state.first_sequence)
    }

    /// The largest message the servers accept.
    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    /// Publishes one message to `shard`'s subject and waits for JetStream's ack: the message
    /// is then stored on a majority of the stream's replicas. `msg_id` de-duplicates a retry
    /// within two minutes. Returns the stream sequence.
    pub async fn publish(
        &self,
        shard: Shard,
        payload: Bytes,
        msg_id: &str,
    ) -> Result<u64, ClusterError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id);
        let subject = self.settings.names.shard_subject(shard);
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|e| ClusterError::JetStream(e.to_string()))?;
        let ack = tokio::time::timeout(PUBLISH_TIMEOUT, ack)
            .await
            .map_err(|_| ClusterError::JetStream("no publish ack within 10 s".into()))?
            .map_err(|e| ClusterError::JetStream(e.to_string()))?;
        Ok(ack.sequence)
    }
}

/// A NATS connection for `settings` (its URLs and credentials), named `name`, with bounded
/// connection and request timeouts; `max_reconnects` bounds reconnection (`None`: forever, as a
/// server wants; a CLI command gives up).
pub(crate) async fn nats_client(
    settings: &ClusterSettings,
    name: String,
    max_reconnects: Option<usize>,
) -> Result<async_nats::Client, ClusterError> {
    let shown = settings
        .urls
        .iter()
        .map(|u| shown_url(u))
        .collect::<Vec<_>>()
        .join(", ");
    let connect_error = |message: String| ClusterError::Connect {
        urls: shown.clone(),
        message,
    };
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(10)))
        .max_reconnects(max_reconnects);
    if let Some(creds) = &settings.creds {
        options = options
            .credentials_file(creds)
            .await
            .map_err(|e| connect_error(format!("credentials {}: {e}", creds.display())))?;
    }
    let addrs = settings
        .urls
        .iter()
        .map(|u| u.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| connect_error(e.to_string()))?;
    options
        .connect(addrs)
        .await
        .map_err(|e| connect_error(e.to_string()))
}

/// The stream, created if missing; an existing one must match what cluster mode requires
/// (and what its limits may discard is returned as warnings).
/// How long start-up keeps asking JetStream to create or check the stream and buckets while it
/// does not answer: a NATS cluster that has just started (or lost a server) answers "request
/// timed out" until its JetStream meta leader is elected.
const STARTUP_PATIENCE: Duration = Duration::from_secs(30);

/// Runs `attempt` until it succeeds, fails for a reason other than JetStream not answering
/// (a refused configuration is final), or [`STARTUP_PATIENCE`] has passed.
async fn while_starting<T, F, Fut>(mut attempt: F) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClusterError>>,
{
    let deadline = tokio::time::Instant::now() + STARTUP_PATIENCE;
    loop {
        match attempt().await {
            Err(ClusterError::JetStream(why)) if tokio::time::Instant::now() < deadline => {
                tracing::warn!("cluster: JetStream not ready ({why}); trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            done => return done,
        }
    }
}

async fn ensure_stream(
    js: &jetstream::Context,
    settings: &ClusterSettings,
) -> Result<(stream::Stream, Vec<String>), ClusterError> {
    let name = settings.names.stream();
    let config = stream::Config {
        name: name.clone(),
        description: Some(format!(
            "Vigil cluster {}: accepted events by shard",
            settings.names.cluster()
        )),
        subjects: vec![settings.names.stream_subjects()],
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        duplicate_window: DUPLICATE_WINDOW,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        // Shards are rebuilt from the stream: a client must not remove what it holds.
        deny_delete: true,
        allow_direct: true,
        metadata: HashMap::from([(
            PARTITIONS_METADATA.to_string(),
            settings.partitions.to_string(),
        )]),
        ..Default::default()
    };
    let mut stream = js
        .get_or_create_stream(config)
        .await
        .map_err(|e| ClusterError::JetStream(format!("stream {name}: {e}")))?;
    let info = stream
        .info()
        .await
        .map_err(|e| ClusterError::JetStream(format!("stream {name}: {e}")))?;
    let c = &info.config;
    if c.storage != stream::StorageType::File {
        return Err(ClusterError::Unsafe(format!(
            "stream {name} keeps events in memory; it must use file storage"
        )));
    }
    if c.num_replicas < settings.replicas {
        return Err(ClusterError::Unsafe(format!(
            "stream {name} has {} replica(s); this node requires {}",
            c.num_replicas, settings.replicas
        )));
    }
    let partitions = c.metadata.get(PARTITIONS_METADATA).cloned();
    if partitions.as_deref() != Some(settings.partitions.to_string().as_str()) {
        return Err(ClusterError::Mismatch(format!(
            "stream {name} was created with {} partitions, this node is configured with {} \
             (partitions cannot change once events are stored)",
            partitions.as_deref().unwrap_or("an unknown number of"),
            settings.partitions
        )));
    }
    let retention = crate::retention::check(c)?;
    Ok((stream, retention))
}

/// A KV bucket, created if missing, with the stream's replicas and file storage.
pub(crate) async fn ensure_bucket(
    js: &jetstream::Context,
    settings: &ClusterSettings,
    bucket: String,
    ttl: Option<Duration>,
) -> Result<kv::Store, ClusterError> {
    if let Ok(store) = js.get_key_value(&bucket).await {
        check_bucket(&store, &bucket, settings).await?;
        return Ok(store);
    }
    let created = js
        .create_key_value(kv::Config {
            bucket: bucket.clone(),
            history: 1,
            max_age: ttl.unwrap_or_default(),
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            ..Default::default()
        })
        .await;
    match created {
        Ok(store) => Ok(store),
        // Another node created it at the same moment.
        Err(first) => js
            .get_key_value(&bucket)
            .await
            .map_err(|_| ClusterError::JetStream(format!("bucket {bucket}: {first}"))),
    }
}

/// An existing bucket must be what [`ensure_bucket`] would have created: file storage and
/// at least this node's replicas. (One made by hand, or by a run with fewer replicas, would
/// keep accounts, cursors and lease epochs where one machine's loss or a restart loses them:
/// a lost epoch record lets alert ids repeat.)
async fn check_bucket(
    store: &kv::Store,
    bucket: &str,
    settings: &ClusterSettings,
) -> Result<(), ClusterError> {
    let status = store
        .status()
        .await
        .map_err(|e| ClusterError::JetStream(format!("bucket {bucket}: {e}")))?;
    let c = &status.info.config;
    if c.storage != stream::StorageType::File {
        return Err(ClusterError::Unsafe(format!(
            "bucket {bucket} keeps its entries in memory; it must use file storage (recreate it \
             with file storage, copying its entries over)"
        )));
    }
    if c.num_replicas < settings.replicas {
        return Err(ClusterError::Unsafe(format!(
            "bucket {bucket} has {} replica(s); this node requires {}",
            c.num_replicas, settings.replicas
        )));
    }
    Ok(())
}

/// With monitoring endpoints given, every NATS server holding a replica of the stream must be
/// among them: `sync_always` checked on one server says nothing of the others, and an
/// endpoint of a server outside the stream's group checks nothing at all.
fn check_monitored(
    stream: &stream::Stream,
    monitored: &BTreeSet<String>,
) -> Result<(), ClusterError> {
    if monitored.is_empty() {
        return Ok(());
    }
    let info = stream.cached_info();
    let peers: BTreeSet<String> = info
        .cluster
        .iter()
        .flat_map(|c| {
            c.leader
                .iter()
                .cloned()
                .chain(c.replicas.iter().map(|p| p.name.clone()))
        })
        .collect();
    let unchecked: Vec<&String> = peers.difference(monitored).collect();
    if unchecked.is_empty() {
        return Ok(());
    }
    Err(ClusterError::Unsafe(format!(
        "stream {} has replicas on NATS server(s) {} whose fsync setting is not checked: give \
         every server's monitoring endpoint with --cluster-monitor (checked: {})",
        info.config.name,
        unchecked
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        monitored
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// Each monitoring endpoint's `/varz` must report `jetstream.config.sync_always`. Returns the
/// check and the names of the servers checked (`server_name`).
async fn check_sync(monitor: &[String]) -> Result<(SyncCheck, BTreeSet<String>), ClusterError> {
    if monitor.is_empty() {
        return Ok((SyncCheck::Unverified, BTreeSet::new()));
    }
    let mut names = BTreeSet::new();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| ClusterError::Unsafe(format!("cannot check the NATS servers: {e}")))?;
    for url in monitor {
        let varz = format!("{}/varz", url.trim_end_matches('/'));
        let body: serde_json::Value = client
            .get(&varz)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| ClusterError::Unsafe(format!("cannot read {}: {e}", shown_url(&varz))))?
            .json()
            .await
            .map_err(|e| ClusterError::Unsafe(format!("{}: {e}", shown_url(&varz))))?;
        let sync_always = body
            .pointer("/jetstream/config/sync_always")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if !sync_always {
            return Err(ClusterError::Unsafe(format!(
                "the NATS server at {} does not fsync every write: set `sync_interval: always` \
                 in its jetstream block (its default, two minutes, can lose acknowledged events \
                 on a power failure)",
                shown_url(url)
            )));
        }
        if let Some(name) = body.get("server_name").and_then(|v| v.as_str()) {
            names.insert(name.to_owned());
        }
    }
    Ok((
        SyncCheck::Verified {
            servers: monitor.len(),
        },
        names,
    ))
}

/// A URL without user information (credentials never reach logs or errors).
pub(crate) fn shown_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{rest}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn start_up_waits_out_jetstream_not_answering_but_not_a_refusal() {
        let tries = AtomicU32::new(0);
        let answer = while_starting(|| async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(ClusterError::JetStream("request timed out".into())),
                n => Ok(n),
            }
        })
        .await;
        assert!(matches!(answer, Ok(2)), "{answer:?}");

        let tries = AtomicU32::new(0);
        let refused: Result<(), _> = while_starting(|| async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(ClusterError::Unsafe("in memory".into()))
        })
        .await;
        assert!(matches!(refused, Err(ClusterError::Unsafe(_))));
        assert_eq!(tries.load(Ordering::SeqCst), 1, "a refusal is final");
    }
}
