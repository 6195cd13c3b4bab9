//! Issue 13, defect 7: a request is stored whole or not at all, and the answer says which. A
//! request over 4,096 events with one oversized event used to store 4,096 and answer 503 "not
//! stored"; one answer's `first_seq..last_seq` used to include other senders' events.

use std::io::Write;
use std::path::Path;

use crate::common::{Answer, Server, create_token, curl, ledger_events};

/// POSTs a body from a file (bodies here are larger than one command-line argument may be).
pub fn post_file(url: &str, token: &str, body: &[u8], content_type: &str) -> Answer {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(body).unwrap();
    let at = format!("@{}", file.path().display());
    curl(
        "POST",
        url,
        &[
            format!("Authorization: Bearer {token}"),
            format!("Content-Type: {content_type}"),
            // No `100 Continue` interim answer for curl to print first.
            "Expect:".to_owned(),
        ],
        Some(&at),
    )
}

fn json_lines(sender: usize, request: usize, n: usize, big_at: Option<usize>) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..n {
        let message = if Some(i) == big_at {
            "A".repeat(1_200_000)
        } else {
            format!("line {i}")
        };
        body.extend_from_slice(
            serde_json::json!({"message": message, "sender": sender, "request": request, "n": i})
                .to_string()
                .as_bytes(),
        );
        body.push(b'\n');
    }
    body
}

fn events_of(data: &Path, sender: i64) -> Vec<vigil_event::Event> {
    ledger_events(data)
        .into_iter()
        .filter(|e| e.get("sender").and_then(|v| v.as_i64()) == Some(sender))
        .collect()
}

#[test]
fn oversized_event_in_a_large_request_is_stored_cut_with_the_rest() {
    let data = tempfile::tempdir().unwrap();
    let token = create_token(data.path(), "ingest", "batches");
    let server = Server::start(data.path(), &[]);
    let url = format!("{}/api/v1/ingest", server.url);

    // 5,000 events, one of them far over the ledger's 1 MiB event limit.
    let body = json_lines(1, 0, 5000, Some(4500));
    let answer = post_file(&url, &token, &body, "application/x-ndjson");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let json = answer.json();
    assert_eq!(json["accepted"], 5000);
    let (first, last) = (
        json["first_seq"].as_u64().unwrap(),
        json["last_seq"].as_u64().unwrap(),
    );
    assert_eq!(last - first + 1, 5000, "{json}");
    let stored = events_of(data.path(), 1);
    assert_eq!(stored.len(), 5000, "every event of the request is stored");
    let big = stored
        .iter()
        .find(|e| e.get("n").and_then(|v| v.as_i64()) == Some(4500))
        .unwrap();
    assert!(
        big.get("tags")
            .is_some_and(|t| t.to_string().contains("truncated")),
        "the oversized event is stored cut and tagged: {:?}",
        big.get("tags")
    );
    assert!(big.to_canonical().len() <= vigil_ledger::format::MAX_EVENT_BYTES);

    // A request over the per-request cap is refused whole, up front.
    let too_many = b"{\"sender\":2}\n".repeat(65_537);
    let answer = post_file(&url, &token, &too_many, "application/x-ndjson");
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert!(
        answer.body.contains("at most 65536 events"),
        "{}",
        answer.body
    );
    assert!(events_of(data.path(), 2).is_empty(), "nothing of it stored");
    server.stop();
}

#[test]
fn concurrent_senders_get_contiguous_ranges_of_their_own_events() {
    let data = tempfile::tempdir().unwrap();
    let token = create_token(data.path(), "ingest", "batches");
    let server = Server::start(data.path(), &[]);
    let url = format!("{}/api/v1/ingest", server.url);
    let senders: Vec<_> = (0..4)
        .map(|sender| {
            let (url, token) = (url.clone(), token.clone());
            std::thread::spawn(move || {
                let mut ranges = Vec::new();
                for request in 0..3 {
                    // Over 4,096 events: more than one internal append on the old code.
                    let body = json_lines(sender, request, 5000, None);
                    let answer = post_file(&url, &token, &body, "application/x-ndjson");
                    assert_eq!(answer.status, 200, "{}", answer.body);
                    let json = answer.json();
                    ranges.push((
                        request,
                        json["first_seq"].as_u64().unwrap(),
                        json["last_seq"].as_u64().unwrap(),
                    ));
                }
                (sender, ranges)
            })
        })
        .collect();
    let answers: Vec<_> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    let mut reader = vigil_ledger::LedgerReader::open(data.path()).unwrap();
    for (sender, ranges) in answers {
        for (request, first, last) in ranges {
            assert_eq!(last - first + 1, 5000);
            reader
                .for_each_raw(first..last + 1, |seq, raw| {
                    let e = vigil_event::Event::from_canonical(raw).unwrap();
                    assert_eq!(
                        (
                            e.get("sender").and_then(|v| v.as_i64()),
                            e.get("request").and_then(|v| v.as_i64())
                        ),
                        (Some(sender as i64), Some(request as i64)),
                        "seq {seq} in the answer {first}..={last} of sender {sender} request {request} \
                         belongs to another request"
                    );
                    Ok(())
                })
                .unwrap();
        }
    }
    server.stop();
}
