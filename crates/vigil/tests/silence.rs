//! The silence watch (issue 17): a source that sent steadily and stops raises one "Source went
//! silent" alert within its tolerance; a source that sends in bursts it has learned does not,
//! however long it is quiet between bursts. A real `vigil serve`, events over HTTP.

mod common;

use std::time::{Duration, Instant};

use common::{Server, create_token, curl, ingest_ndjson};

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
    assert_eq!(list[0]["group"]["source"], "steady", "{list:#?}");
    assert_eq!(list[0]["count"], 1, "one silence, one match: {list:#?}");
    server.stop();
}
