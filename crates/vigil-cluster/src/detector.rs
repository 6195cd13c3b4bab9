//! The detector's lease and cursor (cluster mode): one node at a time runs detection, holding
//! the lease `detector` in the leases bucket, and keeps its cursor — the last stream sequence
//! whose effects (alerts, bans) are durable — in the state bucket under `detector.cursor`.
//!
//! The lease is created to acquire (only one `create` can win), updated with its last
//! revision to renew, and expires after the lease TTL when its holder stops renewing. The
//! holder counts its lease valid only until half the TTL after it *sent* its last successful
//! renewal (fencing: it stops detecting before the lease can have expired on any server, so
//! two detectors never run at once). The cursor is written with the revision the holder read
//! or wrote last, so a deposed holder's late write is refused.
//!
//! (Engineer B's `lease` module generalises the shard leases; the value here has the agreed
//! shape `{"node", "epoch", "applied", "events"}` and the two are to be unified.)

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::Operation;
use serde::{Deserialize, Serialize};

use crate::{Cluster, ClusterError};

/// The lease key of the detector in the leases bucket.
pub const LEASE_KEY: &str = "detector";
/// The cursor key in the state bucket.
pub const CURSOR_KEY: &str = "detector.cursor";
/// The key in the state bucket (which does not expire) holding the highest epoch a detector
/// ever acquired: written by each new holder before it acts, so epochs never repeat even when
/// a holder dies before it saved a cursor (alert ids are stamped with the epoch).
pub const EPOCH_KEY: &str = "detector.epoch";

/// A lease's value (the agreed shape of every lease in the leases bucket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseValue {
    /// The holder.
    pub node: String,
    /// Increases each time the lease changes hands.
    pub epoch: u64,
    /// The last stream sequence whose effects the holder has made durable (0: none).
    #[serde(default)]
    pub applied: u64,
    /// Events evaluated by this holder.
    #[serde(default)]
    pub events: u64,
}

/// The detector's cursor in the state bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The last stream sequence evaluated whose alerts and bans are durable.
    pub seq: u64,
    /// The node that wrote it.
    pub node: String,
    /// Its lease epoch then.
    pub epoch: u64,
}

/// The lease as its holder knows it.
#[derive(Debug, Clone, Copy)]
struct Held {
    revision: u64,
    epoch: u64,
    valid_until: Instant,
}

/// This node's side of the detector lease.
pub struct DetectorLease {
    cluster: Cluster,
    /// The lease's key: [`LEASE_KEY`], or `detector.<k>` for detector partition `k`.
    lease_key: String,
    /// The cursor's key: [`CURSOR_KEY`], or `detector.<k>.cursor`.
    cursor_key: String,
    held: Mutex<Option<Held>>,
    /// The highest epoch seen in the lease or the cursor.
    seen_epoch: AtomicU64,
    /// The cursor's last revision known to this holder (0: none read yet).
    cursor_revision: AtomicU64,
    /// What the lease value reports.
    applied: AtomicU64,
    events: AtomicU64,
    /// Stopped for good (a stop, or a test simulating a crash).
    dead: AtomicBool,
    /// Given up by a clean stop ([`DetectorLease::release`]; not a simulated crash).
    released: AtomicBool,
    /// Whether this node may acquire the lease when it is free (a node still replaying the
    /// shared books would hold the lease without detecting).
    eligible: AtomicBool,
}

impl DetectorLease {
    /// This node's side of the lease (not held until [`DetectorLease::turn`] acquires it).
    pub fn new(cluster: Cluster) -> DetectorLease {
        DetectorLease::for_partition(cluster, 0, 1)
    }

    /// This node's side of the lease of detector partition `index` of `count` (cluster mode
    /// with partitioned detection, `vigil_detect::partition`): the key `detector.<index>` and
    /// the cursor `detector.<index>.cursor`, each partition its own. Epochs come from the one
    /// shared record ([`EPOCH_KEY`]), reserved by compare-and-set, so no two acquisitions of
    /// any partitions share one (alert and ban ids are stamped with it). `count` ≤ 1 is the
    /// one `detector` lease.
    pub fn for_partition(cluster: Cluster, index: u32, count: u32) -> DetectorLease {
        let (lease_key, cursor_key) = if count <= 1 {
            (LEASE_KEY.to_string(), CURSOR_KEY.to_string())
        } else {
            (
                format!("{LEASE_KEY}.{index}"),
                format!("{LEASE_KEY}.{index}.cursor"),
            )
        };
        DetectorLease {
            cluster,
            lease_key,
            cursor_key,
            held: Mutex::new(None),
            seen_epoch: AtomicU64::new(0),
            cursor_revision: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            events: AtomicU64::new(0),
            dead: AtomicBool::new(false),
            released: AtomicBool::new(false),
            eligible: AtomicBool::new(true),
        }
    }

    /// How often [`DetectorLease::turn`] should run: a quarter of the TTL.
    pub fn period(&self) -> Duration {
        (self.cluster.settings().lease_ttl / 4).max(Duration::from_millis(100))
    }

    /// The epoch of the lease if this node holds it now (and may act on it).
    pub fn held(&self) -> Option<u64> {
        if self.dead.load(Ordering::SeqCst) {
            return None;
        }
        let held = *self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.filter(|h| Instant::now() < h.valid_until)
            .map(|h| h.epoch)
    }

    /// Records progress for the lease value (shown by cluster health).
    pub fn report(&self, applied: u64, events: u64) {
        self.applied.store(applied, Ordering::Relaxed);
        self.events.store(events, Ordering::Relaxed);
    }

    fn value(&self, epoch: u64) -> bytes::Bytes {
        let v = LeaseValue {
            node: self.cluster.node().to_string(),
            epoch,
            applied: self.applied.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
        };
        serde_json::to_vec(&v).unwrap_or_default().into()
    }

    /// One renewal (when held) or acquisition attempt (when free). Returns whether this node
    /// holds the lease afterwards.
    pub async fn turn(&self) -> bool {
        if self.dead.load(Ordering::SeqCst) {
            return false;
        }
        let ttl = self.cluster.settings().lease_ttl;
        let leases = self.cluster.leases();
        let current = *self.held.lock().unwrap_or_else(|p| p.into_inner());
        let sent = Instant::now();
        if let Some(h) = current {
            let renewed = leases
                .update(&self.lease_key, self.value(h.epoch), h.revision)
                .await;
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            return match renewed {
                Ok(revision) if !self.dead.load(Ordering::SeqCst) => {
                    *held = Some(Held {
                        revision,
                        epoch: h.epoch,
                        valid_until: sent + ttl / 2,
                    });
                    true
                }
                Ok(_) => false,
                Err(e) => {
                    // Lost (expired and taken, or unreachable): stop at once.
                    tracing::warn!("detector lease not renewed: {e}");
                    *held = None;
                    false
                }
            };
        }
        match leases.entry(&self.lease_key).await {
            Ok(Some(entry)) if entry.operation == Operation::Put => {
                if let Ok(v) = serde_json::from_slice::<LeaseValue>(&entry.value) {
                    self.seen_epoch.fetch_max(v.epoch, Ordering::SeqCst);
                }
                return false;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!("detector lease not read: {e}");
                return false;
            }
        }
        if !self.eligible.load(Ordering::SeqCst) {
            return false;
        }
        // Free: the next epoch after every one seen (the lease's own expires with it; the
        // cursor's and the recorded highest epoch stay).
        if let Ok(Some((cursor, _))) = self.read_cursor().await {
            self.seen_epoch.fetch_max(cursor.epoch, Ordering::SeqCst);
        }
        // The next epoch is reserved by compare-and-set on the shared record before the lease
        // is taken: no two acquisitions — of this lease or of another detector partition's —
        // ever share an epoch, even at the same instant or if this node dies between the two
        // writes. A reservation whose lease is then not taken is skipped, never reused.
        let state = self.cluster.state();
        let (recorded, revision) = match state.entry(EPOCH_KEY).await {
            Ok(Some(entry)) if entry.operation == Operation::Put => {
                let recorded = std::str::from_utf8(&entry.value)
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(0);
                (recorded, Some(entry.revision))
            }
            Ok(_) => (0, None),
            Err(e) => {
                tracing::debug!("{EPOCH_KEY} not read: {e}");
                return false;
            }
        };
        self.seen_epoch.fetch_max(recorded, Ordering::SeqCst);
        let epoch = self.seen_epoch.load(Ordering::SeqCst) + 1;
        let bytes: bytes::Bytes = epoch.to_string().into_bytes().into();
        let reserved = match revision {
            Some(revision) => state
                .update(EPOCH_KEY, bytes, revision)
                .await
                .map_err(|e| e.to_string()),
            None => state
                .create(EPOCH_KEY, bytes)
                .await
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = reserved {
            tracing::debug!("{EPOCH_KEY}: epoch {epoch} taken by another acquisition: {e}");
            return false;
        }
        self.seen_epoch.fetch_max(epoch, Ordering::SeqCst);
        let sent = Instant::now();
        match leases.create(&self.lease_key, self.value(epoch)).await {
            Ok(revision) if !self.dead.load(Ordering::SeqCst) => {
                *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(Held {
                    revision,
                    epoch,
                    valid_until: sent + ttl / 2,
                });
                tracing::info!(
                    "detection: this node ({}) holds the detector lease {}, epoch {epoch}",
                    self.cluster.node(),
                    self.lease_key
                );
                true
            }
            _ => false,
        }
    }

    /// Whether this node may acquire the lease when it is free (renewing one it holds is not
    /// affected). A node whose shared books are not caught up is not eligible.
    pub fn set_eligible(&self, eligible: bool) {
        self.eligible.store(eligible, Ordering::SeqCst);
    }

    /// Renews or acquires the lease every [`DetectorLease::period`] until `stop`, then gives it
    /// up (so another node takes over at once rather than after the TTL).
    pub async fn run(self: std::sync::Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut every = tokio::time::interval(self.period());
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.changed() => break,
            }
            if self.dead.load(Ordering::SeqCst) {
                return;
            }
            self.turn().await;
        }
        self.release().await;
    }

    /// Stops holding the lease at once, without giving it up yet (balancing, see
    /// `crate::balance::detector_plan`): [`DetectorLease::held`] is `None` from now on, so this
    /// node's detector stops; the caller waits until it has, then calls
    /// [`DetectorLease::give_up`] with the revision returned (`None`: not held).
    pub fn step_down(&self) -> Option<u64> {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .map(|h| h.revision)
    }

    /// Deletes the lease key if it is still at `revision` (this node's last write), so another
    /// node takes the partition over at once rather than after the TTL.
    pub async fn give_up(&self, revision: u64) {
        if let Err(e) = self
            .cluster
            .leases()
            .delete_expect_revision(&self.lease_key, Some(revision))
            .await
        {
            tracing::debug!("{} not given up (it expires): {e}", self.lease_key);
        }
    }

    /// The lease's key in the leases bucket.
    pub fn key(&self) -> &str {
        &self.lease_key
    }

    /// Gives the lease up now (a clean stop).
    pub async fn release(&self) {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.released.store(true, Ordering::SeqCst);
        self.dead.store(true, Ordering::SeqCst);
        if let Some(h) = held {
            let _ = self
                .cluster
                .leases()
                .delete_expect_revision(&self.lease_key, Some(h.revision))
                .await;
        }
    }

    /// Whether the lease was given up by a clean stop ([`DetectorLease::release`]): a
    /// voluntary loss, after which the holder may still flush what it owes.
    pub fn released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    /// Stops renewing and never holds the lease again, without giving it up: what a crash
    /// does (tests; the lease expires after the TTL).
    pub fn abandon(&self) {
        self.dead.store(true, Ordering::SeqCst);
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The cursor and its revision, if one was written.
    pub async fn read_cursor(&self) -> Result<Option<(Cursor, u64)>, ClusterError> {
        let entry = self
            .cluster
            .state()
            .entry(&self.cursor_key)
            .await
            .map_err(|e| ClusterError::JetStream(format!("reading {}: {e}", self.cursor_key)))?;
        let Some(entry) = entry.filter(|e| e.operation == Operation::Put) else {
            return Ok(None);
        };
        let cursor: Cursor = serde_json::from_slice(&entry.value).map_err(|e| {
            ClusterError::JetStream(format!("{} does not parse: {e}", self.cursor_key))
        })?;
        Ok(Some((cursor, entry.revision)))
    }

    /// Reads the cursor for a holder that just took the lease over, remembering its revision
    /// for [`DetectorLease::write_cursor`]. `None`: no detector ever saved one.
    pub async fn take_cursor(&self) -> Result<Option<Cursor>, ClusterError> {
        let read = self.read_cursor().await?;
        self.cursor_revision
            .store(read.as_ref().map_or(0, |(_, r)| *r), Ordering::SeqCst);
        Ok(read.map(|(c, _)| c))
    }

    /// Saves the cursor: only while holding the lease, and only over the revision this holder
    /// read or wrote last (a deposed holder's write is refused and it stops holding).
    pub async fn write_cursor(&self, seq: u64) -> Result<(), ClusterError> {
        let Some(epoch) = self.held() else {
            return Err(ClusterError::JetStream(
                "not holding the detector lease; cursor not saved".into(),
            ));
        };
        let value: bytes::Bytes = serde_json::to_vec(&Cursor {
            seq,
            node: self.cluster.node().to_string(),
            epoch,
        })
        .unwrap_or_default()
        .into();
        let state = self.cluster.state();
        let last = self.cursor_revision.load(Ordering::SeqCst);
        let written = if last == 0 {
            state
                .create(&self.cursor_key, value)
                .await
                .map_err(|e| e.to_string())
        } else {
            state
                .update(&self.cursor_key, value, last)
                .await
                .map_err(|e| e.to_string())
        };
        match written {
            Ok(revision) => {
                self.cursor_revision.store(revision, Ordering::SeqCst);
                self.applied.store(seq, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                *self.held.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Err(ClusterError::JetStream(format!(
                    "{} written by another detector ({e}); this node stops detecting",
                    self.cursor_key
                )))
            }
        }
    }
}
