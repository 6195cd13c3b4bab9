//! The security of Vigil itself, end to end through a real `vigil serve` and curl: every route
//! walked anonymously and with every role (tokens and browser sessions) against the role table,
//! CSRF rejection, session expiry, token revocation, login rate limiting and the bundled rule
//! that catches brute force against Vigil's own login, HTTPS, and that no password or token
//! reaches Vigil's log output or ledger.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{
    Answer, Server, Session, add_user, audit_events, create_token, curl, ledger_events, login,
    login_from, run_ok, vigil, wait_for_alert, wait_until,
};
use vigil_server::access::{Access, ROUTES, RouteAccess};
use vigil_server::auth::Role;

/// How a caller presents itself.
#[derive(Debug, Clone)]
enum Credential {
    Anonymous,
    /// `Authorization: Bearer`.
    Token(String),
    /// `X-Api-Key` (CrowdSec bouncers).
    ApiKey(String),
    /// A browser session (cookie and CSRF token).
    Browser(Session),
}

#[derive(Debug, Clone)]
struct Caller {
    label: String,
    role: Option<Role>,
    credential: Credential,
}

impl Caller {
    fn headers(&self) -> Vec<String> {
        match &self.credential {
            Credential::Anonymous => Vec::new(),
            Credential::Token(t) => vec![format!("Authorization: Bearer {t}")],
            Credential::ApiKey(k) => vec![format!("X-Api-Key: {k}")],
            Credential::Browser(s) => s.headers(),
        }
    }
}

/// A concrete request for a route of the table.
fn request_for(route: &RouteAccess) -> (String, Option<&'static str>, Option<&'static str>) {
    let path = route
        .path
        .replace("{id}", "999999")
        .replace("{name}", "nobody-walk")
        .replace("{index}", "logs");
    let json = Some("Content-Type: application/json");
    let ndjson = Some("Content-Type: application/x-ndjson");
    match (route.method, route.path) {
        ("POST", "/api/v1/login") => (path, Some("{}"), json),
        ("POST", "/api/v1/password") => (path, Some("{}"), json),
        ("POST", "/api/v1/users") => (path, Some(r#"{"name":"walk-user","role":"viewer"}"#), json),
        ("POST", "/api/v1/tokens") => (path, Some(r#"{"name":"walk","role":"viewer"}"#), json),
        ("POST", "/api/v1/search") => (path, Some(r#"{"query":"*","limit":1}"#), json),
        ("GET", "/api/v1/export") => (format!("{path}?query=*&format=csv&limit=5"), None, None),
        ("GET", "/api/v1/proof/inclusion") => (format!("{path}?seq=0"), None, None),
        ("POST", "/api/v1/alerts/{id}") => (
            path,
            Some(r#"{"status":"acknowledged","comment":"walk"}"#),
            json,
        ),
        ("POST", "/api/v1/decisions") => (
            path,
            Some(r#"{"value":"198.51.100.77","duration":"1m","reason":"route walk"}"#),
            json,
        ),
        ("POST", "/api/v1/ingest") => (path, Some(r#"{"message":"route walk"}"#), ndjson),
        ("POST", p) if p.starts_with("/services/collector/raw") => {
            (path, Some("route walk raw"), None)
        }
        ("POST", p) if p.starts_with("/services/collector") => {
            (path, Some(r#"{"event":"route walk"}"#), json)
        }
        ("POST", p) if p.ends_with("_bulk") => (
            path,
            Some("{\"index\":{}}\n{\"message\":\"route walk\"}\n"),
            ndjson,
        ),
        ("GET", "/v1/decisions/stream") => (format!("{path}?startup=true"), None, None),
        ("GET", "/v1/decisions") => (format!("{path}?ip=198.51.100.1"), None, None),
        _ => (path, None, None),
    }
}

/// What the role table says `caller` must get from `route`; `Err` describes a mismatch.
fn check(route: &RouteAccess, caller: &Caller, a: &Answer) -> Result<(), String> {
    let s = a.status;
    let granted = |s: u16| s != 401 && s != 403 && s < 500;
    let browser = matches!(caller.credential, Credential::Browser(_));
    let has_authorization = matches!(caller.credential, Credential::Token(_));
    let ok = match route.access {
        Access::Public => granted(s),
        _ if route.path == "/" && !has_authorization => {
            s == 303 && a.header("location") == Some("/ui/")
        }
        Access::UiSession => match (browser, caller.role) {
            (true, Some(role)) if role.can_read() => s == 200,
            (true, _) => s == 403,
            (false, _) => s == 303 && a.header("location") == Some("/login"),
        },
        Access::SessionOnly => {
            if browser {
                granted(s)
            } else {
                s == 401
            }
        }
        Access::Bouncer => match (&caller.credential, caller.role) {
            (Credential::ApiKey(_), Some(Role::Bouncer)) => s == 200,
            _ => s == 403,
        },
        access => match (&caller.credential, caller.role) {
            (Credential::Anonymous, _) | (Credential::ApiKey(_), _) => s == 401,
            (_, Some(role)) if access.allows(role) => granted(s),
            _ => s == 403,
        },
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} {} as {}: got {} {}",
            route.method,
            route.path,
            caller.label,
            s,
            a.body.chars().take(200).collect::<String>()
        ))
    }
}

const PASSWORD: &str = "route walk password 1";

#[test]
fn every_route_answers_as_the_role_table_says() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let users = [
        ("root", "admin"),
        ("ann", "analyst"),
        ("vic", "viewer"),
        ("ivan", "ingest"),
    ];
    for (name, role) in users {
        add_user(&data, name, role, PASSWORD);
    }
    let mut callers = vec![Caller {
        label: "anonymous".into(),
        role: None,
        credential: Credential::Anonymous,
    }];
    for role in ["admin", "analyst", "viewer", "ingest", "bouncer"] {
        let token = create_token(&data, role, &format!("walk-{role}"));
        let role = Role::parse(role).unwrap();
        callers.push(Caller {
            label: format!("{} token", role.name()),
            role: Some(role),
            credential: Credential::Token(token.clone()),
        });
        if role == Role::Bouncer {
            callers.push(Caller {
                label: "bouncer key".into(),
                role: Some(role),
                credential: Credential::ApiKey(token),
            });
        }
    }
    // OTLP/gRPC is served on a listener of its own, behind the same role table: its route is
    // walked there, over HTTP/2.
    let grpc = common::unused_port();
    let server = Server::start(&data, &["--otlp-grpc", &format!("127.0.0.1:{grpc}")]);
    assert!(
        !data.join("auth/initial-admin-password").exists(),
        "no generated admin when accounts exist"
    );
    // Accounts and tokens made with the CLI before the server ran are audited once it starts.
    assert!(
        wait_until(5, || audit_events(&data, "user_created").len()
            == users.len()
            && audit_events(&data, "token_created").len() == 5),
        "the CLI's pending audit events reach the ledger"
    );
    for (name, role) in users {
        let session = login(&server.url, name, PASSWORD).expect("login");
        callers.push(Caller {
            label: format!("{role} session"),
            role: Some(Role::parse(role).unwrap()),
            credential: Credential::Browser(session),
        });
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for route in ROUTES {
        if route.path == "/api/v1/logout" {
            continue; // walked last: it ends the session
        }
        for caller in &callers {
            let (path, body, content_type) = request_for(route);
            let mut headers = caller.headers();
            headers.extend(content_type.map(str::to_owned));
            let a = if route.path == vigil_server::http::EXPORT_PATH {
                common::curl_with(
                    &["--http2-prior-knowledge"],
                    route.method,
                    &format!("http://127.0.0.1:{grpc}{path}"),
                    &headers,
                    body,
                )
            } else {
                curl(
                    route.method,
                    &format!("{}{path}", server.url),
                    &headers,
                    body,
                )
            };
            checked += 1;
            if let Err(e) = check(route, caller, &a) {
                failures.push(e);
            }
        }
    }
    let logout = ROUTES.iter().find(|r| r.path == "/api/v1/logout").unwrap();
    for caller in &callers {
        let a = curl(
            "POST",
            &format!("{}/api/v1/logout", server.url),
            &caller.headers(),
            None,
        );
        checked += 1;
        if let Err(e) = check(logout, caller, &a) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} answers disagree with the role table:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= ROUTES.len() * 10);
    // The sessions ended with the logouts.
    for caller in callers
        .iter()
        .filter(|c| matches!(c.credential, Credential::Browser(_)))
    {
        let a = curl(
            "GET",
            &format!("{}/api/v1/session", server.url),
            &caller.headers(),
            None,
        );
        assert_eq!(a.status, 401, "{} after logout", caller.label);
    }
    // Every answer carries the strict CSP.
    let a = curl("GET", &format!("{}/login", server.url), &[], None);
    assert_eq!(a.status, 200);
    let csp = a.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(a.header("x-frame-options"), Some("DENY"));
    // Anonymous refusals are audited with their address.
    assert!(wait_until(5, || {
        audit_events(&data, "api_auth_failure")
            .iter()
            .any(|e| e.get("source.ip").map(|v| v.to_string()).as_deref() == Some("127.0.0.1"))
    }));
}

#[test]
fn csrf_expiry_revocation_rate_limit_and_vigils_own_brute_force_rule() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "root", "admin", PASSWORD);
    add_user(&data, "ann", "analyst", PASSWORD);
    let reader = create_token(&data, "viewer", "reader");
    let server = Server::start(&data, &["--session-idle", "2s"]);
    let url = &server.url;

    // CSRF: the cookie alone does not change anything.
    let s = login(url, "root", PASSWORD).unwrap();
    let cookie = format!("Cookie: {}", s.cookie);
    let search = r#"{"query":"*","limit":1}"#;
    let a = curl(
        "POST",
        &format!("{url}/api/v1/search"),
        std::slice::from_ref(&cookie),
        Some(search),
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("CSRF"));
    let wrong = format!("X-CSRF-Token: {}", "0".repeat(64));
    let a = curl(
        "POST",
        &format!("{url}/api/v1/decisions"),
        &[cookie.clone(), wrong.clone()],
        Some(r#"{"value":"198.51.100.9"}"#),
    );
    assert_eq!(a.status, 403, "{}", a.body);
    let a = curl(
        "POST",
        &format!("{url}/api/v1/logout"),
        std::slice::from_ref(&cookie),
        None,
    );
    assert_eq!(a.status, 403, "logout needs the token too");
    let a = curl(
        "POST",
        &format!("{url}/api/v1/search"),
        &s.headers(),
        Some(search),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    // A cross-site form cannot log in: only JSON is accepted.
    let a = curl(
        "POST",
        &format!("{url}/api/v1/login"),
        &["Content-Type: application/x-www-form-urlencoded".into()],
        Some("username=root&password=x"),
    );
    assert_eq!(a.status, 415);

    // Idle expiry.
    std::thread::sleep(Duration::from_millis(2500));
    let a = curl("GET", &format!("{url}/api/v1/session"), &s.headers(), None);
    assert_eq!(a.status, 401, "idle session must expire");
    let a = curl("GET", &format!("{url}/ui/"), &s.headers(), None);
    assert_eq!(a.status, 303);
    let a = curl(
        "POST",
        &format!("{url}/api/v1/search"),
        &s.headers(),
        Some(search),
    );
    assert_eq!(a.status, 401);

    // A password change ends the user's sessions.
    let s = login(url, "ann", PASSWORD).unwrap();
    let mut passwd = vigil()
        .args(["user", "passwd", "--data-dir"])
        .arg(&data)
        .args(["--password-stdin", "ann"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    passwd
        .stdin
        .take()
        .unwrap()
        .write_all(b"a changed password 2\n")
        .unwrap();
    assert!(passwd.wait().unwrap().success());
    assert!(
        wait_until(5, || curl(
            "GET",
            &format!("{url}/api/v1/session"),
            &s.headers(),
            None
        )
        .status
            == 401),
        "a password change must end the sessions"
    );
    assert!(login(url, "ann", "a changed password 2").is_ok());

    // Token revocation takes effect while serving; last use is recorded.
    let analyst = create_token(&data, "analyst", "soon-revoked");
    let bearer = format!("Authorization: Bearer {analyst}");
    assert_eq!(
        curl(
            "GET",
            &format!("{url}/api/v1/alerts"),
            std::slice::from_ref(&bearer),
            None
        )
        .status,
        200
    );
    assert!(wait_until(5, || {
        let list = run_ok(vigil().args(["token", "list", "--data-dir"]).arg(&data));
        list.lines()
            .any(|l| l.contains("soon-revoked") && !l.contains("never"))
    }));
    run_ok(
        vigil()
            .args(["token", "revoke", "--data-dir"])
            .arg(&data)
            .arg("soon-revoked"),
    );
    assert!(
        wait_until(5, || curl(
            "GET",
            &format!("{url}/api/v1/alerts"),
            std::slice::from_ref(&bearer),
            None
        )
        .status
            == 401),
        "a revoked token must be refused"
    );

    // Login rate limit: five failures, then even the right password waits.
    for i in 0..5 {
        let e = login(url, "root", &format!("wrong guess {i}")).unwrap_err();
        assert_eq!(e.status, 401);
        assert!(e.body.contains("wrong user name or password"));
    }
    let e = login(url, "root", PASSWORD).unwrap_err();
    assert_eq!(e.status, 429, "{}", e.body);
    assert!(e.header("retry-after").is_some());

    // Every attempt is audited with its address (audit events are stored beside the answer:
    // give the last one a moment to be durable); the bundled rule raises an alert.
    assert!(
        wait_until(5, || audit_events(&data, "login_failure").len() >= 6),
        "{} login failures audited",
        audit_events(&data, "login_failure").len()
    );
    let failures = audit_events(&data, "login_failure");
    assert!(failures.iter().all(|e| {
        e.get("source.ip").map(|v| v.to_string()).as_deref() == Some("127.0.0.1")
            && e.get_str("user.name") == Some("root")
    }));
    assert!(
        wait_for_alert(
            url,
            &reader,
            "Brute force against Vigil's login",
            ("source.ip", "127.0.0.1"),
            20
        ),
        "the bundled rule must catch brute force against Vigil's login"
    );
    // Audited changes made with the CLI while serving reach the ledger.
    assert!(wait_until(5, || !audit_events(&data, "token_revoked").is_empty()));
    assert!(!audit_events(&data, "user_updated").is_empty());
    assert!(!audit_events(&data, "login_success").is_empty());
    server.stop();
}

/// Guessing one account's password from many addresses, each under the per-address limit:
/// after ten failures the account refuses logins from new addresses (429, even with the right
/// password) but not from an address its owner logged in from before, other accounts are
/// unaffected, every attempt is audited with its address, and the bundled value_count rule
/// raises an alert naming the account.
#[test]
fn guessing_one_account_from_many_addresses_is_limited_and_alerted() {
    const PASSWORD: &str = "ann's long passphrase";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "ann", "analyst", PASSWORD);
    add_user(&data, "bob", "viewer", "bob's long passphrase");
    let reader = create_token(&data, "analyst", "reader");
    let server = Server::start(&data, &[]);
    let url = &server.url;
    // The owner's usual address.
    let desk = login_from("127.0.0.7", url, "ann", PASSWORD).expect("ann from her desk");
    // 3 + 3 + 3 + 1 failures from four addresses: none reaches the per-address limit of 5.
    for (source, tries) in [
        ("127.0.0.2", 3),
        ("127.0.0.3", 3),
        ("127.0.0.4", 3),
        ("127.0.0.5", 1),
    ] {
        for i in 0..tries {
            let e = login_from(source, url, "ann", &format!("guess {source} {i}")).unwrap_err();
            assert_eq!(e.status, 401, "{source}: {}", e.body);
        }
    }
    let e = login_from("127.0.0.6", url, "ann", PASSWORD).unwrap_err();
    assert_eq!(e.status, 429, "{}", e.body);
    assert!(e.body.contains("for this account"), "{}", e.body);
    let wait: u64 = e.header("retry-after").unwrap().parse().unwrap();
    assert!(wait > 0 && wait <= 900, "{wait}");
    // A session (stolen, say) used from a new address cannot guess on through a password
    // change either.
    let mut headers = desk.headers();
    headers.push("Content-Type: application/json".into());
    let change = common::curl_with(
        &["--interface", "127.0.0.6"],
        "POST",
        &format!("{url}/api/v1/password"),
        &headers,
        Some(r#"{"current": "one more guess", "new": "a new long passphrase"}"#),
    );
    assert_eq!(change.status, 429, "{}", change.body);
    assert!(change.body.contains("for this account"), "{}", change.body);
    assert!(change.header("retry-after").is_some());
    // The address is not blocked, only the account, and not for its owner's usual address.
    login_from("127.0.0.6", url, "bob", "bob's long passphrase").expect("another account");
    login_from("127.0.0.7", url, "ann", PASSWORD).expect("ann is not locked out");

    // The last refusal's audit event is stored beside its answer: wait until it is durable.
    let refused_from_6 = |e: &vigil_event::Event| {
        e.get_str("event.reason") == Some("account rate limited")
            && e.get("source.ip").map(|v| v.to_string()).as_deref() == Some("127.0.0.6")
    };
    assert!(wait_until(5, || audit_events(&data, "login_failure")
        .iter()
        .any(refused_from_6)));
    let failures = audit_events(&data, "login_failure");
    let from: std::collections::BTreeSet<String> = failures
        .iter()
        .filter(|e| e.get_str("user.name") == Some("ann"))
        .filter_map(|e| e.get("source.ip").map(|v| v.to_string()))
        .collect();
    assert_eq!(
        from.into_iter().collect::<Vec<_>>(),
        [
            "127.0.0.2",
            "127.0.0.3",
            "127.0.0.4",
            "127.0.0.5",
            "127.0.0.6"
        ]
    );
    assert!(
        wait_for_alert(
            url,
            &reader,
            "Distributed password guessing against a Vigil account",
            ("user.name", "ann"),
            20
        ),
        "the bundled rule must catch guessing spread over addresses"
    );
    server.stop();
}

#[test]
fn no_password_or_token_in_logs_or_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--tls"]);
    assert!(server.url.starts_with("https://"));
    let first = std::fs::read_to_string(data.join("auth/initial-admin-password"))
        .unwrap()
        .trim()
        .to_owned();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(data.join("auth/initial-admin-password"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let url = &server.url;
    // HTTPS: the cookie is Secure, HSTS is sent.
    let body = serde_json::json!({"username": "admin", "password": first}).to_string();
    let a = curl(
        "POST",
        &format!("{url}/api/v1/login"),
        &["Content-Type: application/json".into()],
        Some(&body),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let cookie = a.header("set-cookie").unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(a.header("strict-transport-security").is_some());

    let wrong_password = "Wr0ng-Passw0rd-Never-Logged";
    assert_eq!(login(url, "admin", wrong_password).unwrap_err().status, 401);
    let user_password = "Us3r-Passw0rd-Never-Logged";
    add_user(&data, "carol", "analyst", user_password);
    let s = login(url, "carol", user_password).unwrap();
    let token = create_token(&data, "admin", "secret-check");
    let a = curl(
        "POST",
        &format!("{url}/api/v1/search"),
        &[format!("Authorization: Bearer {token}")],
        Some(r#"{"query":"* | stats count"}"#),
    );
    assert_eq!(a.status, 200);
    // The same token with its last digit changed (to something else than it was).
    let last = if token.ends_with('0') { '1' } else { '0' };
    let bad_token = format!("{}{last}", &token[..token.len() - 1]);
    let a = curl(
        "GET",
        &format!("{url}/api/v1/alerts"),
        &[format!("Authorization: Bearer {bad_token}")],
        None,
    );
    assert_eq!(a.status, 401);
    // Exports are audited with their query.
    let a = curl(
        "GET",
        &format!("{url}/api/v1/export?query=event.action%3Dlogin_failure&format=csv"),
        &s.headers(),
        None,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.header("content-disposition")
            .unwrap()
            .contains("attachment")
    );
    let header = a.body.lines().next().unwrap_or("");
    assert!(
        header.split(',').any(|c| c == "@timestamp") && a.body.contains("login_failure"),
        "{}",
        a.body
    );
    assert!(wait_until(5, || {
        audit_events(&data, "export").iter().any(|e| {
            e.get_str("vigil.query") == Some("event.action=login_failure")
                && e.get_str("user.name") == Some("carol")
        })
    }));
    assert_eq!(
        curl("POST", &format!("{url}/api/v1/logout"), &s.headers(), None).status,
        204
    );
    assert!(wait_until(5, || !audit_events(&data, "logout").is_empty()));
    let log = server.stop();
    assert!(log.contains("login failed"), "failures are logged:\n{log}");

    let ledger: String = ledger_events(&data)
        .iter()
        .map(|e| e.to_json().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(ledger.contains("login_failure") && ledger.contains("logout"));
    let secret_of = |t: &str| t.rsplit('_').next().unwrap().to_owned();
    for secret in [
        first.clone(),
        wrong_password.to_owned(),
        user_password.to_owned(),
        secret_of(&token),
        secret_of(&bad_token),
        s.csrf.clone(),
        s.cookie.trim_start_matches("vigil_session=").to_owned(),
    ] {
        assert!(!log.contains(&secret), "a secret is in the server's log");
        assert!(!ledger.contains(&secret), "a secret is in the ledger");
    }
}

#[test]
fn sessions_end_at_their_maximum_age_even_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "ann", "analyst", PASSWORD);
    let server = Server::start(&data, &["--session-max", "3s"]);
    let s = login(&server.url, "ann", PASSWORD).unwrap();
    let session = || {
        curl(
            "GET",
            &format!("{}/api/v1/session", server.url),
            &s.headers(),
            None,
        )
    };
    for _ in 0..5 {
        assert_eq!(session().status, 200, "in use, before the maximum age");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        wait_until(5, || session().status == 401),
        "the session must end at its maximum age"
    );
    // Logging in again starts a new one.
    let s2 = login(&server.url, "ann", PASSWORD).unwrap();
    assert_ne!(s2.cookie, s.cookie);
    server.stop();
}

#[test]
fn admins_manage_accounts_and_tokens_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "root", "admin", PASSWORD);
    add_user(&data, "ann", "analyst", PASSWORD);
    let server = Server::start(&data, &[]);
    let url = &server.url;
    let root = login(url, "root", PASSWORD).unwrap();
    let ann = login(url, "ann", PASSWORD).unwrap();
    let mut json_headers = root.headers();
    json_headers.push("Content-Type: application/json".into());

    // An account with a generated password, shown once.
    let a = curl(
        "POST",
        &format!("{url}/api/v1/users"),
        &json_headers,
        Some(r#"{"name":"dora","role":"viewer"}"#),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let generated = a.json()["password"].as_str().unwrap().to_owned();
    assert!(generated.len() >= 20);
    let dora = login(url, "dora", &generated).expect("the generated password works");
    // An analyst may not manage accounts.
    let a = curl(
        "POST",
        &format!("{url}/api/v1/users"),
        &ann.headers(),
        Some(r#"{"name":"eve","role":"admin","password":"eve's own password"}"#),
    );
    assert_eq!(a.status, 403);
    let listed = curl("GET", &format!("{url}/api/v1/users"), &root.headers(), None).json();
    let names: Vec<&str> = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["root", "ann", "dora"]);
    assert!(!listed.to_string().contains("argon2"), "no hashes");

    // Changing one's own password: wrong current one refused; then a new session replaces it.
    let mut dh = dora.headers();
    dh.push("Content-Type: application/json".into());
    let a = curl(
        "POST",
        &format!("{url}/api/v1/password"),
        &dh,
        Some(r#"{"current":"not it at all","new":"dora's new password"}"#),
    );
    assert_eq!(a.status, 403);
    let body = serde_json::json!({"current": generated, "new": "dora's new password"}).to_string();
    let a = curl("POST", &format!("{url}/api/v1/password"), &dh, Some(&body));
    assert_eq!(a.status, 200, "{}", a.body);
    let new_cookie = a
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(new_cookie, dora.cookie);
    let old = curl(
        "GET",
        &format!("{url}/api/v1/session"),
        &dora.headers(),
        None,
    );
    assert_eq!(old.status, 401, "the old session ended");
    let new = curl(
        "GET",
        &format!("{url}/api/v1/session"),
        &[format!("Cookie: {new_cookie}")],
        None,
    );
    assert_eq!(new.status, 200, "{}", new.body);
    assert!(login(url, "dora", &generated).is_err());
    assert!(login(url, "dora", "dora's new password").is_ok());

    // Tokens: created (shown once), used, listed with last use, revoked.
    let a = curl(
        "POST",
        &format!("{url}/api/v1/tokens"),
        &json_headers,
        Some(r#"{"name":"grafana","role":"viewer"}"#),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let created = a.json();
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let bearer = format!("Authorization: Bearer {token}");
    let a = curl(
        "GET",
        &format!("{url}/api/v1/alerts"),
        std::slice::from_ref(&bearer),
        None,
    );
    assert_eq!(a.status, 200);
    let listed = curl(
        "GET",
        &format!("{url}/api/v1/tokens"),
        &root.headers(),
        None,
    )
    .json();
    let entry = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap()
        .clone();
    assert!(entry["last_used"].is_string(), "{entry}");
    assert!(
        !listed.to_string().contains(&token),
        "the token is never listed"
    );
    let a = curl(
        "DELETE",
        &format!("{url}/api/v1/tokens/{id}"),
        &root.headers(),
        None,
    );
    assert_eq!(a.status, 204);
    assert!(wait_until(5, || curl(
        "GET",
        &format!("{url}/api/v1/alerts"),
        std::slice::from_ref(&bearer),
        None
    )
    .status
        == 401));
    // Deleting an account ends its sessions; the last admin cannot go.
    let a = curl(
        "DELETE",
        &format!("{url}/api/v1/users/ann"),
        &root.headers(),
        None,
    );
    assert_eq!(a.status, 204);
    assert_eq!(
        curl(
            "GET",
            &format!("{url}/api/v1/session"),
            &ann.headers(),
            None
        )
        .status,
        401
    );
    let a = curl(
        "DELETE",
        &format!("{url}/api/v1/users/root"),
        &root.headers(),
        None,
    );
    assert_eq!(a.status, 409, "{}", a.body);

    // Each change is audited with who made it and from where.
    for action in [
        "user_created",
        "user_updated",
        "user_deleted",
        "token_created",
        "token_revoked",
    ] {
        assert!(
            wait_until(5, || audit_events(&data, action).iter().any(|e| {
                e.get("source.ip").map(|v| v.to_string()).as_deref() == Some("127.0.0.1")
            })),
            "{action} audited"
        );
    }
    let created: Vec<_> = audit_events(&data, "user_created");
    assert!(
        created
            .iter()
            .any(|e| e.get_str("user.name") == Some("root")
                && e.get_str("user.target.name") == Some("dora"))
    );
    let log = server.stop();
    for secret in [generated.as_str(), "dora's new password", token.as_str()] {
        assert!(!log.contains(secret));
    }
}

#[test]
fn a_flood_of_bad_credentials_costs_no_argon2_and_no_ledger_space() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "root", "admin", PASSWORD);
    let known = create_token(&data, "viewer", "known");
    let fresh = create_token(&data, "viewer", "fresh");
    let server = Server::start(&data, &[]);
    let url = &server.url;
    let get = |token: &str| {
        curl(
            "GET",
            &format!("{url}/api/v1/sources"),
            &[format!("Authorization: Bearer {token}")],
            None,
        )
        .status
    };
    assert_eq!(get(&known), 200, "used once: remembered");
    for i in 0..40 {
        assert_eq!(get(&format!("vgl_0000{i:04}_{}", "ab".repeat(20))), 401);
    }
    // A token this address used before keeps working, and so does one it never used: the
    // guesses named no stored token, so they cost no argon2 and count against no valid token.
    assert_eq!(get(&known), 200);
    assert_eq!(get(&fresh), 200);
    // Only the attempts before the limit were audited.
    assert!(wait_until(5, || audit_events(&data, "api_auth_failure")
        .len()
        >= 30));
    std::thread::sleep(Duration::from_millis(500));
    let audited = audit_events(&data, "api_auth_failure").len();
    assert_eq!(
        audited, 30,
        "one audit event per attempt, none after the limit"
    );
    // Requests with no credentials or a made-up session cookie: audited up to the same limit,
    // then only counted (a flood must not fill the ledger).
    for i in 0..40 {
        let headers = if i % 4 == 0 {
            vec![format!("Cookie: vigil_session={i:064x}")]
        } else {
            Vec::new()
        };
        let a = curl("GET", &format!("{url}/api/v1/sources"), &headers, None);
        assert_eq!(a.status, 401);
    }
    assert!(wait_until(5, || audit_events(&data, "api_auth_failure")
        .len()
        >= 60));
    std::thread::sleep(Duration::from_millis(500));
    let anonymous = audit_events(&data, "api_auth_failure");
    assert_eq!(
        anonymous.len(),
        60,
        "30 anonymous attempts audited, none after"
    );
    assert!(
        anonymous
            .iter()
            .any(|e| e.get_str("event.reason") == Some("expired or unknown session"))
    );
    let metrics = curl(
        "GET",
        &format!("{url}/metrics"),
        &[format!("Authorization: Bearer {known}")],
        None,
    );
    for expected in [
        // 10 of the 40 invalid tokens.
        "vigil_http_rejected_total{reason=\"auth_rate_limited\"} 10",
        // 10 of the 40 anonymous requests.
        "vigil_http_rejected_total{reason=\"auth_unaudited\"} 10",
    ] {
        assert!(
            metrics.body.lines().any(|l| l == expected),
            "{expected} in {}",
            metrics.body
        );
    }
    // Browser logins have their own, stricter limit and are unaffected here.
    assert!(login(url, "root", PASSWORD).is_ok());
    server.stop();
}

/// Vigil's own starts, stops and setting changes are in its ledger (PCI DSS 10.2.1.6): a clean
/// stop, a changed setting, a `kill -9` that the next start reports, a start that fails (its
/// port taken) recorded as a failed stop, and no secret among the recorded settings.
#[test]
fn starts_stops_and_setting_changes_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    Server::start(&data, &[]).stop();
    let second = Server::start(&data, &["--session-idle", "1m"]);
    // Dropping a running server kills it with SIGKILL.
    drop(second);
    Server::start(&data, &["--session-idle", "1m"]).stop();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let failed = Server::try_start(&data, &["--session-idle", "1m", "--http", &port]);
    assert!(failed.is_err(), "the port is taken");
    let last = Server::start(&data, &["--session-idle", "1m"]);
    assert!(
        wait_until(10, || audit_events(&data, "vigil_stop")
            .iter()
            .any(|e| e.get_str("event.outcome") == Some("failure"))),
        "the failed start is recorded by the next one"
    );
    last.stop();

    let starts = audit_events(&data, "vigil_start");
    let previous: Vec<&str> = starts
        .iter()
        .map(|e| e.get_str("vigil.previous_stop").unwrap())
        .collect();
    assert_eq!(previous, ["none", "clean", "unclean", "clean", "clean"]);
    assert!(starts.iter().all(|e| {
        e.get_str("event.category") == Some("process")
            && e.get_str("vigil.settings.listen.syslog_udp") == Some("off")
    }));
    assert_eq!(
        starts[2].get_str("vigil.settings.ui.session_idle"),
        Some("1m")
    );
    let stops = audit_events(&data, "vigil_stop");
    let outcomes: Vec<&str> = stops
        .iter()
        .map(|e| e.get_str("event.outcome").unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "success").count(),
        3,
        "three clean stops: {outcomes:?}"
    );
    let failure = stops
        .iter()
        .find(|e| e.get_str("event.outcome") == Some("failure"))
        .unwrap();
    assert!(
        failure.get_str("event.reason").unwrap().contains(&port),
        "{failure:?}"
    );
    let changes = audit_events(&data, "config_changed");
    let changed: Vec<String> = changes
        .iter()
        .map(|e| e.get("vigil.settings_changed").unwrap().to_string())
        .collect();
    assert_eq!(
        changes.len(),
        3,
        "session_idle, then http twice: {changed:?}"
    );
    assert_eq!(
        changes[0].get_str("vigil.settings_before.ui.session_idle"),
        Some("30m")
    );
    assert_eq!(
        changes[0].get_str("vigil.settings.ui.session_idle"),
        Some("1m")
    );
    assert!(
        changes[0]
            .get_str("message")
            .unwrap()
            .contains("ui.session_idle: 30m → 1m")
    );
    assert_eq!(
        changes[1].get_str("vigil.settings.listen.http"),
        Some(port.as_str())
    );
    drop(taken);
}
