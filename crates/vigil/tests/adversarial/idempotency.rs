//! Issue 13, defect 8: `Idempotency-Key`s were kept in memory only, so a client that retried
//! after a server crash had its batch stored twice. Now the key rides in the batch's first event
//! (same atomic append) and the table is rebuilt from the ledger at start.

use crate::common::{Server, create_token, curl, ledger_events};

fn post(url: &str, token: &str, key: &str, body: &str) -> crate::common::Answer {
    curl(
        "POST",
        &format!("{url}/api/v1/ingest"),
        &[
            format!("Authorization: Bearer {token}"),
            "Content-Type: application/x-ndjson".to_owned(),
            format!("Idempotency-Key: {key}"),
        ],
        Some(body),
    )
}

fn copies(data: &std::path::Path, marker: &str) -> usize {
    ledger_events(data)
        .iter()
        .filter(|e| e.get_str("message").is_some_and(|m| m.starts_with(marker)))
        .count()
}

#[test]
fn a_retry_after_kill_nine_gets_the_first_answer_and_stores_nothing_twice() {
    let data = tempfile::tempdir().unwrap();
    let token = create_token(data.path(), "ingest", "retrier");
    let other = create_token(data.path(), "ingest", "other");
    let body = "{\"message\":\"crash-batch 1\"}\n{\"message\":\"crash-batch 2\"}\n{\"message\":\"crash-batch 3\"}\n";

    let server = Server::start(data.path(), &[]);
    // Some traffic before, so the batch does not start at seq 0.
    let a = post(&server.url, &other, "warm-up", "{\"message\":\"warm\"}\n");
    assert_eq!(a.status, 200, "{}", a.body);
    let first = post(&server.url, &token, "batch-0001", body);
    assert_eq!(first.status, 200, "{}", first.body);
    let first = first.json();
    // An event from outside claiming a key for someone else's batch is not taken as one.
    let forged = post(
        &server.url,
        &other,
        "forger",
        "{\"message\":\"forged\",\"vigil.idempotency.key\":\"batch-0002\",\"vigil.idempotency.sender\":\"x\",\"vigil.idempotency.events\":1,\"vigil.idempotency.parse_errors\":0}\n",
    );
    assert_eq!(forged.status, 200, "{}", forged.body);
    drop(server); // SIGKILL: no clean stop, nothing flushed but what was durable

    let server = Server::start(data.path(), &[]);
    let again = post(&server.url, &token, "batch-0001", body);
    assert_eq!(again.status, 200, "{}", again.body);
    let again = again.json();
    for field in ["accepted", "first_seq", "last_seq", "parse_errors"] {
        assert_eq!(again[field], first[field], "{field}: {again} vs {first}");
    }
    assert_eq!(copies(data.path(), "crash-batch "), 3, "stored once");

    // Same key, other sender: its own batch.
    let theirs = post(
        &server.url,
        &other,
        "batch-0001",
        "{\"message\":\"other-batch\"}\n",
    );
    assert_eq!(theirs.status, 200);
    assert_eq!(copies(data.path(), "other-batch"), 1);
    // The forged claim made no key: a batch under that key is stored.
    let fresh = post(
        &server.url,
        &token,
        "batch-0002",
        "{\"message\":\"fresh-batch\"}\n",
    );
    assert_eq!(fresh.status, 200);
    assert_eq!(copies(data.path(), "fresh-batch"), 1);
    let forged_event = ledger_events(data.path())
        .into_iter()
        .find(|e| e.get_str("message") == Some("forged"))
        .unwrap();
    assert_eq!(
        forged_event.get_str("vigil.idempotency.key"),
        Some("forger")
    );
    server.stop();
}
