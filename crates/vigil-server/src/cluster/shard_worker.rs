//! One owned shard: its data directory (`DATA/shards/<shard>/`, the layout of a standalone
//! data directory: its own ledger, origin `vigil/<cluster>/<shard>/<node>` and key, and its
//! own index) and the task that copies the shard's subject of the stream into its ledger.
//!
//! The task resumes after the last `vigil.stream.seq` the shard's ledger holds (0: a new
//! owner without a local copy rebuilds from the first message the stream holds for the
//! shard), decodes each message, stamps every event with the message's stream sequence and the
//! shard's name (`vigil.shard`: with `vigil.seq` it names one event of the cluster), and
//! appends the message as ONE ledger append (stored whole or not at all: crash story step 6 of
//! `vigil_ledger::writer`). So after any crash the shard holds a prefix of the subject, and the
//! next owner — this node after a restart, or another — resumes right after it: no gap, no
//! duplicate. Before each append it checks the lease's fence ([`Gate`]) and waits while it is
//! closed; a deposed owner's worker is stopped by the [`super::shards::ShardSet`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use vigil_cluster::{Cluster, Shard, codec};
use vigil_config::DataDir;
use vigil_event::field;
use vigil_ledger::note::NoteSigner;
use vigil_ledger::{Ledger, LedgerConfig, LedgerError};

use crate::search::IndexService;

/// Until when the lease of a shard lets its worker append (set by the lease's renewals).
#[derive(Debug, Default)]
pub struct Gate {
    until: Mutex<Option<Instant>>,
}

impl Gate {
    /// Opens the gate until `until` (`None`: closed).
    pub fn set(&self, until: Option<Instant>) {
        *self.until.lock().unwrap_or_else(|p| p.into_inner()) = until;
    }

    /// Whether an append may start now.
    pub fn open(&self) -> bool {
        self.until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|u| Instant::now() < u)
    }
}

/// Counters over every shard of this node, for `/metrics` and the health page.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    /// Stream messages that did not decode (or whose events the ledger refused): skipped,
    /// logged, never stored.
    pub undecodable: AtomicU64,
    /// Ledger appends that failed and were retried.
    pub append_errors: AtomicU64,
    /// Times a consumer had to be created again (a lost server, a gap).
    pub consumer_restarts: AtomicU64,
    /// Times a copy found stream messages discarded before it had them ([`super::gap`]).
    pub stream_gaps: AtomicU64,
    /// Messages stored.
    pub messages: AtomicU64,
    /// Events stored.
    pub events: AtomicU64,
    /// Leases acquired.
    pub acquired: AtomicU64,
    /// Leases released (balancing, clean stop).
    pub released: AtomicU64,
    /// Leases lost to another node or to expiry.
    pub deposed: AtomicU64,
}

/// Where one shard's worker is.
#[derive(Debug, Default)]
pub struct Progress {
    /// The last stream sequence handled (stored, or skipped as undecodable).
    pub applied: AtomicU64,
    /// Events in the shard's ledger.
    pub events: AtomicU64,
    /// Whether the worker waits at a closed fence.
    pub fenced: AtomicBool,
    /// The last stream sequence of the shard's subject when the worker started: until
    /// `applied` reaches it the copy is being rebuilt or is catching up after a move, and
    /// queries are refused (the coordinator names the shard missing) rather than answered
    /// short.
    pub catch_up_to: AtomicU64,
}

impl Progress {
    /// Why queries must not be answered from this copy yet, if they must not.
    pub fn catching_up(&self) -> Option<String> {
        let (applied, target) = (
            self.applied.load(Ordering::SeqCst),
            self.catch_up_to.load(Ordering::SeqCst),
        );
        (applied < target).then(|| {
            format!(
                "catching up with the stream (applied {applied} of {target}) after it moved here"
            )
        })
    }
}

/// A running shard worker.
pub(crate) struct Worker {
    pub(crate) shard: Shard,
    pub(crate) dir: PathBuf,
    pub(crate) ledger: Ledger,
    pub(crate) index: Option<Arc<IndexService>>,
    pub(crate) progress: Arc<Progress>,
    pub(crate) gate: Arc<Gate>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What a worker is given.
pub(crate) struct WorkerSpec {
    pub(crate) cluster: Cluster,
    pub(crate) data: DataDir,
    pub(crate) shard: Shard,
    pub(crate) index_threads: usize,
    pub(crate) gate: Arc<Gate>,
    pub(crate) metrics: Arc<ShardMetrics>,
}

/// The origin of a shard's ledger: `vigil/<cluster>/<shard>/<node>`.
pub fn shard_origin(cluster: &str, shard: Shard, node: &str) -> String {
    format!("vigil/{cluster}/{shard}/{node}")
}

impl Worker {
    /// Opens the shard's directory and starts copying the stream into it.
    pub(crate) async fn start(spec: WorkerSpec) -> Result<Worker, String> {
        let dir = spec.data.shard(&spec.shard.to_string());
        let origin = shard_origin(
            spec.cluster.settings().names.cluster(),
            spec.shard,
            spec.cluster.node(),
        );
        let threads = spec.index_threads;
        let opened = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || open(&dir, &origin, threads))
                .await
                .map_err(|e| e.to_string())??
        };
        let (ledger, index, position) = opened;
        let progress = Arc::new(Progress::default());
        progress.applied.store(position, Ordering::SeqCst);
        let subject = spec.cluster.settings().names.shard_subject(spec.shard);
        match vigil_cluster::follow::last_seq(&spec.cluster, &subject).await {
            Ok(last) => progress.catch_up_to.store(last, Ordering::SeqCst),
            Err(e) => tracing::warn!(
                shard = %spec.shard,
                "cannot read where the stream ends ({e}); queries are answered while catching up"
            ),
        }
        progress.events.store(ledger.end_seq(), Ordering::SeqCst);
        let (stop, stop_rx) = watch::channel(false);
        let copier = Copier {
            cluster: spec.cluster,
            shard: spec.shard,
            ledger: ledger.clone(),
            progress: Arc::clone(&progress),
            gate: Arc::clone(&spec.gate),
            metrics: spec.metrics,
        };
        let task = tokio::spawn(copier.run(position, stop_rx));
        tracing::info!(
            shard = %spec.shard,
            resume_after = position,
            events = ledger.end_seq(),
            "shard worker started"
        );
        Ok(Worker {
            shard: spec.shard,
            dir: dir.root().to_owned(),
            ledger,
            index: index.map(Arc::new),
            progress,
            gate: spec.gate,
            stop,
            task,
        })
    }

    /// Stops copying (an append in progress completes), then closes the ledger (a final
    /// signed checkpoint) and the index (it takes in the last events and commits).
    pub(crate) async fn stop(self) {
        self.gate.set(None);
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let ledger = self.ledger;
        let closed = tokio::task::spawn_blocking(move || ledger.close()).await;
        if let Ok(Err(e)) = closed {
            tracing::error!(shard = %self.shard, "closing the shard's ledger: {e}");
        }
        if let Some(index) = self.index {
            let _ = tokio::task::spawn_blocking(move || index.stop()).await;
        }
    }

    /// Stops at once, as a killed process would: the copy task is aborted wherever it is.
    /// (The ledger and index handles are dropped, which lets this process open the shard
    /// again.)
    pub(crate) async fn abort(self) {
        self.gate.set(None);
        self.task.abort();
        let _ = self.task.await;
        if let Some(index) = self.index {
            let _ = tokio::task::spawn_blocking(move || index.stop()).await;
        }
        drop(self.ledger);
    }
}

/// Opens (creating) a shard's data directory: its ledger with the shard's origin, its index,
/// and the last stream sequence it holds.
fn open(
    dir: &DataDir,
    origin: &str,
    index_threads: usize,
) -> Result<(Ledger, Option<IndexService>, u64), String> {
    let paths = dir.ledger_paths();
    if !paths.root().exists() {
        create_key(dir, origin)?;
    }
    let (ledger, recovery) =
        Ledger::open(dir.root(), LedgerConfig::default()).map_err(|e| e.to_string())?;
    if !recovery.cut.is_empty() {
        tracing::warn!(
            origin,
            cut = recovery.cut.len(),
            "shard ledger: a torn tail was cut at open (a crash during an append)"
        );
    }
    let position = last_stream_seq(&ledger)?;
    let index = if index_threads > 0 {
        Some(IndexService::start(
            dir.root(),
            ledger.clone(),
            index_threads,
        )?)
    } else {
        None
    };
    Ok((ledger, index, position))
}

/// A new shard ledger's signing key, named with the shard's origin (the ledger would otherwise
/// name it after the host).
fn create_key(dir: &DataDir, origin: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let paths = dir.ledger_paths();
    std::fs::create_dir_all(paths.root())
        .map_err(|e| format!("creating {}: {e}", paths.root().display()))?;
    let signer = NoteSigner::generate(origin).map_err(|e| e.to_string())?;
    let key = paths.signing_key();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key)
        .map_err(|e| format!("creating {}: {e}", key.display()))?;
    file.write_all(format!("{}\n", signer.to_skey()).as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("writing {}: {e}", key.display()))?;
    let verifier = paths.verifier_key();
    std::fs::write(&verifier, format!("{}\n", signer.verifier().to_vkey()))
        .map_err(|e| format!("writing {}: {e}", verifier.display()))?;
    Ok(())
}

/// The last `vigil.stream.seq` in the ledger (0 when none): scanning back from the end over
/// any event without one (a recovery record).
pub fn last_stream_seq(ledger: &Ledger) -> Result<u64, String> {
    let mut reader = ledger.reader().map_err(|e| e.to_string())?;
    let (first, end) = (reader.first_seq(), reader.end_seq());
    for seq in (first..end).rev() {
        let event = reader.read_event(seq).map_err(|e| e.to_string())?;
        if let Some(s) = event.get(field::VIGIL_STREAM_SEQ).and_then(|v| v.as_i64()) {
            return Ok(u64::try_from(s).unwrap_or(0));
        }
    }
    Ok(0)
}

/// The copy task of one shard.
struct Copier {
    cluster: Cluster,
    shard: Shard,
    ledger: Ledger,
    progress: Arc<Progress>,
    gate: Arc<Gate>,
    metrics: Arc<ShardMetrics>,
}

/// How long to wait before consuming again after a consumer failed.
const RETRY: Duration = Duration::from_millis(500);

impl Copier {
    async fn run(self, mut position: u64, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            // Messages the stream discarded before this copy had them: said loudly, recorded
            // in the shard, and the copy goes on after them.
            if let Some(gap) = super::gap::find(&self.cluster, self.shard, position).await {
                self.metrics.stream_gaps.fetch_add(1, Ordering::Relaxed);
                let record = super::gap::report(self.shard, &gap);
                if !self
                    .append(*gap.end(), Arc::new(vec![record]), &mut stop)
                    .await
                {
                    return;
                }
                position = *gap.end();
            }
            let mut messages = match self.cluster.shard_messages(self.shard, position).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(shard = %self.shard, "consuming: {e}; retrying");
                    if pause(&mut stop, RETRY).await {
                        return;
                    }
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    _ = stop.changed() => return,
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(message)) => {
                        // Redelivered after a consumer restart: stored already.
                        if message.seq <= position {
                            continue;
                        }
                        if !self.store(message.seq, &message.payload, &mut stop).await {
                            return;
                        }
                        position = message.seq;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(shard = %self.shard, "consuming: {e}; starting again");
                        break;
                    }
                    None => break,
                }
            }
            self.metrics
                .consumer_restarts
                .fetch_add(1, Ordering::Relaxed);
            if pause(&mut stop, RETRY).await {
                return;
            }
        }
    }

    /// Stores one message as one append (or skips it if it is not a batch of events);
    /// `false` when stopped first.
    async fn store(&self, seq: u64, payload: &[u8], stop: &mut watch::Receiver<bool>) -> bool {
        let mut events = match codec::decode(payload) {
            Ok(events) => events,
            Err(e) => {
                self.skip(seq, &e.to_string());
                return true;
            }
        };
        if events.is_empty() {
            self.progress.applied.store(seq, Ordering::SeqCst);
            return true;
        }
        let stamp = i64::try_from(seq).unwrap_or(i64::MAX);
        let shard = self.shard.to_string();
        for event in &mut events {
            event.insert(field::VIGIL_STREAM_SEQ, stamp);
            event.insert(field::VIGIL_SHARD, shard.as_str());
        }
        self.append(seq, Arc::new(events), stop).await
    }

    /// Appends `events` as one append once the fence is open, retrying what the disk refuses;
    /// `false` when stopped first.
    async fn append(
        &self,
        seq: u64,
        events: Arc<Vec<vigil_event::Event>>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        loop {
            // The fence: never append unless the lease is valid now.
            while !self.gate.open() {
                self.progress.fenced.store(true, Ordering::SeqCst);
                if pause(stop, Duration::from_millis(50)).await {
                    return false;
                }
            }
            self.progress.fenced.store(false, Ordering::SeqCst);
            let (tx, rx) = oneshot::channel();
            let (ledger, batch) = (self.ledger.clone(), Arc::clone(&events));
            // Encoding happens in append_with: off the async threads.
            let queued = tokio::task::spawn_blocking(move || {
                ledger.append_with(&batch, move |r| {
                    let _ = tx.send(r);
                })
            })
            .await;
            let result = match queued {
                Ok(()) => rx.await.unwrap_or(Err(LedgerError::Closed)),
                Err(_) => Err(LedgerError::Closed),
            };
            match result {
                Ok(range) => {
                    self.progress.applied.store(seq, Ordering::SeqCst);
                    self.progress.events.store(range.end, Ordering::SeqCst);
                    self.metrics.messages.fetch_add(1, Ordering::Relaxed);
                    self.metrics
                        .events
                        .fetch_add(events.len() as u64, Ordering::Relaxed);
                    return true;
                }
                // Refused for what the message holds (never for the disk's state): retrying
                // cannot help, and the shard must not stall behind it.
                Err(e @ (LedgerError::EventTooLarge { .. } | LedgerError::Invalid(_))) => {
                    self.skip(seq, &format!("the ledger refuses its events: {e}"));
                    return true;
                }
                Err(e) => {
                    self.metrics.append_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(shard = %self.shard, seq, "storing: {e}; retrying");
                    if pause(stop, Duration::from_secs(1)).await {
                        return false;
                    }
                }
            }
        }
    }

    fn skip(&self, seq: u64, why: &str) {
        self.metrics.undecodable.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            shard = %self.shard,
            seq,
            "stream message skipped, not stored: {why}"
        );
        self.progress.applied.store(seq, Ordering::SeqCst);
    }
}

/// Sleeps `d`; `true` if told to stop meanwhile (or the stopper is gone).
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
        _ = tokio::time::sleep(d) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_behind_where_the_stream_was_at_its_start_refuses_queries_until_caught_up() {
        let progress = Progress::default();
        assert_eq!(
            progress.catching_up(),
            None,
            "an empty subject has nothing to catch up"
        );
        progress.catch_up_to.store(500, Ordering::SeqCst);
        progress.applied.store(120, Ordering::SeqCst);
        let why = progress.catching_up().expect("behind: refused");
        assert!(why.contains("applied 120 of 500"), "{why}");
        progress.applied.store(500, Ordering::SeqCst);
        assert_eq!(progress.catching_up(), None);
        // Later messages do not matter: a live copy trails the stream by moments.
        progress.applied.store(900, Ordering::SeqCst);
        assert_eq!(progress.catching_up(), None);
    }
    use vigil_event::{Event, Timestamp};

    fn event(seq: Option<i64>) -> Event {
        let mut e = Event::new(Timestamp::from_nanos(1_000));
        e.insert("message", "x");
        if let Some(seq) = seq {
            e.insert(field::VIGIL_STREAM_SEQ, seq);
        }
        e
    }

    #[test]
    fn a_shard_ledger_is_named_for_its_shard_and_resumes_after_its_last_stream_sequence() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path()).shard("p1");
        let origin = shard_origin("blue", Shard::Data(1), "n1");
        assert_eq!(origin, "vigil/blue/p1/n1");
        let (ledger, index, position) = open(&dir, &origin, 0).unwrap();
        assert!(index.is_none());
        assert_eq!(ledger.origin(), origin);
        assert_eq!(
            position, 0,
            "a new shard starts from the stream's beginning"
        );
        ledger.append(&[event(Some(5)), event(Some(5))]).unwrap();
        ledger.append(&[event(Some(7))]).unwrap();
        // An event without a stream sequence (the ledger's own record of a recovery) is
        // skipped over when looking for where to resume.
        ledger.append(&[event(None)]).unwrap();
        assert_eq!(last_stream_seq(&ledger).unwrap(), 7);
        ledger.close().unwrap();
        let (ledger, _, position) = open(&dir, &origin, 0).unwrap();
        assert_eq!(position, 7);
        assert_eq!(ledger.origin(), origin, "the key is kept");
        ledger.close().unwrap();
    }

    #[test]
    fn the_gate_is_closed_until_set_and_after_its_deadline() {
        let gate = Gate::default();
        assert!(!gate.open());
        gate.set(Some(Instant::now() + Duration::from_secs(60)));
        assert!(gate.open());
        gate.set(Some(Instant::now()));
        assert!(!gate.open());
        gate.set(None);
        assert!(!gate.open());
    }
}
