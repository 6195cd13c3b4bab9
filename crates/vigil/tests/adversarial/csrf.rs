//! CSRF (issue 13, defect 14): a request with a live session cookie that changes state needs
//! the session's CSRF token, whatever other credentials headers it carries. The guard used to
//! let through any request with an `Authorization` or `X-Api-Key` header, valid or not, and the
//! cookie then authenticated it.

use crate::common::{Server, add_user, curl, login};

const PASSWORD: &str = "correct horse battery staple";

#[test]
fn a_bogus_credentials_header_does_not_exempt_a_session_from_csrf() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "ana", "analyst", PASSWORD);
    let server = Server::start(dir.path(), &[]);
    let session = login(&server.url, "ana", PASSWORD).expect("login");
    let ban = |extra: &str, with_csrf: bool| {
        let mut headers = vec![
            format!("Cookie: {}", session.cookie),
            "Content-Type: application/json".to_owned(),
        ];
        if !extra.is_empty() {
            headers.push(extra.to_owned());
        }
        if with_csrf {
            headers.push(format!("X-CSRF-Token: {}", session.csrf));
        }
        curl(
            "POST",
            &format!("{}/api/v1/decisions", server.url),
            &headers,
            Some(r#"{"value":"198.51.100.77","duration":"1m","reason":"csrf test"}"#),
        )
    };
    for extra in [
        "X-Api-Key: anything",
        "Authorization: Foo bar",
        "Authorization: Bearer vgl_00000000_nothing",
        "",
    ] {
        let a = ban(extra, false);
        assert_eq!(a.status, 403, "{extra:?} without a CSRF token: {a:?}");
        assert!(a.body.contains("CSRF"), "{}", a.body);
    }
    let list = curl(
        "GET",
        &format!("{}/api/v1/decisions", server.url),
        &[format!("Cookie: {}", session.cookie)],
        None,
    );
    assert!(
        !list.body.contains("198.51.100.77"),
        "no ban was made: {}",
        list.body
    );
    // Logging out is a change too.
    let out = curl(
        "POST",
        &format!("{}/api/v1/logout", server.url),
        &[
            format!("Cookie: {}", session.cookie),
            "Authorization: Bearer vgl_00000000_nothing".to_owned(),
        ],
        None,
    );
    assert_eq!(out.status, 403, "{out:?}");
    // With the token the same request works.
    let a = ban("X-Api-Key: anything", true);
    assert!(a.status / 100 == 2, "{a:?}");
}
