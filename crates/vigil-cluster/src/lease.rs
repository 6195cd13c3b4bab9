//! Leases: who owns a shard (or the detector) right now, through a JetStream KV bucket whose
//! entries expire unless renewed.
//!
//! A lease is the key (`p3`, `sys`, `detector`) in the leases bucket, holding a
//! [`LeaseValue`]. It is **acquired** with `create` (which fails while another node holds the
//! key), **renewed** with `update` against the revision last written (which fails once anyone
//! else wrote the key, or once it expired: the holder is then deposed), and **released** with a
//! delete against that revision on a clean stop. The bucket's `max_age` is the lease TTL: a key
//! not renewed for that long disappears, and another node can create it.
//!
//! **Fencing.** The server starts a key's TTL when it *stores* the renewal, which is after the
//! holder *sent* it. So the holder records the instant it sent each renewal that then
//! succeeded, and considers itself the owner only until that instant + TTL − a safety margin
//! ([`Fence::valid_at`]): it stops writing before the server could have expired the key and let
//! another node in (clocks are only compared on one machine: monotonic instants, no wall clock).
//! The margin covers the time one append may still take after its check, and a server's clock
//! running slightly fast.
//!
//! **Epochs.** Each acquisition takes a new epoch, higher than every earlier epoch of the key:
//! the last one is kept in the state bucket (`epoch.<key>`, no TTL, so it survives the expiry
//! of the lease itself) and reserved there by compare-and-set *before* the lease is created, so
//! two acquisitions never share an epoch even if a node dies between the two writes.
//!
//! **Lost races.** Two nodes acquiring the same key at once race on compare-and-set writes, and
//! the loser does not always get a typed "wrong revision" or "already exists" from async-nats:
//! when a replica served its read before it saw the winner's write, `create` of the existing
//! key comes back as an untyped error carrying the JetStream API code 10164 (or 10071, "wrong
//! last sequence"). [`lost_race`] recognises those codes, so a lost race always reads as
//! "another node is acquiring" (`Ok(None)`), never as a failure of NATS.

use std::time::{Duration, Instant};

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::kv::{self, Operation};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{Cluster, ClusterError};

/// How long before the lease could expire on the server the holder stops writing: a quarter of
/// the TTL.
pub fn safety_margin(ttl: Duration) -> Duration {
    ttl / 4
}

/// How often a holder renews its leases: a third of the TTL, so two renewals can fail (a NATS
/// leader election) before the fence closes.
pub fn renew_interval(ttl: Duration) -> Duration {
    ttl / 3
}

/// The value of a lease key (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseValue {
    /// The node holding it.
    pub node: String,
    /// Increases each time the lease changes hands.
    pub epoch: u64,
    /// The last stream sequence the owner has handled in its shard (stored, or skipped as
    /// undecodable); 0 when none.
    #[serde(default)]
    pub applied: u64,
    /// The shard's event count.
    #[serde(default)]
    pub events: u64,
}

impl LeaseValue {
    /// Parses a lease value; `None` when it is not one (a hostile or foreign value is never
    /// trusted, and never panics).
    pub fn parse(bytes: &[u8]) -> Option<LeaseValue> {
        if bytes.len() > 4096 {
            return None;
        }
        serde_json::from_slice(bytes).ok()
    }

    fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// The pure timing of a lease held: until when its holder may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    ttl: Duration,
    margin: Duration,
    /// When the last successful write of the key (create or renewal) was sent.
    sent: Option<Instant>,
}

impl Fence {
    /// A fence for leases of `ttl`, closed until a write succeeds.
    pub fn new(ttl: Duration) -> Fence {
        Fence {
            ttl,
            margin: safety_margin(ttl),
            sent: None,
        }
    }

    /// Records that a write of the key sent at `sent` succeeded. An older success than the
    /// one recorded changes nothing.
    pub fn renewed(&mut self, sent: Instant) {
        if self.sent.is_none_or(|s| sent > s) {
            self.sent = Some(sent);
        }
    }

    /// Closes the fence for good (deposed, released).
    pub fn close(&mut self) {
        self.sent = None;
    }

    /// Until when the holder may write (`None`: not at all).
    pub fn valid_until(&self) -> Option<Instant> {
        self.sent.map(|s| s + self.ttl.saturating_sub(self.margin))
    }

    /// Whether the holder may write at `now`.
    pub fn valid_at(&self, now: Instant) -> bool {
        self.valid_until().is_some_and(|until| now < until)
    }

    /// Whether the holder may write now.
    pub fn valid(&self) -> bool {
        self.valid_at(Instant::now())
    }
}

/// A lease this node holds.
#[derive(Debug, Clone)]
pub struct Lease {
    key: String,
    value: LeaseValue,
    revision: u64,
    fence: Fence,
}

/// What [`Lease::renew`] found.
#[derive(Debug)]
pub enum Renewal {
    /// Renewed: the fence is open until TTL − margin after the renewal was sent.
    Renewed,
    /// Someone else wrote the key, or it expired: this node no longer holds it.
    Deposed,
    /// NATS did not answer (a leader election, a lost connection): still held if a later
    /// renewal succeeds before the key expires; the fence closes meanwhile on its own.
    Failed(ClusterError),
}

impl Lease {
    /// Tries to take `key` for this node: `Ok(None)` when another node holds it.
    pub async fn acquire(cluster: &Cluster, key: &str) -> Result<Option<Lease>, ClusterError> {
        let leases = cluster.leases();
        let current = leases.entry(key).await.map_err(js)?;
        let mut previous_epoch = 0;
        if let Some(entry) = &current
            && entry.operation == Operation::Put
        {
            match LeaseValue::parse(&entry.value) {
                // Our own lease from before (a restart within the TTL): take it back by
                // compare-and-set, which fails if anyone else wrote it meanwhile.
                Some(v) if v.node == cluster.node() => {
                    return reclaim(cluster, key, v, entry.revision).await;
                }
                Some(_) => return Ok(None),
                // Not a lease value: held by something we do not understand; never overwritten.
                None => return Ok(None),
            }
        }
        if let Some(entry) = &current
            && let Some(v) = LeaseValue::parse(&entry.value)
        {
            previous_epoch = v.epoch;
        }
        let Some(epoch) = reserve_epoch(cluster, key, previous_epoch).await? else {
            // Another node reserved an epoch at the same moment (typed or not): it is
            // acquiring.
            return Ok(None);
        };
        let value = LeaseValue {
            node: cluster.node().to_string(),
            epoch,
            applied: 0,
            events: 0,
        };
        let sent = Instant::now();
        match leases.create(key, value.to_bytes()).await {
            Ok(revision) => {
                let mut fence = Fence::new(cluster.settings().lease_ttl);
                fence.renewed(sent);
                Ok(Some(Lease {
                    key: key.to_string(),
                    value,
                    revision,
                    fence,
                }))
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists || lost_race(&e) => Ok(None),
            Err(e) => Err(js(e)),
        }
    }

    /// Renews the lease, recording the shard's progress in its value.
    pub async fn renew(&mut self, cluster: &Cluster, applied: u64, events: u64) -> Renewal {
        let mut value = self.value.clone();
        value.applied = applied;
        value.events = events;
        let sent = Instant::now();
        let update = cluster
            .leases()
            .update(&self.key, value.to_bytes(), self.revision);
        match tokio::time::timeout(cluster.settings().lease_ttl, update).await {
            Ok(Ok(revision)) => {
                self.revision = revision;
                self.value = value;
                self.fence.renewed(sent);
                Renewal::Renewed
            }
            Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                self.fence.close();
                Renewal::Deposed
            }
            Ok(Err(e)) => Renewal::Failed(js(e)),
            Err(_) => Renewal::Failed(ClusterError::JetStream(
                "lease renewal not answered within the lease TTL".into(),
            )),
        }
    }

    /// Gives the lease up (a clean stop, or balancing): deletes the key if it is still ours.
    /// The caller has stopped writing first.
    pub async fn release(mut self, cluster: &Cluster) -> Result<(), ClusterError> {
        self.fence.close();
        cluster
            .leases()
            .delete_expect_revision(&self.key, Some(self.revision))
            .await
            .map_err(js)
    }

    /// The key (`p3`, `sys`, `detector`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value last written.
    pub fn value(&self) -> &LeaseValue {
        &self.value
    }

    /// The epoch of this acquisition.
    pub fn epoch(&self) -> u64 {
        self.value.epoch
    }

    /// The timing: until when this node may write.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Whether this node may write now.
    pub fn valid(&self) -> bool {
        self.fence.valid()
    }
}

/// Takes back this node's own unexpired lease (found after a restart) by compare-and-set.
async fn reclaim(
    cluster: &Cluster,
    key: &str,
    value: LeaseValue,
    revision: u64,
) -> Result<Option<Lease>, ClusterError> {
    let Some(epoch) = reserve_epoch(cluster, key, value.epoch).await? else {
        return Ok(None);
    };
    let value = LeaseValue { epoch, ..value };
    let sent = Instant::now();
    match cluster
        .leases()
        .update(key, value.to_bytes(), revision)
        .await
    {
        Ok(revision) => {
            let mut fence = Fence::new(cluster.settings().lease_ttl);
            fence.renewed(sent);
            Ok(Some(Lease {
                key: key.to_string(),
                value,
                revision,
                fence,
            }))
        }
        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision || lost_race(&e) => Ok(None),
        Err(e) => Err(js(e)),
    }
}

/// The state-bucket key keeping `key`'s last epoch.
pub fn epoch_key(key: &str) -> String {
    format!("epoch.{key}")
}

/// Reserves the next epoch of `key` (above `seen` and above the one recorded) by
/// compare-and-set; `None` when another node reserved one at the same moment, whether the lost
/// race came back typed or untyped ([`lost_race`]).
async fn reserve_epoch(
    cluster: &Cluster,
    key: &str,
    seen: u64,
) -> Result<Option<u64>, ClusterError> {
    reserve_above(cluster, &epoch_key(key), seen).await
}

/// The state-bucket key of the cluster-wide counter `name` ([`reserve_number`]).
pub fn counter_key(name: &str) -> String {
    format!("counter.{name}")
}

/// Reserves the next number of the cluster-wide counter `name` (kept in the state bucket under
/// [`counter_key`], no TTL): one above both the number last reserved and `above`, by
/// compare-and-set, so no two calls anywhere in the cluster get the same number. Retries a
/// few times when another node reserved one at the same moment; `None` if it kept losing.
pub async fn reserve_number(
    cluster: &Cluster,
    name: &str,
    above: u64,
) -> Result<Option<u64>, ClusterError> {
    let key = counter_key(name);
    let mut last_error = None;
    for attempt in 0..RESERVE_TRIES {
        match reserve_above(cluster, &key, above).await {
            Ok(Some(n)) => return Ok(Some(n)),
            Ok(None) => {}
            // A lost race is `Ok(None)` (typed or not, see [`lost_race`]); anything else
            // (a leader election, say) is retried too: compare-and-set keeps it safe.
            Err(e) => last_error = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(2 * (attempt as u64 + 1))).await;
    }
    match last_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// How many times [`reserve_number`] tries before giving up.
const RESERVE_TRIES: usize = 16;

/// Writes one above the larger of `seen` and the number recorded under `ekey`, by
/// compare-and-set; `None` when another writer got there first (typed or not: [`lost_race`]).
async fn reserve_above(
    cluster: &Cluster,
    ekey: &str,
    seen: u64,
) -> Result<Option<u64>, ClusterError> {
    let state = cluster.state();
    let entry = state.entry(ekey).await.map_err(js)?;
    let (recorded, revision) = match &entry {
        Some(e) if e.operation == Operation::Put => (
            std::str::from_utf8(&e.value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(0),
            Some(e.revision),
        ),
        Some(e) => (0, Some(e.revision)),
        None => (0, None),
    };
    let next = recorded.max(seen).saturating_add(1);
    let bytes = Bytes::from(next.to_string());
    let written = match revision {
        Some(r) => match state.update(ekey, bytes, r).await {
            Ok(_) => true,
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision || lost_race(&e) => false,
            Err(e) => return Err(js(e)),
        },
        None => match state.create(ekey, bytes).await {
            Ok(_) => true,
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists || lost_race(&e) => false,
            Err(e) => return Err(js(e)),
        },
    };
    Ok(written.then_some(next))
}

/// Whether `error` (a failed compare-and-set write) says another writer got there first, read
/// from the JetStream API error in its source chain: "wrong last sequence" (10071) or its
/// newer constant form (10164), which async-nats 0.52 passes on as an untyped "other" when a
/// `create` lost to a write its read had not seen yet. Never true for a connection or
/// timeout error, which carry no API error.
pub fn lost_race(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(api) = e.downcast_ref::<async_nats::jetstream::Error>() {
            return matches!(
                api.error_code(),
                ErrorCode::STREAM_WRONG_LAST_SEQUENCE
                    | ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT
            );
        }
        next = e.source();
    }
    false
}

fn js(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::JetStream(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_closes_a_margin_before_the_server_could_expire_the_key() {
        let ttl = Duration::from_secs(6);
        let mut fence = Fence::new(ttl);
        let t0 = Instant::now();
        assert!(!fence.valid_at(t0), "closed until a write succeeds");
        fence.renewed(t0);
        assert!(fence.valid_at(t0));
        let margin = safety_margin(ttl);
        assert!(fence.valid_at(t0 + ttl - margin - Duration::from_millis(1)));
        assert!(!fence.valid_at(t0 + ttl - margin));
        // The server's expiry, counted from when it stored the write (after it was sent),
        // is never before the fence closed.
        assert!(!fence.valid_at(t0 + ttl));
    }

    #[test]
    fn a_renewal_extends_from_when_it_was_sent_and_an_older_answer_changes_nothing() {
        let ttl = Duration::from_secs(6);
        let mut fence = Fence::new(ttl);
        let t0 = Instant::now();
        fence.renewed(t0);
        let t1 = t0 + Duration::from_secs(2);
        fence.renewed(t1);
        assert_eq!(fence.valid_until(), Some(t1 + ttl - safety_margin(ttl)));
        // A renewal sent earlier but answered late does not move the fence back.
        fence.renewed(t0 + Duration::from_secs(1));
        assert_eq!(fence.valid_until(), Some(t1 + ttl - safety_margin(ttl)));
        // Without renewals, the fence closes after TTL − margin, even though renewals
        // every TTL/3 would have kept it open.
        assert!(fence.valid_at(t1 + renew_interval(ttl) * 2));
        assert!(!fence.valid_at(t1 + ttl));
        fence.close();
        assert!(!fence.valid_at(t1));
    }

    /// A JetStream API error as the server sends it, wrapped the way async-nats 0.52 wraps
    /// a failed `create`: publish error → update error → create error, all of kind "other".
    fn untyped_create_error(err_code: u64) -> kv::CreateError {
        use async_nats::jetstream::context::{PublishError, PublishErrorKind};
        let api: async_nats::jetstream::Error = serde_json::from_str(&format!(
            r#"{{"code":400,"err_code":{err_code},"description":"wrong last sequence"}}"#
        ))
        .unwrap();
        let update = kv::UpdateError::from(PublishError::with_source(PublishErrorKind::Other, api));
        let create = kv::CreateError::from(update);
        assert_eq!(
            create.kind(),
            kv::CreateErrorKind::Other,
            "untyped, as seen"
        );
        create
    }

    #[test]
    fn a_lost_race_is_recognised_whatever_form_it_comes_in() {
        // The untyped forms a lost create comes back in: both "wrong last sequence" codes.
        assert!(lost_race(&untyped_create_error(10164)));
        assert!(lost_race(&untyped_create_error(10071)));
        let typed =
            kv::UpdateError::from(async_nats::jetstream::context::PublishError::with_source(
                async_nats::jetstream::context::PublishErrorKind::WrongLastSequence,
                serde_json::from_str::<async_nats::jetstream::Error>(
                    r#"{"code":400,"err_code":10071,"description":"wrong last sequence: 7"}"#,
                )
                .unwrap(),
            ));
        assert_eq!(typed.kind(), kv::UpdateErrorKind::WrongLastRevision);
        assert!(lost_race(&typed));
        // Other API errors, and errors without an API error (a timeout, a lost connection),
        // are failures, not lost races.
        assert!(!lost_race(&untyped_create_error(10008)));
        assert!(!lost_race(&kv::CreateError::new(
            kv::CreateErrorKind::Publish
        )));
        assert!(!lost_race(&kv::UpdateError::new(
            kv::UpdateErrorKind::TimedOut
        )));
        assert!(!lost_race(&std::io::Error::other("connection reset")));
    }

    #[test]
    fn lease_values_parse_strictly_and_hostile_ones_are_refused() {
        let v = LeaseValue {
            node: "n1".into(),
            epoch: 7,
            applied: 1234,
            events: 5678,
        };
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(
            text,
            r#"{"node":"n1","epoch":7,"applied":1234,"events":5678}"#
        );
        assert_eq!(LeaseValue::parse(text.as_bytes()), Some(v));
        assert_eq!(
            LeaseValue::parse(br#"{"node":"n2","epoch":1}"#).map(|v| v.applied),
            Some(0)
        );
        assert_eq!(LeaseValue::parse(b""), None);
        assert_eq!(LeaseValue::parse(b"{\"node\":1}"), None);
        assert_eq!(LeaseValue::parse(&vec![b' '; 10_000]), None);
    }
}
