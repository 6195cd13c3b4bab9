//! Detection in cluster mode. Correlations need every event of a group in one place. With one
//! detector partition (`detector_partitions` = 1), one node at a time detects: the holder of
//! the `detector` lease ([`DetectorLease`]). With `K` > 1, each partition `k` has its own lease
//! `detector.<k>` and cursor, any node may hold any number of them (spread by
//! [`super::detect_balance`]), and each held partition reads every event but keeps only its
//! share of the alert groups (`vigil_detect::DetectorPartition`). A node's detector
//! ([`DetectService`]: rules, correlations, alert book, responders) runs one *lane* per
//! partition over every shard's subject of the stream in stream order ([`StreamSource`]),
//! each from its partition's cursor in the state bucket; its alerts, notifications and bans go
//! through the door, which puts Vigil's own events on the `sys` shard. Every node follows `sys`
//! ([`crate::cluster::state`]) and keeps the same alert and ban books.
//!
//! A takeover (the detector's node died: its lease expired; or it stopped: it gave the lease
//! up): the new holder waits until its book has applied `sys` to its end, reads the cursor,
//! and resumes after it. What the previous detector raised past its cursor is in the book,
//! and the standalone restart logic applies: a match an alert already counted raises nothing
//! again. Correlation windows are not persisted but rebuilt: before resuming, the new holder
//! re-reads the stretch of the stream the longest correlation's timespan covers (by store
//! time, at most an hour: `MAX_REBUILD` in `detect/shared.rs`), raising nothing for it, so a
//! correlation whose first events the previous holder evaluated and whose last ones the new
//! holder evaluates is one alert (`cluster_detect.rs`, and with SIGKILL of the real binary
//! `cluster_detector_partitions.rs`). What is lost: windows longer than an hour are rebuilt
//! over the last hour only. Behaviour rules' memory (`new_terms`, `outlier`, `peer_outlier`)
//! is checkpointed by the holder after its cursor ([`ClusterRole::save_behaviour`], into the
//! object store of [`vigil_cluster::behaviour`]) and restored by the next holder
//! ([`ClusterRole::load_behaviour`]; `detect/behaviour.rs`), so those rules resume rather than
//! learn again (docs/cluster.md, `cluster_behaviour.rs`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;
use vigil_cluster::detector::DetectorLease;
use vigil_cluster::follow::{StreamFollower, index_of, message_of, position};
use vigil_cluster::{Cluster, behaviour, codec};
use vigil_detect::DetectorPartition;
use vigil_event::Event;
use vigil_ingest::Door;

use crate::cluster::state::{Books, SysProgress, follow_sys, sys_end};
use crate::decisions::DecisionService;
use crate::detect::{DetectService, EventSource};

/// How far back the cluster's first detector evaluates what nodes accepted before it held
/// the lease.
const FIRST_LOOKBACK: Duration = Duration::from_secs(600);

/// How long a new detector waits for its book to apply `sys` to its end before it tries again.
const CATCH_UP: Duration = Duration::from_secs(30);

/// How often a partition's holder checkpoints its behaviour-rule state (at most; and at a
/// clean stop): a successor re-learns at most this much of the stream (plus the cursor's lag).
pub const BEHAVIOUR_EVERY: Duration = Duration::from_secs(10);

/// The longest a behaviour checkpoint's write or read may take.
const BEHAVIOUR_IO: Duration = Duration::from_secs(30);

/// This node's part in cluster detection: the lease, whether it detects now, and the way to
/// the stream and the shared cursor (used by [`DetectService`] when it runs in a cluster).
pub struct ClusterRole {
    cluster: Cluster,
    partition: DetectorPartition,
    lease: Arc<DetectorLease>,
    sys: Arc<SysProgress>,
    runtime: tokio::runtime::Handle,
    detecting: AtomicBool,
    /// The lease epoch the lane began detecting at ([`ClusterRole::begin`]; 0: none): a lane
    /// detects only while the lease is held at that epoch.
    begun: AtomicU64,
    /// The lease was stepped down for a hand-over ([`ClusterRole::step_down`]): the only way
    /// of losing it after which the lane flushes (counts, acknowledged effects) before it stops.
    handing_over: AtomicBool,
    /// Orders a lane's start with a hand-over's step-down ([`ClusterRole::begin`],
    /// [`ClusterRole::step_down`]).
    transition: std::sync::Mutex<()>,
    /// Stream messages that did not decode (skipped by the detector).
    pub undecodable: Arc<AtomicU64>,
    /// When and at which position this node last checkpointed the partition's behaviour
    /// state (none: not since it began).
    behaviour_saved: std::sync::Mutex<Option<(Instant, u64)>>,
}

impl ClusterRole {
    /// The role of this node over `cluster` for detector `partition` (the lease task and the
    /// `sys` follower are started by [`start`]). [`DetectorPartition::WHOLE`] is the one
    /// `detector` lease; another partition holds `detector.<k>` with its own cursor
    /// ([`DetectorLease::for_partition`]) and evaluates only its share of the alert groups.
    pub fn new(
        cluster: Cluster,
        partition: DetectorPartition,
        sys: Arc<SysProgress>,
        runtime: tokio::runtime::Handle,
    ) -> ClusterRole {
        ClusterRole {
            lease: Arc::new(DetectorLease::for_partition(
                cluster.clone(),
                partition.index(),
                partition.count(),
            )),
            partition,
            cluster,
            sys,
            runtime,
            detecting: AtomicBool::new(false),
            begun: AtomicU64::new(0),
            handing_over: AtomicBool::new(false),
            transition: std::sync::Mutex::new(()),
            undecodable: Arc::new(AtomicU64::new(0)),
            behaviour_saved: std::sync::Mutex::new(None),
        }
    }

    /// The share of the alert groups this role detects.
    pub fn partition(&self) -> DetectorPartition {
        self.partition
    }

    /// What the alerts of this partition record as theirs (`vigil.alert.partition`): none
    /// with one detector partition (alerts as before), else the partition's index.
    pub fn tag(&self) -> Option<u32> {
        (!self.partition.is_whole()).then(|| self.partition.index())
    }

    /// The detector lease.
    pub fn lease(&self) -> &Arc<DetectorLease> {
        &self.lease
    }

    /// Whether this node holds the detector lease now.
    pub fn holding(&self) -> bool {
        self.lease.held().is_some()
    }

    /// Whether this node detects now (it holds the lease and has taken over).
    pub fn detecting(&self) -> bool {
        self.detecting.load(Ordering::SeqCst)
    }

    pub(crate) fn set_detecting(&self, on: bool) {
        self.detecting.store(on, Ordering::SeqCst);
    }

    /// Starts detecting after a takeover, if the lease is still held at `epoch` (a hand-over
    /// may have stepped it down during the takeover). Returns whether it started.
    pub(crate) fn begin(&self, epoch: u64) -> bool {
        let _order = self.transition.lock().unwrap_or_else(|p| p.into_inner());
        if self.lease.held() != Some(epoch) {
            return false;
        }
        self.begun.store(epoch, Ordering::SeqCst);
        self.handing_over.store(false, Ordering::SeqCst);
        self.detecting.store(true, Ordering::SeqCst);
        true
    }

    /// The lease epoch the lane began detecting at (0: never began).
    pub(crate) fn begun(&self) -> u64 {
        self.begun.load(Ordering::SeqCst)
    }

    /// Whether the lease was stepped down for a hand-over (not lost, not expired) since the
    /// lane began.
    pub(crate) fn handing_over(&self) -> bool {
        self.handing_over.load(Ordering::SeqCst)
    }

    /// Steps the lease down for a hand-over (see [`DetectorLease::step_down`]): after it, no
    /// lane starts detecting this partition until the lease is acquired again, and one that
    /// detects stops at its next turn. Returns the lease's revision to give up.
    pub(crate) fn step_down(&self) -> Option<u64> {
        let _order = self.transition.lock().unwrap_or_else(|p| p.into_inner());
        let revision = self.lease.step_down();
        if revision.is_some() {
            self.handing_over.store(true, Ordering::SeqCst);
        }
        revision
    }

    /// Takes over after acquiring the lease (blocking; the detector's thread): waits until this
    /// node's book has applied `sys` to its end, and returns the position to resume from —
    /// after the shared cursor, or, when no detector ever saved one, the first event of the
    /// last [`FIRST_LOOKBACK`] (what nodes accepted before any detector held the lease; older
    /// history is for `vigil hunt`) — and the position to re-read
    /// from to rebuild correlation windows of length `window` (the first message stored within
    /// `window` before the cursor's message; at most the resume position),
    /// and the position one past the stream's end now (no alert can have counted beyond it).
    pub(crate) fn take_over(&self, window: Option<Duration>) -> Result<(u64, u64, u64), String> {
        self.runtime.block_on(async {
            let end = sys_end(&self.cluster).await?;
            let deadline = Instant::now() + CATCH_UP;
            while self.sys.applied() < end {
                if Instant::now() > deadline {
                    return Err(format!(
                        "the sys shard is not applied to its end ({} of {end})",
                        self.sys.applied()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let cursor = self.lease.take_cursor().await.map_err(|e| e.to_string())?;
            let seq = match cursor {
                Some(c) => c.seq,
                None => {
                    // No detector ever saved a cursor: this is the cluster's first. Nodes
                    // accept events before any detector holds the lease, so what came in
                    // the last FIRST_LOOKBACK is evaluated; older history is for `vigil hunt`.
                    let now = vigil_event::Timestamp::now().as_nanos();
                    let since = vigil_event::Timestamp::from_nanos(
                        now.saturating_sub(FIRST_LOOKBACK.as_nanos() as i64),
                    );
                    let filter = self.cluster.settings().names.stream_subjects();
                    vigil_cluster::follow::first_seq_since(&self.cluster, filter, since)
                        .await
                        .map_err(|e| e.to_string())?
                        .saturating_sub(1)
                }
            };
            let resume = position(seq.saturating_add(1), 0);
            let stream_end = self
                .cluster
                .stream()
                .get_info()
                .await
                .map_err(|e| e.to_string())?
                .state
                .last_sequence;
            let end = position(stream_end.saturating_add(1), 0).max(resume);
            let Some(window) = window else {
                return Ok((resume, resume, end));
            };
            // The windows to rebuild are those the previous holder had AT ITS CURSOR: the
            // re-read starts `window` before the cursor's message was stored (before now only
            // when there is no such message). Counting from now would miss them whenever
            // detection was behind by more than the window (a backlog, or a takeover after
            // every candidate was down for a while): a correlation straddling the cursor
            // would then start short and might never be raised.
            let now = vigil_event::Timestamp::now().as_nanos();
            let anchor = vigil_cluster::follow::stored_at(&self.cluster, seq)
                .await
                .map_err(|e| e.to_string())?
                .map_or(now, |t| t.as_nanos().min(now));
            let since = vigil_event::Timestamp::from_nanos(
                anchor.saturating_sub(window.as_nanos().min(i64::MAX as u128) as i64),
            );
            let filter = self.cluster.settings().names.stream_subjects();
            let first = vigil_cluster::follow::first_seq_since(&self.cluster, filter, since)
                .await
                .map_err(|e| e.to_string())?;
            Ok((resume, position(first, 0).min(resume), end))
        })
    }

    /// Saves the shared cursor (blocking): every message before `next` is evaluated and its
    /// alerts and bans are durable (the detector waited for them).
    pub(crate) fn save_cursor(&self, next: u64) -> Result<(), String> {
        if !self.detecting() {
            return Ok(());
        }
        // The detector reads whole messages: `next` is the start of the first one not done.
        debug_assert_eq!(index_of(next), 0);
        let seq = message_of(next).saturating_sub(1);
        self.runtime
            .block_on(self.lease.write_cursor(seq))
            .map_err(|e| e.to_string())
    }

    /// Reads the newest behaviour checkpoint of this partition (blocking; the detector's
    /// thread, at a takeover), bounded in size and time. A checkpoint that is damaged, hostile,
    /// not this partition's or claims a position past `end` (one past the stream's end) is
    /// [`BehaviourLoad::Refused`] and must not be used.
    pub(crate) fn load_behaviour(&self, end: u64, epoch: u64) -> (BehaviourLoad, Vec<String>) {
        let (index, count) = (self.partition.index(), self.partition.count());
        let key = self.lease.key().to_string();
        let loaded = self.runtime.block_on(async {
            tokio::time::timeout(BEHAVIOUR_IO, async {
                let store = behaviour::open(&self.cluster).await?;
                behaviour::load(&store, &key, index, count, epoch).await
            })
            .await
        });
        let (loaded, forged) = match loaded {
            Err(_) => {
                let e = format!(
                    "reading the behaviour checkpoint of {key} timed out after {BEHAVIOUR_IO:?}"
                );
                return (BehaviourLoad::Failed(e), Vec::new());
            }
            Ok(Err(e)) => return (BehaviourLoad::Failed(e.to_string()), Vec::new()),
            Ok(Ok(found)) => found,
        };
        let loaded = match loaded {
            behaviour::Loaded::None => BehaviourLoad::None,
            behaviour::Loaded::Refused(why) => BehaviourLoad::Refused(why),
            behaviour::Loaded::Found(c) if c.position > end => BehaviourLoad::Refused(format!(
                "the behaviour checkpoint of {key} (epoch {}) claims detector position {}, past \
                 the stream's end ({end})",
                c.epoch, c.position
            )),
            behaviour::Loaded::Found(c) => BehaviourLoad::Found {
                epoch: c.epoch,
                position: c.position,
                state: c.state,
            },
        };
        (loaded, forged)
    }

    /// Whether a behaviour checkpoint at `position` is due: `None` when there is nothing new
    /// to save (not detecting, or the last one is at `position`); else whether it is due now:
    /// [`BEHAVIOUR_EVERY`] after the last one (at once with `force`: a clean stop).
    pub(crate) fn behaviour_due(&self, position: u64, force: bool) -> Option<bool> {
        if !self.detecting() {
            return None;
        }
        let saved = self
            .behaviour_saved
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match *saved {
            None => Some(true),
            Some((_, at)) if at == position => None,
            Some((when, _)) => Some(force || when.elapsed() >= BEHAVIOUR_EVERY),
        }
    }

    /// Writes the partition's behaviour checkpoint, `state` valid at detector `position`
    /// (blocking): only while the lease is held at the epoch the lane began with, and only
    /// after the cursor was saved at `position` (the caller's order), so no successor finds a
    /// checkpoint whose events' alerts are not durable. Named by the epoch: a deposed holder
    /// never overwrites its successor's.
    pub(crate) fn save_behaviour(&self, position: u64, state: Vec<u8>) -> Result<(), String> {
        let epoch = self.begun();
        if !self.detecting() || self.lease.held() != Some(epoch) {
            return Ok(());
        }
        let checkpoint = behaviour::Checkpoint {
            partition: self.partition.index(),
            count: self.partition.count(),
            epoch,
            position,
            state,
        };
        let key = self.lease.key().to_string();
        let saved = self.runtime.block_on(async {
            tokio::time::timeout(BEHAVIOUR_IO, async {
                let store = behaviour::open(&self.cluster).await?;
                behaviour::save(&store, &key, &checkpoint).await
            })
            .await
        });
        // Tried: the next one comes after BEHAVIOUR_EVERY either way (a failed one is not
        // at any position: tried again then even if nothing new came).
        let at = if matches!(saved, Ok(Ok(()))) {
            position
        } else {
            u64::MAX
        };
        *self
            .behaviour_saved
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), at));
        match saved {
            Err(_) => Err(format!(
                "writing the behaviour checkpoint of {key} timed out after {BEHAVIOUR_IO:?}"
            )),
            Ok(r) => r.map_err(|e| e.to_string()),
        }
    }

    /// Forgets when the behaviour state was last checkpointed (a new takeover).
    pub(crate) fn behaviour_restart(&self) {
        *self
            .behaviour_saved
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// A reader of every shard's events from position `from` on.
    pub(crate) fn source(&self, from: u64) -> Box<dyn EventSource> {
        let filter = self.cluster.settings().names.stream_subjects();
        Box::new(StreamSource {
            follower: StreamFollower::start(&self.cluster, filter, message_of(from), &self.runtime),
            undecodable: Arc::clone(&self.undecodable),
        })
    }
}

/// What [`ClusterRole::load_behaviour`] found.
pub(crate) enum BehaviourLoad {
    /// No checkpoint of the partition.
    None,
    /// The newest checkpoint: written in `epoch`, `state` valid at detector `position`.
    Found {
        /// The epoch of the holder that wrote it.
        epoch: u64,
        /// The detector position the state is valid at.
        position: u64,
        /// The state's bytes (`vigil_detect::behaviour::persist`, not decoded yet).
        state: Vec<u8>,
    },
    /// A checkpoint that must not be used, and why.
    Refused(String),
    /// JetStream did not answer (worth trying again).
    Failed(String),
}

/// The stream as the detector reads it: whole messages, each event at its position.
pub struct StreamSource {
    follower: StreamFollower,
    undecodable: Arc<AtomicU64>,
}

impl EventSource for StreamSource {
    fn read(
        &mut self,
        from: u64,
        max: u64,
        f: &mut dyn FnMut(u64, &Event),
    ) -> Result<(u64, u64), String> {
        self.read_wanted(from, max, &|_| true, f)
    }

    /// Events `wanted` refuses are passed over undecoded, as the standalone ledger source
    /// does. A message whose framing is broken, or one of whose wanted events does not
    /// decode, is skipped whole and counted (as the shards refuse it whole).
    fn read_wanted(
        &mut self,
        from: u64,
        max: u64,
        wanted: &dyn Fn(&[u8]) -> bool,
        f: &mut dyn FnMut(u64, &Event),
    ) -> Result<(u64, u64), String> {
        let (mut n, mut next) = (0, from);
        while n < max {
            let message = match self.follower.try_next() {
                None => break,
                Some(Ok(message)) => message,
                Some(Err(e)) if n == 0 && next == from => return Err(e.to_string()),
                // What was read stands; the error comes again at the next read.
                Some(Err(_)) => break,
            };
            if message.seq < message_of(from) {
                continue;
            }
            match decode_wanted(&message.payload, message.seq, from, wanted) {
                Ok((events, read)) => {
                    for (at, event) in &events {
                        f(*at, event);
                    }
                    n += read;
                }
                Err(e) => {
                    // Not Vigil's: nothing to evaluate, nothing lost (the stream keeps it).
                    self.undecodable.fetch_add(1, Ordering::Relaxed);
                    tracing::error!("detection: stream message {} skipped: {e}", message.seq);
                }
            }
            next = position(message.seq + 1, 0);
        }
        Ok((n, next))
    }
}

/// The events of one stream message (at stream sequence `seq`) from detector position `from`
/// on that `wanted` accepts, decoded, each with its position; and how many events from `from`
/// on the message holds.
fn decode_wanted(
    payload: &[u8],
    seq: u64,
    from: u64,
    wanted: &dyn Fn(&[u8]) -> bool,
) -> Result<(Vec<(u64, Event)>, u64), codec::CodecError> {
    let mut events = Vec::new();
    let mut read = 0;
    for (index, bytes) in codec::split(payload)?.into_iter().enumerate() {
        let at = position(seq, index as u64);
        if at < from {
            continue;
        }
        read += 1;
        if wanted(bytes) {
            let event = Event::from_canonical(bytes).map_err(|e| codec::CodecError::Event {
                index,
                message: e.to_string(),
            })?;
            events.push((at, event));
        }
    }
    Ok((events, read))
}

/// What cluster detection is started with.
pub struct DetectPlan {
    /// The node's data directory.
    pub data_dir: PathBuf,
    /// Rule directories (none: no detector, only the shared books).
    pub rule_dirs: Vec<PathBuf>,
    /// Alert update throttle.
    pub throttle_secs: i64,
    /// The cluster's detector partitions `K` (`[cluster] detector_partitions`, checked
    /// against the cluster's record at start).
    pub partitions: u32,
    /// The door (in cluster mode it puts Vigil's own events on the `sys` shard).
    pub door: Arc<dyn Door>,
    /// The notifiers' queue.
    pub notify: crate::notify::NotifyQueue,
    /// The ban book ([`DecisionService::shared`]).
    pub decisions: Arc<DecisionService>,
    /// Cases and saved searches (their `sys` progress is the books' progress).
    pub shared: Arc<super::books::SharedBooks>,
}

/// Detection and the shared books of a cluster node, running.
pub struct ClusterDetection {
    /// The detector (none without rules).
    pub detect: Option<Arc<DetectService>>,
    /// This node's part in detection: one role per detector partition, each a lease this
    /// node may hold (none without rules).
    pub roles: Vec<Arc<ClusterRole>>,
    /// How far the shared books have applied `sys`.
    pub sys: Arc<SysProgress>,
    /// Gives the detector leases up: sent by [`ClusterDetection::release`] once the detector
    /// has flushed at a clean stop, never by the node's stop signal itself.
    release: watch::Sender<bool>,
    /// The lease tasks (they renew until `release`).
    leases: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl ClusterDetection {
    /// Whether this node detects now (any partition).
    pub fn detecting(&self) -> bool {
        self.roles.iter().any(|r| r.detecting())
    }

    /// Gives the detector leases up and waits until they are (a clean stop, after the
    /// detector stopped: its last alerts, bans, counts and cursor are durable, so a successor
    /// taking a lease over finds them). Until then the leases are renewed, so no other node
    /// starts detecting a partition while this one still flushes it.
    pub async fn release(&self) {
        let _ = self.release.send(true);
        let tasks = std::mem::take(&mut *self.leases.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
    }

    /// The detector partitions this node detects now.
    pub fn detecting_partitions(&self) -> Vec<u32> {
        self.roles
            .iter()
            .filter(|r| r.detecting())
            .map(|r| r.partition().index())
            .collect()
    }
}

/// Starts the `sys` follower and, with rules, the detector, one lease task per detector
/// partition and the task spreading the partitions over the nodes (the tasks run in `tasks`
/// until `stop`; the lease tasks run apart, until [`ClusterDetection::release`] after the
/// detector's final flush).
pub async fn start(
    cluster: &Cluster,
    plan: DetectPlan,
    tasks: &mut JoinSet<()>,
    stop: watch::Receiver<bool>,
) -> Result<ClusterDetection, String> {
    let sys = Arc::clone(&plan.shared.sys);
    let (release, release_rx) = watch::channel(false);
    let mut leases = Vec::new();
    let (detect, roles) = if plan.rule_dirs.is_empty() {
        (None, Vec::new())
    } else {
        let count = plan.partitions.max(1);
        let mut roles = Vec::new();
        for k in 0..count {
            let partition = DetectorPartition::new(k, count).map_err(|e| e.to_string())?;
            roles.push(Arc::new(ClusterRole::new(
                cluster.clone(),
                partition,
                Arc::clone(&sys),
                tokio::runtime::Handle::current(),
            )));
        }
        // Not a candidate for any detector lease before the books have replayed `sys` to
        // where it ended at this start: holding one earlier would stall detection (the
        // balancer makes the leases eligible once caught up).
        for role in &roles {
            role.lease().set_eligible(false);
        }
        let (r, decisions) = (roles.clone(), Arc::clone(&plan.decisions));
        let detect = tokio::task::spawn_blocking(move || {
            DetectService::start_with(
                &plan.data_dir,
                plan.rule_dirs,
                plan.throttle_secs,
                plan.door,
                plan.notify,
                Some(decisions),
                r,
            )
        })
        .await
        .map_err(|e| e.to_string())??;
        for role in &roles {
            // Not stopped by `stop`: a clean stop releases them after the detector's flush.
            leases.push(tokio::spawn(
                Arc::clone(role.lease()).run(release_rx.clone()),
            ));
        }
        tasks.spawn(super::detect_balance::run(
            cluster.clone(),
            roles.clone(),
            Arc::clone(&sys),
            stop.clone(),
        ));
        (Some(detect), roles)
    };
    let books = Books {
        detect: detect.clone(),
        decisions: plan.decisions,
        shared: plan.shared,
    };
    tasks.spawn(follow_sys(cluster.clone(), books, Arc::clone(&sys), stop));
    Ok(ClusterDetection {
        detect,
        roles,
        sys,
        release,
        leases: std::sync::Mutex::new(leases),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::Timestamp;

    fn event(i: i64, action: &str) -> Event {
        let mut e = Event::new(Timestamp::from_secs(i));
        e.insert("event.action", action);
        e
    }

    #[test]
    fn only_wanted_events_are_decoded_and_every_event_is_counted() {
        let events = [
            event(1, "skip"),
            event(2, "keep"),
            event(3, "skip"),
            event(4, "keep"),
        ];
        let payload = codec::encode(&events, usize::MAX).remove(0);
        let keep = events[1].to_canonical();
        let keep_last = events[3].to_canonical();
        let wanted = |raw: &[u8]| raw == keep.as_slice() || raw == keep_last.as_slice();
        let (got, read) = decode_wanted(&payload, 7, position(7, 0), &wanted).unwrap();
        assert_eq!(read, 4);
        assert_eq!(
            got,
            vec![
                (position(7, 1), events[1].clone()),
                (position(7, 3), events[3].clone())
            ]
        );
        // From the middle of the message: only the events from there on.
        let (got, read) = decode_wanted(&payload, 7, position(7, 2), &wanted).unwrap();
        assert_eq!((got.len(), read), (1, 2));
    }

    #[test]
    fn a_wanted_event_that_does_not_decode_refuses_the_message_an_unwanted_one_does_not() {
        let good = event(1, "keep").to_canonical();
        let mut payload = vec![codec::VERSION, 2, good.len() as u8];
        payload.extend_from_slice(&good);
        payload.extend_from_slice(&[2, 0xff, 0xfe]);
        let all = |_: &[u8]| true;
        assert!(decode_wanted(&payload, 1, 0, &all).is_err());
        let only_good = |raw: &[u8]| raw == good.as_slice();
        let (got, read) = decode_wanted(&payload, 1, 0, &only_good).unwrap();
        assert_eq!((got.len(), read), (1, 2));
        // Broken framing: refused whatever is wanted.
        assert!(decode_wanted(&payload[..payload.len() - 1], 1, 0, &only_good).is_err());
    }
}
