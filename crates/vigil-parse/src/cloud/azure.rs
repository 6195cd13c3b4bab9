//! Microsoft Azure: the Activity log and Entra ID (Azure AD) sign-in and audit logs.
//!
//! Two shapes of each are read:
//! * **diagnostic settings** exports (to a storage account or an event hub: the resource-log
//!   schema, `time`, `resourceId`, `operationName`, `category`, `resultType`, `callerIpAddress`,
//!   `properties{…}`);
//! * **Log Analytics / Microsoft Sentinel** rows (`Type: SigninLogs`, `AuditLogs`,
//!   `AzureActivity`, … with PascalCase columns; nested objects may be JSON text).
//!
//! Datasets (Elastic's names, which the Sigma logsource table selects): `azure.activitylogs`
//! (`product: azure, service: activitylogs`), `azure.signinlogs` (`signinlogs`) and
//! `azure.auditlogs` (`auditlogs`). ECS: `cloud.provider: azure`, `cloud.account.id` (the
//! subscription, else the tenant), `cloud.region`, `source.ip`, `user.name`/`user.id`,
//! `event.action` (the operation), `event.outcome`, `user_agent.original`.
//!
//! SigmaHQ's Entra rules name the Sentinel columns (`ResultType`, `AuthenticationRequirement`,
//! `DeviceDetail.isCompliant`, …) and `properties.message` for the activity of an audit
//! record. A diagnostic-settings record keeps its own names and also gains the Sentinel
//! column for each `properties.*` field (first letter upper-cased, as Log Analytics names
//! them; never replacing a field the record has), `ResultType`/`ResultDescription` from the
//! top level and `userAgent`; an audit record of either shape gains `properties.message`.

use vigil_event::{Category, Event, EventKind, EventType, Outcome, Value, field};

use super::fields::{first_text, get, has, set, set_opt, set_source_ip, set_time, text};

/// Which Azure log a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzureLog {
    /// The Azure Activity log (control-plane operations on subscriptions).
    Activity,
    /// Entra ID sign-ins (interactive, non-interactive, service principal, managed identity).
    SignIn,
    /// Entra ID directory audit.
    Audit,
}

impl AzureLog {
    /// The `event.dataset` Vigil gives the log.
    pub fn dataset(self) -> &'static str {
        match self {
            AzureLog::Activity => "azure.activitylogs",
            AzureLog::SignIn => "azure.signinlogs",
            AzureLog::Audit => "azure.auditlogs",
        }
    }
}

/// Which Azure log `event` is, if it is one.
pub fn recognise(event: &Event) -> Option<AzureLog> {
    // Log Analytics / Sentinel rows name their table.
    if let Some(table) = text(event, "Type") {
        let t = table.to_ascii_lowercase();
        if t == "auditlogs" {
            return Some(AzureLog::Audit);
        }
        if t == "signinlogs" || (t.starts_with("aad") && t.ends_with("signinlogs")) {
            return Some(AzureLog::SignIn);
        }
        if t == "azureactivity" {
            return Some(AzureLog::Activity);
        }
    }
    // Diagnostic-settings records (the resource-log common schema), and Log Analytics rows
    // whose `Type` column was lost on export (PascalCase names).
    let any = |keys: &[&str]| keys.iter().any(|k| has(event, k));
    if !any(&["operationName", "operationName.value", "OperationName"])
        || !any(&["resourceId", "tenantId", "ResourceId", "TenantId"])
        || !any(&[
            "time",
            "category",
            "eventTimestamp",
            "TimeGenerated",
            "Category",
        ])
    {
        return None;
    }
    let category = first_text(event, &["category", "Category"])
        .unwrap_or_default()
        .to_ascii_lowercase();
    if category.ends_with("signinlogs") {
        return Some(AzureLog::SignIn);
    }
    let resource = first_text(event, &["resourceId", "ResourceId"])
        .unwrap_or_default()
        .to_ascii_lowercase();
    if category == "auditlogs"
        || resource.contains("microsoft.aadiam")
        || any(&["LoggedByService", "InitiatedBy"])
    {
        return Some(AzureLog::Audit);
    }
    Some(AzureLog::Activity)
}

/// Adds the ECS fields of an Azure record of `log` (see the module documentation).
pub fn enrich(event: &mut Event, log: AzureLog) {
    event.insert(field::EVENT_DATASET, log.dataset());
    set(event, "cloud.provider", "azure");
    set(event, field::EVENT_KIND, EventKind::Event);
    set_time(
        event,
        &[
            "time",
            "TimeGenerated",
            "eventTimestamp",
            "properties.activityDateTime",
            "properties.createdDateTime",
        ],
    );
    let subscription = first_text(event, &["resourceId", "ResourceId", "_ResourceId"])
        .and_then(|r| subscription_of(&r));
    set_opt(
        event,
        "cloud.account.id",
        subscription.or_else(|| first_text(event, &["SubscriptionId", "tenantId", "TenantId"])),
    );
    set_opt(
        event,
        "cloud.region",
        first_text(event, &["location", "Location"]),
    );
    let action = first_text(
        event,
        &[
            "operationName",
            "operationName.value",
            "OperationName",
            "OperationNameValue",
        ],
    )
    .map(|a| a.trim().to_owned());
    set_opt(event, "event.action", action.clone());
    match log {
        AzureLog::Activity => activity(event),
        AzureLog::SignIn => sign_in(event),
        AzureLog::Audit => audit(event, action),
    }
    if has(event, "properties") || super::fields::has_under(event, "properties") {
        sentinel_columns(event);
    }
}

/// `/subscriptions/<id>/…` → `<id>`.
fn subscription_of(resource: &str) -> Option<String> {
    let lower = resource.to_ascii_lowercase();
    let at = lower.find("/subscriptions/")? + "/subscriptions/".len();
    let id = resource[at..].split('/').next()?;
    (!id.is_empty()).then(|| id.to_owned())
}

/// The outcome an Azure result word says.
fn outcome_of(result: Option<&str>) -> Option<Outcome> {
    let r = result?.trim().to_ascii_lowercase();
    match r.as_str() {
        "success" | "succeeded" | "accept" | "accepted" | "0" => Some(Outcome::Success),
        "failure" | "failed" | "fail" | "timeout" | "deny" | "denied" => Some(Outcome::Failure),
        _ => None,
    }
}

fn activity(event: &mut Event) {
    set_source_ip(
        event,
        &[
            "callerIpAddress",
            "CallerIpAddress",
            "httpRequest.clientIpAddress",
        ],
    );
    let user = first_text(
        event,
        &[
            "caller",
            "Caller",
            "identity.claims.http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
            "identity.claims.name",
            "identity.authorization.evidence.principalId",
        ],
    );
    set_opt(event, "user.name", user);
    set_opt(
        event,
        "user.id",
        first_text(
            event,
            &[
                "identity.claims.http://schemas.microsoft.com/identity/claims/objectidentifier",
                "identity.authorization.evidence.principalId",
            ],
        ),
    );
    let result = first_text(
        event,
        &[
            "resultType",
            "ActivityStatusValue",
            "status.value",
            "properties.statusCode",
        ],
    );
    set(
        event,
        field::EVENT_OUTCOME,
        outcome_of(result.as_deref()).unwrap_or(Outcome::Unknown),
    );
    let action = text(event, "event.action")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if action.starts_with("microsoft.authorization/") {
        set(event, field::EVENT_CATEGORY, Category::Iam);
    } else {
        set(event, field::EVENT_CATEGORY, Category::Configuration);
    }
    let kind = if action.ends_with("/delete") {
        EventType::Deletion
    } else if action.ends_with("/write") {
        EventType::Change
    } else {
        EventType::Info
    };
    set(event, field::EVENT_TYPE, kind);
}

fn sign_in(event: &mut Event) {
    set_source_ip(
        event,
        &[
            "properties.ipAddress",
            "IPAddress",
            "callerIpAddress",
            "CallerIpAddress",
        ],
    );
    set_opt(
        event,
        "user.name",
        first_text(
            event,
            &[
                "properties.userPrincipalName",
                "UserPrincipalName",
                "properties.servicePrincipalName",
                "ServicePrincipalName",
                "identity",
                "Identity",
            ],
        ),
    );
    set_opt(
        event,
        "user.id",
        first_text(
            event,
            &[
                "properties.userId",
                "UserId",
                "properties.servicePrincipalId",
            ],
        ),
    );
    set_opt(
        event,
        "user.full_name",
        first_text(event, &["properties.userDisplayName", "UserDisplayName"]),
    );
    set_opt(
        event,
        "user_agent.original",
        first_text(event, &["properties.userAgent", "UserAgent"]),
    );
    set_opt(
        event,
        "source.geo.country_iso_code",
        first_text(
            event,
            &[
                "properties.location.countryOrRegion",
                "LocationDetails.countryOrRegion",
            ],
        ),
    );
    // The sign-in's error code: 0 is success, anything else a failure.
    let code = first_text(
        event,
        &[
            "properties.status.errorCode",
            "resultType",
            "ResultType",
            "Status.errorCode",
        ],
    );
    if let Some(code) = code {
        let o = if code.trim() == "0" {
            Outcome::Success
        } else if code.trim().parse::<i64>().is_ok() {
            Outcome::Failure
        } else {
            outcome_of(Some(&code)).unwrap_or(Outcome::Unknown)
        };
        set(event, field::EVENT_OUTCOME, o);
    }
    set(event, field::EVENT_OUTCOME, Outcome::Unknown);
    set(event, field::EVENT_CATEGORY, Category::Authentication);
    set(event, field::EVENT_TYPE, EventType::Start);
}

fn audit(event: &mut Event, action: Option<String>) {
    // Sentinel exports nested objects as JSON text; read the initiator from it.
    let initiated = match get(event, "InitiatedBy") {
        Some(Value::Str(s)) if s.len() <= 64 * 1024 => {
            serde_json::from_str::<serde_json::Value>(s).ok()
        }
        _ => None,
    };
    let from_json = |path: &[&str]| -> Option<String> {
        let mut v = initiated.as_ref()?;
        for p in path {
            v = v.get(p)?;
        }
        v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
    };
    let user = first_text(
        event,
        &[
            "properties.initiatedBy.user.userPrincipalName",
            "InitiatedBy.user.userPrincipalName",
            "properties.initiatedBy.app.displayName",
            "InitiatedBy.app.displayName",
        ],
    )
    .or_else(|| from_json(&["user", "userPrincipalName"]))
    .or_else(|| from_json(&["app", "displayName"]));
    set_opt(event, "user.name", user);
    let id = first_text(
        event,
        &[
            "properties.initiatedBy.user.id",
            "InitiatedBy.user.id",
            "properties.initiatedBy.app.servicePrincipalId",
        ],
    )
    .or_else(|| from_json(&["user", "id"]));
    set_opt(event, "user.id", id);
    set_source_ip(
        event,
        &[
            "properties.initiatedBy.user.ipAddress",
            "InitiatedBy.user.ipAddress",
            "callerIpAddress",
            "CallerIpAddress",
        ],
    );
    if !event.contains("source.ip")
        && let Some(ip) = from_json(&["user", "ipAddress"]).and_then(|s| super::fields::address(&s))
    {
        event.insert("source.ip", Value::Ip(ip));
    }
    set_opt(
        event,
        "user_agent.original",
        first_text(event, &["UserAgent", "properties.userAgent"]),
    );
    let result = first_text(
        event,
        &["properties.result", "Result", "resultType", "result"],
    );
    set(
        event,
        field::EVENT_OUTCOME,
        outcome_of(result.as_deref()).unwrap_or(Outcome::Unknown),
    );
    if let Some(action) = action {
        // SigmaHQ's auditlogs rules name the activity `properties.message`.
        set(event, "properties.message", action);
    }
    set(event, field::EVENT_CATEGORY, Category::Iam);
    let op = first_text(event, &["properties.operationType", "AADOperationType"])
        .unwrap_or_default()
        .to_ascii_lowercase();
    let kind = match op.as_str() {
        "add" | "create" => EventType::Creation,
        "delete" | "remove" => EventType::Deletion,
        "update" | "assign" | "unassign" => EventType::Change,
        _ => EventType::Info,
    };
    set(event, field::EVENT_TYPE, kind);
}

/// The Log Analytics column names of a diagnostic record's `properties.*` (see the module
/// documentation).
fn sentinel_columns(event: &mut Event) {
    let mut add: Vec<(String, Value)> = Vec::new();
    for (k, v) in event.fields() {
        let Some(rest) = k.strip_prefix("properties.") else {
            continue;
        };
        let mut chars = rest.chars();
        let Some(first) = chars.next() else { continue };
        if !first.is_ascii_lowercase() || rest == "message" {
            continue;
        }
        let column = format!("{}{}", first.to_ascii_uppercase(), chars.as_str());
        // `properties.vigil.seq` must not become `Vigil.seq`: only Vigil writes its names.
        if crate::reserved::quarantined_name(&column, v).1 {
            continue;
        }
        add.push((column, v.clone()));
    }
    for (column, v) in add {
        set(event, &column, v);
    }
    for (from, to) in [
        ("resultType", "ResultType"),
        ("resultDescription", "ResultDescription"),
        ("properties.userAgent", "userAgent"),
        ("operationName", "OperationName"),
        ("category", "Category"),
    ] {
        if let Some(v) = event.get(from).cloned() {
            set(event, to, v);
        }
    }
    // Sentinel's `Status` of a sign-in says success or failure in words.
    if let Some(o) = event.get_str(field::EVENT_OUTCOME).map(str::to_owned)
        && event.is_dataset(AzureLog::SignIn.dataset())
        && !event.contains("Status")
    {
        let word = if o == "success" { "Success" } else { "Failure" };
        if o != "unknown" {
            event.insert("Status", word);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, ParseContext, parse_line};
    use vigil_event::Timestamp;

    fn parse(line: &str) -> Event {
        let ctx = ParseContext::new(Timestamp::from_secs(0), "t");
        parse_line(line.as_bytes(), Format::Auto, &ctx)
    }

    #[test]
    fn activity_record() {
        let e = parse(
            r#"{"time":"2024-12-17T10:30:00.0000000Z","resourceId":"/subscriptions/1234-ab/resourceGroups/rg/providers/Microsoft.Network/azureFirewalls/fw","operationName":"MICROSOFT.NETWORK/AZUREFIREWALLS/DELETE","category":"Administrative","resultType":"Success","callerIpAddress":"198.51.100.4","location":"eastus","identity":{"claims":{"name":"alice@example.com"}}}"#,
        );
        assert_eq!(e.get_str("event.dataset"), Some("azure.activitylogs"));
        assert_eq!(e.get_str("cloud.account.id"), Some("1234-ab"));
        assert_eq!(e.get_str("cloud.region"), Some("eastus"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "198.51.100.4");
        assert_eq!(e.get_str("user.name"), Some("alice@example.com"));
        assert_eq!(e.get_str("event.outcome"), Some("success"));
        assert_eq!(e.get_str("event.type"), Some("deletion"));
        assert_eq!(
            e.get_str("operationName"),
            Some("MICROSOFT.NETWORK/AZUREFIREWALLS/DELETE")
        );
        assert_eq!(
            e.timestamp(),
            Timestamp::parse("2024-12-17T10:30:00Z").unwrap()
        );
    }

    #[test]
    fn sign_in_record_gains_sentinel_columns() {
        let e = parse(
            r#"{"time":"2025-01-15T14:20:35Z","resourceId":"/tenants/t1/providers/Microsoft.aadiam","operationName":"Sign-in activity","category":"SignInLogs","tenantId":"t1","resultType":"50126","callerIpAddress":"203.0.113.9","properties":{"userPrincipalName":"bob@example.com","userId":"u-1","ipAddress":"203.0.113.9","userAgent":"azurehound/2.0","authenticationRequirement":"singleFactorAuthentication","status":{"errorCode":50126},"deviceDetail":{"isCompliant":false}}}"#,
        );
        assert_eq!(e.get_str("event.dataset"), Some("azure.signinlogs"));
        assert_eq!(e.get_str("user.name"), Some("bob@example.com"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("event.category"), Some("authentication"));
        assert_eq!(e.get_str("user_agent.original"), Some("azurehound/2.0"));
        assert_eq!(e.get_str("userAgent"), Some("azurehound/2.0"));
        assert_eq!(e.get_str("ResultType"), Some("50126"));
        assert_eq!(
            e.get_str("AuthenticationRequirement"),
            Some("singleFactorAuthentication")
        );
        assert_eq!(e.get("DeviceDetail.isCompliant"), Some(&Value::Bool(false)));
        assert_eq!(e.get_str("Status"), Some("Failure"));
        assert_eq!(e.get_str("cloud.account.id"), Some("t1"));
    }

    #[test]
    fn sentinel_audit_row() {
        let e = parse(
            r#"{"TenantId":"t0","TimeGenerated":"2021-08-02T13:29:25.983Z","OperationName":"Add delegated permission grant ","Category":"ApplicationManagement","Result":"success","InitiatedBy":"{\"user\":{\"id\":\"u9\",\"userPrincipalName\":\"p@example.com\",\"ipAddress\":\"192.0.2.1\"}}","Type":"AuditLogs","AADOperationType":"Assign"}"#,
        );
        assert_eq!(e.get_str("event.dataset"), Some("azure.auditlogs"));
        assert_eq!(e.get_str("user.name"), Some("p@example.com"));
        assert_eq!(e.get_str("user.id"), Some("u9"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "192.0.2.1");
        assert_eq!(e.get_str("event.outcome"), Some("success"));
        assert_eq!(
            e.get_str("properties.message"),
            Some("Add delegated permission grant")
        );
        assert_eq!(
            e.get_str("event.action"),
            Some("Add delegated permission grant")
        );
        assert_eq!(
            e.timestamp(),
            Timestamp::parse("2021-08-02T13:29:25.983Z").unwrap()
        );
    }

    /// The Log Analytics columns made from `properties.*` never name a field only Vigil
    /// writes.
    #[test]
    fn columns_cannot_claim_vigil_names() {
        let e = parse(
            r#"{"time":"2025-01-15T14:20:35Z","resourceId":"/tenants/t1/providers/Microsoft.aadiam","operationName":"Sign-in activity","category":"SignInLogs","resultType":"0","properties":{"vigil":{"seq":1,"source":"vigil"},"event":{"dataset":"vigil.audit"},"userPrincipalName":"eve@example.com"}}"#,
        );
        assert_eq!(e.get_str("event.dataset"), Some("azure.signinlogs"));
        for (name, _) in e.fields() {
            assert!(
                !crate::reserved::is_reserved_field(name)
                    || matches!(name, "vigil.source" | "vigil.received" | "vigil.parser"),
                "{name}"
            );
            assert!(
                !name.eq_ignore_ascii_case("event.dataset") || name == "event.dataset",
                "{name}"
            );
        }
        assert_eq!(e.get_str("vigil.source"), Some("t"));
        assert_eq!(e.get_str("UserPrincipalName"), Some("eve@example.com"));
    }

    #[test]
    fn other_json_is_not_azure() {
        let e = parse(r#"{"operationName":"x","msg":"hello"}"#);
        assert_eq!(e.get("event.dataset"), None);
        let e = parse(r#"{"Type":"Syslog","message":"x"}"#);
        assert_eq!(e.get("event.dataset"), None);
    }
}
