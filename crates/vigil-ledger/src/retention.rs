//! Retention: which sealed segments may go, and the signed record that says they went.
//!
//! Pruning removes whole sealed segments from the front of the ledger, oldest first, and never
//! while a legal hold is set. Before any file is deleted a [`PruneRecord`] is signed with the
//! ledger key and appended to `prunes.log`: it names the removed range, the Merkle root of
//! everything before its end (so the group hashes kept in `tiles.dat` can still be checked), the
//! time, the reason and the segments. `vigil verify` checks the chain of records and verifies
//! what remains from there.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use vigil_event::Timestamp;

use crate::merkle::Hash;
use crate::note::parse_note;

/// First line of a pruning record note; distinguishes it from a checkpoint, whose second line
/// is a number.
const PRUNE_HEADER: &str = "vigil-prune-record/v1";

/// When sealed segments may be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Segments sealed longer ago than this are removed.
    pub max_age: Duration,
}

/// A removed segment, as listed in a pruning record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunedSegment {
    /// First sequence number.
    pub first_seq: u64,
    /// One past the last sequence number.
    pub end_seq: u64,
    /// When it was sealed.
    pub sealed: Timestamp,
}

/// A signed statement that events `start..end` were removed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneRecord {
    /// The ledger's origin (key name).
    pub origin: String,
    /// First removed sequence number (the previous record's `end`, or 0).
    pub start: u64,
    /// One past the last removed sequence number; a multiple of 256.
    pub end: u64,
    /// `MTH` of events `0..end`.
    pub root: Hash,
    /// When the pruning happened.
    pub time: Timestamp,
    /// Why (the policy applied).
    pub reason: String,
    /// Segments removed.
    pub segments: Vec<PrunedSegment>,
    /// The whole signed note, once signed or parsed.
    pub note: String,
}

impl PruneRecord {
    /// The note text to sign.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{PRUNE_HEADER}\norigin {}\nstart {}\nend {}\nroot {}\ntime {}\nreason {}\n",
            self.origin,
            self.start,
            self.end,
            B64.encode(self.root),
            self.time.to_rfc3339(),
            self.reason.replace('\n', " "),
        );
        for seg in &self.segments {
            s.push_str(&format!(
                "segment {} {} {}\n",
                seg.first_seq,
                seg.end_seq,
                seg.sealed.to_rfc3339()
            ));
        }
        s
    }

    /// Parses a signed pruning record (the signature is checked by `verify`).
    pub fn parse_note(note: &str) -> Result<PruneRecord, String> {
        let parsed = parse_note(note).map_err(|e| e.to_string())?;
        let mut lines = parsed.text.lines();
        if lines.next() != Some(PRUNE_HEADER) {
            return Err(format!("does not start with {PRUNE_HEADER}"));
        }
        let mut field = |name: &str| -> Result<String, String> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or_else(|| format!("missing `{name}` line"))
        };
        let origin = field("origin")?;
        let number = |s: String, what: &str| s.parse::<u64>().map_err(|_| format!("bad {what}"));
        let start = number(field("start")?, "start")?;
        let end = number(field("end")?, "end")?;
        let root: Hash = B64
            .decode(field("root")?)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("bad root")?;
        let time = Timestamp::parse(&field("time")?).map_err(|e| e.to_string())?;
        let reason = field("reason")?;
        let mut segments = Vec::new();
        for line in lines {
            let parts: Vec<&str> = line.split(' ').collect();
            let [kind, first, end, sealed] = parts.as_slice() else {
                return Err(format!("bad line {line:?}"));
            };
            if *kind != "segment" {
                return Err(format!("bad line {line:?}"));
            }
            segments.push(PrunedSegment {
                first_seq: first.parse().map_err(|_| "bad segment start")?,
                end_seq: end.parse().map_err(|_| "bad segment end")?,
                sealed: Timestamp::parse(sealed).map_err(|e| e.to_string())?,
            });
        }
        if start > end {
            return Err("start after end".into());
        }
        Ok(PruneRecord {
            origin,
            start,
            end,
            root,
            time,
            reason,
            segments,
            note: note.to_owned(),
        })
    }
}

/// What a pruning run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneOutcome {
    /// A legal hold is set; nothing was removed.
    Held {
        /// The hold's reason text.
        reason: String,
    },
    /// No sealed segment is old enough.
    NothingToDo,
    /// Segments were removed.
    Pruned(Box<PruneRecord>),
}

/// Parses a duration like `90d`, `12h`, `30m`, `45s`, `250ms`, `2w` or `1y` (365 days).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: add a unit (s, m, h, d, w, y)"))?;
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number followed by a unit, like 90d"))?;
    if unit == "ms" {
        return Ok(Duration::from_millis(n));
    }
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use ms, s, m, h, d, w or y)"
            ));
        }
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::NoteSigner;

    #[test]
    fn record_round_trip() {
        let signer = NoteSigner::generate("vigil/test/1").unwrap();
        let mut record = PruneRecord {
            origin: "vigil/test/1".into(),
            start: 0,
            end: 1024,
            root: [3; 32],
            time: Timestamp::from_secs(1_800_000_000),
            reason: "retention max-age 90d".into(),
            segments: vec![PrunedSegment {
                first_seq: 0,
                end_seq: 1024,
                sealed: Timestamp::from_secs(1_700_000_000),
            }],
            note: String::new(),
        };
        record.note = signer.sign(&record.to_text()).unwrap();
        let parsed = PruneRecord::parse_note(&record.note).unwrap();
        assert_eq!(parsed, record);
        assert!(signer.verifier().open(&record.note).is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("90d").unwrap(),
            Duration::from_secs(90 * 86_400)
        );
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("90").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("3 fortnights").is_err());
    }
}
