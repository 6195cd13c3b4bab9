//! The CrowdSec Local API's decision endpoints, as pure functions over the ban book: what a
//! bouncer's stream holds since its last poll (`GET /v1/decisions/stream`), which decisions
//! cover an address (`GET /v1/decisions?ip=`), and Vigil's own ban API bodies
//! (`GET|POST /api/v1/decisions`). The HTTP layer authenticates, calls these, and sends the
//! JSON they return; the shapes are CrowdSec's, so firewalls and proxies enforce Vigil's bans
//! with their bouncers unmodified.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use vigil_event::Timestamp;

use crate::decisions::DecisionBook;

/// When each bouncer last polled its stream (keyed by the bouncer's token id, so there are as
/// many entries as bouncer keys).
#[derive(Debug, Default)]
pub struct BouncerPolls {
    last: Mutex<HashMap<String, Timestamp>>,
}

impl BouncerPolls {
    /// Records a poll of `bouncer` at `now` and returns where its stream starts: `None` (every
    /// active decision) at `startup` or on its first poll, else its previous poll.
    pub fn poll(&self, bouncer: &str, startup: bool, now: Timestamp) -> Option<Timestamp> {
        let last = self
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(bouncer.to_owned(), now);
        if startup { None } else { last }
    }
}

/// The body of `GET /v1/decisions/stream`: `{"new": [...], "deleted": [...]}` since `since`.
pub fn stream(book: &DecisionBook, since: Option<Timestamp>, now: Timestamp) -> Value {
    let (new, deleted) = book.stream(since, now);
    let lapi = |list: Vec<&crate::decisions::Decision>| -> Vec<Value> {
        list.into_iter().map(|d| d.to_lapi(now)).collect()
    };
    json!({ "new": lapi(new), "deleted": lapi(deleted) })
}

/// A query of `GET /v1/decisions` the LAPI refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// `ip=` is not an address (the bouncer sent something else; asking again will not help).
    #[error("ip {0:?}: not an address")]
    NotAnAddress(String),
}

/// The body of `GET /v1/decisions[?ip=]`: every active decision without `ip`; with it, those
/// covering the address, or `null` when none does (as the LAPI answers).
pub fn decisions(
    book: &DecisionBook,
    ip: Option<&str>,
    now: Timestamp,
) -> Result<Value, QueryError> {
    let Some(ip) = ip else {
        return Ok(Value::Array(
            book.active(now)
                .into_iter()
                .map(|d| d.to_lapi(now))
                .collect(),
        ));
    };
    let addr: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| QueryError::NotAnAddress(ip.to_owned()))?;
    let found: Vec<Value> = book
        .covering(addr, now)
        .into_iter()
        .map(|d| d.to_lapi(now))
        .collect();
    Ok(if found.is_empty() {
        Value::Null
    } else {
        Value::Array(found)
    })
}

/// The body of `GET /api/v1/decisions`: the active bans in Vigil's form.
pub fn active(book: &DecisionBook, now: Timestamp) -> Value {
    let list: Vec<Value> = book.active(now).into_iter().map(|d| d.to_json()).collect();
    json!({ "decisions": list })
}

/// A ban by hand, `POST /api/v1/decisions` `{"value", "duration", "reason"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRequest {
    /// The address or network.
    pub value: String,
    /// How long (default 4 h).
    pub duration: Duration,
    /// Why (default `manual`).
    pub reason: String,
}

/// A ban request that cannot be carried out as sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BanRequestError {
    /// The body is not the expected JSON.
    #[error("expected {{\"value\": \"203.0.113.5\", \"duration\": \"4h\", \"reason\": …}}: {0}")]
    Body(String),
    /// The duration does not parse, or is zero.
    #[error("{0}")]
    Duration(String),
}

/// Reads a ban request body.
pub fn parse_ban_request(body: &[u8]) -> Result<BanRequest, BanRequestError> {
    #[derive(Deserialize)]
    struct Body {
        value: String,
        #[serde(default)]
        duration: Option<String>,
        #[serde(default)]
        reason: Option<String>,
    }
    let b: Body = serde_json::from_slice(body).map_err(|e| BanRequestError::Body(e.to_string()))?;
    let duration = vigil_ledger::retention::parse_duration(b.duration.as_deref().unwrap_or("4h"))
        .map_err(BanRequestError::Duration)?;
    if duration.is_zero() {
        return Err(BanRequestError::Duration(
            "duration must be more than zero".into(),
        ));
    }
    Ok(BanRequest {
        value: b.value,
        duration,
        reason: b.reason.unwrap_or_else(|| "manual".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decisions::{Net, default_allowlist};

    fn t(s: i64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    fn book() -> DecisionBook {
        let mut b = DecisionBook::default();
        b.allowlist = default_allowlist();
        b
    }

    #[test]
    fn a_bouncer_gets_everything_at_startup_then_what_changed_since_its_last_poll() {
        let polls = BouncerPolls::default();
        let mut b = book();
        let h = Duration::from_secs(10);
        b.ban(
            Net::parse("198.51.100.1").unwrap(),
            h,
            h,
            "r",
            None,
            "vigil",
            t(0),
        )
        .unwrap();
        let since = polls.poll("fw", false, t(1));
        assert_eq!(since, None, "first poll");
        let body = stream(&b, since, t(1));
        assert_eq!(body["new"][0]["value"], "198.51.100.1");
        assert_eq!(body["new"][0]["origin"], "vigil");
        assert_eq!(body["deleted"], json!([]));
        b.ban(
            Net::parse("2001:db8::/64").unwrap(),
            h,
            h,
            "r",
            None,
            "vigil",
            t(2),
        )
        .unwrap();
        b.expire(t(10));
        let since = polls.poll("fw", false, t(11));
        assert_eq!(since, Some(t(1)));
        let body = stream(&b, since, t(11));
        assert_eq!(body["new"][0]["scope"], "Range");
        assert_eq!(body["deleted"][0]["value"], "198.51.100.1");
        // Another bouncer has its own state; startup starts over.
        assert_eq!(polls.poll("proxy", false, t(12)), None);
        assert_eq!(polls.poll("fw", true, t(12)), None);
        assert_eq!(polls.poll("fw", false, t(13)), Some(t(12)));
    }

    #[test]
    fn decisions_for_an_address_are_null_when_none_covers_it() {
        let mut b = book();
        let h = Duration::from_secs(3600);
        b.ban(
            Net::parse("10.0.0.0/8").unwrap(),
            h,
            h,
            "r",
            None,
            "ana",
            t(0),
        )
        .unwrap();
        assert_eq!(
            decisions(&b, Some("10.1.2.3"), t(1)).unwrap()[0]["value"],
            "10.0.0.0/8"
        );
        assert_eq!(decisions(&b, Some("192.0.2.1"), t(1)).unwrap(), Value::Null);
        assert_eq!(
            decisions(&b, None, t(1)).unwrap().as_array().unwrap().len(),
            1
        );
        assert_eq!(
            decisions(&b, Some("nope"), t(1)),
            Err(QueryError::NotAnAddress("nope".into()))
        );
        assert_eq!(active(&b, t(1))["decisions"][0]["by"], "ana");
    }

    #[test]
    fn ban_requests_default_to_four_hours_and_refuse_zero() {
        let r = parse_ban_request(br#"{"value":"203.0.113.5"}"#).unwrap();
        assert_eq!(
            (r.duration, r.reason.as_str()),
            (Duration::from_secs(4 * 3600), "manual")
        );
        assert!(matches!(
            parse_ban_request(br#"{"value":"203.0.113.5","duration":"0s"}"#),
            Err(BanRequestError::Duration(_))
        ));
        assert!(matches!(
            parse_ban_request(b"[]"),
            Err(BanRequestError::Body(_))
        ));
    }
}
