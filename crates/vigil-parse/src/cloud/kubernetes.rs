//! Kubernetes API server audit events (`audit.k8s.io/v1` `Event`, one JSON object per line as
//! the log backend writes them; EKS, GKE and AKS control-plane exports carry the same object).
//!
//! Dataset `kubernetes.audit_logs` (the logsource `product: kubernetes, service: audit`).
//! ECS: `source.ip` (the first of `sourceIPs`), `user.name` (`user.username`, the
//! authenticated user; `impersonatedUser.username` is kept as it is), `user.id` (`user.uid`), `event.action` (`verb`), `event.outcome` (failure when the
//! response code is 400 or more or the authorizer said `forbid`), `user_agent.original`,
//! `url.original` (`requestURI`). The time is `requestReceivedTimestamp`. An object reference
//! whose `apiVersion` is written `group/version` without an `apiGroup` gains the group.

use vigil_event::{Category, Event, EventKind, EventType, Outcome, field};

use super::fields::{first_text, has, has_under, set, set_opt, set_source_ip, set_time, text};

/// Whether `event` is a Kubernetes audit event.
pub fn recognise(event: &Event) -> bool {
    if text(event, "kind").is_none_or(|k| k != "Event") {
        return false;
    }
    if text(event, "apiVersion").is_some_and(|v| v.starts_with("audit.k8s.io/")) {
        return true;
    }
    (has(event, "verb") || has_under(event, "responseStatus"))
        && (has(event, "requestURI")
            || has_under(event, "objectRef")
            || has(event, "user.username")
            || has(event, "sourceIPs")
            || has(event, "auditID"))
}

/// Adds the ECS fields of a Kubernetes audit event (see the module documentation).
pub fn enrich(event: &mut Event) {
    event.insert(field::EVENT_DATASET, "kubernetes.audit_logs");
    set(event, field::EVENT_KIND, EventKind::Event);
    set_time(event, &["requestReceivedTimestamp", "stageTimestamp"]);
    set_source_ip(event, &["sourceIPs"]);
    // `user.username` and `user.uid` are the audit event's own names; the ECS names sit beside.
    set_opt(event, "user.name", first_text(event, &["user.username"]));
    set_opt(event, "user.id", first_text(event, &["user.uid"]));
    set_opt(
        event,
        "user_agent.original",
        first_text(event, &["userAgent"]),
    );
    set_opt(event, "url.original", first_text(event, &["requestURI"]));
    // An object reference written `apiVersion: group/version` without its `apiGroup` (some
    // exporters): the group is the part before the slash (SigmaHQ's rules select on it).
    if !event.contains("objectRef.apiGroup")
        && let Some((group, _)) = text(event, "objectRef.apiVersion")
            .as_deref()
            .and_then(|v| v.split_once('/'))
            .map(|(g, v)| (g.to_owned(), v.to_owned()))
        && !group.is_empty()
    {
        event.insert("objectRef.apiGroup", group);
    }
    let verb = first_text(event, &["verb"]);
    set_opt(event, "event.action", verb.clone());
    let code = first_text(event, &["responseStatus.code"]).and_then(|c| c.parse::<i64>().ok());
    let forbidden = first_text(event, &["annotations.authorization.k8s.io/decision"])
        .is_some_and(|d| d.eq_ignore_ascii_case("forbid"));
    let outcome = match code {
        _ if forbidden => Outcome::Failure,
        Some(c) if c >= 400 => Outcome::Failure,
        Some(_) => Outcome::Success,
        None => Outcome::Unknown,
    };
    set(event, field::EVENT_OUTCOME, outcome);
    set(event, field::EVENT_CATEGORY, Category::Api);
    let kind = match verb.as_deref() {
        Some("create") => EventType::Creation,
        Some("delete" | "deletecollection") => EventType::Deletion,
        Some("update" | "patch") => EventType::Change,
        Some(_) => EventType::Access,
        None => EventType::Info,
    };
    set(event, field::EVENT_TYPE, kind);
}

#[cfg(test)]
mod tests {
    use crate::{Format, ParseContext, parse_line};
    use vigil_event::Timestamp;

    #[test]
    fn audit_event() {
        let ctx = ParseContext::new(Timestamp::from_secs(0), "t");
        let line = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/secrets","verb":"list","user":{"username":"system:anonymous","groups":["system:unauthenticated"]},"sourceIPs":["203.0.113.8"],"userAgent":"curl/8","objectRef":{"resource":"secrets","namespace":"default"},"responseStatus":{"code":403},"requestReceivedTimestamp":"2022-11-29T00:09:04.38Z"}"#;
        let e = parse_line(line.as_bytes(), Format::Auto, &ctx);
        assert_eq!(e.get_str("event.dataset"), Some("kubernetes.audit_logs"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "203.0.113.8");
        assert_eq!(e.get_str("user.name"), Some("system:anonymous"));
        assert_eq!(e.get_str("event.action"), Some("list"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("objectRef.resource"), Some("secrets"));
        assert_eq!(
            e.timestamp(),
            Timestamp::parse("2022-11-29T00:09:04.38Z").unwrap()
        );
    }
}
