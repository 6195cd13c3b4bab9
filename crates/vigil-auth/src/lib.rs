//! # vigil-auth: who may do what
//!
//! API tokens ([`token`]), web UI accounts ([`users`]), browser sessions and the limiters on
//! failed attempts ([`session`]), and the role table that says which role may call which
//! route ([`access`]). Pure logic and the files under `DATA_DIR/auth/` — or, in cluster mode, the
//! cluster's shared buckets behind the [`SharedKv`] trait ([`shared`], [`store`]); the HTTP glue (reading
//! headers and cookies, the extractor that enforces the table) lives in `vigil-server`.
#![deny(missing_docs)]

pub mod access;
pub mod error;
pub mod session;
pub mod shared;
pub mod store;
pub mod token;
pub mod users;

pub use access::{Access, ROUTES, RouteAccess};
pub use error::{Limited, StoreError, UnknownRole, UserError};
pub use shared::{SharedAuth, SharedKv};
pub use store::AuthStore;
pub use token::{AuthError, Principal, Role, TokenStore};
