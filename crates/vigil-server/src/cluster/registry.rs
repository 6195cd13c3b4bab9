//! The node registry: each node registers its [`NodeInfo`] in the cluster's `nodes` bucket
//! under its name, renews it every third of the lease TTL (an entry not renewed expires), and
//! deletes it on a clean stop.
//!
//! Two processes with one node name would split one node's shards between them: a node whose
//! name is registered and RENEWED by another process refuses to start. A registration that is
//! not renewed (the same node killed with `kill -9` a moment ago) is waited out: it expires, or
//! is taken over once a whole TTL passed without a renewal.
//!
//! Renewals heal themselves and are loud: a renewal that fails (an error, or no answer within
//! a third of the TTL) reads the entry again — still this process's: its revision is adopted;
//! gone (expired during a NATS outage, deleted): it is created again; written by another
//! process: **the earlier start keeps the name**. A NATS outage longer than the TTL lets a
//! registration expire, and a process starting under the same name meanwhile could create it
//! (CI saw it once): the running process takes it back at its next renewal, and the new one,
//! which holds still for [`probation`] after creating its entry before it serves, is refused.
//! A process that finds an earlier start's registration under its name — or that was not
//! renewed for ten TTLs and may have been replaced on purpose — is **fenced**
//! ([`Registration::fenced`]) and `vigil serve` stops, so two processes never keep serving
//! under one name. Every failure is counted
//! (`vigil_cluster_registration_*` in `/metrics`), and a renewer that ends other than at a
//! clean stop is an error in the log and a count.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{CreateErrorKind, Operation};
use bytes::Bytes;
use tokio::sync::{Mutex, watch};
use vigil_cluster::{Cluster, NodeInfo};

/// How often a registration that exists is looked at while waiting for it to expire.
const POLL: Duration = Duration::from_millis(250);

/// Why a node could not register.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Another live process runs under this node's name.
    #[error(
        "another process is running as node {node:?} (its registration was renewed while this one waited); \
         give every node a unique name with --node"
    )]
    NameTaken {
        /// The name.
        node: String,
    },
    /// The bucket could not be read or written.
    #[error("node registry: {0}")]
    Bucket(String),
}

/// Counters of the renewals (this registration's; [`PROCESS`] sums every registration of the
/// process for `/metrics`).
#[derive(Debug, Default)]
pub struct RegistryStats {
    /// Renewals that failed (an error or no answer within a third of the TTL).
    pub failures: AtomicU64,
    /// Times the entry was found still ours after a failure and its revision adopted.
    pub adopted: AtomicU64,
    /// Times the entry was found gone (expired, deleted) and created again.
    pub recreated: AtomicU64,
    /// Times another process was found holding the name (this node stepped down).
    pub fenced: AtomicU64,
    /// Times a later start was found holding the name after this registration lapsed, and the
    /// name was taken back.
    pub taken_back: AtomicU64,
    /// Renewers that ended other than by [`Registration::leave`] (fenced, or the
    /// registration dropped): an error.
    pub renewer_stopped: AtomicU64,
}

/// The renewals of every registration of this process (`/metrics`).
pub static PROCESS: RegistryStats = RegistryStats {
    failures: AtomicU64::new(0),
    adopted: AtomicU64::new(0),
    recreated: AtomicU64::new(0),
    fenced: AtomicU64::new(0),
    taken_back: AtomicU64::new(0),
    renewer_stopped: AtomicU64::new(0),
};

impl RegistryStats {
    fn count(&self, field: impl Fn(&RegistryStats) -> &AtomicU64) {
        field(self).fetch_add(1, Ordering::Relaxed);
        field(&PROCESS).fetch_add(1, Ordering::Relaxed);
    }
}

/// The registry's counters of this process for `/metrics`.
pub fn metrics() -> String {
    let p = &PROCESS;
    format!(
        "# HELP vigil_cluster_registration_failures_total Renewals of this node's registration that failed (each is retried and reconciled with what the bucket holds).\n\
         # TYPE vigil_cluster_registration_failures_total counter\nvigil_cluster_registration_failures_total {}\n\
         # HELP vigil_cluster_registration_recreated_total Times this node's registration was found expired or deleted and created again.\n\
         # TYPE vigil_cluster_registration_recreated_total counter\nvigil_cluster_registration_recreated_total {}\n\
         # HELP vigil_cluster_registration_fenced_total Times another process was found registered under this node's name (this node stops).\n\
         # TYPE vigil_cluster_registration_fenced_total counter\nvigil_cluster_registration_fenced_total {}\n\
         # HELP vigil_cluster_registration_taken_back_total Times a later start was found registered under this node's name after a lapse, and the name taken back.\n\
         # TYPE vigil_cluster_registration_taken_back_total counter\nvigil_cluster_registration_taken_back_total {}\n\
         # HELP vigil_cluster_registration_renewer_stopped_total Registration renewers that ended other than at a clean stop.\n\
         # TYPE vigil_cluster_registration_renewer_stopped_total counter\nvigil_cluster_registration_renewer_stopped_total {}\n",
        p.failures.load(Ordering::Relaxed),
        p.recreated.load(Ordering::Relaxed),
        p.fenced.load(Ordering::Relaxed),
        p.taken_back.load(Ordering::Relaxed),
        p.renewer_stopped.load(Ordering::Relaxed),
    )
}

/// This node's registration: renewed by a task until [`Registration::leave`], or until another
/// process is found registered under the name ([`Registration::fenced`]).
pub struct Registration {
    cluster: Cluster,
    revision: Arc<Mutex<u64>>,
    stop: watch::Sender<bool>,
    renewer: tokio::task::JoinHandle<()>,
    fenced: watch::Receiver<Option<String>>,
    stats: Arc<RegistryStats>,
}

impl Registration {
    /// Registers `info` under this node's name (see the module comment), then renews it every
    /// third of the lease TTL.
    pub async fn join(cluster: &Cluster, info: &NodeInfo) -> Result<Registration, RegistryError> {
        let value = Bytes::from(
            serde_json::to_vec(info).map_err(|e| RegistryError::Bucket(e.to_string()))?,
        );
        let revision = register(cluster, value.clone()).await?;
        let revision = Arc::new(Mutex::new(revision));
        let (stop, stopped) = watch::channel(false);
        let (fence, fenced) = watch::channel(None);
        let stats = Arc::new(RegistryStats::default());
        let renewer = tokio::spawn(renew(
            Renewer {
                cluster: cluster.clone(),
                value,
                revision: Arc::clone(&revision),
                stats: Arc::clone(&stats),
            },
            stopped,
            fence,
        ));
        Ok(Registration {
            cluster: cluster.clone(),
            revision,
            stop,
            renewer,
            fenced,
            stats,
        })
    }

    /// Changes to `Some(why)` when another process was found registered under this node's
    /// name: this node no longer holds it and must stop serving as it (`vigil serve` stops).
    pub fn fenced(&self) -> watch::Receiver<Option<String>> {
        self.fenced.clone()
    }

    /// This registration's renewal counters.
    pub fn stats(&self) -> &Arc<RegistryStats> {
        &self.stats
    }

    /// Stops renewing and deletes the registration (a clean stop; a fenced registration is
    /// another process's now and is left alone).
    pub async fn leave(self) {
        let _ = self.stop.send(true);
        let _ = self.renewer.await;
        if self.fenced.borrow().is_some() {
            return;
        }
        let node = self.cluster.node().to_string();
        let revision = *self.revision.lock().await;
        let deleted = self
            .cluster
            .nodes()
            .delete_expect_revision(&node, Some(revision))
            .await;
        if let Err(e) = deleted {
            tracing::warn!("node registry: removing {node}: {e}");
        }
    }
}

/// Creates the entry ([`claim`]), then holds still for [`probation`] and reads it again: a
/// running process under the name whose registration had lapsed during a NATS outage takes it
/// back at its next renewal (the earlier start wins, see [`Renewer::renew_once`]), and this
/// start is then refused instead of serving as the same node.
async fn register(cluster: &Cluster, value: Bytes) -> Result<u64, RegistryError> {
    let revision = claim(cluster, &value).await?;
    let node = cluster.node();
    tokio::time::sleep(probation(cluster.settings().lease_ttl)).await;
    let patience = Instant::now() + Duration::from_secs(30);
    loop {
        match cluster.nodes().entry(node).await {
            Ok(Some(entry)) if entry.operation == Operation::Put && entry.value == value => {
                return Ok(entry.revision.max(revision));
            }
            Ok(Some(entry)) if entry.operation == Operation::Put && entry.revision > revision => {
                return Err(RegistryError::NameTaken {
                    node: node.to_string(),
                });
            }
            // Gone, or a read from a replica behind: ours is still to be seen.
            Ok(_) | Err(_) if Instant::now() < patience => tokio::time::sleep(POLL).await,
            Ok(_) => {
                return Err(RegistryError::Bucket(format!(
                    "the registration of {node} was lost while starting"
                )));
            }
            Err(e) => return Err(RegistryError::Bucket(e.to_string())),
        }
    }
}

/// How long a start holds still after creating its entry before it trusts it: two renewals of
/// a running process under the name.
pub fn probation(ttl: Duration) -> Duration {
    ttl * 2 / 3
}

/// Creates the entry; waits out one left by an earlier run of this node; refuses when another
/// process renews it.
async fn claim(cluster: &Cluster, value: &Bytes) -> Result<u64, RegistryError> {
    let node = cluster.node();
    let nodes = cluster.nodes();
    let ttl = cluster.settings().lease_ttl;
    let mut seen: Option<(u64, Instant)> = None;
    // A bucket created a moment ago may not answer yet ("no responders"): transient errors
    // are tried again for a while.
    let patience = Instant::now() + Duration::from_secs(30);
    let transient = |e: String| {
        if Instant::now() < patience {
            tracing::debug!("node registry: {e}; trying again");
            Ok(())
        } else {
            Err(RegistryError::Bucket(e))
        }
    };
    loop {
        match nodes.create(node, value.clone()).await {
            Ok(revision) => return Ok(revision),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {}
            Err(e) => {
                transient(e.to_string())?;
                tokio::time::sleep(POLL).await;
                continue;
            }
        }
        let entry = match nodes.entry(node).await {
            Ok(entry) => entry,
            Err(e) => {
                transient(e.to_string())?;
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        let Some(entry) = entry else {
            // Gone between the create and the read (expired or deleted): try again, not in a
            // tight loop against NATS.
            tokio::time::sleep(POLL).await;
            continue;
        };
        match seen {
            None => {
                tracing::info!(
                    "node {node} is registered already (an earlier run that did not stop cleanly, \
                     or another process); waiting up to {} s to see whether it is renewed",
                    ttl.as_secs()
                );
                seen = Some((entry.revision, Instant::now()));
            }
            Some((revision, _)) if revision != entry.revision => {
                return Err(RegistryError::NameTaken {
                    node: node.to_string(),
                });
            }
            Some((revision, since)) if since.elapsed() > ttl + ttl / 2 => {
                // Not renewed for longer than a renewer would wait: nobody holds it.
                return nodes
                    .update(node, value.clone(), revision)
                    .await
                    .map_err(|e| RegistryError::Bucket(e.to_string()));
            }
            Some(_) => {}
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What the renewer needs.
struct Renewer {
    cluster: Cluster,
    value: Bytes,
    revision: Arc<Mutex<u64>>,
    stats: Arc<RegistryStats>,
}

/// What one renewal found.
#[derive(Debug)]
enum Step {
    /// The entry is renewed.
    Renewed,
    /// Not renewed this time (NATS did not answer, or a read was stale): tried again at the
    /// next tick.
    Failed(String),
    /// Another process holds the name.
    Fenced(String),
}

/// Renews the entry every third of the TTL until stopped. Every failure is reconciled with
/// what the bucket holds ([`Renewer::renew_once`]); another process holding the name fences
/// this node (`fence` is set and the renewer ends). A renewer that ends for any reason but
/// [`Registration::leave`] is logged as an error and counted.
async fn renew(
    r: Renewer,
    mut stopped: watch::Receiver<bool>,
    fence: watch::Sender<Option<String>>,
) {
    let ttl = r.cluster.settings().lease_ttl;
    let every = ttl / 3;
    let node = r.cluster.node().to_string();
    // The first renewal at once: the start's probation used part of the entry's TTL.
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            changed = stopped.changed() => {
                if changed.is_err() {
                    r.stats.count(|s| &s.renewer_stopped);
                    tracing::error!(
                        "node registry: the registration of {node} was dropped without a clean \
                         leave; it is no longer renewed and expires within {} s",
                        ttl.as_secs()
                    );
                }
                return;
            }
        }
        match r.renew_once(every, renewed.elapsed()).await {
            Step::Renewed => renewed = Instant::now(),
            Step::Failed(why) => {
                r.stats.count(|s| &s.failures);
                let since = renewed.elapsed();
                if since >= ttl {
                    tracing::error!(
                        "node registry: the registration of {node} has not been renewed for {} ms \
                         (TTL {} s): it may have expired, and another process could take the \
                         name; still trying ({why})",
                        since.as_millis(),
                        ttl.as_secs()
                    );
                } else {
                    tracing::warn!("node registry: renewing {node}: {why}; trying again");
                }
            }
            Step::Fenced(why) => {
                r.stats.count(|s| &s.fenced);
                r.stats.count(|s| &s.renewer_stopped);
                tracing::error!(
                    "node registry: FENCED: {why}; this process stops serving as node {node}"
                );
                let _ = fence.send(Some(why));
                return;
            }
        }
    }
}

/// How long without a renewal makes a registration abandoned: its process no longer takes the
/// name back from a later start, it steps down (a node cut off from NATS for a minute may have
/// been replaced on purpose).
fn abandoned(ttl: Duration) -> Duration {
    ttl * 10
}

/// Whether the registration `ours` started before `theirs` (their `started`, then the bytes
/// themselves as the tie-break; a value that does not decode is never earlier).
fn started_before(ours: &[u8], theirs: &[u8]) -> bool {
    let started = |bytes: &[u8]| {
        serde_json::from_slice::<NodeInfo>(bytes)
            .ok()
            .and_then(|i| vigil_event::Timestamp::parse(&i.started).ok())
    };
    match (started(ours), started(theirs)) {
        (Some(a), Some(b)) => (a, ours) < (b, theirs),
        (Some(_), None) => true,
        _ => false,
    }
}

impl Renewer {
    /// Whether this registration started before the one in `theirs`.
    fn earlier_than(&self, theirs: &[u8]) -> bool {
        started_before(&self.value, theirs)
    }

    /// One renewal: an update against the revision last written; on any failure, the entry is
    /// read again — still ours (the same bytes: the value names this process's start to the
    /// nanosecond): its revision is adopted and the update tried once more; gone (expired,
    /// deleted): created again; another process's, written after ours: fenced. Each request
    /// waits at most `patience`.
    async fn renew_once(&self, patience: Duration, unrenewed: Duration) -> Step {
        let ttl = self.cluster.settings().lease_ttl;
        let node = self.cluster.node();
        let nodes = self.cluster.nodes();
        let mut rev = self.revision.lock().await;
        let first = match tokio::time::timeout(
            patience,
            nodes.update(node, self.value.clone(), *rev),
        )
        .await
        {
            Ok(Ok(next)) => {
                *rev = next;
                return Step::Renewed;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", patience.as_millis()),
        };
        let entry = match tokio::time::timeout(patience, nodes.entry(node)).await {
            Ok(Ok(entry)) => entry,
            Ok(Err(e)) => return Step::Failed(format!("{first}; reading the entry: {e}")),
            Err(_) => return Step::Failed(format!("{first}; reading the entry: no answer")),
        };
        match entry {
            Some(entry) if entry.operation == Operation::Put && entry.value == self.value => {
                self.stats.count(|s| &s.adopted);
                tracing::warn!(
                    "node registry: renewing {node} failed ({first}) but the entry is still this \
                     process's (revision {}, was {}): adopted",
                    entry.revision,
                    *rev
                );
                *rev = entry.revision;
                match tokio::time::timeout(patience, nodes.update(node, self.value.clone(), *rev))
                    .await
                {
                    Ok(Ok(next)) => {
                        *rev = next;
                        Step::Renewed
                    }
                    Ok(Err(e)) => Step::Failed(format!("{first}; again after adopting: {e}")),
                    Err(_) => Step::Failed(format!("{first}; again after adopting: no answer")),
                }
            }
            Some(entry) if entry.operation == Operation::Put => {
                if entry.revision <= *rev {
                    // Older than what this process wrote: a read from a replica behind.
                    return Step::Failed(format!(
                        "{first}; the entry read is older (revision {}) than this process's {}",
                        entry.revision, *rev
                    ));
                }
                let theirs = String::from_utf8_lossy(&entry.value[..entry.value.len().min(300)])
                    .into_owned();
                if !self.earlier_than(&entry.value) || unrenewed > abandoned(ttl) {
                    return Step::Fenced(format!(
                        "another process registered as node {node:?} (revision {}: {theirs})",
                        entry.revision
                    ));
                }
                // A later start took the name while this registration had lapsed (a NATS
                // outage longer than the TTL): this process, the earlier start, takes it back;
                // the other is refused at the end of its probation, or fenced by its renewer.
                match tokio::time::timeout(
                    patience,
                    nodes.update(node, self.value.clone(), entry.revision),
                )
                .await
                {
                    Ok(Ok(next)) => {
                        self.stats.count(|s| &s.taken_back);
                        tracing::error!(
                            "node registry: another process registered as node {node} while this \
                             one's registration had lapsed ({theirs}); taken back (this process \
                             started earlier; the other stops)"
                        );
                        *rev = next;
                        Step::Renewed
                    }
                    Ok(Err(e)) => Step::Failed(format!("{first}; taking the name back: {e}")),
                    Err(_) => Step::Failed(format!("{first}; taking the name back: no answer")),
                }
            }
            // Gone: expired (not renewed for a TTL) or deleted.
            _ => match tokio::time::timeout(patience, nodes.create(node, self.value.clone())).await
            {
                Ok(Ok(next)) => {
                    self.stats.count(|s| &s.recreated);
                    tracing::error!(
                        "node registry: the registration of {node} was gone ({first}); registered again"
                    );
                    *rev = next;
                    Step::Renewed
                }
                Ok(Err(e)) if e.kind() == CreateErrorKind::AlreadyExists => Step::Failed(format!(
                    "{first}; the entry was gone and another write created it meanwhile"
                )),
                Ok(Err(e)) => Step::Failed(format!("{first}; creating it again: {e}")),
                Err(_) => Step::Failed(format!("{first}; creating it again: no answer")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(started: &str) -> Vec<u8> {
        serde_json::to_vec(&NodeInfo {
            node: "n0".into(),
            http: None,
            started: started.into(),
            version: "t".into(),
        })
        .unwrap()
    }

    #[test]
    fn the_earlier_start_keeps_the_name() {
        let early = value("2026-12-07T09:00:00.000000001Z");
        let late = value("2026-12-07T09:00:00.000000002Z");
        assert!(started_before(&early, &late));
        assert!(!started_before(&late, &early));
        // Not earlier than itself; a tie of instants is broken by the bytes, one way only.
        assert!(!started_before(&early, &early));
        let other_host = serde_json::to_vec(&NodeInfo {
            node: "n0".into(),
            http: Some("http://10.0.0.2:8080".into()),
            started: "2026-12-07T09:00:00.000000001Z".into(),
            version: "t".into(),
        })
        .unwrap();
        assert_ne!(
            started_before(&early, &other_host),
            started_before(&other_host, &early)
        );
        // A value that is not a registration (a forged or broken entry) is never earlier: a
        // running node takes its name back from it.
        assert!(started_before(&early, b"{not json"));
        assert!(!started_before(b"{not json", &early));
        assert!(started_before(&early, &value("yesterday")));
    }
}
