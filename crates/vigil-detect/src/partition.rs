//! Detector partitions (cluster mode, docs/cluster.md): `K` detectors each read every event,
//! and each keeps only its share of the alert groups, so a group's events all meet in one
//! place (an attack spread over nodes is still one alert) and `K` detectors share the state
//! and the alerts.
//!
//! A group belongs to partition `group_hash(rule id, group values) % K`, with a stable hash
//! (FNV-1a, 64 bits; never Rust's randomised `HashMap` hasher), so every node, every restart
//! and every version computes the same owner:
//!
//! * a **correlation**'s group: its `group-by` values (the correlation's state for that group
//!   lives only in the owning partition);
//! * a **single-event rule**'s alert group: the event's main entity (`source.ip`, else
//!   `user.name`, else `host.name`), as the alert book groups it — not the event's stream
//!   sequence: split by event, two partitions would each open an alert for one (rule, group);
//! * a **behaviour rule**'s hit: the hit's group (its `per` and new values), the same way;
//!   every partition observes every event, so their baselines agree and exactly one raises it;
//! * a **chain** (correlations feeding correlations) whose members group by the same fields
//!   hashes every member's group by the chain's smallest alert rule id, so a child's group and
//!   its parent's are in one partition; a chain whose `group-by` differ is kept whole by
//!   partition 0 (a parent's group is known only from its children's hits).
//!
//! [`DetectorPartition::WHOLE`] (`K` = 1) keeps everything: the standalone path, one
//! comparison per alert.

/// Largest number of detector partitions (a configuration error beyond).
pub const MAX_PARTITIONS: u32 = 1024;

/// One detector's share of the alert groups: partition `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectorPartition {
    index: u32,
    count: u32,
}

/// A partition that cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "detector partition {index} of {count}: need 1 ≤ count ≤ {MAX_PARTITIONS} and index < count"
)]
pub struct PartitionError {
    /// The index asked for.
    pub index: u32,
    /// The count asked for.
    pub count: u32,
}

impl Default for DetectorPartition {
    fn default() -> Self {
        DetectorPartition::WHOLE
    }
}

impl DetectorPartition {
    /// Everything (standalone, or a cluster of one detector partition).
    pub const WHOLE: DetectorPartition = DetectorPartition { index: 0, count: 1 };

    /// Partition `index` of `count`.
    pub fn new(index: u32, count: u32) -> Result<DetectorPartition, PartitionError> {
        if count == 0 || count > MAX_PARTITIONS || index >= count {
            return Err(PartitionError { index, count });
        }
        Ok(DetectorPartition { index, count })
    }

    /// Its index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// How many partitions there are.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether this keeps everything.
    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    /// The partition that keeps the group `values` of rule (or correlation) `rule_id`, of
    /// `count`.
    pub fn owner_of<'a>(
        rule_id: &str,
        values: impl IntoIterator<Item = &'a str>,
        count: u32,
    ) -> u32 {
        (group_hash(rule_id, values) % u64::from(count.max(1))) as u32
    }

    /// Whether this partition keeps the group `values` of rule (or correlation) `rule_id`.
    pub fn keeps<'a>(&self, rule_id: &str, values: impl IntoIterator<Item = &'a str>) -> bool {
        self.is_whole() || Self::owner_of(rule_id, values, self.count) == self.index
    }

    /// Whether this partition keeps what partition 0 alone keeps (chained correlations).
    pub fn keeps_unsplit(&self) -> bool {
        self.index == 0
    }
}

/// The stable hash of a group: FNV-1a over the rule id, then each value after a length
/// prefix (so `("a", "bc")` and `("ab", "c")` differ). Frozen: changing it moves groups
/// between partitions across a rolling upgrade.
pub fn group_hash<'a>(rule_id: &str, values: impl IntoIterator<Item = &'a str>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    eat(rule_id.as_bytes());
    for v in values {
        eat(v.as_bytes());
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_frozen() {
        // Computed once; a change here moves alert groups between partitions in a running
        // cluster during a rolling upgrade.
        assert_eq!(group_hash("", []), 0xa8c7_f832_281a_39c5);
        assert_eq!(
            group_hash("brute-force", ["10.0.0.1"]),
            group_hash("brute-force", ["10.0.0.1"])
        );
        assert_ne!(group_hash("r", ["a", "bc"]), group_hash("r", ["ab", "c"]));
        assert_ne!(group_hash("r", ["a"]), group_hash("s", ["a"]));
    }

    #[test]
    fn every_group_is_kept_by_exactly_one_partition() {
        for count in [1, 2, 3, 4, 7] {
            let parts: Vec<_> = (0..count)
                .map(|i| DetectorPartition::new(i, count).unwrap())
                .collect();
            let mut per = vec![0u32; count as usize];
            for n in 0..1000 {
                let ip = format!("10.0.{}.{}", n / 256, n % 256);
                let keepers: Vec<_> = parts
                    .iter()
                    .filter(|p| p.keeps("brute-force", [ip.as_str()]))
                    .collect();
                assert_eq!(keepers.len(), 1, "{ip} of {count}");
                per[keepers[0].index() as usize] += 1;
            }
            // Spread: no partition is empty or holds more than twice its share.
            for n in per {
                assert!(
                    n > 0 && n < 2 * 1000 / count,
                    "{n} of 1000 in one of {count}"
                );
            }
        }
        assert!(DetectorPartition::WHOLE.keeps("x", ["y"]));
        assert!(DetectorPartition::WHOLE.is_whole());
    }

    #[test]
    fn impossible_partitions_are_refused() {
        assert!(DetectorPartition::new(0, 0).is_err());
        assert!(DetectorPartition::new(3, 3).is_err());
        assert!(DetectorPartition::new(0, MAX_PARTITIONS + 1).is_err());
        assert_eq!(
            DetectorPartition::new(2, 3).unwrap(),
            DetectorPartition { index: 2, count: 3 }
        );
    }
}
