//! The books a cluster node derives from the `sys` shard besides the alert and ban books
//! ([`super::state`]): **cases** and **saved searches**. Every node follows `sys` in stream
//! order and applies the same `vigil.audit` events to the same books, so every node serves
//! the same cases and saved searches (docs/cluster.md, "Cases and saved searches").
//!
//! A change made on a node is checked against its book, appended through the door (which puts
//! `vigil.audit` events on `sys`), waited for until JetStream acknowledged it, then waited for
//! until this node's follower has applied it, and served as applied — exactly as every other
//! node (and this one after a restart) will apply it. Two nodes changing at once are ordered
//! by the stream: a change that no longer applies when its turn comes (a case id another node
//! took first, a bound reached) is skipped by every node alike; its node sees that it was not
//! applied and tries a new case id again, or answers 409.
//!
//! Only Vigil's own events reach `sys`: a sender's event claiming `event.dataset` `vigil.*` is
//! quarantined by the parsers (`external.event.dataset`) before the door sees it. Any NATS
//! client with publish rights on the cluster's subjects can write `sys` (docs/cluster.md: the
//! NATS credentials are the trust boundary).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigil_cluster::Cluster;
use vigil_detect::case::{ACTION_PREFIX, CaseBook};
use vigil_event::{Event, dataset};

use super::state::{SysProgress, sys_end};
use crate::http::saved::{MAX_TOTAL, SavedSearch};

/// How long a request waits for this node's books to apply `sys` up to a point.
pub const APPLY_WAIT: Duration = Duration::from_secs(10);

/// The saved searches every node keeps from `sys`, in the order they were saved.
#[derive(Debug, Default)]
pub struct SavedBook {
    searches: BTreeMap<u64, SavedSearch>,
    next: u64,
    /// Saved-search events that did not apply (malformed, a duplicate id, over the bound).
    pub skipped: u64,
}

impl SavedBook {
    /// Every saved search, in the order saved.
    pub fn all(&self) -> impl Iterator<Item = &SavedSearch> {
        self.searches.values()
    }

    /// The saved search `id`.
    pub fn get(&self, id: &str) -> Option<&SavedSearch> {
        self.searches.values().find(|s| s.id == id)
    }

    /// Applies one event: `saved_search_added` (with every field of the search),
    /// `saved_search_changed` (its `panel`), `saved_search_removed`; other events are ignored.
    pub fn apply(&mut self, e: &Event) {
        let Some(action) = e.get_str("event.action") else {
            return;
        };
        let text = |f: &str| e.get_str(f).map(str::to_owned);
        let flag = |f: &str| matches!(e.get(f), Some(vigil_event::Value::Bool(true)));
        let Some(id) = text("vigil.saved_search.id") else {
            return;
        };
        match action {
            "saved_search_added" => {
                let fields = (
                    text("vigil.saved_search.name"),
                    text("vigil.query"),
                    text("user.name"),
                );
                let (Some(name), Some(query), Some(owner)) = fields else {
                    self.skipped += 1;
                    return;
                };
                if self.get(&id).is_some() || self.searches.len() >= MAX_TOTAL {
                    self.skipped += 1;
                    return;
                }
                let search = SavedSearch {
                    id,
                    name,
                    query,
                    from: text("vigil.saved_search.from").unwrap_or_else(|| "-24h".into()),
                    to: text("vigil.saved_search.to").unwrap_or_else(|| "now".into()),
                    shared: flag("vigil.saved_search.shared"),
                    panel: flag("vigil.saved_search.panel"),
                    owner,
                    created: e.timestamp().to_rfc3339(),
                };
                self.next += 1;
                self.searches.insert(self.next, search);
            }
            "saved_search_changed" => {
                let panel = flag("vigil.saved_search.panel");
                match self.searches.values_mut().find(|s| s.id == id) {
                    Some(s) => s.panel = panel,
                    None => self.skipped += 1,
                }
            }
            "saved_search_removed" => {
                let before = self.searches.len();
                self.searches.retain(|_, s| s.id != id);
                if self.searches.len() == before {
                    self.skipped += 1;
                }
            }
            _ => {}
        }
    }
}

/// The cases and saved searches of a cluster node, derived from `sys`.
pub struct SharedBooks {
    /// How far this node has applied `sys` (shared with the alert and ban books).
    pub sys: Arc<SysProgress>,
    cases: Mutex<CaseBook>,
    saved: Mutex<SavedBook>,
    /// Drills: this node's runs' events and every node's reports ([`super::drills`]).
    pub drills: super::drills::DrillBook,
    /// This node makes one change at a time (its check and its apply see each other).
    changes: tokio::sync::Mutex<()>,
}

impl SharedBooks {
    /// Empty books, filled by the `sys` follower.
    pub fn new(sys: Arc<SysProgress>) -> SharedBooks {
        SharedBooks {
            sys,
            cases: Mutex::new(CaseBook::new()),
            saved: Mutex::new(SavedBook::default()),
            drills: super::drills::DrillBook::default(),
            changes: tokio::sync::Mutex::new(()),
        }
    }

    /// Applies the events of `sys` message `seq` (each case change records `seq` as its
    /// position in its timeline).
    pub fn apply(&self, seq: u64, events: &[Event]) {
        self.drills.apply(seq, events);
        for e in events.iter().filter(|e| e.is_dataset(dataset::VIGIL_AUDIT)) {
            let Some(action) = e.get_str("event.action") else {
                continue;
            };
            if action.starts_with(ACTION_PREFIX) {
                let mut book = self.cases.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(err) = book.apply(e, Some(seq)) {
                    tracing::warn!("sys message {seq}: case change not applied: {err}");
                }
            } else if action.starts_with("saved_search_") {
                self.saved
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .apply(e);
            }
        }
    }

    /// Reads the case book.
    pub fn cases<T>(&self, f: impl FnOnce(&CaseBook) -> T) -> T {
        f(&self.cases.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Reads the saved searches.
    pub fn saved<T>(&self, f: impl FnOnce(&SavedBook) -> T) -> T {
        f(&self.saved.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// This node's turn to change a book (one change at a time per node).
    pub async fn change_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.changes.lock().await
    }

    /// Waits until this node has applied `sys` through message `seq` (at most
    /// [`APPLY_WAIT`]).
    pub async fn applied_through(&self, seq: u64) -> Result<(), String> {
        let deadline = Instant::now() + APPLY_WAIT;
        while self.sys.applied() < seq {
            if Instant::now() > deadline {
                return Err(format!(
                    "this node has not applied the system shard up to message {seq} yet ({} \
                     applied); try again",
                    self.sys.applied()
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Waits until this node has applied everything `sys` holds now, so what it serves next
    /// includes every change any node made before this call.
    pub async fn current(&self, cluster: &Cluster) -> Result<(), String> {
        let end = sys_end(cluster).await?;
        self.applied_through(end).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::Timestamp;

    fn event(action: &str, id: &str, user: &str) -> Event {
        let mut e = Event::audit_builder(action).user(user).build();
        e.insert("vigil.saved_search.id", id);
        e.insert("vigil.saved_search.name", "failed logins");
        e.insert("vigil.query", "event.outcome=failure");
        e.insert("vigil.saved_search.from", "-1h");
        e.insert("vigil.saved_search.shared", false);
        e.insert("vigil.saved_search.panel", false);
        e
    }

    #[test]
    fn saved_searches_follow_their_events_in_order() {
        let mut book = SavedBook::default();
        book.apply(&event("saved_search_added", "ss-1", "vic"));
        book.apply(&event("saved_search_added", "ss-2", "ana"));
        // The same id again (a replay, another node's clash): the first stays.
        book.apply(&event("saved_search_added", "ss-1", "mallory"));
        assert_eq!(book.skipped, 1);
        assert_eq!(book.get("ss-1").unwrap().owner, "vic");
        assert_eq!(book.get("ss-1").unwrap().from, "-1h");
        assert_eq!(book.get("ss-1").unwrap().to, "now");
        let mut panel = event("saved_search_changed", "ss-2", "ana");
        panel.insert("vigil.saved_search.panel", true);
        book.apply(&panel);
        assert!(book.get("ss-2").unwrap().panel);
        book.apply(&event("saved_search_removed", "ss-1", "vic"));
        let ids: Vec<&str> = book.all().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["ss-2"]);
        // Unknown ids and events without the search's fields change nothing.
        book.apply(&event("saved_search_removed", "ss-9", "vic"));
        let mut bare = Event::audit_builder("saved_search_added").build();
        bare.insert("vigil.saved_search.id", "ss-3");
        book.apply(&bare);
        assert_eq!(book.all().count(), 1);
        assert_eq!(book.skipped, 3);
    }

    #[test]
    fn only_audit_events_change_the_books() {
        let books = SharedBooks::new(Arc::default());
        let mut foreign = Event::new(Timestamp::from_secs(1_800_000_000));
        foreign.insert("event.dataset", "syslog");
        foreign.insert("event.action", "saved_search_added");
        foreign.insert("vigil.saved_search.id", "ss-x");
        foreign.insert("vigil.saved_search.name", "n");
        foreign.insert("vigil.query", "*");
        foreign.insert("user.name", "x");
        let mut case = Event::new(Timestamp::from_secs(1_800_000_000));
        case.insert("event.dataset", "syslog");
        case.insert("event.action", "case_created");
        case.insert("vigil.case.id", 1i64);
        case.insert("vigil.case.title", "forged");
        books.apply(1, &[foreign, case]);
        assert_eq!(books.saved(|b| b.all().count()), 0);
        assert_eq!(books.cases(|b| b.len()), 0);
        books.apply(2, &[event("saved_search_added", "ss-1", "vic")]);
        assert_eq!(books.saved(|b| b.all().count()), 1);
    }
}
