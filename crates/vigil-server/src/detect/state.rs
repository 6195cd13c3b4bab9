//! The detector's state: `DATA_DIR/detect/state.json` (the cursor and the alert book) and
//! its rebuild from the ledger when the file is gone or behind (DESIGN invariant 3: the alert,
//! triage and decision events in the ledger are the truth, the file a cache of them).

use std::path::Path;

use vigil_detect::alert::{AlertBook, Triage};
use vigil_event::{Event, Timestamp};
use vigil_ledger::LedgerReader;

/// What `state.json` holds.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct SavedState {
    pub(super) next_seq: u64,
    /// Each alert as its ledger event, in the canonical JSON form.
    pub(super) alerts: Vec<serde_json::Value>,
    /// Each triaged alert's history (its events carry none).
    #[serde(default)]
    pub(super) histories: std::collections::BTreeMap<u64, Vec<SavedTriage>>,
    /// The ledger's end when it was saved: alert events from there on (written after the
    /// save, before a `kill -9`) are replayed when it is loaded.
    #[serde(default)]
    pub(super) ledger_seq: u64,
}

/// One triage change in `state.json`.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct SavedTriage {
    pub(super) status: String,
    pub(super) by: String,
    pub(super) at: i64,
    pub(super) comment: String,
}

/// Reads the saved state into `book`; returns the next sequence number to evaluate and the
/// ledger's end when it was saved.
pub(super) fn load_state(path: &Path, book: &mut AlertBook) -> Result<(u64, u64), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let saved: SavedState =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let events: Vec<Event> = saved
        .alerts
        .iter()
        .filter_map(|j| Event::from_json_value(j.clone(), Timestamp::now()).ok())
        .collect();
    book.replay(&events);
    for (id, history) in saved.histories {
        let history = history
            .into_iter()
            .filter_map(|t| {
                Some(Triage {
                    status: vigil_detect::alert::Status::parse(&t.status)?,
                    by: t.by,
                    at: Timestamp::from_nanos(t.at),
                    comment: t.comment,
                })
            })
            .collect();
        book.restore_history(id, history);
    }
    Ok((saved.next_seq, saved.ledger_seq))
}

/// Replays the `vigil.alert` events of the ledger's durable events from `from` into `book`;
/// returns the durable end.
pub(super) fn replay_alert_events(
    reader: &mut LedgerReader,
    from: u64,
    book: &mut AlertBook,
) -> Result<u64, String> {
    reader.refresh().map_err(|e| e.to_string())?;
    let end = reader.end_seq();
    let needle = b"vigil.alert";
    reader
        .for_each_raw(from.max(reader.first_seq())..end, |_, raw| {
            if raw.windows(needle.len()).any(|w| w == needle)
                && let Ok(event) = Event::from_canonical(raw)
            {
                book.replay(std::iter::once(&event));
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    Ok(end)
}

/// Loads the alert book and the cursor: from `state.json` brought up to date with the alert
/// events written after it was saved, or, without a usable file, rebuilt from the ledger.
/// Returns the book, the next sequence number to evaluate, and the end of the events that
/// are only re-counted ([`AlertBook::observe_uncounted`]; 0: none).
pub(super) fn restore(
    state_path: &Path,
    reader: &mut LedgerReader,
    throttle_secs: i64,
) -> Result<(AlertBook, u64, u64), String> {
    let mut book = AlertBook::new(throttle_secs);
    let (next_seq, recount_until) = match load_state(state_path, &mut book) {
        Ok((next_seq, saved_at)) => {
            // Alerts and triage written after the save (a kill -9 came before the next
            // one): the ledger has them; the events they counted are only re-counted.
            replay_alert_events(reader, saved_at, &mut book)?;
            let counted = book.counted_through().unwrap_or(0);
            (next_seq, if counted > next_seq { counted } else { 0 })
        }
        Err(e) => {
            // No (usable) state: rebuilt from the ledger. On a first start the ledger holds
            // no alert, and detection begins with the events that arrive from now on
            // (history is for `vigil hunt`).
            if state_path.exists() {
                tracing::warn!("detection state not usable ({e}); rebuilding it from the ledger");
            }
            book = AlertBook::new(throttle_secs);
            let resume = rebuild_from_ledger(reader, &mut book)?;
            if !book.is_empty() {
                tracing::info!(
                    "detection: {} alerts rebuilt from the ledger; resuming at seq {} (re-counting until {})",
                    book.len(),
                    resume.next_seq,
                    resume.recount_until
                );
            }
            (resume.next_seq, resume.recount_until)
        }
    };
    Ok((book, next_seq, recount_until))
}

/// The book and cursor as `state.json` holds them.
pub(super) fn snapshot(book: &AlertBook, next_seq: u64, ledger_seq: u64) -> SavedState {
    let all = book.list(&Default::default());
    let histories = all
        .iter()
        .filter(|a| !a.history.is_empty())
        .map(|a| {
            let h = a.history.iter().map(|t| SavedTriage {
                status: t.status.as_str().to_owned(),
                by: t.by.clone(),
                at: t.at.as_nanos(),
                comment: t.comment.clone(),
            });
            (a.id, h.collect())
        })
        .collect();
    let alerts = all
        .into_iter()
        .map(|a| a.to_event("saved", Timestamp::now()).to_json())
        .collect();
    SavedState {
        next_seq,
        alerts,
        histories,
        ledger_seq,
    }
}

/// Where detection resumes when its state file is gone, rebuilt from the ledger (the alert
/// events Vigil wrote there are the truth; `state.json` is a cache of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The next sequence number to evaluate.
    pub next_seq: u64,
    /// Events below this were evaluated before: they only re-count throttled updates.
    pub recount_until: u64,
}

/// Rebuilds the alert book from every `vigil.alert` event in the ledger and says where to
/// resume. Every new alert is written in the batch that raised it, after the events that
/// raised it, and carries the last event it counted: so one past the latest such event
/// (`counted_through`) is where the evaluation stopped being known, and the throttled updates
/// of open alerts (counted in memory, not written one by one) are counted again from one past
/// the earliest open alert's last event. With no alert in the ledger (or only query rules'),
/// detection starts at the end, as on a first start.
pub fn rebuild_from_ledger(
    reader: &mut LedgerReader,
    book: &mut AlertBook,
) -> Result<Resume, String> {
    let end = replay_alert_events(reader, 0, book)?;
    // No alert counted an event of the ledger (none at all, or only query rules'): as on a
    // first start, detection begins at the end.
    let Some(counted) = book.counted_through() else {
        return Ok(Resume {
            next_seq: end,
            recount_until: 0,
        });
    };
    let counted = counted.min(end);
    Ok(Resume {
        next_seq: book.recount_from().unwrap_or(counted).min(counted),
        recount_until: counted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_detect::alert::{Level, RuleInfo as AlertRule};
    use vigil_ledger::{Ledger, LedgerConfig};

    fn rule(id: &str) -> AlertRule {
        AlertRule {
            id: id.into(),
            title: id.into(),
            level: Level::High,
            tags: Vec::new(),
        }
    }

    fn plain(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| {
                let mut e = Event::new(Timestamp::from_secs(i as i64));
                e.insert("message", format!("event {i}"));
                e
            })
            .collect()
    }

    /// Where a detector without `state.json` resumes: at the end with no alert (or only query
    /// rules' alerts, which count no event); else re-counting from the earliest open alert's
    /// last event up to the latest event an alert-created/updated event counted.
    #[test]
    fn the_cursor_is_recomputed_from_the_alert_events() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) = Ledger::open(dir.path(), LedgerConfig::default()).unwrap();
        let resume = |ledger: &Ledger| {
            let mut book = AlertBook::new(600);
            let r = rebuild_from_ledger(&mut ledger.reader().unwrap(), &mut book).unwrap();
            (r, book)
        };
        ledger.append(&plain(10)).unwrap();
        let (r, book) = resume(&ledger);
        assert!(book.is_empty());
        assert_eq!((r.next_seq, r.recount_until), (10, 0));

        // A query rule's alert counts no event: still the end.
        let mut live = AlertBook::new(600);
        let now = Timestamp::now();
        live.observe(&rule("q"), Vec::new(), now, None, now);
        ledger
            .append(&[live.get(1).unwrap().to_event("created", now)])
            .unwrap();
        let (r, book) = resume(&ledger);
        assert_eq!(book.len(), 1);
        assert_eq!((r.next_seq, r.recount_until), (11, 0));

        // Rule alerts opened by seq 3 and seq 7, then a throttled update by seq 9 (not written)
        // and a triage snapshot of alert 2 that counted seq 9 (it must not move the cursor).
        let g = |ip: &str| vec![("source.ip".to_owned(), ip.to_owned())];
        live.observe(&rule("r"), g("192.0.2.1"), now, Some(3), now);
        live.observe(&rule("r"), g("192.0.2.2"), now, Some(7), now);
        ledger
            .append(&[
                live.get(2).unwrap().to_event("created", now),
                live.get(3).unwrap().to_event("created", now),
            ])
            .unwrap();
        live.observe(&rule("r"), g("192.0.2.2"), now, Some(9), now);
        let change = Triage {
            status: vigil_detect::alert::Status::Acknowledged,
            by: "ana".into(),
            at: now,
            comment: String::new(),
        };
        let triaged = live.triage(3, change).unwrap().to_event("triaged", now);
        ledger.append(&[triaged]).unwrap();
        let (r, book) = resume(&ledger);
        assert_eq!(book.len(), 3);
        assert_eq!(book.get(3).unwrap().count, 2, "the triage snapshot's count");
        assert_eq!(
            (r.next_seq, r.recount_until),
            (4, 8),
            "re-count from after seq 3; new alerts known up to seq 7"
        );
    }
}
