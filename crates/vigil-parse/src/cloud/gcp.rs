//! Google Cloud Audit Logs: a Cloud Logging `LogEntry` whose `protoPayload` is an `AuditLog`
//! (Admin Activity, Data Access, System Event and Policy Denied logs), as exported by a log
//! sink (Pub/Sub, Cloud Storage, BigQuery JSON) or `gcloud logging read --format=json`.
//!
//! Dataset `gcp.audit` (the logsource `product: gcp, service: gcp.audit`). ECS:
//! `cloud.provider: gcp`, `cloud.project.id`, `cloud.region` (a resource's `location` or
//! `region` label), `source.ip` (`requestMetadata.callerIp`),
//! `user.name`/`user.email` (`authenticationInfo.principalEmail`), `event.action`
//! (`methodName`), `event.provider` (`serviceName`), `event.outcome` (failure when
//! `status.code` is not 0), `user_agent.original`. The method is also written as
//! `gcp.audit.method_name`, the name SigmaHQ's GCP rules use (Elastic's integration's).

use vigil_event::{Category, Event, EventKind, Outcome, field};

use super::fields::{first_text, has, has_under, set, set_opt, set_source_ip, set_time, text};

/// Whether `event` is a Cloud Audit Logs entry: its payload says it is an `AuditLog`, or it has
/// a `protoPayload.methodName` with any other `AuditLog` field (`protoPayload` is Cloud
/// Logging's own name).
pub fn recognise(event: &Event) -> bool {
    let payload_type = first_text(
        event,
        &[
            "protoPayload.@type",
            "protoPayload.at_sign_type",
            "protoPayload.at_type",
        ],
    )
    .unwrap_or_default();
    if payload_type.ends_with("google.cloud.audit.AuditLog") {
        return true;
    }
    has(event, "protoPayload.methodName")
        && (has(event, "protoPayload.serviceName")
            || has(event, "protoPayload.resourceName")
            || has(event, "protoPayload.authorizationInfo")
            || has_under(event, "protoPayload.authenticationInfo")
            || has_under(event, "protoPayload.requestMetadata")
            || text(event, "logName").is_some_and(|l| l.contains("cloudaudit.googleapis.com"))
            || has(event, "resource.type"))
}

/// Adds the ECS fields of a Cloud Audit Logs entry (see the module documentation).
pub fn enrich(event: &mut Event) {
    event.insert(field::EVENT_DATASET, "gcp.audit");
    set(event, "cloud.provider", "gcp");
    set(event, field::EVENT_KIND, EventKind::Event);
    set_time(event, &["timestamp", "receiveTimestamp"]);
    let project = first_text(event, &["resource.labels.project_id"]).or_else(|| {
        text(event, "logName").and_then(|l| {
            l.strip_prefix("projects/")
                .and_then(|r| r.split('/').next())
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
        })
    });
    set_opt(event, "cloud.project.id", project);
    set_opt(
        event,
        "cloud.region",
        first_text(
            event,
            &[
                "resource.labels.location",
                "resource.labels.region",
                "resource.labels.zone",
            ],
        ),
    );
    set_source_ip(event, &["protoPayload.requestMetadata.callerIp"]);
    let email = first_text(
        event,
        &[
            "protoPayload.authenticationInfo.principalEmail",
            "protoPayload.authenticationInfo.principalSubject",
        ],
    );
    if let Some(email) = &email
        && email.contains('@')
    {
        set(event, "user.email", email.as_str());
    }
    set_opt(event, "user.name", email);
    set_opt(
        event,
        "user_agent.original",
        first_text(
            event,
            &["protoPayload.requestMetadata.callerSuppliedUserAgent"],
        ),
    );
    let method = first_text(event, &["protoPayload.methodName"]);
    set_opt(event, "event.action", method.clone());
    set_opt(event, "gcp.audit.method_name", method);
    set_opt(
        event,
        "event.provider",
        first_text(event, &["protoPayload.serviceName"]),
    );
    let code = first_text(event, &["protoPayload.status.code"]);
    let outcome = match code.as_deref().map(str::trim) {
        None | Some("0") => {
            if denied(event) {
                Outcome::Failure
            } else {
                Outcome::Success
            }
        }
        Some(_) => Outcome::Failure,
    };
    set(event, field::EVENT_OUTCOME, outcome);
    let log_name = text(event, "logName").unwrap_or_default();
    if log_name.contains("policy") {
        set(event, field::EVENT_CATEGORY, Category::Iam);
    } else {
        set(event, field::EVENT_CATEGORY, Category::Configuration);
    }
}

/// Whether the entry says an authorization was refused (`authorizationInfo[].granted: false`).
fn denied(event: &Event) -> bool {
    match super::fields::get(event, "protoPayload.authorizationInfo") {
        Some(vigil_event::Value::List(items)) => items.iter().any(|item| match item {
            vigil_event::Value::Map(m) => {
                m.get("granted") == Some(&vigil_event::Value::Bool(false))
            }
            _ => false,
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::{Format, ParseContext, parse_line};
    use vigil_event::Timestamp;

    #[test]
    fn audit_entry() {
        let ctx = ParseContext::new(Timestamp::from_secs(0), "t");
        let line = r#"{"insertId":"1","logName":"projects/p1/logs/cloudaudit.googleapis.com%2Factivity","protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","authenticationInfo":{"principalEmail":"eve@example.com"},"methodName":"storage.buckets.list","serviceName":"storage.googleapis.com","requestMetadata":{"callerIp":"203.0.113.3","callerSuppliedUserAgent":"gcloud/1"},"status":{"code":7,"message":"denied"}},"resource":{"type":"gcs_bucket","labels":{"project_id":"p1","location":"us"}},"timestamp":"2023-03-08T18:52:52.5Z"}"#;
        let e = parse_line(line.as_bytes(), Format::Auto, &ctx);
        assert_eq!(e.get_str("event.dataset"), Some("gcp.audit"));
        assert_eq!(e.get_str("cloud.project.id"), Some("p1"));
        assert_eq!(
            e.get_str("gcp.audit.method_name"),
            Some("storage.buckets.list")
        );
        assert_eq!(e.get_str("event.action"), Some("storage.buckets.list"));
        assert_eq!(e.get_str("user.name"), Some("eve@example.com"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "203.0.113.3");
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("user_agent.original"), Some("gcloud/1"));
        assert_eq!(
            e.timestamp(),
            Timestamp::parse("2023-03-08T18:52:52.5Z").unwrap()
        );
    }
}
