//! The first start's generated admin password must be changed: a login with it gets a session
//! that may only change it (and load the UI that does so); after the change the account works
//! and the generated-password file is gone.

mod common;

use std::process::Command;

use common::{Server, browser_dir, browser_missing, curl, login};

const NEW_PASSWORD: &str = "my own admin passphrase 1";

#[test]
fn the_generated_admin_password_must_be_changed_before_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let url = &server.url;
    let file = data.join("auth/initial-admin-password");
    let first = std::fs::read_to_string(&file).unwrap().trim().to_owned();

    let s = login(url, "admin", &first).expect("login with the generated password");
    let me = curl("GET", &format!("{url}/api/v1/session"), &s.headers(), None);
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["must_change_password"], true);
    // The UI that shows the change form loads.
    for path in ["/ui/", "/assets/app.js"] {
        let a = curl("GET", &format!("{url}{path}"), &s.headers(), None);
        assert_eq!(a.status, 200, "{path}: {}", a.body);
    }
    // Everything else is refused for this session.
    for (method, path, body) in [
        ("GET", "/api/v1/alerts", None),
        ("GET", "/metrics", None),
        ("POST", "/api/v1/search", Some(r#"{"query":"*","limit":1}"#)),
        ("GET", "/api/v1/users", None),
        (
            "POST",
            "/api/v1/tokens",
            Some(r#"{"name":"sneaky","role":"admin"}"#),
        ),
    ] {
        let mut headers = s.headers();
        headers.push("Content-Type: application/json".into());
        let a = curl(method, &format!("{url}{path}"), &headers, body);
        assert_eq!(a.status, 403, "{method} {path}: {}", a.body);
        assert!(
            a.body.contains("change the generated password"),
            "{}",
            a.body
        );
    }
    assert!(file.exists(), "the file stays until the change");

    // The change: a wrong current password is refused, the right one works.
    let mut headers = s.headers();
    headers.push("Content-Type: application/json".into());
    let wrong = serde_json::json!({"current": "not the password", "new": NEW_PASSWORD});
    let a = curl(
        "POST",
        &format!("{url}/api/v1/password"),
        &headers,
        Some(&wrong.to_string()),
    );
    assert_eq!(a.status, 403, "{}", a.body);
    let change = serde_json::json!({"current": first, "new": NEW_PASSWORD});
    let a = curl(
        "POST",
        &format!("{url}/api/v1/password"),
        &headers,
        Some(&change.to_string()),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["must_change_password"], false);
    assert!(
        !file.exists(),
        "the generated-password file goes with the change"
    );

    // The new session (from the change) and a fresh login both work everywhere.
    let cookie = a
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let renewed = common::Session {
        cookie,
        csrf: a.json()["csrf"].as_str().unwrap().to_owned(),
    };
    let fresh = login(url, "admin", NEW_PASSWORD).expect("login with the new password");
    assert!(
        login(url, "admin", &first).is_err(),
        "the generated one is gone"
    );
    for session in [&renewed, &fresh] {
        let a = curl(
            "GET",
            &format!("{url}/api/v1/alerts"),
            &session.headers(),
            None,
        );
        assert_eq!(a.status, 200, "{}", a.body);
        let a = curl(
            "GET",
            &format!("{url}/api/v1/session"),
            &session.headers(),
            None,
        );
        assert_eq!(a.json()["must_change_password"], false);
    }
    server.stop();
}

#[test]
fn the_ui_opens_on_the_change_form_until_the_generated_password_is_changed() {
    if let Some(why) = browser_missing() {
        if std::env::var_os("VIGIL_REQUIRE_TOOLS").is_some() {
            panic!("{why}");
        }
        eprintln!("skipping the first-login browser test: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let file = data.join("auth/initial-admin-password");
    let first = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    let out = Command::new("node")
        .arg("first_login.mjs")
        .current_dir(browser_dir())
        .env("VIGIL_URL", &server.url)
        .env("VIGIL_PASSWORD", &first)
        .env("VIGIL_NEW_PASSWORD", NEW_PASSWORD)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ALL STEPS PASSED"),
        "the browser test failed:\n{stdout}\n{}\n--- server log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    assert!(
        !file.exists(),
        "the generated-password file goes with the change"
    );
    assert!(login(&server.url, "admin", NEW_PASSWORD).is_ok());
    server.stop();
}
