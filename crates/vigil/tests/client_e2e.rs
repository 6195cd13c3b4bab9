//! `vigil-client` against a real `vigil serve`: the shop example's events (typed constructors
//! and the tracing layer) are sent, Vigil is stopped in the middle and restarted on the same
//! data directory and port, and every event must be in the ledger exactly once and in send
//! order, while the client's memory queue stays within its capacity and the spool holds the
//! rest during the outage.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Server;

use tracing_subscriber::layer::SubscriberExt;
use vigil_client::{Client, VigilLayer};
use vigil_event::{Event, Value};

#[allow(dead_code)]
#[path = "../../vigil-client/examples/shop.rs"]
mod shop;

fn create_token(data: &Path) -> String {
    common::create_token(data, "ingest", "shop")
}

/// Starts `vigil serve` with HTTP on `http` (`127.0.0.1:0` for any port), retrying while that
/// port is not free yet; returns the server and its `127.0.0.1:PORT`.
fn start(data: &Path, http: &str) -> (Server, String) {
    let mut said = String::new();
    for _ in 0..40 {
        match Server::try_start(data, &["--http", http, "--index-threads", "0"]) {
            Ok(server) => {
                let addr = server.url.strip_prefix("http://").unwrap().to_owned();
                return (server, addr);
            }
            Err(log) => said = log,
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("vigil serve did not start on {http}:\n{said}");
}

/// Starts `vigil serve` on any port with extra flags.
fn start_with(data: &Path, extra: &[&str]) -> (Server, String) {
    let mut flags = vec!["--index-threads", "0"];
    flags.extend_from_slice(extra);
    let server = Server::start(data, &flags);
    let addr = server.url.strip_prefix("http://").unwrap().to_owned();
    (server, addr)
}

const CAP: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_survives_a_vigil_restart_in_order_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = create_token(&data);
    let (server, http) = start(&data, "127.0.0.1:0");

    let client = Client::builder(&format!("http://{http}"), &token)
        .service("shop-e2e")
        .queue_capacity(CAP)
        .batch_max_events(10)
        .spool_dir(dir.path().join("spool"))
        .backoff(Duration::from_millis(20), Duration::from_millis(300))
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(VigilLayer::new(client.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);
    let per_round = shop::EVENTS_PER_ROUND;
    let mut step = 0;

    // Phase 1: Vigil up.
    for _ in 0..5 {
        shop::scenario(&client, "alice", step);
        step += per_round;
    }
    client.flush_timeout(Duration::from_secs(30)).await.unwrap();
    assert_eq!(client.stats().delivered, step);

    // Phase 2: Vigil down. Memory stays bounded; the spool takes the rest.
    server.stop();
    let down_from = step;
    for _ in 0..40 {
        shop::scenario(&client, "bob", step);
        step += per_round;
        let s = client.stats();
        assert!(s.queued <= CAP, "queue above its capacity: {s:?}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = client.stats();
    let down = step - down_from;
    assert!(s.queue_high_water <= CAP, "{s:?}");
    assert_eq!(s.queued as u64 + s.spooled, down, "{s:?}");
    assert!(s.spooled >= down - CAP as u64, "{s:?}");
    assert!(s.spool_bytes > 0 && s.retries > 0, "{s:?}");
    assert_eq!(s.dropped, 0, "{s:?}");

    // Phase 3: Vigil back on the same data directory and port; everything is delivered.
    let (server, again) = start(&data, &http);
    assert_eq!(again, http);
    client.flush_timeout(Duration::from_secs(60)).await.unwrap();
    for _ in 0..2 {
        shop::scenario(&client, "carol", step);
        step += per_round;
    }
    client.shutdown(Duration::from_secs(30)).await.unwrap();
    let s = client.stats();
    assert_eq!((s.delivered, s.spooled, s.queued), (step, 0, 0), "{s:?}");
    server.stop();

    // Every event exactly once, in send order.
    let events: Vec<Event> = common::ledger_events(&data)
        .into_iter()
        .filter(|e| e.get_str("service.name") == Some("shop-e2e"))
        .collect();
    let steps: Vec<i64> = events
        .iter()
        .map(|e| e.get("labels.step").and_then(Value::as_i64).unwrap_or(-1))
        .collect();
    assert_eq!(steps, (0..step as i64).collect::<Vec<_>>());
    let mut ids: Vec<&str> = events
        .iter()
        .filter_map(|e| e.get_str("event.id"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len() as u64, step, "every event has its own event.id");

    // The fields survived Vigil's parser.
    let fail = &events[0];
    assert_eq!(fail.get_str("event.action"), Some("authn_login_fail"));
    assert_eq!(fail.get_str("event.category"), Some("authentication"));
    assert_eq!(fail.get_str("event.outcome"), Some("failure"));
    assert_eq!(fail.get_str("user.name"), Some("alice"));
    assert_eq!(
        fail.get("source.ip").and_then(Value::as_ip),
        Some("203.0.113.5".parse().unwrap())
    );
    let traced = &events[6];
    assert_eq!(
        traced.get_str("event.action"),
        Some("input_validation_fail")
    );
    assert_eq!(
        traced.get_str("event.category"),
        Some("intrusion_detection")
    );
    assert_eq!(
        traced.get_str("message"),
        Some("checkout form failed validation")
    );
    let read = &events[7];
    assert_eq!(read.get_str("event.action"), Some("sensitive_read"));
    assert_eq!(read.get_str("url.path"), Some("/orders/42"));
}

/// Spills while a POST is out (tiny queue, events trickling in), 413s from a small
/// `--max-body-bytes` (the client halves its batches), and a client that goes away while a
/// batch from its spool is out (Vigil stored it, the answer never came): the next client on
/// the spool sends that batch again under the same key even with smaller batch limits, so
/// nothing is stored twice and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spills_in_flight_413_splitting_and_crash_replay() {
    use vigil_client::SecurityEvent;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = create_token(&data);
    // Room for a handful of events per request, not for a batch of 50.
    let (server, http) = start_with(&data, &["--max-body-bytes", "4000"]);
    let spool_dir = dir.path().join("spool");
    let client = Client::builder(&format!("http://{http}"), &token)
        .service("trickle")
        .queue_capacity(4)
        .batch_max_events(50)
        .linger(Duration::ZERO)
        .spool_dir(&spool_dir)
        .backoff(Duration::from_millis(10), Duration::from_millis(100))
        .build()
        .unwrap();
    for i in 0..300i64 {
        client
            .emit(SecurityEvent::sensitive_read("dave", "/orders/7").field("labels.step", i))
            .unwrap();
        if i % 3 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    client.flush_timeout(Duration::from_secs(60)).await.unwrap();
    let s = client.stats();
    assert_eq!((s.delivered, s.dropped, s.rejected), (300, 0, 0), "{s:?}");
    assert!(s.queue_high_water <= 4, "{s:?}");
    assert!(s.spilled > 0, "the tiny queue spilled: {s:?}");
    assert!(s.split > 0, "413s made the client halve its batches: {s:?}");
    client.shutdown(Duration::from_secs(5)).await.unwrap();
    drop(client);

    // A crash with a batch out: Vigil stores it, the answer never arrives (a proxy holds it),
    // and the client goes away. The next client on the spool, with smaller batches, must send
    // that batch again as it was (same key), so Vigil recognises it and nothing is doubled.
    let offline = Client::builder("http://127.0.0.1:9", &token)
        .service("replay")
        .spool_dir(&spool_dir)
        .backoff(Duration::from_secs(60), Duration::from_secs(60))
        .build()
        .unwrap();
    for i in 0..10i64 {
        offline
            .emit(SecurityEvent::sys_crash("oom").field("labels.step", i))
            .unwrap();
    }
    assert!(offline.shutdown(Duration::from_millis(200)).await.is_err());
    drop(offline);
    let proxy = LossyProxy::start(&http, 1, Loss::Hold).await;
    let crashing = Client::builder(&format!("http://{}", proxy.addr), &token)
        .service("replay")
        .spool_dir(&spool_dir)
        .backoff(Duration::from_secs(60), Duration::from_secs(60))
        .build()
        .unwrap();
    proxy.wait_swallowed(1).await;
    for i in 10..15i64 {
        crashing
            .emit(SecurityEvent::sys_crash("oom").field("labels.step", i))
            .unwrap();
    }
    assert!(crashing.shutdown(Duration::from_millis(100)).await.is_err());
    drop(crashing);
    let replay = Client::builder(&format!("http://{http}"), &token)
        .spool_dir(&spool_dir)
        .batch_max_events(4)
        .build()
        .unwrap();
    replay.shutdown(Duration::from_secs(30)).await.unwrap();
    assert_eq!(replay.stats().delivered, 15, "{:?}", replay.stats());
    drop(replay);
    server.stop();

    let events = common::ledger_events(&data);
    let steps = |service: &str| -> Vec<i64> {
        events
            .iter()
            .filter(|e| e.get_str("service.name") == Some(service))
            .map(|e| e.get("labels.step").and_then(Value::as_i64).unwrap_or(-1))
            .collect()
    };
    assert_eq!(steps("trickle"), (0..300).collect::<Vec<_>>());
    assert_eq!(
        steps("replay"),
        (0..15).collect::<Vec<_>>(),
        "the batch stored before the crash is not stored again"
    );
}

/// Answers lost on the way back (Vigil stored the batch, the connection closed before the
/// client saw the 200): the client sends the same batch again under the same
/// `Idempotency-Key` and Vigil stores it once, with a spool and without one, while new events
/// keep arriving between the tries; also when the tries in between surely stored nothing
/// (connections refused), which must not make the client forget the batch that went out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_are_not_stored_twice() {
    use vigil_client::SecurityEvent;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = create_token(&data);
    let (server, http) = start_with(&data, &[]);
    let cases = [
        ("spooled", Some(dir.path().join("spool")), 3, Loss::Close),
        ("memory", None, 3, Loss::Close),
        (
            "refused",
            Some(dir.path().join("spool2")),
            1,
            Loss::CloseThenRefuse,
        ),
        ("refused-memory", None, 1, Loss::CloseThenRefuse),
    ];
    for (service, spool, swallow, loss) in cases {
        let proxy = LossyProxy::start(&http, swallow, loss).await;
        let mut builder = Client::builder(&format!("http://{}", proxy.addr), &token)
            .service(service)
            .batch_max_events(8)
            .linger(Duration::ZERO)
            .backoff(Duration::from_millis(20), Duration::from_millis(50));
        if let Some(spool) = &spool {
            builder = builder.spool_dir(spool);
        }
        let client = builder.build().unwrap();
        for i in 0..120i64 {
            client
                .emit(SecurityEvent::authz_fail("erin", "/admin").field("labels.step", i))
                .unwrap();
            if i % 4 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        client.flush_timeout(Duration::from_secs(60)).await.unwrap();
        assert_eq!(proxy.swallowed(), swallow, "{service}");
        let s = client.stats();
        assert_eq!(
            (s.delivered, s.dropped, s.rejected),
            (120, 0, 0),
            "{service}: {s:?}"
        );
        assert!(s.retries >= swallow as u64, "{service}: {s:?}");
        if loss == Loss::CloseThenRefuse {
            assert!(s.retries >= 2, "refused tries came in between: {s:?}");
        }
        client.shutdown(Duration::from_secs(5)).await.unwrap();
    }
    server.stop();
    let events = common::ledger_events(&data);
    for service in ["spooled", "memory", "refused", "refused-memory"] {
        let steps: Vec<i64> = events
            .iter()
            .filter(|e| e.get_str("service.name") == Some(service))
            .map(|e| e.get("labels.step").and_then(Value::as_i64).unwrap_or(-1))
            .collect();
        assert_eq!(steps, (0..120).collect::<Vec<_>>(), "{service}");
    }
}

/// What [`LossyProxy`] does with the answers it swallows.
#[derive(Clone, Copy, PartialEq)]
enum Loss {
    /// Close the connection instead of passing the answer on.
    Close,
    /// Keep the connection open and never answer.
    Hold,
    /// Close the connection, and refuse new connections for 300 ms (so the next try surely
    /// stores nothing).
    CloseThenRefuse,
}

/// A TCP proxy in front of Vigil that passes requests on but swallows the first `n` answers:
/// it waits for Vigil's first response bytes (Vigil answers an ingest only once the batch is
/// durable), then drops them.
struct LossyProxy {
    addr: std::net::SocketAddr,
    swallowed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl LossyProxy {
    async fn start(upstream: &str, n: usize, loss: Loss) -> LossyProxy {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let left = Arc::new(AtomicUsize::new(n));
        let swallowed = Arc::new(AtomicUsize::new(0));
        let upstream = upstream.to_owned();
        let counter = swallowed.clone();
        let (refuse, mut refusals) = tokio::sync::mpsc::unbounded_channel::<()>();
        tokio::spawn(async move {
            let mut listener = listener;
            loop {
                let accepted = tokio::select! {
                    r = listener.accept() => r.ok().map(|(c, _)| c),
                    _ = refusals.recv() => None,
                };
                let Some(client) = accepted else {
                    // Refuse connections for a while, then listen again on the same address.
                    drop(listener);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    listener = tokio::net::TcpListener::bind(addr).await.unwrap();
                    continue;
                };
                let (left, counter, upstream) = (left.clone(), counter.clone(), upstream.clone());
                let refuse = refuse.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let requests = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                    });
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match server_read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let swallow = left
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |k| k.checked_sub(1))
                            .is_ok();
                        if swallow {
                            counter.fetch_add(1, Ordering::SeqCst);
                            match loss {
                                Loss::Close => {}
                                // Keep every socket open; the client gives up on its own.
                                Loss::Hold => std::future::pending::<()>().await,
                                Loss::CloseThenRefuse => {
                                    let _ = refuse.send(());
                                    tokio::time::sleep(Duration::from_millis(50)).await;
                                }
                            }
                            break;
                        }
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    requests.abort();
                });
            }
        });
        LossyProxy { addr, swallowed }
    }

    fn swallowed(&self) -> usize {
        self.swallowed.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn wait_swallowed(&self, n: usize) {
        for _ in 0..600 {
            if self.swallowed() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the proxy saw {} answers, not {n}", self.swallowed());
    }
}
