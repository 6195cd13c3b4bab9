//! Behaviour-rule checkpoints of the detector partitions (cluster mode): the memory of the
//! `new_terms`, `outlier` and `peer_outlier` rules a partition's holder has built, saved where
//! the partition's next holder reads it, so a takeover resumes with it instead of learning
//! again.
//!
//! **Where**: the JetStream object store `<cluster>_behaviour` (file storage, the cluster's
//! replicas — R3 — like the key-value buckets), one object per detector partition and lease
//! epoch, named `<lease key>.behaviour.<epoch>` (`detector.behaviour.7`,
//! `detector.2.behaviour.9`). An object store, not a key-value entry: a state can be larger
//! than a NATS message (the object store chunks it), and an object's new version replaces the
//! old one only once it is whole.
//!
//! **Fencing**: only the holder of epoch `E` writes `….behaviour.E` (epochs are reserved
//! cluster-wide, never reused: [`crate::detector::EPOCH_KEY`]), and a reader takes the highest
//! epoch. So a deposed holder (epoch `E`) that writes late writes only its own, older object:
//! it can never replace the newer state of its successor (epoch `F` > `E`). A holder deletes
//! the objects of older epochs of its partition once its own is written.
//!
//! **Consistency with the cursor**: a holder writes its checkpoint only after the partition's
//! cursor was saved at the same position, so a checkpoint is never ahead of the cursor a
//! successor reads; the successor loads the state at position `S` ≤ cursor and feeds it the
//! events from `S` on (see `vigil-server`'s `detect/behaviour.rs`).
//!
//! The format of an object: [`format`] (FORMAT in its module docs).

pub mod format;

use async_nats::jetstream::{self, object_store, stream};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

pub use format::{Checkpoint, HEADER_LEN, MAGIC, MAX_CHECKPOINT_BYTES, VERSION, decode, encode};

use crate::{Cluster, ClusterError};

/// The object store's name: `<cluster>_behaviour`.
pub fn bucket_name(cluster: &Cluster) -> String {
    format!("{}_behaviour", cluster.settings().names.cluster())
}

/// The object name of the checkpoint of the partition whose lease key is `lease_key`, written
/// in `epoch`.
pub fn object_name(lease_key: &str, epoch: u64) -> String {
    format!("{lease_key}.behaviour.{epoch}")
}

/// The epoch an object of `lease_key`'s partition was written in (none: not one of its).
fn epoch_of(lease_key: &str, name: &str) -> Option<u64> {
    name.strip_prefix(lease_key)?
        .strip_prefix(".behaviour.")?
        .parse()
        .ok()
}

/// The object store, created if missing (file storage, the cluster's replicas); an existing
/// one must keep its objects on file with at least that many replicas.
pub async fn open(cluster: &Cluster) -> Result<object_store::ObjectStore, ClusterError> {
    let js: &jetstream::Context = cluster.jetstream();
    let bucket = bucket_name(cluster);
    let store = match js.get_object_store(&bucket).await {
        Ok(store) => store,
        Err(_) => match js
            .create_object_store(object_store::Config {
                bucket: bucket.clone(),
                description: Some(
                    "Vigil: behaviour-rule checkpoints of detector partitions".into(),
                ),
                storage: stream::StorageType::File,
                num_replicas: cluster.settings().replicas,
                ..Default::default()
            })
            .await
        {
            Ok(store) => store,
            // Another node created it at the same moment.
            Err(first) => js
                .get_object_store(&bucket)
                .await
                .map_err(|_| ClusterError::JetStream(format!("object store {bucket}: {first}")))?,
        },
    };
    let mut info = js
        .get_stream(format!("OBJ_{bucket}"))
        .await
        .map_err(|e| ClusterError::JetStream(format!("object store {bucket}: {e}")))?;
    let info = info
        .info()
        .await
        .map_err(|e| ClusterError::JetStream(format!("object store {bucket}: {e}")))?;
    if info.config.storage != stream::StorageType::File {
        return Err(ClusterError::Unsafe(format!(
            "object store {bucket} keeps its objects in memory; it must use file storage"
        )));
    }
    if info.config.num_replicas < cluster.settings().replicas {
        return Err(ClusterError::Unsafe(format!(
            "object store {bucket} has {} replica(s); this node requires {}",
            info.config.num_replicas,
            cluster.settings().replicas
        )));
    }
    Ok(store)
}

/// Writes `checkpoint` as the object of `lease_key`'s partition for its epoch, then deletes
/// the partition's objects of older epochs.
pub async fn save(
    store: &object_store::ObjectStore,
    lease_key: &str,
    checkpoint: &Checkpoint,
) -> Result<(), ClusterError> {
    let bytes = encode(checkpoint);
    if bytes.len() > MAX_CHECKPOINT_BYTES {
        return Err(ClusterError::JetStream(format!(
            "behaviour state of {} bytes is over the checkpoint limit of {MAX_CHECKPOINT_BYTES}; \
             not checkpointed",
            bytes.len()
        )));
    }
    let name = object_name(lease_key, checkpoint.epoch);
    store
        .put(name.as_str(), &mut bytes.as_slice())
        .await
        .map_err(|e| ClusterError::JetStream(format!("writing {name}: {e}")))?;
    for (epoch, old) in objects(store, lease_key).await? {
        if epoch < checkpoint.epoch {
            // Best effort: a leftover is ignored by readers (not the highest epoch).
            let _ = store.delete(&old).await;
        }
    }
    Ok(())
}

/// The partition's objects: (epoch, name).
async fn objects(
    store: &object_store::ObjectStore,
    lease_key: &str,
) -> Result<Vec<(u64, String)>, ClusterError> {
    let mut list = store
        .list()
        .await
        .map_err(|e| ClusterError::JetStream(format!("listing behaviour checkpoints: {e}")))?;
    let mut out = Vec::new();
    while let Some(info) = list.next().await {
        let info = info
            .map_err(|e| ClusterError::JetStream(format!("listing behaviour checkpoints: {e}")))?;
        if info.deleted {
            continue;
        }
        if let Some(epoch) = epoch_of(lease_key, &info.name) {
            out.push((epoch, info.name));
        }
    }
    Ok(out)
}

/// What [`load`] found.
#[derive(Debug)]
pub enum Loaded {
    /// No checkpoint of this partition.
    None,
    /// The newest checkpoint, checked.
    Found(Checkpoint),
    /// The newest checkpoint was refused: why (it is not used; the partition starts blind).
    Refused(String),
}

/// Reads the newest checkpoint of `lease_key`'s partition, for its holder of epoch
/// `holder_epoch` that has just taken it over, bounded by [`MAX_CHECKPOINT_BYTES`], and checks
/// that it is the partition's (`partition` of `count`) and of the epoch its name says. An
/// object of an epoch not below `holder_epoch` cannot have been written by an earlier holder
/// (epochs are reserved before a holder acts, and this holder's is the newest): it is forged,
/// deleted (so it cannot blind every later takeover), and named in the second part of the
/// answer; the newest of the others is read. An error is a failure to talk to JetStream; a
/// checkpoint that is there but wrong is [`Loaded::Refused`].
pub async fn load(
    store: &object_store::ObjectStore,
    lease_key: &str,
    partition: u32,
    count: u32,
    holder_epoch: u64,
) -> Result<(Loaded, Vec<String>), ClusterError> {
    let mut forged = Vec::new();
    let mut newest: Option<(u64, String)> = None;
    for (epoch, name) in objects(store, lease_key).await? {
        if epoch >= holder_epoch {
            let _ = store.delete(&name).await;
            forged.push(format!(
                "{name}: epoch {epoch} is not below the epoch of the partition's holder \
                 ({holder_epoch}): not written by an earlier holder; deleted"
            ));
        } else if newest.as_ref().is_none_or(|(e, _)| epoch > *e) {
            newest = Some((epoch, name));
        }
    }
    let Some((epoch, name)) = newest else {
        return Ok((Loaded::None, forged));
    };
    Ok((read(store, &name, epoch, partition, count).await?, forged))
}

/// Reads and checks object `name` (of `epoch`).
async fn read(
    store: &object_store::ObjectStore,
    name: &str,
    epoch: u64,
    partition: u32,
    count: u32,
) -> Result<Loaded, ClusterError> {
    let info = store
        .info(name)
        .await
        .map_err(|e| ClusterError::JetStream(format!("reading {name}: {e}")))?;
    if info.size > MAX_CHECKPOINT_BYTES {
        return Ok(Loaded::Refused(format!(
            "{name}: {} bytes, over the limit of {MAX_CHECKPOINT_BYTES}",
            info.size
        )));
    }
    let object = store
        .get(name)
        .await
        .map_err(|e| ClusterError::JetStream(format!("reading {name}: {e}")))?;
    let mut bytes = Vec::new();
    if let Err(e) = object
        .take(MAX_CHECKPOINT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .await
    {
        // A digest that does not match the chunks read is refused here too.
        return Ok(Loaded::Refused(format!("{name}: {e}")));
    }
    let checkpoint = match decode(&bytes) {
        Ok(c) => c,
        Err(e) => return Ok(Loaded::Refused(format!("{name}: {e}"))),
    };
    let whole = |k: u32| k.max(1);
    if checkpoint.epoch != epoch
        || checkpoint.partition != partition
        || whole(checkpoint.count) != whole(count)
    {
        return Ok(Loaded::Refused(format!(
            "{name}: it says partition {} of {} in epoch {}, not partition {partition} of {} in \
             epoch {epoch}",
            checkpoint.partition,
            whole(checkpoint.count),
            checkpoint.epoch,
            whole(count)
        )));
    }
    Ok(Loaded::Found(checkpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_carry_the_epoch_and_only_the_partitions_own_are_read() {
        assert_eq!(object_name("detector", 7), "detector.behaviour.7");
        assert_eq!(epoch_of("detector", "detector.behaviour.7"), Some(7));
        assert_eq!(epoch_of("detector.2", "detector.2.behaviour.11"), Some(11));
        assert_eq!(epoch_of("detector", "detector.2.behaviour.11"), None);
        assert_eq!(epoch_of("detector.1", "detector.12.behaviour.3"), None);
        assert_eq!(epoch_of("detector", "detector.behaviour.x"), None);
    }
}
