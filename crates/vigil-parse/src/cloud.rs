//! Cloud audit logs → ECS, with every raw field kept (Sigma's cloud rules use the providers'
//! own names: `eventSource`, `eventName`, `userIdentity.type`, …).
//!
//! **AWS CloudTrail** (the record format of the CloudTrail User Guide, "CloudTrail record
//! contents"): a record is recognised by `eventVersion`, `eventSource` and `eventName`, and
//! gains `event.dataset: aws.cloudtrail` (the logsource `product: aws, service: cloudtrail`
//! declares), `cloud.provider/region/account.id`, `source.ip` (or `source.domain` when an AWS
//! service made the call), `user.name`/`user.id`, `event.action`, `event.provider`,
//! `event.outcome` (failure when the record has an `errorCode`), `error.code/message` and
//! `user_agent.original`; the event time is `eventTime`. Records arrive one per line (an S3
//! delivery's `Records` array is cut by [`split_records`], gzip or not, by whoever reads it)
//! or as JSON over HTTP.
//!
//! The other providers' audit logs each have a module: [`azure`] (Activity log, Entra ID
//! sign-in and audit logs), [`gcp`] (Cloud Audit Logs), [`okta`] (System Log), [`m365`]
//! (unified audit log), [`kubernetes`] (API server audit) and [`github`] (audit log).
//! [`enrich`] recognises a JSON record as one of them (by the fields only that provider's
//! records carry together) and adds the ECS fields and the `event.dataset` the Sigma
//! logsource table selects; a record of none of them is left as it is.
//!
//! Pure and bounded: only fields already in the event are read; nothing recurses.

pub mod azure;
mod fields;
pub mod gcp;
pub mod github;
pub mod kubernetes;
pub mod m365;
pub mod okta;

use vigil_event::{Category, Event, EventKind, EventType, Outcome, Timestamp, Value, field};

/// The cloud audit log a JSON record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudLog {
    /// AWS CloudTrail.
    CloudTrail,
    /// An Azure log.
    Azure(azure::AzureLog),
    /// Google Cloud Audit Logs.
    Gcp,
    /// Okta System Log.
    Okta,
    /// Microsoft 365 unified audit log.
    M365,
    /// Kubernetes API server audit.
    Kubernetes,
    /// GitHub audit log.
    GitHub,
}

impl CloudLog {
    /// The `event.dataset` Vigil gives the log's records.
    pub fn dataset(self) -> &'static str {
        match self {
            CloudLog::CloudTrail => "aws.cloudtrail",
            CloudLog::Azure(log) => log.dataset(),
            CloudLog::Gcp => "gcp.audit",
            CloudLog::Okta => "okta.system",
            CloudLog::M365 => "o365.audit",
            CloudLog::Kubernetes => "kubernetes.audit_logs",
            CloudLog::GitHub => "github.audit",
        }
    }
}

/// Which cloud audit log `event` (a JSON record) belongs to, if any.
pub fn recognise(event: &Event) -> Option<CloudLog> {
    if is_cloudtrail(event) {
        return Some(CloudLog::CloudTrail);
    }
    if kubernetes::recognise(event) {
        return Some(CloudLog::Kubernetes);
    }
    if gcp::recognise(event) {
        return Some(CloudLog::Gcp);
    }
    if let Some(log) = azure::recognise(event) {
        return Some(CloudLog::Azure(log));
    }
    if okta::recognise(event) {
        return Some(CloudLog::Okta);
    }
    if m365::recognise(event) {
        return Some(CloudLog::M365);
    }
    if github::recognise(event) {
        return Some(CloudLog::GitHub);
    }
    None
}

/// Adds the ECS fields of the cloud audit log `event` belongs to; returns which, or `None`
/// (and leaves the event alone) when it is none of them.
pub fn enrich(event: &mut Event) -> Option<CloudLog> {
    let log = recognise(event)?;
    match log {
        CloudLog::CloudTrail => cloudtrail(event),
        CloudLog::Azure(kind) => azure::enrich(event, kind),
        CloudLog::Gcp => gcp::enrich(event),
        CloudLog::Okta => okta::enrich(event),
        CloudLog::M365 => m365::enrich(event),
        CloudLog::Kubernetes => kubernetes::enrich(event),
        CloudLog::GitHub => github::enrich(event),
    }
    Some(log)
}

/// The most records [`split_records`] cuts from one delivery (CloudTrail's files hold at most
/// a few thousand; a bigger array is not a CloudTrail delivery).
pub const MAX_RECORDS: usize = 100_000;

/// The records of a CloudTrail delivery file (`{"Records": [ … ]}`) or of an Azure Monitor
/// batch (`{"records": [ … ]}` and nothing else: what diagnostic settings send to an event hub
/// and wrote to storage accounts before JSON lines), each as one line of JSON, or `None` when
/// `text` is neither.
pub fn split_records(text: &str) -> Option<Vec<String>> {
    let t = text.trim_start();
    // The head is looked at as bytes: 64 bytes may end inside a character.
    let head = &t.as_bytes()[..t.len().min(64)];
    let has = |key: &[u8]| head.windows(key.len()).any(|w| w == key);
    let key = if has(b"\"Records\"") {
        "Records"
    } else if has(b"\"records\"") {
        "records"
    } else {
        return None;
    };
    if !t.starts_with('{') {
        return None;
    }
    // Read as a stream: one record is a value at a time, and the count is checked before the
    // next is read (a whole document of `[1,1,1,…]` as values first would take ~80 bytes per
    // input byte: a small gzip file could exhaust memory).
    let mut de = serde_json::Deserializer::from_str(t);
    let (records, keys) =
        serde::Deserializer::deserialize_map(&mut de, DeliveryVisitor { key }).ok()?;
    de.end().ok()?;
    if key == "records" && keys != 1 {
        return None;
    }
    records
}

/// Visits a delivery object: the records under `key` (the first such key), other keys skipped;
/// answers the records and how many keys the object has.
struct DeliveryVisitor {
    key: &'static str,
}

impl<'de> serde::de::Visitor<'de> for DeliveryVisitor {
    type Value = (Option<Vec<String>>, usize);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a delivery object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut records = None;
        let mut keys = 0usize;
        while let Some(name) = map.next_key::<String>()? {
            keys += 1;
            if name == self.key && records.is_none() {
                records = Some(map.next_value_seed(RecordsSeed)?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok((records, keys))
    }
}

/// The records array: each record as its JSON text, at most [`MAX_RECORDS`].
struct RecordsSeed;

impl<'de> serde::de::DeserializeSeed<'de> for RecordsSeed {
    type Value = Vec<String>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RecordsSeed {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        while let Some(record) = seq.next_element::<serde_json::Value>()? {
            if out.len() == MAX_RECORDS {
                return Err(serde::de::Error::custom(
                    "more records than a delivery holds",
                ));
            }
            out.push(record.to_string());
        }
        Ok(out)
    }
}

/// Whether a JSON event is a CloudTrail record.
pub fn is_cloudtrail(event: &Event) -> bool {
    event.contains("eventVersion") && event.contains("eventSource") && event.contains("eventName")
}

fn str_of(event: &Event, key: &str) -> Option<String> {
    match event.get(key) {
        Some(Value::Str(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn set_if_absent(event: &mut Event, key: &str, value: impl Into<Value>) {
    if !event.contains(key) {
        event.insert(key, value);
    }
}

/// Adds the ECS fields of a CloudTrail record (see the module documentation).
pub fn cloudtrail(event: &mut Event) {
    event.insert(field::EVENT_DATASET, "aws.cloudtrail");
    set_if_absent(event, "cloud.provider", "aws");
    set_if_absent(event, field::EVENT_KIND, EventKind::Event);
    if let Some(t) = str_of(event, "eventTime").and_then(|t| Timestamp::parse(&t).ok()) {
        event.set_timestamp(t);
    }
    if let Some(region) = str_of(event, "awsRegion") {
        set_if_absent(event, "cloud.region", region);
    }
    if let Some(account) =
        str_of(event, "recipientAccountId").or_else(|| str_of(event, "userIdentity.accountId"))
    {
        set_if_absent(event, "cloud.account.id", account);
    }
    if let Some(source) = str_of(event, "sourceIPAddress") {
        match source.parse::<std::net::IpAddr>() {
            Ok(ip) => set_if_absent(event, "source.ip", Value::Ip(ip)),
            Err(_) => set_if_absent(event, "source.domain", source),
        }
    }
    if let Some(agent) = str_of(event, "userAgent") {
        set_if_absent(event, "user_agent.original", agent);
    }
    let name = str_of(event, "userIdentity.userName")
        .or_else(|| str_of(event, "userIdentity.sessionContext.sessionIssuer.userName"))
        .or_else(|| {
            str_of(event, "userIdentity.arn")
                .and_then(|arn| arn.rsplit(['/', ':']).next().map(str::to_owned))
                .filter(|n| !n.is_empty())
        });
    if let Some(name) = name {
        set_if_absent(event, "user.name", name);
    }
    if let Some(id) = str_of(event, "userIdentity.principalId") {
        set_if_absent(event, "user.id", id);
    }
    let action = str_of(event, "eventName");
    let provider = str_of(event, "eventSource");
    if let Some(action) = &action {
        set_if_absent(event, "event.action", action.as_str());
    }
    if let Some(provider) = &provider {
        set_if_absent(event, "event.provider", provider.as_str());
    }
    let error = str_of(event, "errorCode");
    let login_failed = str_of(event, "responseElements.ConsoleLogin")
        .is_some_and(|r| r.eq_ignore_ascii_case("failure"));
    if let Some(code) = &error {
        set_if_absent(event, "error.code", code.as_str());
    }
    if let Some(message) = str_of(event, "errorMessage") {
        set_if_absent(event, field::ERROR_MESSAGE, message);
    }
    let outcome = if error.is_some() || login_failed {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    set_if_absent(event, field::EVENT_OUTCOME, outcome);
    let provider = provider.as_deref().unwrap_or("");
    let action = action.as_deref().unwrap_or("");
    if action == "ConsoleLogin" || provider == "signin.amazonaws.com" {
        set_if_absent(event, field::EVENT_CATEGORY, Category::Authentication);
        set_if_absent(event, field::EVENT_TYPE, EventType::Start);
    } else if provider == "iam.amazonaws.com" {
        set_if_absent(event, field::EVENT_CATEGORY, Category::Iam);
        let kind = if action.starts_with("Create") {
            EventType::Creation
        } else if action.starts_with("Delete") {
            EventType::Deletion
        } else {
            EventType::Change
        };
        set_if_absent(event, field::EVENT_TYPE, kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, ParseContext, parse_line};

    const RECORD: &str = r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDAQ7EXAMPLE","arn":"arn:aws:iam::123456789012:user/alice","accountId":"123456789012","accessKeyId":"AKIAQ7EXAMPLE0000001","userName":"alice"},"eventTime":"2023-07-10T12:05:16Z","eventSource":"iam.amazonaws.com","eventName":"CreateAccessKey","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userAgent":"aws-cli/2.13","errorCode":"AccessDenied","errorMessage":"not allowed","requestParameters":{"userName":"bob"},"responseElements":null,"recipientAccountId":"123456789012"}"#;

    #[test]
    fn a_record_becomes_ecs_and_keeps_its_fields() {
        let ctx = ParseContext::new(Timestamp::from_secs(0), "t");
        let e = parse_line(RECORD.as_bytes(), Format::Auto, &ctx);
        assert_eq!(e.get_str("event.dataset"), Some("aws.cloudtrail"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "203.0.113.7");
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert_eq!(e.get_str("event.action"), Some("CreateAccessKey"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("event.category"), Some("iam"));
        assert_eq!(e.get_str("cloud.region"), Some("us-east-1"));
        assert_eq!(e.get_str("cloud.account.id"), Some("123456789012"));
        assert_eq!(e.get_str("user_agent.original"), Some("aws-cli/2.13"));
        assert_eq!(
            e.timestamp(),
            Timestamp::parse("2023-07-10T12:05:16Z").unwrap()
        );
        // Raw names stay for Sigma, and the access key id is not masked.
        assert_eq!(e.get_str("eventName"), Some("CreateAccessKey"));
        assert_eq!(
            e.get_str("userIdentity.accessKeyId"),
            Some("AKIAQ7EXAMPLE0000001")
        );
    }

    #[test]
    fn a_service_caller_is_a_domain() {
        let ctx = ParseContext::new(Timestamp::from_secs(0), "t");
        let line = RECORD.replace("203.0.113.7", "cloudtrail.amazonaws.com");
        let e = parse_line(line.as_bytes(), Format::Json, &ctx);
        assert_eq!(e.get("source.ip"), None);
        assert_eq!(e.get_str("source.domain"), Some("cloudtrail.amazonaws.com"));
    }

    #[test]
    fn deliveries_are_split() {
        let file = format!("{{\"Records\":[{RECORD},\n  {RECORD}]}}");
        let records = split_records(&file).unwrap();
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|r| !r.contains('\n')));
        assert_eq!(split_records(RECORD), None);
        assert_eq!(split_records("{\"Records\": 3}"), None);
        assert_eq!(split_records("{\"Records\": [1, "), None);
        // Azure Monitor's batches; a `records` field beside others is an event's own field.
        let azure = r#"{"records": [{"time":"2024-01-01T00:00:00Z","operationName":"x","resourceId":"/subscriptions/s","category":"Administrative"}, {"a":1}]}"#;
        assert_eq!(split_records(azure).unwrap().len(), 2);
        assert_eq!(split_records(r#"{"records": [1, 2], "user": "x"}"#), None);
        // A character across the 64th byte is no reason to panic (this is network input).
        let text = format!("{{\"xx\":\"{}\"}}", "é".repeat(40));
        assert_eq!(split_records(&text), None);
        // More records than a delivery holds: refused while reading, before the rest is read.
        let many = format!("{{\"Records\":[{}1]}}", "1,".repeat(MAX_RECORDS));
        assert_eq!(split_records(&many), None);
        let most = format!("{{\"Records\":[{}1]}}", "1,".repeat(MAX_RECORDS - 1));
        assert_eq!(split_records(&most).map(|r| r.len()), Some(MAX_RECORDS));
        // Other keys around the records are skipped, for CloudTrail's `Records`.
        let around = format!("{{\"x\":[{{}}],\"Records\":[{RECORD}],\"y\":2}}");
        assert_eq!(split_records(&around).map(|r| r.len()), Some(1));
    }

    /// Records built from the providers' own keys and values in any combination: recognition
    /// and enrichment never panic, agree with each other, set the dataset they name, and only
    /// add fields (every field of the record stays as it was), as the `cloud_audit` fuzz
    /// target checks on arbitrary input.
    #[test]
    fn any_mix_of_provider_fields_only_adds() {
        use proptest::prelude::*;
        let keys = prop::sample::select(vec![
            "eventVersion",
            "eventSource",
            "eventName",
            "sourceIPAddress",
            "kind",
            "apiVersion",
            "verb",
            "sourceIPs",
            "objectRef.apiVersion",
            "objectRef.apiGroup",
            "user.username",
            "responseStatus.code",
            "protoPayload.methodName",
            "protoPayload.@type",
            "protoPayload.requestMetadata.callerIp",
            "protoPayload.status.code",
            "logName",
            "operationName",
            "resourceId",
            "tenantId",
            "time",
            "category",
            "Type",
            "properties.userPrincipalName",
            "properties.vigil.seq",
            "properties.event.dataset",
            "resultType",
            "InitiatedBy",
            "OperationName",
            "eventType",
            "published",
            "actor.alternateId",
            "client.ipAddress",
            "outcome.result",
            "Operation",
            "Workload",
            "RecordType",
            "CreationTime",
            "UserId",
            "ClientIP",
            "action",
            "actor",
            "created_at",
            "org",
            "event.dataset",
            "source.ip",
            "user.name",
            "vigil.source",
            "@timestamp",
        ]);
        let values = prop_oneof![
            prop::sample::select(vec![
                "Event",
                "audit.k8s.io/v1",
                "batch/v1",
                "/",
                "SignInLogs",
                "AuditLogs",
                "AzureActivity",
                "OfficeActivity",
                "user.session.start",
                "repo.create",
                "x.",
                "1.2.3.4",
                "[::1]:80",
                "203.0.113.9:443",
                "nonsense",
                "",
                "0",
                "50126",
                "{\"user\":{\"userPrincipalName\":\"a@b\",\"ipAddress\":\"1.2.3.4\"}}",
                "{\"user\":",
                "/subscriptions/",
                "/subscriptions/s1/x",
                "vigil.audit",
                "2024-01-01T00:00:00Z",
                "type.googleapis.com/google.cloud.audit.AuditLog",
                "projects/p/logs/cloudaudit.googleapis.com%2Factivity",
                "é\u{0}",
            ])
            .prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<bool>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            Just(serde_json::json!(["1.2.3.4", 7])),
            Just(serde_json::json!([{"granted": false}, 3])),
        ];
        let records = prop::collection::vec((keys, values), 0..14);
        proptest!(ProptestConfig::with_cases(3000), |(pairs in records)| {
            let mut doc = serde_json::Map::new();
            for (k, v) in pairs {
                doc.insert(k.to_owned(), v);
            }
            let text = serde_json::Value::Object(doc).to_string();
            let Ok(original) = Event::from_json(&text, Timestamp::from_secs(0)) else {
                return Ok(());
            };
            let mut event = original.clone();
            let recognised = recognise(&event);
            let log = enrich(&mut event);
            prop_assert_eq!(log, recognised);
            match log {
                None => prop_assert_eq!(&event, &original),
                Some(log) => {
                    prop_assert_eq!(event.get_str("event.dataset"), Some(log.dataset()));
                    for (k, v) in original.fields() {
                        if k != "event.dataset" {
                            prop_assert_eq!(event.get(k), Some(v), "{} changed", k);
                        }
                    }
                    for (k, _) in event.fields() {
                        if !original.contains(k) {
                            prop_assert!(!crate::reserved::is_reserved_field(k), "{} added", k);
                        }
                    }
                }
            }
            // And through the whole parser: never a panic.
            let ctx = ParseContext::new(Timestamp::from_secs(0), "t");
            let _ = parse_line(text.as_bytes(), Format::Auto, &ctx);
        });
    }
}
