//! Reading one shard's messages from the stream, in stream order, from a given position.

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::{Cluster, ClusterError, Shard};

/// One message of a shard's subject.
#[derive(Debug, Clone)]
pub struct ShardMessage {
    /// Its stream sequence.
    pub seq: u64,
    /// Its payload (a [`crate::codec`] message, unless hostile).
    pub payload: Bytes,
}

impl Cluster {
    /// The messages of `shard`'s subject with a stream sequence above `after` (0: from the
    /// first the stream still holds), in stream order, through an ordered consumer (ephemeral,
    /// no acks, recreated by the client after a gap or a lost server). The stream ends or
    /// yields an error when the consumer cannot go on: the caller starts again from the last
    /// sequence it handled.
    pub async fn shard_messages(
        &self,
        shard: Shard,
        after: u64,
    ) -> Result<BoxStream<'static, Result<ShardMessage, ClusterError>>, ClusterError> {
        let deliver_policy = if after == 0 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            }
        };
        let config = pull::OrderedConfig {
            filter_subject: self.settings().names.shard_subject(shard),
            deliver_policy,
            description: Some(format!("vigil shard {shard} on {}", self.node())),
            ..Default::default()
        };
        let messages = self
            .stream()
            .create_consumer(config)
            .await
            .map_err(|e| ClusterError::JetStream(format!("consumer of {shard}: {e}")))?
            .messages()
            .await
            .map_err(|e| ClusterError::JetStream(format!("messages of {shard}: {e}")))?;
        Ok(messages
            .map(move |m| {
                let m = m.map_err(|e| ClusterError::JetStream(format!("{shard}: {e}")))?;
                let seq = m
                    .info()
                    .map_err(|e| {
                        ClusterError::JetStream(format!("{shard}: no stream sequence: {e}"))
                    })?
                    .stream_sequence;
                Ok(ShardMessage {
                    seq,
                    payload: m.payload.clone(),
                })
            })
            .boxed())
    }
}
