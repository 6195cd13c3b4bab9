//! Syslog listeners: UDP, TCP and TLS (RFC 5425), with LF framing and RFC 6587 octet counting.
//!
//! Framing is `vigil_parse::framing` (pure, fuzzed): bytes in, messages out, with a maximum
//! message size (a longer message is cut, tagged `truncated` and counted). The listeners
//! parse each message with `vigil-parse`, attach the sender's address, and hand batches to the
//! [`Ingest`] pipeline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use vigil_event::{Event, Timestamp};
use vigil_parse::{Format, ParseContext, parse_line};

use vigil_parse::framing::{Frame, Framer, trim_line_end};

use crate::listen::ConnTracker;
use crate::pipeline::{Ingest, IngestError, MAX_BATCH};
use vigil_ingest::Batch;

/// Settings shared by the syslog listeners.
#[derive(Clone)]
pub struct SyslogSettings {
    /// Longest message kept whole.
    pub max_message_bytes: usize,
    /// Keep `event.original`.
    pub keep_original: bool,
    /// A TCP/TLS connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// A TCP/TLS connection whose frame (line) is still unfinished this long after its first
    /// byte is closed, keeping what it sent: a byte now and then cannot hold a slot forever.
    pub frame_timeout: Duration,
}

/// Parses `frames` with the door's own redactor: the batch it returns is masked already
/// ([`Ingest::parsed`]), so the door does not scan the events a second time.
fn parse_frames(
    frames: Vec<Frame>,
    listener: &'static str,
    peer: SocketAddr,
    settings: &SyslogSettings,
    ingest: &Ingest,
) -> Batch {
    let now = Timestamp::now();
    let ctx = ParseContext {
        received: now,
        reference: now,
        source: format!("syslog-{listener}"),
        keep_original: settings.keep_original,
        peer: Some(peer.ip()),
        redactor: ingest.redactor(),
    };
    let mut truncated = 0;
    // Who sent them: the peer's address (after parsing: input cannot claim `vigil.*`).
    let sender = format!("syslog:{}", peer.ip());
    let events: Vec<Event> = frames
        .into_iter()
        .map(|f| {
            // A parser that panics (a bug, never the sender's fault) must not end the listener's
            // task (UDP has no one to restart it) nor lose the line: it is kept raw, masked as
            // any line is, and tagged as a parse error.
            let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                parse_line(&f.bytes, Format::Auto, &ctx)
            }));
            let mut e = parsed.unwrap_or_else(|_| {
                tracing::error!(
                    "a parser failed on a syslog frame from {peer} ({listener}): kept raw, \
                     tagged parse_error"
                );
                let mut raw = parse_line(&f.bytes, Format::Raw, &ctx);
                raw.add_tag(vigil_event::tag::PARSE_ERROR);
                raw
            });
            e.insert(vigil_event::field::VIGIL_SENDER, sender.as_str());
            if f.truncated {
                e.add_tag(vigil_event::tag::TRUNCATED);
                truncated += 1;
            }
            e
        })
        .collect();
    ingest.metrics.truncated.add(listener, truncated);
    ingest.parsed(events, ctx.redactor.as_ref())
}

/// Receives syslog datagrams until `stop` changes.
pub async fn run_udp(
    socket: UdpSocket,
    ingest: Arc<Ingest>,
    settings: SyslogSettings,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("syslog udp receive: {e}");
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        // Take whatever else is already queued, to batch. An empty datagram (nothing but a line
        // end) holds no message: it is dropped and counted, never stored as an empty event.
        let mut frames = Vec::new();
        let mut peers = Vec::new();
        let mut take = |n: usize, buf: &[u8], peer: SocketAddr| {
            ingest.metrics.bytes.add("udp", n as u64);
            match datagram_frame(&buf[..n], settings.max_message_bytes) {
                Some(frame) => {
                    frames.push(frame);
                    peers.push(peer);
                }
                None => {
                    ingest.metrics.udp_empty.fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        take(n, &buf, peer);
        for _ in 1..256 {
            match socket.try_recv_from(&mut buf) {
                Ok((n, p)) => take(n, &buf, p),
                Err(_) => break,
            }
        }
        if frames.is_empty() {
            continue;
        }
        // Each datagram parsed with its sender's address and the door's redactor: all masked.
        let mut events = Batch::default();
        for (frame, peer) in frames.into_iter().zip(peers) {
            events.append(parse_frames(vec![frame], "udp", peer, &settings, &ingest));
        }
        let n_events = events.len() as u64;
        match ingest.try_append(events, vigil_ingest::Listener::Udp) {
            Ok(pending) => {
                tokio::spawn(async move {
                    if let Err(e) = pending.durable().await {
                        tracing::error!("syslog udp: {e}");
                    }
                });
            }
            Err(_) => {
                ingest
                    .metrics
                    .udp_dropped
                    .fetch_add(n_events, Ordering::Relaxed);
            }
        }
    }
}

/// The message of one datagram, `None` when it is empty.
fn datagram_frame(bytes: &[u8], max: usize) -> Option<Frame> {
    let b = trim_line_end(bytes);
    if b.is_empty() {
        None
    } else if b.len() > max {
        Some(Frame {
            bytes: b[..max].to_vec(),
            truncated: true,
        })
    } else {
        Some(Frame {
            bytes: b.to_vec(),
            truncated: false,
        })
    }
}

/// Accepts syslog TCP connections (and TLS ones when `tls` is set) until `stop` changes;
/// `tracker` bounds the connections open at once, in total and per address.
pub async fn run_tcp(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    tracker: Arc<ConnTracker>,
    ingest: Arc<Ingest>,
    settings: SyslogSettings,
    mut stop: watch::Receiver<bool>,
) {
    let name: &'static str = if tls.is_some() { "tls" } else { "tcp" };
    // Connection tasks are kept so that stopping waits for them: each stores what it has read
    // before the ingest pipeline drains and the ledger closes.
    let mut open = tokio::task::JoinSet::new();
    let connection_stop = stop.clone();
    let shared = Arc::new(ListenerShared {
        tracker: Arc::clone(&tracker),
        drained: AtomicU64::new(0),
    });
    let spawn = |open: &mut tokio::task::JoinSet<()>, stream: TcpStream, peer: SocketAddr| {
        let Some(slot) = tracker.admit(peer.ip()) else {
            return;
        };
        let ingest = Arc::clone(&ingest);
        let tracker = Arc::clone(&tracker);
        let settings = settings.clone();
        let tls = tls.clone();
        let stop = connection_stop.clone();
        let shared = Arc::clone(&shared);
        open.spawn(async move {
            let _slot = slot;
            let result = match tls {
                Some(acceptor) => {
                    // A handshake that never ends holds a connection slot: bounded, and given
                    // up when Vigil stops.
                    let mut stop_handshake = stop.clone();
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    tokio::select! {
                        r = handshake => match r {
                            Ok(Ok(s)) => {
                                read_stream(s, peer, name, &shared, ingest, settings, stop)
                                    .await
                            }
                            Ok(Err(e)) => Err(format!("TLS handshake: {e}")),
                            Err(_) => {
                                tracker.timed_out();
                                Err("TLS handshake timed out".to_string())
                            }
                        },
                        _ = stop_handshake.changed(), if !*stop_handshake.borrow() => Ok(()),
                    }
                }
                None => read_stream(stream, peer, name, &shared, ingest, settings, stop).await,
            };
            if let Err(e) = result {
                tracing::debug!("syslog {name} {peer}: {e}");
            }
        });
    };
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("syslog {name} accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = open.join_next(), if !open.is_empty() => continue,
            _ = stop.changed() => break,
        };
        spawn(&mut open, stream, peer);
    }
    // Connections the kernel completed before the stop wait in the backlog, and their senders
    // may have written already: take them all (each drains as a stopping connection), then
    // close the listener.
    loop {
        let queued = std::future::poll_fn(|cx| match listener.poll_accept(cx) {
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending => Poll::Ready(None),
        })
        .await;
        match queued {
            Some(Ok((stream, peer))) => spawn(&mut open, stream, peer),
            Some(Err(e)) => {
                tracing::warn!("syslog {name} accept while stopping: {e}");
                break;
            }
            None => break,
        }
    }
    drop(listener);
    while open.join_next().await.is_some() {}
}

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// When Vigil stops, a connection is read until it has been empty this long: what the sender
/// wrote before the stop is in the kernel's buffers (ours, or the sender's send buffer, which
/// flows as we read), so an empty socket that stays empty has delivered it all. The pause
/// starts only once the socket is empty, so a busy machine (reading and storing slowly) loses
/// nothing to it.
const STOP_DRAIN_PAUSE: Duration = Duration::from_millis(500);
/// Bytes a stopping connection is still read for at most: more than kernel buffers hold (the
/// receive and the sender's send buffer), so it ends only a sender that keeps writing after
/// the stop.
const STOP_DRAIN_MAX_BYTES: u64 = 16 << 20;
/// Bytes all stopping connections of a listener are still read for at most, so that many
/// senders that keep writing cannot hold a stop up for long either.
const STOP_DRAIN_LISTENER_BYTES: u64 = 256 << 20;
/// How often a stopping connection may find its socket empty and wait (up to
/// [`STOP_DRAIN_PAUSE`]) for more: this many times, plus once per [`STOP_DRAIN_BYTES_PER_WAIT`]
/// bytes it delivered. Counting waits rather than their duration keeps a busy machine (whose
/// tasks and kernel run late) from ending a drain, while a sender trickling bytes after the stop
/// runs out of waits.
const STOP_DRAIN_WAITS: u64 = 100;
/// Bytes that earn a stopping connection one more wait.
const STOP_DRAIN_BYTES_PER_WAIT: u64 = 64 * 1024;

/// What a stopping connection has drained.
#[derive(Default)]
struct Drain {
    /// Bytes read since the stop.
    bytes: u64,
    /// Times the socket was found empty since the stop.
    waits: u64,
}

/// What the connections of one listener share.
struct ListenerShared {
    /// Their slots.
    tracker: Arc<ConnTracker>,
    /// Bytes read by all of them since the stop.
    drained: AtomicU64,
}

async fn read_stream<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    name: &'static str,
    shared: &ListenerShared,
    ingest: Arc<Ingest>,
    settings: SyslogSettings,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut framer = Framer::new(settings.max_message_bytes);
    let mut buf = vec![0u8; 64 * 1024];
    // Set when Vigil stops: plain TCP syslog has no acknowledgements, so before closing, what
    // the sender has already written is read and stored: until the socket stays empty for
    // STOP_DRAIN_PAUSE (bounded by STOP_DRAIN_MAX_BYTES and STOP_DRAIN_WAITS).
    let mut stopping: Option<Drain> = None;
    if *stop.borrow() {
        // Taken from the backlog after the stop.
        stopping = Some(Drain::default());
    }
    // The connection ends because Vigil stops, not because the sender closed it: a last line
    // without its end may be incomplete.
    let mut cut_short = false;
    // When the frame not yet finished must be: its first byte plus `frame_timeout`.
    let mut frame_deadline: Option<tokio::time::Instant> = None;
    loop {
        let wait = match frame_deadline {
            Some(d) => settings
                .idle_timeout
                .min(d.saturating_duration_since(tokio::time::Instant::now())),
            None => settings.idle_timeout,
        };
        let n = match &mut stopping {
            None => tokio::select! {
                r = tokio::time::timeout(wait, stream.read(&mut buf)) => match r {
                    Ok(r) => r.map_err(|e| e.to_string())?,
                    Err(_) => {
                        // Idle too long, or a frame trickled for too long: the slot goes to
                        // someone else. What was read is stored; an unfinished last line is
                        // kept, tagged `truncated`.
                        tracing::debug!(%peer, "syslog {name}: idle or unfinished frame; closing");
                        shared.tracker.timed_out();
                        cut_short = true;
                        0
                    }
                },
                _ = stop.changed() => {
                    stopping = Some(Drain::default());
                    continue;
                }
            },
            Some(drain) => {
                if drain.bytes >= STOP_DRAIN_MAX_BYTES
                    || drain.waits > STOP_DRAIN_WAITS + drain.bytes / STOP_DRAIN_BYTES_PER_WAIT
                    || shared.drained.load(Ordering::Relaxed) >= STOP_DRAIN_LISTENER_BYTES
                {
                    tracing::warn!(
                        "syslog {name} {peer}: still sending after the stop ({} bytes); closing",
                        drain.bytes
                    );
                    cut_short = true;
                    0
                } else {
                    // What is already buffered is taken at once; only an empty socket makes
                    // this wait, for at most the pause.
                    let mut read = std::pin::pin!(stream.read(&mut buf));
                    let first =
                        std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
                    let read = match first {
                        Poll::Ready(r) => Ok(r),
                        Poll::Pending => {
                            drain.waits += 1;
                            tokio::time::timeout(STOP_DRAIN_PAUSE, read).await
                        }
                    };
                    match read {
                        Ok(r) => {
                            let n = r.map_err(|e| e.to_string())?;
                            drain.bytes += n as u64;
                            shared.drained.fetch_add(n as u64, Ordering::Relaxed);
                            n
                        }
                        Err(_) => {
                            cut_short = true;
                            0
                        }
                    }
                }
            }
        };
        let eof = n == 0;
        if !eof {
            ingest.metrics.bytes.add(name, n as u64);
            framer.push(&buf[..n]);
        }
        let mut frames = Vec::new();
        let mut completed = false;
        while let Some(f) = framer.next_frame() {
            completed = true;
            frames.push(f);
            if frames.len() == MAX_BATCH {
                send(frames, peer, name, &settings, &ingest).await?;
                frames = Vec::new();
            }
        }
        if eof && let Some(mut f) = framer.finish() {
            f.truncated |= cut_short;
            frames.push(f);
        }
        if !frames.is_empty() {
            send(frames, peer, name, &settings, &ingest).await?;
        }
        // What is left unframed started in this read if a frame ended in it (or nothing is
        // left); else it is the same frame as before, whose deadline stands.
        if framer.pending() == 0 {
            frame_deadline = None;
        } else if completed || frame_deadline.is_none() {
            frame_deadline = Some(tokio::time::Instant::now() + settings.frame_timeout);
        }
        if eof {
            // A clean close (TLS close_notify) so well-behaved senders see an orderly end.
            let _ = stream.shutdown().await;
            return Ok(());
        }
    }
}

async fn send(
    frames: Vec<Frame>,
    peer: SocketAddr,
    name: &'static str,
    settings: &SyslogSettings,
    ingest: &Arc<Ingest>,
) -> Result<(), String> {
    let events = parse_frames(frames, name, peer, settings, ingest);
    // Waiting here stops reading the socket: the sender's TCP window closes (backpressure).
    let pending = ingest
        .append_waiting(
            events,
            if name == "tls" {
                vigil_ingest::Listener::Tls
            } else {
                vigil_ingest::Listener::Tcp
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        match pending.durable().await {
            Ok(_) => {}
            Err(IngestError::Ledger(e)) => tracing::error!("syslog: {e}"),
            Err(e) => tracing::error!("syslog: {e}"),
        }
    });
    Ok(())
}
