//! The asynchronous sender: a bounded in-memory queue, a disk spool, and one task that POSTs
//! NDJSON batches to `{base}/api/v1/ingest`.
//!
//! Order is kept by one rule: while the spool holds undelivered events, new events go to the
//! spool too; the memory queue is used only when the spool is empty. When the queue is full, or
//! a POST fails, the whole queue moves to the end of the spool. So at any time either the queue
//! or the spool holds the oldest undelivered event, and batches leave in send order.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use vigil_event::Event;

use crate::owasp::SecurityEvent;
use crate::spool::{self, Spool, SpoolError};

/// Errors the client reports.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The client was shut down (or every handle dropped).
    #[error("the vigil client is closed")]
    Closed,
    /// `flush_timeout` ran out before everything was delivered.
    #[error("not everything was delivered in time ({pending} events still queued or spooled)")]
    Timeout {
        /// Events not yet delivered.
        pending: u64,
    },
    /// Building the client failed.
    #[error("cannot build the vigil client: {0}")]
    Build(String),
    /// The spool could not be opened.
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// Settings of a [`Client`]; start from [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base: String,
    token: String,
    service: Option<String>,
    queue_capacity: usize,
    batch_max_events: usize,
    batch_max_bytes: u64,
    linger: Duration,
    spool_dir: Option<PathBuf>,
    spool_max_bytes: u64,
    spool_segment_bytes: u64,
    backoff_base: Duration,
    backoff_max: Duration,
    request_timeout: Duration,
}

impl ClientBuilder {
    /// `service.name` set on events that have none (the application id).
    pub fn service(mut self, name: &str) -> Self {
        self.service = Some(name.to_owned());
        self
    }

    /// Events the memory queue holds at most (default 10,000); beyond it they go to the spool.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n.max(1);
        self
    }

    /// Events per POST at most (default 500).
    pub fn batch_max_events(mut self, n: usize) -> Self {
        self.batch_max_events = n.max(1);
        self
    }

    /// Bytes per POST, about (default 1 MiB; a single larger event is still sent alone).
    pub fn batch_max_bytes(mut self, n: u64) -> Self {
        self.batch_max_bytes = n.max(1);
        self
    }

    /// How long the sender waits after the first event for more to batch (default 20 ms).
    pub fn linger(mut self, d: Duration) -> Self {
        self.linger = d;
        self
    }

    /// The spool directory (no default: without one, events beyond the queue are dropped and
    /// counted in [`Stats::dropped`]).
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// The spool's size limit (default 1 GiB); beyond it new events are dropped and counted.
    pub fn spool_max_bytes(mut self, n: u64) -> Self {
        self.spool_max_bytes = n;
        self
    }

    /// Size at which the spool starts a new segment file (default 8 MiB).
    pub fn spool_segment_bytes(mut self, n: u64) -> Self {
        self.spool_segment_bytes = n.max(1);
        self
    }

    /// First retry delay and the cap of the exponential backoff (defaults 200 ms and 30 s).
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max.max(base);
        self
    }

    /// Timeout of one POST (default 30 s).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Opens the spool and starts the sender task on the current tokio runtime.
    pub fn build(self) -> Result<Client, ClientError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| ClientError::Build("not inside a tokio runtime".into()))?;
        // One crypto provider in the whole process: ring. Installing it twice is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("vigil-client/", env!("CARGO_PKG_VERSION")))
            .timeout(self.request_timeout)
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;
        let spool = match &self.spool_dir {
            Some(dir) => Some(Spool::open(
                dir,
                self.spool_segment_bytes,
                self.spool_max_bytes,
            )?),
            None => None,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                inflight: 0,
                spilled_inflight: None,
                queue_pin: None,
                high_water: 0,
                spool,
                closed: false,
                stop: false,
                stopped: false,
                busy: false,
            }),
            wake: Notify::new(),
            idle: Notify::new(),
            counters: Counters::default(),
            id_prefix: id_prefix(),
            url: format!("{}/api/v1/ingest", self.base.trim_end_matches('/')),
            config: self,
        });
        let task = runtime.spawn(sender(shared.clone(), http));
        Ok(Client {
            inner: Arc::new(Inner {
                shared,
                task: Mutex::new(Some(task)),
            }),
        })
    }
}

/// Counters and gauges of a client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events in the memory queue now.
    pub queued: usize,
    /// The most the memory queue ever held (never above `queue_capacity`).
    pub queue_high_water: usize,
    /// The queue's capacity.
    pub queue_capacity: usize,
    /// Events in the spool waiting for delivery.
    pub spooled: u64,
    /// Bytes of the spool's files.
    pub spool_bytes: u64,
    /// Events accepted by `send`.
    pub accepted: u64,
    /// Events Vigil acknowledged as durable.
    pub delivered: u64,
    /// Events written to the spool (counted once per spill).
    pub spilled: u64,
    /// Events dropped because the queue was full and the spool missing, full or failing.
    pub dropped: u64,
    /// Events Vigil refused as malformed or too large, one by one (not retried).
    pub rejected: u64,
    /// Failed POST attempts that will be retried.
    pub retries: u64,
    /// Batches Vigil refused whole (413, other 4xx), sent again in halves.
    pub split: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    delivered: AtomicU64,
    spilled: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    retries: AtomicU64,
    split: AtomicU64,
    next_id: AtomicU64,
}

struct State {
    /// Serialized events (one JSON object each), oldest first.
    queue: VecDeque<String>,
    /// Events at the front of `queue` the sender is posting now.
    inflight: usize,
    /// The queue moved to the spool while its first N events were being posted.
    spilled_inflight: Option<usize>,
    /// The next batch from the queue is exactly its first N events: they went out once and
    /// Vigil may have stored them (they go again with the same `Idempotency-Key`).
    queue_pin: Option<usize>,
    high_water: usize,
    spool: Option<Spool>,
    closed: bool,
    stop: bool,
    /// The sender has stopped.
    stopped: bool,
    /// The sender holds a batch (queue or spool) it has not settled.
    busy: bool,
}

impl State {
    fn spool_pending(&self) -> u64 {
        self.spool.as_ref().map_or(0, Spool::pending)
    }

    fn drained(&self) -> bool {
        self.queue.is_empty() && !self.busy && self.spool_pending() == 0
    }

    /// Moves the whole queue to the end of the spool. False when there is no spool or it fails
    /// (the queue is then kept).
    fn spill(&mut self, counters: &Counters) -> bool {
        let Some(spool) = self.spool.as_mut() else {
            return false;
        };
        if self.queue.is_empty() {
            return true;
        }
        let lines: Vec<&String> = self.queue.iter().collect();
        let spool_was_empty = spool.pending() == 0;
        match spool.append(&lines) {
            Ok(()) => {
                counters
                    .spilled
                    .fetch_add(self.queue.len() as u64, Ordering::Relaxed);
                // A batch that went out (or is out now) keeps its extent in the spool, so it
                // goes again as the same batch, even after a crash.
                let out = if self.inflight > 0 {
                    Some(self.inflight)
                } else {
                    self.queue_pin
                };
                if self.inflight > 0 {
                    self.spilled_inflight = Some(self.inflight);
                    self.inflight = 0;
                }
                self.queue_pin = None;
                if let Some(n) = out
                    && spool_was_empty
                    && let Err(e) = spool.pin(n)
                {
                    tracing::warn!(target: "vigil_client", "cannot record the batch in flight (it may reach Vigil twice): {e}");
                }
                self.queue.clear();
                true
            }
            Err(e) => {
                tracing::warn!(target: "vigil_client", "cannot spool events: {e}");
                false
            }
        }
    }
}

struct Shared {
    state: Mutex<State>,
    wake: Notify,
    idle: Notify,
    counters: Counters,
    id_prefix: String,
    url: String,
    config: ClientBuilder,
}

impl Shared {
    /// The state; a panic elsewhere while holding the lock must not take the application down.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct Inner {
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: the sender spools what is left in memory and stops.
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
    }
}

/// A handle on the sender; cheap to clone, share it across the application.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.inner.shared.url)
            .finish_non_exhaustive()
    }
}

/// A per-process prefix of event ids: process id and start time, so ids from different runs and
/// processes differ.
fn id_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("{:x}-{:x}", std::process::id(), nanos)
}

impl Client {
    /// Settings for a client posting to Vigil at `base` (`http://127.0.0.1:8080`) with the
    /// ingest token `token`.
    pub fn builder(base: &str, token: &str) -> ClientBuilder {
        ClientBuilder {
            base: base.to_owned(),
            token: token.to_owned(),
            service: None,
            queue_capacity: 10_000,
            batch_max_events: 500,
            batch_max_bytes: 1 << 20,
            linger: Duration::from_millis(20),
            spool_dir: None,
            spool_max_bytes: 1 << 30,
            spool_segment_bytes: 8 << 20,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Queues `event` for delivery. Never blocks on the network and never panics: when the
    /// memory queue is full the queue moves to the spool; when that is impossible the event is
    /// dropped and counted ([`Stats::dropped`]). Sets `event.id` (when absent) to an id unique to
    /// this client, so a re-delivered event can be recognised, and `service.name` (when absent).
    /// Errs only when the client is closed.
    pub fn send(&self, event: impl Into<Event>) -> Result<(), ClientError> {
        let shared = &self.inner.shared;
        let mut event = event.into();
        if !event.contains("event.id") {
            let n = shared.counters.next_id.fetch_add(1, Ordering::Relaxed);
            event.insert("event.id", format!("{}-{n}", shared.id_prefix));
        }
        if let Some(service) = &shared.config.service
            && !event.contains("service.name")
        {
            event.insert("service.name", service.as_str());
        }
        let line = event.to_json().to_string();
        let mut st = shared.lock();
        if st.closed {
            return Err(ClientError::Closed);
        }
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        if st.spool_pending() > 0 {
            // Keep order: older events are in the spool.
            if let Some(spool) = st.spool.as_mut()
                && let Err(e) = spool.append(&[&line])
            {
                shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: "vigil_client", "event dropped: {e}");
            } else {
                shared.counters.spilled.fetch_add(1, Ordering::Relaxed);
            }
        } else if st.queue.len() < shared.config.queue_capacity {
            st.queue.push_back(line);
        } else if st.spill(&shared.counters) {
            match st.spool.as_mut().map(|s| s.append(&[&line])) {
                Some(Ok(())) => {
                    shared.counters.spilled.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        } else {
            shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        st.high_water = st.high_water.max(st.queue.len());
        drop(st);
        shared.wake.notify_one();
        Ok(())
    }

    /// [`Client::send`] for a [`SecurityEvent`] builder.
    pub fn emit(&self, event: SecurityEvent) -> Result<(), ClientError> {
        self.send(event.into_event())
    }

    /// Waits until every event sent so far (and any sent meanwhile) is delivered. With Vigil
    /// unreachable this waits until it is back; see [`Client::flush_timeout`]. Errs with
    /// [`ClientError::Closed`] when the sender has stopped with events left (they are in the
    /// spool, or lost without one).
    pub async fn flush(&self) -> Result<(), ClientError> {
        let shared = &self.inner.shared;
        loop {
            let idle = shared.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            {
                let st = shared.lock();
                if st.drained() {
                    return Ok(());
                }
                if st.stopped {
                    return Err(ClientError::Closed);
                }
            }
            shared.wake.notify_one();
            idle.await;
        }
    }

    /// [`Client::flush`] with a deadline.
    pub async fn flush_timeout(&self, limit: Duration) -> Result<(), ClientError> {
        match tokio::time::timeout(limit, self.flush()).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout {
                pending: self.pending(),
            }),
        }
    }

    /// Events not yet delivered (queued or spooled).
    pub fn pending(&self) -> u64 {
        let st = self.inner.shared.lock();
        st.queue.len() as u64 + st.spool_pending()
    }

    /// Closes the client: new `send`s fail, what is queued is delivered for up to `limit`, what
    /// is left then goes to the spool (delivered by the next client on the same spool), and the
    /// sender stops (a POST still out after one more second is abandoned: its events go to the
    /// spool, recorded as the batch that went out, so the next client sends them again under
    /// the same `Idempotency-Key`; without a spool they are lost if Vigil did not store them).
    /// Errs with [`ClientError::Timeout`] when something is left undelivered.
    pub async fn shutdown(&self, limit: Duration) -> Result<(), ClientError> {
        let shared = &self.inner.shared;
        shared.lock().closed = true;
        let flushed = self.flush_timeout(limit).await;
        shared.lock().stop = true;
        shared.wake.notify_one();
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut task) = task
            && tokio::time::timeout(Duration::from_secs(1), &mut task)
                .await
                .is_err()
        {
            task.abort();
            let _ = task.await;
            let mut st = shared.lock();
            st.spill(&shared.counters);
            if let Some(s) = st.spool.as_mut() {
                let _ = s.sync();
            }
            st.stopped = true;
        }
        flushed
    }

    /// Counters and gauges.
    pub fn stats(&self) -> Stats {
        let shared = &self.inner.shared;
        let c = &shared.counters;
        let st = shared.lock();
        Stats {
            queued: st.queue.len(),
            queue_high_water: st.high_water,
            queue_capacity: shared.config.queue_capacity,
            spooled: st.spool_pending(),
            spool_bytes: st.spool.as_ref().map_or(0, Spool::disk_bytes),
            accepted: c.accepted.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            spilled: c.spilled.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            split: c.split.load(Ordering::Relaxed),
        }
    }
}

/// What a POST came to.
enum Outcome {
    Delivered,
    /// Vigil refused the batch as such (413, 400, …): retry smaller; a single event is dropped.
    Refused(u16),
    /// Try again later (network, 5xx, 429, 401/403), after at least the given delay.
    /// `maybe_stored`: the request went out and no answer came back (a timeout, a connection
    /// closed mid-request), so Vigil may have stored the batch.
    Retry {
        after: Option<Duration>,
        why: String,
        maybe_stored: bool,
    },
}

/// The `Idempotency-Key` of a batch: a hash of its bytes. Every event carries an `event.id`
/// unique to its client, so two different batches never share a key, and a batch sent again
/// (after a lost answer or a crash: same lines from the same place) always does.
fn batch_key(body: &[u8]) -> String {
    use sha2::Digest;
    use std::fmt::Write;
    let digest = sha2::Sha256::digest(body);
    let mut key = String::with_capacity(13 + 32);
    key.push_str("vigil-client-");
    for b in &digest[..16] {
        let _ = write!(key, "{b:02x}");
    }
    key
}

async fn post(shared: &Shared, http: &reqwest::Client, lines: &[String]) -> Outcome {
    let mut body = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in lines {
        body.push_str(l);
        body.push('\n');
    }
    let response = http
        .post(&shared.url)
        .bearer_auth(&shared.config.token)
        .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
        .header("Idempotency-Key", batch_key(body.as_bytes()))
        .body(body)
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Retry {
                after: None,
                why: e.to_string(),
                // A refused connection never carried the batch.
                maybe_stored: !e.is_connect(),
            };
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    match status {
        200..=299 => Outcome::Delivered,
        401 | 403 | 408 | 429 | 500..=599 => {
            let text = response.text().await.unwrap_or_default();
            // Vigil answers an error only for a batch it did not store.
            Outcome::Retry {
                after: retry_after,
                why: format!("HTTP {status}: {}", text.trim()),
                maybe_stored: false,
            }
        }
        _ => Outcome::Refused(status),
    }
}

/// Where the batch being posted came from.
enum Source {
    Queue,
    Spool(Option<spool::Position>),
}

/// What the sender does next.
enum Work {
    Stop,
    Wait,
    Post(Vec<String>, Source),
    /// The spool cannot be read: back off.
    SpoolError,
}

/// Takes the next batch (the lock is held only briefly; the spool is read outside it).
fn take_work(shared: &Shared, limit: usize) -> Work {
    let cfg = &shared.config;
    let plan = {
        let mut st = shared.lock();
        if st.stop {
            st.spill(&shared.counters);
            if let Some(s) = st.spool.as_mut() {
                let _ = s.sync();
            }
            st.stopped = true;
            return Work::Stop;
        }
        if !st.queue.is_empty() {
            let mut n = 0;
            let mut bytes = 0u64;
            for l in st.queue.iter().take(limit) {
                if n > 0 && bytes + l.len() as u64 > cfg.batch_max_bytes {
                    break;
                }
                bytes += l.len() as u64 + 1;
                n += 1;
            }
            if let Some(pinned) = st.queue_pin {
                n = pinned.min(st.queue.len());
            }
            st.inflight = n;
            st.busy = true;
            let lines: Vec<String> = st.queue.iter().take(n).cloned().collect();
            return Work::Post(lines, Source::Queue);
        }
        match st
            .spool
            .as_ref()
            .filter(|s| s.pending() > 0)
            .map(|s| (s.plan(), s.pinned()))
        {
            Some(plan) => {
                st.busy = true;
                plan
            }
            None => {
                st.busy = false;
                return Work::Wait;
            }
        }
    };
    let (plan, pinned) = plan;
    let read = match pinned {
        // The same lines as last time, whatever the limits are now.
        Some(n) => spool::read_batch(&plan, n, u64::MAX),
        None => spool::read_batch(&plan, limit, cfg.batch_max_bytes),
    };
    match read {
        Ok(b) if !b.lines.is_empty() => {
            if pinned != Some(b.lines.len())
                && let Some(s) = shared.lock().spool.as_mut()
                && let Err(e) = s.pin(b.lines.len())
            {
                tracing::warn!(target: "vigil_client", "cannot record the batch in flight (it may reach Vigil twice): {e}");
            }
            Work::Post(b.lines, Source::Spool(b.end))
        }
        Ok(_) => {
            // The count and the files disagree (files removed by hand?): start over.
            tracing::warn!(target: "vigil_client", "spool count and files disagree; resetting the spool");
            let mut st = shared.lock();
            if let Some(s) = st.spool.as_mut()
                && let Err(e) = s.reset()
            {
                tracing::warn!(target: "vigil_client", "cannot reset the spool: {e}");
            }
            st.busy = false;
            Work::Wait
        }
        Err(e) => {
            tracing::warn!(target: "vigil_client", "cannot read the spool: {e}");
            shared.lock().busy = false;
            Work::SpoolError
        }
    }
}

/// Records a POST's outcome. Returns the delay before the next try when it is to be retried.
fn settle(
    shared: &Shared,
    outcome: Outcome,
    source: &Source,
    n: usize,
    attempt: &mut u32,
    limit: &mut usize,
) -> Option<Option<Duration>> {
    let cfg = &shared.config;
    let mut st = shared.lock();
    let spilled = st.spilled_inflight.take();
    let retry = match outcome {
        Outcome::Delivered => {
            *attempt = 0;
            *limit = (*limit * 2).min(cfg.batch_max_events);
            shared
                .counters
                .delivered
                .fetch_add(n as u64, Ordering::Relaxed);
            settle_delivered(&mut st, source, spilled, n);
            None
        }
        Outcome::Refused(status) if n > 1 => {
            *limit = (n / 2).max(1);
            shared.counters.split.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(target: "vigil_client", "vigil refused a batch of {n} (HTTP {status}); retrying in smaller batches");
            release(&mut st, source);
            unpin(&mut st);
            None
        }
        Outcome::Refused(status) => {
            tracing::warn!(target: "vigil_client", "vigil refused an event (HTTP {status}); dropping it");
            shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
            unpin(&mut st);
            settle_delivered(&mut st, source, spilled, n);
            None
        }
        Outcome::Retry {
            after,
            why,
            maybe_stored,
        } => {
            shared.counters.retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(target: "vigil_client", "delivery failed, will retry: {why}");
            // When only the answer may have been lost, the same lines go again as one batch
            // (pinned in the queue, or in the spool once spilled), under the same key. A pin
            // from an earlier attempt stays even when this one surely stored nothing (a refused
            // connection, a 503): that earlier attempt may have been stored.
            release(&mut st, source);
            if maybe_stored && matches!(source, Source::Queue) && spilled.is_none() {
                st.queue_pin = Some(n);
            }
            // Vigil is unreachable or behind: keep what is in memory on disk meanwhile.
            st.spill(&shared.counters);
            Some(after)
        }
    };
    st.busy = false;
    retry
}

async fn sender(shared: Arc<Shared>, http: reqwest::Client) {
    let mut attempt: u32 = 0;
    let mut limit = shared.config.batch_max_events;
    loop {
        match take_work(&shared, limit) {
            Work::Stop => {
                shared.idle.notify_waiters();
                return;
            }
            Work::Wait => {
                shared.idle.notify_waiters();
                shared.wake.notified().await;
                if !shared.config.linger.is_zero() {
                    tokio::time::sleep(shared.config.linger).await;
                }
            }
            Work::SpoolError => {
                backoff(&shared, &mut attempt, None).await;
            }
            Work::Post(lines, source) => {
                let outcome = post(&shared, &http, &lines).await;
                let retry = settle(
                    &shared,
                    outcome,
                    &source,
                    lines.len(),
                    &mut attempt,
                    &mut limit,
                );
                if let Some(after) = retry {
                    backoff(&shared, &mut attempt, after).await;
                }
            }
        }
    }
}

/// The batch is settled (delivered, or refused for good): remove it from where it came from.
fn settle_delivered(st: &mut State, source: &Source, spilled: Option<usize>, n: usize) {
    match (source, spilled) {
        (Source::Queue, None) => {
            st.queue.drain(..n.min(st.queue.len()));
            st.inflight = 0;
            st.queue_pin = None;
        }
        (Source::Queue, Some(k)) => {
            // The queue moved to the spool while the batch was out: skip its first k lines there.
            if let Some(s) = st.spool.as_mut() {
                let plan = s.plan();
                if let Ok(Some(end)) = spool::skip(&plan, k) {
                    let _ = s.commit(end, k as u64);
                }
            }
        }
        (Source::Spool(Some(end)), _) => {
            if let Some(s) = st.spool.as_mut()
                && let Err(e) = s.commit(*end, n as u64)
            {
                tracing::warn!(target: "vigil_client", "cannot record delivery in the spool (events may be sent again): {e}");
            }
        }
        (Source::Spool(None), _) => {}
    }
}

/// The batch was refused as a whole (not stored): it may go again in other batches.
fn unpin(st: &mut State) {
    st.queue_pin = None;
    if let Some(s) = st.spool.as_mut() {
        s.unpin();
    }
}

/// The batch was not settled: it stays where it is for another try.
fn release(st: &mut State, source: &Source) {
    if let Source::Queue = source {
        st.inflight = 0;
    }
}

/// Sleeps the next backoff delay (exponential with jitter, at least `after`), waking early when
/// the client stops. Returns false when it stopped.
async fn backoff(shared: &Shared, attempt: &mut u32, after: Option<Duration>) -> bool {
    let cfg = &shared.config;
    let exp = cfg
        .backoff_base
        .saturating_mul(1u32 << (*attempt).min(16))
        .min(cfg.backoff_max);
    *attempt = attempt.saturating_add(1);
    // Jitter: 75–100 % of the delay, from the clock's low bits.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let jittered = exp.mul_f64(0.75 + f64::from(nanos % 1000) / 4000.0);
    let delay = after.map_or(jittered, |a| a.max(jittered).min(cfg.backoff_max.max(a)));
    let deadline = tokio::time::Instant::now() + delay;
    loop {
        if shared.lock().stop {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return true,
            _ = shared.wake.notified() => {}
        }
    }
}
