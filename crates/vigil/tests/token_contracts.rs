//! CLI contracts of tokens and bouncer keys against a running server: a token or key created
//! with `vigil token create` / `vigil bouncer add` while `serve` runs works on the very next
//! request, even on a busy server that checked its token file a moment before.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Server, create_token, curl};

/// Keeps the server busy with authenticated requests (as a live deployment is), so its
/// periodic look at the token file is always recent when a new token arrives.
struct Busy {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Busy {
    fn start(url: &str, token: &str) -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, url, auth) = (
            Arc::clone(&stop),
            format!("{url}/metrics"),
            format!("Authorization: Bearer {token}"),
        );
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let a = curl("GET", &url, std::slice::from_ref(&auth), None);
                assert_eq!(a.status, 200, "the busy client's own token: {}", a.body);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Busy {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_token_created_while_serving_works_on_the_very_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let busy_token = create_token(&data, "viewer", "busy");
    let busy = Busy::start(&server.url, &busy_token);
    for i in 0..5 {
        let token = create_token(&data, "viewer", &format!("reader-{i}"));
        let a = curl(
            "GET",
            &format!("{}/metrics", server.url),
            &[format!("Authorization: Bearer {token}")],
            None,
        );
        assert_eq!(a.status, 200, "token {i} on its first request: {}", a.body);

        let ingest = create_token(&data, "ingest", &format!("sender-{i}"));
        let a = curl(
            "POST",
            &format!("{}/api/v1/ingest", server.url),
            &[
                format!("Authorization: Bearer {ingest}"),
                "Content-Type: application/x-ndjson".into(),
            ],
            Some("{\"message\":\"hello\"}\n"),
        );
        assert_eq!(a.status, 200, "ingest token {i} at once: {}", a.body);
    }
    drop(busy);
    server.stop();
}

#[test]
fn a_bouncer_key_added_while_serving_works_on_the_very_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let busy_token = create_token(&data, "viewer", "busy");
    let busy = Busy::start(&server.url, &busy_token);
    for i in 0..5 {
        let key = create_token(&data, "bouncer", &format!("edge-{i}"));
        let a = curl(
            "GET",
            &format!("{}/v1/decisions/stream?startup=true", server.url),
            &[format!("X-Api-Key: {key}")],
            None,
        );
        assert_eq!(a.status, 200, "bouncer key {i} at once: {}", a.body);
    }
    drop(busy);
    server.stop();
}
