//! The memory of behaviour rules (`new_terms`, `outlier`, `peer_outlier`) in `vigil serve`:
//! kept across rule reloads (a rule whose definition did not change keeps its state), saved
//! beside the cursor in `DATA_DIR/detect/behaviour.bin` ([`vigil_detect::behaviour::persist`],
//! versioned), and rebuilt from the ledger when it is missing or behind (DESIGN invariant 3).
//!
//! **Backfill**: a rule that starts without state — added to a server that already holds
//! history, or changed — first learns every event of the ledger within its history window up
//! to the detector's cursor, without alerting, so it flags only what is new after its addition.
//! A saved state behind the cursor (a crash between the cursor's save and this file's) learns
//! the events between the two. Cluster mode keeps the state across reloads only (no file, no
//! backfill yet: `prepare` without a path).

use std::path::Path;

use vigil_detect::behaviour::{Engine, persist};
use vigil_detect::{Evaluator, RuleSet, Scratch};
use vigil_event::Timestamp;

use super::EventSource;

/// What [`prepare`] did, for the log.
#[derive(Debug, Default)]
pub(super) struct Prepared {
    /// Rules that started without state and were backfilled.
    pub backfilled: usize,
    /// Ledger events read to rebuild or backfill.
    pub events_read: u64,
}

/// Gives `evaluator` (new, for `set`) the behaviour state of the rules that did not change —
/// from `previous` (the evaluator of the rules before a reload, valid at `cursor`) or else the
/// saved file at `path` — and rebuilds from `reader` what is missing, up to `cursor`
/// (exclusive). Without `path` (cluster mode) it only takes over `previous`.
pub(super) fn prepare(
    evaluator: &mut Evaluator,
    set: &RuleSet,
    previous: Option<Engine>,
    path: Option<&Path>,
    reader: &mut dyn EventSource,
    cursor: u64,
) -> Result<Prepared, String> {
    if set.behaviours().is_empty() {
        return Ok(Prepared::default());
    }
    if path.is_none() {
        if let Some(previous) = previous {
            evaluator.behaviour_mut().adopt(previous);
        }
        return Ok(Prepared::default());
    }
    let (old, valid_at) = match (previous, path) {
        (Some(e), _) => (Some(e), cursor),
        (None, Some(path)) => match load(path) {
            Ok(Some((e, seq))) if seq <= cursor => (Some(e), seq),
            Ok(Some((_, seq))) => {
                tracing::warn!(
                    "behaviour state {} is ahead of the detector's cursor ({seq} > {cursor}); rebuilding it from the ledger",
                    path.display()
                );
                (None, cursor)
            }
            Ok(None) => (None, cursor),
            Err(e) => {
                tracing::warn!("{e}; rebuilding the behaviour state from the ledger");
                (None, cursor)
            }
        },
        (None, None) => (None, cursor),
    };
    let engine = evaluator.behaviour_mut();
    let fresh: Vec<usize> = match old {
        Some(old) => engine.adopt(old),
        None => (0..engine.len()).collect(),
    };
    let behind: Vec<usize> = (0..engine.len()).filter(|i| !fresh.contains(i)).collect();
    let mut done = Prepared {
        backfilled: fresh.len(),
        events_read: 0,
    };
    if fresh.is_empty() && valid_at >= cursor {
        return Ok(done);
    }
    let from_time = Engine::history_start(set, Timestamp::now());
    let mut scratch = Scratch::new(set);
    let mut pos = if fresh.is_empty() { valid_at } else { 0 };
    while pos < cursor {
        let (n, next) = reader.read(pos, (cursor - pos).min(10_000), &mut |seq, event| {
            if seq >= cursor {
                return;
            }
            if !fresh.is_empty() && event.timestamp() >= from_time {
                engine.learn(set, &mut scratch, event, Some(&fresh));
            }
            if seq >= valid_at && !behind.is_empty() {
                engine.learn(set, &mut scratch, event, Some(&behind));
            }
        })?;
        done.events_read += n;
        if next <= pos {
            break;
        }
        pos = next;
    }
    Ok(done)
}

/// Reads the saved state, if there is one.
fn load(path: &Path) -> Result<Option<(Engine, u64)>, String> {
    match std::fs::read(path) {
        Ok(bytes) => persist::decode(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Saves `engine`'s state, valid at cursor `next_seq` (written to a temporary file and
/// renamed, so a reader never sees half of it).
pub(super) fn save(path: &Path, engine: &Engine, next_seq: u64) -> Result<(), String> {
    let bytes = persist::encode(engine, next_seq);
    let tmp = path.with_extension("bin.tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}
