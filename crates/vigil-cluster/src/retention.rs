//! What the cluster's stream may discard. Shards are copied from the stream and rebuilt from it
//! (a new owner without a local copy, a node that lost its disk): a stream that removes
//! messages before every shard has applied them loses events for good.
//!
//! - [`check`] at start-up: a stream whose retention is not `limits` (a work queue or interest
//!   stream removes messages once a consumer acked them, and Vigil's consumers do not ack) is
//!   refused; limits that discard old messages (`max_age`, `max_bytes`, `max_msgs`,
//!   `max_msgs_per_subject`) are allowed but named in warnings, which `vigil serve` logs and
//!   records in its start audit event.
//! - [`gap`] when a shard's copy (re)starts: the stream's first message is past the one after
//!   the last the copy holds, so the messages between were discarded before the copy had them.

use async_nats::jetstream::stream::{Config, RetentionPolicy};

use crate::ClusterError;

/// Refuses a stream that removes messages once consumed; names the limits that discard old
/// messages (empty: the stream keeps everything, as Vigil creates it).
pub fn check(config: &Config) -> Result<Vec<String>, ClusterError> {
    let name = &config.name;
    if config.retention != RetentionPolicy::Limits {
        return Err(ClusterError::Unsafe(format!(
            "stream {name} has {:?} retention, which removes messages once consumed; shards \
             are rebuilt from the stream, so it must use limits retention (`nats stream edit \
             {name} --retention limits` cannot change it: recreate the stream)",
            config.retention
        )));
    }
    let mut limits = Vec::new();
    if !config.max_age.is_zero() {
        limits.push(format!("max_age {}s", config.max_age.as_secs()));
    }
    if config.max_bytes > 0 {
        limits.push(format!("max_bytes {}", config.max_bytes));
    }
    if config.max_messages > 0 {
        limits.push(format!("max_msgs {}", config.max_messages));
    }
    if config.max_messages_per_subject > 0 {
        limits.push(format!(
            "max_msgs_per_subject {}",
            config.max_messages_per_subject
        ));
    }
    Ok(limits
        .into_iter()
        .map(|limit| {
            format!(
                "stream {name} discards old messages ({limit}): events not yet copied into \
                 their shard when discarded (a shard without an owner for that long, a \
                 copy rebuilt on a new node) are lost, and reported as a gap by the shard"
            )
        })
        .collect())
}

/// The stream sequences discarded before a shard's copy had them: `Some(first..=last)` when
/// the stream's first message (`first_available`) is past `applied + 1`, where `applied` is
/// the last stream sequence the copy holds (0: none). Any of the shard's messages among them
/// are lost; which (if any) is not knowable any more.
pub fn gap(applied: u64, first_available: u64) -> Option<std::ops::RangeInclusive<u64>> {
    (first_available > applied.saturating_add(1))
        .then(|| applied.saturating_add(1)..=first_available - 1)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config() -> Config {
        Config {
            name: "T_EVENTS".into(),
            retention: RetentionPolicy::Limits,
            ..Default::default()
        }
    }

    #[test]
    fn a_stream_that_keeps_everything_passes_quietly() {
        assert_eq!(check(&config()).unwrap(), Vec::<String>::new());
        // What the server reports for "no limit".
        let unlimited = Config {
            max_bytes: -1,
            max_messages: -1,
            max_messages_per_subject: -1,
            ..config()
        };
        assert!(check(&unlimited).unwrap().is_empty());
    }

    #[test]
    fn consumed_message_retention_is_refused_and_limits_are_named() {
        for retention in [RetentionPolicy::WorkQueue, RetentionPolicy::Interest] {
            let e = check(&Config {
                retention,
                ..config()
            })
            .unwrap_err();
            assert!(matches!(e, ClusterError::Unsafe(_)), "{e}");
            assert!(e.to_string().contains("limits retention"), "{e}");
        }
        let warnings = check(&Config {
            max_age: Duration::from_secs(86_400),
            max_bytes: 1 << 30,
            ..config()
        })
        .unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("max_age 86400s"), "{warnings:?}");
        assert!(warnings[1].contains("max_bytes 1073741824"), "{warnings:?}");
    }

    #[test]
    fn a_gap_is_what_was_discarded_after_the_copy() {
        assert_eq!(gap(0, 0), None, "an empty stream");
        assert_eq!(gap(0, 1), None, "a stream that kept everything");
        assert_eq!(gap(10, 11), None);
        assert_eq!(gap(10, 5), None, "the copy is past the stream's start");
        assert_eq!(gap(10, 12), Some(11..=11));
        assert_eq!(gap(0, 501), Some(1..=500), "a new copy of a trimmed stream");
    }
}
