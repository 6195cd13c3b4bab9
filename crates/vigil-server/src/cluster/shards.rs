//! The shards this node owns: their leases, their workers, and the balancing between nodes.
//!
//! One task ([`ShardSet::start`]) ticks every lease TTL / 3: it renews every lease held (a
//! renewal that finds the key written by someone else, or expired, deposes this node: the
//! shard's worker stops), reads the live nodes and the owners, and follows
//! [`vigil_cluster::balance::plan`]: takes free shards up to its share, releases its least
//! preferred extras when more nodes are alive (after stopping their workers). A shard's worker
//! ([`super::shard_worker`]) appends only while its lease's fence is open.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use vigil_cluster::balance;
use vigil_cluster::lease::{Lease, Renewal, renew_interval};
use vigil_cluster::{Cluster, Shard};
use vigil_config::DataDir;
use vigil_ledger::Ledger;
use vigil_query::{Limits, Pipeline, QueryResult};

use super::shard_worker::{Gate, Progress, Worker, WorkerSpec};
pub use super::shard_worker::{ShardMetrics, last_stream_seq, shard_origin};

/// Shards taken per balancing round at most (bounded churn; renewals run between rounds).
const MAX_ACQUIRE_PER_TICK: usize = 2;

/// A shard held: its lease and its worker.
struct Held {
    lease: Lease,
    worker: Worker,
}

/// What the rest of the server may use of one owned shard (queries, witnesses, health).
struct View {
    dir: PathBuf,
    ledger: Ledger,
    index: Option<Arc<crate::search::IndexService>>,
    progress: Arc<Progress>,
    epoch: u64,
}

/// One owned shard, as the health page shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShardStatus {
    /// The shard.
    pub shard: String,
    /// The epoch of this node's lease.
    pub epoch: u64,
    /// The last stream sequence handled.
    pub applied: u64,
    /// Events in the shard's ledger.
    pub events: u64,
    /// Whether its worker waits at a closed fence (the lease could not be renewed in time).
    pub fenced: bool,
}

/// The shards this node owns, and the task that keeps them.
pub struct ShardSet {
    cluster: Cluster,
    data: DataDir,
    index_threads: usize,
    shards: Vec<Shard>,
    held: tokio::sync::Mutex<BTreeMap<Shard, Held>>,
    views: RwLock<BTreeMap<Shard, View>>,
    metrics: Arc<ShardMetrics>,
    paused: AtomicBool,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for ShardSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardSet")
            .field("node", &self.cluster.node())
            .field("owned", &self.owned())
            .finish_non_exhaustive()
    }
}

impl ShardSet {
    /// Starts keeping shards for this node under `data_dir/shards/`, each with an index
    /// followed by `index_threads` threads (0: no index; queries scan the shard's ledger),
    /// until `stop` turns true: then the workers stop, the ledgers close and the leases are
    /// released (see [`ShardSet::stopped`]).
    pub fn start(
        cluster: Cluster,
        data_dir: &Path,
        index_threads: usize,
        mut stop: watch::Receiver<bool>,
    ) -> Arc<ShardSet> {
        let shards = cluster.settings().shards();
        let set = Arc::new(ShardSet {
            data: DataDir::new(data_dir),
            index_threads,
            shards,
            held: tokio::sync::Mutex::new(BTreeMap::new()),
            views: RwLock::new(BTreeMap::new()),
            metrics: Arc::new(ShardMetrics::default()),
            paused: AtomicBool::new(false),
            task: Mutex::new(None),
            cluster,
        });
        let tick = renew_interval(set.cluster.settings().lease_ttl);
        let this = Arc::clone(&set);
        let task = tokio::spawn(async move {
            this.seal_old_copies().await;
            loop {
                if !this.paused.load(Ordering::SeqCst) {
                    this.tick().await;
                }
                tokio::select! {
                    changed = stop.changed() => {
                        if changed.is_err() || *stop.borrow() {
                            break;
                        }
                    }
                    _ = tokio::time::sleep(tick) => {}
                }
            }
            this.release_all().await;
        });
        *set.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        set
    }

    /// Waits until the set has stopped (after `stop` turned true: workers stopped, ledgers
    /// closed, leases released).
    pub async fn stopped(&self) {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// The shards this node owns now.
    pub fn owned(&self) -> Vec<Shard> {
        self.views
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// Runs a query over one owned shard, through its index (blocking: call from a blocking
    /// thread). An error when this node does not own the shard (any more).
    pub fn run(
        &self,
        shard: Shard,
        pipeline: &Pipeline,
        limits: Limits,
    ) -> Result<QueryResult, String> {
        let (ledger, index) = {
            let views = self.views.read().unwrap_or_else(|p| p.into_inner());
            let view = views
                .get(&shard)
                .ok_or_else(|| format!("shard {shard} is not owned by this node"))?;
            if let Some(why) = view.progress.catching_up() {
                return Err(format!("shard {shard} is {why}"));
            }
            (view.ledger.clone(), view.index.clone())
        };
        match index {
            Some(index) => index.run(pipeline, limits),
            None => {
                let reader = ledger.reader().map_err(|e| e.to_string())?;
                crate::search::run_on_reader(reader, pipeline, limits)
            }
        }
    }

    /// The ledger of an owned shard (its checkpoints, for the witnesses).
    pub fn ledger(&self, shard: Shard) -> Option<Ledger> {
        self.views
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&shard)
            .map(|v| v.ledger.clone())
    }

    /// The data directory of a shard on this node (`DATA/shards/<shard>/`), owned now or not.
    pub fn shard_dir(&self, shard: Shard) -> PathBuf {
        self.data.shard(&shard.to_string()).root().to_owned()
    }

    /// Every owned shard's state.
    pub fn status(&self) -> Vec<ShardStatus> {
        self.views
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(shard, v)| ShardStatus {
                shard: shard.to_string(),
                epoch: v.epoch,
                applied: v.progress.applied.load(Ordering::SeqCst),
                events: v.progress.events.load(Ordering::SeqCst),
                fenced: v.progress.fenced.load(Ordering::SeqCst),
            })
            .collect()
    }

    /// Counters over this node's shards.
    pub fn metrics(&self) -> &ShardMetrics {
        &self.metrics
    }

    /// The data directory of an owned shard, if owned.
    pub fn owned_dir(&self, shard: Shard) -> Option<PathBuf> {
        self.views
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&shard)
            .map(|v| v.dir.clone())
    }

    /// Tests: stops renewing (and balancing), as a node cut off from NATS would; its workers
    /// stop appending when their fences close.
    #[doc(hidden)]
    pub fn pause_renewals(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    /// Tests: stops at once without releasing anything, as `kill -9` would (the leases expire
    /// after their TTL).
    #[doc(hidden)]
    pub async fn crash(&self) {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.views
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let held = std::mem::take(&mut *self.held.lock().await);
        for (_, h) in held {
            h.worker.abort().await;
        }
    }

    /// Opens and closes every copy of a shard this node holds from before, so that a copy a
    /// crash left with an unsigned tail is checked and signed (`vigil verify` passes on it) even
    /// if this node never owns that shard again. Before any lease is taken: nothing else has
    /// them open.
    async fn seal_old_copies(&self) {
        for shard in &self.shards {
            let dir = self.data.shard(&shard.to_string());
            if !dir.ledger_paths().root().exists() {
                continue;
            }
            let shard = *shard;
            let opened = tokio::task::spawn_blocking(move || {
                let (ledger, report) =
                    vigil_ledger::Ledger::open(dir.root(), vigil_ledger::LedgerConfig::default())?;
                ledger.close()?;
                Ok::<_, vigil_ledger::LedgerError>(report)
            })
            .await;
            match opened {
                Ok(Ok(report)) if report.unsigned_tail.is_some() => {
                    tracing::info!(%shard, "old shard copy: the tail a crash left unsigned is signed");
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(%shard, "old shard copy does not open: {e}"),
                Err(e) => tracing::warn!(%shard, "old shard copy: {e}"),
            }
        }
    }

    /// One round: renew, then balance.
    async fn tick(&self) {
        self.renew().await;
        if let Err(e) = self.balance().await {
            tracing::warn!("shard balancing: {e}");
        }
    }

    /// Renews every lease held at once (one slow answer must not close the others' fences);
    /// stops the workers of the shards lost.
    async fn renew(&self) {
        let mut held = self.held.lock().await;
        let mut renewals = JoinSet::new();
        for (shard, h) in held.iter() {
            let (mut lease, cluster) = (h.lease.clone(), self.cluster.clone());
            let applied = h.worker.progress.applied.load(Ordering::SeqCst);
            let events = h.worker.progress.events.load(Ordering::SeqCst);
            let shard = *shard;
            renewals.spawn(async move {
                let outcome = lease.renew(&cluster, applied, events).await;
                (shard, lease, outcome)
            });
        }
        let mut lost = Vec::new();
        while let Some(done) = renewals.join_next().await {
            let Ok((shard, lease, outcome)) = done else {
                continue;
            };
            match outcome {
                Renewal::Renewed => {
                    if let Some(h) = held.get_mut(&shard) {
                        h.worker.gate.set(lease.fence().valid_until());
                        h.lease = lease;
                    }
                }
                Renewal::Deposed => lost.push(shard),
                Renewal::Failed(e) => {
                    tracing::warn!(%shard, "lease renewal failed: {e}");
                }
            }
        }
        for shard in lost {
            if let Some(h) = held.remove(&shard) {
                tracing::warn!(%shard, "lease lost: the shard's worker stops");
                self.metrics.deposed.fetch_add(1, Ordering::Relaxed);
                self.forget(shard);
                h.worker.stop().await;
            }
        }
    }

    /// Takes free shards up to this node's share, or gives up extras.
    async fn balance(&self) -> Result<(), String> {
        let mut live = balance::live_nodes(&self.cluster)
            .await
            .map_err(|e| e.to_string())?;
        live.insert(self.cluster.node().to_string());
        let owners = balance::owners(&self.cluster, &self.shards)
            .await
            .map_err(|e| e.to_string())?;
        let mut held = self.held.lock().await;
        let mine: BTreeSet<Shard> = held.keys().copied().collect();
        // Free: nobody's, or still under this node's name from before a restart (taken back by
        // compare-and-set, see `Lease::acquire`).
        let free: BTreeSet<Shard> = self
            .shards
            .iter()
            .filter(|s| match owners.get(s) {
                None => true,
                Some(v) => v.node == self.cluster.node() && !mine.contains(s),
            })
            .copied()
            .collect();
        let plan = balance::plan(self.cluster.node(), &self.shards, &mine, &free, live.len());
        for shard in plan.release {
            let Some(h) = held.remove(&shard) else {
                continue;
            };
            self.forget(shard);
            h.worker.stop().await;
            match h.lease.release(&self.cluster).await {
                Ok(()) => {
                    self.metrics.released.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%shard, "shard released to a node with fewer");
                }
                Err(e) => tracing::warn!(%shard, "releasing: {e} (it expires by itself)"),
            }
        }
        // Opening a shard takes a moment: a few per round, so renewals keep their pace.
        for shard in plan.acquire.into_iter().take(MAX_ACQUIRE_PER_TICK) {
            let lease = match Lease::acquire(&self.cluster, &shard.to_string()).await {
                Ok(Some(lease)) => lease,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(%shard, "acquiring: {e}");
                    continue;
                }
            };
            let gate = Arc::new(Gate::default());
            gate.set(lease.fence().valid_until());
            let spec = WorkerSpec {
                cluster: self.cluster.clone(),
                data: self.data.clone(),
                shard,
                index_threads: self.index_threads,
                gate,
                metrics: Arc::clone(&self.metrics),
            };
            match Worker::start(spec).await {
                Ok(worker) => {
                    self.metrics.acquired.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%shard, epoch = lease.epoch(), "shard acquired");
                    self.views
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(
                            shard,
                            View {
                                dir: worker.dir.clone(),
                                ledger: worker.ledger.clone(),
                                index: worker.index.clone(),
                                progress: Arc::clone(&worker.progress),
                                epoch: lease.epoch(),
                            },
                        );
                    held.insert(shard, Held { lease, worker });
                }
                Err(e) => {
                    tracing::error!(%shard, "cannot open the shard: {e}; releasing it");
                    let _ = lease.release(&self.cluster).await;
                }
            }
        }
        Ok(())
    }

    /// Removes a shard from what queries and witnesses see.
    fn forget(&self, shard: Shard) {
        self.views
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&shard);
    }

    /// A clean stop: every worker stopped, its ledger closed, its lease released.
    async fn release_all(&self) {
        let held = std::mem::take(&mut *self.held.lock().await);
        for (shard, h) in held {
            self.forget(shard);
            h.worker.stop().await;
            if let Err(e) = h.lease.release(&self.cluster).await {
                tracing::warn!(%shard, "releasing at stop: {e} (it expires by itself)");
            }
        }
    }
}
