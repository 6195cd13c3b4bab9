//! Behaviour rules over a generated scenario with known truth (issue 18): `vigil hunt` with
//! the bundled rules (`rules/behaviour`) over a week of benign history and a day with three
//! attacks raises exactly one alert per attack, each explaining its baseline, and nothing for
//! the benign week; `vigil rules check` accepts the bundled rules and refuses a document of a
//! kind Vigil does not know.

mod scenario;

use std::process::Command;

use scenario::{DAY, TRUTH};

fn vigil(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn hunt(files: &[&std::path::Path]) -> Vec<serde_json::Value> {
    let rules = scenario::rules_dir();
    let mut args = vec![
        "hunt",
        "--rules",
        rules.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let (ok, out, err) = vigil(&args);
    assert!(ok, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_truth_case_alerts_with_its_reason_and_the_benign_week_raises_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let start = 20_000 * DAY; // 2024-10-04, aligned to a day
    let benign = dir.path().join("a-benign.json");
    std::fs::write(&benign, scenario::benign(start).join("\n") + "\n").unwrap();
    let attacks = dir.path().join("b-attacks.json");
    std::fs::write(&attacks, scenario::attacks(start).join("\n") + "\n").unwrap();

    // The benign week alone: after each rule's learning period, nothing.
    let alerts = hunt(&[&benign]);
    assert!(alerts.is_empty(), "benign history alerted: {alerts:#?}");

    // The week, then the attacks: exactly the three truth cases.
    let alerts = hunt(&[&benign, &attacks]);
    let got: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            (
                a["rule"]["id"].as_str().unwrap().to_owned(),
                a["group_key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (rule, group) in TRUTH {
        assert!(
            got.contains(&(rule.to_owned(), group.to_owned())),
            "missing {rule} {group}; got {got:#?}"
        );
    }
    assert_eq!(got.len(), TRUTH.len(), "only the truth cases: {got:#?}");
    // Each explains itself: the kind, the value that broke the baseline, the baseline.
    for a in &alerts {
        let b = &a["baseline"];
        assert!(b.is_object(), "{a:#}");
        match b["kind"].as_str().unwrap() {
            "new_terms" => assert_eq!(b["observed"], "source.ip=198.51.100.77"),
            // Real time: an outlier alerts as soon as the window's value breaks the baseline
            // (and reaches the floor), not when the window ends.
            "outlier" => {
                let v: f64 = b["observed"].as_str().unwrap().parse().unwrap();
                assert!(v >= 20.0 && v > b["threshold"].as_f64().unwrap(), "{b:#}");
                assert!(b["median"].as_f64().unwrap() <= 3.0, "{b:#}");
                assert!(b["windows"].as_u64().unwrap() >= 24, "{b:#}");
            }
            "peer_outlier" => {
                let v: f64 = b["observed"].as_str().unwrap().parse().unwrap();
                assert!(v >= 40.0 && v > b["threshold"].as_f64().unwrap(), "{b:#}");
                assert_eq!(b["peer_group"], "user.department=support");
                assert_eq!(b["entities"], 4, "{b:#}");
                assert!(b["median"].as_f64().unwrap() < 15.0, "{b:#}");
            }
            other => panic!("unexpected kind {other}"),
        }
        assert!(!b["summary"].as_str().unwrap().is_empty());
    }
}

#[test]
fn rules_check_accepts_the_bundled_rules_and_refuses_an_unknown_kind() {
    let (ok, out, err) = vigil(&[
        "rules",
        "check",
        scenario::rules_dir().to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["unsupported"], 0, "{r:#}");
    let kinds: Vec<&str> = r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    for k in ["new_terms", "outlier", "peer_outlier"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("future.yml"),
        "title: Rare country\nkind: rare_country\ndetection: {s: {event.outcome: success}, condition: s}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("early.yml"),
        "title: Written before kinds\nnew_terms: {fields: [source.ip]}\ndetection: {s: {event.outcome: success}, condition: s}\n",
    )
    .unwrap();
    let (_, out, _) = vigil(&[
        "rules",
        "check",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["supported"], 0, "{r:#}");
    assert_eq!(r["unsupported"], 2, "{r:#}");
    let reasons: Vec<&str> = r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("unknown rule kind `rare_country`")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("needs `kind: new_terms`")),
        "{reasons:?}"
    );
}
