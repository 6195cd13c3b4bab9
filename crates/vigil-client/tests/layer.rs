//! The tracing layer turns `security` events into Vigil events, and leaves the rest alone.

use std::sync::{Arc, Mutex};

use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use vigil_client::layer::to_vigil_event;
use vigil_event::{Event, Value};

/// Collects what the layer's conversion makes of each tracing event.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Event>>>);

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if let Some(e) = to_vigil_event(event) {
            self.0.lock().unwrap().push(e);
        }
    }
}

fn capture(f: impl FnOnce()) -> Vec<Event> {
    let cap = Capture::default();
    let subscriber = tracing_subscriber::registry().with(cap.clone());
    tracing::subscriber::with_default(subscriber, f);
    cap.0.lock().unwrap().clone()
}

#[test]
fn security_target_becomes_an_owasp_event() {
    let events = capture(|| {
        tracing::warn!(target: "security", event = "authn_login_fail", user = "alice", source_ip = "203.0.113.5");
        tracing::warn!("an ordinary log line");
        tracing::info!(target: "app", user = "bob", "not security either");
    });
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.get_str("event.action"), Some("authn_login_fail"));
    assert_eq!(e.get_str("event.code"), Some("authn_login_fail:alice"));
    assert_eq!(e.get_str("event.category"), Some("authentication"));
    assert_eq!(e.get_str("event.type"), Some("start"));
    assert_eq!(e.get_str("event.outcome"), Some("failure"));
    assert_eq!(e.get_str("log.level"), Some("warn"));
    assert_eq!(e.get("event.severity").and_then(Value::as_i64), Some(3));
    assert_eq!(e.get_str("user.name"), Some("alice"));
    assert_eq!(
        e.get("source.ip").and_then(Value::as_ip),
        Some("203.0.113.5".parse().unwrap())
    );
    assert!(e.get_str("message").is_some());
}

#[test]
fn security_field_and_owasp_strings_and_extra_fields() {
    let events = capture(|| {
        tracing::error!(
            security = true,
            event = "authz_fail:joebob1,/admin/users",
            resource = "/admin/users",
            http.request.method = "GET",
            attempts = 3u64,
            "User joebob1 attempted to access a resource without entitlement"
        );
        tracing::info!(target: "security", event = "my_own_event", user = %"carol", ip = "2001:db8::2");
    });
    assert_eq!(events.len(), 2);
    let e = &events[0];
    assert_eq!(e.get_str("event.action"), Some("authz_fail"));
    assert_eq!(
        e.get_str("event.code"),
        Some("authz_fail:joebob1,/admin/users")
    );
    assert_eq!(e.get_str("user.name"), Some("joebob1"));
    assert_eq!(e.get_str("event.category"), Some("iam"));
    assert_eq!(e.get_str("event.type"), Some("denied"));
    // The cheat sheet's level wins over the tracing level for a known name.
    assert_eq!(e.get_str("log.level"), Some("critical"));
    assert_eq!(e.get_str("url.path"), Some("/admin/users"));
    assert_eq!(e.get_str("http.request.method"), Some("GET"));
    assert_eq!(e.get("labels.attempts").and_then(Value::as_i64), Some(3));
    assert_eq!(
        e.get_str("message"),
        Some("User joebob1 attempted to access a resource without entitlement")
    );
    assert!(!e.contains("labels.security"));

    let u = &events[1];
    assert_eq!(u.get_str("event.action"), Some("my_own_event"));
    assert_eq!(u.get_str("user.name"), Some("carol"));
    assert_eq!(u.get_str("log.level"), Some("info"));
    assert!(!u.contains("event.category"));
    assert_eq!(
        u.get("source.ip").and_then(Value::as_ip),
        Some("2001:db8::2".parse().unwrap())
    );
}
