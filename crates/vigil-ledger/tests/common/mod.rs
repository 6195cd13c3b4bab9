//! The ledger fixture the integration tests share: events whose text zstd cannot squeeze
//! much, so blocks and segments fill (and roll) after few of them, each made the same way on
//! every run.
#![allow(dead_code)]

use vigil_event::{Event, Timestamp};

/// The seed [`noisy_events`] starts from (a tag or batch number may be mixed in).
pub const SEED: u64 = 0x2545_f491_4f6c_dd1d;

/// `words` 16-hex-digit words of the xorshift64 sequence going on from `x` (which it advances):
/// text zstd cannot compress much.
pub fn noise(x: &mut u64, words: usize) -> String {
    (0..words)
        .map(|_| {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            format!("{:016x}", *x)
        })
        .collect()
}

/// `n` events one second apart from 1_800_000_000 s, event `i` with the message
/// `"{tag} {i} {noise}"`, its noise `words` words long, drawn from one sequence seeded `seed`.
pub fn noisy_events(n: u64, tag: &str, seed: u64, words: usize) -> Vec<Event> {
    let mut x = seed;
    (0..n)
        .map(|i| {
            let noise = noise(&mut x, words);
            let mut e = Event::new(Timestamp::from_secs(1_800_000_000 + i as i64));
            e.insert("message", format!("{tag} {i} {noise}"));
            e
        })
        .collect()
}
