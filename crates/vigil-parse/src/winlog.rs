//! Live Windows events: what Winlogbeat / Elastic Agent, NXLog and Fluent Bit ship as JSON, and
//! EVTX records rendered as JSON, become the event an `.evtx` file gives ([`crate::evtx`]).
//!
//! Sigma's Windows rules name the fields of the EVTX record (`EventID`, `Channel`,
//! `Provider_Name`, `TargetUserName`, `CommandLine`, …) and Vigil's logsource table selects
//! Windows events by `Channel`, `EventID` and `vigil.parser` (`evtx` or `winlog`). Each shipper
//! spells the record its own way; this module renames it back, so a rule matches a live event
//! exactly when it matches the same record read from a file:
//!
//! | shipper | recognised by | renamed |
//! |---|---|---|
//! | Winlogbeat, Elastic Agent (ECS) | `winlog.event_id` with `winlog.channel` or `winlog.provider_name` | `winlog.event_data.*`, `winlog.user_data.*` → their own names (moved, not copied; `param1…` also as the list `Data`, as the EVTX reader names unnamed data); `winlog.event_id` → `EventID`, `winlog.channel` → `Channel`, `winlog.provider_name`/`provider_guid` → `Provider_Name`/`Provider_Guid`, `winlog.computer_name` → `Computer`, `winlog.record_id` → `EventRecordID`, `winlog.process.pid`/`thread.id` → `Execution_ProcessID`/`ThreadID`, `winlog.user.identifier` → `Security_UserID`, `winlog.version` → `Version`; for Sysmon, the fields Winlogbeat's Sysmon module moved to ECS (`process.executable` …) back to Sysmon's names; for Security logons (4624/4625/4634/4648), `user.*` back to `TargetUserName`/`TargetDomainName`/`TargetUserSid` |
//! | NXLog (`im_msvistalog`, `to_json`) | `EventID` with `SourceName` and `Hostname`, `EventTime` or `SourceModuleType` | `SourceName` → `Provider_Name`, `Hostname` → `Computer`, `RecordNumber` → `EventRecordID`, `ProcessID`/`ThreadID` → `Execution_*`, `UserID` → `Security_UserID`; event data is already top-level |
//! | Fluent Bit `winevtlog` | `EventID` with `ProviderName`, `Channel` and `Computer` | `ProviderName` → `Provider_Name`, `ProcessID`/`ThreadID` → `Execution_*`, `UserID` → `Security_UserID` (event data only as `StringInserts`) |
//! | Fluent Bit `winlog` | `EventId` with `SourceName` and `ComputerName` | `EventId` → `EventID`, `SourceName` → `Provider_Name`, `ComputerName` → `Computer`, `RecordNumber` → `EventRecordID` |
//! | EVTX as JSON (`evtx_dump -o json`, `Get-WinEvent … \| ConvertTo-Json` of the XML) | `{"Event": {"System": {…}}}` | read by the EVTX reader itself ([`crate::evtx::record_to_event`]) |
//!
//! Event data names lose their spaces, as Sigma spells them ([`crate::evtx::sigma_name`]).
//! Then the ECS fields the EVTX reader adds are added where the shipper did not set them
//! (`event.code`, `host.name`, `user.name`, `source.ip`, `event.category`/`outcome` of the
//! common Security events …), and `vigil.parser` is `winlog`. Event data names are the record
//! writer's choice: like the EVTX reader's, they cannot claim Vigil's names
//! ([`crate::reserved::quarantine`]).
//!
//! Pure and bounded: only fields already in the event are read, each once; nothing recurses.

use serde_json::Value as Json;
use vigil_event::{Event, Parser, Timestamp, Value, field};

const SYSMON_CHANNEL: &str = "Microsoft-Windows-Sysmon/Operational";

/// Which shipper's JSON a Windows event came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shipper {
    /// Winlogbeat or Elastic Agent's Windows integration (ECS with `winlog.*`).
    Winlogbeat,
    /// NXLog's `im_msvistalog` with `to_json()`.
    Nxlog,
    /// Fluent Bit's `winevtlog` input.
    FluentBit,
    /// Fluent Bit's older `winlog` input.
    FluentBitLegacy,
}

impl Shipper {
    /// The name kept in `winlog.shipper`.
    pub fn as_str(self) -> &'static str {
        match self {
            Shipper::Winlogbeat => "winlogbeat",
            Shipper::Nxlog => "nxlog",
            Shipper::FluentBit => "fluent-bit",
            Shipper::FluentBitLegacy => "fluent-bit-winlog",
        }
    }
}

/// Whether a JSON document is an EVTX record rendered as JSON: `{"Event": {"System": {…}}}`.
pub fn is_evtx_json(json: &Json) -> bool {
    json.get("Event")
        .and_then(|e| e.get("System"))
        .is_some_and(Json::is_object)
}

/// An EVTX record rendered as JSON → the event the EVTX reader gives for it, with
/// `vigil.parser: winlog` (see [`is_evtx_json`]).
pub fn from_evtx_json(json: &Json) -> Event {
    let record_id = json
        .get("Event")
        .and_then(|e| e.get("System"))
        .and_then(|s| s.get("EventRecordID"))
        .and_then(|id| match id {
            Json::Number(n) => n.as_u64(),
            Json::String(s) => s.parse().ok(),
            _ => None,
        });
    let mut event = crate::evtx::record_to_event(json, record_id);
    event.insert(field::VIGIL_PARSER, Parser::Winlog);
    event
}

/// Which shipper's shape a JSON event has, if it is a Windows event.
pub fn shipper(event: &Event) -> Option<Shipper> {
    if event.contains("winlog.event_id")
        && (event.contains("winlog.channel") || event.contains("winlog.provider_name"))
    {
        return Some(Shipper::Winlogbeat);
    }
    if event.contains("EventID") {
        if event.contains("SourceName")
            && (event.contains("Hostname")
                || event.contains("EventTime")
                || event.contains("SourceModuleType"))
        {
            return Some(Shipper::Nxlog);
        }
        if event.contains("ProviderName") && event.contains("Channel") && event.contains("Computer")
        {
            return Some(Shipper::FluentBit);
        }
    }
    if event.contains("EventId") && event.contains("SourceName") && event.contains("ComputerName") {
        return Some(Shipper::FluentBitLegacy);
    }
    None
}

/// Renames a shipper's Windows event to EVTX names and adds the EVTX reader's ECS fields (see
/// the module documentation). `has_time`: the document had its own `@timestamp` (which then
/// stays the event time; otherwise the shipper's time field is read).
pub fn normalise(event: &mut Event, shipper: Shipper, has_time: bool) {
    let mut data: Vec<(String, Value)> = Vec::new();
    match shipper {
        Shipper::Winlogbeat => {
            // Event data first (moved), so a data name cannot displace a System name below.
            let moved: Vec<String> = event
                .fields()
                .filter(|(k, _)| {
                    k.starts_with("winlog.event_data.") || k.starts_with("winlog.user_data.")
                })
                .map(|(k, _)| k.to_owned())
                .collect();
            for key in moved {
                let Some(value) = event.remove(&key) else {
                    continue;
                };
                let name = key
                    .strip_prefix("winlog.event_data.")
                    .or_else(|| key.strip_prefix("winlog.user_data."))
                    .unwrap_or(&key);
                // Winlogbeat names the UserData element itself `xml_name`.
                if key.starts_with("winlog.user_data.") && name == "xml_name" {
                    continue;
                }
                data.push((crate::evtx::sigma_name(name).into_owned(), value));
            }
            // Unnamed `<Data>` elements: Winlogbeat numbers them `param1`, `param2`, …; the
            // EVTX reader (and Sigma's classic PowerShell rules) call them `Data`.
            if !data.iter().any(|(n, _)| n == "Data") {
                let mut params: Vec<(usize, Value)> = data
                    .iter()
                    .filter_map(|(n, v)| {
                        let i = n.strip_prefix("param")?.parse::<usize>().ok()?;
                        Some((i, v.clone()))
                    })
                    .collect();
                params.sort_by_key(|(i, _)| *i);
                match params.len() {
                    0 => {}
                    1 => data.push(("Data".into(), params.remove(0).1)),
                    _ => data.push((
                        "Data".into(),
                        Value::List(params.into_iter().map(|(_, v)| v).collect()),
                    )),
                }
            }
            // Event data may carry any name, `tags` included: it must not replace the tags the
            // JSON reader already set (a `reserved_claim` tag hidden by the document itself).
            let prior_tags: Vec<String> = event.tags().map(str::to_owned).collect();
            for (name, value) in data.drain(..) {
                event.insert(name, value);
            }
            crate::reserved::quarantine(event);
            for t in &prior_tags {
                event.add_tag(t);
            }
            if let Some(id) = event.get("winlog.event_id").and_then(event_id) {
                event.insert("EventID", id);
            }
            for (from, to) in [
                ("winlog.channel", "Channel"),
                ("winlog.provider_name", "Provider_Name"),
                ("winlog.provider_guid", "Provider_Guid"),
                ("winlog.computer_name", "Computer"),
                ("winlog.record_id", "EventRecordID"),
                ("winlog.process.pid", "Execution_ProcessID"),
                ("winlog.process.thread.id", "Execution_ThreadID"),
                ("winlog.user.identifier", "Security_UserID"),
                ("winlog.version", "Version"),
            ] {
                if let Some(v) = event.get(from).cloned() {
                    event.insert(to, v);
                }
            }
            if event.get_str("Channel") == Some(SYSMON_CHANNEL) {
                sysmon_from_ecs(event);
            }
            // Winlogbeat 7's Security processing moves the logon's target user to `user.*`.
            let logon = matches!(
                event.get("EventID").and_then(event_id),
                Some(4624 | 4625 | 4634 | 4648)
            );
            if logon && event.get_str("Channel") == Some("Security") {
                for (ecs, name) in [
                    ("user.name", "TargetUserName"),
                    ("user.domain", "TargetDomainName"),
                    ("user.id", "TargetUserSid"),
                ] {
                    if !event.contains(name)
                        && let Some(v) = event.get(ecs).cloned()
                    {
                        event.insert(name, v);
                    }
                }
            }
        }
        Shipper::Nxlog => {
            // Event data is top-level: names with spaces lose them.
            let spaced: Vec<String> = event
                .fields()
                .filter(|(k, _)| k.bytes().any(|b| b == b' '))
                .map(|(k, _)| k.to_owned())
                .collect();
            for key in spaced {
                let name = crate::evtx::sigma_name(&key).into_owned();
                // Never over a field NXLog wrote itself.
                if !event.contains(&name)
                    && let Some(v) = event.remove(&key)
                {
                    event.insert(name, v);
                }
            }
            crate::reserved::quarantine(event);
            rename(
                event,
                &[
                    ("SourceName", "Provider_Name"),
                    ("ProviderGuid", "Provider_Guid"),
                    ("Hostname", "Computer"),
                    ("RecordNumber", "EventRecordID"),
                    ("ProcessID", "Execution_ProcessID"),
                    ("ThreadID", "Execution_ThreadID"),
                    ("UserID", "Security_UserID"),
                ],
            );
            if !has_time {
                time_from(event, "EventTime");
                time_from(event, "TimeCreated");
            }
        }
        Shipper::FluentBit => {
            crate::reserved::quarantine(event);
            rename(
                event,
                &[
                    ("ProviderName", "Provider_Name"),
                    ("ProviderGuid", "Provider_Guid"),
                    ("ProcessID", "Execution_ProcessID"),
                    ("ThreadID", "Execution_ThreadID"),
                    ("UserID", "Security_UserID"),
                ],
            );
            if !has_time {
                time_from(event, "TimeCreated");
            }
        }
        Shipper::FluentBitLegacy => {
            crate::reserved::quarantine(event);
            rename(
                event,
                &[
                    ("EventId", "EventID"),
                    ("SourceName", "Provider_Name"),
                    ("ComputerName", "Computer"),
                    ("RecordNumber", "EventRecordID"),
                ],
            );
            if !has_time {
                time_from(event, "TimeGenerated");
            }
        }
    }
    // `EventID` as the EVTX reader gives it: a number.
    if let Some(id) = event.get("EventID").and_then(event_id) {
        event.insert("EventID", id);
    }
    crate::evtx::add_ecs(event, true);
    event.insert("winlog.shipper", shipper.as_str());
    event.insert(field::VIGIL_PARSER, Parser::Winlog);
}

/// An event id written as a number or as its text.
fn event_id(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn rename(event: &mut Event, pairs: &[(&str, &str)]) {
    for (from, to) in pairs {
        if !event.contains(to)
            && let Some(v) = event.remove(from)
        {
            event.insert(*to, v);
        }
    }
}

/// The event time from `key` (for a document without `@timestamp`). NXLog and Fluent Bit write
/// `2019-05-14 02:40:16[.mmm]` (local, taken as UTC) or with an offset
/// (`2021-05-19 16:52:32 +0900`).
fn time_from(event: &mut Event, key: &str) {
    let Some(text) = event.get_str(key) else {
        return;
    };
    let t = Timestamp::parse(text).ok().or_else(|| {
        let (date, rest) = text.trim().split_once(' ')?;
        let (time, zone) = match rest.split_once(' ') {
            Some((t, z)) => (t, z),
            None => (rest, "Z"),
        };
        let zone = match zone {
            "Z" => "Z".to_owned(),
            // `±hhmm`, ASCII digits only: a slice at byte 3 of anything else could cut a
            // character in two (a panic on one datagram).
            z if z.len() == 5
                && (z.starts_with('+') || z.starts_with('-'))
                && z[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                format!("{}:{}", &z[..3], &z[3..])
            }
            _ => return None,
        };
        Timestamp::parse(&format!("{date}T{time}{zone}")).ok()
    });
    if let Some(t) = t {
        event.set_timestamp(t);
    }
}

/// Winlogbeat's Sysmon module moves some Sysmon fields to ECS; Sigma names them as Sysmon
/// does. Each is restored when the event data no longer has it.
fn sysmon_from_ecs(event: &mut Event) {
    for (ecs, sysmon) in [
        ("process.executable", "Image"),
        ("process.command_line", "CommandLine"),
        ("process.entity_id", "ProcessGuid"),
        ("process.pid", "ProcessId"),
        ("process.working_directory", "CurrentDirectory"),
        ("process.parent.executable", "ParentImage"),
        ("process.parent.command_line", "ParentCommandLine"),
        ("process.parent.entity_id", "ParentProcessGuid"),
        ("process.parent.pid", "ParentProcessId"),
        ("process.pe.original_file_name", "OriginalFileName"),
        ("file.path", "TargetFilename"),
        ("dns.question.name", "QueryName"),
        ("source.ip", "SourceIp"),
        ("source.port", "SourcePort"),
        ("destination.ip", "DestinationIp"),
        ("destination.port", "DestinationPort"),
    ] {
        if !event.contains(sysmon)
            && let Some(v) = event.get(ecs)
        {
            let v = match v {
                Value::Ip(ip) => Value::Str(ip.to_string()),
                other => other.clone(),
            };
            event.insert(sysmon, v);
        }
    }
    // `User`: DOMAIN\name.
    if !event.contains("User")
        && let Some(name) = event.get_str("user.name")
    {
        let user = match event.get_str("user.domain") {
            Some(domain) => format!("{domain}\\{name}"),
            None => name.to_owned(),
        };
        event.insert("User", user);
    }
    // `Hashes`: `MD5=…,SHA256=…` from `hash.*` (or `process.hash.*`).
    if !event.contains("Hashes") {
        let mut parts = Vec::new();
        for (algo, label) in [
            ("sha1", "SHA1"),
            ("md5", "MD5"),
            ("sha256", "SHA256"),
            ("imphash", "IMPHASH"),
        ] {
            let v = event
                .get_str(&format!("hash.{algo}"))
                .or_else(|| event.get_str(&format!("process.hash.{algo}")))
                .or_else(|| event.get_str(&format!("process.pe.{algo}")));
            if let Some(v) = v {
                parts.push(format!("{label}={}", v.to_ascii_uppercase()));
            }
        }
        if !parts.is_empty() {
            event.insert("Hashes", parts.join(","));
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_event::tag;

    use super::*;
    use crate::{Format, ParseContext, parse_line};

    fn parse(line: &str) -> Event {
        let ctx = ParseContext::new(Timestamp::parse("2026-01-01T00:00:00Z").unwrap(), "t");
        parse_line(line.as_bytes(), Format::Auto, &ctx)
    }

    #[test]
    fn a_hostile_zone_or_event_data_tags_neither_panic_nor_hide_a_claim() {
        // Found in review: `&z[..3]` cut inside `é` (a panic on one UDP datagram).
        let e = parse(
            r#"{"EventID":1,"SourceName":"x","Hostname":"h","EventTime":"2020-01-01 00:00:00 +1é1"}"#,
        );
        assert_eq!(e.get_str("Computer"), Some("h"));
        // A document claiming Vigil's names keeps its reserved_claim tag even when its event
        // data is named `tags`.
        let e = parse(
            r#"{"vigil":{"sender":"api:admin/1"},"winlog":{"channel":"Security","event_id":4624,"event_data":{"tags":"x"}}}"#,
        );
        assert!(e.has_tag(tag::RESERVED_CLAIM), "{e:?}");
        assert!(e.get("vigil.sender").is_none());
    }

    #[test]
    fn winlogbeat_gets_evtx_names() {
        let e = parse(
            r#"{"@timestamp":"2019-08-02T09:46:20.000Z","event":{"code":4625,"kind":"event"},"host":{"name":"CLIENT1"},"message":"An account failed to log on.","winlog":{"channel":"Security","provider_name":"Microsoft-Windows-Security-Auditing","event_id":"4625","record_id":11571,"computer_name":"CLIENT1.lab","process":{"pid":612,"thread":{"id":4}},"event_data":{"TargetUserName":"admin","IpAddress":"10.0.2.17","LogonType":"3","Threat Name":"x"}}}"#,
        );
        assert!(!e.has_tag(tag::PARSE_ERROR));
        assert_eq!(e.get_str("vigil.parser"), Some("winlog"));
        assert_eq!(e.get_str("winlog.shipper"), Some("winlogbeat"));
        assert_eq!(e.get("EventID").and_then(Value::as_i64), Some(4625));
        assert_eq!(e.get_str("Channel"), Some("Security"));
        assert_eq!(
            e.get_str("Provider_Name"),
            Some("Microsoft-Windows-Security-Auditing")
        );
        assert_eq!(e.get_str("Computer"), Some("CLIENT1.lab"));
        assert_eq!(
            e.get("Execution_ProcessID").and_then(Value::as_i64),
            Some(612)
        );
        assert_eq!(e.get_str("TargetUserName"), Some("admin"));
        assert_eq!(e.get_str("ThreatName"), Some("x"));
        assert_eq!(e.get("winlog.event_data.TargetUserName"), None, "moved");
        // The EVTX reader's ECS, the shipper's own kept.
        assert_eq!(e.get_str("host.name"), Some("CLIENT1"));
        assert_eq!(e.get_str("event.code"), Some("4625"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("user.name"), Some("admin"));
        assert_eq!(e.get("source.ip").unwrap().to_string(), "10.0.2.17");
        assert_eq!(e.timestamp().to_rfc3339(), "2019-08-02T09:46:20Z");
    }

    /// Event data cannot pass for Vigil's own fields or dataset, nor displace the record's
    /// System fields.
    #[test]
    fn event_data_cannot_claim_vigil_names_or_system_fields() {
        let e = parse(
            r#"{"winlog":{"channel":"Security","event_id":4624,"event_data":{"vigil.parser":"evtx","event.dataset":"vigil.audit","EventID":"1","Channel":"System"}}}"#,
        );
        assert_eq!(e.get_str("vigil.parser"), Some("winlog"));
        assert_eq!(e.get_str("external.vigil.parser"), Some("evtx"));
        assert_eq!(e.get("event.dataset"), None);
        assert!(e.has_tag(tag::RESERVED_CLAIM));
        assert_eq!(e.get("EventID").and_then(Value::as_i64), Some(4624));
        assert_eq!(e.get_str("Channel"), Some("Security"));
    }

    #[test]
    fn evtx_json_is_read_as_evtx() {
        let line = r##"{"Event":{"#attributes":{"xmlns":"x"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Windows Defender"}},"EventID":1116,"EventRecordID":7,"TimeCreated":{"#attributes":{"SystemTime":"2024-01-02T03:04:05Z"}},"Channel":"Microsoft-Windows-Windows Defender/Operational","Computer":"PC1"},"EventData":{"Threat Name":"Virus:DOS/EICAR_Test_File","Path":"file:_C:\\t\\eicar.com"}}}"##;
        let e = parse(line);
        let json: Json = serde_json::from_str(line).unwrap();
        let direct = crate::evtx::record_to_event(&json, Some(7));
        for (k, v) in direct.fields() {
            if k != "vigil.parser" {
                assert_eq!(e.get(k), Some(v), "{k}");
            }
        }
        assert_eq!(e.get_str("vigil.parser"), Some("winlog"));
        assert_eq!(e.get_str("ThreatName"), Some("Virus:DOS/EICAR_Test_File"));
        assert_eq!(e.timestamp().to_rfc3339(), "2024-01-02T03:04:05Z");
    }

    #[test]
    fn nxlog_and_fluent_bit() {
        let e = parse(
            r#"{"EventTime":"2020-09-21 02:58:36","Hostname":"WORKSTATION5","SourceName":"Microsoft-Windows-Sysmon","EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","RecordNumber":12,"Image":"C:\\Windows\\System32\\cmd.exe","CommandLine":"cmd /c whoami","Threat Name":"t"}"#,
        );
        assert_eq!(e.get_str("winlog.shipper"), Some("nxlog"));
        assert_eq!(e.get_str("Provider_Name"), Some("Microsoft-Windows-Sysmon"));
        assert_eq!(e.get_str("Computer"), Some("WORKSTATION5"));
        assert_eq!(e.get_str("ThreatName"), Some("t"));
        assert_eq!(e.get_str("process.command_line"), Some("cmd /c whoami"));
        assert_eq!(e.timestamp().to_rfc3339(), "2020-09-21T02:58:36Z");
        // A shipper's `@timestamp` stays the event time; data cannot displace NXLog's own.
        let e = parse(
            r#"{"@timestamp":"2020-09-21T06:58:38Z","EventTime":"2020-09-21 02:58:36","Hostname":"W5","SourceName":"S","EventID":4624,"Channel":"Security","Event ID":"9"}"#,
        );
        assert_eq!(e.timestamp().to_rfc3339(), "2020-09-21T06:58:38Z");
        assert_eq!(e.get("EventID").and_then(Value::as_i64), Some(4624));
        let e = parse(
            r#"{"ProviderName":"Microsoft-Windows-Security-Auditing","EventID":4624,"Channel":"Security","Computer":"DC1","TimeCreated":"2021-05-19 16:52:32 +0900","EventRecordID":5,"StringInserts":["S-1-5-18"]}"#,
        );
        assert_eq!(e.get_str("winlog.shipper"), Some("fluent-bit"));
        assert_eq!(
            e.get_str("Provider_Name"),
            Some("Microsoft-Windows-Security-Auditing")
        );
        assert_eq!(e.timestamp().to_rfc3339(), "2021-05-19T07:52:32Z");
        assert_eq!(e.get_str("event.outcome"), Some("success"));
        let e = parse(
            r#"{"RecordNumber":3,"TimeGenerated":"2021-05-19 16:52:32 +0000","EventId":7045,"Channel":"System","SourceName":"Service Control Manager","ComputerName":"PC"}"#,
        );
        assert_eq!(e.get_str("winlog.shipper"), Some("fluent-bit-winlog"));
        assert_eq!(e.get("EventID").and_then(Value::as_i64), Some(7045));
        assert_eq!(e.get_str("event.action"), Some("service-installed"));
    }

    #[test]
    fn sysmon_fields_moved_to_ecs_come_back() {
        let e = parse(
            r#"{"process":{"executable":"C:\\x\\a.exe","command_line":"a.exe -x","pid":1416,"parent":{"executable":"C:\\Windows\\explorer.exe"}},"user":{"domain":"client","name":"setup"},"hash":{"md5":"0ee3","sha256":"c209"},"winlog":{"channel":"Microsoft-Windows-Sysmon/Operational","event_id":1,"provider_name":"Microsoft-Windows-Sysmon","event_data":{"IntegrityLevel":"High"}}}"#,
        );
        assert_eq!(e.get_str("Image"), Some("C:\\x\\a.exe"));
        assert_eq!(e.get_str("CommandLine"), Some("a.exe -x"));
        assert_eq!(e.get_str("ParentImage"), Some("C:\\Windows\\explorer.exe"));
        assert_eq!(e.get("ProcessId").and_then(Value::as_i64), Some(1416));
        assert_eq!(e.get_str("User"), Some("client\\setup"));
        assert_eq!(e.get_str("Hashes"), Some("MD5=0EE3,SHA256=C209"));
        assert_eq!(e.get_str("IntegrityLevel"), Some("High"));
    }

    /// Documents that only look a little like a shipper's stay plain JSON.
    #[test]
    fn other_json_is_not_windows() {
        for line in [
            r#"{"EventID":4624,"message":"x"}"#,
            r#"{"winlog":{"channel":"Security"}}"#,
            r#"{"Event":{"System":"x"}}"#,
        ] {
            let e = parse(line);
            assert_eq!(e.get_str("vigil.parser"), Some("json"), "{line}");
        }
    }
}
