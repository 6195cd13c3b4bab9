//! API tokens under guessing (issue 13, defect 12): a flood of bad tokens from an address must
//! not lock out that address's valid tokens, and changing the token file (another token created
//! or revoked) must not refuse a token that is in use.

use crate::common::{Server, create_token, curl, run_ok, vigil};

/// A token of the right shape whose id names no stored token.
fn guess(i: usize) -> String {
    format!("vgl_{:08x}_{:040x}", 0xdead_0000_u32 + i as u32, i)
}

fn ingest(server: &Server, token: &str, message: &str) -> u16 {
    curl(
        "POST",
        &format!("{}/api/v1/ingest", server.url),
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/x-ndjson".into(),
        ],
        Some(&format!(r#"{{"message":"{message}"}}"#)),
    )
    .status
}

fn read(server: &Server, token: &str) -> u16 {
    curl(
        "GET",
        &format!("{}/metrics", server.url),
        &[format!("Authorization: Bearer {token}")],
        None,
    )
    .status
}

#[test]
fn a_flood_of_bad_tokens_does_not_lock_out_a_valid_uncached_token() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = create_token(dir.path(), "viewer", "dashboard");
    let server = Server::start(dir.path(), &[]);
    for i in 0..40 {
        assert_eq!(read(&server, &guess(i)), 401);
    }
    assert_eq!(read(&server, "not-even-a-token"), 401);
    // Never presented before, so not cached: it must still be checked, and pass.
    assert_eq!(
        read(&server, &viewer),
        200,
        "a valid token from an address that sent 41 bad ones"
    );
}

#[test]
fn creating_and_revoking_tokens_does_not_refuse_a_token_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let agent = create_token(dir.path(), "ingest", "agent");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(ingest(&server, &agent, "before"), 200);
    // The same address (a NAT, a shared host) also sends bad tokens.
    for i in 0..40 {
        assert_eq!(read(&server, &guess(i)), 401);
    }
    // Meanwhile an admin creates and revokes other tokens.
    let other = create_token(dir.path(), "viewer", "temporary");
    run_ok(
        vigil()
            .args(["token", "revoke", "--data-dir"])
            .arg(dir.path())
            .arg("temporary"),
    );
    // The server notices the token file changed within a second; the agent keeps sending.
    for i in 0..15 {
        assert_eq!(
            ingest(&server, &agent, &format!("after {i}")),
            200,
            "the agent's token was refused after another token was created and revoked"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(read(&server, &other), 401, "the revoked token is refused");
}
