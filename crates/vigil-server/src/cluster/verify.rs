//! `POST /api/v1/integrity/verify?shard=p3` on a cluster node: the whole-ledger verification
//! of one shard (every event hashed again, every checkpoint recomputed and its signature
//! checked, as `vigil verify --data-dir DATA/shards/p3` does), run by the shard's owner on its
//! own copy and relayed by the node asked ([`super::integrity::ask`] with
//! [`super::integrity::Read::Verify`]).
//!
//! An owner runs one verification at a time (a second, for any of its shards, is a 409 at
//! once: a full read of a shard must not run twice beside ingest); the node asked waits for
//! the answer at most [`VERIFY_TIMEOUT`]. The result is the standalone one (`ok`, `events`,
//! `message`) plus `shard` and `node`; the node asked records it as a `ledger_verify` audit
//! event naming the shard.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use vigil_ledger::{LedgerError, VerifyReport};

use super::integrity::Answer;

/// How long the node asked waits for a shard's verification.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(600);

/// Whether this process runs a shard verification now (one at a time per owner).
static VERIFYING: AtomicBool = AtomicBool::new(false);

/// The turn to verify (or to compute a report), given back when dropped.
pub(super) struct Turn;

impl Turn {
    pub(super) fn take() -> Option<Turn> {
        (!VERIFYING.swap(true, Ordering::SeqCst)).then_some(Turn)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        VERIFYING.store(false, Ordering::SeqCst);
    }
}

/// What a verification found, as the API says it: intact or not, the events hashed, and a
/// sentence (the first problem when not intact).
pub fn summarize(report: Result<VerifyReport, LedgerError>) -> (bool, u64, String) {
    match report {
        Ok(r) if r.is_intact() => (
            true,
            r.events,
            format!(
                "intact: {} events hashed, {} checkpoints recomputed and their signatures checked{}",
                r.events,
                r.checkpoints_verified,
                if r.needs_attention() {
                    format!(
                        "; BUT {} recovery record(s) and {} unvouched key rotation(s) are on record (see `vigil verify`)",
                        r.recoveries.len(),
                        r.rotations.iter().filter(|k| !k.vouched).count()
                    )
                } else {
                    String::new()
                }
            ),
        ),
        Ok(r) => (
            false,
            r.events,
            r.problems
                .first()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "verification failed".into()),
        ),
        Err(e) => (false, 0, e.to_string()),
    }
}

/// The owner's side (blocking): verifies the shard copy in `dir`, or 409 while another
/// verification runs on this node.
pub fn run(dir: &Path) -> Answer {
    let Some(_turn) = Turn::take() else {
        return (
            409,
            json!({"error": "a shard verification is running on this shard's owner; try again when it ends"}),
        );
    };
    let (ok, events, message) = summarize(vigil_ledger::verify(
        dir,
        &vigil_ledger::VerifyOptions::default(),
        &mut |_, _| {},
    ));
    (200, json!({"ok": ok, "events": events, "message": message}))
}

/// `POST /api/v1/integrity/verify` on a cluster node: `shard` verified by its owner (400
/// without one: each shard is its own ledger), recorded as a `ledger_verify` audit event by
/// this node.
pub async fn route(
    cluster: &vigil_cluster::Cluster,
    ingest: &crate::pipeline::Ingest,
    shard: Option<String>,
    by: &str,
    peer: std::net::IpAddr,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(shard) = shard else {
        return crate::http::error(
            axum::http::StatusCode::BAD_REQUEST,
            "a cluster node keeps one ledger per shard: name it, as in ?shard=p0 (each shard is \
             verified by its owner)",
        );
    };
    let (status, mut body) = super::integrity::ask(
        cluster,
        &super::integrity::Read::Verify {
            shard: shard.clone(),
        },
    )
    .await;
    if status != 200 {
        let message = body["error"].as_str().unwrap_or("no answer").to_owned();
        let status = axum::http::StatusCode::from_u16(status)
            .unwrap_or(axum::http::StatusCode::SERVICE_UNAVAILABLE);
        return crate::http::error(status, message);
    }
    let ok = body["ok"].as_bool() == Some(true);
    body["at"] = json!(vigil_event::Timestamp::now().to_rfc3339());
    body["by"] = json!(by);
    let mut e = crate::audit::by(
        "ledger_verify",
        vigil_event::Category::Configuration,
        vigil_event::EventType::Info,
        if ok {
            vigil_event::Outcome::Success
        } else {
            vigil_event::Outcome::Failure
        },
        by,
        Some(peer),
    );
    e.insert(
        "message",
        format!(
            "ledger verification of shard {shard} (on {}): {}",
            body["node"].as_str().unwrap_or("?"),
            body["message"].as_str().unwrap_or("")
        ),
    );
    crate::audit::append(ingest, e);
    axum::Json(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_copy_is_verified_once_at_a_time_and_damage_is_found() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let (ledger, _) =
                vigil_ledger::Ledger::open(tmp.path(), vigil_ledger::LedgerConfig::default())
                    .unwrap();
            let events: Vec<_> = (0..20)
                .map(|i| {
                    let mut e = vigil_event::Event::new(vigil_event::Timestamp::from_secs(i));
                    e.insert("message", format!("login {i}"));
                    e
                })
                .collect();
            ledger.append(&events).unwrap();
            ledger.checkpoint().unwrap();
            ledger.close().unwrap();
        }
        let (status, body) = run(tmp.path());
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["ok"], true, "{body}");
        assert_eq!(body["events"], 20);

        // While one runs, a second is refused at once.
        let held = Turn::take().unwrap();
        let (status, body) = run(tmp.path());
        assert_eq!(status, 409, "{body}");
        drop(held);

        // Someone with disk access changes one byte of a stored block: found, not intact.
        let paths = vigil_ledger::files::LedgerPaths::new(tmp.path());
        let (_, segment) = vigil_ledger::files::list_segments(&paths)
            .unwrap()
            .into_iter()
            .next()
            .expect("a segment");
        let block = vigil_ledger::files::scan_segment(&segment).unwrap().blocks[0];
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[block.offset as usize + vigil_ledger::format::BLOCK_HEADER_LEN + 10] ^= 0x01;
        std::fs::write(&segment, bytes).unwrap();
        let (status, body) = run(tmp.path());
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["ok"], false, "{body}");

        // No ledger there at all: an answer, not a panic.
        let empty = tempfile::tempdir().unwrap();
        let (_, body) = run(empty.path());
        assert_eq!(body["ok"], false, "{body}");
    }
}
