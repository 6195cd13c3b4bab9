//! The silence watch (issue 17): a source that sent steadily and stops raises one "Source went
//! silent" alert within its tolerance; a source that sends in bursts it has learned does not,
//! however long it is quiet between bursts. A real `vigil serve`, events over HTTP.

mod common;

use std::time::{Duration, Instant};

use common::{Server, create_token, curl, ingest_ndjson, wait_until};

fn event(host: &str, i: u32) -> String {
    format!(
        "{{\"host.name\":\"{host}\",\"event.category\":[\"network\"],\"message\":\"tick {i}\"}}\n"
    )
}

#[test]
fn a_steady_source_that_stops_alerts_once_and_a_bursty_one_never() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ingest = create_token(&data, "ingest", "feeder");
    let viewer = create_token(&data, "viewer", "reader");
    // Tolerance: 4 × the usual longest gap, at least 2 s.
    let server = Server::start(&data, &["--silence-min", "2s"]);
    let url = server.url.clone();
    let auth = [format!("Authorization: Bearer {viewer}")];
    let alerts = || {
        curl("GET", &format!("{url}/api/v1/alerts"), &auth, None).json()["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["rule"]["title"] == "Source went silent")
            .collect::<Vec<_>>()
    };

    // `steady` sends every 300 ms (its gaps are under a second: tolerance max(4 × 1 s, 2 s) =
    // 4 s); `bursty` sends 3 events every 3 s (its longest gaps 2–4 s: tolerance 16 s).
    let start = Instant::now();
    let mut stopped_at = None;
    let mut alert_seen_at = None;
    let mut n = 0;
    let mut next_burst = Instant::now();
    while start.elapsed() < Duration::from_secs(40) {
        if start.elapsed() < Duration::from_secs(4) {
            let a = ingest_ndjson(&url, &ingest, &event("steady", n));
            assert_eq!(a.status, 200, "{}", a.body);
            n += 1;
        } else if stopped_at.is_none() {
            stopped_at = Some(Instant::now());
        }
        if Instant::now() >= next_burst {
            let burst: String = (0..3).map(|k| event("bursty", n * 10 + k)).collect();
            let a = ingest_ndjson(&url, &ingest, &burst);
            assert_eq!(a.status, 200, "{}", a.body);
            next_burst = Instant::now() + Duration::from_secs(3);
        }
        if alert_seen_at.is_none() && stopped_at.is_some() && !alerts().is_empty() {
            alert_seen_at = Some(Instant::now());
        }
        // Once steady's alert is in, keep bursting for longer than bursty's own gaps.
        if alert_seen_at.is_some_and(|t| t.elapsed() > Duration::from_secs(8)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let stopped_at = stopped_at.expect("steady stopped");
    let seen = alert_seen_at.unwrap_or_else(|| {
        panic!(
            "no silence alert in {:?} after steady stopped\n{}",
            stopped_at.elapsed(),
            server.log()
        )
    });
    let after = seen.duration_since(stopped_at);
    // Tolerance 4 s, then the watch's one-second tick and the alert's write; never before.
    assert!(
        after >= Duration::from_secs(3) && after <= Duration::from_secs(12),
        "raised {after:?} after the source stopped"
    );
    let list = alerts();
    assert_eq!(list.len(), 1, "one alert, for steady only: {list:#?}");
    // Sources are keyed by host name and authenticated sender.
    let group = list[0]["group"]["source"].as_str().unwrap_or_default();
    assert!(group.starts_with("steady@api:feeder/"), "{list:#?}");
    assert_eq!(list[0]["count"], 1, "one silence, one match: {list:#?}");
    server.stop();
}

/// An authenticated sender cannot keep another sender's host alive: `a` sends as host `web1`
/// and stops; `b` keeps sending as host `web1` too. `a`'s source still goes silent (sources are
/// keyed by the authenticated sender and the host name), and `b`'s does not.
#[test]
fn another_sender_naming_the_same_host_does_not_hide_its_silence() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let a = create_token(&data, "ingest", "sender-a");
    let b = create_token(&data, "ingest", "sender-b");
    let viewer = create_token(&data, "viewer", "reader");
    let server = Server::start(&data, &["--silence-min", "2s"]);
    let url = server.url.clone();
    let auth = [format!("Authorization: Bearer {viewer}")];
    let silent = || {
        curl("GET", &format!("{url}/api/v1/alerts"), &auth, None).json()["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["rule"]["title"] == "Source went silent")
            .map(|a| a["group"]["source"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    for i in 0..14 {
        let x = ingest_ndjson(&url, &a, &event("web1", i));
        assert_eq!(x.status, 200, "{}", x.body);
        let x = ingest_ndjson(&url, &b, &event("web1", i));
        assert_eq!(x.status, 200, "{}", x.body);
        std::thread::sleep(Duration::from_millis(300));
    }
    // `a` stops; `b` goes on naming web1 every 300 ms.
    let mut i = 100;
    let raised = wait_until(20, || {
        let x = ingest_ndjson(&url, &b, &event("web1", i));
        assert_eq!(x.status, 200, "{}", x.body);
        i += 1;
        std::thread::sleep(Duration::from_millis(200));
        silent().iter().any(|s| s.starts_with("web1@api:sender-a/"))
    });
    assert!(
        raised,
        "no alert for a's web1: {:?}\n{}",
        silent(),
        server.log()
    );
    assert!(
        !silent().iter().any(|s| s.contains("sender-b")),
        "{:?}",
        silent()
    );
    server.stop();
}

/// A sender's own `@timestamp` does not place its events in a report's period: events sent
/// now, claiming 2020, count in the last hour's report (by the time Vigil received them) and
/// not in a report of 2020.
#[test]
fn a_backdated_timestamp_does_not_move_events_into_another_period() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ingest = create_token(&data, "ingest", "feeder");
    let viewer = create_token(&data, "viewer", "reader");
    let server = Server::start(&data, &[]);
    let url = server.url.clone();
    let body: String = (0..6)
        .map(|i| {
            format!(
                "{{\"@timestamp\":\"2020-01-01T00:0{i}:00Z\",\"host.name\":\"pay1\",\"event.category\":[\"authentication\"],\"event.outcome\":\"failure\",\"user.name\":\"root\",\"message\":\"failed\"}}\n"
            )
        })
        .collect();
    let x = ingest_ndjson(&url, &ingest, &body);
    assert_eq!(x.status, 200, "{}", x.body);
    let auth = [format!("Authorization: Bearer {viewer}")];
    let invalid = |query: &str| {
        let r = curl(
            "GET",
            &format!("{url}/api/v1/report/pci-dss?{query}"),
            &auth,
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let r = r.json();
        r["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "10.2.1.4")
            .cloned()
            .unwrap()
    };
    let now = invalid("from=-1h");
    assert_eq!(now["events"], 6, "{now:#}");
    let covered = now["sources"]["covered"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(covered.starts_with("pay1@api:feeder/"), "{now:#}");
    let then = invalid("from=2019-12-31T00:00:00Z&to=2020-01-02T00:00:00Z");
    assert_eq!(then["events"], 0, "{then:#}");
    server.stop();
}
