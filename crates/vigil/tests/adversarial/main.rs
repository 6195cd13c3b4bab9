//! The standing adversarial suite: what a hostile network sender, a low-privilege user or someone
//! with disk access would try against a real `vigil serve` (or the real CLI), one module per
//! attack surface. Every test here failed on the code it was written against and asserts the
//! behaviour Vigil promises in `docs/security.md`. New features extend it: add a module for the
//! surface they open.
//!
//! Run just this suite with `cargo test -p vigil --test adversarial`.

mod batches;
#[path = "../common/mod.rs"]
mod common;
mod forged_events;
mod disk_full;
mod idempotency;
mod oversize;
mod undone_writes;
