//! Audit events of changes made with the command line (`vigil user|token|ban …`): written to
//! `DATA_DIR/auth/audit-pending.jsonl` and stored in the ledger by the running server (or the
//! next one to start), so a change made while `serve` holds the ledger is still audited.

use std::path::Path;

use vigil_event::Event;

/// Records an audit event of a command-line change (stored by the server, or by the next one
/// to start). Failing to record is a warning, not a failed command: the change is made.
pub fn record(data_dir: &Path, action: &str, message: &str, fields: &[(&str, &str)]) {
    let mut e = Event::audit_builder(action)
        .category(vigil_event::Category::Iam)
        .event_type(vigil_event::EventType::Change)
        .outcome(vigil_event::Outcome::Success)
        .build();
    let actor = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    e.insert("user.name", actor.as_str());
    e.insert("vigil.origin", "cli");
    e.insert("message", message);
    for (k, v) in fields {
        e.insert(*k, *v);
    }
    if let Err(err) = vigil_server::audit::record_offline(data_dir, &e) {
        eprintln!("vigil: warning: the audit event of this change was not recorded: {err}");
    }
}

/// Records a verification of the whole ledger (`ledger_verify`, with its outcome): the
/// compliance report's integrity section lists the runs on record (PCI DSS 10.3.4).
/// `vigil verify --record`; failing to record is a warning.
pub fn record_verification(data_dir: &Path, intact: bool, message: &str) {
    let outcome = if intact {
        vigil_event::Outcome::Success
    } else {
        vigil_event::Outcome::Failure
    };
    let mut e = Event::audit_builder(vigil_report::tally::VERIFY_ACTION)
        .category(vigil_event::Category::Configuration)
        .event_type(vigil_event::EventType::Info)
        .outcome(outcome)
        .build();
    let actor = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    e.insert("user.name", actor.as_str());
    e.insert("vigil.origin", "cli");
    e.insert("message", message);
    if let Err(err) = vigil_server::audit::record_offline(data_dir, &e) {
        eprintln!("vigil: warning: this verification was not put on record: {err}");
    }
}
