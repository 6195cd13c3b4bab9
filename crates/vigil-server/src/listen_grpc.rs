//! The OTLP/gRPC listener: plaintext HTTP/2 (what gRPC clients speak to an `http://` endpoint),
//! with the HTTP API's connection limits (per listener and per address, [`ConnTracker`]), at
//! most [`MAX_STREAMS`] calls at once per connection, keep-alive pings that close dead
//! connections, and a graceful stop.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::listen::ConnTracker;

/// Concurrent calls per connection.
pub const MAX_STREAMS: u32 = 64;
/// How often an idle connection is pinged, and how long an answer may take.
const KEEP_ALIVE: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(20));

/// Serves `router` on `listener` over HTTP/2 until `stop` changes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tracker: Arc<ConnTracker>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(64 * 1024)
        .keep_alive_interval(KEEP_ALIVE.0)
        .keep_alive_timeout(KEEP_ALIVE.1);
    loop {
        let (tcp, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("otlp-grpc accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Some(slot) = tracker.admit(peer.ip()) else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            let answer = tower::ServiceExt::oneshot(router.clone(), request);
            async move { Ok::<_, Infallible>(answer.await.unwrap_or_else(|e| match e {})) }
        });
        let conn = builder.serve_connection(TokioIo::new(tcp), service);
        let watched = graceful.watch(conn);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = watched.await {
                tracing::debug!(%peer, "otlp-grpc: connection ended: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
