//! The C2SP `tlog-witness` wire format (<https://c2sp.org/tlog-witness>): the `add-checkpoint`
//! request body and the answers, as pure functions. Used over HTTP (`POST
//! /witness/add-checkpoint`) and, in cluster mode, over NATS request/reply with the same bodies.
//!
//! Request: `old <size>\n`, up to 63 consistency proof lines (base64 hashes), an empty line, then
//! the checkpoint as a signed note. Answers: 200 with cosignature lines; 409 with the witness's
//! size (`text/x.tlog.size`); 422 when the proof does not verify; 404 for an unknown log; 403 when
//! no signature by a known key verifies; 400 when malformed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use vigil_ledger::merkle::Hash;

/// Largest request body accepted (a checkpoint with a few signatures and 63 proof lines is
/// about 4 KiB).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// Most consistency proof lines a request may carry (the specification's bound).
pub const MAX_PROOF_LINES: usize = 63;
/// Content type of a 409 answer's body.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// A parsed `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size the submitter believes the witness last cosigned (0: none).
    pub old: u64,
    /// Consistency proof from `old` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The checkpoint note (text, blank line, signature lines).
    pub note: String,
}

/// Why a witness refused a checkpoint, with the status code the protocol gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// 400: the request is malformed.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// 413: the body is larger than [`MAX_REQUEST_BYTES`].
    #[error("request body larger than {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    /// 404: the witness does not know the checkpoint's origin.
    #[error("unknown log {0:?}")]
    UnknownLog(String),
    /// 403: no signature by a key the witness trusts for the origin verifies.
    #[error("no valid signature by the key known for {origin:?}: {reason}")]
    Forbidden {
        /// The checkpoint's origin.
        origin: String,
        /// What was wrong.
        reason: String,
    },
    /// 409: `old` is not the size the witness last cosigned, or the same size with another root.
    #[error("conflict: the witness last cosigned size {latest} ({reason})")]
    Conflict {
        /// The size of the latest checkpoint the witness cosigned for the origin.
        latest: u64,
        /// What was wrong.
        reason: String,
    },
    /// 422: the consistency proof does not verify.
    #[error("consistency proof does not verify: {0}")]
    BadProof(String),
    /// 500: the witness could not persist its state (nothing was cosigned).
    #[error("witness state not saved: {0}")]
    Internal(String),
}

impl WitnessError {
    /// The HTTP status code of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            WitnessError::Malformed(_) => 400,
            WitnessError::TooLarge => 413,
            WitnessError::UnknownLog(_) => 404,
            WitnessError::Forbidden { .. } => 403,
            WitnessError::Conflict { .. } => 409,
            WitnessError::BadProof(_) => 422,
            WitnessError::Internal(_) => 500,
        }
    }

    /// The response body: the size line for a conflict, the message otherwise.
    pub fn body(&self) -> String {
        match self {
            WitnessError::Conflict { latest, .. } => format!("{latest}\n"),
            other => format!("{other}\n"),
        }
    }

    /// The short name of the refusal, for audit events and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            WitnessError::Malformed(_) => "malformed",
            WitnessError::TooLarge => "too_large",
            WitnessError::UnknownLog(_) => "unknown_log",
            WitnessError::Forbidden { .. } => "forbidden",
            WitnessError::Conflict { .. } => "conflict",
            WitnessError::BadProof(_) => "bad_proof",
            WitnessError::Internal(_) => "internal",
        }
    }
}

fn malformed(what: &str) -> WitnessError {
    WitnessError::Malformed(what.to_owned())
}

/// Parses an `add-checkpoint` body. Bounded: the body size, the proof lines, each line.
pub fn parse_request(body: &[u8]) -> Result<AddCheckpoint, WitnessError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(WitnessError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| malformed("body is not UTF-8"))?;
    let (head, note) = text
        .split_once("\n\n")
        .ok_or_else(|| malformed("no empty line before the checkpoint"))?;
    let mut lines = head.split('\n');
    let old_line = lines.next().unwrap_or_default();
    let old = old_line
        .strip_prefix("old ")
        .ok_or_else(|| malformed("the first line must be `old <size>`"))?;
    if old.is_empty()
        || (old.len() > 1 && old.starts_with('0'))
        || !old.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(malformed("old size is not a canonical decimal"));
    }
    let old: u64 = old
        .parse()
        .map_err(|_| malformed("old size does not fit 64 bits"))?;
    let mut proof = Vec::new();
    for line in lines {
        if proof.len() == MAX_PROOF_LINES {
            return Err(malformed("more than 63 consistency proof lines"));
        }
        let hash: Hash = B64
            .decode(line)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| malformed("a proof line is not a base64 SHA-256 hash"))?;
        proof.push(hash);
    }
    if note.is_empty() {
        return Err(malformed("no checkpoint after the empty line"));
    }
    Ok(AddCheckpoint {
        old,
        proof,
        note: note.to_owned(),
    })
}

/// The `add-checkpoint` body for `note` with a proof from size `old`.
pub fn format_request(old: u64, proof: &[Hash], note: &str) -> String {
    let mut body = format!("old {old}\n");
    for h in proof {
        body.push_str(&B64.encode(h));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    body
}

/// Parses a 409 body: the witness's latest size.
pub fn parse_size(body: &str) -> Option<u64> {
    let n = body.strip_suffix('\n').unwrap_or(body);
    if n.is_empty() || (n.len() > 1 && n.starts_with('0')) || !n.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    n.parse().ok()
}

/// Splits a 200 body into cosignature lines (each `— name base64`, newline-terminated);
/// `None` when it is not that.
pub fn parse_cosignatures(body: &str) -> Option<Vec<String>> {
    if body.is_empty() || !body.ends_with('\n') || body.len() > MAX_REQUEST_BYTES {
        return None;
    }
    let lines: Vec<String> = body.lines().map(|l| format!("{l}\n")).collect();
    let well_formed = lines.iter().all(|l| {
        l.strip_prefix("\u{2014} ")
            .and_then(|rest| rest.trim_end().split_once(' '))
            .is_some_and(|(name, sig)| !name.is_empty() && B64.decode(sig).is_ok())
    });
    well_formed.then_some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &str = "example.com/log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u{2014} example.com/log AAAAAAAA\n";

    #[test]
    fn request_round_trip() {
        let proof = vec![[1u8; 32], [2u8; 32]];
        let body = format_request(3, &proof, NOTE);
        assert!(body.starts_with("old 3\nAQEB"));
        let parsed = parse_request(body.as_bytes()).unwrap();
        assert_eq!(
            parsed,
            AddCheckpoint {
                old: 3,
                proof,
                note: NOTE.into()
            }
        );
        let empty = parse_request(format_request(0, &[], NOTE).as_bytes()).unwrap();
        assert_eq!((empty.old, empty.proof.len()), (0, 0));
    }

    #[test]
    fn malformed_requests_are_400_and_oversized_413() {
        for bad in [
            "".to_string(),
            format!("old 01\n\n{NOTE}"),
            format!("old -1\n\n{NOTE}"),
            format!("old 1 \n\n{NOTE}"),
            format!("new 1\n\n{NOTE}"),
            format!("old 1\nnot-base64!\n\n{NOTE}"),
            format!("old 1\nAQEB\n\n{NOTE}"),
            "old 1\n\n".to_string(),
            format!("old 99999999999999999999\n\n{NOTE}"),
            format!(
                "old 1\n{}\n{NOTE}",
                format!("{}\n", B64.encode([0u8; 32])).repeat(64)
            ),
        ] {
            let e = parse_request(bad.as_bytes()).unwrap_err();
            assert_eq!(e.status(), 400, "{bad:?}: {e}");
        }
        assert_eq!(
            parse_request(&[0xff, b'\n', b'\n']).unwrap_err().status(),
            400
        );
        let huge = vec![b'a'; MAX_REQUEST_BYTES + 1];
        assert_eq!(parse_request(&huge).unwrap_err(), WitnessError::TooLarge);
    }

    #[test]
    fn answers() {
        assert_eq!(parse_size("42\n"), Some(42));
        assert_eq!(parse_size("042\n"), None);
        assert_eq!(parse_size("x\n"), None);
        let c = WitnessError::Conflict {
            latest: 7,
            reason: "r".into(),
        };
        assert_eq!((c.status(), c.body()), (409, "7\n".to_string()));
        assert_eq!(
            parse_cosignatures("\u{2014} w.example/1 AAAA\n\u{2014} w.example/2 AAAA\n")
                .map(|l| l.len()),
            Some(2)
        );
        assert_eq!(parse_cosignatures("hello\n"), None);
        assert_eq!(parse_cosignatures(""), None);
    }
}
