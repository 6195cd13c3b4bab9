//! A `tracing` layer that ships security events: every event with target `security`, or with a
//! field `security = true`, becomes a Vigil event and goes to the [`Client`].
//!
//! ```
//! tracing::warn!(target: "security", event = "authn_login_fail", user = "alice", source_ip = "203.0.113.5");
//! ```
//!
//! Field names map to ECS:
//!
//! | tracing field | ECS field |
//! |---|---|
//! | `event` / `action` | `event.action` (an OWASP string `name:args` is split like Vigil's parser does, and classified like the constructors in [`crate::owasp`]) |
//! | `message` (the format string) | `message` |
//! | `user`, `user_name`, `userid` | `user.name` |
//! | `target_user` | `user.target.name` |
//! | `source_ip`, `client_ip`, `ip` | `source.ip` |
//! | `resource`, `path` | `url.path` |
//! | `user_agent`, `useragent` | `user_agent.original` |
//! | a dotted name (`http.request.method`) | itself |
//! | any other name | `labels.NAME` |
//!
//! `log.level` and `event.severity` come from the OWASP level when the name is known, from the
//! tracing level otherwise. `log.logger` is the module that logged.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use vigil_event::{Event, Value};

use crate::client::Client;
use crate::owasp::{self, SecurityEvent};

/// The target that marks security events.
pub const SECURITY_TARGET: &str = "security";

/// The layer; add it to a `tracing_subscriber::registry()`.
#[derive(Debug, Clone)]
pub struct VigilLayer {
    client: Client,
}

impl VigilLayer {
    /// A layer shipping through `client`.
    pub fn new(client: Client) -> VigilLayer {
        VigilLayer { client }
    }
}

#[derive(Default)]
struct Fields {
    security: bool,
    action: Option<String>,
    message: Option<String>,
    user: Option<String>,
    rest: Vec<(String, Value)>,
}

impl Fields {
    fn put(&mut self, name: &str, value: Value) {
        let text = || match &value {
            Value::Str(s) => s.clone(),
            other => other.to_json().to_string(),
        };
        match name {
            "security" => self.security = matches!(value, Value::Bool(true)),
            "event" | "action" => self.action = Some(text()),
            "message" => self.message = Some(text()),
            "user" | "user_name" | "userid" => self.user = Some(text()),
            "target_user" => self.rest.push(("user.target.name".into(), value)),
            "source_ip" | "client_ip" | "ip" => {
                let v = match text().parse::<std::net::IpAddr>() {
                    Ok(ip) => Value::Ip(ip),
                    Err(_) => value,
                };
                self.rest.push(("source.ip".into(), v));
            }
            "resource" | "path" => self.rest.push(("url.path".into(), value)),
            "user_agent" | "useragent" => {
                self.rest.push(("user_agent.original".into(), value));
            }
            n if n.contains('.') => self.rest.push((n.to_owned(), value)),
            n => self.rest.push((format!("labels.{n}"), value)),
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field.name(), Value::Str(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field.name(), Value::Str(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field.name(), Value::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        let v = i64::try_from(value).map_or_else(|_| Value::Str(value.to_string()), Value::Int);
        self.put(field.name(), v);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field.name(), Value::Bool(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field.name(), Value::float(value));
    }
}

fn level_fields(level: Level) -> (&'static str, i64) {
    match level {
        Level::ERROR => ("error", 4),
        Level::WARN => ("warn", 3),
        Level::INFO => ("info", 1),
        Level::DEBUG => ("debug", 1),
        Level::TRACE => ("trace", 1),
    }
}

/// The Vigil event for a tracing event, or None when it is not a security event.
pub fn to_vigil_event(event: &tracing::Event<'_>) -> Option<Event> {
    let meta = event.metadata();
    let mut fields = Fields::default();
    event.record(&mut fields);
    if meta.target() != SECURITY_TARGET && !fields.security {
        return None;
    }
    let action = fields.action.unwrap_or_else(|| "security_event".to_owned());
    let (name, args) = match action.split_once(':') {
        Some((n, a)) => (n.to_owned(), Some(a.to_owned())),
        None => (action.clone(), None),
    };
    let arg_list: Vec<&str> = args
        .as_deref()
        .map_or(Vec::new(), |a| a.split(',').collect());
    // The actor: the `user` field, else (like Vigil's parser) the first OWASP argument.
    let (actor, rest_args): (Option<&str>, &[&str]) = match (&fields.user, arg_list.split_first()) {
        (Some(u), _) => (Some(u.as_str()), &arg_list[..]),
        (None, Some((first, rest))) => (Some(*first), rest),
        (None, None) => (None, &[]),
    };
    let message = fields.message.clone().unwrap_or_else(|| match actor {
        Some(a) => format!("{name} by {a}"),
        None => name.clone(),
    });
    let mut built = SecurityEvent::custom(&name, actor, rest_args, message).into_event();
    if owasp::spec(&name).is_none() {
        let (level, severity) = level_fields(*meta.level());
        built.insert("log.level", level);
        built.insert("event.severity", severity);
    }
    built.insert("log.logger", meta.module_path().unwrap_or(meta.target()));
    for (k, v) in fields.rest {
        built.insert(k, v);
    }
    Some(built)
}

impl<S: Subscriber> Layer<S> for VigilLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if let Some(e) = to_vigil_event(event) {
            // A closed client drops the event; logging must never fail the application.
            let _ = self.client.send(e);
        }
    }
}
