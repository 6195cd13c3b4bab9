//! The cluster node's components that other parts of cluster mode provide, started for
//! [`super::build`]: queries answered for the shards this node owns, the shared ban book, and
//! detection (one detector in the cluster; every node's books follow the `sys` shard).

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
    t: &mut Tasks,
) -> Result<ClusterDetection, StartError> {
    let plan = DetectPlan {
        data_dir: config.data_dir.clone(),
        rule_dirs: config.rule_dirs.clone(),
        throttle_secs: config.alert_throttle_secs,
        door: ingest.clone(),
        notify: topology::notify_queue(config, ingest, notify_stats, t),
        decisions: Arc::clone(decisions),
    };
    super::detect::start(cluster, plan, &mut t.tasks, t.stop_rx.clone())
        .await
        .map_err(StartError::of("cluster detection"))
}
