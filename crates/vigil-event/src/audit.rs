//! Vigil's own audit events, built with typed classification so that a category, a type and an
//! outcome cannot trade places.
//!
//! ```
//! use vigil_event::{Category, Event, EventType, Outcome, Timestamp, dataset, field};
//! let e = Event::audit_builder("login_failure")
//!     .category(Category::Authentication)
//!     .event_type(EventType::Info)
//!     .outcome(Outcome::Failure)
//!     .at(Timestamp::from_secs(1_700_000_000))
//!     .user("admin")
//!     .build();
//! assert!(e.is_dataset(dataset::VIGIL_AUDIT));
//! assert_eq!(e.get_str(field::EVENT_OUTCOME), Some("failure"));
//! assert_eq!(e.get_str(field::EVENT_TYPE), Some("info"));
//! ```

use std::net::IpAddr;

use crate::{Category, Event, EventKind, EventType, Outcome, Timestamp, Value, dataset, field};

/// Builds one of Vigil's audit events (`event.dataset: vigil.audit`, `vigil.source: vigil`,
/// `event.kind: event`). Start with [`Event::audit_builder`].
///
/// Unset parts: the time is taken when [`AuditBuilder::build`] runs, the outcome is
/// [`Outcome::Unknown`], and `event.category` / `event.type` are left out. Setting a part twice
/// keeps the last value.
#[derive(Debug, Clone)]
#[must_use = "an audit builder does nothing until `build` is called"]
pub struct AuditBuilder {
    action: String,
    time: Option<Timestamp>,
    category: Option<Category>,
    event_type: Option<EventType>,
    outcome: Outcome,
    extra: Vec<(String, Value)>,
}

impl AuditBuilder {
    /// `event.category`: the domain (authentication, IAM, configuration, …).
    pub fn category(mut self, category: Category) -> AuditBuilder {
        self.category = Some(category);
        self
    }

    /// `event.type`: what happened within the category (change, start, info, …).
    pub fn event_type(mut self, event_type: EventType) -> AuditBuilder {
        self.event_type = Some(event_type);
        self
    }

    /// `event.outcome`.
    pub fn outcome(mut self, outcome: Outcome) -> AuditBuilder {
        self.outcome = outcome;
        self
    }

    /// The event time (default: when [`AuditBuilder::build`] runs).
    pub fn at(mut self, time: Timestamp) -> AuditBuilder {
        self.time = Some(time);
        self
    }

    /// `user.name`: who acted (nothing is set for an empty name).
    pub fn user(self, name: &str) -> AuditBuilder {
        if name.is_empty() {
            return self;
        }
        self.field("user.name", name)
    }

    /// `source.ip`: from where.
    pub fn source(self, ip: IpAddr) -> AuditBuilder {
        self.field("source.ip", Value::Ip(ip))
    }

    /// `message`: a sentence for people.
    pub fn message(self, text: impl Into<String>) -> AuditBuilder {
        self.field(field::MESSAGE, text.into())
    }

    /// Any other field. The classification fields and the dataset are the builder's own: a
    /// value given here for them is overwritten by [`AuditBuilder::build`].
    pub fn field(mut self, key: impl Into<String>, value: impl Into<Value>) -> AuditBuilder {
        self.extra.push((key.into(), value.into()));
        self
    }

    /// The event.
    pub fn build(self) -> Event {
        let mut e = Event::new(self.time.unwrap_or_else(Timestamp::now));
        for (key, value) in self.extra {
            e.insert(key, value);
        }
        e.insert(field::EVENT_DATASET, dataset::VIGIL_AUDIT);
        e.insert(field::VIGIL_SOURCE, "vigil");
        e.insert(field::EVENT_KIND, EventKind::Event);
        match self.category {
            Some(c) => e.insert(field::EVENT_CATEGORY, c),
            None => drop(e.remove(field::EVENT_CATEGORY)),
        }
        match self.event_type {
            Some(t) => e.insert(field::EVENT_TYPE, t),
            None => drop(e.remove(field::EVENT_TYPE)),
        }
        e.insert(field::EVENT_ACTION, self.action);
        e.insert(field::EVENT_OUTCOME, self.outcome);
        e
    }
}

impl Event {
    /// Starts one of Vigil's own audit events for `action` (`event.action`, e.g.
    /// `login_failure`): what Vigil did or refused, classified like any ECS event so it is
    /// searched and detected the same way. See [`AuditBuilder`].
    pub fn audit_builder(action: impl Into<String>) -> AuditBuilder {
        AuditBuilder {
            action: action.into(),
            time: None,
            category: None,
            event_type: None,
            outcome: Outcome::Unknown,
            extra: Vec::new(),
        }
    }

    /// Legacy form of [`Event::audit_builder`], kept until the server and CLI call sites move
    /// over: five positional strings, where `kind` is `event.type` and nothing stops a swapped
    /// `kind` and `outcome`. New code uses the builder.
    pub fn audit(
        time: Timestamp,
        action: &str,
        category: &str,
        kind: &str,
        outcome: &str,
    ) -> Event {
        let mut e = Event::new(time);
        e.insert(field::EVENT_DATASET, dataset::VIGIL_AUDIT);
        e.insert(field::VIGIL_SOURCE, "vigil");
        e.insert(field::EVENT_KIND, EventKind::Event);
        e.insert(field::EVENT_CATEGORY, category);
        e.insert(field::EVENT_TYPE, kind);
        e.insert(field::EVENT_ACTION, action);
        e.insert(field::EVENT_OUTCOME, outcome);
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The builder makes the same event as the legacy function it replaces.
    #[test]
    fn builder_equals_the_legacy_function() {
        let t = Timestamp::from_secs(1_700_000_000);
        let cases = [
            (
                "api_auth_failure",
                Category::Authentication,
                EventType::Info,
                Outcome::Failure,
            ),
            (
                "vigil_start",
                Category::Process,
                EventType::Start,
                Outcome::Success,
            ),
            (
                "token_created",
                Category::Iam,
                EventType::Change,
                Outcome::Success,
            ),
            (
                "config_changed",
                Category::Configuration,
                EventType::Change,
                Outcome::Success,
            ),
        ];
        for (action, category, kind, outcome) in cases {
            let built = Event::audit_builder(action)
                .outcome(outcome)
                .event_type(kind)
                .category(category)
                .at(t)
                .build();
            let legacy = Event::audit(
                t,
                action,
                category.as_str(),
                kind.as_str(),
                outcome.as_str(),
            );
            assert_eq!(built, legacy, "{action}");
        }
    }

    #[test]
    fn extra_fields_cannot_override_the_classification() {
        let e = Event::audit_builder("login_failure")
            .category(Category::Authentication)
            .outcome(Outcome::Failure)
            .field(field::EVENT_DATASET, "nginx.access")
            .field(field::EVENT_OUTCOME, "success")
            .field(field::EVENT_TYPE, "start")
            .user("")
            .source("203.0.113.9".parse().unwrap())
            .message("bad password")
            .at(Timestamp::from_secs(5))
            .build();
        assert!(e.is_dataset(dataset::VIGIL_AUDIT));
        assert_eq!(e.get_str(field::EVENT_OUTCOME), Some("failure"));
        assert_eq!(e.get_str(field::EVENT_CATEGORY), Some("authentication"));
        assert_eq!(e.get(field::EVENT_TYPE), None, "unset type is left out");
        assert_eq!(e.get("user.name"), None, "an empty user is not recorded");
        assert!(matches!(e.get("source.ip"), Some(Value::Ip(_))));
        assert_eq!(e.get_str(field::MESSAGE), Some("bad password"));
        assert_eq!(e.get_str(field::VIGIL_SOURCE), Some("vigil"));
        assert_eq!(e.timestamp(), Timestamp::from_secs(5));
    }

    #[test]
    fn outcome_defaults_to_unknown_and_time_to_now() {
        let before = Timestamp::now();
        let e = Event::audit_builder("x").user("alice").build();
        assert_eq!(e.get_str(field::EVENT_OUTCOME), Some("unknown"));
        assert_eq!(e.get_str(field::EVENT_ACTION), Some("x"));
        assert_eq!(e.get_str("user.name"), Some("alice"));
        assert!(e.timestamp() >= before);
    }
}
