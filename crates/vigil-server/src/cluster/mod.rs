//! Cluster mode (docs/cluster.md): this node's part in a Vigil cluster on NATS JetStream.
//!
//! One file per concern: [`auth`] (accounts, tokens and sessions shared through JetStream KV)
//! and [`health`] (`GET /api/v1/cluster` and the cluster gauges of `/metrics`).

pub mod auth;
pub mod health;
