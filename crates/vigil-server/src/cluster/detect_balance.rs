//! Spreading the detector partitions over the nodes (cluster mode; docs/cluster.md, "Detector
//! partitions"). Every node that detects (it has rules) announces itself as a candidate in the
//! leases bucket (`detector.candidate.<node>`, renewed every round, expiring with the lease
//! TTL) once its books have replayed `sys`; each round it counts the candidates, reads which
//! partitions are free, and follows [`detector_plan`]: it makes its lease tasks eligible for
//! free partitions up to its share (⌈K / candidates⌉), or for any partition free for longer
//! than [`STALE`] TTLs, and hands its least preferred partition over when it holds more than
//! its share (a node joined).
//!
//! A hand-over is clean: the lease is stepped down locally first (the node's detector lane
//! stops at its next turn, once the alerts and bans it submitted are acknowledged), then the
//! key is deleted so another node takes the partition at once and resumes from the
//! partition's cursor (the takeover's rules: nothing raised twice). A lane that has not
//! stopped within [`HAND_OVER_WAIT`] keeps the key: it expires after the TTL instead. A node
//! above its share releases only when no partition is free, and only live registered nodes'
//! candidacies count.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::Operation;
use tokio::sync::watch;
use vigil_cluster::Cluster;
use vigil_cluster::balance::{self, DETECTOR_CANDIDATE_PREFIX, detector_plan};

use super::detect::ClusterRole;
use super::state::{SysProgress, sys_end};

/// A free partition is taken by any candidate, whatever its share, after this many lease TTLs
/// (a candidate that does not take its share — stopping, or its books behind — must not leave
/// a partition without a detector).
const STALE: u32 = 3;

/// How long a hand-over waits for the lane to stop before it leaves the lease to expire (it
/// deletes it only once the lane stopped).
const HAND_OVER_WAIT: Duration = Duration::from_secs(20);

/// How many nodes announce themselves as detector candidates now, counting at most `count`
/// (the number of partitions: more candidates than partitions give every node a share of
/// one anyway). Only live registered nodes count (the nodes bucket), each with a candidacy
/// naming itself: a `detector.candidate.*` key any NATS client wrote for a node that does not
/// run does not shrink anyone's share. At most [`balance::MAX_LIVE_NODES`] registrations are
/// read, one candidacy lookup each, `me` (which has just announced itself) first.
async fn candidates(cluster: &Cluster, me: &str, count: u32) -> Result<usize, String> {
    let live = balance::live_nodes(cluster)
        .await
        .map_err(|e| e.to_string())?;
    let mut found = 1;
    for node in live.iter().filter(|n| n.as_str() != me) {
        if found >= count as usize {
            break;
        }
        let key = format!("{DETECTOR_CANDIDATE_PREFIX}{node}");
        match cluster.leases().entry(key).await {
            Ok(Some(e)) if e.operation == Operation::Put && e.value.as_ref() == node.as_bytes() => {
                found += 1;
            }
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(found)
}

/// Runs the balancing rounds of this node over its detector `roles` (one per partition) until
/// `stop`, then withdraws its candidacy (the leases themselves are given up by their tasks).
pub(super) async fn run(
    cluster: Cluster,
    roles: Vec<Arc<ClusterRole>>,
    sys: Arc<SysProgress>,
    mut stop: watch::Receiver<bool>,
) {
    let ttl = cluster.settings().lease_ttl;
    let me = cluster.node().to_string();
    let candidate = format!("{DETECTOR_CANDIDATE_PREFIX}{me}");
    let count = roles.len() as u32;
    let mut every = tokio::time::interval((ttl / 4).max(Duration::from_millis(100)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sys_target: Option<u64> = None;
    let mut caught_up = false;
    let mut free_since: BTreeMap<u32, Instant> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => break,
        }
        if !caught_up {
            // Not a candidate before the books have replayed `sys` to where it ended at
            // this start: a lane would hold its lease without detecting.
            if sys_target.is_none() {
                sys_target = sys_end(&cluster).await.ok();
            }
            match sys_target {
                Some(end) if sys.applied() >= end => caught_up = true,
                _ => continue,
            }
        }
        if let Err(e) = cluster.leases().put(&candidate, me.clone().into()).await {
            tracing::debug!("detector candidacy not renewed: {e}");
            continue;
        }
        let live = match candidates(&cluster, &me, count).await {
            Ok(n) => n.max(1),
            Err(e) => {
                tracing::debug!("detector candidates not read: {e}");
                continue;
            }
        };
        let (mut held, mut free) = (BTreeSet::new(), BTreeSet::new());
        for role in &roles {
            let k = role.partition().index();
            if role.holding() {
                held.insert(k);
                free_since.remove(&k);
                continue;
            }
            match cluster.leases().entry(role.lease().key()).await {
                Ok(Some(e)) if e.operation == Operation::Put => {
                    free_since.remove(&k);
                }
                Ok(_) => {
                    free.insert(k);
                    free_since.entry(k).or_insert_with(Instant::now);
                }
                Err(e) => tracing::debug!("{} not read: {e}", role.lease().key()),
            }
        }
        let stale: BTreeSet<u32> = free_since
            .iter()
            .filter(|(_, since)| since.elapsed() > ttl * STALE)
            .map(|(k, _)| *k)
            .collect();
        let plan = detector_plan(&me, count, &held, &free, &stale, live);
        for role in &roles {
            let k = role.partition().index();
            role.lease().set_eligible(plan.acquire.contains(&k));
        }
        if let Some(k) = plan.release
            && let Some(role) = roles.get(k as usize)
        {
            hand_over(role).await;
        }
    }
    for role in &roles {
        role.lease().set_eligible(false);
    }
    let _ = cluster.leases().delete(&candidate).await;
}

/// Gives `role`'s partition to another node: steps the lease down, waits for this node's lane
/// to stop (its alerts acknowledged), deletes the lease.
async fn hand_over(role: &ClusterRole) {
    role.lease().set_eligible(false);
    let Some(revision) = role.step_down() else {
        return;
    };
    let deadline = Instant::now() + HAND_OVER_WAIT;
    while role.detecting() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if role.detecting() {
        // The lane has not stopped (its effects unacknowledged, or it is blocked): the lease
        // is never given away while it may still act; it expires after the TTL instead.
        tracing::warn!(
            "detection: detector partition {} still detecting after {HAND_OVER_WAIT:?}; its \
             lease is left to expire rather than handed over",
            role.partition().index()
        );
        return;
    }
    role.lease().give_up(revision).await;
    tracing::info!(
        "detection: detector partition {} handed over to another node (balancing)",
        role.partition().index()
    );
}
