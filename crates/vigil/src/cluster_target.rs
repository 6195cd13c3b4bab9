//! `--cluster URL…` for `vigil user` and `vigil token`: act on a cluster's shared accounts and
//! tokens (its JetStream KV buckets) instead of a data directory's files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use vigil_auth::AuthStore;

/// Where `vigil user|token` make their changes.
#[derive(clap::Args, Debug, Default)]
pub struct ClusterTarget {
    /// Act on the accounts and tokens of the cluster whose NATS servers these are (repeatable)
    /// instead of the data directory's files.
    #[arg(
        long = "cluster",
        id = "cluster_nats",
        value_name = "NATS_URL",
        global = true
    )]
    nats: Vec<String>,
    /// A NATS credentials file for the connection.
    #[arg(
        long = "cluster-creds",
        id = "cluster_creds",
        value_name = "FILE",
        global = true
    )]
    creds: Option<PathBuf>,
    /// The cluster's name, as its nodes are configured [default: vigil].
    #[arg(
        long = "cluster-name",
        id = "cluster_name",
        value_name = "NAME",
        global = true
    )]
    name: Option<String>,
    /// JetStream replicas of the buckets, should this command be the first to create them.
    #[arg(
        long = "cluster-replicas",
        value_name = "N",
        global = true,
        default_value_t = 3
    )]
    replicas: usize,
}

/// The store a command acts on (with the runtime its cluster connection lives on).
pub struct Target {
    /// Accounts and tokens.
    pub accounts: AuthStore,
    _runtime: Option<tokio::runtime::Runtime>,
}

impl ClusterTarget {
    /// The cluster's store when `--cluster` is given, else the files of `data_dir`.
    pub fn open(&self, data_dir: &Path) -> Result<Target> {
        if self.nats.is_empty() {
            return Ok(Target {
                accounts: AuthStore::Files(data_dir.to_owned()),
                _runtime: None,
            });
        }
        let settings = vigil_cluster::ClusterSettings {
            urls: self.nats.clone(),
            creds: self.creds.clone(),
            node: "cli".into(),
            names: vigil_cluster::Names::new(self.name.as_deref().unwrap_or("vigil")),
            partitions: 8,
            replicas: self.replicas,
            monitor: Vec::new(),
            lease_ttl: vigil_cluster::DEFAULT_LEASE_TTL,
        };
        let session_max = vigil_config::Config::new(data_dir.to_owned())
            .ui
            .session_max
            .0;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("starting the NATS client")?;
        let buckets = runtime
            .block_on(vigil_cluster::auth::connect_auth(&settings, session_max))
            .context("connecting to the cluster")?;
        let shared = vigil_server::cluster::auth::shared_auth(buckets, runtime.handle().clone());
        Ok(Target {
            accounts: AuthStore::Shared(shared),
            _runtime: Some(runtime),
        })
    }
}
