//! What can fail in `vigil-auth`, and whether trying again can help.

use std::path::PathBuf;

use crate::users::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};

/// Reading or writing a file under `DATA_DIR/auth/` (or, in cluster mode, the cluster's shared
/// store) failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file system refused (permissions, a full disk, a lock that could not be taken).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not what Vigil writes (edited by hand, cut short).
    #[error("{}: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the JSON went wrong.
        #[source]
        source: serde_json::Error,
    },
    /// The file is of a format version this Vigil does not read (written by a newer one).
    #[error("{}: format version {found} is not one this Vigil reads ({expected})", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this Vigil reads.
        expected: u32,
    },
    /// argon2 could not hash (it does not fail on valid parameters; kept for completeness).
    #[error("hashing failed: {0}")]
    Hash(String),
    /// The cluster's shared store (JetStream KV) failed or did not answer in time.
    #[error("the cluster's shared store: {0}")]
    Shared(String),
}

impl StoreError {
    /// Wraps an I/O error with its path.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether the same call may succeed later without anyone changing a file: true for I/O
    /// failures (a full disk, a busy lock), false for a corrupt or foreign file.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Io { .. } | StoreError::Shared(_))
    }
}

/// An account change or lookup was refused.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The name has characters or a length Vigil does not accept.
    #[error("user name {0:?}: use 1 to 64 letters, digits, '.', '_', '-' or '@'")]
    InvalidName(String),
    /// The new password is shorter than [`MIN_PASSWORD_CHARS`].
    #[error("the password is too short: use at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    /// The new password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("the password is too long: at most {MAX_PASSWORD_BYTES} bytes")]
    PasswordTooLong,
    /// Bouncers get keys, not accounts.
    #[error("bouncers use keys (`vigil bouncer add`), not accounts")]
    BouncerAccount,
    /// The name is taken.
    #[error("user {0:?} exists; change the password with `vigil user passwd`")]
    Exists(String),
    /// No account has this name.
    #[error("no user {0:?}")]
    NoSuchUser(String),
    /// Deleting this account would leave no admin.
    #[error("{0:?} is the last admin; add another admin first")]
    LastAdmin(String),
    /// The account file could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl UserError {
    /// Whether the same request may succeed later unchanged: only when the files failed in a
    /// passing way; every other refusal needs a different request.
    pub fn is_retryable(&self) -> bool {
        match self {
            UserError::Store(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// A role name that is not one of Vigil's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: use admin, analyst, viewer, ingest or bouncer")]
pub struct UnknownRole(pub String);

/// An attempt refused by a failure limiter (too many failed logins, password changes or token
/// guesses lately): it may be tried again after `retry_after_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed attempts; try again in {retry_after_secs} s")]
pub struct Limited {
    /// Seconds until the limit lifts (at least 1).
    pub retry_after_secs: u64,
}
