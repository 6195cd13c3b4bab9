//! Vigil's response to what detection finds: getting an alert to a person ([`notify`]:
//! webhooks, email, syslog/CEF), banning the address behind it ([`decisions`]: the ban book,
//! responders, escalation, expiry, and the CrowdSec LAPI decision logic that bouncers read),
//! sending every signed checkpoint off the host ([`checkpoint_sink`]), and witnessing:
//! cosigning other logs' checkpoints and having this one's cosigned ([`witness`]).
//!
//! No HTTP server here: `vigil-server` wires these into its tasks and its axum handlers call
//! them. Every ledger write of this crate (ban and unban decisions, notifications given up,
//! checkpoint copies that failed) is one `Ledger::append` call site per module.

pub mod checkpoint_sink;
pub mod decisions;
pub mod lapi;
pub mod notify;
pub mod witness;
