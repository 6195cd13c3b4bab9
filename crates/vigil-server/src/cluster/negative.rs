//! The negative cache of a cluster node's auth buckets: keys a bucket answered "absent" for a
//! moment ago (an unknown API token id, an unknown session), so a client repeating a bogus or
//! revoked token, or a stale session cookie, costs one KV read per [`NEGATIVE_TTL`] rather than
//! one per request.
//!
//! Bounded: at most [`MAX_ABSENT`] keys (each a bucket key: `token.<8 hex>` or a session digest);
//! when full, the expired ones are dropped, and if none has expired the cache starts over (the
//! cost falls back to one read per request, never to unbounded memory). Only absence is
//! cached: a key this node writes (a token or session created, an account changed) or that the
//! accounts watch sees written on another node is forgotten at once, so a token created
//! anywhere works at once on every node; a deletion is never delayed (a present key is always
//! read from the bucket).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long an "absent" answer is reused.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// The most keys remembered as absent.
pub const MAX_ABSENT: usize = 10_000;

/// Keys recently found absent in one bucket.
#[derive(Debug)]
pub struct NegativeCache {
    ttl: Duration,
    max: usize,
    absent: Mutex<HashMap<String, Instant>>,
    hits: AtomicU64,
}

impl Default for NegativeCache {
    fn default() -> NegativeCache {
        NegativeCache::new(NEGATIVE_TTL, MAX_ABSENT)
    }
}

impl NegativeCache {
    /// A cache reusing an "absent" answer for `ttl`, holding at most `max` keys.
    pub fn new(ttl: Duration, max: usize) -> NegativeCache {
        NegativeCache {
            ttl,
            max: max.max(1),
            absent: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.absent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `key` was found absent less than the TTL ago (then the bucket is not asked).
    pub fn is_absent(&self, key: &str) -> bool {
        let mut map = self.map();
        match map.get(key) {
            Some(until) if Instant::now() < *until => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                true
            }
            Some(_) => {
                map.remove(key);
                false
            }
            None => false,
        }
    }

    /// Remembers that the bucket has no `key` now.
    pub fn remember(&self, key: &str) {
        let now = Instant::now();
        let mut map = self.map();
        if map.len() >= self.max && !map.contains_key(key) {
            map.retain(|_, until| now < *until);
            if map.len() >= self.max {
                map.clear();
            }
        }
        map.insert(key.to_owned(), now + self.ttl);
    }

    /// Forgets `key` (it was written: it exists now).
    pub fn forget(&self, key: &str) {
        self.map().remove(key);
    }

    /// Keys remembered now (expired ones included until looked at or pushed out).
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bucket reads saved so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_key_is_remembered_until_it_expires_or_is_written() {
        let cache = NegativeCache::new(Duration::from_millis(200), 10);
        assert!(!cache.is_absent("token.0badc0de"));
        cache.remember("token.0badc0de");
        assert!(cache.is_absent("token.0badc0de"));
        assert!(cache.is_absent("token.0badc0de"));
        assert_eq!(cache.hits(), 2);
        cache.forget("token.0badc0de");
        assert!(!cache.is_absent("token.0badc0de"), "written: asked again");
        cache.remember("token.0badc0de");
        std::thread::sleep(Duration::from_millis(250));
        assert!(!cache.is_absent("token.0badc0de"), "expired: asked again");
        assert!(cache.is_empty(), "an expired key looked at is dropped");
    }

    #[test]
    fn the_cache_never_holds_more_than_its_bound() {
        let cache = NegativeCache::new(Duration::from_secs(60), 100);
        for i in 0..10_000u32 {
            cache.remember(&format!("token.{i:08x}"));
            assert!(cache.len() <= 100);
        }
        // The newest key is remembered after a start-over.
        assert!(cache.is_absent(&format!("token.{:08x}", 9_999)));
    }
}
