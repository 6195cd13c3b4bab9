//! The number of detector partitions `K` (`[cluster] detector_partitions`,
//! `--detector-partitions`; docs/cluster.md, "Detection") is the cluster's, not a node's: two
//! nodes that split the alert groups differently would each keep a group the other also keeps
//! (two alerts for one attack) or neither would (none). So, like the stream's `partitions`, it
//! is fixed when first recorded — the key [`KEY`] in the state bucket, which does not expire,
//! written by compare-and-set (create) by the first node that starts with it — and every start
//! checks its own setting against the record and refuses to run on a difference.
//!
//! A cluster created before the setting existed has no record: its first start with this
//! version records its `K` (1 by default, the one `detector` lease it already ran).
//!
//! `K` = 1 is the one `detector` lease; with `K` > 1 every node runs one lease task per
//! partition and holds its share of them ([`super::detect`], [`super::detect_balance`]).

use std::time::{Duration, Instant};

use vigil_cluster::Cluster;

/// The key in the state bucket holding the cluster's detector partitions (a decimal number).
pub const KEY: &str = "detector.partitions";

/// How long a start keeps trying a NATS failure reading or writing the record.
const PATIENCE: Duration = Duration::from_secs(30);

/// Whether a node configured with `configured` detector partitions may run in a cluster whose
/// record says `recorded` (`None`: no record yet). A record that is not a number in
/// 1..=1024 is refused (someone with access to the bucket wrote it; nothing guesses).
pub fn agree(recorded: Option<&[u8]>, configured: u32) -> Result<(), String> {
    let Some(bytes) = recorded else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(bytes);
    let value = text
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|k| (1..=vigil_detect::partition::MAX_PARTITIONS).contains(k));
    match value {
        Some(k) if k == configured => Ok(()),
        Some(k) => Err(format!(
            "the cluster runs {k} detector partition(s), this node is configured with \
             {configured} (detector_partitions is fixed when the cluster first records it)"
        )),
        None => Err(format!(
            "the state bucket's {KEY} holds {:?}, not a number of detector partitions \
             (1-{}); remove or correct it",
            text.chars().take(64).collect::<String>(),
            vigil_detect::partition::MAX_PARTITIONS
        )),
    }
}

/// Checks this node's `configured` detector partitions against the cluster's record, and
/// records it when there is none.
pub async fn check(cluster: &Cluster, configured: u32) -> Result<(), String> {
    let state = cluster.state();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let attempt = async {
            let recorded = state
                .entry(KEY)
                .await
                .map_err(|e| Transient(format!("{KEY}: {e}")))?
                .filter(|e| e.operation == async_nats::jetstream::kv::Operation::Put)
                .map(|e| e.value);
            agree(recorded.as_deref(), configured).map_err(Fatal)?;
            if recorded.is_none() {
                // Another node may record at the same moment: a failed create is read again.
                state
                    .create(KEY, configured.to_string().into_bytes().into())
                    .await
                    .map_err(|e| Transient(format!("{KEY}: {e}")))?;
            }
            Ok(())
        };
        match attempt.await {
            Ok(()) => return Ok(()),
            Err(Fatal(e)) => return Err(e),
            Err(Transient(e)) if Instant::now() < deadline => {
                tracing::warn!("detector partitions: {e}; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(Transient(e)) => return Err(e),
        }
    }
}

/// A failure of [`check`]'s attempt.
enum Failure {
    /// Tried again until [`PATIENCE`] (NATS, or a create that lost a race).
    Transient(String),
    /// Refused.
    Fatal(String),
}
use Failure::{Fatal, Transient};

#[cfg(test)]
mod tests {
    use super::agree;

    #[test]
    fn the_record_must_match_the_setting() {
        assert!(agree(None, 1).is_ok());
        assert!(agree(None, 3).is_ok(), "no record: the first start records");
        assert!(agree(Some(b"1"), 1).is_ok());
        assert!(agree(Some(b" 3\n"), 3).is_ok());
        let e = agree(Some(b"1"), 3).unwrap_err();
        assert!(
            e.contains("runs 1") && e.contains("configured with 3"),
            "{e}"
        );
        let e = agree(Some(b"4"), 1).unwrap_err();
        assert!(e.contains("runs 4"), "{e}");
    }

    #[test]
    fn a_forged_record_is_refused_not_guessed() {
        for forged in [
            &b"0"[..],
            b"1025",
            b"-1",
            b"three",
            b"",
            &[0xff, 0xfe],
            &[b'9'; 4096],
        ] {
            let e = agree(Some(forged), 1).unwrap_err();
            assert!(e.contains("not a number"), "{forged:?}: {e}");
            assert!(e.len() < 400, "the message is bounded: {}", e.len());
        }
    }
}
