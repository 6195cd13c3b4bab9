//! Sending batches to the server: one request per batch with its `Idempotency-Key`, retried
//! with backoff until acknowledged; a batch the server refuses for its content is split down
//! to the line at fault, which alone is skipped.

use std::time::Duration;

use super::Shipper;

/// Largest batch sent in one request.
pub(super) const MAX_BATCH_BYTES: u64 = 1 << 20;
/// Most lines in one batch: well under the server's cap on events per request
/// (`vigil_server::pipeline::MAX_REQUEST_EVENTS`), which refuses a larger request whole.
pub(super) const MAX_BATCH_LINES: usize = 50_000;
/// Batches the server refused as final (a 4xx other than auth and rate limits), skipped.
static REFUSED_BATCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// First and largest retry delay after a failed send.
pub(super) const BACKOFF_START: Duration = Duration::from_millis(200);
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// 64-bit FNV-1a.
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// What the agent does with a piece of a batch after a failed answer.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// The piece can pass later (the network, a proxy, the server busy or being fixed): retry.
    Retry,
    /// The piece is too large or holds something the server cannot read: send its halves.
    Split,
    /// The piece is one line the server can never take: log it, count it and skip it.
    Final,
}

/// How to go on after a non-success `status` for a piece of `lines` lines. Only an answer
/// about the content itself (413 over the body limit, 400/422 the body cannot be read) is
/// ever final, and only for a single line: a larger piece is split until the line at fault
/// is alone. Anything else — 401/403 (a token being fixed), 404/405 (a proxy or a server
/// being upgraded), 408/429, 5xx — may pass, so the piece is retried and nothing is lost.
fn refusal(status: reqwest::StatusCode, lines: usize) -> Refusal {
    match status.as_u16() {
        400 | 413 | 422 if lines > 1 => Refusal::Split,
        400 | 413 | 422 => Refusal::Final,
        _ => Refusal::Retry,
    }
}

/// The number of lines in `piece` (a last line without newline counts).
fn line_count(piece: &[u8]) -> usize {
    let newlines = piece.iter().filter(|&&b| b == b'\n').count();
    newlines + usize::from(piece.last().is_some_and(|&b| b != b'\n'))
}

/// Where to split a piece of several lines: after the newline nearest its middle, so both
/// halves hold whole lines and neither is empty.
fn split_point(piece: &[u8]) -> usize {
    let mid = piece.len() / 2;
    let before = piece[..mid]
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|i| i + 1);
    let after = piece[mid..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| mid + i + 1)
        .filter(|&i| i < piece.len());
    match (before, after) {
        (Some(b), Some(a)) => {
            if mid - b <= a - mid {
                b
            } else {
                a
            }
        }
        (Some(b), None) => b,
        (None, Some(a)) => a,
        (None, None) => piece.len(),
    }
}

/// Sends one batch until the server has acknowledged every line of it: retries with backoff,
/// honouring `Retry-After` on 429/503, while the failure may pass (see [`refusal`]). A batch
/// over the server's body limit (413) or one it cannot read (400/422) is sent again in halves,
/// each with its own idempotency key (the batch's key and the piece's place in it), down to
/// single lines; only a single line the server still refuses is logged, counted and skipped,
/// so it never blocks what follows.
pub(super) async fn send(
    shipper: &Shipper,
    url: &str,
    key: &str,
    idempotency_key: &str,
    body: Vec<u8>,
) {
    // Pieces still to send, as ranges of `body`, the next one last.
    let mut pending = vec![(0, body.len())];
    while let Some((start, end)) = pending.pop() {
        if start == end {
            continue;
        }
        let piece = &body[start..end];
        let piece_key = if (start, end) == (0, body.len()) {
            idempotency_key.to_owned()
        } else {
            format!("{idempotency_key}/{start}+{}", end - start)
        };
        let mut backoff = BACKOFF_START;
        loop {
            let result = shipper
                .client
                .post(url)
                .header(reqwest::header::AUTHORIZATION, &shipper.auth)
                .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .header("Idempotency-Key", &piece_key)
                .body(piece.to_vec())
                .send()
                .await;
            let wait = match result {
                Ok(r) if r.status().is_success() => break,
                Ok(r) => {
                    let status = r.status();
                    let retry_after = r
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = r.text().await.unwrap_or_default();
                    let lines = line_count(piece);
                    match refusal(status, lines) {
                        Refusal::Split => {
                            let mid = start + split_point(piece);
                            eprintln!(
                                "vigil: agent: {key}: server refused {lines} lines ({status}): \
                                 {}; sending them in halves",
                                text.trim()
                            );
                            pending.push((mid, end));
                            pending.push((start, mid));
                            break;
                        }
                        Refusal::Final => {
                            let n = REFUSED_BATCHES
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                                + 1;
                            eprintln!(
                                "vigil: agent: {key}: server refused the batch ({status}): {}; \
                                 skipping it ({n} batches refused since start)",
                                text.trim()
                            );
                            break;
                        }
                        Refusal::Retry => {
                            eprintln!(
                                "vigil: agent: {key}: server answered {status}: {}; retrying",
                                text.trim()
                            );
                            retry_after.unwrap_or(backoff)
                        }
                    }
                }
                Err(e) => {
                    eprintln!("vigil: agent: {key}: sending failed: {e}; retrying");
                    backoff
                }
            };
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}
