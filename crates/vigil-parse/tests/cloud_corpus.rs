//! The cloud and identity audit log parsers against the labelled sample events in the corpus
//! (`panther-rule-test-events`: Azure Activity, Entra ID, GCP, Okta, GitHub, Kubernetes (EKS),
//! Microsoft 365; `security-datasets-goldensaml`: Sentinel `AuditLogs` and `OfficeActivity`
//! rows; `crowdsec-hub-testlogs`: a Kubernetes audit line).
//!
//! For every record: no `parse_error`, the dataset the Sigma logsource table selects, and
//! `source.ip`, `user.name` and `event.action` equal to what is read here, independently of
//! the parser, from the raw JSON (by the provider's documented field names; keys are also
//! looked up in lower case, as some of the samples write them). The counts of each are
//! printed and must be non-zero where the provider's records carry the field.

mod common;

use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

use common::corpus;
use serde_json::Value as Json;
use vigil_event::{Event, Timestamp, Value, tag};
use vigil_parse::{Format, ParseContext, parse_line};

/// The value at a dotted path, each key tried as written and in lower case.
fn jget<'a>(v: &'a Json, path: &str) -> Option<&'a Json> {
    let mut cur = v;
    for key in path.split('/') {
        let obj = cur.as_object()?;
        cur = obj
            .get(key)
            .or_else(|| obj.get(&key.to_ascii_lowercase()))?;
    }
    Some(cur)
}

fn jtext(v: &Json, path: &str) -> Option<String> {
    match jget(v, path)? {
        Json::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn jip(v: &Json, path: &str) -> Option<IpAddr> {
    let text = match jget(v, path)? {
        Json::String(s) => s.clone(),
        Json::Array(items) => items.first()?.as_str()?.to_owned(),
        _ => return None,
    };
    let t = text.trim();
    t.parse()
        .ok()
        .or_else(|| t.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

/// One format: where its records are and what they must become. Paths use `/` between keys
/// (the providers' keys themselves hold dots).
struct Spec {
    file: &'static str,
    /// The dataset of each record, chosen from the raw record.
    dataset: fn(&Json) -> &'static str,
    ip: &'static [&'static str],
    user: &'static [&'static str],
    action: &'static [&'static str],
    time: &'static [&'static str],
    /// The outcome the raw record states, where the provider states one plainly.
    outcome: fn(&Json) -> Option<&'static str>,
    /// What a well-formed record has (some unit-test samples are cut down to one field; they
    /// are counted and left out).
    required: &'static [&'static str],
}

fn no_outcome(_: &Json) -> Option<&'static str> {
    None
}

/// An Azure result word.
fn azure_outcome(raw: &Json) -> Option<&'static str> {
    let r = jtext(raw, "resultType")
        .or_else(|| jtext(raw, "properties/result"))?
        .to_ascii_lowercase();
    match r.as_str() {
        "success" | "succeeded" => Some("success"),
        "failure" | "failed" => Some("failure"),
        _ => None,
    }
}

const SPECS: &[Spec] = &[
    Spec {
        file: "panther-rule-test-events/rule-tests/Azure.MonitorActivity.jsonl",
        dataset: |_| "azure.activitylogs",
        ip: &["callerIpAddress"],
        user: &[
            "caller",
            "identity/claims/http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
            "identity/claims/name",
            "identity/authorization/evidence/principalId",
        ],
        action: &["operationName", "operationName/value"],
        time: &["time"],
        outcome: azure_outcome,
        required: &[],
    },
    Spec {
        file: "panther-rule-test-events/rule-tests/Azure.Audit.jsonl",
        dataset: |raw| {
            let category = jtext(raw, "category")
                .unwrap_or_default()
                .to_ascii_lowercase();
            if category.ends_with("signinlogs") {
                "azure.signinlogs"
            } else {
                "azure.auditlogs"
            }
        },
        ip: &[
            "properties/ipAddress",
            "properties/initiatedBy/user/ipAddress",
            "callerIpAddress",
        ],
        user: &[
            "properties/userPrincipalName",
            "properties/servicePrincipalName",
            "identity",
            "properties/initiatedBy/user/userPrincipalName",
            "properties/initiatedBy/app/displayName",
        ],
        action: &["operationName"],
        time: &["time"],
        outcome: no_outcome,
        required: &[],
    },
    Spec {
        file: "panther-rule-test-events/rule-tests/GCP.AuditLog.jsonl",
        dataset: |_| "gcp.audit",
        ip: &["protoPayload/requestMetadata/callerIp"],
        user: &[
            "protoPayload/authenticationInfo/principalEmail",
            "protoPayload/authenticationInfo/principalSubject",
        ],
        action: &["protoPayload/methodName"],
        time: &["timestamp", "receiveTimestamp"],
        outcome: no_outcome,
        required: &["protoPayload/methodName"],
    },
    Spec {
        file: "panther-rule-test-events/rule-tests/Okta.SystemLog.jsonl",
        dataset: |_| "okta.system",
        ip: &["client/ipAddress"],
        user: &["actor/alternateId"],
        action: &["eventType"],
        time: &["published"],
        outcome: |raw| match jtext(raw, "outcome/result")?.as_str() {
            "SUCCESS" | "ALLOW" => Some("success"),
            "FAILURE" | "DENY" => Some("failure"),
            _ => Some("unknown"),
        },
        required: &[],
    },
    Spec {
        file: "panther-rule-test-events/rule-tests/GitHub.Audit.jsonl",
        dataset: |_| "github.audit",
        ip: &["actor_ip"],
        user: &["actor"],
        action: &["action"],
        time: &["created_at"],
        outcome: no_outcome,
        required: &["actor"],
    },
    Spec {
        file: "panther-rule-test-events/rule-tests/Amazon.EKS.Audit.jsonl",
        dataset: |_| "kubernetes.audit_logs",
        ip: &["sourceIPs"],
        user: &["user/username"],
        action: &["verb"],
        time: &["requestReceivedTimestamp", "stageTimestamp"],
        outcome: |raw| {
            let code = jget(raw, "responseStatus/code")?.as_i64()?;
            let forbid = raw["annotations"]["authorization.k8s.io/decision"]
                .as_str()
                .is_some_and(|d| d.eq_ignore_ascii_case("forbid"));
            Some(if code >= 400 || forbid {
                "failure"
            } else {
                "success"
            })
        },
        required: &["verb"],
    },
    Spec {
        file: "crowdsec-hub-testlogs/k8s-audit-priv-pod-file/k8s-audit-priv-pod-file.log",
        dataset: |_| "kubernetes.audit_logs",
        ip: &["sourceIPs"],
        user: &["user/username"],
        action: &["verb"],
        time: &["requestReceivedTimestamp", "stageTimestamp"],
        outcome: no_outcome,
        required: &[],
    },
    Spec {
        file: "panther-rule-test-events/rule-tests/Microsoft365.Audit.jsonl",
        dataset: |_| "o365.audit",
        ip: &["ClientIP", "ClientIPAddress", "ActorIpAddress"],
        user: &["UserId"],
        action: &["Operation"],
        time: &["CreationTime"],
        outcome: no_outcome,
        required: &[],
    },
];

/// What one file gave: records, and how many had an address, a user and an action.
#[derive(Debug, Default)]
struct Counts {
    records: usize,
    /// Records without what [`Spec::required`] names.
    cut_down: usize,
    ip: usize,
    user: usize,
    action: usize,
    outcome: usize,
}

fn check(spec: &Spec, text: &str) -> Counts {
    let received = Timestamp::parse("2026-12-07T00:00:00Z").unwrap();
    let ctx = ParseContext::new(received, "corpus");
    let mut counts = Counts::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{}:{}", spec.file, i + 1);
        let raw: Json = serde_json::from_str(line).unwrap_or_else(|e| panic!("{at}: {e}"));
        if spec.required.iter().any(|p| jget(&raw, p).is_none()) {
            counts.cut_down += 1;
            continue;
        }
        let e: Event = parse_line(line.as_bytes(), Format::Auto, &ctx);
        counts.records += 1;
        assert!(!e.has_tag(tag::PARSE_ERROR), "{at}: {e:?}");
        assert_eq!(
            e.get_str("event.dataset"),
            Some((spec.dataset)(&raw)),
            "{at}"
        );
        let ip = spec.ip.iter().find_map(|p| jip(&raw, p));
        assert_eq!(
            e.get("source.ip").and_then(Value::as_ip),
            ip,
            "{at}: source.ip"
        );
        counts.ip += usize::from(ip.is_some());
        let user = spec.user.iter().find_map(|p| jtext(&raw, p));
        assert_eq!(
            e.get_str("user.name").map(str::to_owned),
            user,
            "{at}: user.name"
        );
        counts.user += usize::from(user.is_some());
        let action = spec.action.iter().find_map(|p| jtext(&raw, p));
        assert_eq!(
            e.get_str("event.action").map(str::to_owned),
            action.map(|a| a.trim().to_owned()),
            "{at}: event.action"
        );
        counts.action += usize::from(e.contains("event.action"));
        counts.outcome += usize::from(e.contains("event.outcome"));
        if let Some(outcome) = (spec.outcome)(&raw) {
            assert_eq!(
                e.get_str("event.outcome"),
                Some(outcome),
                "{at}: event.outcome"
            );
        }
        // The record's own time, where it holds a readable one.
        let time = spec.time.iter().find_map(|p| match jget(&raw, p)? {
            Json::String(t) => Timestamp::parse(t).ok(),
            Json::Number(n) => Some(Timestamp::from_epoch_int(n.as_i64()?)),
            _ => None,
        });
        if let Some(t) = time {
            assert_eq!(e.timestamp(), t, "{at}: the record's own time");
        }
        // The raw names stay for Sigma.
        for key in raw.as_object().unwrap().keys() {
            if !key.starts_with('@') && raw[key].is_string() {
                assert!(e.contains(key), "{at}: kept {key}");
            }
        }
    }
    counts
}

fn read(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path
        .extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("zip"))
    {
        return unzip_first(&bytes);
    }
    String::from_utf8(bytes).unwrap()
}

/// The first member of a zip archive (stored or deflated), enough for the corpus's one-file
/// archives.
fn unzip_first(bytes: &[u8]) -> String {
    assert_eq!(&bytes[..4], b"PK\x03\x04", "a zip archive");
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]) as usize;
    let u32_at = |i: usize| {
        u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]) as usize
    };
    let method = u16_at(8);
    let mut size = u32_at(18);
    let name_len = u16_at(26);
    let extra_len = u16_at(28);
    let start = 30 + name_len + extra_len;
    if size == 0 {
        // Sizes in a data descriptor: take everything up to the central directory.
        let cd = bytes
            .windows(4)
            .position(|w| w == b"PK\x01\x02")
            .expect("a central directory");
        size = cd - start;
    }
    let data = &bytes[start..start + size];
    let mut out = String::new();
    match method {
        0 => out.push_str(std::str::from_utf8(data).unwrap()),
        8 => {
            flate2::read::DeflateDecoder::new(data)
                .read_to_string(&mut out)
                .unwrap();
        }
        m => panic!("zip method {m}"),
    }
    out
}

#[test]
fn cloud_audit_logs_become_ecs() {
    let Some(corpus) = corpus() else {
        return;
    };
    for spec in SPECS {
        let text = read(&corpus.join(spec.file));
        let c = check(spec, &text);
        eprintln!("{}: {c:?}", spec.file);
        assert!(c.records > 0, "{}", spec.file);
        assert_eq!(
            c.action, c.records,
            "{}: every record has an action",
            spec.file
        );
        assert_eq!(
            c.outcome, c.records,
            "{}: every record has an outcome",
            spec.file
        );
        assert!(c.user > 0, "{}", spec.file);
        if !spec.file.contains("GitHub") {
            assert!(c.ip > 0, "{}", spec.file);
        }
    }
}

/// The Sentinel (Log Analytics) rows of the Golden SAML dataset: Entra ID `AuditLogs` and
/// Microsoft 365 `OfficeActivity`.
#[test]
fn sentinel_rows_become_ecs() {
    let Some(corpus) = corpus() else {
        return;
    };
    let dir =
        corpus.join("security-datasets-goldensaml/datasets/compound/GoldenSAMLADFSMailAccess");
    let ctx = ParseContext::new(Timestamp::parse("2026-12-07T00:00:00Z").unwrap(), "corpus");
    let audit = read(&dir.join("AADAuditEvents.Zip"));
    let mut n = 0;
    for line in audit.lines().filter(|l| !l.trim().is_empty()) {
        let raw: Json = serde_json::from_str(line).unwrap();
        let e = parse_line(line.as_bytes(), Format::Auto, &ctx);
        assert!(!e.has_tag(tag::PARSE_ERROR));
        assert_eq!(e.get_str("event.dataset"), Some("azure.auditlogs"));
        // The initiator is JSON text inside the row.
        let initiated: Json = serde_json::from_str(raw["InitiatedBy"].as_str().unwrap()).unwrap();
        let upn = initiated["user"]["userPrincipalName"]
            .as_str()
            .or_else(|| initiated["app"]["displayName"].as_str());
        assert_eq!(e.get_str("user.name"), upn);
        assert_eq!(
            e.get_str("properties.message"),
            Some(raw["OperationName"].as_str().unwrap().trim())
        );
        assert_eq!(
            e.timestamp(),
            Timestamp::parse(raw["TimeGenerated"].as_str().unwrap()).unwrap()
        );
        let outcome = match raw["Result"].as_str() {
            Some("success") => Some("success"),
            Some("failure") => Some("failure"),
            _ => None,
        };
        assert_eq!(e.get_str("event.outcome"), outcome);
        n += 1;
    }
    assert_eq!(n, 4);
    let office = read(&dir.join("OfficeActivityEvents.Zip"));
    let line = office.lines().next().unwrap();
    let raw: Json = serde_json::from_str(line).unwrap();
    let e = parse_line(line.as_bytes(), Format::Auto, &ctx);
    assert_eq!(e.get_str("event.dataset"), Some("o365.audit"));
    assert_eq!(e.get_str("event.action"), raw["Operation"].as_str());
    assert_eq!(e.get_str("user.name"), raw["UserId"].as_str());
    assert_eq!(
        e.get("source.ip").and_then(Value::as_ip),
        raw["Client_IPAddress"]
            .as_str()
            .and_then(|s| s.parse().ok())
    );
    assert_eq!(e.get_str("event.outcome"), Some("success"));
}

/// Records of one provider are never taken for another's, and ordinary application JSON is
/// none of them.
#[test]
fn recognition_is_specific() {
    let ctx = ParseContext::new(Timestamp::parse("2026-12-07T00:00:00Z").unwrap(), "t");
    for line in [
        r#"{"level":"info","msg":"user logged in","user":"alice","action":"login"}"#,
        r#"{"event":{"action":"authn_login_fail:alice"},"source":{"ip":"203.0.113.5"}}"#,
        r#"{"kind":"Event","message":"not an audit event"}"#,
        r#"{"eventType":"Login Failed","actor":"x"}"#,
        r#"{"operationName":"op","time":"2024-01-01T00:00:00Z"}"#,
        r#"{"Operation":"Send","Workload":"mail"}"#,
    ] {
        let e = parse_line(line.as_bytes(), Format::Auto, &ctx);
        let dataset = e.get_str("event.dataset");
        assert!(
            vigil_parse::cloud::recognise(&e).is_none() && dataset.is_none(),
            "{line}: {dataset:?}"
        );
    }
}
