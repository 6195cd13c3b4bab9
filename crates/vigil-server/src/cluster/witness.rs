//! Nodes witness each other's shards: each shard is its own Merkle log (origin
//! `vigil/<cluster>/<shard>/<node>`, its own key), and every other node cosigns its checkpoints
//! over NATS request/reply, with the C2SP `tlog-witness` bodies, so one compromised node cannot
//! rewrite or roll back its shards unseen.
//!
//! * [`respond`]: this node's witness answers on `names.witness_subject(node)` (an
//!   `add-checkpoint` body; the reply is the HTTP status as three digits and a newline, then the
//!   HTTP body) and on `<that subject>.register` (a shard's vkey: trust on first use, then
//!   pinned; a key change for a known origin is refused).
//! * [`submit`]: the owner of a shard sends each new signed checkpoint of the shard's ledger to
//!   every other live node (the keys of the nodes bucket), registers the shard's key with each
//!   first, stores the cosignatures in the shard's `ledger/cosignatures.log`, and reports a
//!   rollback exactly as the standalone client does (`vigil_respond::witness::client`).
//!
//! The NATS subjects are reachable only by the cluster's own clients (NATS authorisation), which
//! is what makes first-use registration acceptable here and not on the HTTP endpoint.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use vigil_cluster::Cluster;
use vigil_ledger::Ledger;
use vigil_respond::witness::client::{self, Answer, Submitted, Target, WitnessStatus};
use vigil_respond::witness::protocol::MAX_REQUEST_BYTES;
use vigil_respond::witness::{Witness, WitnessError};

use crate::pipeline::Ingest;

/// Longest wait for a node's answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the submitter looks for a new checkpoint (and for the live nodes).
const TICK: Duration = Duration::from_millis(500);

/// The registration subject of `node`'s witness.
pub fn register_subject(cluster: &Cluster, node: &str) -> String {
    format!(
        "{}.register",
        cluster.settings().names.witness_subject(node)
    )
}

/// A reply payload: the status as three digits, a newline, the body.
pub fn reply(status: u16, body: &str) -> Vec<u8> {
    format!("{status:03}\n{body}").into_bytes()
}

/// Reads a reply payload back into an [`Answer`].
pub fn parse_reply(payload: &[u8]) -> Result<Answer, String> {
    if payload.len() > MAX_REQUEST_BYTES {
        return Err("the reply is too large".into());
    }
    let text = std::str::from_utf8(payload).map_err(|_| "the reply is not UTF-8".to_string())?;
    let (status, body) = text
        .split_once('\n')
        .ok_or_else(|| "the reply has no status line".to_string())?;
    let status: u16 = status
        .parse()
        .map_err(|_| "the reply's status is not a number".to_string())?;
    let content_type =
        (status == 409).then_some(vigil_respond::witness::protocol::SIZE_CONTENT_TYPE);
    Ok(Answer::from_parts(status, content_type, body))
}

/// Answers one request payload on the witness subject.
fn answer(witness: &Witness, payload: &[u8]) -> Vec<u8> {
    match witness.add_checkpoint(payload) {
        Ok(lines) => reply(200, &lines),
        Err(e) => {
            tracing::warn!("cluster witness: refused a checkpoint: {e}");
            reply(e.status(), &e.body())
        }
    }
}

/// Answers one payload on the registration subject.
fn answer_register(witness: &Witness, payload: &[u8]) -> Vec<u8> {
    let result = std::str::from_utf8(payload)
        .map_err(|_| WitnessError::Malformed("the key is not UTF-8".into()))
        .and_then(|vkey| witness.register(vkey));
    match result {
        Ok(_) => reply(200, ""),
        Err(e) => {
            tracing::warn!("cluster witness: refused a registration: {e}");
            reply(e.status(), &e.body())
        }
    }
}

/// This node's witness on NATS, until `stop`. Requests are answered one at a time (each
/// fsyncs the witness's state before its cosignature leaves).
pub async fn respond(
    cluster: Cluster,
    witness: Arc<Witness>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let node = cluster.node().to_owned();
    let subject = cluster.settings().names.witness_subject(&node);
    let client = cluster.client().clone();
    let mut requests = client
        .subscribe(subject.clone())
        .await
        .map_err(|e| format!("subscribing to {subject}: {e}"))?;
    let mut registrations = client
        .subscribe(register_subject(&cluster, &node))
        .await
        .map_err(|e| format!("subscribing to {subject}.register: {e}"))?;
    loop {
        let (message, register) = tokio::select! {
            m = requests.next() => (m, false),
            m = registrations.next() => (m, true),
            _ = stop.changed() => return Ok(()),
        };
        let Some(message) = message else {
            return Err("the NATS subscription ended".into());
        };
        let Some(reply_to) = message.reply.clone() else {
            continue;
        };
        let w = Arc::clone(&witness);
        let payload = message.payload.clone();
        let body = tokio::task::spawn_blocking(move || {
            if payload.len() > MAX_REQUEST_BYTES {
                let e = WitnessError::TooLarge;
                reply(e.status(), &e.body())
            } else if register {
                answer_register(&w, &payload)
            } else {
                answer(&w, &payload)
            }
        })
        .await
        .unwrap_or_else(|e| reply(500, &format!("{e}\n")));
        if let Err(e) = client.publish(reply_to, body.into()).await {
            tracing::warn!("cluster witness: replying: {e}");
        }
    }
}

async fn request(cluster: &Cluster, subject: String, body: Vec<u8>) -> Result<Answer, String> {
    let message = tokio::time::timeout(
        REQUEST_TIMEOUT,
        cluster.client().request(subject, body.into()),
    )
    .await
    .map_err(|_| "no answer in time".to_string())?
    .map_err(|e| format!("request: {e}"))?;
    parse_reply(&message.payload)
}

/// The live nodes (keys of the nodes bucket) other than this one.
async fn other_nodes(cluster: &Cluster) -> Result<Vec<String>, String> {
    let mut keys = cluster
        .nodes()
        .keys()
        .await
        .map_err(|e| format!("listing nodes: {e}"))?;
    let mut nodes = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| format!("listing nodes: {e}"))?;
        if key != cluster.node() && nodes.len() < 1024 {
            nodes.push(key);
        }
    }
    Ok(nodes)
}

/// Has the checkpoints of one shard's `ledger` cosigned by every other live node, until `stop`.
/// `door` takes the rollback audit events; `status` is the shard's witness state (health).
pub async fn submit(
    cluster: Cluster,
    ledger: Ledger,
    door: Arc<Ingest>,
    status: Arc<WitnessStatus>,
    mut stop: watch::Receiver<bool>,
) {
    let mut reader = match ledger.reader() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("shard witnesses are off: cannot read the shard: {e}");
            return;
        }
    };
    let paths = ledger.paths().clone();
    let vkey = match vigil_ledger::load_verifier(&paths) {
        Ok(v) => v.to_vkey(),
        Err(e) => {
            tracing::error!("shard witnesses are off: {e}");
            return;
        }
    };
    // Each shard's witnesses are their own entries in the node's witness state (one per
    // shard and witness node): a size cosigned for one shard says nothing of another's.
    let origin = ledger.origin().to_owned();
    let shown = |node: &str| format!("node {node} (shard {origin})");
    // By node: what we know of it, whether our key is registered, the size last handled.
    let mut targets: BTreeMap<String, (Target, bool, Option<u64>)> = BTreeMap::new();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let latest = match vigil_ledger::integrity::read_witness(&paths) {
            Ok(Some(w)) => w,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("shard witnesses: reading the latest checkpoint: {e}");
                continue;
            }
        };
        let size = latest.checkpoint.size;
        let nodes = match other_nodes(&cluster).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("shard witnesses: {e}");
                continue;
            }
        };
        for node in nodes {
            let (target, registered, done) = targets.entry(node.clone()).or_default();
            let now = std::time::Instant::now();
            if (*done == Some(size) && target.rollback.is_none()) || !target.due(now) {
                continue;
            }
            if !*registered {
                let subject = register_subject(&cluster, &node);
                match request(&cluster, subject, vkey.clone().into_bytes()).await {
                    Ok(Answer::Cosigned(_)) | Ok(Answer::Refused { status: 200, .. }) => {
                        *registered = true;
                    }
                    Ok(other) => {
                        // 403: the node has another key pinned for this shard's origin — this
                        // copy was re-keyed (rewritten or replaced): a rollback as far as the
                        // witnesses can tell. Anything else: tried again later, with backoff.
                        let result = match &other {
                            Answer::Refused { status: 403, body } => Submitted::Rollback(format!(
                                "node {node} holds another key for this shard's origin: the \
                                 shard was re-keyed ({})",
                                body.trim()
                            )),
                            other => Submitted::Retry(format!(
                                "node {node} refused the shard's key: {other:?}"
                            )),
                        };
                        client::settle(
                            &shown(&node),
                            target,
                            result,
                            &latest.checkpoint,
                            &paths,
                            &door,
                            &status,
                        );
                        continue;
                    }
                    Err(e) => {
                        client::settle(
                            &shown(&node),
                            target,
                            Submitted::Retry(format!("registering the shard's key: {e}")),
                            &latest.checkpoint,
                            &paths,
                            &door,
                            &status,
                        );
                        continue;
                    }
                }
            }
            let subject = cluster.settings().names.witness_subject(&node);
            let result = client::submit(
                target,
                &mut reader,
                &latest.checkpoint,
                &latest.note,
                |body| request(&cluster, subject.clone(), body.into_bytes()),
            )
            .await;
            if !matches!(result, Submitted::Retry(_)) {
                *done = Some(size);
            }
            client::settle(
                &shown(&node),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_round_trip() {
        assert_eq!(parse_reply(&reply(409, "12\n")), Ok(Answer::Conflict(12)));
        assert_eq!(
            parse_reply(&reply(200, "\u{2014} w AAAA\n")),
            Ok(Answer::Cosigned(vec!["\u{2014} w AAAA\n".into()]))
        );
        assert!(matches!(
            parse_reply(&reply(422, "bad\n")),
            Ok(Answer::Refused { status: 422, .. })
        ));
        assert!(parse_reply(b"garbage").is_err());
        assert!(parse_reply(&[0xff, b'\n']).is_err());
    }
}
