//! Tests of the notifiers: drops counted by target kind, and delivery errors.

use super::*;
use vigil_detect::alert::{AlertBook, RuleInfo};

/// A pipeline over a fresh ledger in `dir`, as `serve` builds one.
fn test_door(dir: &std::path::Path) -> Arc<vigil_ingest::Ingest> {
    let (ledger, _) =
        vigil_ledger::Ledger::open(dir, vigil_ledger::LedgerConfig::default()).unwrap();
    Arc::new(vigil_ingest::Ingest::new(
        vigil_ingest::NodeLog::from(ledger),
        vigil_parse::redact::Redactor::disabled(),
        Arc::new(vigil_ingest::metrics::Metrics::default()),
    ))
}

fn note(level: Level) -> Notification {
    let mut book = AlertBook::new(0);
    let rule = RuleInfo {
        id: "r1".into(),
        title: "SSH brute force".into(),
        level,
        tags: Vec::new(),
    };
    let now = Timestamp::now();
    book.observe(&rule, Vec::new(), now, Some(1), now);
    Notification {
        reason: NotifyReason::New,
        alert: book.get(1).unwrap().clone(),
    }
}

fn notifier(name: &str, target: Target, min_level: Level) -> Notifier {
    Notifier {
        name: name.into(),
        target,
        min_level,
        rules: Vec::new(),
    }
}

/// A notification that does not fit in the queue is counted once per notifier that would
/// have sent it, by target kind; one that fits is not.
#[test]
fn a_full_queue_counts_the_drop_for_each_routed_target_kind() {
    let stats = Arc::new(NotifyStats::default());
    let (tx, _rx) = mpsc::channel(1);
    let hook = Target::Webhook {
        url: "http://127.0.0.1:9/".into(),
        slack: false,
    };
    let syslog = Target::Syslog {
        addr: "127.0.0.1:9".into(),
        tcp: false,
    };
    let queue = NotifyQueue::new(
        tx,
        vec![
            notifier("a", hook.clone(), Level::Low),
            notifier("b", hook, Level::Low),
            notifier("c", syslog, Level::Critical),
        ],
        Arc::clone(&stats),
    );
    queue.send(note(Level::High));
    let dropped = |k| stats.dropped(k, DropReason::QueueFull);
    assert_eq!(dropped(TargetKind::Webhook), 0, "the first one fits");
    queue.send(note(Level::High));
    assert_eq!(dropped(TargetKind::Webhook), 2);
    assert_eq!(
        dropped(TargetKind::Syslog),
        0,
        "not routed: below its level"
    );
    queue.send(note(Level::Critical));
    assert_eq!(dropped(TargetKind::Webhook), 4);
    assert_eq!(dropped(TargetKind::Syslog), 1);
    assert_eq!(
        stats.dropped(TargetKind::Webhook, DropReason::RetriesExhausted),
        0
    );
    let mut text = String::new();
    stats.write_dropped(&mut text);
    let line = "vigil_notifications_dropped_total{target=\"webhook\",reason=\"queue_full\"} 4";
    assert!(text.lines().any(|l| l == line), "{text}");
    assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 6);
}

/// A webhook that refuses every attempt: after the retries the notification is counted as
/// dropped (retries exhausted) for its target kind.
#[tokio::test]
async fn a_notification_given_up_is_counted_as_dropped_by_target_kind() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = test_door(dir.path());
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = Target::Webhook {
        url: format!("http://127.0.0.1:{port}/"),
        slack: false,
    };
    let stats = Arc::new(NotifyStats::default());
    let (tx, rx) = mpsc::channel(10);
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run(
        rx,
        vec![notifier("hook", hook, Level::Low)],
        Arc::clone(&stats),
        ledger,
        Duration::from_millis(1),
        stop_rx,
    ));
    tx.send(note(Level::High)).await.unwrap();
    let given_up = || stats.dropped(TargetKind::Webhook, DropReason::RetriesExhausted);
    for _ in 0..1000 {
        if given_up() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(given_up(), 1);
    assert_eq!(stats.failed.load(Ordering::Relaxed), 1);
    assert_eq!(stats.failed_attempts.load(Ordering::Relaxed), 4);
    assert_eq!(
        stats.dropped(TargetKind::Email, DropReason::RetriesExhausted),
        0
    );
    drop(tx);
    task.await.unwrap();
}

/// A web server on 127.0.0.1 that answers every request with `status`; counts requests.
async fn answering(status: u16) -> (String, Arc<AtomicU64>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/services/T000/B000/secret-token",
        listener.local_addr().unwrap()
    );
    let hits = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::Relaxed);
            let mut buf = vec![0; 64 * 1024];
            let _ = s.read(&mut buf).await;
            let answer =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = s.write_all(answer.as_bytes()).await;
        }
    });
    (url, hits)
}

/// A refusal for good (4xx) is not retried, a temporary one (5xx) is; an unreachable target
/// is retried; a bad address is not. No message shows the webhook's path (its secret).
#[tokio::test]
async fn delivery_errors_say_whether_a_retry_can_help() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let body = json!({"x": 1});
    let (bad_request, _) = answering(400).await;
    let e = post_webhook(&client, &bad_request, &body)
        .await
        .unwrap_err();
    assert!(!e.retryable(), "{e}");
    assert!(matches!(e, DeliveryError::Refused { retry: false, .. }));
    let (unavailable, _) = answering(503).await;
    let e = post_webhook(&client, &unavailable, &body)
        .await
        .unwrap_err();
    assert!(e.retryable(), "{e}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = post_webhook(
        &client,
        &format!("http://127.0.0.1:{port}/secret-token"),
        &body,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, DeliveryError::Unreachable { .. }), "{e}");
    let e = send_syslog("no port here", true, "x").await.unwrap_err();
    assert!(!e.retryable(), "{e}");
    for url in [&bad_request, &unavailable] {
        let e = post_webhook(&client, url, &body).await.unwrap_err();
        assert!(!e.to_string().contains("secret-token"), "{e}");
    }

    // The notifier gives up on the 4xx at once: one attempt, counted as dropped.
    let dir = tempfile::tempdir().unwrap();
    let ledger = test_door(dir.path());
    let (url, hits) = answering(400).await;
    let stats = Arc::new(NotifyStats::default());
    let (tx, rx) = mpsc::channel(10);
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run(
        rx,
        vec![notifier(
            "hook",
            Target::Webhook { url, slack: false },
            Level::Low,
        )],
        Arc::clone(&stats),
        ledger,
        Duration::from_millis(1),
        stop_rx,
    ));
    tx.send(note(Level::High)).await.unwrap();
    for _ in 0..1000 {
        if stats.failed.load(Ordering::Relaxed) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stats.failed.load(Ordering::Relaxed), 1);
    assert_eq!(stats.failed_attempts.load(Ordering::Relaxed), 1);
    assert_eq!(hits.load(Ordering::Relaxed), 1);
    drop(tx);
    task.await.unwrap();
}
