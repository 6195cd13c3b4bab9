//! GitHub organisation and enterprise audit log events (the REST API's
//! `/orgs/{org}/audit-log` entries and audit log streaming: `action`, `actor`, `created_at`
//! or `@timestamp`, `org`, `repo`, `business`, …).
//!
//! Dataset `github.audit` (the logsource `product: github, service: audit`). ECS:
//! `user.name` (`actor`), `user.id` (`actor_id`), `source.ip` (`actor_ip`, present when the
//! enterprise streams addresses), `event.action` (`action`), `event.outcome` (failure for a
//! failed workflow run, a failed or blocked action, else success: an audit entry records
//! something done), `user_agent.original`, `organization.name` (`org`). SigmaHQ's GitHub rules
//! read `action`, which is kept.

use vigil_event::{Category, Event, EventKind, Outcome, Value, field};

use super::fields::{first_text, get, has, set, set_opt, set_source_ip, set_time, text};

/// Whether `event` is a GitHub audit log entry.
pub fn recognise(event: &Event) -> bool {
    let Some(action) = text(event, "action") else {
        return false;
    };
    // Actions are `area.verb` in lower case (`protected_branch.destroy`, `org.add_member`); a
    // bare verb only with GitHub's own time and organisation fields beside it.
    let word = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
    };
    if !word(&action) || action.starts_with('.') || action.ends_with('.') {
        return false;
    }
    if !matches!(get(event, "actor"), Some(Value::Str(_))) {
        return false;
    }
    if !action.contains('.') {
        return has(event, "created_at") && (has(event, "org") || has(event, "business"));
    }
    [
        "created_at",
        "_document_id",
        "org",
        "business",
        "repo",
        "actor_id",
        "programmatic_access_type",
    ]
    .iter()
    .any(|k| has(event, k))
}

/// Adds the ECS fields of a GitHub audit log entry (see the module documentation).
pub fn enrich(event: &mut Event) {
    event.insert(field::EVENT_DATASET, "github.audit");
    set(event, field::EVENT_KIND, EventKind::Event);
    set(event, field::EVENT_CATEGORY, Category::Configuration);
    set_time(event, &["created_at", "timestamp"]);
    set_opt(event, "user.name", first_text(event, &["actor"]));
    set_opt(event, "user.id", first_text(event, &["actor_id"]));
    set_source_ip(event, &["actor_ip"]);
    set_opt(
        event,
        "user_agent.original",
        first_text(event, &["user_agent"]),
    );
    set_opt(
        event,
        "organization.name",
        first_text(event, &["org", "business"]),
    );
    let action = first_text(event, &["action"]).unwrap_or_default();
    set(event, "event.action", action.as_str());
    let conclusion = first_text(event, &["conclusion", "result"]).map(|c| c.to_ascii_lowercase());
    let failed = matches!(
        conclusion.as_deref(),
        Some("failure" | "failed" | "blocked")
    ) || action.ends_with("_failed")
        || action.ends_with(".failure");
    let outcome = if failed {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    set(event, field::EVENT_OUTCOME, outcome);
}

#[cfg(test)]
mod tests {
    use crate::{Format, ParseContext, parse_line};
    use vigil_event::Timestamp;

    #[test]
    fn audit_entry() {
        let ctx = ParseContext::new(Timestamp::from_secs(0), "t");
        let line = r#"{"actor":"cat","action":"protected_branch.destroy","created_at":1621305118553,"org":"my-org","repo":"my-org/my-repo","actor_ip":"192.0.2.44"}"#;
        let e = parse_line(line.as_bytes(), Format::Auto, &ctx);
        assert_eq!(e.get_str("event.dataset"), Some("github.audit"));
        assert_eq!(e.get_str("user.name"), Some("cat"));
        assert_eq!(e.get_str("event.action"), Some("protected_branch.destroy"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "192.0.2.44");
        assert_eq!(e.get_str("organization.name"), Some("my-org"));
        assert_eq!(e.timestamp(), Timestamp::from_millis(1_621_305_118_553));
        // Not GitHub: an action that is not `area.verb`, or no actor name.
        for other in [
            r#"{"actor":"cat","action":"Delete Repo","org":"o"}"#,
            r#"{"actor":"cat","action":"delete","org":"o"}"#,
            r#"{"actor":{"id":1},"action":"repo.create","org":"o"}"#,
        ] {
            let e = parse_line(other.as_bytes(), Format::Auto, &ctx);
            assert_eq!(e.get("event.dataset"), None, "{other}");
        }
    }
}
