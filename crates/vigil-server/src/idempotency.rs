//! Exactly-once ingest across sender crashes: `POST /api/v1/ingest` with an `Idempotency-Key`
//! header stores a batch once. A sender that dies after Vigil stored its batch but before it
//! saw the answer sends the same batch with the same key again, and gets the first answer back
//! instead of a second copy (the `vigil agent` keys each batch by file identity and offset,
//! `vigil-client` by a hash of the batch's bytes).
//!
//! Keys are remembered in memory for [`KEEP`], at most [`MAX_KEYS`] of them (oldest forgotten
//! first); a repeat that arrives while the first request is still being stored waits for it.
//! A server restart forgets the keys: a sender crash *and* a server restart inside one request
//! can still store a batch twice.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// How long a key is remembered.
pub const KEEP: Duration = Duration::from_secs(3600);
/// Keys remembered at most.
pub const MAX_KEYS: usize = 100_000;
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 256;

/// What a key stands for.
#[derive(Clone)]
enum Entry {
    /// Being stored; the receiver turns `Some(answer)` when done, `None` if it failed.
    Pending(watch::Receiver<Option<String>>),
    /// Stored; the answer body (JSON) sent the first time.
    Done(String),
}

/// Keys and the order they arrived in (for forgetting the oldest).
type Entries = (HashMap<String, Entry>, VecDeque<(Instant, String)>);

/// Remembered keys.
#[derive(Default)]
pub struct Idempotency {
    entries: Mutex<Entries>,
}

/// What to do with a request.
pub enum Claim {
    /// First time: store it, then call [`Idempotency::finish`].
    New(watch::Sender<Option<String>>),
    /// Already stored: answer with this body.
    Done(String),
}

impl Idempotency {
    /// Claims `key`: new, or already stored (waiting for a first request still in progress).
    pub async fn claim(&self, key: &str) -> Claim {
        loop {
            let pending = {
                let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
                let (map, order) = &mut *guard;
                // Forget old keys.
                while let Some((at, k)) = order.front() {
                    if at.elapsed() < KEEP && map.len() <= MAX_KEYS {
                        break;
                    }
                    map.remove(k);
                    order.pop_front();
                }
                match map.get(key) {
                    Some(Entry::Done(answer)) => return Claim::Done(answer.clone()),
                    Some(Entry::Pending(rx)) => rx.clone(),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        map.insert(key.to_owned(), Entry::Pending(rx));
                        order.push_back((Instant::now(), key.to_owned()));
                        return Claim::New(tx);
                    }
                }
            };
            let mut rx = pending;
            // Wait for the first request to finish (or fail and be removed), then look again.
            if rx.changed().await.is_err() {
                // Its sender vanished without finishing: forget the key, so this one stores.
                let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(Entry::Pending(r)) = guard.0.get(key)
                    && r.same_channel(&rx)
                {
                    guard.0.remove(key);
                }
            }
        }
    }

    /// Records how the first request for `key` ended: `Some(answer)` stored, `None` failed (the
    /// key is forgotten so a retry stores the batch).
    pub fn finish(&self, key: &str, tx: watch::Sender<Option<String>>, answer: Option<String>) {
        {
            let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            match &answer {
                Some(a) => {
                    guard.0.insert(key.to_owned(), Entry::Done(a.clone()));
                }
                None => {
                    guard.0.remove(key);
                }
            }
        }
        let _ = tx.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_stored_once_and_a_failure_lets_the_retry_through() {
        let idem = Idempotency::default();
        let Claim::New(tx) = idem.claim("k1").await else {
            panic!("first claim is new")
        };
        idem.finish("k1", tx, Some("{\"accepted\":3}".into()));
        assert!(matches!(idem.claim("k1").await, Claim::Done(a) if a == "{\"accepted\":3}"));

        let Claim::New(tx) = idem.claim("k2").await else {
            panic!("new")
        };
        idem.finish("k2", tx, None);
        assert!(matches!(idem.claim("k2").await, Claim::New(_)));
    }

    #[tokio::test]
    async fn a_repeat_waits_for_the_first_request() {
        let idem = std::sync::Arc::new(Idempotency::default());
        let Claim::New(tx) = idem.claim("k").await else {
            panic!("new")
        };
        let waiter = {
            let idem = std::sync::Arc::clone(&idem);
            tokio::spawn(async move { idem.claim("k").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        idem.finish("k", tx, Some("done".into()));
        assert!(matches!(waiter.await.unwrap(), Claim::Done(a) if a == "done"));
    }
}
