//! The memory of behaviour rules (`new_terms`, `outlier`, `peer_outlier`) in `vigil serve`:
//! kept across rule reloads (a rule whose definition did not change keeps its state), saved
//! beside the cursor in `DATA_DIR/detect/behaviour.bin` ([`vigil_detect::behaviour::persist`],
//! versioned), and rebuilt from the ledger when it is missing or behind (DESIGN invariant 3).
//!
//! **Backfill**: a rule that starts without state — added to a server that already holds
//! history, or changed — first learns every event of the ledger within its history window up
//! to the detector's cursor, without alerting, so it flags only what is new after its addition.
//! A saved state behind the cursor (a crash between the cursor's save and this file's) learns
//! the events between the two.
//!
//! **Cluster mode** has no file: each detector partition's holder checkpoints its lane's
//! state into the cluster's object store ([`vigil_cluster::behaviour`]) after a cursor save,
//! at most every [`crate::cluster::detect::BEHAVIOUR_EVERY`] and at a clean stop ([`DetectService::checkpoint_behaviour`]);
//! a node taking the partition over restores the newest one ([`DetectService::restore_behaviour`])
//! and feeds it only the events from the checkpoint's position on, so the state it resumes
//! with is the one a holder that never moved would have. A missing checkpoint (the cluster's
//! first holder, rules added since) starts empty as before; a damaged or hostile one is
//! refused (logged, audited) and the partition starts blind. Rules changed since the checkpoint
//! start empty (no backfill in cluster mode: `prepare` without a path).

use std::path::Path;

use vigil_detect::behaviour::{Engine, persist};
use vigil_detect::{Evaluator, RuleSet, Scratch};
use vigil_event::Timestamp;

use super::lane::Lane;
use super::{DetectService, EventSource};
use crate::cluster::detect::{BehaviourLoad, ClusterRole};

/// How many times a takeover retries reading a behaviour checkpoint JetStream did not answer
/// for before the partition starts blind.
const LOAD_TRIES: u32 = 3;

/// What a takeover does about the partition's behaviour state ([`DetectService::restore_behaviour`]).
pub(super) enum Restore {
    /// Resume with this state, valid at this position.
    State(Engine, u64),
    /// Start empty (no checkpoint, no behaviour rules, or one refused).
    Empty,
    /// JetStream did not answer: try the takeover again.
    Retry,
}

impl DetectService {
    /// Cluster mode, at a takeover of `role`'s partition: the newest behaviour checkpoint,
    /// checked (`end`: one past the stream's end). A refused one is logged and audited (the
    /// `behaviour_checkpoint_refused` audit event, through the door to `sys`) and the partition
    /// starts blind; a read JetStream did not answer is tried again ([`LOAD_TRIES`] takeovers).
    pub(super) fn restore_behaviour(
        &self,
        role: &ClusterRole,
        end: u64,
        epoch: u64,
        tries: &mut u32,
    ) -> Restore {
        if self.rules().set.behaviours().is_empty() {
            return Restore::Empty;
        }
        let k = role.partition().index();
        let (loaded, forged) = role.load_behaviour(end, epoch);
        for why in forged {
            self.refuse_behaviour(k, &why, false);
        }
        let why = match loaded {
            BehaviourLoad::None => {
                tracing::info!(
                    "detection: no behaviour checkpoint of detector partition {k}: its behaviour \
                     rules start empty"
                );
                return Restore::Empty;
            }
            BehaviourLoad::Failed(e) if *tries < LOAD_TRIES => {
                *tries += 1;
                tracing::warn!("detection: {e}; the takeover is tried again");
                return Restore::Retry;
            }
            BehaviourLoad::Failed(e) => e,
            BehaviourLoad::Refused(why) => why,
            BehaviourLoad::Found {
                epoch,
                position,
                state,
            } => match persist::decode(&state) {
                Ok((engine, at)) if at == position => {
                    tracing::info!(
                        "detection: detector partition {k} resumes its behaviour rules from the \
                         checkpoint of epoch {epoch} ({} entries)",
                        engine.stats().entries
                    );
                    return Restore::State(engine, position);
                }
                Ok((_, at)) => format!(
                    "the behaviour checkpoint of epoch {epoch} holds a state of position {at} \
                     under a header of position {position}"
                ),
                Err(e) => format!("the behaviour checkpoint of epoch {epoch}: {e}"),
            },
        };
        self.refuse_behaviour(k, &why, true);
        Restore::Empty
    }

    /// Logs and audits a refused behaviour checkpoint of detector partition `k` (`blind`: and
    /// no other one is used: the partition's behaviour rules start empty).
    fn refuse_behaviour(&self, k: u32, why: &str, blind: bool) {
        let message = format!(
            "behaviour checkpoint of detector partition {k} refused: {why}{}",
            if blind {
                "; its behaviour rules start blind (first-seen rules learn again, outlier \
                 baselines are rebuilt)"
            } else {
                ""
            }
        );
        tracing::error!("detection: {message}");
        self.progress
            .errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut audit = vigil_event::Event::audit_builder("behaviour_checkpoint_refused")
            .category(vigil_event::Category::Configuration)
            .event_type(vigil_event::EventType::Change)
            .outcome(vigil_event::Outcome::Failure)
            .build();
        audit.insert("vigil.alert.partition", i64::from(k));
        audit.insert("message", message);
        // Not waited for: the takeover goes on; the door retries as for any audit event.
        let _ = self
            .door
            .submit_own(vec![audit], vigil_ingest::Origin::Audit);
    }

    /// Cluster mode, after the cursors were saved: checkpoints the behaviour state of every
    /// lane that detects, whose state is valid at its cursor (not while it re-reads what its
    /// restored state holds), when due (every [`crate::cluster::detect::BEHAVIOUR_EVERY`]; at
    /// once with `force`). Returns whether a lane's state moved past its last checkpoint and
    /// is not saved yet (the caller saves again later, also when nothing new comes: an idle
    /// stream must not leave the last stretch out of the checkpoint).
    pub(super) fn checkpoint_behaviour(&self, lanes: &[Lane], force: bool) -> bool {
        let mut pending = false;
        for lane in lanes {
            let (Some(role), Some((_, evaluator))) = (&lane.role, &lane.scratch) else {
                continue;
            };
            if evaluator.behaviour().is_empty() || lane.next_seq < lane.behaviour_from {
                continue;
            }
            match role.behaviour_due(lane.next_seq, force) {
                None => continue,
                Some(false) => {
                    pending = true;
                    continue;
                }
                Some(true) => {}
            }
            let bytes = persist::encode(evaluator.behaviour(), lane.next_seq);
            if let Err(e) = role.save_behaviour(lane.next_seq, bytes) {
                tracing::error!(
                    "detection: checkpointing the behaviour state of detector partition {}: {e}",
                    role.partition().index()
                );
            }
        }
        pending
    }
}

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
