//! Vigil's self-audit: what people and programs did to Vigil, as events in its own ledger
//! (`event.dataset: vigil.audit`), searchable and detectable like any other event.
//!
//! The server appends audit events directly ([`append`]). Commands that change state while a
//! server may hold the ledger's lock (`vigil user …`, `vigil token …`) write their audit
//! events to a pending file instead ([`record_offline`]); the server moves them into the ledger
//! at start and every second ([`drain_pending`]), so nothing is lost when no server runs.
//!
//! The pending file `DATA_DIR/auth/audit-pending.jsonl` (mode 0600) holds one flat JSON event
//! per line (`Event::to_json`). Draining renames it to `audit-pending.draining` first, so lines
//! written meanwhile go to a new file; a crash after the append and before the removal stores
//! those events twice (at-least-once, never lost).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use vigil_event::{Event, Timestamp};

use crate::pipeline::Ingest;

/// Appends an audit event, best effort: when the ledger is so far behind that the pipeline
/// has no room, the event is dropped and counted (`vigil_audit_dropped_total`) rather than
/// letting a flood of requests hold memory or fill the log.
pub fn append(ingest: &Ingest, event: Event) {
    match ingest.try_append(vec![event], vigil_ingest::Origin::Audit) {
        Ok(pending) => {
            tokio::spawn(async move {
                let _ = pending.durable().await;
            });
        }
        Err(_) => {
            ingest
                .metrics
                .audit_dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// An audit event of something a person did (`user.name`), from an address when known.
pub fn by(
    action: &str,
    category: vigil_event::Category,
    event_type: vigil_event::EventType,
    outcome: vigil_event::Outcome,
    user: &str,
    source: Option<std::net::IpAddr>,
) -> Event {
    let mut builder = Event::audit_builder(action)
        .category(category)
        .event_type(event_type)
        .outcome(outcome)
        .user(user);
    if let Some(ip) = source {
        builder = builder.source(ip);
    }
    builder.build()
}

fn pending_path(data_dir: &Path) -> PathBuf {
    vigil_config::DataDir::new(data_dir).audit_pending()
}

fn draining_path(data_dir: &Path) -> PathBuf {
    vigil_config::DataDir::new(data_dir).audit_draining()
}

/// Records an audit event for the next server (or the running one) to store.
pub fn record_offline(data_dir: &Path, event: &Event) -> Result<(), String> {
    let path = pending_path(data_dir);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut line = event.to_json().to_string();
    line.push('\n');
    let mut file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(line.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Moves pending audit events into the ledger through the ingest pipeline (blocking: call it
/// off the async runtime); returns how many were stored.
pub fn drain_pending(data_dir: &Path, ingest: &Ingest) -> Result<usize, String> {
    let draining = draining_path(data_dir);
    if !draining.exists() {
        match fs::rename(pending_path(data_dir), &draining) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(format!("{}: {e}", pending_path(data_dir).display())),
        }
    }
    let text = fs::read_to_string(&draining).map_err(|e| format!("{}: {e}", draining.display()))?;
    let mut events = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match Event::from_json(line, Timestamp::now()) {
            // Only audit events: the ledger is the truth the alert and ban books are rebuilt
            // from, so a line claiming to be an alert or a decision is not stored.
            Ok(e) if e.is_dataset(vigil_event::dataset::VIGIL_AUDIT) => events.push(e),
            Ok(_) => tracing::error!(
                "{} line {}: not an audit event (event.dataset is not vigil.audit); skipped",
                draining.display(),
                n + 1
            ),
            Err(e) => tracing::error!(
                "{} line {}: not an audit event ({e}); skipped",
                draining.display(),
                n + 1
            ),
        }
    }
    let stored = events.len();
    if !events.is_empty() {
        ingest
            .submit(events, vigil_ingest::Origin::Cli)
            .wait()
            .map_err(|e| format!("storing pending audit events: {e}"))?;
    }
    fs::remove_file(&draining).map_err(|e| format!("{}: {e}", draining.display()))?;
    Ok(stored)
}

/// Vigil's own rules, loaded by every server unless turned off: `(file name, Sigma YAML)`.
pub const SELF_RULES: &[(&str, &str)] = &[
    (
        "vigil-login.yml",
        r#"title: Vigil login failed
id: 4f1d2c3b-7a6e-4b0a-9c1d-76696769c001
name: vigil_login_failure
status: stable
description: A failed login to Vigil's own web UI (wrong password or refused by the rate limit).
logsource: {product: vigil, service: audit}
detection:
    selection:
        event.dataset: vigil.audit
        event.action: login_failure
    condition: selection
level: informational
---
title: Brute force against Vigil's login
id: 4f1d2c3b-7a6e-4b0a-9c1d-76696769c002
name: vigil_login_bruteforce
status: stable
description: Five or more failed logins to Vigil from one address within ten minutes.
correlation:
    type: event_count
    rules: [vigil_login_failure]
    group-by: [source.ip]
    timespan: 10m
    condition: {gte: 5}
level: high
tags: [attack.credential_access, attack.t1110.001]
---
title: Distributed password guessing against a Vigil account
id: 4f1d2c3b-7a6e-4b0a-9c1d-76696769c003
name: vigil_login_distributed
status: stable
description: Failed logins to one Vigil account from three or more addresses within fifteen minutes (guessing spread to stay under the per-address limit).
correlation:
    type: value_count
    rules: [vigil_login_failure]
    group-by: [user.name]
    timespan: 15m
    condition: {gte: 3, field: source.ip}
level: high
tags: [attack.credential_access, attack.t1110]
"#,
    ),
    (
        "vigil-reserved-claim.yml",
        r#"title: Event claiming Vigil's own names
id: 4f1d2c3b-7a6e-4b0a-9c1d-76696769c005
name: vigil_reserved_claim_event
status: stable
description: One event from outside that named Vigil's own dataset or vigil.* fields (stored under external.*, tagged reserved_claim). Counted by the correlation below, which groups by the real sender.
logsource: {product: vigil, service: ingest}
detection:
    selection:
        tags: reserved_claim
    condition: selection
level: informational
---
title: Input claimed Vigil's own names
id: 4f1d2c3b-7a6e-4b0a-9c1d-76696769c004
name: vigil_reserved_claim
status: stable
description: Events from outside named Vigil's own dataset (vigil.audit, vigil.alert, ...) or vigil.* fields. Vigil stored the claims under external.* and tagged them reserved_claim; an honest sender has no reason to do this, so it is most likely an attempt to forge Vigil's audit trail or alerts. The alert is grouped by log.source.address, the address the events really came from (the source.ip inside them is the sender's word, so this alert never names it and never bans it).
correlation:
    type: event_count
    rules: [vigil_reserved_claim_event]
    group-by: [log.source.address]
    timespan: 1h
    condition: {gte: 1}
level: medium
tags: [attack.defense_evasion, attack.t1565.001]
"#,
    ),
    (
        "vigil-witness.yml",
        r#"title: Vigil's ledger was rolled back
id: 4f1d2c3b-7a6e-4b0a-9c1d-76696769c006
name: vigil_witness_rollback
status: stable
description: A witness that cosigned this ledger's checkpoints has seen more of it than it now holds, or a different tree at a size it cosigned. The data directory was replaced by an older copy, or the history was rewritten; events the witness saw are missing. Compare with a backup and the witnesses' state before trusting this ledger.
logsource: {product: vigil, service: audit}
detection:
    selection:
        event.dataset: vigil.audit
        event.action: witness_rollback
    condition: selection
level: critical
tags: [attack.defense_evasion, attack.t1070, attack.t1565.001]
"#,
    ),
    ("vigil-drill.yml", crate::drill::FAILED_DRILL_RULE),
];

/// Writes [`SELF_RULES`] to `DATA_DIR/builtin-rules` (replacing what is there) and returns the
/// directory.
pub fn write_self_rules(data_dir: &Path) -> Result<PathBuf, String> {
    let dir = vigil_config::DataDir::new(data_dir).builtin_rules();
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, text) in SELF_RULES {
        let path = dir.join(name);
        if fs::read_to_string(&path).ok().as_deref() != Some(*text) {
            fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(dir)
}
