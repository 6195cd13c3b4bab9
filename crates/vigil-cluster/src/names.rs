//! The names a cluster uses in NATS: its stream, subjects and buckets, all under the cluster's
//! name, so several clusters can share one NATS system.

use std::fmt;
use std::str::FromStr;

/// One shard of the event stream: a data partition, or the system partition that carries
/// Vigil's own events (audit, alerts, triage, rule changes, bans), which every node follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shard {
    /// Data partition `N` (0-based), chosen by [`crate::partition::partition_of`].
    Data(u32),
    /// The system partition.
    System,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shard::Data(n) => write!(f, "p{n}"),
            Shard::System => f.write_str("sys"),
        }
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        if s == "sys" {
            return Ok(Shard::System);
        }
        s.strip_prefix('p')
            .and_then(|n| n.parse().ok())
            .map(Shard::Data)
            .ok_or_else(|| format!("{s:?} is not a shard name (p0, p1, …, sys)"))
    }
}

impl Shard {
    /// Every shard of a cluster with `partitions` data partitions, the system one last.
    pub fn all(partitions: u32) -> impl Iterator<Item = Shard> {
        (0..partitions).map(Shard::Data).chain([Shard::System])
    }
}

/// The names of one cluster's NATS objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    cluster: String,
}

impl Names {
    /// The names of the cluster called `cluster` (letters, digits, `-`, `_`: checked by the
    /// configuration).
    pub fn new(cluster: &str) -> Names {
        Names {
            cluster: cluster.to_string(),
        }
    }

    /// The cluster's name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The event stream: `<CLUSTER>_EVENTS` (upper case, as JetStream streams are usually named).
    pub fn stream(&self) -> String {
        format!("{}_EVENTS", self.cluster.to_ascii_uppercase())
    }

    /// The subject of one shard's events: `<cluster>.events.<shard>`.
    pub fn shard_subject(&self, shard: Shard) -> String {
        format!("{}.events.{shard}", self.cluster)
    }

    /// The subjects the stream holds: `<cluster>.events.>`.
    pub fn stream_subjects(&self) -> String {
        format!("{}.events.>", self.cluster)
    }

    /// The shard a subject of the stream belongs to.
    pub fn shard_of_subject(&self, subject: &str) -> Option<Shard> {
        subject
            .strip_prefix(&self.cluster)?
            .strip_prefix(".events.")?
            .parse()
            .ok()
    }

    /// The bucket of partition leases (and the detector's lease): key = shard name or
    /// `detector`, value = [`crate::lease::LeaseValue`] JSON. Entries expire unless renewed.
    pub fn leases_bucket(&self) -> String {
        format!("{}_leases", self.cluster)
    }

    /// The bucket of live nodes: key = node name, value = [`crate::NodeInfo`] JSON. Entries
    /// expire unless renewed.
    pub fn nodes_bucket(&self) -> String {
        format!("{}_nodes", self.cluster)
    }

    /// The bucket of shared state that does not expire (detector cursor, settings, …).
    pub fn state_bucket(&self) -> String {
        format!("{}_state", self.cluster)
    }

    /// The subject on which `node` answers queries over the shards it owns.
    pub fn query_subject(&self, node: &str) -> String {
        format!("{}.query.{node}", self.cluster)
    }

    /// The subject on which `node` answers reads of the shards it owns: their latest
    /// checkpoint (with cosignatures), inclusion proofs and integrity summary.
    pub fn ledger_subject(&self, node: &str) -> String {
        format!("{}.ledger.{node}", self.cluster)
    }

    /// The subject on which `node` answers C2SP tlog-witness `add-checkpoint` requests from
    /// other nodes.
    pub fn witness_subject(&self, node: &str) -> String {
        format!("{}.witness.{node}", self.cluster)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_round_trip() {
        for shard in Shard::all(12) {
            assert_eq!(shard.to_string().parse::<Shard>(), Ok(shard));
        }
        assert!("p".parse::<Shard>().is_err());
        assert!("q1".parse::<Shard>().is_err());
        assert!("p-1".parse::<Shard>().is_err());
    }

    #[test]
    fn subjects_name_their_shard() {
        let names = Names::new("blue");
        assert_eq!(names.stream(), "BLUE_EVENTS");
        let subject = names.shard_subject(Shard::Data(7));
        assert_eq!(subject, "blue.events.p7");
        assert_eq!(names.shard_of_subject(&subject), Some(Shard::Data(7)));
        assert_eq!(
            names.shard_of_subject(&names.shard_subject(Shard::System)),
            Some(Shard::System)
        );
        assert_eq!(names.shard_of_subject("red.events.p7"), None);
        assert_eq!(names.shard_of_subject("blue.query.p7"), None);
    }
}
