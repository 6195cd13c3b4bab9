//! Okta System Log events (the `/api/v1/logs` API's `LogEvent`, as Okta's log streaming and
//! every exporter deliver them).
//!
//! Dataset `okta.system` (the logsource `product: okta, service: okta`). ECS: `source.ip`
//! (`client.ipAddress`), `user.name` (`actor.alternateId`), `user.id`, `user.full_name`,
//! `event.action` (`eventType`), `event.outcome` (`outcome.result`: SUCCESS/ALLOW success,
//! FAILURE/DENY failure), `user_agent.original`, `source.geo.*` from `client.geographicalContext`,
//! `event.category` authentication for sign-in and session events, iam for user, group and
//! policy changes. The time is `published`.

use vigil_event::{Category, Event, EventKind, EventType, Outcome, field};

use super::fields::{first_text, has, has_under, set, set_opt, set_source_ip, set_time, text};

/// Whether `event` is an Okta System Log event.
pub fn recognise(event: &Event) -> bool {
    let Some(kind) = text(event, "eventType") else {
        return false;
    };
    // Okta event types are dotted words (`user.session.start`, `user.authentication.auth_via_IDP`).
    kind.contains('.')
        && kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        && (has(event, "published") || has(event, "uuid") || has(event, "legacyEventType"))
        && (has_under(event, "actor") || has_under(event, "client") || has(event, "displayMessage"))
}

/// Adds the ECS fields of an Okta event (see the module documentation).
pub fn enrich(event: &mut Event) {
    event.insert(field::EVENT_DATASET, "okta.system");
    set(event, field::EVENT_KIND, EventKind::Event);
    set_time(event, &["published"]);
    set_source_ip(event, &["client.ipAddress"]);
    if !event.contains("source.ip")
        && let Some(vigil_event::Value::List(chain)) = super::fields::get(event, "request.ipChain")
        && let Some(vigil_event::Value::Map(first)) = chain.first()
        && let Some(ip) = first
            .get("ip")
            .and_then(|v| v.as_str())
            .and_then(super::fields::address)
    {
        event.insert("source.ip", vigil_event::Value::Ip(ip));
    }
    set_opt(
        event,
        "user.name",
        first_text(event, &["actor.alternateId"]),
    );
    set_opt(event, "user.id", first_text(event, &["actor.id"]));
    set_opt(
        event,
        "user.full_name",
        first_text(event, &["actor.displayName"]),
    );
    set_opt(
        event,
        "user_agent.original",
        first_text(event, &["client.userAgent.rawUserAgent"]),
    );
    for (from, to) in [
        (
            "client.geographicalContext.country",
            "source.geo.country_name",
        ),
        ("client.geographicalContext.city", "source.geo.city_name"),
    ] {
        set_opt(event, to, first_text(event, &[from]));
    }
    let action = first_text(event, &["eventType"]).unwrap_or_default();
    set(event, "event.action", action.as_str());
    let result = first_text(event, &["outcome.result"]).map(|r| r.to_ascii_uppercase());
    let outcome = match result.as_deref() {
        Some("SUCCESS" | "ALLOW") => Outcome::Success,
        Some("FAILURE" | "DENY") => Outcome::Failure,
        _ => Outcome::Unknown,
    };
    set(event, field::EVENT_OUTCOME, outcome);
    if action.starts_with("user.session.")
        || action.starts_with("user.authentication.")
        || action.starts_with("policy.evaluate_sign_on")
    {
        set(event, field::EVENT_CATEGORY, Category::Authentication);
        let kind = if action.ends_with(".end") {
            EventType::End
        } else {
            EventType::Start
        };
        set(event, field::EVENT_TYPE, kind);
    } else if [
        "user.",
        "group.",
        "policy.",
        "application.user_membership",
        "system.api_token",
    ]
    .iter()
    .any(|p| action.starts_with(p))
    {
        set(event, field::EVENT_CATEGORY, Category::Iam);
        let kind = if action.contains(".create") || action.contains(".add") {
            EventType::Creation
        } else if action.contains(".delete")
            || action.contains(".remove")
            || action.contains(".revoke")
        {
            EventType::Deletion
        } else {
            EventType::Change
        };
        set(event, field::EVENT_TYPE, kind);
    }
}

#[cfg(test)]
mod tests {
    use crate::{Format, ParseContext, parse_line};
    use vigil_event::Timestamp;

    #[test]
    fn okta_event() {
        let ctx = ParseContext::new(Timestamp::from_secs(0), "t");
        let line = r#"{"uuid":"u1","published":"2022-03-22T14:21:53.225Z","eventType":"user.session.start","version":"0","severity":"INFO","displayMessage":"User login to Okta","actor":{"id":"00u1","type":"User","alternateId":"homer@example.com","displayName":"Homer"},"client":{"userAgent":{"rawUserAgent":"Mozilla/5.0"},"ipAddress":"198.51.100.7","geographicalContext":{"country":"United States"}},"outcome":{"result":"FAILURE","reason":"INVALID_CREDENTIALS"}}"#;
        let e = parse_line(line.as_bytes(), Format::Auto, &ctx);
        assert_eq!(e.get_str("event.dataset"), Some("okta.system"));
        assert_eq!(e.get_str("user.name"), Some("homer@example.com"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "198.51.100.7");
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("event.category"), Some("authentication"));
        assert_eq!(e.get_str("event.action"), Some("user.session.start"));
        assert_eq!(e.get_str("eventType"), Some("user.session.start"));
        assert_eq!(
            e.timestamp(),
            Timestamp::parse("2022-03-22T14:21:53.225Z").unwrap()
        );
    }
}
