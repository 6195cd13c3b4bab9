//! Cluster mode (docs/cluster.md): one file per concern.

pub mod query;
pub mod query_wire;
