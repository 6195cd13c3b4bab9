//! The state every node shares (cluster mode): each node follows the `sys` shard — Vigil's
//! own events: alerts, triage, ban decisions, cases, saved searches — from its start, in stream
//! order, and applies them to its alert book, its ban book and its shared books
//! ([`super::books`]). So `GET /api/v1/alerts`, cases, saved searches, the UI and the CrowdSec
//! endpoints answer the same on every node, whichever node raised, triaged, banned or changed.
//!
//! A message that does not decode (not written by Vigil) is skipped, logged and counted; it
//! changes nothing and stops nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use vigil_cluster::follow::StreamFollower;
use vigil_cluster::{Cluster, Shard, codec};

use super::books::SharedBooks;
use crate::decisions::DecisionService;
use crate::detect::DetectService;

/// How far this node has applied the `sys` shard.
#[derive(Debug, Default)]
pub struct SysProgress {
    /// The stream sequence of the last `sys` message applied (0: none).
    pub applied: AtomicU64,
    /// Messages skipped because they do not decode.
    pub undecodable: AtomicU64,
    /// Times the follower had to start again (NATS unreachable, a leader election).
    pub restarts: AtomicU64,
}

impl SysProgress {
    /// The last `sys` message applied.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::SeqCst)
    }
}

/// What the `sys` shard's events are applied to.
#[derive(Clone)]
pub struct Books {
    /// The alert book (the detector service; none when detection is off).
    pub detect: Option<Arc<DetectService>>,
    /// The ban book.
    pub decisions: Arc<DecisionService>,
    /// Cases and saved searches.
    pub shared: Arc<SharedBooks>,
}

impl Books {
    /// Applies the events of `sys` message `seq`.
    pub fn apply(&self, seq: u64, events: &[vigil_event::Event]) {
        if let Some(detect) = &self.detect {
            detect.apply_shared(events);
        }
        self.decisions.apply_events(events);
        self.shared.apply(seq, events);
    }
}

/// Follows the `sys` shard from its start (or from where `progress` stopped) until `stop`,
/// applying every message to `books`.
pub async fn follow_sys(
    cluster: Cluster,
    books: Books,
    progress: Arc<SysProgress>,
    mut stop: watch::Receiver<bool>,
) {
    let subject = cluster.settings().names.shard_subject(Shard::System);
    let runtime = tokio::runtime::Handle::current();
    loop {
        let from = progress.applied() + 1;
        let mut follower = StreamFollower::start(&cluster, subject.clone(), from, &runtime);
        loop {
            let next = tokio::select! {
                next = follower.next(Duration::from_secs(1)) => next,
                _ = stop.changed() => return,
            };
            match next {
                None => continue,
                Some(Ok(message)) => {
                    match codec::decode(&message.payload) {
                        Ok(events) => books.apply(message.seq, &events),
                        Err(e) => {
                            progress.undecodable.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(
                                "sys shard: message {} skipped, it does not decode: {e}",
                                message.seq
                            );
                        }
                    }
                    progress.applied.store(message.seq, Ordering::SeqCst);
                }
                Some(Err(e)) => {
                    progress.restarts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("sys shard: following again after: {e}");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The stream sequence of the last message on the `sys` shard now (0: none yet).
pub async fn sys_end(cluster: &Cluster) -> Result<u64, String> {
    let subject = cluster.settings().names.shard_subject(Shard::System);
    vigil_cluster::follow::last_seq(cluster, &subject)
        .await
        .map_err(|e| e.to_string())
}
