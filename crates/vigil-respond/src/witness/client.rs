//! The submitting side: after each signed checkpoint, ask every witness to cosign it with a
//! consistency proof from the size it last cosigned, store the cosignatures beside the
//! checkpoints (`ledger/cosignatures.log`, see `vigil_ledger::cosigned`), and treat a witness
//! that has seen MORE of this log than the log now holds, or that refuses the proof, as what it
//! is: a rollback (or a fork) of this ledger.
//!
//! [`submit`] is one exchange with one witness over any transport (HTTP here, NATS request/reply
//! in cluster mode); [`run`] is the standalone server's task over HTTP.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigil_event::{Category, Event, EventType, Outcome};
use vigil_ingest::{Ingest, Origin};
use vigil_ledger::note::Checkpoint;
use vigil_ledger::{Ledger, LedgerReader, cosigned};

use super::protocol::{SIZE_CONTENT_TYPE, format_request, parse_cosignatures, parse_size};

/// Longest wait for one witness's answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest pause between tries of a witness that does not answer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A witness's answer to `add-checkpoint`, transport aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200: the cosignature lines.
    Cosigned(Vec<String>),
    /// 409: the size the witness last cosigned.
    Conflict(u64),
    /// Any other status, with the body (for the log).
    Refused {
        /// HTTP status (or its equivalent in the NATS reply).
        status: u16,
        /// What the witness said.
        body: String,
    },
}

impl Answer {
    /// Reads an answer from a status, a content type and a body.
    pub fn from_parts(status: u16, content_type: Option<&str>, body: &str) -> Answer {
        match status {
            200 => match parse_cosignatures(body) {
                Some(lines) => Answer::Cosigned(lines),
                None => Answer::Refused {
                    status,
                    body: "a 200 answer that is not cosignature lines".into(),
                },
            },
            409 if content_type.is_some_and(|c| c.starts_with(SIZE_CONTENT_TYPE)) => {
                match parse_size(body) {
                    Some(n) => Answer::Conflict(n),
                    None => Answer::Refused {
                        status,
                        body: "a 409 answer without a size".into(),
                    },
                }
            }
            _ => Answer::Refused {
                status,
                body: body.chars().take(300).collect(),
            },
        }
    }
}

/// What one submission came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Cosigned: the whole cosigned note (checkpoint, the log's signature, the cosignatures).
    Cosigned(String),
    /// The witness has seen a larger or different tree of this log: the ledger was rolled back
    /// or forked after the witness saw it.
    Rollback(String),
    /// Not now (unreachable, refused for a reason a later try may not have): try again later.
    Retry(String),
}

/// What the submitter remembers of one witness.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The size this witness last cosigned, as far as we know (`None`: not asked yet).
    pub last: Option<u64>,
    /// Consecutive failed tries, for the backoff.
    pub failures: u32,
    /// When to try again after failures.
    pub next_try: Option<Instant>,
    /// The rollback this witness reported, while it stands.
    pub rollback: Option<String>,
}

impl Target {
    /// Whether a try is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.next_try.is_none_or(|t| now >= t)
    }

    fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        let wait = Duration::from_secs(1 << self.failures.min(6)).min(MAX_BACKOFF);
        self.next_try = Some(now + wait);
    }
}

/// One exchange with one witness: sends `note` (the checkpoint `checkpoint`) with a proof from
/// the size the witness last cosigned, follows one 409 to the size it states, and reports.
/// `send` posts an `add-checkpoint` body and returns the answer.
pub async fn submit<F, Fut>(
    target: &mut Target,
    reader: &mut LedgerReader,
    checkpoint: &Checkpoint,
    note: &str,
    mut send: F,
) -> Submitted
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<Answer, String>>,
{
    let mut old = target.last.unwrap_or(0);
    // At most: the remembered size, then the size a 409 states.
    for _ in 0..2 {
        if old > checkpoint.size {
            return Submitted::Rollback(format!(
                "the witness has cosigned size {old} of this log, which now holds only {}: the ledger was rolled back",
                checkpoint.size
            ));
        }
        let proof = if old == 0 || old == checkpoint.size {
            Vec::new()
        } else {
            if let Err(e) = reader.refresh() {
                return Submitted::Retry(format!("reading the ledger: {e}"));
            }
            match reader.consistency_proof(old, checkpoint.size) {
                Ok(p) => p,
                Err(e) => {
                    return Submitted::Rollback(format!(
                        "no consistency proof from the size {old} the witness cosigned to {} can be built ({e})",
                        checkpoint.size
                    ));
                }
            }
        };
        let answer = match send(format_request(old, &proof, note)).await {
            Ok(a) => a,
            Err(e) => return Submitted::Retry(e),
        };
        match answer {
            Answer::Cosigned(lines) => {
                target.last = Some(checkpoint.size);
                let mut cosigned = note.to_owned();
                for l in lines {
                    cosigned.push_str(&l);
                }
                return Submitted::Cosigned(cosigned);
            }
            Answer::Conflict(n) if n == old => {
                // Same size, another root: the witness saw a different tree at that size.
                return Submitted::Rollback(format!(
                    "the witness cosigned a different tree of this log at size {n}: the ledger was rolled back or forked"
                ));
            }
            Answer::Conflict(n) => {
                target.last = Some(n);
                old = n;
            }
            Answer::Refused { status: 422, body } => {
                return Submitted::Rollback(format!(
                    "the witness refused the consistency proof from the size {old} it cosigned to {}: this ledger's tree at size {old} is not the one it saw ({})",
                    checkpoint.size,
                    body.trim()
                ));
            }
            Answer::Refused { status, body } => {
                return Submitted::Retry(format!("refused ({status}): {}", body.trim()));
            }
        }
    }
    Submitted::Retry("the witness's size kept changing".into())
}

/// What the submitter knows of one witness.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WitnessView {
    /// The size it last cosigned (`None`: not known yet).
    pub cosigned_size: Option<u64>,
    /// The rollback it reports, while it stands.
    pub rollback: Option<String>,
}

/// The witnesses' state, shared with `/healthz`, `/metrics` and the cluster health.
#[derive(Debug, Default)]
pub struct WitnessStatus {
    /// Checkpoints cosigned (one per witness and checkpoint).
    pub cosigned: AtomicU64,
    /// Failed tries.
    pub failures: AtomicU64,
    /// Rollbacks detected.
    pub rollbacks: AtomicU64,
    /// By witness (shown name).
    witnesses: Mutex<BTreeMap<String, WitnessView>>,
}

impl WitnessStatus {
    /// The first rollback a witness currently reports (`/healthz` degraded while there is one).
    pub fn rollback(&self) -> Option<String> {
        let w = self.witnesses.lock().expect("witness status");
        w.iter()
            .find_map(|(name, v)| v.rollback.as_ref().map(|r| format!("witness {name}: {r}")))
    }

    /// By witness (shown name): the size it last cosigned and the rollback it reports.
    pub fn witnesses(&self) -> BTreeMap<String, WitnessView> {
        self.witnesses.lock().expect("witness status").clone()
    }

    fn set(&self, name: &str, target: &Target) {
        self.witnesses.lock().expect("witness status").insert(
            name.to_owned(),
            WitnessView {
                cosigned_size: target.last,
                rollback: target.rollback.clone(),
            },
        );
    }

    /// The `/metrics` lines.
    pub fn render(&self) -> String {
        format!(
            "# HELP vigil_witness_cosignatures_total Checkpoints a witness cosigned (one per witness and checkpoint).\n\
             # TYPE vigil_witness_cosignatures_total counter\nvigil_witness_cosignatures_total {}\n\
             # HELP vigil_witness_failures_total Submissions to a witness that failed and will be retried.\n\
             # TYPE vigil_witness_failures_total counter\nvigil_witness_failures_total {}\n\
             # HELP vigil_witness_rollbacks_total Rollbacks or forks of this ledger reported by a witness.\n\
             # TYPE vigil_witness_rollbacks_total counter\nvigil_witness_rollbacks_total {}\n\
             # HELP vigil_witness_rollback 1 while a witness reports that this ledger was rolled back.\n\
             # TYPE vigil_witness_rollback gauge\nvigil_witness_rollback {}\n",
            self.cosigned.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
            self.rollbacks.load(Ordering::Relaxed),
            u8::from(self.rollback().is_some()),
        )
    }
}

/// The audit event of a detected rollback (what the bundled rule `vigil_witness_rollback`
/// alerts on).
pub fn rollback_event(witness: &str, checkpoint: &Checkpoint, reason: &str) -> Event {
    Event::audit_builder("witness_rollback")
        .category(Category::IntrusionDetection)
        .event_type(EventType::Indicator)
        .outcome(Outcome::Failure)
        .field("vigil.witness.name", witness)
        .field("vigil.checkpoint.origin", checkpoint.origin.as_str())
        .field("vigil.checkpoint.size", checkpoint.size as i64)
        .message(format!(
            "ROLLBACK: witness {witness} refuses checkpoint {} of {}: {reason}",
            checkpoint.size, checkpoint.origin
        ))
        .build()
}

/// Handles one submission's result for witness `name`: stores the cosignatures, records a
/// rollback (once while it stands, however often the witness repeats it: an audit event through
/// the door), counts.
pub fn settle(
    name: &str,
    target: &mut Target,
    result: Submitted,
    checkpoint: &Checkpoint,
    ledger_paths: &vigil_ledger::LedgerPaths,
    door: &Ingest,
    status: &WitnessStatus,
) {
    let now = Instant::now();
    match result {
        Submitted::Cosigned(note) => {
            if let Err(e) = cosigned::append(ledger_paths, &note) {
                tracing::warn!("witness {name}: storing the cosignature failed: {e}");
            }
            target.failures = 0;
            target.next_try = None;
            target.rollback = None;
            status.cosigned.fetch_add(1, Ordering::Relaxed);
        }
        Submitted::Rollback(reason) => {
            tracing::error!("witness {name}: ROLLBACK detected: {reason}");
            if target.rollback.is_none() {
                status.rollbacks.fetch_add(1, Ordering::Relaxed);
                let event = rollback_event(name, checkpoint, &reason);
                let pending = door.submit(vec![event], Origin::Audit);
                tokio::spawn(async move {
                    let _ = pending.durable().await;
                });
            }
            target.rollback = Some(reason);
            // A rolled-back ledger stays rolled back: ask again, slowly.
            target.failed(now);
        }
        Submitted::Retry(reason) => {
            tracing::warn!("witness {name}: checkpoint {}: {reason}", checkpoint.size);
            status.failures.fetch_add(1, Ordering::Relaxed);
            target.failed(now);
        }
    }
    status.set(name, target);
}

/// POSTs an `add-checkpoint` body to `url` (the witness's submission prefix; `/add-checkpoint`
/// is appended).
pub async fn post(client: &reqwest::Client, url: &str, body: String) -> Result<Answer, String> {
    let endpoint = format!("{}/add-checkpoint", url.trim_end_matches('/'));
    let response = client
        .post(&endpoint)
        .timeout(REQUEST_TIMEOUT)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("sending: {}", e.without_url()))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("reading the answer: {}", e.without_url()))?;
    if bytes.len() > super::protocol::MAX_REQUEST_BYTES {
        return Err("the answer is too large".into());
    }
    Ok(Answer::from_parts(
        status,
        content_type.as_deref(),
        &String::from_utf8_lossy(&bytes),
    ))
}

/// One witness of the standalone server: its URL and how it is shown (URLs may hold secrets).
#[derive(Debug, Clone)]
pub struct WitnessUrl {
    /// The submission prefix.
    pub url: String,
    /// How logs and events name it (`SecretUrl::shown`).
    pub shown: String,
}

/// Runs until `stop`: every new signed checkpoint of `ledger` goes to every witness; the
/// latest at start, then each new one (were two signed between two looks, the later, whose
/// proof covers the earlier).
pub async fn run(
    witnesses: Vec<WitnessUrl>,
    ledger: Ledger,
    door: Arc<Ingest>,
    status: Arc<WitnessStatus>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if witnesses.is_empty() {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("witnesses are off: cannot build an HTTP client: {e}");
            return;
        }
    };
    let mut reader = match ledger.reader() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("witnesses are off: cannot read the ledger: {e}");
            return;
        }
    };
    let paths = ledger.paths().clone();
    let mut targets: Vec<(WitnessUrl, Target, Option<u64>)> = witnesses
        .into_iter()
        .map(|w| (w, Target::default(), None))
        .collect();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let latest = match vigil_ledger::integrity::read_witness(&paths) {
            Ok(Some(w)) => w,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("witnesses: reading the latest checkpoint: {e}");
                continue;
            }
        };
        let size = latest.checkpoint.size;
        for (w, target, done) in &mut targets {
            let now = Instant::now();
            // A standing rollback is re-checked even without a new checkpoint.
            if (*done == Some(size) && target.rollback.is_none()) || !target.due(now) {
                continue;
            }
            let result = submit(
                target,
                &mut reader,
                &latest.checkpoint,
                &latest.note,
                |body| post(&client, &w.url, body),
            )
            .await;
            if !matches!(result, Submitted::Retry(_)) {
                *done = Some(size);
            }
            settle(
                &w.shown,
                target,
                result,
                &latest.checkpoint,
                &paths,
                &door,
                &status,
            );
        }
    }
}
