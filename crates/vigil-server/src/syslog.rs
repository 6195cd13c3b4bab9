//! Syslog listeners: UDP, TCP and TLS (RFC 5425), with LF framing and RFC 6587 octet counting.
//!
//! [`Framer`] is the pure part: bytes in, messages out, with a maximum message size (a longer
//! message is cut, tagged `truncated` and counted; the rest of it is skipped). The listeners
//! parse each message with `vigil-parse`, attach the sender's address, and hand batches to the
//! [`Ingest`] pipeline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use vigil_event::{Event, Timestamp};
use vigil_parse::{Format, ParseContext, parse_line};

use crate::pipeline::{Ingest, IngestError, MAX_BATCH};

/// Open TCP/TLS connections allowed at once.
const MAX_CONNECTIONS: usize = 1024;

/// One message cut out of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message bytes (without framing).
    pub bytes: Vec<u8>,
    /// Cut at the maximum message size.
    pub truncated: bool,
}

/// Splits a byte stream into syslog messages: RFC 6587 octet counting (`LEN SP MSG`) when a
/// frame starts with digits, a space and `<`; otherwise one message per line (LF, with an
/// optional CR before it; NUL also ends a message).
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    start: usize,
    max: usize,
    /// Bytes of an oversized message still to skip: `Some(n)` for octet counting, `Some(0)`
    /// meaning "until the next line end".
    skip: Option<usize>,
}

impl Framer {
    /// A framer cutting messages at `max` bytes.
    pub fn new(max: usize) -> Framer {
        Framer {
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
            max: max.max(64),
            skip: None,
        }
    }

    /// Adds received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet framed.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete message, if one is buffered.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            let rest = &self.buf[self.start..];
            if rest.is_empty() {
                return None;
            }
            match self.skip {
                Some(0) => match rest.iter().position(|&b| b == b'\n' || b == 0) {
                    Some(i) => {
                        self.start += i + 1;
                        self.skip = None;
                        continue;
                    }
                    None => {
                        self.start = self.buf.len();
                        return None;
                    }
                },
                Some(n) => {
                    let k = n.min(rest.len());
                    self.start += k;
                    self.skip = if k == n { None } else { Some(n - k) };
                    continue;
                }
                None => {}
            }
            // Skip stray line ends between messages.
            if rest[0] == b'\n' || rest[0] == b'\r' || rest[0] == 0 {
                self.start += 1;
                continue;
            }
            if let Some((len, header)) = octet_count(rest) {
                if len > self.max {
                    if rest.len() < header + self.max {
                        return None;
                    }
                    let bytes = rest[header..header + self.max].to_vec();
                    self.start += header + self.max;
                    self.skip = Some(len - self.max);
                    if len - self.max == 0 {
                        self.skip = None;
                    }
                    return Some(Frame {
                        bytes,
                        truncated: true,
                    });
                }
                if rest.len() < header + len {
                    return None;
                }
                let bytes = trim_line_end(&rest[header..header + len]).to_vec();
                self.start += header + len;
                return Some(Frame {
                    bytes,
                    truncated: false,
                });
            }
            if octet_count_possible(rest) {
                // Digits so far, no space yet: wait for more.
                return None;
            }
            match rest.iter().position(|&b| b == b'\n' || b == 0) {
                Some(i) if i <= self.max => {
                    let bytes = trim_line_end(&rest[..i]).to_vec();
                    self.start += i + 1;
                    return Some(Frame {
                        bytes,
                        truncated: false,
                    });
                }
                _ if rest.len() > self.max => {
                    let bytes = rest[..self.max].to_vec();
                    self.start += self.max;
                    self.skip = Some(0);
                    return Some(Frame {
                        bytes,
                        truncated: true,
                    });
                }
                _ => return None,
            }
        }
    }

    /// At end of stream: whatever is left, as a final message.
    pub fn finish(&mut self) -> Option<Frame> {
        if let Some(frame) = self.next_frame() {
            return Some(frame);
        }
        if self.skip.is_some() {
            return None;
        }
        let rest = trim_line_end(&self.buf[self.start..]);
        self.start = self.buf.len();
        if rest.is_empty() {
            None
        } else {
            Some(Frame {
                bytes: rest.to_vec(),
                truncated: false,
            })
        }
    }
}

fn trim_line_end(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 0 && matches!(b[end - 1], b'\n' | b'\r' | 0) {
        end -= 1;
    }
    &b[..end]
}

/// `LEN SP <` at the start: `(LEN, bytes of "LEN SP")`.
fn octet_count(b: &[u8]) -> Option<(usize, usize)> {
    if !(b'1'..=b'9').contains(b.first()?) {
        return None;
    }
    let digits = b.iter().take(10).take_while(|c| c.is_ascii_digit()).count();
    if b.get(digits) != Some(&b' ') || b.get(digits + 1) != Some(&b'<') {
        return None;
    }
    let len: usize = std::str::from_utf8(&b[..digits]).ok()?.parse().ok()?;
    Some((len, digits + 1))
}

/// Could this still become an octet-counted frame once more bytes arrive?
fn octet_count_possible(b: &[u8]) -> bool {
    if !b.first().is_some_and(|c| (b'1'..=b'9').contains(c)) {
        return false;
    }
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    digits <= 10 && (digits == b.len() || (b[digits] == b' ' && digits + 1 == b.len()))
}

/// Settings shared by the syslog listeners.
#[derive(Clone)]
pub struct SyslogSettings {
    /// Longest message kept whole.
    pub max_message_bytes: usize,
    /// Keep `event.original`.
    pub keep_original: bool,
}

fn parse_frames(
    frames: Vec<Frame>,
    listener: &'static str,
    peer: SocketAddr,
    settings: &SyslogSettings,
    ingest: &Ingest,
) -> Vec<Event> {
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
    let events = frames
        .into_iter()
        .map(|f| {
            let mut e = parse_line(&f.bytes, Format::Auto, &ctx);
            if f.truncated {
                e.add_tag("truncated");
                truncated += 1;
            }
            e
        })
        .collect();
    ingest.metrics.truncated.add(listener, truncated);
    events
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
        ingest.metrics.bytes.add("udp", n as u64);
        // Take whatever else is already queued, to batch.
        let mut frames = vec![datagram_frame(&buf[..n], settings.max_message_bytes)];
        let mut peers = vec![peer];
        while frames.len() < 256 {
            match socket.try_recv_from(&mut buf) {
                Ok((n, p)) => {
                    ingest.metrics.bytes.add("udp", n as u64);
                    frames.push(datagram_frame(&buf[..n], settings.max_message_bytes));
                    peers.push(p);
                }
                Err(_) => break,
            }
        }
        let mut events = Vec::with_capacity(frames.len());
        for (frame, peer) in frames.into_iter().zip(peers) {
            events.extend(parse_frames(vec![frame], "udp", peer, &settings, &ingest));
        }
        let n_events = events.len() as u64;
        match ingest.try_append(events, "udp") {
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

fn datagram_frame(bytes: &[u8], max: usize) -> Frame {
    let b = trim_line_end(bytes);
    if b.len() > max {
        Frame {
            bytes: b[..max].to_vec(),
            truncated: true,
        }
    } else {
        Frame {
            bytes: b.to_vec(),
            truncated: false,
        }
    }
}

/// Accepts syslog TCP connections (and TLS ones when `tls` is set) until `stop` changes.
pub async fn run_tcp(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    ingest: Arc<Ingest>,
    settings: SyslogSettings,
    mut stop: watch::Receiver<bool>,
) {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let name: &'static str = if tls.is_some() { "tls" } else { "tcp" };
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("syslog {name} accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let Ok(slot) = Arc::clone(&connections).try_acquire_owned() else {
            tracing::warn!("syslog {name}: connection limit reached, refusing {peer}");
            continue;
        };
        let ingest = Arc::clone(&ingest);
        let settings = settings.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let result = match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => read_stream(s, peer, name, ingest, settings, stop).await,
                    Err(e) => Err(format!("TLS handshake: {e}")),
                },
                None => read_stream(stream, peer, name, ingest, settings, stop).await,
            };
            if let Err(e) = result {
                tracing::debug!("syslog {name} {peer}: {e}");
            }
        });
    }
}

async fn read_stream<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    name: &'static str,
    ingest: Arc<Ingest>,
    settings: SyslogSettings,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut framer = Framer::new(settings.max_message_bytes);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            r = stream.read(&mut buf) => r.map_err(|e| e.to_string())?,
            _ = stop.changed() => 0,
        };
        let eof = n == 0;
        if !eof {
            ingest.metrics.bytes.add(name, n as u64);
            framer.push(&buf[..n]);
        }
        let mut frames = Vec::new();
        while let Some(f) = framer.next_frame() {
            frames.push(f);
            if frames.len() == MAX_BATCH {
                send(frames, peer, name, &settings, &ingest).await?;
                frames = Vec::new();
            }
        }
        if eof && let Some(f) = framer.finish() {
            frames.push(f);
        }
        if !frames.is_empty() {
            send(frames, peer, name, &settings, &ingest).await?;
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
        .append_waiting(events, name)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[&[u8]], max: usize) -> Vec<Frame> {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        for chunk in input {
            f.push(chunk);
            while let Some(x) = f.next_frame() {
                out.push(x);
            }
        }
        while let Some(x) = f.finish() {
            out.push(x);
        }
        out
    }

    fn texts(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
            .collect()
    }

    #[test]
    fn lf_framing_across_chunks() {
        let f = frames(&[b"<13>one\r\n<13>tw", b"o\n\n<13>three"], 1024);
        assert_eq!(texts(&f), ["<13>one", "<13>two", "<13>three"]);
    }

    #[test]
    fn octet_counting_with_embedded_newlines() {
        let msg = "<13>multi\nline";
        let framed = format!("{} {msg}{} {msg}", msg.len(), msg.len());
        let bytes = framed.as_bytes();
        let f = frames(&[&bytes[..3], &bytes[3..20], &bytes[20..]], 1024);
        assert_eq!(texts(&f), [msg, msg]);
    }

    #[test]
    fn a_line_starting_with_digits_is_not_octet_counted() {
        let f = frames(&[b"2026-11-22T10:00:00Z host app: x\n12 apples\n"], 1024);
        assert_eq!(texts(&f), ["2026-11-22T10:00:00Z host app: x", "12 apples"]);
    }

    #[test]
    fn oversized_messages_are_cut_and_the_rest_skipped() {
        let long = format!("<13>{}\n<13>next\n", "x".repeat(300));
        let f = frames(&[long.as_bytes()], 100);
        assert_eq!(f.len(), 2);
        assert!(f[0].truncated);
        assert_eq!(f[0].bytes.len(), 100);
        assert_eq!(texts(&f[1..]), ["<13>next"]);
        let msg = format!("<13>{}", "y".repeat(300));
        let framed = format!("{} {msg}5 <13>a", msg.len());
        let f = frames(&[framed.as_bytes()], 100);
        assert_eq!(f.len(), 2);
        assert!(f[0].truncated);
        assert_eq!(texts(&f[1..]), ["<13>a"]);
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let inputs: [&[u8]; 6] = [
            b"9999999999999 <",
            b"0 <",
            b"\0\0\0",
            b"12345678901234567890 <x",
            b"5 <13>abcdefgh",
            b"\xff\xfe\n",
        ];
        for input in inputs {
            let _ = frames(&[input], 64);
        }
    }
}
