//! Reading the stream in stream order: an ordered JetStream consumer (ephemeral, one replica,
//! recreated by the client on a gap) feeding a small bounded channel, so a reader far behind
//! holds at most a few messages in memory. The detector follows every shard's subject with it,
//! and every node follows the `sys` subject to keep its alert and ban books.
//!
//! A *position* names one event of the stream: its message's stream sequence and its index in
//! the message ([`position`]). Positions increase in stream order, so the detector's alert
//! book records them where the standalone detector records ledger sequence numbers.

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::{Cluster, ClusterError};

/// Bits of a position that index the event within its message.
pub const INDEX_BITS: u32 = 24;

/// Messages fetched ahead of the reader (at most this many stream messages in memory, each
/// under the servers' `max_payload`).
const AHEAD: usize = 8;

/// The position of event `index` of message `seq`.
pub fn position(seq: u64, index: u64) -> u64 {
    (seq << INDEX_BITS) | (index & ((1 << INDEX_BITS) - 1))
}

/// The stream sequence of the message holding the event at `position`.
pub fn message_of(position: u64) -> u64 {
    position >> INDEX_BITS
}

/// The index within its message of the event at `position`.
pub fn index_of(position: u64) -> u64 {
    position & ((1 << INDEX_BITS) - 1)
}

/// One message of the stream.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// Its stream sequence.
    pub seq: u64,
    /// Its subject (the shard it belongs to: [`crate::Names::shard_of_subject`]).
    pub subject: String,
    /// Its payload ([`crate::codec`]).
    pub payload: Bytes,
}

/// The messages of the stream on a subject filter, in stream order, from a sequence on.
/// Dropping it stops its consumer.
pub struct StreamFollower {
    rx: mpsc::Receiver<Result<Delivered, ClusterError>>,
    task: tokio::task::JoinHandle<()>,
}

impl StreamFollower {
    /// Starts following `filter` (`<cluster>.events.>` for every shard) from stream sequence
    /// `from` (1 or 0: from the start) on `runtime`. An error ends the follower: it is the last
    /// item it yields, and the caller starts a new one from where it stopped.
    pub fn start(
        cluster: &Cluster,
        filter: String,
        from: u64,
        runtime: &tokio::runtime::Handle,
    ) -> StreamFollower {
        let (tx, rx) = mpsc::channel(AHEAD);
        let stream = cluster.stream().clone();
        let task = runtime.spawn(async move {
            let config = OrderedConfig {
                filter_subject: filter,
                deliver_policy: if from <= 1 {
                    DeliverPolicy::All
                } else {
                    DeliverPolicy::ByStartSequence {
                        start_sequence: from,
                    }
                },
                max_batch: AHEAD as i64,
                ..Default::default()
            };
            let messages = match stream.create_consumer(config).await {
                Ok(consumer) => consumer.messages().await,
                Err(e) => {
                    let _ = tx.send(Err(ClusterError::JetStream(e.to_string()))).await;
                    return;
                }
            };
            let mut messages = match messages {
                Ok(m) => m,
                Err(e) => {
                    let _ = tx.send(Err(ClusterError::JetStream(e.to_string()))).await;
                    return;
                }
            };
            while let Some(next) = messages.next().await {
                let item = next
                    .map_err(|e| ClusterError::JetStream(e.to_string()))
                    .and_then(|m| {
                        let seq = m
                            .info()
                            .map_err(|e| ClusterError::JetStream(e.to_string()))?
                            .stream_sequence;
                        Ok(Delivered {
                            seq,
                            subject: m.subject.to_string(),
                            payload: m.payload.clone(),
                        })
                    });
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
            let _ = tx
                .send(Err(ClusterError::JetStream("the consumer ended".into())))
                .await;
        });
        StreamFollower { rx, task }
    }

    /// The next message if one is there now (never blocks: for threads outside the runtime).
    /// `None`: nothing new yet.
    pub fn try_next(&mut self) -> Option<Result<Delivered, ClusterError>> {
        match self.rx.try_recv() {
            Ok(item) => Some(item),
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected) => Some(Err(ClusterError::JetStream(
                "the stream follower stopped".into(),
            ))),
        }
    }

    /// The next message, waiting up to `patience` (`None`: nothing new in that time).
    pub async fn next(&mut self, patience: Duration) -> Option<Result<Delivered, ClusterError>> {
        match tokio::time::timeout(patience, self.rx.recv()).await {
            Ok(Some(item)) => Some(item),
            Ok(None) => Some(Err(ClusterError::JetStream(
                "the stream follower stopped".into(),
            ))),
            Err(_) => None,
        }
    }
}

impl Drop for StreamFollower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The stream sequence of the first message on `filter` stored at or after `since` (the
/// stream's next sequence when there is none): where to re-read a time window from.
pub async fn first_seq_since(
    cluster: &Cluster,
    filter: String,
    since: vigil_event::Timestamp,
) -> Result<u64, ClusterError> {
    let js = |e: &dyn std::fmt::Display| ClusterError::JetStream(e.to_string());
    let start_time =
        async_nats::datetime::parse_rfc3339(&since.to_rfc3339()).map_err(|e| js(&e))?;
    let config = OrderedConfig {
        filter_subject: filter,
        deliver_policy: DeliverPolicy::ByStartTime { start_time },
        max_batch: 1,
        ..Default::default()
    };
    let consumer = cluster
        .stream()
        .create_consumer(config)
        .await
        .map_err(|e| js(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| js(&e))?;
    match tokio::time::timeout(Duration::from_secs(2), messages.next()).await {
        Ok(Some(Ok(m))) => Ok(m.info().map_err(|e| js(&e))?.stream_sequence),
        Ok(Some(Err(e))) => Err(js(&e)),
        // Nothing stored since: the next message to come.
        _ => Ok(cluster
            .stream()
            .get_info()
            .await
            .map_err(|e| js(&e))?
            .state
            .last_sequence
            + 1),
    }
}

/// When the stream stored message `seq` (none: there is no such message, e.g. `seq` 0 or a
/// message the stream's limits discarded).
pub async fn stored_at(
    cluster: &Cluster,
    seq: u64,
) -> Result<Option<vigil_event::Timestamp>, ClusterError> {
    use async_nats::jetstream::stream::RawMessageErrorKind;
    if seq == 0 {
        return Ok(None);
    }
    match cluster.stream().get_raw_message(seq).await {
        Ok(m) => {
            let ns = m.time.unix_timestamp_nanos();
            Ok(Some(vigil_event::Timestamp::from_nanos(
                ns.clamp(0, i64::MAX as i128) as i64,
            )))
        }
        Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(ClusterError::JetStream(e.to_string())),
    }
}

/// The stream sequence of the last message on `subject` now (0: none yet).
pub async fn last_seq(cluster: &Cluster, subject: &str) -> Result<u64, ClusterError> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    match cluster
        .stream()
        .get_last_raw_message_by_subject(subject)
        .await
    {
        Ok(message) => Ok(message.sequence),
        Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(0),
        Err(e) => Err(ClusterError::JetStream(format!(
            "reading the end of {subject}: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_events_by_message_then_index() {
        let a = position(7, 0);
        let b = position(7, 41);
        let c = position(8, 0);
        assert!(a < b && b < c);
        assert_eq!((message_of(b), index_of(b)), (7, 41));
        assert_eq!(position(message_of(c), 0), c);
    }
}
