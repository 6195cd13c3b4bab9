//! API tokens under guessing (issue 13, defect 12): a flood of bad tokens from an address must
//! not lock out that address's valid tokens, and changing the token file (another token created
//! or revoked) must not refuse a token that is in use.

use crate::common::{Server, create_token, curl, curl_with, run_ok, vigil};

/// A token of the right shape whose id names no stored token.
fn guess(i: usize) -> String {
    format!("vgl_{:08x}_{:040x}", 0xdead_0000_u32 + i as u32, i)
}

/// 40 bad tokens from 127.0.0.1, quickly (the limiter counts within a minute): 35 of no
/// token's shape, 5 of the right shape naming no stored token.
fn flood(server: &Server) {
    for i in 0..35 {
        assert_eq!(read(server, &format!("garbage-{i}")), 401);
    }
    for i in 0..5 {
        assert_eq!(read(server, &guess(i)), 401);
    }
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
    flood(&server);
    // Never presented before, so not cached: it must still be checked, and pass.
    assert_eq!(
        read(&server, &viewer),
        200,
        "a valid token from an address that sent 40 bad ones"
    );
}

#[test]
fn creating_and_revoking_tokens_does_not_refuse_a_token_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let agent = create_token(dir.path(), "ingest", "agent");
    let dashboard = create_token(dir.path(), "viewer", "dashboard");
    let server = Server::start(dir.path(), &[]);
    // A dashboard on another host reads metrics now and then.
    let dashboard_reads = || {
        curl_with(
            &["--interface", "127.0.0.2"],
            "GET",
            &format!("{}/metrics", server.url),
            &[format!("Authorization: Bearer {dashboard}")],
            None,
        )
        .status
    };
    assert_eq!(dashboard_reads(), 200);
    assert_eq!(ingest(&server, &agent, "before"), 200);
    // The agent's address (a NAT, a shared host) also sends bad tokens.
    flood(&server);
    // Meanwhile an admin creates and revokes other tokens.
    let other = create_token(dir.path(), "viewer", "temporary");
    run_ok(
        vigil()
            .args(["token", "revoke", "--data-dir"])
            .arg(dir.path())
            .arg("temporary"),
    );
    // The server notices the token file changed within a second; both keep working.
    for i in 0..15 {
        assert_eq!(dashboard_reads(), 200);
        assert_eq!(
            ingest(&server, &agent, &format!("after {i}")),
            200,
            "the agent's token was refused after another token was created and revoked"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(read(&server, &other), 401, "the revoked token is refused");
}
