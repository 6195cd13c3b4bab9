//! Cluster mode (docs/cluster.md): the parts of `vigil serve --cluster` that need the server.
//!
//! * [`shards`]: the shards this node owns (leases with fencing, balancing) and their workers
//!   ([`shard_worker`]), which copy the stream into one ledger and index per shard.

pub mod shard_worker;
pub mod shards;
