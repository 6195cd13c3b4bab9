//! Checkpoint sinks: every signed checkpoint is sent off the host through the notifier targets
//! (webhook, syslog, email), so a copy of the ledger's history lives where an attacker on the
//! host cannot reach it. `vigil verify --against COPY` then catches a rollback or a fork that
//! left no trace on the host (a consistency proof from the copy to the ledger).
//!
//! The task follows `checkpoints.log` (twice a second it reads only what was appended since its
//! last look), sends the latest checkpoint at start and every new one
//! after, retries with the notifiers' backoff, and writes a `vigil.notify` event to the ledger
//! when a sink gave up.

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use base64::Engine;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use vigil_event::{Event, Timestamp};
use vigil_ledger::Ledger;
use vigil_ledger::format;
use vigil_ledger::note::{Checkpoint, parse_note};

use crate::notify::{Target, backoff, send_email_text};

/// One place every signed checkpoint is sent to.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointSink {
    /// A name for logs and the ledger.
    pub name: String,
    /// Where.
    pub target: Target,
}

/// The JSON a webhook sink receives: the facts, and the whole signed note (what
/// `vigil verify --against` reads).
pub fn webhook_body(checkpoint: &Checkpoint, note: &str) -> serde_json::Value {
    json!({
        "type": "vigil.checkpoint",
        "origin": checkpoint.origin,
        "size": checkpoint.size,
        "root": crate::http::hex(&checkpoint.root),
        "time": checkpoint.time(),
        "checkpoint": note,
    })
}

/// The RFC 5424 syslog line: the facts, and the note in base64 (it spans several lines).
pub fn syslog_line(checkpoint: &Checkpoint, note: &str) -> String {
    format!(
        "<38>1 {} vigil vigil - checkpoint - origin={} size={} root={} note_b64={}",
        Timestamp::now().to_rfc3339(),
        checkpoint.origin,
        checkpoint.size,
        crate::http::hex(&checkpoint.root),
        base64::engine::general_purpose::STANDARD.encode(note)
    )
}

async fn deliver(
    client: &reqwest::Client,
    target: &Target,
    checkpoint: &Checkpoint,
    note: &str,
) -> Result<(), String> {
    match target {
        Target::Webhook { url, .. } => {
            let resp = client
                .post(url)
                .json(&webhook_body(checkpoint, note))
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if resp.status().is_success() {
                Ok(())
            } else {
                Err(format!("{url} answered {}", resp.status()))
            }
        }
        Target::Syslog { addr, tcp } => {
            let line = syslog_line(checkpoint, note);
            if *tcp {
                let mut s = tokio::time::timeout(
                    Duration::from_secs(10),
                    tokio::net::TcpStream::connect(addr),
                )
                .await
                .map_err(|_| format!("connecting to {addr} timed out"))?
                .map_err(|e| e.to_string())?;
                s.write_all(format!("{} {line}", line.len()).as_bytes())
                    .await
                    .map_err(|e| e.to_string())
            } else {
                let s = tokio::net::UdpSocket::bind("0.0.0.0:0")
                    .await
                    .map_err(|e| e.to_string())?;
                s.send_to(line.as_bytes(), addr)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
        Target::Email { .. } => {
            let subject = format!(
                "[Vigil checkpoint] {} size {}",
                checkpoint.origin, checkpoint.size
            );
            let body = format!(
                "A signed checkpoint of the Vigil ledger {}. Keep this email: `vigil verify --against FILE` \
                 checks the ledger against the note below (saved to FILE) and catches a rollback or a rewritten history.\n\n{note}",
                checkpoint.origin
            );
            send_email_text(target, subject, body).await
        }
    }
}

/// Follows `checkpoints.log` from a byte offset: new complete records since the last call.
struct Follower {
    path: std::path::PathBuf,
    offset: u64,
}

impl Follower {
    fn new_records(&mut self) -> Vec<String> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut bytes).is_err()
        {
            return Vec::new();
        }
        let (records, end) = format::decode_records(&bytes);
        self.offset += end as u64;
        records
            .into_iter()
            .filter_map(|r| String::from_utf8(r.to_vec()).ok())
            .collect()
    }
}

/// Runs until `stop`: sends the latest checkpoint at start, then every new one, to every sink.
pub async fn run(
    sinks: Vec<CheckpointSink>,
    ledger: Ledger,
    backoff_base: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if sinks.is_empty() {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("checkpoint sinks are off: cannot build an HTTP client: {e}");
            return;
        }
    };
    let mut follower = Follower {
        path: ledger.paths().checkpoints(),
        offset: format::FILE_HEADER_LEN as u64,
    };
    // At start only the latest is sent: the sinks already hold the earlier ones.
    let mut pending: Vec<String> = follower.new_records().into_iter().rev().take(1).collect();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        for note in pending.drain(..) {
            let Ok(parsed) = parse_note(&note) else {
                continue;
            };
            let Ok(checkpoint) = Checkpoint::parse(parsed.text) else {
                continue;
            };
            for sink in &sinks {
                let (client, sink, checkpoint, note, ledger) = (
                    client.clone(),
                    sink.clone(),
                    checkpoint.clone(),
                    note.clone(),
                    ledger.clone(),
                );
                tokio::spawn(async move {
                    let mut last = String::new();
                    for delay in std::iter::once(Duration::ZERO).chain(backoff(backoff_base)) {
                        tokio::time::sleep(delay).await;
                        match deliver(&client, &sink.target, &checkpoint, &note).await {
                            Ok(()) => return,
                            Err(e) => {
                                tracing::warn!(
                                    "checkpoint sink {}: sending checkpoint {} failed: {e}",
                                    sink.name,
                                    checkpoint.size
                                );
                                last = e;
                            }
                        }
                    }
                    let mut e = Event::new(Timestamp::now());
                    e.insert("event.dataset", "vigil.notify");
                    e.insert("vigil.source", "vigil");
                    e.insert("event.kind", "event");
                    e.insert("event.action", "checkpoint-delivery-failed");
                    e.insert("event.outcome", "failure");
                    e.insert("vigil.notifier", sink.name.as_str());
                    e.insert("vigil.checkpoint.size", checkpoint.size as i64);
                    e.insert("error.message", last.as_str());
                    e.insert(
                        "message",
                        format!(
                            "checkpoint sink {} gave up on checkpoint {}: {last}",
                            sink.name, checkpoint.size
                        ),
                    );
                    let _ = tokio::task::spawn_blocking(move || ledger.append(&[e])).await;
                });
            }
        }
        tokio::select! {
            _ = tick.tick() => {}
            // The final checkpoint of a clean stop is sent at the next start (the latest is).
            _ = stop.changed() => return,
        }
        pending = follower.new_records();
    }
}
