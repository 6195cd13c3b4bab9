//! Exactly-once ingest across sender crashes: `POST /api/v1/ingest` with an `Idempotency-Key`
//! header stores a batch once. A sender that dies after Vigil stored its batch but before it
//! saw the answer sends the same batch with the same key again, and gets the first answer back
//! instead of a second copy (the `vigil agent` keys each batch by file identity and offset,
//! `vigil-client` by a hash of the batch's bytes).
//!
//! Keys are kept per sender (the token that sent them): each sender's keys for [`KEEP`], at
//! most [`PER_SENDER_KEYS`] of them (its oldest forgotten first), so a busy or hostile sender
//! cannot push out the keys of others; and at most [`MAX_KEYS`] in all (beyond it, the oldest
//! key of the sender holding the most goes). A repeat that arrives while the first request is
//! still being stored waits for it.
//!
//! Keys survive a server crash: the first event of a keyed batch carries the key, the sender,
//! the batch's size and its parse errors in reserved fields ([`Mark`]), written in the same
//! atomic ledger append as the batch, so a batch is in the ledger if and only if its key is.
//! At start [`Idempotency::from_ledger`] rebuilds the table from the batches received in the
//! last [`KEEP`] (at most the last [`REBUILD_MAX_EVENTS`] events are read), and a retry after a
//! `kill -9` gets the first answer instead of a second copy.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value as JsonValue, json};
use tokio::sync::watch;
use vigil_event::{Event, Timestamp};

/// How long a key is remembered.
pub const KEEP: Duration = Duration::from_secs(3600);
/// Keys remembered per sender at most.
pub const PER_SENDER_KEYS: usize = 50_000;
/// Keys remembered in all at most.
pub const MAX_KEYS: usize = 200_000;
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 256;
/// Most events read back at start to rebuild the keys (the newest ones).
pub const REBUILD_MAX_EVENTS: u64 = 1_000_000;

/// Reserved field: the `Idempotency-Key` of the batch this event opens.
pub const KEY_FIELD: &str = "vigil.idempotency.key";
/// Reserved field: the token id that sent the batch.
pub const SENDER_FIELD: &str = "vigil.idempotency.sender";
/// Reserved field: events in the batch.
pub const EVENTS_FIELD: &str = "vigil.idempotency.events";
/// Reserved field: parse errors in the batch.
pub const PARSE_ERRORS_FIELD: &str = "vigil.idempotency.parse_errors";

/// The answer to a stored ingest batch: `{accepted, first_seq, last_seq, parse_errors}`.
pub fn answer(accepted: usize, range: Option<Range<u64>>, parse_errors: usize) -> JsonValue {
    json!({
        "accepted": accepted,
        "first_seq": range.as_ref().map(|r| r.start),
        "last_seq": range.as_ref().map(|r| r.end - 1),
        "parse_errors": parse_errors,
    })
}

/// What a keyed batch records in its first event.
#[derive(Debug, Clone)]
pub struct Mark {
    /// The `Idempotency-Key`.
    pub key: String,
    /// The token id that sent it.
    pub sender: String,
    /// Parse errors in the batch (part of the answer).
    pub parse_errors: usize,
}

impl Mark {
    /// Removes the reserved fields from an event that came from outside.
    pub fn strip(event: &mut Event) {
        for field in [KEY_FIELD, SENDER_FIELD, EVENTS_FIELD, PARSE_ERRORS_FIELD] {
            event.remove(field);
        }
    }

    /// Writes the mark into the batch's first event (`events` in the batch).
    pub fn record(&self, first: &mut Event, events: usize) {
        first.insert(KEY_FIELD, self.key.as_str());
        first.insert(SENDER_FIELD, self.sender.as_str());
        first.insert(EVENTS_FIELD, events as i64);
        first.insert(PARSE_ERRORS_FIELD, self.parse_errors as i64);
    }
}

/// What a key stands for.
#[derive(Clone)]
enum Entry {
    /// Being stored; the receiver turns `Some(answer)` when done, `None` if it failed.
    Pending(watch::Receiver<Option<String>>),
    /// Stored; the answer body (JSON) sent the first time.
    Done(String),
}

/// One sender's keys, with when each was claimed (the order's entries for keys claimed again
/// since are stale and skipped).
#[derive(Default)]
struct SenderKeys {
    keys: HashMap<String, (Instant, Entry)>,
    order: VecDeque<(Instant, String)>,
}

impl SenderKeys {
    /// Forgets the oldest key; false when there is none.
    fn forget_oldest(&mut self) -> bool {
        while let Some((at, key)) = self.order.pop_front() {
            if self
                .keys
                .get(&key)
                .is_some_and(|(claimed, _)| *claimed == at)
            {
                self.keys.remove(&key);
                return true;
            }
        }
        false
    }

    /// Forgets keys older than [`KEEP`] and beyond [`PER_SENDER_KEYS`].
    fn expire(&mut self) {
        while let Some((at, _)) = self.order.front() {
            if at.elapsed() < KEEP && self.keys.len() <= PER_SENDER_KEYS {
                break;
            }
            if !self.forget_oldest() {
                break;
            }
        }
        // Stale order entries (keys failed and forgotten) must not pile up.
        if self.order.len() > 2 * self.keys.len() + 1024 {
            let keys = &self.keys;
            self.order
                .retain(|(at, key)| keys.get(key).is_some_and(|(claimed, _)| claimed == at));
        }
    }
}

/// Remembered keys, per sender.
#[derive(Default)]
pub struct Idempotency {
    senders: Mutex<HashMap<String, SenderKeys>>,
}

/// What to do with a request.
pub enum Claim {
    /// First time: store it, then call [`Idempotency::finish`].
    New(watch::Sender<Option<String>>),
    /// Already stored: answer with this body.
    Done(String),
}

impl Idempotency {
    fn senders(&self) -> std::sync::MutexGuard<'_, HashMap<String, SenderKeys>> {
        self.senders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Claims `key` of `sender`: new, or already stored (waiting for a first request still in
    /// progress).
    pub async fn claim(&self, sender: &str, key: &str) -> Claim {
        loop {
            let pending = {
                let mut senders = self.senders();
                let total: usize = senders.values().map(|s| s.keys.len()).sum();
                if total >= MAX_KEYS
                    && let Some(biggest) = senders.values_mut().max_by_key(|s| s.keys.len())
                {
                    biggest.forget_oldest();
                }
                let keys = senders.entry(sender.to_owned()).or_default();
                keys.expire();
                match keys.keys.get(key) {
                    Some((_, Entry::Done(answer))) => return Claim::Done(answer.clone()),
                    Some((_, Entry::Pending(rx))) => rx.clone(),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        let now = Instant::now();
                        keys.keys.insert(key.to_owned(), (now, Entry::Pending(rx)));
                        keys.order.push_back((now, key.to_owned()));
                        return Claim::New(tx);
                    }
                }
            };
            let mut rx = pending;
            // Wait for the first request to finish (or fail and be removed), then look again.
            if rx.changed().await.is_err() {
                // Its sender vanished without finishing: forget the key, so this one stores.
                let mut senders = self.senders();
                if let Some(keys) = senders.get_mut(sender)
                    && let Some((_, Entry::Pending(r))) = keys.keys.get(key)
                    && r.same_channel(&rx)
                {
                    keys.keys.remove(key);
                }
            }
        }
    }

    /// Records how the first request for `key` of `sender` ended: `Some(answer)` stored,
    /// `None` failed (the key is forgotten so a retry stores the batch).
    pub fn finish(
        &self,
        sender: &str,
        key: &str,
        tx: watch::Sender<Option<String>>,
        answer: Option<String>,
    ) {
        {
            let mut senders = self.senders();
            if let Some(keys) = senders.get_mut(sender) {
                match &answer {
                    Some(a) => {
                        if let Some(entry) = keys.keys.get_mut(key) {
                            entry.1 = Entry::Done(a.clone());
                        }
                    }
                    None => {
                        keys.keys.remove(key);
                    }
                }
            }
        }
        let _ = tx.send(answer);
    }

    /// The keys of batches stored in the last [`KEEP`], read back from the ledger (at most its
    /// newest [`REBUILD_MAX_EVENTS`] events): what a server that crashed had promised.
    pub fn from_ledger(data_dir: &Path) -> Result<Idempotency, vigil_ledger::LedgerError> {
        let idem = Idempotency::default();
        let mut reader = match vigil_ledger::LedgerReader::open(data_dir) {
            Ok(r) => r,
            Err(vigil_ledger::LedgerError::NotInitialized { .. }) => return Ok(idem),
            Err(e) => return Err(e),
        };
        let now = Timestamp::now();
        let keep = i64::try_from(KEEP.as_nanos()).unwrap_or(i64::MAX);
        let since = now.as_nanos().saturating_sub(keep);
        let end = reader.end_seq();
        // Events are stored roughly in the order received: find the first one received within
        // KEEP by bisection, then read on from there.
        let (mut lo, mut hi) = (
            reader
                .first_seq()
                .max(end.saturating_sub(REBUILD_MAX_EVENTS)),
            end,
        );
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let received = reader.read_event(mid).map(|e| received(&e))?;
            if received < since {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        // A minute's slack for events appended a little out of receive order.
        let start = lo.saturating_sub(60_000).max(reader.first_seq());
        let marker = KEY_FIELD.as_bytes();
        let mut found = Vec::new();
        reader.for_each_raw(start..end, |seq, raw| {
            if raw.windows(marker.len()).any(|w| w == marker)
                && let Ok(event) = Event::from_canonical(raw)
            {
                found.push((seq, event));
            }
            Ok(())
        })?;
        let mut senders = idem.senders();
        for (seq, event) in found {
            let at = received(&event);
            let (Some(key), Some(sender), Some(n), Some(parse_errors)) = (
                event.get_str(KEY_FIELD),
                event.get_str(SENDER_FIELD),
                event.get(EVENTS_FIELD).and_then(|v| v.as_i64()),
                event.get(PARSE_ERRORS_FIELD).and_then(|v| v.as_i64()),
            ) else {
                continue;
            };
            // A batch lies inside the ledger: a count reaching past its end is no batch of
            // Vigil's (and would overflow the range below).
            if at < since || n < 1 || n as u64 > end.saturating_sub(seq) {
                continue;
            }
            let age = Duration::from_nanos(now.as_nanos().saturating_sub(at).max(0) as u64);
            let claimed = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
            let body = answer(
                n as usize,
                Some(seq..seq + n as u64),
                parse_errors.max(0) as usize,
            )
            .to_string();
            let keys = senders.entry(sender.to_owned()).or_default();
            keys.keys
                .insert(key.to_owned(), (claimed, Entry::Done(body)));
            keys.order.push_back((claimed, key.to_owned()));
        }
        for keys in senders.values_mut() {
            keys.order.make_contiguous().sort();
            keys.expire();
        }
        // The global cap, as `claim` keeps it: the oldest keys of the sender holding the most.
        let mut total: usize = senders.values().map(|s| s.keys.len()).sum();
        while total > MAX_KEYS {
            let forgot = senders
                .values_mut()
                .max_by_key(|s| s.keys.len())
                .is_some_and(SenderKeys::forget_oldest);
            if !forgot {
                break;
            }
            total -= 1;
        }
        drop(senders);
        Ok(idem)
    }

    /// Keys remembered for `sender`.
    pub fn len_of(&self, sender: &str) -> usize {
        self.senders().get(sender).map_or(0, |s| s.keys.len())
    }
}

/// When an event was received (`vigil.received`), else its time, in nanoseconds.
fn received(event: &Event) -> i64 {
    event
        .get_str("vigil.received")
        .and_then(|t| Timestamp::parse(t).ok())
        .unwrap_or(event.timestamp())
        .as_nanos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_stored_once_and_a_failure_lets_the_retry_through() {
        let idem = Idempotency::default();
        let Claim::New(tx) = idem.claim("t1", "k1").await else {
            panic!("first claim is new")
        };
        idem.finish("t1", "k1", tx, Some("{\"accepted\":3}".into()));
        assert!(matches!(idem.claim("t1", "k1").await, Claim::Done(a) if a == "{\"accepted\":3}"));
        // Another sender's key of the same name is its own.
        assert!(matches!(idem.claim("t2", "k1").await, Claim::New(_)));

        let Claim::New(tx) = idem.claim("t1", "k2").await else {
            panic!("new")
        };
        idem.finish("t1", "k2", tx, None);
        let Claim::New(tx) = idem.claim("t1", "k2").await else {
            panic!("a failed key is forgotten")
        };
        idem.finish("t1", "k2", tx, Some("ok".into()));
        assert!(matches!(idem.claim("t1", "k2").await, Claim::Done(a) if a == "ok"));
    }

    #[tokio::test]
    async fn keys_are_read_back_from_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) =
            vigil_ledger::Ledger::open(dir.path(), vigil_ledger::LedgerConfig::default()).unwrap();
        let event = |msg: &str, received: Timestamp| {
            let mut e = Event::new(received);
            e.insert("message", msg);
            e.insert("vigil.received", received.to_rfc3339());
            e
        };
        let old = Timestamp::from_nanos(Timestamp::now().as_nanos() - 2 * 3600 * 1_000_000_000);
        let mut stale = vec![event("stale", old)];
        Mark {
            key: "old-key".into(),
            sender: "t1".into(),
            parse_errors: 0,
        }
        .record(&mut stale[0], 1);
        ledger.append(&stale).unwrap();
        ledger.append(&[event("noise", Timestamp::now())]).unwrap();
        let mut batch = vec![
            event("a", Timestamp::now()),
            event("b", Timestamp::now()),
            event("c", Timestamp::now()),
        ];
        Mark {
            key: "k1".into(),
            sender: "t1".into(),
            parse_errors: 1,
        }
        .record(&mut batch[0], 3);
        let range = ledger.append(&batch).unwrap();
        ledger.close().unwrap();

        let idem = Idempotency::from_ledger(dir.path()).unwrap();
        let Claim::Done(body) = idem.claim("t1", "k1").await else {
            panic!("the key is known after a restart")
        };
        assert_eq!(body, answer(3, Some(range), 1).to_string());
        assert!(
            matches!(idem.claim("t2", "k1").await, Claim::New(_)),
            "keys are per sender"
        );
        assert!(
            matches!(idem.claim("t1", "old-key").await, Claim::New(_)),
            "a key older than KEEP is forgotten"
        );
    }

    #[tokio::test]
    async fn a_repeat_waits_for_the_first_request() {
        let idem = std::sync::Arc::new(Idempotency::default());
        let Claim::New(tx) = idem.claim("t", "k").await else {
            panic!("new")
        };
        let waiter = {
            let idem = std::sync::Arc::clone(&idem);
            tokio::spawn(async move { idem.claim("t", "k").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        idem.finish("t", "k", tx, Some("done".into()));
        assert!(matches!(waiter.await.unwrap(), Claim::Done(a) if a == "done"));
    }

    #[tokio::test]
    async fn a_flood_from_one_sender_keeps_the_keys_of_others() {
        let idem = Idempotency::default();
        let Claim::New(tx) = idem.claim("quiet", "precious").await else {
            panic!("new")
        };
        idem.finish("quiet", "precious", tx, Some("first answer".into()));
        for i in 0..PER_SENDER_KEYS + 100 {
            let key = format!("noise-{i}");
            let Claim::New(tx) = idem.claim("noisy", &key).await else {
                panic!("new")
            };
            idem.finish("noisy", &key, tx, Some("n".into()));
        }
        assert!(idem.len_of("noisy") <= PER_SENDER_KEYS + 1);
        assert!(
            matches!(idem.claim("noisy", "noise-0").await, Claim::New(_)),
            "the noisy sender's oldest key went"
        );
        assert!(
            matches!(idem.claim("quiet", "precious").await, Claim::Done(a) if a == "first answer"),
            "another sender's key stays"
        );
    }
}
