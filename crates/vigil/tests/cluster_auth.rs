//! Cluster mode's shared accounts, tokens and sessions, and its health page, end to end: a real
//! 3-node NATS cluster and three real `vigil serve --cluster` nodes started together, driven
//! with curl and the real CLI.
//!
//! - the first admin is created once for the three nodes (one password file, one message);
//! - a token created through node 1's API works on node 2's next request, and once revoked
//!   on node 3 is refused on node 1's next request (node 1 had verified and cached it);
//! - a login on node 1 holds on node 2, and a logout on node 2 ends it on node 1;
//! - `vigil token create --cluster` makes a token every node accepts;
//! - `/api/v1/cluster` lists the live nodes and every shard's owner as the buckets hold them.

mod common;

use std::path::Path;

use common::cluster::cluster_flags;
use common::*;
use vigil_cluster::testing::NatsCluster;
use vigil_cluster::{Cluster, ClusterSettings, Names, NodeInfo};

const CLUSTER: &str = "ca";

fn nats_available() -> bool {
    !vigil_cluster::testing::skip_without_nats()
}

fn start_node(data: &Path, node: &str, nats: &NatsCluster) -> Server {
    let mut flags = cluster_flags(nats, CLUSTER, true);
    flags.extend(["--node".to_string(), node.to_string()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start(data, &flags)
}

fn bearer(token: &str) -> Vec<String> {
    vec![format!("Authorization: Bearer {token}")]
}

#[test]
fn accounts_tokens_and_sessions_hold_on_every_node() {
    if !nats_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let datas: Vec<_> = (1..=3).map(|i| dir.path().join(format!("n{i}"))).collect();
    // Three nodes started together.
    let nodes: Vec<Server> = std::thread::scope(|s| {
        let handles: Vec<_> = datas
            .iter()
            .enumerate()
            .map(|(i, data)| {
                let nats = &nats;
                s.spawn(move || start_node(data, &format!("n{}", i + 1), nats))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    // The first admin exists once: one node wrote its password and said so.
    let with_password: Vec<usize> = (0..3)
        .filter(|&i| vigil_auth::users::initial_password_path(&datas[i]).exists())
        .collect();
    assert_eq!(with_password.len(), 1, "one initial admin password");
    let announced = nodes
        .iter()
        .filter(|n| n.log().contains("created the first account"))
        .count();
    assert_eq!(announced, 1, "one node announces the first account");
    let first = std::fs::read_to_string(vigil_auth::users::initial_password_path(
        &datas[with_password[0]],
    ))
    .unwrap();
    // Log in on another node than the one that created it, and change the password there.
    let other = (with_password[0] + 1) % 3;
    let s = login(&nodes[other].url, "admin", first.trim()).expect("the admin logs in anywhere");
    let changed = curl(
        "POST",
        &format!("{}/api/v1/password", nodes[other].url),
        &[s.headers(), vec!["Content-Type: application/json".into()]].concat(),
        Some(
            &serde_json::json!({"current": first.trim(), "new": "a cluster admin password"})
                .to_string(),
        ),
    );
    assert_eq!(changed.status, 200, "{}", changed.body);
    let password = "a cluster admin password";

    // A token created through node 1's API works on node 2's next request.
    let s1 = login(&nodes[0].url, "admin", password).expect("the new password holds on node 1");
    let created = curl(
        "POST",
        &format!("{}/api/v1/tokens", nodes[0].url),
        &[s1.headers(), vec!["Content-Type: application/json".into()]].concat(),
        Some(r#"{"name": "dashboards", "role": "viewer"}"#),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let token = created.json()["token"].as_str().unwrap().to_owned();
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let rules = |node: &Server| {
        curl(
            "GET",
            &format!("{}/api/v1/rules", node.url),
            &bearer(&token),
            None,
        )
        .status
    };
    assert_eq!(
        rules(&nodes[1]),
        200,
        "node 2 accepts node 1's token at once"
    );
    assert_eq!(rules(&nodes[0]), 200, "node 1 verified it (and caches it)");
    // Revoked on node 3: refused on node 1 at once.
    let s3 = login(&nodes[2].url, "admin", password).unwrap();
    let revoked = curl(
        "DELETE",
        &format!("{}/api/v1/tokens/{id}", nodes[2].url),
        &s3.headers(),
        None,
    );
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    assert_eq!(
        rules(&nodes[0]),
        401,
        "node 1 refuses the revoked token at once"
    );
    assert_eq!(rules(&nodes[1]), 401);

    // A login on node 1 holds on node 2; a logout on node 2 ends it on node 1.
    let session = |node: &Server, s: &Session| {
        curl(
            "GET",
            &format!("{}/api/v1/session", node.url),
            &s.headers(),
            None,
        )
    };
    let on2 = session(&nodes[1], &s1);
    assert_eq!(on2.status, 200, "{}", on2.body);
    assert_eq!(on2.json()["user"], "admin");
    let out = curl(
        "POST",
        &format!("{}/api/v1/logout", nodes[1].url),
        &s1.headers(),
        None,
    );
    assert!(
        out.status < 300,
        "logout on node 2: {} {}",
        out.status,
        out.body
    );
    assert_eq!(
        session(&nodes[0], &s1).status,
        401,
        "logged out on node 1 too"
    );
    assert_eq!(
        session(&nodes[2], &s3).status,
        200,
        "other sessions live on"
    );

    // The CLI acts on the cluster's accounts.
    let mut cli = vigil();
    cli.args(["token", "create", "--role", "viewer", "--name", "cli-made"]);
    cli.args(["--data-dir", &dir.path().join("cli").display().to_string()]);
    let mut args = vec!["--cluster-name".to_string(), CLUSTER.to_string()];
    for url in nats.urls() {
        args.extend(["--cluster".to_string(), url]);
    }
    cli.args(&args);
    let cli_token = run_ok(&mut cli).trim().to_owned();
    assert_eq!(
        curl(
            "GET",
            &format!("{}/api/v1/rules", nodes[2].url),
            &bearer(&cli_token),
            None
        )
        .status,
        200,
        "a token made by `vigil token create --cluster` works on every node"
    );
    let mut list = vigil();
    list.args([
        "user",
        "list",
        "--data-dir",
        &dir.path().join("cli").display().to_string(),
    ]);
    list.args(&args);
    let listed = run_ok(&mut list);
    assert!(listed.lines().any(|l| l.starts_with("admin ")), "{listed}");

    for node in nodes {
        node.stop();
    }
}

fn settings(nats: &NatsCluster) -> ClusterSettings {
    ClusterSettings {
        urls: nats.urls(),
        creds: None,
        node: "test".into(),
        names: Names::new(CLUSTER),
        partitions: 8,
        replicas: 3,
        monitor: Vec::new(),
        lease_ttl: vigil_cluster::DEFAULT_LEASE_TTL,
    }
}

#[test]
fn the_health_page_shows_the_nodes_and_every_shards_owner_from_the_buckets() {
    if !nats_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let standalone = Server::start(&dir.path().join("alone"), &[]);
    let token = create_token(&standalone.data, "viewer", "v");
    let a = curl(
        "GET",
        &format!("{}/api/v1/cluster", standalone.url),
        &bearer(&token),
        None,
    );
    assert_eq!(a.status, 200);
    assert_eq!(a.json(), serde_json::json!({"mode": "standalone"}));
    standalone.stop();

    let nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let node = start_node(&dir.path().join("n1"), "n1", &nats);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cluster = runtime.block_on(Cluster::connect(settings(&nats))).unwrap();
    // Nodes register and shards are leased by the other parts of cluster mode; where they
    // have not (yet), this test puts entries of the agreed shapes in the buckets. Either way the
    // page must show what the buckets hold.
    let shards: Vec<String> = cluster
        .settings()
        .shards()
        .iter()
        .map(|s| s.to_string())
        .collect();
    runtime.block_on(async {
        for name in ["n1", "n2", "n3"] {
            let info = NodeInfo {
                node: name.into(),
                http: None,
                started: "2026-12-07T00:00:00Z".into(),
                version: "test".into(),
            };
            let _ = cluster
                .nodes()
                .create(name, serde_json::to_vec(&info).unwrap().into())
                .await;
        }
        for (i, shard) in shards.iter().enumerate() {
            let lease = serde_json::json!({"node": format!("n{}", i % 3 + 1), "epoch": 1, "applied": 0, "events": 0});
            let _ = cluster
                .leases()
                .create(shard.as_str(), serde_json::to_vec(&lease).unwrap().into())
                .await;
        }
        cluster
            .publish(vigil_cluster::Shard::Data(0), encoded("x").into(), "health-test/1")
            .await
            .unwrap();
    });
    let owners: Vec<Option<String>> = runtime.block_on(async {
        let mut out = Vec::new();
        for shard in &shards {
            let v = cluster.leases().get(shard.as_str()).await.unwrap();
            out.push(v.map(|v| {
                serde_json::from_slice::<serde_json::Value>(&v).unwrap()["node"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }));
        }
        out
    });
    let user_token = {
        let mut cli = vigil();
        cli.args(["token", "create", "--role", "viewer", "--name", "health"]);
        cli.args(["--data-dir", &dir.path().join("cli").display().to_string()]);
        cli.args(["--cluster-name", CLUSTER]);
        for url in nats.urls() {
            cli.args(["--cluster", &url]);
        }
        run_ok(&mut cli).trim().to_owned()
    };
    let mut report = serde_json::Value::Null;
    let seen = wait_until(10, || {
        report = curl(
            "GET",
            &format!("{}/api/v1/cluster", node.url),
            &bearer(&user_token),
            None,
        )
        .json();
        let names: Vec<&str> = report["nodes"]
            .as_array()
            .map(|n| {
                n.iter()
                    .filter(|n| n["alive"] == true)
                    .filter_map(|n| n["node"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        ["n1", "n2", "n3"].iter().all(|n| names.contains(n))
    });
    assert!(seen, "three live nodes: {report:#}");
    assert_eq!(report["mode"], "cluster");
    assert_eq!(report["node"], "n1");
    assert_eq!(report["cluster"], CLUSTER);
    assert_eq!(report["connected"], true);
    assert_eq!(report["sync_check"]["verified"]["servers"], 3, "{report:#}");
    let listed = report["shards"].as_array().unwrap();
    assert_eq!(listed.len(), shards.len(), "every shard: {report:#}");
    for ((line, shard), owner) in listed.iter().zip(&shards).zip(&owners) {
        assert_eq!(line["shard"], shard.as_str());
        assert!(owner.is_some(), "shard {shard} has an owner");
        assert_eq!(line["owner"].as_str(), owner.as_deref(), "{line}");
    }
    let p0 = &listed[0];
    assert!(p0["stream_last_seq"].as_u64().unwrap() >= 1, "{p0}");
    assert_eq!(
        p0["lag"].as_u64().unwrap(),
        p0["stream_last_seq"].as_u64().unwrap() - p0["applied"].as_u64().unwrap()
    );
    // The gauges of this node.
    let metrics = curl(
        "GET",
        &format!("{}/metrics", node.url),
        &bearer(&user_token),
        None,
    )
    .body;
    assert!(metrics.contains("vigil_cluster_connected 1"), "{metrics}");
    let owned = owners.iter().filter(|o| o.as_deref() == Some("n1")).count();
    assert!(
        metrics.contains(&format!("vigil_cluster_shards_owned {owned}")),
        "{metrics}"
    );
    if owners[0].as_deref() == Some("n1") {
        assert!(
            metrics.contains("vigil_cluster_shard_lag{shard=\"p0\"}"),
            "{metrics}"
        );
    }
    node.stop();
}

fn encoded(message: &str) -> Vec<u8> {
    let mut e = vigil_event::Event::new(vigil_event::Timestamp::from_nanos(1));
    e.insert("message", message);
    vigil_cluster::codec::encode(std::slice::from_ref(&e), 1 << 20).remove(0)
}
