//! Bans by hand on a cluster, with the real binary: two `vigil serve --cluster` nodes on a real
//! 3-server NATS cluster. Analysts banning on both nodes at the same instant get one id per
//! ban, cluster-wide (a counter in the cluster's state bucket), and every node lists every ban
//! under the same id; lifting one by its id on the other node lifts it everywhere.

mod common;

use std::collections::BTreeMap;

use common::cluster::ClusterFixture;
use common::{curl, wait_until};
use serde_json::{Value, json};

/// `(status, body)` of a JSON request with a bearer token.
fn call(method: &str, url: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let mut headers = vec![format!("Authorization: Bearer {token}")];
    if body.is_some() {
        headers.push("Content-Type: application/json".into());
    }
    let answer = curl(method, url, &headers, body.as_deref());
    let json = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    (answer.status, json)
}

/// id → banned value of every active decision a node lists.
fn listed(url: &str, token: &str) -> BTreeMap<u64, String> {
    let (status, body) = call("GET", &format!("{url}/api/v1/decisions"), token, None);
    assert_eq!(status, 200, "{body}");
    body["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| {
            (
                d["id"].as_u64().expect("id"),
                d["value"].as_str().expect("value").to_string(),
            )
        })
        .collect()
}

#[test]
fn bans_by_hand_on_two_nodes_at_once_get_cluster_unique_ids() {
    let Some(mut fx) = ClusterFixture::new(2, 2) else {
        return;
    };
    fx.start_all();
    let analyst = fx.token("analyst", "a1");
    let urls: Vec<String> = fx.nodes.iter().map(|n| n.url()).collect();

    // Eight bans on each node, the two nodes at once.
    const PER_NODE: usize = 8;
    let made: Vec<Vec<(u64, String)>> = std::thread::scope(|s| {
        let handles: Vec<_> = urls
            .iter()
            .enumerate()
            .map(|(n, url)| {
                let analyst = &analyst;
                s.spawn(move || {
                    (0..PER_NODE)
                        .map(|i| {
                            let value = format!("198.51.{}.{}", 100 + n, i + 1);
                            let (status, body) = call(
                                "POST",
                                &format!("{url}/api/v1/decisions"),
                                analyst,
                                Some(
                                    json!({"value": value, "duration": "1h", "reason": "by hand"}),
                                ),
                            );
                            assert_eq!(status, 201, "ban {value} on node {n}: {body}");
                            assert_eq!(body["value"], value.as_str());
                            (body["id"].as_u64().expect("id"), value)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let expected: BTreeMap<u64, String> = made.into_iter().flatten().collect();
    assert_eq!(
        expected.len(),
        2 * PER_NODE,
        "every ban has its own id: {expected:?}"
    );

    // Every node lists every ban under the id it was given.
    for url in &urls {
        assert!(
            wait_until(30, || listed(url, &analyst) == expected),
            "{url} lists {:?}, want {expected:?}",
            listed(url, &analyst)
        );
    }

    // A ban made on node 0, lifted on node 1 by its id, is lifted on both.
    let (&id, value) = expected.iter().next().unwrap();
    let (status, body) = call(
        "DELETE",
        &format!("{}/api/v1/decisions/{id}", urls[1]),
        &analyst,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let mut rest = expected.clone();
    rest.remove(&id);
    for url in &urls {
        assert!(
            wait_until(30, || listed(url, &analyst) == rest),
            "{url} still lists {value} (decision {id}): {:?}",
            listed(url, &analyst)
        );
    }

    // A second ban of a banned network is refused on the other node too, naming the ban.
    let (other_id, other_value) = expected.iter().nth(1).unwrap();
    let (status, body) = call(
        "POST",
        &format!("{}/api/v1/decisions", urls[0]),
        &analyst,
        Some(json!({"value": other_value, "duration": "1h"})),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body.to_string().contains(&other_id.to_string()),
        "names decision {other_id}: {body}"
    );
    assert_eq!(listed(&urls[0], &analyst), rest, "nothing new was banned");
}
