//! Rule exceptions: per rule, events to exclude (field conditions) or alert groups to suppress,
//! each with a reason, an author and an optional expiry. Stored beside the rules, one file per
//! rule directory, [`FILE_NAME`]; the format is in `crates/vigil-detect/EXCEPTIONS.md`
//! (version [`VERSION`]).
//!
//! Applied where alerts are made, [`crate::Evaluator`] (so `serve` and `hunt` alike): an
//! excluded event does not match the rule at all — no alert, and it counts into no correlation
//! over the rule; a suppressed group raises no alert of the rule (or correlation) for that
//! group. An expired exception applies to nothing. Pure: the caller gives the time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vigil_event::{Event, Timestamp, Value};

/// The name of the exceptions file in a rule directory. Not `.yml`, so the rule loader never
/// reads it as a rule.
pub const FILE_NAME: &str = "vigil-exceptions.json";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;
/// Most exceptions in one file.
pub const MAX_EXCEPTIONS: usize = 10_000;
/// Most conditions (or group fields) in one exception.
pub const MAX_CONDITIONS: usize = 32;
/// Longest text (reason, field, value, rule) in an exception, in bytes.
pub const MAX_TEXT: usize = 1024;

/// What an exception does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Events meeting every condition do not match the rule.
    Exclude,
    /// The rule raises no alert for this group.
    Suppress,
}

/// How a condition compares the event's field with its value (case-insensitively).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// The field's text (any element of a list) equals the value.
    #[default]
    Equals,
    /// …contains the value.
    Contains,
    /// …starts with the value.
    Startswith,
    /// …ends with the value.
    Endswith,
}

/// One field condition of an `exclude` exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The event field (as stored: `user.name`, `source.ip`, `Image` …).
    pub field: String,
    /// The comparison (default `equals`).
    #[serde(default)]
    pub op: Op,
    /// The value compared with.
    pub value: String,
}

/// One exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    /// Its id (unique in the file).
    pub id: String,
    /// The rule: its id (else name, else title), as alerts name it.
    pub rule: String,
    /// Exclude events or suppress a group.
    pub kind: Kind,
    /// `exclude`: all must hold for the event to be excluded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// `suppress`: the alert group (field → value) silenced; an alert whose group holds every
    /// pair is suppressed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group: BTreeMap<String, String>,
    /// Why (required).
    pub reason: String,
    /// Who made it.
    pub by: String,
    /// When it was made (RFC 3339).
    pub created: String,
    /// When it stops applying (RFC 3339); never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

impl Exception {
    /// Checks the exception's shape; the error names what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        for (name, text) in [
            ("id", &self.id),
            ("rule", &self.rule),
            ("reason", &self.reason),
            ("by", &self.by),
        ] {
            if text.trim().is_empty() {
                return Err(format!("`{name}` is required"));
            }
            if text.len() > MAX_TEXT {
                return Err(format!("`{name}` is longer than {MAX_TEXT} bytes"));
            }
        }
        Timestamp::parse(&self.created).map_err(|e| format!("`created`: {e}"))?;
        if let Some(x) = &self.expires {
            Timestamp::parse(x).map_err(|e| format!("`expires`: {e}"))?;
        }
        match self.kind {
            Kind::Exclude => {
                if self.conditions.is_empty() {
                    return Err("an exclude exception needs at least one condition".into());
                }
                if !self.group.is_empty() {
                    return Err("an exclude exception has conditions, not a group".into());
                }
            }
            Kind::Suppress => {
                if self.group.is_empty() {
                    return Err("a suppress exception needs a group (field: value)".into());
                }
                if !self.conditions.is_empty() {
                    return Err("a suppress exception has a group, not conditions".into());
                }
            }
        }
        if self.conditions.len() > MAX_CONDITIONS || self.group.len() > MAX_CONDITIONS {
            return Err(format!("more than {MAX_CONDITIONS} conditions"));
        }
        for c in &self.conditions {
            if c.field.is_empty() || c.field.len() > MAX_TEXT || c.value.len() > MAX_TEXT {
                return Err(format!(
                    "condition on {:?}: the field must be named and both be at most {MAX_TEXT} bytes",
                    c.field
                ));
            }
        }
        for (k, v) in &self.group {
            if k.is_empty() || k.len() > MAX_TEXT || v.len() > MAX_TEXT {
                return Err(format!(
                    "group field {k:?}: must be named and at most {MAX_TEXT} bytes"
                ));
            }
        }
        Ok(())
    }

    /// Whether it has expired at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires
            .as_deref()
            .and_then(|x| Timestamp::parse(x).ok())
            .is_some_and(|x| x <= now)
    }

    fn holds_for(&self, event: &Event) -> bool {
        self.conditions.iter().all(|c| {
            let Some(v) = event.get(&c.field) else {
                return false;
            };
            let want = c.value.to_lowercase();
            any_text(v, &mut |t| {
                let t = t.to_lowercase();
                match c.op {
                    Op::Equals => t == want,
                    Op::Contains => t.contains(&want),
                    Op::Startswith => t.starts_with(&want),
                    Op::Endswith => t.ends_with(&want),
                }
            })
        })
    }
}

fn any_text(v: &Value, f: &mut dyn FnMut(&str) -> bool) -> bool {
    match v {
        Value::Str(s) => f(s),
        // Lists hold scalars (and maps); one level is all the model has.
        Value::List(items) => items
            .iter()
            .any(|i| !matches!(i, Value::List(_)) && any_text(i, f)),
        Value::Null | Value::Map(_) => false,
        other => f(&other.to_string()),
    }
}

/// The exceptions file: `{"version": 1, "exceptions": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionFile {
    /// The format version ([`VERSION`]).
    pub version: u32,
    /// The exceptions.
    #[serde(default)]
    pub exceptions: Vec<Exception>,
}

impl ExceptionFile {
    /// Reads and checks a file's text. Refused whole (with the reason) if its version is not
    /// one this code reads, it is not the format, or any exception is malformed: a half-read
    /// file would silently apply some exceptions and drop others.
    pub fn parse(text: &str) -> Result<ExceptionFile, String> {
        let file: ExceptionFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.version != VERSION {
            return Err(format!(
                "format version {} (this Vigil reads version {VERSION})",
                file.version
            ));
        }
        if file.exceptions.len() > MAX_EXCEPTIONS {
            return Err(format!("more than {MAX_EXCEPTIONS} exceptions"));
        }
        let mut ids = std::collections::HashSet::new();
        for e in &file.exceptions {
            e.validate()
                .map_err(|why| format!("exception {:?}: {why}", e.id))?;
            if !ids.insert(e.id.as_str()) {
                return Err(format!("exception id {:?} appears twice", e.id));
            }
        }
        Ok(file)
    }

    /// The file's text (pretty JSON, one trailing newline).
    pub fn to_text(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// The exceptions in force, by rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exceptions {
    by_rule: BTreeMap<String, Vec<Exception>>,
}

impl Exceptions {
    /// From every exception of every file.
    pub fn new(list: impl IntoIterator<Item = Exception>) -> Exceptions {
        let mut by_rule: BTreeMap<String, Vec<Exception>> = BTreeMap::new();
        for e in list {
            by_rule.entry(e.rule.clone()).or_default().push(e);
        }
        Exceptions { by_rule }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_rule.is_empty()
    }

    /// The exceptions of a rule (expired ones included).
    pub fn of(&self, rule: &str) -> &[Exception] {
        self.by_rule.get(rule).map_or(&[], Vec::as_slice)
    }

    /// Every exception.
    pub fn all(&self) -> impl Iterator<Item = &Exception> {
        self.by_rule.values().flatten()
    }

    /// The unexpired `exclude` exception of `rule` that `event` meets, if any.
    pub fn excludes(&self, rule: &str, event: &Event, now: Timestamp) -> Option<&Exception> {
        self.of(rule)
            .iter()
            .find(|e| e.kind == Kind::Exclude && !e.expired(now) && e.holds_for(event))
    }

    /// The unexpired `suppress` exception of `rule` covering `group`, if any.
    pub fn suppresses(
        &self,
        rule: &str,
        group: &[(String, String)],
        now: Timestamp,
    ) -> Option<&Exception> {
        self.of(rule).iter().find(|e| {
            e.kind == Kind::Suppress
                && !e.expired(now)
                && e.group.iter().all(|(k, v)| {
                    group
                        .iter()
                        .any(|(gk, gv)| gk == k && gv.eq_ignore_ascii_case(v))
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exclude(field: &str, op: Op, value: &str, expires: Option<&str>) -> Exception {
        Exception {
            id: "x1".into(),
            rule: "r".into(),
            kind: Kind::Exclude,
            conditions: vec![Condition {
                field: field.into(),
                op,
                value: value.into(),
            }],
            group: BTreeMap::new(),
            reason: "backup job".into(),
            by: "alice".into(),
            created: "2026-12-01T00:00:00Z".into(),
            expires: expires.map(str::to_owned),
        }
    }

    fn event(user: &str) -> Event {
        let mut e = Event::new(Timestamp::default());
        e.insert("user.name", user);
        e
    }

    #[test]
    fn exclude_matches_its_events_only_until_it_expires() {
        let now = Timestamp::parse("2026-12-07T00:00:00Z").unwrap();
        let ex = Exceptions::new([exclude("user.name", Op::Equals, "Backup", None)]);
        assert!(ex.excludes("r", &event("backup"), now).is_some());
        assert!(ex.excludes("r", &event("root"), now).is_none());
        assert!(ex.excludes("other", &event("backup"), now).is_none());
        let old = Exceptions::new([exclude(
            "user.name",
            Op::Equals,
            "backup",
            Some("2026-12-06T00:00:00Z"),
        )]);
        assert!(
            old.excludes("r", &event("backup"), now).is_none(),
            "expired"
        );
        let ops = [
            (Op::Contains, "ack", true),
            (Op::Startswith, "back", true),
            (Op::Endswith, "kup", true),
            (Op::Startswith, "kup", false),
        ];
        for (op, v, want) in ops {
            let ex = Exceptions::new([exclude("user.name", op, v, None)]);
            assert_eq!(
                ex.excludes("r", &event("backup"), now).is_some(),
                want,
                "{op:?}"
            );
        }
        // A missing field never satisfies a condition.
        let ex = Exceptions::new([exclude("host.name", Op::Contains, "", None)]);
        assert!(ex.excludes("r", &event("backup"), now).is_none());
    }

    #[test]
    fn suppress_covers_its_group() {
        let now = Timestamp::now();
        let mut e = exclude("x", Op::Equals, "y", None);
        e.kind = Kind::Suppress;
        e.conditions.clear();
        e.group.insert("source.ip".into(), "203.0.113.9".into());
        let ex = Exceptions::new([e]);
        let g = |ip: &str| vec![("source.ip".to_string(), ip.to_string())];
        assert!(ex.suppresses("r", &g("203.0.113.9"), now).is_some());
        assert!(ex.suppresses("r", &g("203.0.113.10"), now).is_none());
        assert!(ex.suppresses("r", &[], now).is_none());
    }

    #[test]
    fn the_evaluator_applies_them_to_alerts_and_correlations() {
        let docs: Vec<_> = crate::load_str(
            "title: Fail\nid: fail\nname: fail\nlogsource: {product: vigil, service: ingest}\ndetection:\n    s: {event.outcome: failure}\n    condition: s\n---\ntitle: Brute\nid: brute\ncorrelation:\n    type: event_count\n    rules: [fail]\n    group-by: [source.ip]\n    timespan: 5m\n    condition: {gte: 3}\n",
            "t",
        )
        .into_iter()
        .map(Result::unwrap)
        .collect();
        let (mut set, _) = crate::RuleSet::compile(docs);
        let fail = |user: &str, ip: &str, s: i64| {
            let mut e = Event::new(Timestamp::from_secs(1_800_000_000 + s));
            e.insert("event.outcome", "failure");
            e.insert("user.name", user);
            e.insert("source.ip", ip);
            e
        };
        let run = |set: &crate::RuleSet, events: &[Event]| -> Vec<String> {
            let mut ev = crate::Evaluator::new(set, crate::Limits::default());
            events
                .iter()
                .flat_map(|e| ev.evaluate(set, e))
                .map(|r| format!("{} {}", r.rule.id, r.group[0].1))
                .collect()
        };
        // The backup account's failures are a known false positive; root's are not.
        let events: Vec<Event> = (0..3)
            .flat_map(|i| {
                [
                    fail("backup", "192.0.2.1", i),
                    fail("root", "198.51.100.2", i),
                ]
            })
            .collect();
        let before = run(&set, &events);
        assert_eq!(before.iter().filter(|a| a.starts_with("brute")).count(), 2);
        let mut ex = exclude("user.name", Op::Equals, "backup", None);
        ex.rule = "fail".into();
        set.set_exceptions(Exceptions::new([ex.clone()]));
        let after = run(&set, &events);
        assert!(after.iter().all(|a| !a.contains("192.0.2.1")), "{after:?}");
        assert_eq!(
            after
                .iter()
                .filter(|a| a.as_str() == "brute 198.51.100.2")
                .count(),
            1
        );
        // Expired: everything alerts again.
        ex.expires = Some("2000-01-01T00:00:00Z".into());
        set.set_exceptions(Exceptions::new([ex]));
        assert_eq!(run(&set, &events), before);
        // Suppressing the correlation for one address leaves the other. (The detection rule
        // raises no alert of its own: a correlation uses it without `generate`.)
        let sup = Exception {
            id: "s1".into(),
            rule: "brute".into(),
            kind: Kind::Suppress,
            conditions: Vec::new(),
            group: [("source.ip".to_string(), "198.51.100.2".to_string())].into(),
            reason: "pen test".into(),
            by: "alice".into(),
            created: "2026-12-01T00:00:00Z".into(),
            expires: None,
        };
        set.set_exceptions(Exceptions::new([sup]));
        let after = run(&set, &events);
        assert_eq!(after.iter().filter(|a| a.starts_with("brute")).count(), 1);
        assert!(after.contains(&"brute 192.0.2.1".to_string()));
        assert_eq!(after.len(), 1, "{after:?}");
    }

    #[test]
    fn files_are_checked_whole() {
        let good = ExceptionFile {
            version: VERSION,
            exceptions: vec![exclude("user.name", Op::Equals, "backup", None)],
        };
        let text = good.to_text();
        assert_eq!(ExceptionFile::parse(&text).unwrap(), good);
        for (bad, says) in [
            (text.replace("\"version\": 1", "\"version\": 2"), "version 2"),
            (text.replace("\"backup job\"", "\"\""), "`reason` is required"),
            (text.replace("\"equals\"", "\"regex\""), "unknown variant"),
            (text.replace("\"reason\"", "\"reasn\""), "unknown field"),
            (
                text.replace("2026-12-01T00:00:00Z", "yesterday"),
                "`created`",
            ),
            ("{\"version\":1,\"exceptions\":[{\"id\":\"a\",\"rule\":\"r\",\"kind\":\"suppress\",\"reason\":\"x\",\"by\":\"b\",\"created\":\"2026-12-01T00:00:00Z\"}]}".to_string(), "needs a group"),
        ] {
            let err = ExceptionFile::parse(&bad).unwrap_err();
            assert!(err.contains(says), "{says}: {err}");
        }
        let mut twice = good.clone();
        twice.exceptions.push(twice.exceptions[0].clone());
        assert!(
            ExceptionFile::parse(&twice.to_text())
                .unwrap_err()
                .contains("twice")
        );
    }
}
