//! The doors from the network, as [`super::build`] (and the cluster's start) wires them: the
//! connection limits the TCP listeners share, the syslog listeners (UDP, TCP, TLS), the state
//! the HTTP handlers share, the HTTP(S) listener and the OTLP/gRPC listener.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};

use super::{Bound, Core, Tasks};
use crate::error::StartError;
use crate::metrics::Metrics;
use crate::pipeline::Ingest;
use crate::{ServerConfig, auth, http, idempotency, listen, session, syslog, tls};

/// The connection limits of the TCP listeners: they share the descriptors the open-file limit
/// leaves for connections. Returns a tracker maker, one per listener.
pub(crate) fn connection_trackers(
    config: &ServerConfig,
    metrics: &Arc<Metrics>,
) -> impl Fn(&'static str) -> Arc<listen::ConnTracker> + use<> {
    let tcp_listeners = [
        config.http,
        config.syslog_tcp,
        config.syslog_tls,
        config.otlp_grpc,
    ]
    .iter()
    .flatten()
    .count();
    let limits = config
        .connections
        .resolved(tcp_listeners, listen::open_file_limit());
    if tcp_listeners > 0 {
        tracing::info!(
            "connections: at most {} per TCP listener, {} per address; header timeout {} s, body timeout {} s, syslog idle timeout {} s",
            limits.max_connections,
            limits.max_per_address,
            limits.header_timeout.as_secs(),
            limits.body_timeout.as_secs(),
            limits.syslog_idle_timeout.as_secs()
        );
    }
    let metrics = Arc::clone(metrics);
    move |name| listen::ConnTracker::new(name, limits, Arc::clone(&metrics))
}

pub(crate) async fn bind_tcp(
    addr: SocketAddr,
    what: &'static str,
) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { what, addr, source })
}

/// The syslog listeners: UDP, TCP and TLS.
pub(crate) async fn syslog_listeners(
    config: &ServerConfig,
    ingest: &Arc<Ingest>,
    tracker: &impl Fn(&'static str) -> Arc<listen::ConnTracker>,
    t: &mut Tasks,
) -> Result<Bound, StartError> {
    let settings = syslog::SyslogSettings {
        max_message_bytes: config.max_message_bytes,
        keep_original: config.keep_original,
        idle_timeout: config.connections.syslog_idle_timeout,
        frame_timeout: config.connections.syslog_frame_timeout,
    };
    let mut bound = Bound::default();
    if let Some(addr) = config.syslog_udp {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| StartError::Listen {
                what: "syslog/udp",
                addr,
                source,
            })?;
        bound.syslog_udp = socket.local_addr().ok();
        t.tasks.spawn(syslog::run_udp(
            socket,
            Arc::clone(ingest),
            settings.clone(),
            t.stop_rx.clone(),
        ));
    }
    if let Some(addr) = config.syslog_tcp {
        let listener = bind_tcp(addr, "syslog/tcp").await?;
        bound.syslog_tcp = listener.local_addr().ok();
        t.drains.spawn(syslog::run_tcp(
            listener,
            None,
            tracker("syslog-tcp"),
            Arc::clone(ingest),
            settings.clone(),
            t.stop_rx.clone(),
        ));
    }
    if let Some(addr) = config.syslog_tls {
        let tls_config = tls::server_config(&config.tls).map_err(StartError::of("TLS"))?;
        let listener = bind_tcp(addr, "syslog/tls").await?;
        bound.syslog_tls = listener.local_addr().ok();
        let acceptor = tokio_rustls::TlsAcceptor::from(tls_config);
        t.drains.spawn(syslog::run_tcp(
            listener,
            Some(acceptor),
            tracker("syslog-tls"),
            Arc::clone(ingest),
            settings.clone(),
            t.stop_rx.clone(),
        ));
    }
    Ok(bound)
}

/// Keys of batches stored before a crash, read back before the first request. A ledger that
/// cannot be read back costs the keys (a retry may be stored twice), not the start.
async fn idempotency_keys(config: &ServerConfig) -> idempotency::Idempotency {
    let data_dir = config.data_dir.clone();
    let rebuilt =
        tokio::task::spawn_blocking(move || idempotency::Idempotency::from_ledger(&data_dir))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
    rebuilt.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "idempotency keys not rebuilt from the ledger");
        idempotency::Idempotency::default()
    })
}

/// What the HTTP handlers share.
pub(crate) async fn http_state(
    config: &ServerConfig,
    core: &Core,
    tokens: Arc<auth::TokenStore>,
    (accounts, cluster): (&vigil_auth::AuthStore, &Option<vigil_cluster::Cluster>),
    run: serde_json::Value,
    witness: crate::witness::WitnessState,
) -> Arc<http::AppState> {
    let sessions = match accounts.shared() {
        Some(shared) => session::SessionStore::new_shared(
            Arc::clone(shared),
            config.session_idle,
            config.session_max,
        ),
        None => {
            session::SessionStore::new(&config.data_dir, config.session_idle, config.session_max)
        }
    };
    Arc::new(http::AppState {
        ingest: Arc::clone(&core.ingest),
        tokens,
        data_dir: config.data_dir.clone(),
        keep_original: config.keep_original,
        max_body_bytes: config.max_body_bytes,
        index: core.index.clone(),
        searches: Arc::new(tokio::sync::Semaphore::new(http::MAX_SEARCHES_IN_FLIGHT)),
        detect: core.detect.clone(),
        notify_stats: Arc::clone(&core.notify_stats),
        decisions: Arc::clone(&core.decisions),
        bouncer_polls: Default::default(),
        idempotency: idempotency_keys(config).await,
        sessions: Arc::new(sessions),
        accounts: accounts.clone(),
        cluster: cluster.clone(),
        cluster_health: Default::default(),
        login_limiter: session::LoginLimiter::default(),
        account_limiter: session::AccountLimiter::default(),
        token_limiter: session::LoginLimiter::for_tokens(),
        anonymous_limiter: session::LoginLimiter::for_tokens(),
        tls: config.http_tls,
        last_verification: std::sync::Mutex::new(None),
        run,
        verifying: std::sync::atomic::AtomicBool::new(false),
        witness,
        cases: Default::default(),
        drills: crate::drill::service(config, core, accounts),
    })
}

/// The OTLP/gRPC listener: the role table and the token checks of the HTTP API, over
/// plaintext HTTP/2 ([`crate::listen_grpc`]).
pub(super) async fn otlp_grpc_listener(
    addr: SocketAddr,
    state: &Arc<http::AppState>,
    tracker: &impl Fn(&'static str) -> Arc<listen::ConnTracker>,
    t: &mut Tasks,
) -> Result<SocketAddr, StartError> {
    let listener = bind_tcp(addr, "OTLP/gRPC").await?;
    let bound = listener.local_addr().unwrap_or(addr);
    t.tasks.spawn(crate::listen_grpc::serve(
        listener,
        http::grpc_router(Arc::clone(state)),
        tracker("otlp-grpc"),
        t.stop_rx.clone(),
    ));
    Ok(bound)
}

pub(crate) async fn http_listener(
    config: &ServerConfig,
    addr: SocketAddr,
    app: axum::Router,
    tracker: &impl Fn(&'static str) -> Arc<listen::ConnTracker>,
    t: &mut Tasks,
) -> Result<SocketAddr, StartError> {
    let name = if config.http_tls { "https" } else { "http" };
    let listener = bind_tcp(addr, name).await?;
    let bound = listener.local_addr().map_err(|source| StartError::Listen {
        what: name,
        addr,
        source,
    })?;
    let acceptor = if config.http_tls {
        Some(tokio_rustls::TlsAcceptor::from(
            tls::http_server_config(&config.tls).map_err(StartError::of("TLS"))?,
        ))
    } else {
        None
    };
    t.tasks.spawn(listen::serve_http(
        listener,
        acceptor,
        app,
        tracker(name),
        t.stop_rx.clone(),
    ));
    Ok(bound)
}
