//! Why a server did not start: what failed, and whether trying again can help.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use vigil_config::ConfigError;
use vigil_ledger::LedgerError;

/// A start that failed. [`StartError::retryable`] says whether the same start, tried again
/// unchanged, can succeed (once another process lets go of a port or of the ledger).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is not acceptable: change it.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory cannot be created or written.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A listener cannot bind its address.
    #[error(
        "cannot listen for {what} on {addr}: {source} (is another process using it? choose another address with the matching flag)"
    )]
    Listen {
        /// Which listener (`http`, `syslog/tcp`, …).
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error (`AddrInUse` when the address is taken).
        source: io::Error,
    },
    /// The ledger refuses to open: locked by another process, damaged, or not verifying
    /// against its own checkpoints.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Another component cannot start (the index, the detector, the decisions, the TLS
    /// certificate, the accounts, the redaction patterns…).
    #[error("{component}: {message}")]
    Component {
        /// Which component.
        component: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The start's audit events could not be stored (the ledger is failing).
    #[error("storing the start's audit events: {0}")]
    Audit(String),
    /// Cluster mode: NATS cannot be reached, or is not configured as Vigil requires.
    #[error("cluster: {0}")]
    Cluster(#[from] vigil_cluster::ClusterError),
}

impl StartError {
    /// A failure of `component`, for `map_err`.
    pub fn of<E: std::fmt::Display>(component: &'static str) -> impl FnOnce(E) -> StartError {
        move |e| StartError::Component {
            component,
            message: e.to_string(),
        }
    }

    /// Whether the same start can succeed if tried again unchanged: a taken address or a
    /// locked ledger is let go of by the process holding it; a bad setting, a damaged ledger or
    /// a bad certificate stays as it is until someone changes it.
    pub fn retryable(&self) -> bool {
        match self {
            StartError::Listen { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::AddrInUse | io::ErrorKind::AddrNotAvailable
            ),
            StartError::Ledger(LedgerError::Locked { .. } | LedgerError::Unavailable(_)) => true,
            StartError::Ledger(LedgerError::Io { .. }) | StartError::Audit(_) => true,
            StartError::Cluster(e) => e.retryable(),
            StartError::Config(_)
            | StartError::DataDir { .. }
            | StartError::Ledger(_)
            | StartError::Component { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_retryable_and_a_bad_setting_is_not() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = runtime
            .block_on(crate::topology::listeners::bind_tcp(addr, "http"))
            .unwrap_err();
        assert!(err.retryable(), "{err}");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        let bad = StartError::from(ConfigError::invalid("[[notify]] #1", "a webhook needs url"));
        assert!(!bad.retryable());
        assert_eq!(bad.to_string(), "[[notify]] #1: a webhook needs url");
    }
}
