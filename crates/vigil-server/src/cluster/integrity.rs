//! Integrity reads in cluster mode: a shard's latest signed checkpoint (with the other nodes'
//! cosignatures), an inclusion proof of one of its events, and its integrity summary, answered
//! on any node by asking the shard's owner over NATS request/reply.
//!
//! - HTTP (docs/cluster.md "Integrity over HTTP"): `GET /api/v1/checkpoint?shard=p3` is the
//!   shard's latest signed note (text, as on a standalone node); `GET /api/v1/checkpoint`
//!   without `shard` is JSON listing every shard's latest checkpoint and cosigned checkpoint,
//!   naming the shards that did not answer (`missing_shards`); `GET
//!   /api/v1/proof/inclusion?shard=p3&seq=N` is the proof JSON of DESIGN §5 for the shard's
//!   event `N` (a shard ledger sequence), plus `"shard"`; `GET /api/v1/integrity?shard=p3` the
//!   shard's summary, and without `shard` every shard's; `POST
//!   /api/v1/integrity/verify?shard=p3` the shard's whole-ledger verification, run by its
//!   owner ([`super::verify`]).
//! - Wire: the coordinator reads the shard's owner from the leases bucket and sends one
//!   request to `names.ledger_subject(owner)` (JSON [`Read`], at most [`MAX_REQUEST_BYTES`]);
//!   the owner answers `"<status, three digits>\n<JSON body>"` from its own copy, or 404 when
//!   it no longer owns the shard. A node answers at most [`MAX_CONCURRENT`] reads at once and
//!   holds at most [`MAX_QUEUED`]; more are dropped (their coordinators time out after
//!   [`REQUEST_TIMEOUT`] and name the shard as missing).
//!
//! A node does not vouch for another node's shard: the checkpoint is signed by the shard's own
//! key and cosigned by the other nodes' witnesses, so a client checks what it receives (the
//! shard's `verifier.vkey`, the witnesses' keys) exactly as on a standalone node.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value as Json, json};
use tokio::sync::Semaphore;
use vigil_cluster::{Cluster, Shard};
use vigil_ledger::Ledger;

/// The longest read request an owner accepts.
pub const MAX_REQUEST_BYTES: usize = 4096;
/// How long a coordinator waits for an owner's answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Reads one node answers at once.
pub const MAX_CONCURRENT: usize = 4;
/// Reads one node holds at once (running or waiting); more are dropped.
pub const MAX_QUEUED: usize = 64;

/// One read of one shard, as it travels to the shard's owner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Read {
    /// The shard's latest signed checkpoint, its newest cosigned checkpoint and its key.
    Checkpoint {
        /// The shard (`p3`, `sys`).
        shard: String,
    },
    /// The inclusion proof of the shard's event `seq` against its latest checkpoint.
    Proof {
        /// The shard.
        shard: String,
        /// The event's sequence in the shard's ledger.
        seq: u64,
    },
    /// The shard's event `seq` as its ledger stores it (a case's event).
    Event {
        /// The shard.
        shard: String,
        /// The event's sequence in the shard's ledger.
        seq: u64,
    },
    /// The shard's integrity summary (checkpoint, size, time, key, events).
    Integrity {
        /// The shard.
        shard: String,
    },
    /// The shard's whole-ledger verification, run by its owner ([`super::verify`]).
    Verify {
        /// The shard.
        shard: String,
    },
    /// The shard's compliance report, computed by its owner ([`super::report`]).
    Report {
        /// The shard.
        shard: String,
        /// The framework id (`pci-dss`).
        framework: String,
        /// Period start (ns); none: the shard's first event.
        from: Option<i64>,
        /// Period end (ns, exclusive).
        to: i64,
        /// Only events this search selects count.
        scope: Option<String>,
    },
}

impl Read {
    /// The shard read.
    pub fn shard(&self) -> &str {
        match self {
            Read::Checkpoint { shard }
            | Read::Proof { shard, .. }
            | Read::Event { shard, .. }
            | Read::Integrity { shard }
            | Read::Verify { shard }
            | Read::Report { shard, .. } => shard,
        }
    }
}

/// An answer: an HTTP status and a JSON body (`{"error": …}` unless 200).
pub type Answer = (u16, Json);

fn refusal(status: u16, message: impl Into<String>) -> Answer {
    (status, json!({ "error": message.into() }))
}

/// The reply payload of an answer.
pub fn encode_answer(answer: &Answer) -> Vec<u8> {
    format!("{:03}\n{}", answer.0, answer.1).into_bytes()
}

/// An answer back from a reply payload.
pub fn decode_answer(payload: &[u8]) -> Result<Answer, String> {
    let nl = payload
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("the reply has no status line")?;
    let status: u16 = std::str::from_utf8(&payload[..nl])
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or("the reply's status is not a number")?;
    let body = serde_json::from_slice(&payload[nl + 1..])
        .map_err(|e| format!("the reply's body is not JSON: {e}"))?;
    Ok((status, body))
}

/// Reads a request payload.
pub fn decode_read(payload: &[u8]) -> Result<Read, String> {
    if payload.len() > MAX_REQUEST_BYTES {
        return Err(format!("a read request is over {MAX_REQUEST_BYTES} bytes"));
    }
    serde_json::from_slice(payload).map_err(|e| format!("a malformed read request: {e}"))
}

/// The shards this node owns, as the read responder sees them.
pub trait ShardLedgers: Send + Sync + 'static {
    /// The ledger and data directory of `shard` if this node owns it now.
    fn owned_ledger(&self, shard: Shard) -> Option<(Ledger, std::path::PathBuf)>;
}

impl ShardLedgers for super::shards::ShardSet {
    fn owned_ledger(&self, shard: Shard) -> Option<(Ledger, std::path::PathBuf)> {
        Some((self.ledger(shard)?, self.owned_dir(shard)?))
    }
}

/// Answers `read` from this node's copy of its shard (blocking: reads files).
pub fn answer(node: &str, shards: &dyn ShardLedgers, read: &Read) -> Answer {
    let shard = match read.shard().parse::<Shard>() {
        Ok(s) => s,
        Err(e) => return refusal(400, e),
    };
    let Some((ledger, dir)) = shards.owned_ledger(shard) else {
        return refusal(404, format!("shard {shard} is not owned by {node}"));
    };
    let result = match read {
        Read::Checkpoint { .. } => checkpoint_json(&dir).map(|mut j| {
            j["events"] = json!(ledger.end_seq());
            j
        }),
        Read::Integrity { .. } => integrity_json(&dir).map(|mut j| {
            j["events"] = json!(ledger.end_seq());
            j
        }),
        Read::Report {
            framework,
            from,
            to,
            scope,
            ..
        } => {
            let request = crate::report::ReportRequest {
                framework: framework.clone(),
                from: *from,
                to: *to,
                scope: scope.clone(),
                // The owner answers for its shard's ledger; the enabled rules (for the
                // logsource evidence) are not sent along: a shard's report has none.
                rules: None,
            };
            // The report is signed over its own JSON: it travels unchanged, beside the names.
            return match super::report::compute(&dir, &request) {
                (200, report) => (
                    200,
                    json!({"shard": shard.to_string(), "node": node, "report": report}),
                ),
                other => other,
            };
        }
        Read::Verify { .. } => {
            let (status, mut body) = super::verify::run(&dir);
            if status != 200 {
                return (status, body);
            }
            body["shard"] = json!(shard.to_string());
            body["node"] = json!(node);
            return (status, body);
        }
        Read::Proof { seq, .. } => {
            match ledger.reader().and_then(|mut r| r.inclusion_proof(*seq)) {
                Ok(p) => Ok(p.to_json()),
                Err(e) => return refusal(404, e.to_string()),
            }
        }
        Read::Event { seq, .. } => {
            let held = ledger.end_seq();
            if *seq >= held {
                return refusal(
                    404,
                    format!("shard {shard} holds {held} events (0 to {held} - 1): no event {seq}"),
                );
            }
            match ledger.reader().and_then(|mut r| r.read_event(*seq)) {
                Ok(e) => Ok(json!({"event": e.to_json(), "seq": seq})),
                Err(e) => Err(format!("reading event {seq} of shard {shard}: {e}")),
            }
        }
    };
    match result {
        Ok(mut body) => {
            body["shard"] = json!(shard.to_string());
            body["node"] = json!(node);
            (200, body)
        }
        Err(e) => refusal(500, e),
    }
}

/// A shard directory's latest checkpoint, its key, and its newest cosigned checkpoint (every
/// stored cosignature of that checkpoint merged into one note: the log's signature, then each
/// witness's `tlog-cosignature` line).
pub fn checkpoint_json(dir: &Path) -> Result<Json, String> {
    let mut j = integrity_json(dir)?;
    let paths = vigil_ledger::LedgerPaths::new(dir);
    let notes = vigil_ledger::cosigned::read(&paths).map_err(|e| e.to_string())?;
    match newest_cosigned(&notes) {
        Some((size, note)) => {
            j["cosigned"] = json!(note);
            j["cosigned_size"] = json!(size);
        }
        None => {
            j["cosigned"] = Json::Null;
            j["cosigned_size"] = Json::Null;
        }
    }
    Ok(j)
}

/// A shard directory's integrity summary, as `GET /api/v1/integrity` shows a standalone one.
pub fn integrity_json(dir: &Path) -> Result<Json, String> {
    let paths = vigil_ledger::LedgerPaths::new(dir);
    let key = vigil_ledger::load_verifier(&paths)
        .map(|v| v.to_vkey())
        .map_err(|e| e.to_string())?;
    let latest = vigil_ledger::read_checkpoints(&paths)
        .map_err(|e| e.to_string())?
        .pop();
    Ok(json!({
        "checkpoint": latest.as_ref().map(|c| c.note.clone()),
        "tree_size": latest.as_ref().map(|c| c.checkpoint.size),
        "checkpoint_time": latest.as_ref().and_then(|c| c.checkpoint.time().map(str::to_owned)),
        "key": key,
    }))
}

/// The newest checkpoint among cosigned notes (by tree size, then position), with the
/// signature lines of every note on that same checkpoint text merged (each line once).
pub fn newest_cosigned(notes: &[String]) -> Option<(u64, String)> {
    let mut newest: Option<(u64, &str)> = None;
    for note in notes {
        let Ok(parsed) = vigil_ledger::note::parse_note(note) else {
            continue;
        };
        let Ok(cp) = vigil_ledger::note::Checkpoint::parse(parsed.text) else {
            continue;
        };
        if newest.is_none_or(|(size, _)| cp.size >= size) {
            newest = Some((cp.size, parsed.text));
        }
    }
    let (size, text) = newest?;
    let mut lines: Vec<&str> = Vec::new();
    for note in notes {
        let Some(sigs) = note.strip_prefix(text).and_then(|r| r.strip_prefix('\n')) else {
            continue;
        };
        for line in sigs.lines().filter(|l| !l.is_empty()) {
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    let mut merged = format!("{text}\n");
    for line in lines {
        merged.push_str(line);
        merged.push('\n');
    }
    Some((size, merged))
}

/// This node's read responder: answers reads of the shards it owns until dropped.
pub struct Responder {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Responder {
    /// Subscribes to this node's ledger subject and answers reads over `shards`.
    pub async fn start(
        cluster: &Cluster,
        shards: Arc<dyn ShardLedgers>,
    ) -> Result<Responder, String> {
        let client = cluster.client().clone();
        let node = cluster.node().to_owned();
        let subject = cluster.settings().names.ledger_subject(&node);
        let mut requests = client
            .subscribe(subject.clone())
            .await
            .map_err(|e| format!("subscribing to {subject}: {e}"))?;
        let slots = Arc::new(Semaphore::new(MAX_CONCURRENT));
        let queue = Arc::new(Semaphore::new(MAX_QUEUED));
        let task = tokio::spawn(async move {
            while let Some(msg) = requests.next().await {
                let Some(reply) = msg.reply.clone() else {
                    continue;
                };
                let Ok(ticket) = Arc::clone(&queue).try_acquire_owned() else {
                    tracing::warn!("shard reads beyond {MAX_QUEUED} at once are dropped");
                    continue;
                };
                let (client, shards, slots, node) = (
                    client.clone(),
                    Arc::clone(&shards),
                    Arc::clone(&slots),
                    node.clone(),
                );
                tokio::spawn(async move {
                    let _ticket = ticket;
                    let Ok(_slot) = slots.acquire_owned().await else {
                        return;
                    };
                    let payload = msg.payload.clone();
                    let answered =
                        tokio::task::spawn_blocking(move || match decode_read(&payload) {
                            Ok(read) => answer(&node, &*shards, &read),
                            Err(e) => refusal(400, e),
                        })
                        .await
                        .unwrap_or_else(|e| refusal(500, e.to_string()));
                    if let Err(e) = client.publish(reply, encode_answer(&answered).into()).await {
                        tracing::warn!("answering a shard read: {e}");
                    }
                });
            }
        });
        Ok(Responder { task })
    }
}

/// Asks `shard`'s owner for `read`: its answer, or a 503 naming why there is none (no owner,
/// no answer in time, an answer that does not decode).
pub async fn ask(cluster: &Cluster, read: &Read) -> Answer {
    let shard = match read.shard().parse::<Shard>() {
        Ok(s) if cluster.settings().shards().contains(&s) => s,
        Ok(s) => return refusal(404, format!("the cluster has no shard {s}")),
        Err(e) => return refusal(400, e),
    };
    let Some(owner) = super::query::owner(cluster, shard).await else {
        return refusal(503, format!("shard {shard} has no owner"));
    };
    let subject = cluster.settings().names.ledger_subject(&owner.node);
    let body = serde_json::to_vec(read).unwrap_or_default();
    // A verification or a report reads the whole shard: it is waited for longer than a read.
    let patience = match read {
        Read::Verify { .. } | Read::Report { .. } => super::verify::VERIFY_TIMEOUT,
        _ => REQUEST_TIMEOUT,
    };
    let request = async_nats::Request::new()
        .payload(body.into())
        .timeout(Some(patience));
    let sent =
        tokio::time::timeout(patience, cluster.client().send_request(subject, request)).await;
    match sent {
        Ok(Ok(msg)) => decode_answer(&msg.payload).unwrap_or_else(|e| {
            refusal(
                503,
                format!("shard {shard}: {} answered badly: {e}", owner.node),
            )
        }),
        Ok(Err(e)) => refusal(
            503,
            format!(
                "shard {shard}: its owner {} does not answer: {e}",
                owner.node
            ),
        ),
        Err(_) => refusal(
            503,
            format!(
                "shard {shard}: its owner {} did not answer in time",
                owner.node
            ),
        ),
    }
}

/// Every shard's answer to the same read (`make` builds it for a shard), at once: the answers
/// of the shards that gave one (200), and the others named with why.
pub async fn ask_all(cluster: &Cluster, make: impl Fn(String) -> Read) -> Json {
    let shards = cluster.settings().shards();
    let reads: Vec<Read> = shards.iter().map(|s| make(s.to_string())).collect();
    let answers = futures_util::future::join_all(reads.iter().map(|r| ask(cluster, r))).await;
    gathered(&shards, answers)
}

/// As [`ask_all`], but one shard after another: for reads an owner serves one at a time
/// (reports: a second asked of the same owner meanwhile is refused as busy).
pub async fn ask_each(cluster: &Cluster, make: impl Fn(String) -> Read) -> Json {
    let shards = cluster.settings().shards();
    let mut answers = Vec::with_capacity(shards.len());
    for shard in &shards {
        answers.push(ask(cluster, &make(shard.to_string())).await);
    }
    gathered(&shards, answers)
}

/// The answers of `shards` (in order) as `{"shards": [..], "missing_shards": [..]}`.
fn gathered(shards: &[Shard], answers: Vec<Answer>) -> Json {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (shard, (status, body)) in shards.iter().zip(answers) {
        if status == 200 {
            found.push(body);
        } else {
            let why = body
                .get("error")
                .and_then(Json::as_str)
                .unwrap_or("no answer")
                .to_owned();
            missing.push(json!({"shard": shard.to_string(), "reason": why}));
        }
    }
    json!({ "shards": found, "missing_shards": missing })
}

/// The `shard` parameter of the integrity routes.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ShardParam {
    /// The shard (`p3`, `sys`); none: every shard.
    pub shard: Option<String>,
}

fn respond((status, body): Answer) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_success() {
        return axum::Json(body).into_response();
    }
    let message = body
        .get("error")
        .and_then(Json::as_str)
        .unwrap_or("no answer")
        .to_owned();
    crate::http::error(status, message)
}

/// `GET /api/v1/checkpoint` on a cluster node: with `shard`, that shard's latest signed note
/// (text, as a standalone node answers); without, every shard's latest checkpoint and newest
/// cosigned checkpoint as JSON, with the shards that did not answer in `missing_shards`.
pub async fn checkpoint_route(cluster: &Cluster, shard: Option<String>) -> Response {
    let Some(shard) = shard else {
        return axum::Json(ask_all(cluster, |shard| Read::Checkpoint { shard }).await)
            .into_response();
    };
    match ask(cluster, &Read::Checkpoint { shard }).await {
        (200, body) => match body.get("checkpoint").and_then(Json::as_str) {
            Some(note) => (
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                note.to_owned(),
            )
                .into_response(),
            None => crate::http::error(StatusCode::NOT_FOUND, "no checkpoint yet"),
        },
        other => respond(other),
    }
}

/// `GET /api/v1/proof/inclusion?shard=p3&seq=N` on a cluster node: the proof from the shard's
/// owner; the shard must be named (sequences are per shard).
pub async fn proof_route(cluster: &Cluster, shard: Option<String>, seq: u64) -> Response {
    let Some(shard) = shard else {
        return crate::http::error(
            StatusCode::BAD_REQUEST,
            "a cluster node keeps one ledger per shard: name it, as in ?shard=p0&seq=N",
        );
    };
    respond(ask(cluster, &Read::Proof { shard, seq }).await)
}

/// `GET /api/v1/integrity` on a cluster node: one shard's summary with `shard`, else every
/// shard's (and the missing ones named).
pub async fn integrity_route(cluster: &Cluster, shard: Option<String>) -> Response {
    match shard {
        Some(shard) => respond(ask(cluster, &Read::Integrity { shard }).await),
        None => {
            let mut all = ask_all(cluster, |shard| Read::Integrity { shard }).await;
            all["node"] = json!(cluster.node());
            axum::Json(all).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_round_trip_and_hostile_ones_are_refused() {
        for read in [
            Read::Checkpoint { shard: "p3".into() },
            Read::Proof {
                shard: "sys".into(),
                seq: 7,
            },
            Read::Integrity { shard: "p0".into() },
            Read::Report {
                shard: "p2".into(),
                framework: "pci-dss".into(),
                from: None,
                to: 5,
                scope: Some("sshd".into()),
            },
        ] {
            let bytes = serde_json::to_vec(&read).unwrap();
            assert_eq!(decode_read(&bytes).unwrap(), read);
        }
        assert!(decode_read(b"not json").is_err());
        assert!(decode_read(br#"{"op": "delete", "shard": "p1"}"#).is_err());
        assert!(decode_read(br#"{"op": "proof", "shard": "p1"}"#).is_err());
        assert!(decode_read(br#"{"op": "checkpoint", "shard": "p1", "x": 1}"#).is_err());
        assert!(decode_read(&vec![b' '; MAX_REQUEST_BYTES + 1]).is_err());
    }

    #[test]
    fn answers_round_trip_and_bad_replies_are_errors() {
        let answer = (404, json!({"error": "shard p1 is not owned by n2"}));
        assert_eq!(decode_answer(&encode_answer(&answer)).unwrap(), answer);
        assert!(decode_answer(b"no status line").is_err());
        assert!(decode_answer(b"abc\n{}").is_err());
        assert!(decode_answer(b"999\n{}").is_err());
        assert!(decode_answer(b"200\nnot json").is_err());
    }

    #[test]
    fn the_newest_cosigned_checkpoint_merges_its_witnesses_lines() {
        use vigil_ledger::note::NoteSigner;
        let text = |size: u64| format!("o\n{size}\n{}\n", "A".repeat(43) + "=");
        let (log, w1, w2) = (
            NoteSigner::generate("o").unwrap(),
            NoteSigner::generate("w1").unwrap(),
            NoteSigner::generate("w2").unwrap(),
        );
        // A note of `text` signed by the log and one witness (their lines, in that order).
        let signed = |text: &str, witness: &NoteSigner| {
            let line = |s: &NoteSigner| s.sign(text).unwrap()[text.len() + 1..].to_owned();
            format!("{text}\n{}{}", line(&log), line(witness))
        };
        let (old, new) = (text(1), text(5));
        let notes = vec![
            signed(&old, &w1),
            signed(&new, &w1),
            "junk".to_string(),
            signed(&new, &w2),
        ];
        let (size, merged) = newest_cosigned(&notes).unwrap();
        assert_eq!(size, 5);
        let parsed = vigil_ledger::note::parse_note(&merged).unwrap();
        assert_eq!(parsed.text, new);
        let names: Vec<&str> = parsed.signatures.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["o", "w1", "w2"]);
        assert_eq!(newest_cosigned(&[]), None);
    }

    struct One(Ledger, std::path::PathBuf);

    impl ShardLedgers for One {
        fn owned_ledger(&self, shard: Shard) -> Option<(Ledger, std::path::PathBuf)> {
            (shard == Shard::Data(1)).then(|| (self.0.clone(), self.1.clone()))
        }
    }

    #[test]
    fn an_owner_answers_for_its_shard_only() {
        let tmp = tempfile::tempdir().unwrap();
        let (ledger, _) = Ledger::open(tmp.path(), vigil_ledger::LedgerConfig::default()).unwrap();
        let mut event = vigil_event::Event::new(vigil_event::Timestamp::from_nanos(1));
        event.insert("message", "hello");
        ledger.append(&[event]).unwrap();
        ledger.checkpoint().unwrap();
        let one = One(ledger, tmp.path().to_owned());

        let (status, body) = answer("n1", &one, &Read::Checkpoint { shard: "p1".into() });
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["shard"].as_str(), body["node"].as_str()),
            (Some("p1"), Some("n1"))
        );
        assert_eq!(body["tree_size"], 1);
        assert!(
            body["checkpoint"]
                .as_str()
                .unwrap()
                .contains("\n\n\u{2014} ")
        );
        assert!(body["key"].as_str().is_some());
        assert_eq!(body["cosigned"], Json::Null);

        let (status, proof) = answer(
            "n1",
            &one,
            &Read::Proof {
                shard: "p1".into(),
                seq: 0,
            },
        );
        assert_eq!(status, 200, "{proof}");
        assert_eq!(
            (proof["seq"].as_u64(), proof["tree_size"].as_u64()),
            (Some(0), Some(1))
        );
        let (status, _) = answer(
            "n1",
            &one,
            &Read::Proof {
                shard: "p1".into(),
                seq: 9,
            },
        );
        assert_eq!(status, 404);

        let (status, body) = answer("n1", &one, &Read::Integrity { shard: "p2".into() });
        assert_eq!(status, 404);
        assert!(body["error"].as_str().unwrap().contains("not owned by n1"));
        let (status, _) = answer("n1", &one, &Read::Integrity { shard: "x".into() });
        assert_eq!(status, 400);
    }
}
