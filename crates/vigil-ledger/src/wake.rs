//! Waking followers of the durable end: the committer signals after each group commit, so a
//! follower in the writer's process (the detector) reads new events at once instead of
//! finding them at its next poll.
//!
//! A condition variable rather than an async notifier: the followers are plain threads. The
//! committer publishes the new end (an atomic store) and then takes the lock to notify, and a
//! waiter checks the end under the lock before it sleeps, so no wake-up is lost between the
//! check and the sleep. Waits are always bounded by a timeout: a follower keeps polling as a
//! fallback.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The signal the committer raises when the durable end moves.
#[derive(Debug, Default)]
pub(crate) struct DurableWake {
    lock: Mutex<()>,
    moved: Condvar,
}

impl DurableWake {
    /// Wakes every waiter. Called after the new end is stored.
    pub(crate) fn notify(&self) {
        let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.moved.notify_all();
    }

    /// Waits until `end` is past `seq` (greater than it) or `timeout` has elapsed; returns
    /// `end` as last read.
    pub(crate) fn wait_past(&self, end: &AtomicU64, seq: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let now_end = end.load(Ordering::Acquire);
            let now = Instant::now();
            if now_end > seq || now >= deadline {
                return now_end;
            }
            held = self
                .moved
                .wait_timeout(held, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_waiter_wakes_when_the_end_moves_and_times_out_otherwise() {
        let wake = Arc::new(DurableWake::default());
        let end = Arc::new(AtomicU64::new(5));
        // Already past: no wait at all.
        assert_eq!(wake.wait_past(&end, 4, Duration::from_secs(60)), 5);
        // Not past and nothing moves: the timeout bounds the wait.
        let t = Instant::now();
        assert_eq!(wake.wait_past(&end, 5, Duration::from_millis(30)), 5);
        assert!(t.elapsed() >= Duration::from_millis(30));
        // Moved by another thread: the waiter returns long before its (long) timeout.
        let (w, e) = (Arc::clone(&wake), Arc::clone(&end));
        let mover = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            e.store(9, Ordering::Release);
            w.notify();
        });
        let t = Instant::now();
        assert_eq!(wake.wait_past(&end, 5, Duration::from_secs(600)), 9);
        assert!(t.elapsed() < Duration::from_secs(600));
        mover.join().unwrap();
    }
}
