//! JSON events: ECS passes through; OWASP logging-vocabulary events are classified.
//!
//! An application that logs `{"event.action": "authn_login_fail:alice", …}` (or OWASP's own
//! shape, `{"event": "authn_login_fail:alice", "datetime": …, "description": …}`) gets
//! `event.category`, `event.type` and `event.outcome` from the vocabulary, and the user named in
//! the action's argument, unless the event already says otherwise.

use vigil_event::{
    Category, Event, EventKind, EventType, Outcome, Parser, Timestamp, Value, field,
};

use crate::{LineError, ParseContext};

/// Parses one JSON object.
pub fn parse(line: &str, ctx: &ParseContext) -> Result<Event, LineError> {
    // An EVTX record rendered as JSON is read by the EVTX reader (`winlog`).
    if line.contains("\"System\"")
        && let Ok(json) = serde_json::from_str::<serde_json::Value>(line)
        && crate::winlog::is_evtx_json(&json)
    {
        let mut event = crate::winlog::from_evtx_json(&json);
        if event.timestamp() == Timestamp::default() {
            event.set_timestamp(ctx.received);
        }
        return Ok(event);
    }
    let has_timestamp = line.contains("\"@timestamp\"");
    let mut event = Event::from_json(line, ctx.received)?;
    // The input's own `vigil.*` fields and a `vigil.*` dataset are claims, not facts.
    crate::reserved::quarantine(&mut event);
    // Windows events shipped live get the names an EVTX record has (`winlog`).
    if let Some(shipper) = crate::winlog::shipper(&event) {
        crate::winlog::normalise(&mut event, shipper, has_timestamp);
        return Ok(event);
    }
    if !has_timestamp {
        vendor_timestamp(&mut event);
    }
    crate::zeek_json::enrich(&mut event);
    // A cloud audit record keeps its own names (`level`, `event`, `description` are the
    // provider's, not OWASP's).
    if crate::cloud::enrich(&mut event).is_none() {
        owasp_shape(&mut event);
        classify_owasp(&mut event);
    }
    event.insert(field::VIGIL_PARSER, Parser::Json);
    Ok(event)
}

/// Zeek (`ts`) and Suricata (`timestamp`) times, RFC 3339 or epoch seconds.
fn vendor_timestamp(event: &mut Event) {
    for key in ["timestamp", "ts"] {
        let t = match event.get(key) {
            Some(Value::Str(s)) => Timestamp::parse(s).ok(),
            Some(Value::Float(f)) => Timestamp::from_epoch_number(*f).ok(),
            Some(Value::Int(i)) => Some(Timestamp::from_epoch_int(*i)),
            _ => None,
        };
        if let Some(t) = t {
            event.set_timestamp(t);
            return;
        }
    }
}

/// OWASP's example log shape → ECS names.
fn owasp_shape(event: &mut Event) {
    if let Some(Value::Str(name)) = event.get("event").cloned()
        && !event.contains("event.action")
    {
        event.remove("event");
        event.insert("event.action", name);
    }
    if event.get("datetime").is_some()
        && let Some(Value::Str(dt)) = event.remove("datetime")
        && let Ok(t) = Timestamp::parse(&dt)
    {
        event.set_timestamp(t);
    }
    for (from, to) in [
        ("description", "message"),
        ("level", "log.level"),
        ("appid", "service.name"),
        ("useragent", "user_agent.original"),
        ("source_ip", "source.ip"),
        ("host_ip", "host.ip"),
        ("hostname", "host.name"),
        ("request_uri", "url.original"),
        ("request_method", "http.request.method"),
    ] {
        if !event.contains(to)
            && let Some(v) = event.remove(from)
        {
            let v = match (to, v) {
                (k, Value::Str(s)) if k.ends_with(".ip") => match s.parse() {
                    Ok(ip) => Value::Ip(ip),
                    Err(_) => Value::Str(s),
                },
                (_, v) => v,
            };
            event.insert(to, v);
        }
    }
}

/// `(category, type, outcome)` of an OWASP logging-vocabulary event name, as ECS values
/// (the text form of [`owasp_class`]).
pub fn owasp_classification(name: &str) -> Option<(&'static str, &'static str, &'static str)> {
    owasp_class(name).map(|(c, t, o)| (c.as_str(), t.as_str(), o.as_str()))
}

/// `(category, type, outcome)` of an OWASP logging-vocabulary event name.
pub fn owasp_class(name: &str) -> Option<(Category, EventType, Outcome)> {
    Some(match name {
        "authn_login_success" | "authn_login_successafterfail" => {
            (Category::Authentication, EventType::Start, Outcome::Success)
        }
        "authn_login_fail" | "authn_login_fail_max" => {
            (Category::Authentication, EventType::Start, Outcome::Failure)
        }
        "authn_login_lock" => (Category::Authentication, EventType::Info, Outcome::Failure),
        "authn_password_change" => (Category::Iam, EventType::Change, Outcome::Success),
        "authn_password_change_fail" => (Category::Iam, EventType::Change, Outcome::Failure),
        "authn_impossible_travel" => (Category::Authentication, EventType::Info, Outcome::Unknown),
        "authn_token_created" => (Category::Iam, EventType::Creation, Outcome::Success),
        "authn_token_revoked" | "authn_token_delete" => {
            (Category::Iam, EventType::Deletion, Outcome::Success)
        }
        "authn_token_reuse" => (Category::Authentication, EventType::Info, Outcome::Failure),
        "authz_fail" => (Category::Iam, EventType::Denied, Outcome::Failure),
        "authz_change" => (Category::Iam, EventType::Change, Outcome::Success),
        "authz_admin" => (Category::Iam, EventType::Admin, Outcome::Success),
        "excess_rate_limit_exceeded" => (
            Category::IntrusionDetection,
            EventType::Denied,
            Outcome::Failure,
        ),
        "file_upload" | "upload_complete" | "upload_stored" => {
            (Category::File, EventType::Creation, Outcome::Success)
        }
        "upload_validation" => (Category::File, EventType::Info, Outcome::Unknown),
        "upload_delete" => (Category::File, EventType::Deletion, Outcome::Success),
        "input_validation_fail" | "input_validation_discrete_fail" => (
            Category::IntrusionDetection,
            EventType::Info,
            Outcome::Failure,
        ),
        "malicious_excess_404"
        | "malicious_extraneous"
        | "malicious_attack_tool"
        | "malicious_cors"
        | "malicious_direct_reference"
        | "sequence_fail" => (
            Category::IntrusionDetection,
            EventType::Indicator,
            Outcome::Unknown,
        ),
        "privilege_permissions_changed" => (Category::Iam, EventType::Change, Outcome::Success),
        "sensitive_create" => (Category::Database, EventType::Creation, Outcome::Success),
        "sensitive_read" => (Category::Database, EventType::Access, Outcome::Success),
        "sensitive_update" => (Category::Database, EventType::Change, Outcome::Success),
        "sensitive_delete" => (Category::Database, EventType::Deletion, Outcome::Success),
        "session_created" => (Category::Session, EventType::Start, Outcome::Success),
        "session_renewed" => (Category::Session, EventType::Info, Outcome::Success),
        "session_expired" | "session_logout" => {
            (Category::Session, EventType::End, Outcome::Success)
        }
        "session_use_after_expire" => (Category::Session, EventType::Denied, Outcome::Failure),
        "sys_startup" => (Category::Process, EventType::Start, Outcome::Success),
        "sys_shutdown" => (Category::Process, EventType::End, Outcome::Success),
        "sys_restart" => (Category::Process, EventType::Change, Outcome::Success),
        "sys_crash" => (Category::Process, EventType::End, Outcome::Failure),
        "sys_monitor_disabled" | "sys_monitor_enabled" => {
            (Category::Configuration, EventType::Change, Outcome::Success)
        }
        "user_created" => (Category::Iam, EventType::Creation, Outcome::Success),
        "user_updated" => (Category::Iam, EventType::Change, Outcome::Success),
        "user_archived" | "user_deleted" => (Category::Iam, EventType::Deletion, Outcome::Success),
        _ => return None,
    })
}

/// Classifies an OWASP vocabulary name in `event.action` (`authn_login_fail:alice` → the name,
/// its arguments, category, type, outcome and the user it names).
pub(crate) fn classify_owasp(event: &mut Event) {
    let Some(action) = event.get_str("event.action").map(str::to_owned) else {
        return;
    };
    let (name, args) = match action.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (action.as_str(), None),
    };
    let Some((category, kind, outcome)) = owasp_class(name) else {
        return;
    };
    event.insert("event.action", name);
    if let Some(args) = args {
        event.insert("vigil.owasp.args", args);
        let first = args.split(',').next().unwrap_or("").trim();
        let subject = if name.starts_with("user_") || name == "privilege_permissions_changed" {
            "user.target.name"
        } else {
            "user.name"
        };
        if !first.is_empty() && !event.contains(subject) {
            event.insert(subject, first);
        }
    }
    if !event.contains(field::EVENT_CATEGORY) {
        event.insert(field::EVENT_KIND, EventKind::Event);
        event.insert(field::EVENT_CATEGORY, category);
        event.insert(field::EVENT_TYPE, kind);
    }
    if !event.contains(field::EVENT_OUTCOME) && outcome != Outcome::Unknown {
        event.insert(field::EVENT_OUTCOME, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ParseContext {
        ParseContext::new(Timestamp::from_secs(0), "t")
    }

    #[test]
    fn ecs_passes_through() {
        let e = parse(r#"{"@timestamp":"2026-11-22T10:00:00Z","event":{"category":"network"},"source":{"ip":"10.0.0.1"}}"#, &ctx()).unwrap();
        assert_eq!(e.get_str("event.category"), Some("network"));
        assert!(matches!(e.get("source.ip"), Some(Value::Ip(_))));
    }

    #[test]
    fn owasp_vocabulary() {
        let e = parse(
            r#"{"event.action":"authn_login_fail:alice","source.ip":"198.51.100.3"}"#,
            &ctx(),
        )
        .unwrap();
        assert_eq!(e.get_str("event.action"), Some("authn_login_fail"));
        assert_eq!(e.get_str("event.category"), Some("authentication"));
        assert_eq!(e.get_str("event.outcome"), Some("failure"));
        assert_eq!(e.get_str("user.name"), Some("alice"));
        // OWASP's own example shape.
        let e = parse(r#"{"datetime":"2026-11-22T01:01:01-0700","appid":"foobar.netportal_auth","event":"authz_fail:joebob1,resource","level":"CRITICAL","description":"User joebob1 attempted to access a resource without entitlement"}"#, &ctx()).unwrap();
        assert_eq!(e.get_str("event.category"), Some("iam"));
        assert_eq!(e.get_str("event.type"), Some("denied"));
        assert_eq!(e.get_str("user.name"), Some("joebob1"));
        assert_eq!(e.get_str("log.level"), Some("CRITICAL"));
        assert_eq!(e.get_str("service.name"), Some("foobar.netportal_auth"));
        assert_eq!(e.timestamp().to_rfc3339(), "2026-11-22T08:01:01Z");
        let e = parse(
            r#"{"event.action":"user_created:mallory","user.name":"admin"}"#,
            &ctx(),
        )
        .unwrap();
        assert_eq!(e.get_str("user.target.name"), Some("mallory"));
        assert_eq!(e.get_str("user.name"), Some("admin"));
    }

    #[test]
    fn zeek_and_suricata_json() {
        let e = parse(r#"{"_path":"ssh","ts":"2018-03-24T17:16:39.739898Z","id.orig_h":"10.0.0.227","id.orig_p":59849,"id.resp_h":"10.47.8.50","id.resp_p":22,"auth_success":true}"#, &ctx()).unwrap();
        assert_eq!(e.timestamp().to_rfc3339(), "2018-03-24T17:16:39.739898Z");
        assert_eq!(e.get("source.ip").unwrap().to_string(), "10.0.0.227");
        assert_eq!(e.get("destination.port").and_then(Value::as_i64), Some(22));
        assert_eq!(e.get_str("event.dataset"), Some("zeek.ssh"));
        let e = parse(r#"{"timestamp":"2019-01-02T03:50:11.315110","event_type":"alert","src_ip":"8.42.77.171","src_port":49678,"dest_ip":"138.68.3.71","dest_port":22,"proto":"TCP","alert":{"signature_id":2001219,"signature":"ET SCAN Potential SSH Scan","severity":2}}"#, &ctx()).unwrap();
        assert_eq!(e.timestamp().to_rfc3339(), "2019-01-02T03:50:11.315110Z");
        assert_eq!(e.get("source.ip").unwrap().to_string(), "8.42.77.171");
        assert_eq!(e.get_str("rule.name"), Some("ET SCAN Potential SSH Scan"));
        assert_eq!(e.get_str("event.kind"), Some("alert"));
    }

    #[test]
    fn explicit_fields_win() {
        let e = parse(r#"{"event.action":"authn_login_success","event.category":"web","event.outcome":"unknown"}"#, &ctx()).unwrap();
        assert_eq!(e.get_str("event.category"), Some("web"));
        assert_eq!(e.get_str("event.outcome"), Some("unknown"));
    }
}
