//! Behaviour rules survive a detector takeover (issue 15: "their state is checkpointed so a
//! moved consumer resumes"), with the real binary: three `vigil serve --cluster` nodes on a
//! real 3-server NATS cluster, one detector (`K` = 1), a first-seen rule (`new_terms`: a
//! user's login from a source address that user never used).
//!
//! - The detector's holder learns alice's usual address (and raises one alert for a new one,
//!   so the rule is past its learning period), checkpoints its behaviour state into the
//!   cluster's object store, and is killed with SIGKILL.
//! - After the takeover by another node: alice's usual address and the address already
//!   alerted on raise nothing; a new address raises exactly one alert. (Before behaviour
//!   state was checkpointed, the new holder started blind, back in the rule's learning
//!   period, and the new address raised nothing.)
//! - Hostile checkpoints (a valid header around a state that does not decode, and one under an
//!   epoch no holder reached) are refused by the next holder — logged, the forged one deleted
//!   — and that node keeps running and detecting, blind.

mod common;

use std::time::Duration;

use common::cluster::{CLUSTER, ClusterFixture};
use common::{Server, curl, ingest_ndjson, wait_until};
use serde_json::Value;
use vigil_cluster::Cluster;
use vigil_cluster::behaviour::{self, Checkpoint, Loaded};
use vigil_cluster::follow::position;
use vigil_event::Timestamp;

const TITLE: &str = "Login from a source new for the user";

const RULE: &str = r#"title: Login from a source new for the user
id: 6b1f3c52-18a0-4a55-9a0e-00000000c015
kind: new_terms
level: high
detection:
    login:
        event.category: authentication
        event.outcome: success
    condition: login
new_terms:
    fields: [source.ip]
    per: [user.name]
    history: 30d
    learning: 1h
"#;

const HOUR: i64 = 3_600_000_000_000;

fn login(user: &str, ip: &str, ago_hours: i64) -> String {
    let at = Timestamp::from_nanos(Timestamp::now().as_nanos() - ago_hours * HOUR);
    serde_json::json!({
        "@timestamp": at.to_rfc3339(),
        "event.category": "authentication",
        "event.outcome": "success",
        "user.name": user,
        "source.ip": ip,
        "message": format!("login ok for {user} from {ip}"),
    })
    .to_string()
}

fn get(url: &str, path: &str, token: &str) -> Value {
    let r = curl(
        "GET",
        &format!("{url}{path}"),
        &[format!("Authorization: Bearer {token}")],
        None,
    );
    serde_json::from_str(&r.body).unwrap_or(Value::Null)
}

/// The first-seen rule's alerts a node lists: (source address, count), sorted.
fn alerts(url: &str, token: &str) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = get(url, "/api/v1/alerts?limit=1000", token)["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|a| a["rule"]["title"] == TITLE)
        .map(|a| {
            (
                a["group"]["source.ip"].as_str().unwrap_or("?").to_string(),
                a["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    out.sort();
    out
}

/// The node holding the detector lease, from `GET /api/v1/cluster`.
fn holder(url: &str, token: &str) -> Option<String> {
    get(url, "/api/v1/cluster", token)["detector"]["owner"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn a_first_seen_rule_keeps_its_memory_when_the_detector_moves() {
    let Some(mut fx) = ClusterFixture::new(3, 2) else {
        return;
    };
    fx.write_rules(&[("first_seen.yml", RULE)]);
    let nats = &fx.nats;
    let names = ["n0", "n1", "n2"];
    let mut nodes: Vec<Option<Server>> = fx.spawn_all().into_iter().map(Some).collect();
    let url = |nodes: &[Option<Server>], i: usize| nodes[i].as_ref().unwrap().url.clone();
    let logs = |nodes: &[Option<Server>]| common::cluster::logs(nodes.iter().flatten());
    let analyst = fx.token("analyst", "analyst");
    let ingest = fx.token("ingest", "in");
    assert!(
        wait_until(90, || holder(&url(&nodes, 0), &analyst).is_some()),
        "no detector\n{}",
        logs(&nodes)
    );
    let first = holder(&url(&nodes, 0), &analyst).unwrap();
    let victim = names.iter().position(|n| *n == first).unwrap();
    let other = (0..3).find(|i| *i != victim).unwrap();
    common::say(&format!("the detector is on {first}"));

    // History through a node that does not detect: alice logs in from her usual address over
    // three hours (the rule's one-hour learning period passes), bob from his; then alice from
    // a new address: the one alert before the move.
    let history = [
        login("alice", "10.0.0.1", 3),
        login("bob", "10.0.0.2", 3),
        login("alice", "10.0.0.1", 2),
        login("alice", "10.0.0.1", 0),
        login("bob", "10.0.0.2", 0),
    ]
    .join("\n");
    let a = ingest_ndjson(&url(&nodes, other), &ingest, &history);
    assert_eq!(a.status, 200, "{}", a.body);
    let a = ingest_ndjson(&url(&nodes, other), &ingest, &login("alice", "10.0.0.9", 0));
    assert_eq!(a.status, 200, "{}", a.body);
    let before = vec![("10.0.0.9".to_string(), 1)];
    assert!(
        wait_until(60, || alerts(&url(&nodes, other), &analyst) == before),
        "before the move: {:?}\n{}",
        alerts(&url(&nodes, other), &analyst),
        logs(&nodes)
    );

    // The holder checkpoints its behaviour state past everything stored so far (after its
    // cursor). Waited for, not asserted here: the behaviour after the move is the claim.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let probe = runtime.block_on(async {
        Cluster::connect(nats.settings(CLUSTER, "probe", 2, Duration::from_secs(6)))
            .await
            .unwrap()
    });
    let stored = runtime.block_on(async { probe.stream().get_info().await.unwrap() });
    let past = position(stored.state.last_sequence + 1, 0);
    let newest = || {
        runtime.block_on(async {
            let store = behaviour::open(&probe).await.ok()?;
            // As a holder of an epoch above every other would (it deletes nothing).
            match behaviour::load(&store, "detector", 0, 1, u64::MAX).await {
                Ok((Loaded::Found(c), _)) => Some(c),
                _ => None,
            }
        })
    };
    let checkpointed = wait_until(40, || newest().is_some_and(|c| c.position >= past));
    common::say(&format!(
        "behaviour checkpoint past stream sequence {}: {checkpointed}",
        stored.state.last_sequence
    ));

    // SIGKILL of the detector's node; another takes over.
    drop(nodes[victim].take());
    let killed = std::time::Instant::now();
    assert!(
        wait_until(90, || holder(&url(&nodes, other), &analyst)
            .is_some_and(|h| h != first)),
        "the detector did not move from {first}\n{}",
        logs(&nodes)
    );
    let second = holder(&url(&nodes, other), &analyst).unwrap();
    common::say(&format!(
        "{:.1} s after SIGKILL of {first}: the detector is on {second}",
        killed.elapsed().as_secs_f64()
    ));

    // The usual address and the one already alerted on: nothing new. A new address: one
    // alert. (All dated now: a holder that started blind is back in its learning period.)
    let after = [
        login("alice", "10.0.0.1", 0),
        login("alice", "10.0.0.9", 0),
        login("bob", "10.0.0.2", 0),
    ]
    .join("\n");
    let a = ingest_ndjson(&url(&nodes, other), &ingest, &after);
    assert_eq!(a.status, 200, "{}", a.body);
    let a = ingest_ndjson(
        &url(&nodes, other),
        &ingest,
        &login("alice", "10.0.0.77", 0),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let want = vec![("10.0.0.77".to_string(), 1), ("10.0.0.9".to_string(), 1)];
    let live: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
    assert!(
        wait_until(60, || live
            .iter()
            .all(|&i| alerts(&url(&nodes, i), &analyst) == want)),
        "after the move: {:?} (want {want:?}; checkpoint written before the kill: \
         {checkpointed})\n{}",
        alerts(&url(&nodes, other), &analyst),
        logs(&nodes)
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        alerts(&url(&nodes, other), &analyst),
        want,
        "still exactly these, later"
    );
    assert!(checkpointed, "a checkpoint was written before the kill");
    let taker = names.iter().position(|n| *n == second).unwrap();
    assert!(
        nodes[taker]
            .as_ref()
            .unwrap()
            .log()
            .contains("resumes its behaviour rules from the checkpoint"),
        "{}",
        logs(&nodes)
    );

    // Hostile checkpoints, written once the second holder is dead (so it cannot replace
    // them): one under its own epoch — a valid header around a state that does not decode —
    // and one under an epoch no holder reached yet. The next holder deletes the second
    // (forged: not below its own epoch), refuses the first, starts blind and keeps running.
    let epoch_of_second = runtime.block_on(async {
        let v = probe.leases().get("detector").await.unwrap().unwrap();
        serde_json::from_slice::<Value>(&v).unwrap()["epoch"]
            .as_u64()
            .unwrap()
    });
    drop(nodes[taker].take());
    runtime.block_on(async {
        let store = behaviour::open(&probe).await.unwrap();
        for epoch in [1_000_000, epoch_of_second] {
            let hostile = Checkpoint {
                partition: 0,
                count: 1,
                epoch,
                position: 1,
                state: b"VGBH\x01not a behaviour state".to_vec(),
            };
            behaviour::save(&store, "detector", &hostile).await.unwrap();
        }
    });
    let last = (0..3).find(|i| nodes[*i].is_some()).unwrap();
    assert!(
        wait_until(90, || holder(&url(&nodes, last), &analyst)
            .is_some_and(|h| h == names[last])),
        "the detector did not move to {}\n{}",
        names[last],
        logs(&nodes)
    );
    assert!(
        wait_until(30, || nodes[last]
            .as_ref()
            .unwrap()
            .log()
            .contains("behaviour checkpoint of detector partition 0 refused")),
        "{}",
        logs(&nodes)
    );
    let log = nodes[last].as_ref().unwrap().log();
    assert!(log.contains("not written by an earlier holder"), "{log}");
    assert!(log.contains("start blind"), "{log}");
    assert!(
        nodes[last].as_mut().unwrap().exited().is_none(),
        "the node survives a hostile checkpoint"
    );
    // It detects (blind, in its learning period): the cursor moves on over new events.
    let a = ingest_ndjson(&url(&nodes, last), &ingest, &login("carol", "10.0.0.3", 0));
    assert_eq!(a.status, 200, "{}", a.body);
    let stored = runtime.block_on(async { probe.stream().get_info().await.unwrap() });
    let cursor = || {
        runtime.block_on(async {
            probe
                .state()
                .get("detector.cursor")
                .await
                .ok()
                .flatten()
                .map_or(0, |v| {
                    serde_json::from_slice::<vigil_cluster::detector::Cursor>(&v)
                        .map_or(0, |c| c.seq)
                })
        })
    };
    assert!(
        wait_until(60, || cursor() >= stored.state.last_sequence),
        "the last node's detector does not move on: cursor {}\n{}",
        cursor(),
        logs(&nodes)
    );
}
