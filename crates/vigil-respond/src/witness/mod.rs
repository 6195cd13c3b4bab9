//! Witnesses (C2SP `tlog-witness` and `tlog-cosignature`): the one defence against a rollback
//! of a whole data directory to an older, self-consistent copy, which no local check can see.
//!
//! * [`Witness`] ([`core`]): the witness side, transport-agnostic. Known logs (origin and key)
//!   from `[witness] logs` or, in cluster mode, registered by the nodes (pinned on first use);
//!   its own cosigning key in `DATA_DIR/witness/`; the latest size and root cosigned per log,
//!   fsynced before a cosignature leaves; `add-checkpoint` with the specification's answers.
//! * [`protocol`]: the request and answer formats, pure (fuzzed: `fuzz/fuzz_targets/witness_request.rs`).
//! * [`client`]: the log side: submit each signed checkpoint with a consistency proof, store
//!   the cosignatures beside the checkpoints, detect a rollback.
//! * [`limit`]: the per-address rate limit of the unauthenticated HTTP endpoint.
//!
//! Not to be confused with the ledger's own `ledger/witness` file (a local second copy of the
//! latest checkpoint): these witnesses are other machines.

pub mod client;
pub mod core;
pub mod limit;
pub mod protocol;

pub use client::{Answer, Submitted, Target, WitnessStatus, WitnessUrl, WitnessView};
pub use core::{LogSource, LogState, Witness};
pub use protocol::{AddCheckpoint, WitnessError};
