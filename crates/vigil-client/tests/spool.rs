//! The disk spool: order across segments, the cursor, recovery after a torn write, and the
//! client spilling to it when Vigil is unreachable.

use std::fs;
use std::time::Duration;

use vigil_client::spool::{self, HEADER, Spool};
use vigil_client::{Client, SecurityEvent};

fn lines(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!(r#"{{"n":{i}}}"#)).collect()
}

/// Segment and cursor files (the lock file stays).
fn data_files(dir: &std::path::Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != "lock")
        .count()
}

fn read_all(s: &Spool) -> Vec<String> {
    spool::read_batch(&s.plan(), usize::MAX, u64::MAX)
        .unwrap()
        .lines
}

#[test]
fn order_across_segments_commit_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 64, 1 << 20).unwrap();
    for chunk in lines(0..20).chunks(3) {
        s.append(chunk).unwrap();
    }
    assert_eq!(s.pending(), 20);
    let segments = data_files(dir.path());
    assert!(segments > 2, "small segments rotate: {segments}");
    assert_eq!(read_all(&s), lines(0..20));

    // Deliver 7, then reopen: the rest, in order.
    let b = spool::read_batch(&s.plan(), 7, u64::MAX).unwrap();
    assert_eq!(b.lines, lines(0..7));
    s.commit(b.end.unwrap(), 7).unwrap();
    drop(s);
    let mut s = Spool::open(dir.path(), 64, 1 << 20).unwrap();
    assert_eq!(s.pending(), 13);
    assert_eq!(read_all(&s), lines(7..20));

    // Deliver everything: the directory is emptied.
    let b = spool::read_batch(&s.plan(), usize::MAX, u64::MAX).unwrap();
    s.commit(b.end.unwrap(), 13).unwrap();
    assert_eq!(s.pending(), 0);
    assert_eq!(data_files(dir.path()), 0);
    // And starts again.
    s.append(&lines(100..102)).unwrap();
    drop(s);
    let s = Spool::open(dir.path(), 64, 1 << 20).unwrap();
    assert_eq!(read_all(&s), lines(100..102));
}

#[test]
fn torn_last_line_is_cut_and_bad_header_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 1 << 20, 1 << 20).unwrap();
    s.append(&lines(0..3)).unwrap();
    drop(s);
    let seg = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    assert_eq!(&bytes[..HEADER.len()], HEADER);
    bytes.extend_from_slice(br#"{"n":3"#); // a crash in the middle of a write
    fs::write(&seg, &bytes).unwrap();
    let mut s = Spool::open(dir.path(), 1 << 20, 1 << 20).unwrap();
    assert_eq!(s.pending(), 3);
    s.append(&lines(3..4)).unwrap();
    assert_eq!(read_all(&s), lines(0..4));
    drop(s);

    fs::write(&seg, b"VSPL\x02\n{}\n").unwrap();
    assert!(matches!(
        Spool::open(dir.path(), 1 << 20, 1 << 20),
        Err(spool::SpoolError::BadHeader(_))
    ));
}

#[test]
fn size_limit_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 1 << 20, 40).unwrap();
    s.append(&lines(0..2)).unwrap();
    assert!(matches!(
        s.append(&lines(2..10)),
        Err(spool::SpoolError::Full(40))
    ));
    assert_eq!(s.pending(), 2);
}

/// Vigil unreachable: the memory queue never exceeds its capacity, the spool holds the rest,
/// `send` never blocks, and a new client on the same spool finds every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_vigil_spills_to_the_spool() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::builder(&base, "t")
        .queue_capacity(20)
        .spool_dir(dir.path())
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    for i in 0..500 {
        client
            .emit(SecurityEvent::login_fail("alice").field("labels.step", i as i64))
            .unwrap();
        let s = client.stats();
        assert!(s.queued <= 20, "{s:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "send blocked");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = client.stats();
    assert!(s.queue_high_water <= 20, "{s:?}");
    assert_eq!(s.queued as u64 + s.spooled, 500, "{s:?}");
    assert!(s.spooled >= 480, "{s:?}");
    assert!(s.retries > 0 && s.delivered == 0 && s.dropped == 0, "{s:?}");
    assert!(
        client
            .flush_timeout(Duration::from_millis(100))
            .await
            .is_err()
    );
    assert!(client.shutdown(Duration::from_millis(100)).await.is_err());
    assert!(
        client.send(SecurityEvent::login_fail("x")).is_err(),
        "closed"
    );

    drop(client);
    let again = Client::builder(&base, "t")
        .spool_dir(dir.path())
        .build()
        .unwrap();
    assert_eq!(again.stats().spooled, 500);
    // One client per spool directory.
    assert!(matches!(
        Spool::open(dir.path(), 1 << 20, 1 << 30),
        Err(spool::SpoolError::Locked(_))
    ));
    assert!(again.shutdown(Duration::from_millis(100)).await.is_err());
    drop(again);
    let plan_lines = read_all(&Spool::open(dir.path(), 1 << 20, 1 << 30).unwrap());
    let steps: Vec<i64> = plan_lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["labels.step"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(steps, (0..500).collect::<Vec<_>>(), "in send order");
}

#[tokio::test]
async fn without_a_spool_overflow_is_dropped_and_counted() {
    let client = Client::builder("http://127.0.0.1:9", "t")
        .queue_capacity(5)
        .backoff(Duration::from_secs(5), Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..12 {
        client.emit(SecurityEvent::login_fail("a")).unwrap();
    }
    let s = client.stats();
    assert!(s.queued <= 5 && s.dropped >= 7, "{s:?}");
    assert_eq!(s.accepted, 12);
}

/// The batch in flight survives a reopen (a crash) and applies only where it was taken: once
/// the cursor moves past it, or Vigil refuses it, it is gone.
#[test]
fn the_batch_in_flight_is_pinned_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), 64, 1 << 20).unwrap();
    s.append(&lines(0..10)).unwrap();
    assert_eq!(s.pinned(), None);
    s.pin(4).unwrap();
    drop(s);

    let mut s = Spool::open(dir.path(), 64, 1 << 20).unwrap();
    assert_eq!(s.pinned(), Some(4), "a crash keeps the batch in flight");
    let b = spool::read_batch(&s.plan(), 4, u64::MAX).unwrap();
    s.commit(b.end.unwrap(), 4).unwrap();
    assert_eq!(s.pinned(), None, "delivered: no longer pinned");
    s.pin(3).unwrap();
    s.unpin();
    drop(s);
    let mut s = Spool::open(dir.path(), 64, 1 << 20).unwrap();
    assert_eq!(s.pinned(), None, "unpinned on disk too");

    // A pin left behind by a crash between the cursor's rename and the pin's removal names a
    // position the cursor has left: stale, ignored.
    s.pin(2).unwrap();
    let pin_file = fs::read(dir.path().join("inflight")).unwrap();
    let b = spool::read_batch(&s.plan(), 2, u64::MAX).unwrap();
    s.commit(b.end.unwrap(), 2).unwrap();
    drop(s);
    fs::write(dir.path().join("inflight"), pin_file).unwrap();
    let s = Spool::open(dir.path(), 64, 1 << 20).unwrap();
    assert_eq!(s.pending(), 4);
    assert_eq!(s.pinned(), None);
    assert_eq!(read_all(&s), lines(6..10));
}
