//! The standing adversarial suite: what a hostile network sender, a low-privilege user or someone
//! with disk access would try against a real `vigil serve` (or the real CLI), one module per
//! attack surface. Every test here failed on the code it was written against and asserts the
//! behaviour Vigil promises in `docs/security.md`. New features extend it: add a module for the
//! surface they open.
//!
//! Run just this suite with `cargo test -p vigil --test adversarial`.

#[path = "../common/mod.rs"]
mod common;

mod anonymous_flood;
mod bans;
mod batches;
mod cases;
mod connections;
mod csrf;
mod disk_full;
mod empty_datagrams;
mod forged_events;
mod idempotency;
mod ledger_tamper;
mod masking;
mod oversize;
mod query_limits;
mod rules_listing;
mod search_memory;
mod search_turns;
mod tokens;
mod undone_writes;
