//! The cluster node's components that other parts of cluster mode provide, started for
//! [`super::build`]: queries answered for the shards this node owns, the shared ban book, and
//! detection (its share of the detector partitions; every node's books follow the `sys` shard).

use std::sync::Arc;

use vigil_cluster::{Cluster, Shard};
use vigil_query::{Limits, Pipeline, QueryResult};

use super::detect::{ClusterDetection, DetectPlan};
use super::query::{Responder, ShardSearch};
use super::shards::ShardSet;
use crate::error::StartError;
use crate::pipeline::Ingest;
use crate::topology::{self, Tasks};
use crate::{ServerConfig, decisions, notify};

impl ShardSearch for ShardSet {
    fn owned(&self) -> Vec<Shard> {
        ShardSet::owned(self)
    }

    fn run(
        &self,
        shard: Shard,
        pipeline: &Pipeline,
        limits: Limits,
    ) -> Result<QueryResult, String> {
        ShardSet::run(self, shard, pipeline, limits)
    }
}

/// Answers other nodes' queries over the shards this node owns.
pub(super) async fn query_responder(
    cluster: &Cluster,
    shards: &Arc<ShardSet>,
) -> Result<Responder, StartError> {
    let shards: Arc<dyn ShardSearch> = shards.clone();
    Responder::start(cluster, shards)
        .await
        .map_err(|e| StartError::of("cluster queries")(e.to_string()))
}

/// The ban book every node keeps from the `sys` shard (never banning the node's own
/// addresses), and its expiry task.
pub(super) fn shared_decisions(
    config: &ServerConfig,
    ingest: &Arc<Ingest>,
    t: &mut Tasks,
) -> Arc<decisions::DecisionService> {
    let decisions = Arc::new(decisions::DecisionService::shared(
        config.responders.clone(),
        topology::allowlist(config),
        ingest.clone(),
    ));
    topology::expire_decisions(&decisions, t);
    decisions
}

/// The `sys` follower of this node's books and, with rules, its part in detection.
pub(super) async fn detection(
    config: &ServerConfig,
    cluster: &Cluster,
    ingest: &Arc<Ingest>,
    decisions: &Arc<decisions::DecisionService>,
    notify_stats: &Arc<notify::NotifyStats>,
    shared: &Arc<super::books::SharedBooks>,
    t: &mut Tasks,
) -> Result<ClusterDetection, StartError> {
    let plan = DetectPlan {
        data_dir: config.data_dir.clone(),
        rule_dirs: config.rule_dirs.clone(),
        throttle_secs: config.alert_throttle_secs,
        partitions: config.settings.cluster.detector_partitions,
        door: ingest.clone(),
        notify: topology::notify_queue(config, ingest, notify_stats, t),
        decisions: Arc::clone(decisions),
        shared: Arc::clone(shared),
    };
    super::detect::start(cluster, plan, &mut t.tasks, t.stop_rx.clone())
        .await
        .map_err(StartError::of("cluster detection"))
}

/// How often the witness supervisor looks at which shards this node owns.
const WITNESS_SUPERVISION: std::time::Duration = std::time::Duration::from_secs(2);

/// This node's witness for the other nodes' shards (answering on its NATS subject), and, for
/// each shard it owns, the task that has that shard's checkpoints cosigned by the other nodes
/// (started when a shard is taken, stopped when it is given up).
pub(super) fn witnesses(
    config: &ServerConfig,
    cluster: &Cluster,
    shards: &Arc<ShardSet>,
    ingest: &Arc<Ingest>,
    t: &mut Tasks,
) -> crate::witness::WitnessState {
    let dir = vigil_config::DataDir::new(&config.data_dir).witness();
    let witness = match vigil_respond::witness::Witness::open(&dir, &config.witness_logs) {
        Ok(w) => Some(Arc::new(w)),
        Err(e) => {
            tracing::error!("the witness is off: {e}");
            None
        }
    };
    if let Some(w) = &witness {
        let (cluster, w, stop) = (cluster.clone(), Arc::clone(w), t.stop_rx.clone());
        t.tasks.spawn(async move {
            if let Err(e) = super::witness::respond(cluster, w, stop).await {
                tracing::error!("this node does not witness the other nodes' shards: {e}");
            }
        });
    }
    let status = Arc::new(vigil_respond::witness::WitnessStatus::default());
    let (cluster, shards, door, status_for_task, mut stop) = (
        cluster.clone(),
        Arc::clone(shards),
        Arc::clone(ingest),
        Arc::clone(&status),
        t.stop_rx.clone(),
    );
    t.tasks.spawn(async move {
        let mut running: std::collections::BTreeMap<Shard, tokio::sync::watch::Sender<bool>> =
            Default::default();
        let mut tick = tokio::time::interval(WITNESS_SUPERVISION);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            let owned = shards.owned();
            running.retain(|shard, shard_stop| {
                let keep = owned.contains(shard);
                if !keep {
                    let _ = shard_stop.send(true);
                }
                keep
            });
            for shard in owned {
                if running.contains_key(&shard) {
                    continue;
                }
                let Some(ledger) = shards.ledger(shard) else {
                    continue;
                };
                let (shard_stop, shard_stop_rx) = tokio::sync::watch::channel(false);
                tokio::spawn(super::witness::submit(
                    cluster.clone(),
                    ledger,
                    Arc::clone(&door),
                    Arc::clone(&status_for_task),
                    shard_stop_rx,
                ));
                running.insert(shard, shard_stop);
            }
        }
        for (_, shard_stop) in running {
            let _ = shard_stop.send(true);
        }
    });
    crate::witness::WitnessState {
        witness,
        limit: Default::default(),
        status,
    }
}
