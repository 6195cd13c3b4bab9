//! Connection limits of the TCP listeners (HTTP/HTTPS and syslog TCP/TLS), and the HTTP serving
//! loop that applies them.
//!
//! Every accepted connection takes a slot of its listener ([`ConnLimits::max_connections`]) and
//! of its source address ([`ConnLimits::max_per_address`]; IPv6 counts per /64). A connection
//! over either limit is closed at once and counted in `vigil_connections_refused_total`, so one
//! address cannot hold every slot: the rest stay free for other senders, health checks, login
//! and the UI. The last sixteenth of a listener's slots is kept for addresses that hold none yet,
//! so a few addresses each at their own limit cannot fill the listener either. The default limits are sized from the process's open-file limit (read from
//! `/proc/self/limits`), so connections never exhaust the descriptors the ledger and index need.
//!
//! HTTP connections are served by hyper's HTTP/1 connection with a header read timeout (which
//! also ends keep-alive connections idle that long) and a deadline for the whole request body;
//! timeouts are counted in `vigil_connection_timeouts_total`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::metrics::Metrics;

/// Limits on the connections of one TCP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Open connections allowed at once on the listener; 0 sizes it from the open-file limit.
    pub max_connections: usize,
    /// Open connections allowed at once from one address (IPv6: one /64); 0 sizes it from
    /// `max_connections`.
    pub max_per_address: usize,
    /// HTTP: a request's header must arrive within this long, and a keep-alive connection
    /// closes after this long without a new request.
    pub header_timeout: Duration,
    /// HTTP: a request's whole body must arrive within this long.
    pub body_timeout: Duration,
    /// Syslog TCP/TLS: a connection that sends nothing for this long is closed.
    pub syslog_idle_timeout: Duration,
    /// Syslog TCP/TLS: a connection whose line is unfinished this long after its first byte is
    /// closed (what it sent is stored, tagged `truncated`).
    pub syslog_frame_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 0,
            max_per_address: 0,
            header_timeout: Duration::from_secs(20),
            body_timeout: Duration::from_secs(60),
            syslog_idle_timeout: Duration::from_secs(300),
            syslog_frame_timeout: Duration::from_secs(60),
        }
    }
}

/// Descriptors kept for the ledger, the index, rule files and outgoing connections.
const FILE_RESERVE: u64 = 256;
/// The largest default connection limit of one listener.
const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// The largest default limit per address.
const DEFAULT_MAX_PER_ADDRESS: usize = 256;

/// The soft limit on open files (`Max open files` in `/proc/self/limits`), if readable.
pub fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&text)
}

fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

impl ConnLimits {
    /// The limits with defaults filled in for one of `listeners` TCP listeners, given the
    /// open-file limit `nofile`: the descriptors left after [`FILE_RESERVE`] are shared evenly
    /// (at most 4,096 each), and one address may hold a quarter of a listener's (at most 256).
    pub fn resolved(self, listeners: usize, nofile: Option<u64>) -> ConnLimits {
        let mut limits = self;
        if limits.max_connections == 0 {
            limits.max_connections = match nofile {
                Some(n) => {
                    let share = n.saturating_sub(FILE_RESERVE) / listeners.max(1) as u64;
                    (share.min(DEFAULT_MAX_CONNECTIONS as u64) as usize).max(16)
                }
                None => 1024,
            };
        }
        if limits.max_per_address == 0 {
            limits.max_per_address = (limits.max_connections / 4).clamp(1, DEFAULT_MAX_PER_ADDRESS);
        }
        limits.max_per_address = limits.max_per_address.min(limits.max_connections);
        limits
    }
}

/// IPv6 addresses count per /64 (one host usually has a whole /64).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let mut seg = v6.segments();
            seg[4..].fill(0);
            IpAddr::V6(seg.into())
        }
    }
}

/// The open connections of one listener, in total and per address.
pub struct ConnTracker {
    listener: &'static str,
    limits: ConnLimits,
    metrics: Arc<Metrics>,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A connection's slot; dropping it frees the slot.
pub struct ConnSlot {
    tracker: Arc<ConnTracker>,
    key: IpAddr,
}

impl ConnTracker {
    /// A tracker for the listener `listener` (the metrics label) with resolved `limits`.
    pub fn new(listener: &'static str, limits: ConnLimits, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(ConnTracker {
            listener,
            limits,
            metrics,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> ConnLimits {
        self.limits
    }

    /// Takes a slot for a connection from `ip`, or counts a refusal and returns `None` when the
    /// listener or the address is at its limit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ConnSlot> {
        let key = address_key(ip);
        let refused = {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            let (total, per) = &mut *open;
            let mine = per.get(&key).copied().unwrap_or(0);
            // The last slots are kept for addresses that hold none yet (a health check, an
            // admin logging in), so a few addresses at their own limits cannot fill them.
            let reserve = (self.limits.max_connections / 16).max(1);
            if *total >= self.limits.max_connections {
                Some("listener")
            } else if mine >= self.limits.max_per_address {
                Some("address")
            } else if mine > 0 && *total + reserve >= self.limits.max_connections {
                Some("listener (the reserve is for new addresses)")
            } else {
                *total += 1;
                *per.entry(key).or_insert(0) += 1;
                None
            }
        };
        match refused {
            None => Some(ConnSlot {
                tracker: Arc::clone(self),
                key,
            }),
            Some(which) => {
                self.metrics.connections_refused.add(self.listener, 1);
                tracing::debug!(
                    "{}: connection from {ip} refused: {which} at its connection limit",
                    self.listener
                );
                None
            }
        }
    }

    /// Counts a connection closed because its peer was too slow or idle too long.
    pub fn timed_out(&self) {
        self.metrics.connection_timeouts.add(self.listener, 1);
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut open = self.tracker.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(n) = per.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.key);
            }
        }
    }
}

/// The answer to a plain HTTP connection over its limits.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
Retry-After: 5\r\nContent-Type: text/plain\r\nContent-Length: 76\r\n\r\n\
Vigil has too many open connections from this address or in all; retry later";

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` (over TLS when `tls` is set) until `stop` changes, then lets
/// requests in progress finish. Each connection is admitted by `tracker`, reads its request
/// head within the header timeout and each request body within the body timeout.
pub async fn serve_http(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    tracker: Arc<ConnTracker>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let limits = tracker.limits();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    loop {
        let (tcp, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("{} accept: {e}", tracker.listener);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Some(slot) = tracker.admit(peer.ip()) else {
            if tls.is_none() {
                // Best effort, without waiting: a plain HTTP client learns why.
                let _ = tcp.try_write(REFUSED);
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let body_tracker = Arc::clone(&tracker);
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let tracker = Arc::clone(&body_tracker);
            let expired = Arc::new(AtomicBool::new(false));
            let body_expired = Arc::clone(&expired);
            let mut request = request.map(|body| {
                axum::body::Body::new(DeadlineBody::new(
                    body,
                    limits.body_timeout,
                    tracker,
                    body_expired,
                ))
            });
            request.extensions_mut().insert(ConnectInfo(peer));
            let answer = tower::ServiceExt::<Request>::oneshot(router.clone(), request);
            async move {
                let response = answer.await?;
                // Whatever the handler made of the cut body (axum: 400 "Failed to buffer the
                // request body"), the client must learn it was too slow, not wrong: 408, which
                // a sender retries.
                if expired.load(Ordering::Relaxed) {
                    return Ok::<_, std::convert::Infallible>(body_timed_out(limits.body_timeout));
                }
                Ok(response)
            }
        });
        let builder = builder.clone();
        let tracker = Arc::clone(&tracker);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let mut stop_handshake = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let served = match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(tcp), service);
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                    let stream = tokio::select! {
                        r = handshake => match r {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, "tls handshake failed: {e}");
                                return;
                            }
                            Err(_) => {
                                tracker.timed_out();
                                tracing::debug!(%peer, "tls handshake timed out");
                                return;
                            }
                        },
                        _ = stop_handshake.changed() => return,
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = served {
                if e.is_timeout() {
                    tracker.timed_out();
                }
                tracing::debug!(%peer, "{}: connection ended: {e}", tracker.listener);
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The answer to a request whose body missed its deadline: 408 Request Timeout (the request
/// may succeed if sent again), and the connection is closed (the rest of the body is unread).
fn body_timed_out(limit: Duration) -> axum::response::Response {
    let message = format!(
        "the request body did not arrive within {} s; send it again",
        limit.as_secs()
    );
    let mut response = crate::http::error(axum::http::StatusCode::REQUEST_TIMEOUT, message);
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

/// A request body that fails when it has not arrived whole by its deadline (a slow sender
/// cannot hold a connection and a handler by trickling bytes). It sets `expired` when it does,
/// so the answer is 408 whatever the handler made of the error.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    tracker: Arc<ConnTracker>,
    expired: Arc<AtomicBool>,
}

impl DeadlineBody {
    fn new(
        inner: Incoming,
        limit: Duration,
        tracker: Arc<ConnTracker>,
        expired: Arc<AtomicBool>,
    ) -> DeadlineBody {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
            tracker,
            expired,
        }
    }
}

impl hyper::body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Relaxed);
            this.tracker.timed_out();
            let message = format!(
                "the request body did not arrive within {} s",
                this.limit.as_secs()
            );
            return Poll::Ready(Some(Err(message.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_soft_open_file_limit() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             63704                63704                processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_file_limit(text), Some(1024));
        assert!(open_file_limit().is_some_and(|n| n > 0));
    }

    #[test]
    fn defaults_share_the_descriptors_and_keep_a_reserve() {
        let l = ConnLimits::default().resolved(3, Some(1024));
        assert_eq!(l.max_connections, 256);
        assert_eq!(l.max_per_address, 64);
        let l = ConnLimits::default().resolved(2, Some(1_048_576));
        assert_eq!(l.max_connections, 4096);
        assert_eq!(l.max_per_address, 256);
        let set = ConnLimits {
            max_connections: 10,
            max_per_address: 50,
            ..ConnLimits::default()
        }
        .resolved(3, Some(1024));
        assert_eq!((set.max_connections, set.max_per_address), (10, 10));
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let metrics = Arc::new(Metrics::default());
        let limits = ConnLimits {
            max_connections: 4,
            max_per_address: 2,
            ..ConnLimits::default()
        };
        let t = ConnTracker::new("http", limits, Arc::clone(&metrics));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        let d: IpAddr = "10.0.0.4".parse().unwrap();
        let s1 = t.admit(a).unwrap();
        let _s2 = t.admit(a).unwrap();
        assert!(t.admit(a).is_none(), "per-address limit");
        let _s3 = t.admit(b).unwrap();
        assert!(
            t.admit(b).is_none(),
            "the last slot is kept for an address that holds none"
        );
        let _s4 = t.admit(c).unwrap();
        assert!(t.admit(d).is_none(), "listener limit");
        drop(s1);
        assert!(t.admit(d).is_some(), "a closed connection frees its slot");
        assert_eq!(metrics.connections_refused.get("http"), 3);
        // One IPv6 /64 is one address.
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::2".parse().unwrap();
        assert_eq!(address_key(v6a), address_key(v6b));
    }
}
