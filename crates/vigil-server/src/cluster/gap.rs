//! A shard copy that finds the stream discarded messages it never had (docs/cluster.md,
//! "Stream retention"): said loudly — an error in the log, `vigil_cluster_stream_gaps_total`
//! in `/metrics`, and a `ledger_stream_gap` audit event stored in the shard's own ledger where
//! the hole is — instead of resuming silently after it.
//!
//! Which of the discarded messages were the shard's is not knowable any more: every copy that
//! starts behind the stream's first message reports the gap, including a shard that had no
//! message in it (the `sys` shard of a quiet cluster, say).
//!
//! The audit event carries `vigil.stream.seq` = the last discarded sequence, so the copy
//! resumes after the gap and a restart does not report the same gap again.

use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};

use vigil_cluster::{Cluster, Shard};
use vigil_event::{Category, Event, EventType, Outcome, field};

/// Gaps found by this process's shard copies since it started (`/metrics`).
pub static STREAM_GAPS: AtomicU64 = AtomicU64::new(0);

/// The gap before the copy of `shard` that holds the stream up to `applied`, if the stream no
/// longer has the messages after it (`None` also when the stream cannot be asked: the next
/// start of the copy asks again).
pub async fn find(cluster: &Cluster, shard: Shard, applied: u64) -> Option<RangeInclusive<u64>> {
    match cluster.first_available_seq().await {
        Ok(first) => vigil_cluster::retention::gap(applied, first),
        Err(e) => {
            tracing::warn!(%shard, "the stream's first sequence not read: {e}");
            None
        }
    }
}

/// Counts and logs a gap, and the event that records it in the shard's ledger.
pub fn report(shard: Shard, gap: &RangeInclusive<u64>) -> Event {
    STREAM_GAPS.fetch_add(1, Ordering::Relaxed);
    let message = format!(
        "STREAM GAP in shard {shard}: stream messages {}..={} were discarded by the stream's \
         limits before this copy of the shard had them: the shard's events among them, if \
         any, are lost (check the stream's max_age / max_bytes / max_msgs)",
        gap.start(),
        gap.end()
    );
    tracing::error!(%shard, first = gap.start(), last = gap.end(), "{message}");
    let mut audit = Event::audit_builder("ledger_stream_gap")
        .category(Category::Configuration)
        .event_type(EventType::Change)
        .outcome(Outcome::Failure)
        .build();
    audit.insert("vigil.shard", shard.to_string());
    audit.insert(
        "vigil.gap.first",
        i64::try_from(*gap.start()).unwrap_or(i64::MAX),
    );
    audit.insert(
        "vigil.gap.last",
        i64::try_from(*gap.end()).unwrap_or(i64::MAX),
    );
    audit.insert(
        field::VIGIL_STREAM_SEQ,
        i64::try_from(*gap.end()).unwrap_or(i64::MAX),
    );
    audit.insert("message", message);
    audit
}

/// The `/metrics` lines of the gaps found.
pub fn metrics() -> String {
    format!(
        "# HELP vigil_cluster_stream_gaps_total Times a shard copy found stream messages discarded before it had them (events possibly lost; see the log and the shard's ledger_stream_gap audit events).\n\
         # TYPE vigil_cluster_stream_gaps_total counter\nvigil_cluster_stream_gaps_total {}\n",
        STREAM_GAPS.load(Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_is_recorded_where_the_copy_resumes() {
        let before = STREAM_GAPS.load(Ordering::Relaxed);
        let event = report(Shard::Data(3), &(11..=40));
        assert!(STREAM_GAPS.load(Ordering::Relaxed) > before);
        assert_eq!(event.get_str("event.action"), Some("ledger_stream_gap"));
        assert_eq!(event.get_str("event.outcome"), Some("failure"));
        assert_eq!(event.get_str("vigil.shard"), Some("p3"));
        let int = |k: &str| event.get(k).and_then(|v| v.as_i64());
        assert_eq!(int("vigil.gap.first"), Some(11));
        assert_eq!(int(field::VIGIL_STREAM_SEQ), Some(40));
        assert!(event.get_str("message").unwrap().contains("11..=40"));
        assert!(metrics().contains("vigil_cluster_stream_gaps_total "));
    }
}
