//! A source's learned cadence: how long it usually stays quiet between events, and whether it
//! has now been quiet for much longer (a silent source — a classic way to blind a SIEM, and
//! PCI DSS 10.7.2). Used by the report's failures section over a period, and live by the
//! server's silence watch.

use serde::Serialize;

/// A source is silent after this many times its learned gap…
pub const SILENCE_FACTOR: u64 = 4;
/// …and at least this long (seconds), by default.
pub const MIN_SILENCE_SECS: u64 = 900;
/// Gaps a source must have shown before its silence is judged.
pub const MIN_GAPS: u64 = 3;

/// Gaps between a source's consecutive events, as a histogram by ⌈log2(seconds)⌉ (bucket 0:
/// under a second; bucket k: [2^(k−1), 2^k) seconds), and its last event time.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Cadence {
    /// The histogram.
    pub gaps: [u64; 32],
    /// Events seen.
    pub events: u64,
    /// The latest event time seen (ns).
    pub last: i64,
}

impl Cadence {
    /// Counts an event at `t` (ns). An event older than the latest seen adds no gap.
    pub fn observe(&mut self, t: i64) {
        if self.events > 0 && t > self.last {
            let secs = (t - self.last).unsigned_abs() / 1_000_000_000;
            let bucket = if secs == 0 {
                0
            } else {
                (64 - secs.leading_zeros()) as usize
            };
            self.gaps[bucket.min(31)] += 1;
        }
        if self.events == 0 || t > self.last {
            self.last = t;
        }
        self.events += 1;
    }

    /// The gap (seconds, rounded up to a power of two) that `share` of the gaps do not exceed;
    /// `None` before [`MIN_GAPS`] gaps.
    pub fn gap_quantile(&self, share: f64) -> Option<u64> {
        let total: u64 = self.gaps.iter().sum();
        if total < MIN_GAPS {
            return None;
        }
        let want = (share * total as f64).ceil() as u64;
        let mut seen = 0;
        for (k, n) in self.gaps.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(if k == 0 { 1 } else { 1u64 << k });
            }
        }
        Some(1 << 31)
    }

    /// How long a silence must last to be one: `factor` × the 99th-percentile gap, at least
    /// `min_secs`; `None` while the cadence is not learned.
    pub fn tolerance(&self, factor: u64, min_secs: u64) -> Option<u64> {
        self.gap_quantile(0.99)
            .map(|gap| gap.saturating_mul(factor).max(min_secs))
    }

    /// Seconds of silence at `now` (ns) when they exceed the tolerance, else `None`.
    pub fn silent_at(&self, now: i64, factor: u64, min_secs: u64) -> Option<u64> {
        let tolerance = self.tolerance(factor, min_secs)?;
        let quiet = now.saturating_sub(self.last).max(0) as u64 / 1_000_000_000;
        (quiet > tolerance).then_some(quiet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn a_steady_source_is_silent_after_its_tolerance_and_a_bursty_one_between_bursts_is_not() {
        let mut steady = Cadence::default();
        for i in 0..100 {
            steady.observe(i * 60 * S);
        }
        // Gaps of 60 s: bucket [32, 64) → 64 s × 4 = 256 s, below the 15-minute floor.
        assert_eq!(
            steady.tolerance(SILENCE_FACTOR, MIN_SILENCE_SECS),
            Some(900)
        );
        let last = 99 * 60 * S;
        assert_eq!(steady.silent_at(last + 899 * S, 4, 900), None);
        assert_eq!(steady.silent_at(last + 901 * S, 4, 900), Some(901));

        let mut bursty = Cadence::default();
        for burst in 0..10 {
            for k in 0..5 {
                bursty.observe(burst * 7200 * S + k * S);
            }
        }
        // 40 of 45 gaps are a second, 9 are two hours: the 99th percentile is the long gap.
        let t = bursty.tolerance(4, 900).unwrap();
        assert!(t >= 4 * 7200, "{t}");
        assert_eq!(bursty.silent_at(bursty.last + 7000 * S, 4, 900), None);
    }

    #[test]
    fn nothing_is_judged_before_the_cadence_is_learned_and_old_events_add_no_gap() {
        let mut c = Cadence::default();
        c.observe(10 * S);
        c.observe(20 * S);
        assert_eq!(c.silent_at(1_000_000 * S, 4, 1), None);
        c.observe(5 * S);
        assert_eq!(c.last, 20 * S);
        assert_eq!(c.gaps.iter().sum::<u64>(), 1);
    }
}
