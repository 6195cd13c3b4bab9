//! # vigil-client: security events from applications to Vigil
//!
//! Three parts:
//!
//! * [`owasp`]: typed constructors for the OWASP logging vocabulary
//!   ([`SecurityEvent::login_fail`], [`SecurityEvent::authz_fail`], …) that produce
//!   [`vigil_event::Event`]s with ECS fields (`event.action`, `event.category`, `event.type`,
//!   `event.outcome`, `log.level`, `event.severity`, `user.name`, …) classified exactly as Vigil's
//!   own JSON parser classifies the same names.
//! * [`Client`]: an asynchronous sender. [`Client::send`] never blocks on the network and never
//!   panics; a task batches events and POSTs them as NDJSON to `{base}/api/v1/ingest` with
//!   `Authorization: Bearer TOKEN`, retrying with exponential backoff (and `Retry-After`).
//! * [`VigilLayer`]: a `tracing` layer; `tracing::warn!(target: "security", event =
//!   "authn_login_fail", user = "alice")` becomes a Vigil event without further code.
//!
//! ```no_run
//! # async fn demo() -> Result<(), vigil_client::ClientError> {
//! use vigil_client::{Client, SecurityEvent};
//! let client = Client::builder("http://127.0.0.1:8080", "TOKEN")
//!     .service("shop")
//!     .spool_dir("/var/spool/shop-vigil")
//!     .build()?;
//! client.emit(SecurityEvent::login_fail("alice").source_ip("203.0.113.5".parse().unwrap()))?;
//! client.shutdown(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```
//!
//! ## Memory and the spool
//!
//! Events wait in a bounded memory queue (`queue_capacity`, default 10,000). When it is full,
//! or when a POST fails (Vigil down, overloaded, refusing the token), the whole queue moves to
//! the end of the disk spool (`spool_dir`; layout in `FORMAT.md`), and from then on new events are
//! appended to the spool until the spool is delivered. Memory therefore never holds more than
//! `queue_capacity` events plus one batch being posted. Without a spool directory, or when the
//! spool is full (`spool_max_bytes`) or failing, new events beyond the queue are dropped and
//! counted ([`Stats::dropped`]): the application is never blocked on the network. (`send`
//! serialises the event on the caller's thread and, while spilling, appends one line to a spool
//! file there: a buffered write to the OS, no fsync.)
//!
//! ## Delivery guarantees
//!
//! * **Order**: events are delivered in the order `send` accepted them, across spills, outages
//!   and restarts of Vigil: while the spool holds anything, new events go behind it, and the
//!   sender drains the queue or the spool from the front.
//! * **No loss while the process lives**: an event leaves the queue or the spool only after Vigil
//!   answered 2xx, which Vigil sends only once the events are durable in its ledger. Events
//!   Vigil refuses as malformed (a 4xx other than 401/403/408/429) are isolated by halving the
//!   batch and only the single refused event is dropped ([`Stats::rejected`]).
//! * **Exactly once across lost answers and client crashes**: every batch carries an
//!   `Idempotency-Key` that is a hash of its bytes (each event has a client-assigned `event.id`:
//!   process id + start time + counter, so different batches never share a key). A batch whose
//!   answer was lost (timeout, connection closed mid-request) goes again as the same batch, and
//!   a batch from the spool is recorded (`inflight`, see `FORMAT.md`) before it is posted, so
//!   the next process on the spool sends it again as it was. Vigil answers a key it has seen
//!   with the first answer instead of storing the batch twice. Vigil remembers keys for an hour
//!   (at most 50,000 per token) and forgets them when it restarts: a batch sent again
//!   across those is stored twice (at-least-once, recognisable by `event.id`).
//! * **Crash of the client process**: spooled events survive it (written to the OS, fsynced on
//!   segment rotation and shutdown); events still in the memory queue (at most `queue_capacity`)
//!   are lost. [`Client::shutdown`] delivers what it can within its limit and spools the rest.
#![deny(missing_docs)]

pub mod client;
pub mod layer;
pub mod owasp;
pub mod spool;

pub use client::{Client, ClientBuilder, ClientError, Stats};
pub use layer::VigilLayer;
pub use owasp::SecurityEvent;
