//! Where an event entering the ledger comes from: the typed labels of the ingest counters.

/// A listener that receives events from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listener {
    /// Syslog over UDP.
    Udp,
    /// Syslog over TCP.
    Tcp,
    /// Syslog over TLS (RFC 5425).
    Tls,
    /// `POST /api/v1/ingest` (NDJSON, JSON arrays, raw lines).
    Http,
    /// Splunk HTTP Event Collector routes.
    Hec,
    /// Elasticsearch `_bulk` route.
    Bulk,
    /// OpenTelemetry logs: OTLP/HTTP `POST /v1/logs` and OTLP/gRPC.
    Otlp,
    /// The demo's generated stream.
    Demo,
}

impl Listener {
    /// The label value (`listener="udp"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Udp => "udp",
            Listener::Tcp => "tcp",
            Listener::Tls => "tls",
            Listener::Http => "http",
            Listener::Hec => "hec",
            Listener::Bulk => "bulk",
            Listener::Otlp => "otlp",
            Listener::Demo => "demo",
        }
    }
}

/// Who hands events to the ingest pipeline: a listener, or Vigil itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Parsed input from a listener.
    Input(Listener),
    /// Vigil's own audit events (logins, token use, starts and stops, settings).
    Audit,
    /// Alerts raised or updated by the detector.
    Alert,
    /// Alert triage (acknowledged, closed, reopened).
    Triage,
    /// Detection rule changes.
    Rule,
    /// Ban decisions (added, expired, lifted).
    Decision,
    /// Notifications given up after every retry.
    Notifier,
    /// Checkpoint-sink deliveries given up.
    Checkpoint,
    /// Changes made with the command line (`vigil user|token|ledger …`).
    Cli,
    /// Files stored by `vigil import`.
    Import,
}

impl Origin {
    /// Every origin, in the order `/metrics` lists them.
    pub const ALL: [Origin; 17] = [
        Origin::Input(Listener::Udp),
        Origin::Input(Listener::Tcp),
        Origin::Input(Listener::Tls),
        Origin::Input(Listener::Http),
        Origin::Input(Listener::Hec),
        Origin::Input(Listener::Bulk),
        Origin::Input(Listener::Otlp),
        Origin::Input(Listener::Demo),
        Origin::Audit,
        Origin::Alert,
        Origin::Triage,
        Origin::Rule,
        Origin::Decision,
        Origin::Notifier,
        Origin::Checkpoint,
        Origin::Cli,
        Origin::Import,
    ];

    /// The label value (`origin="alert"`); every listener is `input`.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Input(_) => "input",
            Origin::Audit => "audit",
            Origin::Alert => "alert",
            Origin::Triage => "triage",
            Origin::Rule => "rule",
            Origin::Decision => "decision",
            Origin::Notifier => "notifier",
            Origin::Checkpoint => "checkpoint",
            Origin::Cli => "cli",
            Origin::Import => "import",
        }
    }

    /// The finer label: the listener for input, else the origin itself (`listener="audit"`).
    pub fn label(self) -> &'static str {
        match self {
            Origin::Input(listener) => listener.as_str(),
            other => other.as_str(),
        }
    }

    /// Position in [`Origin::ALL`]. A match, not a search: a new origin or listener that is
    /// not placed here does not compile (it once reached the ledger writer's thread as a
    /// panic), and the test below checks the places agree with [`Origin::ALL`].
    pub fn index(self) -> usize {
        match self {
            Origin::Input(listener) => match listener {
                Listener::Udp => 0,
                Listener::Tcp => 1,
                Listener::Tls => 2,
                Listener::Http => 3,
                Listener::Hec => 4,
                Listener::Bulk => 5,
                Listener::Otlp => 6,
                Listener::Demo => 7,
            },
            Origin::Audit => 8,
            Origin::Alert => 9,
            Origin::Triage => 10,
            Origin::Rule => 11,
            Origin::Decision => 12,
            Origin::Notifier => 13,
            Origin::Checkpoint => 14,
            Origin::Cli => 15,
            Origin::Import => 16,
        }
    }
}

impl From<Listener> for Origin {
    fn from(listener: Listener) -> Origin {
        Origin::Input(listener)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_origin_has_its_own_place_in_all() {
        for (i, origin) in Origin::ALL.iter().enumerate() {
            assert_eq!(origin.index(), i, "{origin:?}");
        }
    }
}
