//! The OTLP/gRPC listener: plaintext HTTP/2 (what gRPC clients speak to an `http://` endpoint),
//! with the HTTP API's connection limits (per listener and per address, [`ConnTracker`]), at
//! most [`MAX_STREAMS`] calls at once per connection, a connection that sends no request within
//! the header timeout closed, one that sends none for [`IDLE`] closed, keep-alive pings that
//! close dead connections, and a graceful stop. Request bodies are bounded by the route's size
//! limit (tonic's decoder), not by a deadline of their own.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
/// A connection with no request for this long is closed (exporters reconnect).
pub const IDLE: Duration = Duration::from_secs(300);

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
        // Requests seen on this connection; the watchdog below closes it when this stops moving.
        let requests = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&requests);
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            seen.fetch_add(1, Ordering::Relaxed);
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            let answer = tower::ServiceExt::oneshot(router.clone(), request);
            async move { Ok::<_, Infallible>(answer.await.unwrap_or_else(|e| match e {})) }
        });
        let conn = builder.serve_connection(TokioIo::new(tcp), service);
        let watched = graceful.watch(conn);
        let tracker = Arc::clone(&tracker);
        let first = tracker.limits().header_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let mut watched = std::pin::pin!(watched);
            let mut last = 0;
            let mut wait = first;
            loop {
                tokio::select! {
                    ended = &mut watched => {
                        if let Err(e) = ended {
                            tracing::debug!(%peer, "otlp-grpc: connection ended: {e}");
                        }
                        return;
                    }
                    _ = tokio::time::sleep(wait) => {
                        let now = requests.load(Ordering::Relaxed);
                        if now == last {
                            // No request since the last look (none at all, within the header
                            // timeout, for a new connection): dropped, counted as a timeout.
                            tracker.timed_out();
                            tracing::debug!(%peer, "otlp-grpc: idle connection closed");
                            return;
                        }
                        last = now;
                        wait = IDLE;
                    }
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
