//! Cluster mode (`vigil serve --cluster`, docs/cluster.md): the parts of a node that work
//! through NATS JetStream. One file per concern.

pub mod detect;
pub mod state;
