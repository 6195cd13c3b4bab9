//! The buckets of shared accounts, API tokens and browser sessions (cluster mode keeps users,
//! tokens and sessions here instead of in each node's data directory, so every node serves the
//! same UI and API): `<name>_auth` (users and tokens: argon2 hashes only, never a secret; no
//! expiry) and `<name>_sessions` (entries expire with the session's lifetime). Both are
//! created with the cluster's replicas and file storage, like the other buckets.

use std::time::Duration;

use async_nats::jetstream::{self, kv};

use crate::connect::{ensure_bucket, nats_client};
use crate::{Cluster, ClusterError, ClusterSettings, Names};

impl Names {
    /// The bucket of shared accounts and API tokens.
    pub fn auth_bucket(&self) -> String {
        format!("{}_auth", self.cluster())
    }

    /// The bucket of browser sessions.
    pub fn sessions_bucket(&self) -> String {
        format!("{}_sessions", self.cluster())
    }
}

/// The two buckets of shared authentication state.
#[derive(Clone)]
pub struct AuthBuckets {
    /// Users (`user.<hex name>`) and tokens (`token.<id>`).
    pub auth: kv::Store,
    /// Sessions (`s.<SHA-256 of the cookie>`), expiring after the session lifetime.
    pub sessions: kv::Store,
}

impl std::fmt::Debug for AuthBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthBuckets").finish_non_exhaustive()
    }
}

async fn open(
    js: &jetstream::Context,
    settings: &ClusterSettings,
    session_max: Duration,
) -> Result<AuthBuckets, ClusterError> {
    Ok(AuthBuckets {
        auth: ensure_bucket(js, settings, settings.names.auth_bucket(), None).await?,
        sessions: ensure_bucket(
            js,
            settings,
            settings.names.sessions_bucket(),
            Some(session_max),
        )
        .await?,
    })
}

impl Cluster {
    /// This cluster's authentication buckets, created when missing (sessions expire after
    /// `session_max`, the longest a session may live).
    pub async fn auth_buckets(&self, session_max: Duration) -> Result<AuthBuckets, ClusterError> {
        open(self.jetstream(), self.settings(), session_max).await
    }
}

/// Connects to NATS for the authentication buckets alone — what `vigil user|token --cluster`
/// needs: no stream is created or checked, so the command works whatever the cluster's
/// partitions.
pub async fn connect_auth(
    settings: &ClusterSettings,
    session_max: Duration,
) -> Result<AuthBuckets, ClusterError> {
    let client = nats_client(
        settings,
        format!("vigil-cli/{}", settings.names.cluster()),
        Some(3),
    )
    .await?;
    open(&jetstream::new(client), settings, session_max).await
}
