//! Cluster mode (docs/cluster.md): one file per concern.

pub mod witness;
