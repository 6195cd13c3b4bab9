//! Balancing shards across live nodes: each node aims at ⌈shards / live nodes⌉ shards, takes
//! free ones in an order of its own (hashed by its name, so nodes starting together reach for
//! different shards), and gives up its least preferred extras when more nodes join. A node
//! never takes a shard someone holds: shards move only when a holder releases them or its lease
//! expires, so churn is bounded by what the membership change requires.

use std::collections::{BTreeMap, BTreeSet};

use async_nats::jetstream::kv::Operation;
use futures_util::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use crate::lease::LeaseValue;
use crate::{Cluster, ClusterError, NodeInfo, Shard};

/// How many shards each node aims at: ⌈shards / live⌉ (every shard then has room somewhere).
pub fn target(shards: usize, live: usize) -> usize {
    shards.div_ceil(live.max(1))
}

/// `node`'s order of preference over `shards`: stable, and different from node to node.
pub fn preference(node: &str, shards: &[Shard]) -> Vec<Shard> {
    let mut keyed: Vec<([u8; 32], Shard)> = shards
        .iter()
        .map(|s| {
            let mut h = Sha256::new();
            h.update(node.as_bytes());
            h.update(b"/");
            h.update(s.to_string().as_bytes());
            (h.finalize().into(), *s)
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, s)| s).collect()
}

/// What a node should do now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Free shards to try, best first.
    pub acquire: Vec<Shard>,
    /// Held shards to give up (stop the worker, then release).
    pub release: Vec<Shard>,
}

/// The plan of `node`, holding `held`, with `free` shards unowned and `live` nodes alive.
pub fn plan(
    node: &str,
    all: &[Shard],
    held: &BTreeSet<Shard>,
    free: &BTreeSet<Shard>,
    live: usize,
) -> Plan {
    let goal = target(all.len(), live);
    let order = preference(node, all);
    let mut plan = Plan::default();
    if held.len() > goal {
        plan.release = order
            .iter()
            .rev()
            .filter(|s| held.contains(s))
            .take(held.len() - goal)
            .copied()
            .collect();
    } else if held.len() < goal {
        plan.acquire = order
            .iter()
            .filter(|s| free.contains(s) && !held.contains(s))
            .take(goal - held.len())
            .copied()
            .collect();
    }
    plan
}

/// The live nodes: the keys of the nodes bucket whose value is a [`NodeInfo`] (entries expire
/// unless their node renews them).
pub async fn live_nodes(cluster: &Cluster) -> Result<BTreeSet<String>, ClusterError> {
    let keys: Vec<String> = cluster
        .nodes()
        .keys()
        .await
        .map_err(|e| ClusterError::JetStream(e.to_string()))?
        .take(MAX_LIVE_NODES)
        .try_collect()
        .await
        .map_err(|e| ClusterError::JetStream(e.to_string()))?;
    Ok(keys.into_iter().collect())
}

/// Most node registrations read (a bucket flooded with keys is not read whole).
pub const MAX_LIVE_NODES: usize = 10_000;

/// Registers `info` in the nodes bucket (engineer A's registry renews it every TTL/3; tests
/// without it call this themselves).
pub async fn register(cluster: &Cluster, info: &NodeInfo) -> Result<(), ClusterError> {
    let value = serde_json::to_vec(info).map_err(|e| ClusterError::JetStream(e.to_string()))?;
    cluster
        .nodes()
        .put(info.node.as_str(), value.into())
        .await
        .map(|_| ())
        .map_err(|e| ClusterError::JetStream(e.to_string()))
}

/// The current holder of each shard's lease (shards absent from the map are free).
pub async fn owners(
    cluster: &Cluster,
    shards: &[Shard],
) -> Result<BTreeMap<Shard, LeaseValue>, ClusterError> {
    let mut owners = BTreeMap::new();
    for shard in shards {
        let entry = cluster
            .leases()
            .entry(shard.to_string())
            .await
            .map_err(|e| ClusterError::JetStream(e.to_string()))?;
        if let Some(entry) = entry
            && entry.operation == Operation::Put
        {
            // A value that is not a lease still occupies the key: it counts as held.
            let value = LeaseValue::parse(&entry.value).unwrap_or(LeaseValue {
                node: String::new(),
                epoch: 0,
                applied: 0,
                events: 0,
            });
            owners.insert(*shard, value);
        }
    }
    Ok(owners)
}

/// The key prefix in the leases bucket under which each node that can detect announces
/// itself (`detector.candidate.<node>`, renewed like a lease, expiring with the TTL): detector
/// partitions are spread over these nodes only (a node without rules takes none).
pub const DETECTOR_CANDIDATE_PREFIX: &str = "detector.candidate.";

/// `node`'s order of preference over detector partitions `0..count`: stable, and different
/// from node to node (so nodes starting together reach for different partitions).
pub fn detector_preference(node: &str, count: u32) -> Vec<u32> {
    let mut keyed: Vec<([u8; 32], u32)> = (0..count)
        .map(|k| {
            let mut h = Sha256::new();
            h.update(node.as_bytes());
            h.update(b"/detector/");
            h.update(k.to_le_bytes());
            (h.finalize().into(), k)
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, k)| k).collect()
}

/// What a node should do with detector partitions now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectorPlan {
    /// Free partitions it may take (its lease tasks acquire them), best first.
    pub acquire: Vec<u32>,
    /// A held partition to give up (at most one per round, its least preferred).
    pub release: Option<u32>,
}

/// The plan of `node` over `count` detector partitions, holding `held`, with `free` ones
/// unowned, `candidates` nodes able to detect (itself included) and `stale` partitions free
/// for so long that any node may take them whatever its share (a node counted as a
/// candidate that never takes its share must not leave a partition without a detector).
/// Each node aims at ⌈count / candidates⌉, as shards do ([`target`]). A node above its share
/// releases one only when no partition is free: while one is, a node below its share (or any,
/// once it is stale) takes that first, so a miscounted share never moves partitions around.
pub fn detector_plan(
    node: &str,
    count: u32,
    held: &BTreeSet<u32>,
    free: &BTreeSet<u32>,
    stale: &BTreeSet<u32>,
    candidates: usize,
) -> DetectorPlan {
    let goal = target(count as usize, candidates);
    let order = detector_preference(node, count);
    let mut plan = DetectorPlan::default();
    if held.len() > goal {
        if free.is_empty() {
            plan.release = order.iter().rev().find(|k| held.contains(k)).copied();
        }
        return plan;
    }
    let room = goal - held.len();
    let mut wanted: Vec<u32> = order
        .iter()
        .filter(|k| free.contains(k) && !held.contains(k))
        .take(room)
        .copied()
        .collect();
    for k in &order {
        if stale.contains(k) && free.contains(k) && !held.contains(k) && !wanted.contains(k) {
            wanted.push(*k);
        }
    }
    plan.acquire = wanted;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shards(n: u32) -> Vec<Shard> {
        Shard::all(n).collect()
    }

    #[test]
    fn every_shard_has_room_and_nodes_prefer_differently() {
        assert_eq!(target(9, 1), 9);
        assert_eq!(target(9, 2), 5);
        assert_eq!(target(9, 3), 3);
        assert_eq!(target(9, 0), 9);
        let all = shards(8);
        let a = preference("n1", &all);
        let b = preference("n2", &all);
        assert_eq!(a.len(), 9);
        assert_eq!(a.iter().collect::<BTreeSet<_>>().len(), 9);
        assert_eq!(a, preference("n1", &all), "stable");
        assert_ne!(a, b, "nodes reach for different shards first");
    }

    #[test]
    fn a_node_takes_free_shards_up_to_its_share_and_releases_only_extras() {
        let all = shards(8);
        let none = BTreeSet::new();
        let free: BTreeSet<Shard> = all.iter().copied().collect();
        // Alone: everything.
        let p = plan("n1", &all, &none, &free, 1);
        assert_eq!(p.acquire.len(), 9);
        assert!(p.release.is_empty());
        // A second node joins: the first gives up four (its least preferred), keeps five.
        let held: BTreeSet<Shard> = all.iter().copied().collect();
        let p = plan("n1", &all, &held, &BTreeSet::new(), 2);
        assert_eq!(p.release.len(), 4);
        assert!(p.acquire.is_empty());
        let order = preference("n1", &all);
        assert_eq!(
            p.release,
            order.iter().rev().take(4).copied().collect::<Vec<_>>()
        );
        // At its share: nothing to do, whatever is free.
        let held: BTreeSet<Shard> = order.iter().take(3).copied().collect();
        let p = plan("n1", &all, &held, &free, 3);
        assert_eq!(p, Plan::default());
        // Below its share: only free shards it does not hold.
        let held: BTreeSet<Shard> = [Shard::Data(0)].into();
        let free: BTreeSet<Shard> = [Shard::Data(0), Shard::Data(5)].into();
        let p = plan("n1", &all, &held, &free, 3);
        assert_eq!(p.acquire, vec![Shard::Data(5)]);
    }

    #[test]
    fn detector_partitions_spread_over_the_candidates() {
        let none = BTreeSet::new();
        let all: BTreeSet<u32> = (0..3).collect();
        // Alone: all three.
        let p = detector_plan("n1", 3, &none, &all, &none, 1);
        assert_eq!(p.acquire.len(), 3);
        assert_eq!(p.release, None);
        // Three candidates: one each, each its first choice among the free ones.
        let p = detector_plan("n1", 3, &none, &all, &none, 3);
        assert_eq!(p.acquire, vec![detector_preference("n1", 3)[0]]);
        // Holding all three when two more join: give up the least preferred, one per round.
        let p = detector_plan("n1", 3, &all, &none, &none, 3);
        assert_eq!(p.release, detector_preference("n1", 3).last().copied());
        assert!(p.acquire.is_empty());
        // Above its share while a partition is free (the one it just gave up, not yet taken,
        // or a share shrunk by miscounted candidates): nothing is released.
        let two: BTreeSet<u32> = [0, 1].into();
        let p = detector_plan("n1", 3, &two, &[2].into(), &none, 3);
        assert_eq!(p, DetectorPlan::default());
        // At its share, a partition free for long is still taken (no partition stays
        // without a detector because a candidate does not take its share).
        let held: BTreeSet<u32> = [0].into();
        let free: BTreeSet<u32> = [2].into();
        let p = detector_plan("n1", 3, &held, &free, &none, 3);
        assert!(p.acquire.is_empty());
        let p = detector_plan("n1", 3, &held, &free, &free, 3);
        assert_eq!(p.acquire, vec![2]);
        // Preferences differ between nodes and are stable.
        let orders: BTreeSet<Vec<u32>> = (0..8)
            .map(|i| detector_preference(&format!("n{i}"), 3))
            .collect();
        assert!(orders.len() > 1);
        assert_eq!(detector_preference("a", 5), detector_preference("a", 5));
    }
}
