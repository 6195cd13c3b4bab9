//! Checkpoint sinks: every signed checkpoint is sent off the host through the notifier targets
//! (webhook, syslog, email), so a copy of the ledger's history lives where an attacker on the
//! host cannot reach it. `vigil verify --against COPY` then catches a rollback or a fork that
//! left no trace on the host (a consistency proof from the copy to the ledger).
//!
//! Twice a second the task looks at the writer's checkpointed size; when it changed, it reads the
//! latest checkpoint from the witness file (one small file, whatever the ledger's age) and sends
//! it: the latest at start, then every new one (with the default 5 s interval, every checkpoint;
//! were two signed between two looks, the later one, whose consistency proof covers the earlier).
//! It retries with the notifiers' backoff, and writes a `vigil.notify` event to the ledger
//! when a sink gave up.

use std::time::Duration;

use base64::Engine;
use serde_json::json;
use vigil_event::{Event, Timestamp};
use vigil_ingest::{Ingest, Origin};
use vigil_ledger::Ledger;
use vigil_ledger::note::{Checkpoint, parse_note};

use crate::notify::{DeliveryError, Target, backoff, post_webhook, send_email_text, send_syslog};

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
        "root": checkpoint.root_hex(),
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
        checkpoint.root_hex(),
        base64::engine::general_purpose::STANDARD.encode(note)
    )
}

async fn deliver(
    client: &reqwest::Client,
    target: &Target,
    checkpoint: &Checkpoint,
    note: &str,
) -> Result<(), DeliveryError> {
    match target {
        Target::Webhook { url, .. } => {
            post_webhook(client, url, &webhook_body(checkpoint, note)).await
        }
        Target::Syslog { addr, tcp } => {
            send_syslog(addr, *tcp, &syslog_line(checkpoint, note)).await
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

/// Runs until `stop`: sends the latest checkpoint at start, then every new one, to every sink.
pub async fn run(
    sinks: Vec<CheckpointSink>,
    ledger: Ledger,
    door: std::sync::Arc<Ingest>,
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
    // The latest checkpoint is also in the witness file, written before the writer publishes
    // its new checkpointed size: a look costs one small file read, whatever the ledger's age.
    let paths = ledger.paths().clone();
    let mut sent_size = None;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        let size = ledger.checkpointed_size();
        let latest = if sent_size == Some(size) {
            None
        } else {
            match vigil_ledger::integrity::read_witness(&paths) {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!("checkpoint sinks: {e}");
                    None
                }
            }
        };
        if let Some(w) = &latest {
            sent_size = Some(w.checkpoint.size.max(size));
        }
        for note in latest.into_iter().map(|w| w.note) {
            let Ok(parsed) = parse_note(&note) else {
                continue;
            };
            let Ok(checkpoint) = Checkpoint::parse(parsed.text) else {
                continue;
            };
            for sink in &sinks {
                let (client, sink, checkpoint, note, door) = (
                    client.clone(),
                    sink.clone(),
                    checkpoint.clone(),
                    note.clone(),
                    std::sync::Arc::clone(&door),
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
                                last = e.to_string();
                                if !e.retryable() {
                                    break;
                                }
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
                    let _ = door.submit(vec![e], Origin::Checkpoint).durable().await;
                });
            }
        }
        tokio::select! {
            _ = tick.tick() => {}
            // The final checkpoint of a clean stop is sent at the next start (the latest is).
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_ledger::note::NoteSigner;

    fn signed() -> (Checkpoint, String) {
        let signer = NoteSigner::generate("vigil/test/0001").unwrap();
        let checkpoint = Checkpoint {
            origin: "vigil/test/0001".into(),
            size: 42,
            root: [7; 32],
            extensions: vec!["time 2026-12-06T21:00:00Z".into()],
        };
        let note = signer.sign(&checkpoint.to_text()).unwrap();
        (checkpoint, note)
    }

    #[test]
    fn webhook_body_carries_the_whole_note() {
        let (checkpoint, note) = signed();
        let body = webhook_body(&checkpoint, &note);
        assert_eq!(body["type"], "vigil.checkpoint");
        assert_eq!(body["size"], 42);
        assert_eq!(body["checkpoint"], note.as_str());
        assert_eq!(body["root"], "07".repeat(32));
    }

    #[test]
    fn syslog_line_is_one_line_and_the_note_comes_back_from_it() {
        let (checkpoint, note) = signed();
        let line = syslog_line(&checkpoint, &note);
        assert!(!line.contains('\n'));
        assert!(line.contains(" size=42 "));
        let b64 = line.rsplit_once("note_b64=").unwrap().1;
        let back = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(String::from_utf8(back).unwrap(), note);
    }
}
