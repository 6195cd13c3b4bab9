//! The one door in cluster mode: [`StreamLog`], the [`EventLog`] that publishes each append to
//! the cluster's JetStream stream instead of a local ledger.
//!
//! An append is grouped by shard (data events by [`partition_of`], Vigil's own `vigil.*`
//! datasets to [`Shard::System`]), each event stamped with the node that accepted it
//! (`vigil.node`), encoded ([`codec::encode`]) into messages of at most half the servers'
//! `max_payload`, and published concurrently, each with a `Nats-Msg-Id`. The append is
//! answered only once JetStream has acknowledged every message (the batch is then on a
//! majority of the stream's replicas, each fsynced), or with a retryable error.
//!
//! Message ids: a batch sent with an `Idempotency-Key` (its first event carries the key and
//! the sender, [`vigil_ingest::idempotency::Mark`]) gets ids derived from the key, the sender,
//! the shard and the events' positions in the batch, so the sender's retry through ANY node
//! within JetStream's two-minute duplicate window is stored once. Other batches get ids unique
//! to this process, so the door's own retries of a publish (a NATS server lost mid-publish)
//! are stored once too.
//!
//! Bounds: the pipeline bounds events in flight; the door also bounds messages being published
//! ([`MAX_IN_FLIGHT_PUBLISHES`]); an append waits for room on the runtime, never blocking the
//! caller. Every event is under the ledger's event limit (`vigil_ingest::pipeline::fit`) and
//! the node refuses to start unless `max_payload` holds two of them ([`MIN_MAX_PAYLOAD`]), so
//! no input can make a message larger than the servers accept.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use vigil_cluster::partition::partition_of;
use vigil_cluster::{Cluster, ClusterError, Shard, codec};
use vigil_event::{Event, field};
use vigil_ingest::idempotency::{KEY_FIELD, SENDER_FIELD};
use vigil_ingest::log::{EventLog, OnDurable};
use vigil_ledger::LedgerError;

/// Messages being published at once by one node, at most.
pub const MAX_IN_FLIGHT_PUBLISHES: usize = 256;
/// The smallest `max_payload` a node accepts: a message of half of it must hold the largest
/// event the ledger stores with room to spare.
pub const MIN_MAX_PAYLOAD: usize = 4 * vigil_ledger::format::MAX_EVENT_BYTES;
/// Tries of one message before the append fails (same id each time: JetStream stores it once).
const PUBLISH_TRIES: u32 = 3;

/// The shard an event belongs to: Vigil's own datasets (`vigil.*`: audit, alerts, triage,
/// decisions…) to the system shard, every other event to its data partition.
pub fn shard_of(event: &Event, partitions: u32) -> Shard {
    let own = event
        .get_str(field::EVENT_DATASET)
        .is_some_and(|d| d.starts_with("vigil."));
    if own {
        Shard::System
    } else {
        Shard::Data(partition_of(event, partitions))
    }
}

/// One message to publish: its shard, its id, its payload.
#[derive(Debug, Clone)]
pub struct Message {
    /// The shard whose subject it goes to.
    pub shard: Shard,
    /// Its `Nats-Msg-Id`.
    pub id: String,
    /// The encoded events ([`codec`]).
    pub payload: Bytes,
}

/// How the messages of one append are named.
enum Ids<'a> {
    /// A keyed batch: from its key and sender (the same on every node).
    Keyed { key: &'a str, sender: &'a str },
    /// Unique to this process: `node-boot-append`.
    Unique(String),
}

impl Ids<'_> {
    fn id(&self, shard: Shard, events: Range<usize>) -> String {
        match self {
            Ids::Keyed { key, sender } => {
                let mut h = Sha256::new();
                for part in [
                    "vigil/ingest/v1",
                    sender,
                    key,
                    &shard.to_string(),
                    &format!("{}-{}", events.start, events.end),
                ] {
                    h.update((part.len() as u64).to_be_bytes());
                    h.update(part.as_bytes());
                }
                vigil_ledger::hex(&h.finalize().into())
            }
            Ids::Unique(prefix) => format!("{prefix}-{shard}-{}", events.start),
        }
    }
}

/// Splits an append into messages: grouped by shard (in order within each), every event
/// stamped with `node`, each message at most `max_bytes` (an event larger alone gets its own).
/// `unique` names the messages of a batch without an idempotency key.
pub fn messages(
    events: &[Event],
    partitions: u32,
    node: &str,
    max_bytes: usize,
    unique: impl FnOnce() -> String,
) -> Vec<Message> {
    let ids = match events
        .first()
        .map(|e| (e.get_str(KEY_FIELD), e.get_str(SENDER_FIELD)))
    {
        Some((Some(key), Some(sender))) => Ids::Keyed { key, sender },
        _ => Ids::Unique(unique()),
    };
    let mut by_shard: BTreeMap<Shard, Vec<Event>> = BTreeMap::new();
    for event in events {
        let mut event = event.clone();
        event.insert(field::VIGIL_NODE, node);
        by_shard
            .entry(shard_of(&event, partitions))
            .or_default()
            .push(event);
    }
    let mut out = Vec::new();
    for (shard, events) in by_shard {
        if matches!(ids, Ids::Keyed { .. }) {
            // A keyed batch's ids name event ranges, so its cut must be the same on every node
            // and every attempt: sizes without what differs between them (the node's name, the
            // receive time), plus a reserve that covers it.
            for range in stable_ranges(&events, max_bytes) {
                let payload = codec::encode(&events[range.clone()], usize::MAX);
                out.extend(payload.into_iter().map(|payload| Message {
                    shard,
                    id: ids.id(shard, range.clone()),
                    payload: Bytes::from(payload),
                }));
            }
            continue;
        }
        let mut at = 0;
        for payload in codec::encode(&events, max_bytes) {
            let n = message_count(&payload);
            out.push(Message {
                shard,
                id: ids.id(shard, at..at + n),
                payload: Bytes::from(payload),
            });
            at += n;
        }
    }
    out
}

/// Bytes reserved per event for the fields that differ between the nodes and attempts of one
/// keyed batch (`vigil.node`, at most 64 bytes of name, and `vigil.received`).
const UNSTABLE_RESERVE: usize = 192;

/// The cut of a keyed batch's events into messages of at most `max_bytes`, from sizes that
/// are the same on every node and every attempt.
fn stable_ranges(events: &[Event], max_bytes: usize) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut size) = (0, 16);
    for (i, event) in events.iter().enumerate() {
        let mut stable = event.clone();
        stable.remove(field::VIGIL_NODE);
        stable.remove(field::VIGIL_RECEIVED);
        let cost = stable.to_canonical().len() + UNSTABLE_RESERVE;
        if i > start && size + cost > max_bytes {
            ranges.push(start..i);
            (start, size) = (i, 16);
        }
        size += cost;
    }
    if start < events.len() {
        ranges.push(start..events.len());
    }
    ranges
}

/// The event count of an encoded message (its header: version byte, then a LEB128 varint).
fn message_count(message: &[u8]) -> usize {
    let mut n: u64 = 0;
    for (i, b) in message.iter().skip(1).take(10).enumerate() {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            break;
        }
    }
    n as usize
}

/// The [`EventLog`] of a cluster node: appends go to the JetStream stream.
pub struct StreamLog {
    cluster: Cluster,
    runtime: tokio::runtime::Handle,
    publishes: Arc<Semaphore>,
    max_message: usize,
    max_payload: usize,
    prefix: String,
    appends: AtomicU64,
    acked_end: Arc<AtomicU64>,
}

impl StreamLog {
    /// The door to `cluster`'s stream. Call on the runtime that is to publish (appends may come
    /// from any thread).
    pub fn new(cluster: Cluster) -> StreamLog {
        let max_payload = cluster.max_payload();
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        StreamLog {
            prefix: format!("{}-{boot:x}", cluster.node()),
            cluster,
            runtime: tokio::runtime::Handle::current(),
            publishes: Arc::new(Semaphore::new(MAX_IN_FLIGHT_PUBLISHES)),
            max_message: max_payload / 2,
            max_payload,
            appends: AtomicU64::new(0),
            acked_end: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl EventLog for StreamLog {
    fn append(&self, events: &[Event], done: OnDurable) {
        let settings = self.cluster.settings();
        let messages = messages(
            events,
            settings.partitions,
            &settings.node,
            self.max_message,
            || {
                let n = self.appends.fetch_add(1, Ordering::Relaxed);
                format!("{}-{n:x}", self.prefix)
            },
        );
        if let Some(big) = messages.iter().find(|m| m.payload.len() > self.max_payload) {
            // Cannot happen with events under the ledger's limit and the start-up check of
            // max_payload; refused rather than retried forever.
            done(Err(LedgerError::EventTooLarge {
                size: big.payload.len(),
                max: self.max_payload,
            }));
            return;
        }
        let (cluster, publishes, acked_end) = (
            self.cluster.clone(),
            Arc::clone(&self.publishes),
            Arc::clone(&self.acked_end),
        );
        self.runtime.spawn(async move {
            let answer = publish_all(&cluster, &publishes, messages).await;
            if let Ok(range) = &answer {
                acked_end.fetch_max(range.end, Ordering::Relaxed);
            }
            done(answer);
        });
    }

    fn durable_end(&self) -> u64 {
        self.acked_end.load(Ordering::Relaxed)
    }

    fn degraded(&self) -> Option<String> {
        use async_nats::connection::State;
        match self.cluster.client().connection_state() {
            State::Connected => None,
            state => Some(format!("NATS connection {state:?}").to_lowercase()),
        }
    }
}

/// Publishes every message (at most [`MAX_IN_FLIGHT_PUBLISHES`] of this node's at once) and
/// waits for all the acks: the stream sequences from the first to the last, or the first
/// error (every message was tried; the ones acked are stored, and a retry with the same ids
/// is stored once).
async fn publish_all(
    cluster: &Cluster,
    publishes: &Arc<Semaphore>,
    messages: Vec<Message>,
) -> Result<Range<u64>, LedgerError> {
    if messages.is_empty() {
        return Ok(0..0);
    }
    let room = (messages.len().min(MAX_IN_FLIGHT_PUBLISHES)) as u32;
    let _permits = Arc::clone(publishes)
        .acquire_many_owned(room)
        .await
        .map_err(|_| LedgerError::Closed)?;
    let acks = futures_util::future::join_all(
        messages
            .into_iter()
            .map(|m| async move { publish_one(cluster, m).await }),
    )
    .await;
    let mut range: Option<Range<u64>> = None;
    for ack in acks {
        let seq =
            ack.map_err(|e| LedgerError::Unavailable(format!("not stored in the stream: {e}")))?;
        range = Some(match range {
            None => seq..seq + 1,
            Some(r) => r.start.min(seq)..r.end.max(seq + 1),
        });
    }
    Ok(range.unwrap_or(0..0))
}

/// One message, tried up to [`PUBLISH_TRIES`] times with its id (a leader election, a lost
/// NATS server: the client reconnects to another).
async fn publish_one(cluster: &Cluster, m: Message) -> Result<u64, ClusterError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match cluster.publish(m.shard, m.payload.clone(), &m.id).await {
            Ok(seq) => return Ok(seq),
            Err(e) if e.retryable() && tries < PUBLISH_TRIES => {
                tracing::debug!(shard = %m.shard, "publish failed ({e}); trying again");
                tokio::time::sleep(Duration::from_millis(250 * u64::from(tries))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::Timestamp;

    fn event(ip: &str, dataset: Option<&str>) -> Event {
        let mut e = Event::new(Timestamp::from_secs(1));
        e.insert("source.ip", ip);
        e.insert("message", format!("from {ip}"));
        if let Some(d) = dataset {
            e.insert(field::EVENT_DATASET, d);
        }
        e
    }

    #[test]
    fn vigil_datasets_go_to_the_system_shard_and_the_rest_by_partition() {
        let audit = event("10.0.0.1", Some("vigil.audit"));
        assert_eq!(shard_of(&audit, 8), Shard::System);
        let claimed = event("10.0.0.1", Some("vigilant"));
        assert!(matches!(shard_of(&claimed, 8), Shard::Data(_)));
        let data = event("10.0.0.1", None);
        assert_eq!(shard_of(&data, 8), Shard::Data(partition_of(&data, 8)));
    }

    #[test]
    fn messages_group_by_shard_stamp_the_node_and_keep_every_event_once() {
        let events: Vec<Event> = (0..200)
            .map(|i| {
                event(
                    &format!("10.0.{}.{}", i % 7, i),
                    (i % 10 == 0).then_some("vigil.alert"),
                )
            })
            .collect();
        let out = messages(&events, 4, "n1", 2048, || "n1-boot-0".into());
        assert!(out.len() > 5, "small messages: {}", out.len());
        let mut seen = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for m in &out {
            assert!(m.payload.len() <= 2048, "{}", m.payload.len());
            assert!(ids.insert(m.id.clone()), "ids are distinct");
            for e in codec::decode(&m.payload).unwrap() {
                assert_eq!(e.get_str(field::VIGIL_NODE), Some("n1"));
                assert_eq!(shard_of(&e, 4), m.shard);
                seen.push(e.get_str("message").unwrap().to_owned());
            }
        }
        let mut sent: Vec<String> = events
            .iter()
            .map(|e| e.get_str("message").unwrap().to_owned())
            .collect();
        sent.sort();
        seen.sort();
        assert_eq!(seen, sent);
    }

    #[test]
    fn keyed_batches_get_the_same_ids_on_every_node_and_others_unique_ones() {
        let mut events: Vec<Event> = (0..50)
            .map(|i| event(&format!("10.1.0.{i}"), None))
            .collect();
        let unkeyed_a = messages(&events, 4, "n1", 1 << 20, || "n1-a".into());
        let unkeyed_b = messages(&events, 4, "n1", 1 << 20, || "n1-b".into());
        assert!(unkeyed_a.iter().zip(&unkeyed_b).all(|(a, b)| a.id != b.id));
        events[0].insert(KEY_FIELD, "batch-17");
        events[0].insert(SENDER_FIELD, "token-1");
        let on_n1 = messages(&events, 4, "n1", 1 << 20, || unreachable!());
        let on_n2 = messages(&events, 4, "node-two", 1 << 20, || unreachable!());
        let ids = |m: &[Message]| {
            m.iter()
                .map(|m| (m.shard, m.id.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(&on_n1),
            ids(&on_n2),
            "a retry through another node dedupes"
        );
        events[0].insert(SENDER_FIELD, "token-2");
        let other_sender = messages(&events, 4, "n1", 1 << 20, || unreachable!());
        assert!(
            ids(&other_sender)
                .iter()
                .all(|id| !ids(&on_n1).contains(id))
        );
    }

    #[test]
    fn a_keyed_batch_in_many_messages_is_cut_the_same_on_every_node_and_attempt() {
        let mut events: Vec<Event> = (0..400)
            .map(|i| event(&format!("10.2.0.{}", i % 3), None))
            .collect();
        events[0].insert(KEY_FIELD, "batch-big");
        events[0].insert(SENDER_FIELD, "token-1");
        let mut retried = events.clone();
        for (i, e) in retried.iter_mut().enumerate() {
            // Another attempt: received at another instant (a wider fraction).
            e.insert(
                field::VIGIL_RECEIVED,
                format!("2026-12-07T04:00:00.{i:09}Z"),
            );
        }
        let first = messages(&events, 4, "n1", 4096, || unreachable!());
        let again = messages(
            &retried,
            4,
            "a-much-longer-node-name",
            4096,
            || unreachable!(),
        );
        assert!(
            first.len() > 4,
            "several messages per shard: {}",
            first.len()
        );
        let ids = |m: &[Message]| {
            m.iter()
                .map(|m| (m.shard, m.id.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&first), ids(&again), "the same cut, the same ids");
        for m in first.iter().chain(&again) {
            assert!(m.payload.len() <= 4096, "{}", m.payload.len());
        }
    }

    #[test]
    fn the_count_of_a_message_is_read_from_its_header() {
        let events: Vec<Event> = (0..300)
            .map(|i| event(&format!("10.2.0.{i}"), None))
            .collect();
        for m in codec::encode(&events, 1 << 20) {
            assert_eq!(message_count(&m), codec::decode(&m).unwrap().len());
        }
    }
}
