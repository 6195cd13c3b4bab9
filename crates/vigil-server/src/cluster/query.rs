//! Queries in cluster mode: any node answers a query over every shard by asking each shard's
//! owner over NATS request/reply and merging the partial results
//! ([`vigil_query::distributed`]).
//!
//! - The coordinator ([`fan_out`], [`search`]) reads the owners from the leases bucket, sends
//!   each owner node ONE request for all the shards it owns (`names.query_subject(node)`,
//!   JSON `{query, limits, shards}`), waits at most a timeout, merges, and names the shards
//!   that are missing: no owner, the owner did not answer in time, or no longer owns it.
//! - The responder ([`Responder::start`]) on every node runs the shard part of the query on
//!   each requested shard it owns (through [`ShardSearch`]) and replies per shard, in chunks
//!   under the servers' `max_payload`, to the request's inbox.
//!
//! Bounds: a request is at most [`MAX_REQUEST_BYTES`]; one shard's answer at most
//! [`MAX_SHARD_REPLY_BYTES`] and all of them together [`MAX_TOTAL_REPLY_BYTES`] (past either,
//! the shard is named as failed); a node runs at most [`MAX_CONCURRENT`] shard queries at once
//! (a shard waiting longer than 10 s for a slot is answered "busy") and holds at most
//! [`MAX_QUEUED`] requests; the coordinator waits at most its timeout, and only a shard's owner
//! (as the coordinator asked it) can answer for it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value as Json, json};
use tokio::sync::Semaphore;
use vigil_cluster::{Cluster, Shard};
use vigil_query::{Limits, Pipeline, QueryResult, parse, plan};

use super::query_wire::{limits_from_wire, limits_to_wire, result_from_wire, result_to_wire};

/// The longest query request a responder reads.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// The most bytes one shard's answer may take on the wire (about twice the memory limit of a
/// result, for the JSON around the values).
pub const MAX_SHARD_REPLY_BYTES: usize = 2 * vigil_query::exec::MAX_RESULT_BYTES + (1 << 20);
/// The most bytes a coordinator keeps of all shards' answers to one query together.
pub const MAX_TOTAL_REPLY_BYTES: usize = 4 * vigil_query::exec::MAX_RESULT_BYTES;
/// Shard queries one node runs at once.
pub const MAX_CONCURRENT: usize = 4;
/// Requests a node holds at once (running or waiting for a slot); more are not answered, and
/// their coordinators name the shards as not answering in time.
pub const MAX_QUEUED: usize = 64;
/// How long a coordinator waits for the shards' answers by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The shards this node holds, as the query responder sees them (engineer B's shard set
/// implements it; tests use events in memory).
pub trait ShardSearch: Send + Sync + 'static {
    /// The shards this node owns now (it holds their lease and their data).
    fn owned(&self) -> Vec<Shard>;
    /// Runs `pipeline` over `shard`'s events (blocking: called on a blocking thread).
    fn run(&self, shard: Shard, pipeline: &Pipeline, limits: Limits)
    -> Result<QueryResult, String>;
}

/// Why a cluster query failed as a whole (a shard that fails is named in the result instead).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query does not parse.
    #[error("{0}")]
    Parse(String),
    /// NATS refused a request or a subscription.
    #[error("NATS: {0}")]
    Nats(String),
    /// The merge of the shards' answers did not finish.
    #[error("merging the shards' answers failed: {0}")]
    Merge(String),
}

/// The lease value the coordinator reads (`vigil_cluster::lease::LeaseValue` once merged).
#[derive(Debug, serde::Deserialize)]
pub(super) struct Lease {
    pub(super) node: String,
}

/// Answers a query over the whole cluster (what `/api/v1/search` runs in cluster mode).
pub async fn search(
    cluster: &Cluster,
    query: &str,
    limits: Limits,
) -> Result<QueryResult, QueryError> {
    fan_out(cluster, query, limits, DEFAULT_TIMEOUT).await
}

/// Asks the owners of every shard, waits at most `timeout`, merges. Shards without an owner,
/// whose owner did not answer in time, failed, or no longer owns them are named in
/// [`QueryResult::missing_shards`] and in the message.
pub async fn fan_out(
    cluster: &Cluster,
    query: &str,
    limits: Limits,
    timeout: Duration,
) -> Result<QueryResult, QueryError> {
    let pipeline = parse(query).map_err(|e| QueryError::Parse(e.to_string()))?;
    let plan = plan(&pipeline);
    let shards = cluster.settings().shards();
    let mut missing: BTreeMap<Shard, String> = BTreeMap::new();
    let mut by_node: BTreeMap<String, Vec<Shard>> = BTreeMap::new();
    for shard in &shards {
        match owner(cluster, *shard).await {
            Some(lease) => by_node.entry(lease.node).or_default().push(*shard),
            None => {
                missing.insert(*shard, "no owner".into());
            }
        }
    }

    let client = cluster.client();
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(format!("{inbox}.>"))
        .await
        .map_err(|e| QueryError::Nats(e.to_string()))?;
    let names = &cluster.settings().names;
    for (node, owned) in &by_node {
        let request = json!({
            "query": query,
            "limits": limits_to_wire(&limits),
            "shards": owned.iter().map(Shard::to_string).collect::<Vec<_>>(),
        });
        let sent = client
            .publish_with_reply(
                names.query_subject(node),
                format!("{inbox}.{node}"),
                request.to_string().into_bytes().into(),
            )
            .await;
        if let Err(e) = sent {
            for s in owned {
                missing.insert(*s, format!("asking {node}: {e}"));
            }
        }
    }
    let _ = client.flush().await;

    let mut pending: BTreeMap<Shard, Vec<u8>> = by_node
        .values()
        .flatten()
        .filter(|s| !missing.contains_key(s))
        .map(|s| (*s, Vec::new()))
        .collect();
    let mut parts = Vec::new();
    let mut received = 0usize;
    let deadline = tokio::time::Instant::now() + timeout;
    while !pending.is_empty() {
        let msg = match tokio::time::timeout_at(deadline, replies.next()).await {
            Ok(Some(msg)) => msg,
            Ok(None) | Err(_) => break,
        };
        let Some((header, body)) = split_frame(&msg.payload) else {
            // A status instead of an answer (no responders): the node is not listening.
            if msg.status.is_some()
                && let Some(node) = msg.subject.as_str().strip_prefix(&format!("{inbox}."))
                && let Some(owned) = by_node.get(node)
            {
                for s in owned {
                    if pending.remove(s).is_some() {
                        missing.insert(*s, format!("{node} does not answer queries"));
                    }
                }
            }
            continue;
        };
        let Some(shard) = header
            .get("shard")
            .and_then(Json::as_str)
            .and_then(|s| s.parse::<Shard>().ok())
        else {
            continue;
        };
        // Only the shard's owner answers for it (the reply subject names the node asked).
        let asked_node = msg.subject.as_str().strip_prefix(&format!("{inbox}."));
        let from_owner = asked_node
            .and_then(|node| by_node.get(node))
            .is_some_and(|owned| owned.contains(&shard));
        let Some(buffer) = pending.get_mut(&shard).filter(|_| from_owner) else {
            continue;
        };
        if let Some(error) = header.get("error").and_then(Json::as_str) {
            pending.remove(&shard);
            missing.insert(shard, clip(error));
            continue;
        }
        if buffer.len() + body.len() > MAX_SHARD_REPLY_BYTES {
            pending.remove(&shard);
            missing.insert(shard, "its answer was too large".into());
            continue;
        }
        if received + body.len() > MAX_TOTAL_REPLY_BYTES {
            pending.remove(&shard);
            missing.insert(shard, "the shards' answers together were too large".into());
            continue;
        }
        received += body.len();
        buffer.extend_from_slice(body);
        if header.get("last").and_then(Json::as_bool) != Some(true) {
            continue;
        }
        let bytes = pending.remove(&shard).unwrap_or_default();
        match serde_json::from_slice::<Json>(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|j| result_from_wire(&j))
        {
            Ok(part) => parts.push(part),
            Err(e) => {
                missing.insert(shard, format!("its answer does not decode: {}", clip(&e)));
            }
        }
    }
    drop(replies);
    for shard in pending.into_keys() {
        missing.insert(shard, "no answer in time".into());
    }
    for (shard, why) in &missing {
        tracing::warn!(%shard, why, "a shard is missing from a cluster query");
    }
    let missing: Vec<(String, String)> = missing
        .into_iter()
        .map(|(shard, why)| (shard.to_string(), why))
        .collect();
    tokio::task::spawn_blocking(move || plan.merge(parts, limits, missing))
        .await
        .map_err(|e| QueryError::Merge(e.to_string()))
}

/// The current owner of `shard`, from the leases bucket.
pub(super) async fn owner(cluster: &Cluster, shard: Shard) -> Option<Lease> {
    let bytes = cluster.leases().get(shard.to_string()).await.ok()??;
    serde_json::from_slice::<Lease>(&bytes).ok()
}

/// At most 300 characters of a message from another node.
fn clip(s: &str) -> String {
    s.chars().take(300).collect()
}

/// A reply frame: a JSON header line (`{"shard", "last"}` or `{"shard", "error"}`), a newline,
/// then bytes of the shard's typed-JSON result.
fn frame(header: &Json, body: &[u8]) -> Vec<u8> {
    let mut out = header.to_string().into_bytes();
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

fn split_frame(payload: &[u8]) -> Option<(Json, &[u8])> {
    let nl = payload.iter().position(|b| *b == b'\n')?;
    let header = serde_json::from_slice(&payload[..nl]).ok()?;
    Some((header, &payload[nl + 1..]))
}

/// The query responder of one node.
pub struct Responder {
    task: tokio::task::JoinHandle<()>,
}

impl Responder {
    /// Subscribes to this node's query subject and answers requests over the shards `shards`
    /// owns, until dropped or [`Responder::stop`]ped.
    pub async fn start(
        cluster: &Cluster,
        shards: Arc<dyn ShardSearch>,
    ) -> Result<Responder, QueryError> {
        let client = cluster.client().clone();
        let subject = cluster.settings().names.query_subject(cluster.node());
        let mut requests = client
            .subscribe(subject)
            .await
            .map_err(|e| QueryError::Nats(e.to_string()))?;
        // Room for a header line under the server's limit.
        let chunk = cluster.max_payload().saturating_sub(1024).max(1024);
        let slots = Arc::new(Semaphore::new(MAX_CONCURRENT));
        let queue = Arc::new(Semaphore::new(MAX_QUEUED));
        let task = tokio::spawn(async move {
            while let Some(msg) = requests.next().await {
                let Some(reply) = msg.reply.clone() else {
                    continue;
                };
                let Ok(ticket) = Arc::clone(&queue).try_acquire_owned() else {
                    tracing::warn!("query requests beyond {MAX_QUEUED} at once are dropped");
                    continue;
                };
                let (client, shards, slots) =
                    (client.clone(), Arc::clone(&shards), Arc::clone(&slots));
                tokio::spawn(async move {
                    let send = |shard: String, answer: Answer| {
                        let (client, reply) = (client.clone(), reply.clone());
                        Box::pin(async move {
                            for payload in frames(&shard, answer, chunk) {
                                if client.publish(reply.clone(), payload.into()).await.is_err() {
                                    return;
                                }
                            }
                            let _ = client.flush().await;
                        }) as futures_util::future::BoxFuture<'static, ()>
                    };
                    answer(&msg.payload, shards, slots, send).await;
                    drop(ticket);
                });
            }
        });
        Ok(Responder { task })
    }

    /// Stops answering.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One shard's answer: its result as typed-JSON bytes, or why there is none.
type Answer = Result<Vec<u8>, String>;

/// How long a shard query waits for one of the node's [`MAX_CONCURRENT`] slots before it is
/// answered "busy" (well under the coordinator's [`DEFAULT_TIMEOUT`]).
const SLOT_WAIT: Duration = Duration::from_secs(10);

/// Runs a request: the shard part of its query on each requested shard this node owns, the
/// shards at once, each answer published as soon as it is ready.
async fn answer(
    payload: &[u8],
    shards: Arc<dyn ShardSearch>,
    slots: Arc<Semaphore>,
    send: impl Fn(String, Answer) -> futures_util::future::BoxFuture<'static, ()>,
) {
    let request = match parse_request(payload) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("a query request was refused: {e}");
            return;
        }
    };
    let (pipeline, limits, asked) = match request {
        (Ok(p), limits, asked) => (p, limits, asked),
        (Err(e), _, asked) => {
            for s in asked {
                send(s, Err(e.clone())).await;
            }
            return;
        }
    };
    let plan = plan(&pipeline);
    let owned: BTreeSet<Shard> = shards.owned().into_iter().collect();
    let runs = asked.into_iter().map(|name| {
        let shard = match name.parse::<Shard>() {
            Ok(s) if owned.contains(&s) => Ok(s),
            Ok(_) => Err("not owned by this node".to_string()),
            Err(e) => Err(e),
        };
        let (shards, slots, part) = (Arc::clone(&shards), Arc::clone(&slots), plan.shard.clone());
        let limits = plan.shard_limits(limits);
        let send = &send;
        async move {
            let answer = match shard {
                Ok(shard) => run_one(shards, slots, shard, part, limits).await,
                Err(e) => Err(e),
            };
            send(name, answer).await;
        }
    });
    futures_util::future::join_all(runs).await;
}

/// Runs the shard part on one shard in a slot, off the runtime.
async fn run_one(
    shards: Arc<dyn ShardSearch>,
    slots: Arc<Semaphore>,
    shard: Shard,
    part: Pipeline,
    limits: Limits,
) -> Answer {
    let permit = match tokio::time::timeout(SLOT_WAIT, slots.acquire_owned()).await {
        Ok(Ok(permit)) => permit,
        _ => return Err("the node is busy with other queries".into()),
    };
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let r = shards.run(shard, &part, limits)?;
        let bytes = result_to_wire(&r).to_string().into_bytes();
        if bytes.len() > MAX_SHARD_REPLY_BYTES {
            return Err(format!(
                "its answer ({} MiB) is over the reply limit",
                bytes.len() >> 20
            ));
        }
        Ok(bytes)
    })
    .await
    .map_err(|e| format!("the shard query failed: {e}"))?
}

/// A request read: the pipeline (or why it does not parse), the limits, the shards asked for.
type Request = (Result<Pipeline, String>, Limits, Vec<String>);

/// Reads a request, or says why it is refused.
fn parse_request(payload: &[u8]) -> Result<Request, String> {
    if payload.len() > MAX_REQUEST_BYTES {
        return Err(format!("{} bytes is over the request limit", payload.len()));
    }
    let j: Json = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    let query = j.get("query").and_then(Json::as_str).ok_or("no query")?;
    let limits = limits_from_wire(
        j.get("limits").ok_or("no limits")?,
        vigil_query::exec::MAX_ROWS,
    )?;
    let asked: Vec<String> = j
        .get("shards")
        .and_then(Json::as_array)
        .ok_or("no shards")?
        .iter()
        .filter_map(|s| s.as_str().map(clip))
        .take(4096)
        .collect();
    Ok((parse(query).map_err(|e| e.to_string()), limits, asked))
}

/// One shard's answer as reply frames of at most `chunk` body bytes each.
fn frames(shard: &str, answer: Answer, chunk: usize) -> Vec<Vec<u8>> {
    match answer {
        Err(e) => vec![frame(&json!({"shard": shard, "error": e}), &[])],
        Ok(bytes) => {
            let pieces: Vec<&[u8]> = if bytes.is_empty() {
                vec![&[]]
            } else {
                bytes.chunks(chunk).collect()
            };
            let n = pieces.len();
            pieces
                .into_iter()
                .enumerate()
                .map(|(i, p)| frame(&json!({"shard": shard, "last": i + 1 == n}), p))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_splits_into_frames_that_join_back() {
        let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let framed = frames("p3", Ok(body.clone()), 1000);
        assert_eq!(framed.len(), 10);
        let mut joined = Vec::new();
        for (i, f) in framed.iter().enumerate() {
            let (header, bytes) = split_frame(f).unwrap();
            assert_eq!(header["shard"], "p3");
            assert_eq!(header["last"], i == 9);
            joined.extend_from_slice(bytes);
        }
        assert_eq!(joined, body);
        let error = frames("sys", Err("not owned".into()), 1000);
        let (header, rest) = split_frame(&error[0]).unwrap();
        assert_eq!(
            (header["error"].as_str(), rest.len()),
            (Some("not owned"), 0)
        );
    }

    #[test]
    fn bad_requests_are_refused() {
        assert!(parse_request(b"not json").is_err());
        assert!(parse_request(br#"{"query": "*"}"#).is_err());
        assert!(parse_request(&vec![b' '; MAX_REQUEST_BYTES + 1]).is_err());
        let (pipeline, limits, asked) = parse_request(
            br#"{"query": "* | stats", "limits": {"max_rows": 99999999999, "now": 5}, "shards": ["p0", 7]}"#,
        )
        .unwrap();
        assert!(pipeline.is_err());
        assert_eq!(limits.max_rows, vigil_query::exec::MAX_ROWS);
        assert_eq!(asked, ["p0"]);
    }
}
