//! Microsoft 365 unified audit log: records of the Office 365 Management Activity API
//! (`CreationTime`, `Operation`, `Workload`, `RecordType`, `UserId`, …, for Exchange,
//! SharePoint/OneDrive, Entra ID, Teams, the Security & Compliance Center) and the Log
//! Analytics / Sentinel `OfficeActivity` rows made from them.
//!
//! Dataset `o365.audit` (the logsource `product: m365`, any service). ECS: `cloud.account.id`
//! (`OrganizationId`), `source.ip` (`ClientIP`, `ClientIPAddress`, `ActorIpAddress`;
//! `addr:port` and `[v6]:port` read), `user.name` (`UserId`), `user.id` (`UserKey`),
//! `event.action` (`Operation`), `event.provider` (`Workload`), `event.outcome`
//! (`ResultStatus`; `UserLoginFailed` is a failure), `user_agent.original`.
//!
//! SigmaHQ's `threat_management` rules read Security & Compliance Center alerts by
//! `eventSource` (the workload), `eventName` (the alert's `Name`, else the operation) and
//! `status` (the outcome); a record gains those names when it does not have them.

use vigil_event::{Category, Event, EventKind, EventType, Outcome, Value, field};

use super::fields::{first_text, get, has, set, set_opt, set_source_ip, set_time, text};

/// Whether `event` is a unified audit log record.
pub fn recognise(event: &Event) -> bool {
    if text(event, "Type").is_some_and(|t| t.eq_ignore_ascii_case("OfficeActivity")) {
        return true;
    }
    has(event, "Operation")
        && (has(event, "Workload") || has(event, "RecordType"))
        && (has(event, "CreationTime") || has(event, "OrganizationId"))
        && (has(event, "UserId") || has(event, "UserKey") || has(event, "Id"))
}

/// Adds the ECS fields of a unified audit log record (see the module documentation).
pub fn enrich(event: &mut Event) {
    event.insert(field::EVENT_DATASET, "o365.audit");
    set(event, field::EVENT_KIND, EventKind::Event);
    set_time(event, &["CreationTime", "TimeGenerated"]);
    set_opt(
        event,
        "cloud.account.id",
        first_text(event, &["OrganizationId", "TenantId"]),
    );
    set_source_ip(
        event,
        &[
            "ClientIP",
            "ClientIPAddress",
            "ActorIpAddress",
            "Client_IPAddress",
        ],
    );
    set_opt(event, "user.name", first_text(event, &["UserId"]));
    set_opt(event, "user.id", first_text(event, &["UserKey"]));
    let operation = first_text(event, &["Operation"]);
    set_opt(event, "event.action", operation.clone());
    let workload = first_text(event, &["Workload", "OfficeWorkload"]);
    set_opt(event, "event.provider", workload.clone());
    let agent = first_text(event, &["UserAgent"]).or_else(|| extended(event, "UserAgent"));
    set_opt(event, "user_agent.original", agent);
    let status = first_text(event, &["ResultStatus"]).map(|s| s.to_ascii_lowercase());
    let op = operation.clone().unwrap_or_default();
    let outcome = if op.eq_ignore_ascii_case("UserLoginFailed") {
        Outcome::Failure
    } else {
        match status.as_deref() {
            Some("succeeded" | "success" | "true" | "partiallysucceeded") => Outcome::Success,
            Some("failed" | "failure" | "false") => Outcome::Failure,
            _ => Outcome::Unknown,
        }
    };
    set(event, field::EVENT_OUTCOME, outcome);
    if op.eq_ignore_ascii_case("UserLoggedIn") || op.eq_ignore_ascii_case("UserLoginFailed") {
        set(event, field::EVENT_CATEGORY, Category::Authentication);
        set(event, field::EVENT_TYPE, EventType::Start);
    }
    // SigmaHQ's names (see the module documentation).
    set_opt(event, "eventSource", workload);
    let name = first_text(event, &["Name"]).or(operation);
    set_opt(event, "eventName", name);
    if outcome != Outcome::Unknown {
        set(event, "status", outcome.as_str());
    }
}

/// The `Value` of the `ExtendedProperties` entry named `name`.
fn extended(event: &Event, name: &str) -> Option<String> {
    let Some(Value::List(items)) = get(event, "ExtendedProperties") else {
        return None;
    };
    items.iter().find_map(|item| match item {
        Value::Map(m) if m.get("Name").and_then(Value::as_str) == Some(name) => {
            m.get("Value").and_then(Value::as_str).map(str::to_owned)
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use crate::{Format, ParseContext, parse_line};
    use vigil_event::Timestamp;

    #[test]
    fn login_failure() {
        let ctx = ParseContext::new(Timestamp::from_secs(0), "t");
        let line = r#"{"CreationTime":"2022-12-12T15:57:57","Id":"a","Operation":"UserLoginFailed","OrganizationId":"org1","RecordType":15,"ResultStatus":"Success","UserKey":"k1","UserType":0,"Workload":"AzureActiveDirectory","ClientIP":"[2001:db8::1]:443","UserId":"u@example.com","ExtendedProperties":[{"Name":"UserAgent","Value":"Mozilla/5.0"}]}"#;
        let e = parse_line(line.as_bytes(), Format::Auto, &ctx);
        assert_eq!(e.get_str("event.dataset"), Some("o365.audit"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "2001:db8::1");
        assert_eq!(e.get_str("user.name"), Some("u@example.com"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("event.action"), Some("UserLoginFailed"));
        assert_eq!(e.get_str("user_agent.original"), Some("Mozilla/5.0"));
        assert_eq!(e.get_str("eventSource"), Some("AzureActiveDirectory"));
        assert_eq!(
            e.timestamp(),
            Timestamp::parse("2022-12-12T15:57:57Z").unwrap()
        );
    }
}
