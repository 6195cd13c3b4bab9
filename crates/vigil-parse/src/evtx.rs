//! Windows event logs (`.evtx` files) → events, through the `evtx` crate.
//!
//! Each record keeps its fields under the names Windows (and Sigma) use: the `System` fields
//! (`EventID`, `Channel`, `Computer`, `Provider_Name`, `EventRecordID`, …, attributes joined with
//! `_`) and the `EventData`/`UserData` fields by their own names (`CommandLine`, `Image`,
//! `TargetUserName`, …), without spaces, as Sigma spells them (Defender's `Threat Name` is
//! `ThreatName`: [`sigma_name`]). Obvious ECS fields are added: `event.code`, `host.name`,
//! `winlog.channel`, `winlog.provider_name`, `process.command_line`, `user.name`, `source.ip`, and
//! for the common Security events `event.category`/`event.type`/`event.outcome`.

use serde_json::Value as Json;
use vigil_event::{
    Category, Event, EventKind, EventType, Outcome, Parser, Timestamp, Value, field,
};

/// What could not be read from an EVTX file. Never worth a retry: the bytes are as they are.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvtxError {
    /// The file as a whole: not EVTX, or its header is damaged. Nothing was read.
    #[error("not a readable EVTX file: {0}")]
    File(#[source] evtx::err::EvtxError),
    /// One record (the others are read).
    #[error("{0}")]
    Record(#[source] evtx::err::EvtxError),
}

/// Reads every record of an EVTX file. Records the `evtx` crate cannot read are returned as
/// errors ([`EvtxError::Record`]) in place, so one damaged chunk does not hide the rest.
pub fn parse_file(bytes: Vec<u8>) -> Result<Vec<Result<Event, EvtxError>>, EvtxError> {
    let settings = evtx::ParserSettings::new().num_threads(0);
    let mut parser = evtx::EvtxParser::from_buffer(bytes)
        .map_err(EvtxError::File)?
        .with_configuration(settings);
    Ok(parser
        .records_json_value()
        .map(|record| match record {
            Ok(r) => Ok(record_to_event(&r.data, Some(r.event_record_id))),
            Err(e) => Err(EvtxError::Record(e)),
        })
        .collect())
}

/// Converts one record's JSON (as produced by `evtx`) into an event.
pub fn record_to_event(record: &Json, record_id: Option<u64>) -> Event {
    let mut event = Event::new(Timestamp::default());
    let root = record.get("Event").unwrap_or(record);
    if let Some(Json::Object(system)) = root.get("System") {
        for (name, value) in system {
            flatten_named(&mut event, name, value);
        }
    }
    for section in ["EventData", "UserData"] {
        match root.get(section) {
            Some(Json::Object(data)) => {
                for (name, value) in data {
                    if name == "#attributes" {
                        continue;
                    }
                    if section == "UserData"
                        && let Json::Object(inner) = value
                    {
                        for (n, v) in inner {
                            if n != "#attributes" {
                                flatten_named(&mut event, &sigma_name(n), v);
                            }
                        }
                        continue;
                    }
                    flatten_named(&mut event, &sigma_name(name), value);
                }
            }
            Some(Json::Null) | None => {}
            Some(other) => flatten_named(&mut event, section, other),
        }
    }
    // EventData and UserData names are the record writer's choice: they cannot claim Vigil's.
    crate::reserved::quarantine(&mut event);
    if let Some(t) = event
        .get_str("TimeCreated_SystemTime")
        .and_then(|s| Timestamp::parse(s).ok())
    {
        event.set_timestamp(t);
    }
    if let Some(id) = record_id {
        event.insert("winlog.record_id", id as i64);
    }
    add_ecs(&mut event, false);
    event.insert(field::VIGIL_PARSER, Parser::Evtx);
    event
}

/// An event data name as Sigma spells it: white space removed (the Sigma specification's rule
/// for field names with spaces; Defender writes `Threat Name`, Sigma rules say `ThreatName`).
pub fn sigma_name(name: &str) -> std::borrow::Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_whitespace()) {
        std::borrow::Cow::Owned(name.chars().filter(|c| !c.is_ascii_whitespace()).collect())
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

fn scalar(value: &Json) -> Option<Value> {
    Some(match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => Value::List(items.iter().filter_map(scalar).collect()),
        Json::Object(_) => return None,
    })
}

/// `Name: scalar` → `Name`; `Name: {"#text": x, "#attributes": {a: y}}` → `Name` = x,
/// `Name_a` = y; nested objects → `Name_Child`.
fn flatten_named(event: &mut Event, name: &str, value: &Json) {
    match value {
        Json::Object(map) => {
            for (k, v) in map {
                match k.as_str() {
                    "#text" => {
                        if let Some(s) = scalar(v) {
                            event.insert(name, s);
                        }
                    }
                    "#attributes" => {
                        if let Json::Object(attrs) = v {
                            for (a, av) in attrs {
                                if let Some(s) = scalar(av) {
                                    event.insert(format!("{name}_{a}"), s);
                                }
                            }
                        }
                    }
                    child => flatten_named(event, &format!("{name}_{child}"), v),
                }
            }
        }
        other => {
            if let Some(s) = scalar(other) {
                event.insert(name, s);
            }
        }
    }
}

fn copy(event: &mut Event, from: &str, to: &str, keep: bool) {
    if keep && event.contains(to) {
        return;
    }
    if let Some(v) = event.get(from).cloned()
        && !matches!(&v, Value::Str(s) if s.is_empty() || s == "-")
    {
        let v = match (to.ends_with(".ip"), v) {
            (true, Value::Str(s)) => match s.parse() {
                Ok(ip) => Value::Ip(ip),
                Err(_) => return,
            },
            (_, v) => v,
        };
        event.insert(to, v);
    }
}

/// Adds the ECS fields named in the module documentation to an event that carries EVTX names.
/// `keep`: fields the event already has (a shipper's own ECS) are left as they are.
pub(crate) fn add_ecs(event: &mut Event, keep: bool) {
    let id = match event.get("EventID") {
        Some(Value::Int(i)) => Some(*i),
        Some(Value::Str(s)) => s.parse().ok(),
        _ => None,
    };
    if let Some(id) = id {
        event.insert("event.code", id.to_string());
        event.insert("winlog.event_id", id);
    }
    copy(event, "Computer", "host.name", keep);
    copy(event, "Channel", "winlog.channel", keep);
    copy(event, "Provider_Name", "winlog.provider_name", keep);
    copy(event, "CommandLine", "process.command_line", keep);
    copy(event, "Image", "process.executable", keep);
    copy(event, "NewProcessName", "process.executable", keep);
    copy(event, "ParentImage", "process.parent.executable", keep);
    copy(event, "IpAddress", "source.ip", keep);
    copy(event, "SourceAddress", "source.ip", keep);
    copy(event, "SourceIp", "source.ip", keep);
    copy(event, "DestinationIp", "destination.ip", keep);
    copy(event, "TargetUserName", "user.name", keep);
    if !event.contains("user.name") {
        copy(event, "SubjectUserName", "user.name", keep);
    }
    copy(event, "WorkstationName", "source.domain", keep);
    event.insert(field::EVENT_KIND, EventKind::Event);
    let channel = event.get_str("Channel").unwrap_or("").to_owned();
    let classification = match (channel.as_str(), id) {
        ("Security", Some(4624)) => Some((
            Category::Authentication,
            EventType::Start,
            Outcome::Success,
            "logged-in",
        )),
        ("Security", Some(4625)) => Some((
            Category::Authentication,
            EventType::Start,
            Outcome::Failure,
            "logon-failed",
        )),
        ("Security", Some(4634 | 4647)) => Some((
            Category::Authentication,
            EventType::End,
            Outcome::Success,
            "logged-out",
        )),
        ("Security", Some(4648)) => Some((
            Category::Authentication,
            EventType::Start,
            Outcome::Success,
            "logged-in-explicit",
        )),
        ("Security", Some(4672)) => Some((
            Category::Iam,
            EventType::Admin,
            Outcome::Success,
            "logged-in-special",
        )),
        ("Security", Some(4688)) => Some((
            Category::Process,
            EventType::Start,
            Outcome::Success,
            "created-process",
        )),
        ("Security", Some(4720)) => Some((
            Category::Iam,
            EventType::Creation,
            Outcome::Success,
            "added-user-account",
        )),
        ("Security", Some(4726)) => Some((
            Category::Iam,
            EventType::Deletion,
            Outcome::Success,
            "deleted-user-account",
        )),
        ("Security", Some(4728 | 4732 | 4756)) => Some((
            Category::Iam,
            EventType::Change,
            Outcome::Success,
            "added-member-to-group",
        )),
        ("Security", Some(4740)) => Some((
            Category::Iam,
            EventType::Change,
            Outcome::Success,
            "locked-out-user-account",
        )),
        ("Security", Some(4771 | 4776)) => Some((
            Category::Authentication,
            EventType::Start,
            Outcome::Unknown,
            "credential-validation",
        )),
        ("Security", Some(1102)) => Some((
            Category::Configuration,
            EventType::Deletion,
            Outcome::Success,
            "audit-log-cleared",
        )),
        ("Microsoft-Windows-Sysmon/Operational", Some(1)) => Some((
            Category::Process,
            EventType::Start,
            Outcome::Success,
            "process-created",
        )),
        ("Microsoft-Windows-Sysmon/Operational", Some(3)) => Some((
            Category::Network,
            EventType::Connection,
            Outcome::Success,
            "network-connection",
        )),
        ("System", Some(7045)) => Some((
            Category::Configuration,
            EventType::Creation,
            Outcome::Success,
            "service-installed",
        )),
        _ => None,
    };
    if let Some((category, kind, outcome, action)) = classification {
        event.insert(field::EVENT_CATEGORY, category);
        event.insert(field::EVENT_TYPE, kind);
        if outcome != Outcome::Unknown {
            event.insert(field::EVENT_OUTCOME, outcome);
        }
        event.insert(field::EVENT_ACTION, action);
    }
}

#[cfg(test)]
mod tests {
    use vigil_event::tag;

    use super::*;

    /// A record from a compromised Windows host cannot pass for Vigil's own event: data names
    /// such as `event.dataset` (with a `vigil.*` value) or `vigil.idempotency.key` move under
    /// `external.`.
    /// Bytes that are not EVTX are refused as a whole, with the reason, and nothing is read.
    #[test]
    fn a_file_that_is_not_evtx_is_a_file_error() {
        let err = parse_file(b"not an event log at all".to_vec()).unwrap_err();
        assert!(matches!(err, EvtxError::File(_)), "{err:?}");
        assert!(
            err.to_string().starts_with("not a readable EVTX file: "),
            "{err}"
        );
    }

    #[test]
    fn record_data_cannot_claim_vigil_names() {
        let record = serde_json::json!({"Event": {
            "System": {"EventID": 4625, "Channel": "Security", "Computer": "WS1"},
            "EventData": {"event.dataset": "vigil.audit", "event.action": "login_failure"},
            "UserData": {"X": {"vigil.idempotency.key": "k", "vigil.idempotency.events": 9_i64}}
        }});
        let e = record_to_event(&record, Some(1));
        assert_eq!(e.get("event.dataset"), None);
        assert_eq!(e.get_str("external.event.dataset"), Some("vigil.audit"));
        assert_eq!(e.get("vigil.idempotency.key"), None);
        assert_eq!(e.get_str("external.vigil.idempotency.key"), Some("k"));
        assert_eq!(e.get_str("vigil.parser"), Some("evtx"));
        assert!(e.has_tag(tag::RESERVED_CLAIM));
    }

    #[test]
    fn record_fields_keep_their_names() {
        let record = serde_json::json!({"Event": {
            "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing", "Guid": "{54849625}"}},
                "EventID": 4625,
                "TimeCreated": {"#attributes": {"SystemTime": "2019-03-19T23:34:35.664154Z"}},
                "EventRecordID": 3000,
                "Channel": "Security",
                "Computer": "DC01.example.local",
                "Execution": {"#attributes": {"ProcessID": 612, "ThreadID": 4}}
            },
            "EventData": {"TargetUserName": "admin", "IpAddress": "10.0.2.17", "LogonType": 3, "SubjectUserName": "-"}
        }});
        let e = record_to_event(&record, Some(3000));
        assert_eq!(e.get("EventID").and_then(Value::as_i64), Some(4625));
        assert_eq!(
            e.get_str("Provider_Name"),
            Some("Microsoft-Windows-Security-Auditing")
        );
        assert_eq!(
            e.get("Execution_ProcessID").and_then(Value::as_i64),
            Some(612)
        );
        assert_eq!(e.get_str("TargetUserName"), Some("admin"));
        assert_eq!(e.get("LogonType").and_then(Value::as_i64), Some(3));
        assert_eq!(e.get_str("event.code"), Some("4625"));
        assert_eq!(e.get_str("host.name"), Some("DC01.example.local"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "10.0.2.17");
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.timestamp().to_rfc3339(), "2019-03-19T23:34:35.664154Z");
    }
}
