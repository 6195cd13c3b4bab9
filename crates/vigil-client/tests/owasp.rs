//! Every constructor sets the ECS fields it should, and Vigil's own JSON parser, fed the event
//! as the client sends it, classifies it the same way.

use vigil_client::SecurityEvent as S;
use vigil_client::owasp::{self, SPECS};
use vigil_event::{Event, Timestamp, Value};

/// A constructor's event, its OWASP event string, the actor, and one subject field and value.
type Row = (
    S,
    &'static str,
    Option<&'static str>,
    Option<(&'static str, &'static str)>,
);

fn table() -> Vec<Row> {
    vec![
        (
            S::login_success("alice"),
            "authn_login_success:alice",
            Some("alice"),
            None,
        ),
        (
            S::login_success_after_fail("alice", 3),
            "authn_login_successafterfail:alice,3",
            Some("alice"),
            None,
        ),
        (
            S::login_fail("alice"),
            "authn_login_fail:alice",
            Some("alice"),
            None,
        ),
        (
            S::login_fail_max("alice", 5),
            "authn_login_fail_max:alice,5",
            Some("alice"),
            None,
        ),
        (
            S::login_lock("alice", "maxretries"),
            "authn_login_lock:alice,maxretries",
            Some("alice"),
            Some(("event.reason", "maxretries")),
        ),
        (
            S::password_change("alice"),
            "authn_password_change:alice",
            Some("alice"),
            None,
        ),
        (
            S::password_change_fail("alice"),
            "authn_password_change_fail:alice",
            Some("alice"),
            None,
        ),
        (
            S::impossible_travel("alice", "US-OR", "CN-SH"),
            "authn_impossible_travel:alice,US-OR,CN-SH",
            Some("alice"),
            None,
        ),
        (
            S::token_created("app.svc", "create,read"),
            "authn_token_created:app.svc,create,read",
            Some("app.svc"),
            None,
        ),
        (
            S::token_revoked("app.svc", "xyz-1"),
            "authn_token_revoked:app.svc,xyz-1",
            Some("app.svc"),
            None,
        ),
        (
            S::token_reuse("app.svc", "xyz-1"),
            "authn_token_reuse:app.svc,xyz-1",
            Some("app.svc"),
            None,
        ),
        (
            S::token_delete("foobarapi"),
            "authn_token_delete:foobarapi",
            None,
            None,
        ),
        (
            S::authz_fail("joebob1", "/admin"),
            "authz_fail:joebob1,/admin",
            Some("joebob1"),
            Some(("url.path", "/admin")),
        ),
        (
            S::authz_change("joe", "user", "admin"),
            "authz_change:joe,user,admin",
            Some("joe"),
            None,
        ),
        (
            S::authz_admin("joe", "user_privilege_change"),
            "authz_admin:joe,user_privilege_change",
            Some("joe"),
            None,
        ),
        (
            S::decrypt_fail("joe"),
            "crypt_decrypt_fail:joe",
            Some("joe"),
            None,
        ),
        (
            S::encrypt_fail("joe"),
            "crypt_encrypt_fail:joe",
            Some("joe"),
            None,
        ),
        (
            S::rate_limit_exceeded("app.svc", 1000),
            "excess_rate_limit_exceeded:app.svc,1000",
            Some("app.svc"),
            None,
        ),
        (
            S::upload_complete("joe", "a.png", "image/png"),
            "upload_complete:joe,a.png,image/png",
            Some("joe"),
            Some(("file.name", "a.png")),
        ),
        (
            S::upload_stored("a.png", "kjsdhkrjhwijhsiuhdf", "a1.png"),
            "upload_stored:a.png,kjsdhkrjhwijhsiuhdf,a1.png",
            None,
            Some(("file.name", "a.png")),
        ),
        (
            S::upload_validation("a.png", "virusscan", "passed"),
            "upload_validation:a.png,virusscan:passed",
            None,
            Some(("file.name", "a.png")),
        ),
        (
            S::upload_delete("joe", "a.png"),
            "upload_delete:joe,a.png",
            Some("joe"),
            Some(("file.name", "a.png")),
        ),
        (
            S::input_validation_fail(&["date_of_birth"], "joe"),
            "input_validation_fail:(date_of_birth),joe",
            Some("joe"),
            None,
        ),
        (
            S::malicious_excess_404("joe", "Mozilla/5.0"),
            "malicious_excess_404:joe,Mozilla/5.0",
            Some("joe"),
            Some(("user_agent.original", "Mozilla/5.0")),
        ),
        (
            S::malicious_extraneous("joe", "creditcardnum", "Mozilla/5.0"),
            "malicious_extraneous:joe,creditcardnum,Mozilla/5.0",
            Some("joe"),
            None,
        ),
        (
            S::malicious_attack_tool("198.51.100.7", "nikto", "Nikto/2.1"),
            "malicious_attack_tool:198.51.100.7,nikto,Nikto/2.1",
            None,
            Some(("threat.software.name", "nikto")),
        ),
        (
            S::malicious_cors("joe", "Mozilla/5.0", "https://evil.example"),
            "malicious_cors:joe,Mozilla/5.0,https://evil.example",
            Some("joe"),
            Some(("http.request.referrer", "https://evil.example")),
        ),
        (
            S::malicious_direct_reference("joe", "Mozilla/5.0"),
            "malicious_direct_reference:joe,Mozilla/5.0",
            Some("joe"),
            None,
        ),
        (
            S::permissions_changed("joe", "/users/admin/some/important/path", "0", "1"),
            "privilege_permissions_changed:joe,/users/admin/some/important/path,0,1",
            Some("joe"),
            None,
        ),
        (
            S::sensitive_create("joe", "/users/1/x"),
            "sensitive_create:joe,/users/1/x",
            Some("joe"),
            Some(("vigil.owasp.object", "/users/1/x")),
        ),
        (
            S::sensitive_read("joe", "/users/1/x"),
            "sensitive_read:joe,/users/1/x",
            Some("joe"),
            None,
        ),
        (
            S::sensitive_update("joe", "/users/1/x"),
            "sensitive_update:joe,/users/1/x",
            Some("joe"),
            None,
        ),
        (
            S::sensitive_delete("joe", "/users/1/x"),
            "sensitive_delete:joe,/users/1/x",
            Some("joe"),
            None,
        ),
        (
            S::sequence_fail("joe"),
            "sequence_fail:joe",
            Some("joe"),
            None,
        ),
        (
            S::session_created("joe"),
            "session_created:joe",
            Some("joe"),
            None,
        ),
        (
            S::session_renewed("joe"),
            "session_renewed:joe",
            Some("joe"),
            None,
        ),
        (
            S::session_expired("joe", "logout"),
            "session_expired:joe,logout",
            Some("joe"),
            Some(("event.reason", "logout")),
        ),
        (
            S::session_use_after_expire("joe"),
            "session_use_after_expire:joe",
            Some("joe"),
            None,
        ),
        (S::sys_startup("joe"), "sys_startup:joe", Some("joe"), None),
        (
            S::sys_shutdown("joe"),
            "sys_shutdown:joe",
            Some("joe"),
            None,
        ),
        (S::sys_restart("joe"), "sys_restart:joe", Some("joe"), None),
        (
            S::sys_crash("outofmemory"),
            "sys_crash:outofmemory",
            None,
            Some(("event.reason", "outofmemory")),
        ),
        (
            S::sys_monitor_disabled("joe", "crowdstrike"),
            "sys_monitor_disabled:joe,crowdstrike",
            Some("joe"),
            None,
        ),
        (
            S::sys_monitor_enabled("joe", "crowdstrike"),
            "sys_monitor_enabled:joe,crowdstrike",
            Some("joe"),
            None,
        ),
        (
            S::user_created("admin", "mallory", &["role:user"]),
            "user_created:admin,mallory,[role:user]",
            Some("admin"),
            Some(("user.target.name", "mallory")),
        ),
        (
            S::user_updated("admin", "mallory", &["role:admin"]),
            "user_updated:admin,mallory,[role:admin]",
            Some("admin"),
            Some(("user.target.name", "mallory")),
        ),
        (
            S::user_archived("admin", "mallory"),
            "user_archived:admin,mallory",
            Some("admin"),
            Some(("user.target.name", "mallory")),
        ),
        (
            S::user_deleted("admin", "mallory"),
            "user_deleted:admin,mallory",
            Some("admin"),
            Some(("user.target.name", "mallory")),
        ),
    ]
}

#[test]
fn every_constructor_sets_its_ecs_fields() {
    let rows = table();
    assert_eq!(rows.len(), SPECS.len(), "one row per vocabulary name");
    for (built, code, actor, subject) in rows {
        let e = built.into_event();
        let (name, _) = code.split_once(':').unwrap_or((code, ""));
        let spec = owasp::spec(name).unwrap_or_else(|| panic!("{name} has no spec"));
        let ctx = format!("{code}: {:?}", e.to_json());
        assert_eq!(e.get_str("event.action"), Some(name), "{ctx}");
        assert_eq!(e.get_str("event.code"), Some(code), "{ctx}");
        assert_eq!(e.get_str("event.kind"), Some("event"), "{ctx}");
        assert_eq!(e.get_str("event.category"), Some(spec.category), "{ctx}");
        assert_eq!(e.get_str("event.type"), Some(spec.kind), "{ctx}");
        let outcome = (spec.outcome != "unknown").then_some(spec.outcome);
        if name != "upload_validation" {
            assert_eq!(e.get_str("event.outcome"), outcome, "{ctx}");
            assert_eq!(e.get_str("log.level"), Some(spec.level.as_str()), "{ctx}");
            assert_eq!(
                e.get("event.severity").and_then(Value::as_i64),
                Some(spec.level.severity()),
                "{ctx}"
            );
        }
        assert_eq!(e.get_str("user.name"), actor, "{ctx}");
        if let Some((field, value)) = subject {
            assert_eq!(e.get_str(field), Some(value), "{ctx}");
        }
        let message = e.get_str("message").unwrap_or("");
        assert!(message.len() > 10, "{ctx}: message {message:?}");
    }
}

#[test]
fn levels_follow_the_cheat_sheet() {
    use owasp::Level::*;
    for (name, level) in [
        ("authn_login_success", Info),
        ("authn_login_fail", Warn),
        ("authn_password_change_fail", Critical),
        ("authn_impossible_travel", Critical),
        ("authn_token_reuse", Critical),
        ("authz_fail", Critical),
        ("authz_admin", Warn),
        ("malicious_attack_tool", Critical),
        ("session_use_after_expire", Critical),
        ("sequence_fail", Critical),
        ("upload_complete", Info),
        ("user_deleted", Warn),
        ("sys_crash", Warn),
    ] {
        assert_eq!(owasp::spec(name).map(|s| s.level), Some(level), "{name}");
    }
    // A failed upload validation is critical, a passed one informational.
    let bad = S::upload_validation("a.exe", "virusscan", "FAILED").into_event();
    assert_eq!(bad.get_str("log.level"), Some("critical"));
    assert_eq!(bad.get_str("event.outcome"), Some("failure"));
    let good = S::upload_validation("a.png", "virusscan", "passed").into_event();
    assert_eq!(good.get_str("log.level"), Some("info"));
    assert_eq!(good.get_str("event.outcome"), Some("success"));
}

#[test]
fn builder_methods_add_fields() {
    let e = S::login_fail("alice")
        .source_ip("203.0.113.5".parse().unwrap())
        .user_agent("curl/8")
        .url_path("/login")
        .http_method("POST")
        .service("shop")
        .host("web01")
        .at(Timestamp::from_epoch_int(1_700_000_000))
        .field("labels.tenant", "acme")
        .into_event();
    assert_eq!(
        e.get("source.ip").and_then(Value::as_ip),
        Some("203.0.113.5".parse().unwrap())
    );
    assert_eq!(e.get_str("user_agent.original"), Some("curl/8"));
    assert_eq!(e.get_str("url.path"), Some("/login"));
    assert_eq!(e.get_str("http.request.method"), Some("POST"));
    assert_eq!(e.get_str("service.name"), Some("shop"));
    assert_eq!(e.get_str("host.name"), Some("web01"));
    assert_eq!(e.get_str("labels.tenant"), Some("acme"));
    assert_eq!(e.timestamp(), Timestamp::from_epoch_int(1_700_000_000));
    // An address as the `malicious_*` subject is the source address.
    let m = S::malicious_excess_404("198.51.100.7", "x").into_event();
    assert_eq!(
        m.get("source.ip").and_then(Value::as_ip),
        Some("198.51.100.7".parse().unwrap())
    );
    assert_eq!(m.get_str("user.name"), None);
}

/// What the client sends, parsed by Vigil's JSON parser exactly as `POST /api/v1/ingest` does,
/// keeps every classification field, and the parser's own table agrees for every name it knows.
#[test]
fn vigils_parser_agrees() {
    let ctx = vigil_parse::ParseContext::new(Timestamp::now(), "test");
    for (built, code, _, _) in table() {
        let sent = built.into_event();
        let line = sent.to_json().to_string();
        let parsed = vigil_parse::parse_line(line.as_bytes(), vigil_parse::Format::Json, &ctx);
        for field in [
            "event.action",
            "event.category",
            "event.type",
            "event.outcome",
            "user.name",
            "user.target.name",
            "log.level",
            "message",
        ] {
            assert_eq!(parsed.get(field), sent.get(field), "{code}: {field}");
        }
        assert_eq!(parsed.timestamp(), sent.timestamp(), "{code}");
    }
    for spec in SPECS {
        if let Some((category, kind, outcome)) = vigil_parse::json::owasp_classification(spec.name)
        {
            assert_eq!(
                (category, kind, outcome),
                (spec.category, spec.kind, spec.outcome),
                "{}",
                spec.name
            );
        } else {
            assert!(
                spec.name.starts_with("crypt_"),
                "parser lacks {}",
                spec.name
            );
        }
    }
}

#[test]
fn round_trips_through_json() {
    let e = S::authz_fail("joebob1", "/admin")
        .source_ip("2001:db8::1".parse().unwrap())
        .into_event();
    let back = Event::from_json(&e.to_json().to_string(), Timestamp::now()).unwrap();
    assert_eq!(back, e);
}
