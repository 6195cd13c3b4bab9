//! SigmaHQ's AWS CloudTrail rules (`rules/cloud/aws`) on the real Stratus Red Team CloudTrail
//! deliveries in the corpus (`invictus-aws-cloudtrail`), read the way Vigil reads them: each
//! delivery's `Records` cut by `vigil_parse::cloud::split_records`, each record parsed by
//! `parse_line`. The rules select the records through the logsource table (`product: aws,
//! service: cloudtrail` → `event.dataset: aws.cloudtrail`), and rules whose selection is only
//! `eventSource`/`eventName` fire exactly on the records counted here from the raw JSON.
//! A keyword rule of an undeclared product does not fire on them.

mod common;

use std::collections::BTreeMap;

use vigil_detect::report::load_dir;
use vigil_detect::{Document, RuleSet, load_str};
use vigil_event::Timestamp;
use vigil_parse::{Format, ParseContext, parse_line};

#[test]
fn cloudtrail_rules_fire_on_the_attack_records() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let docs: Vec<Document> = load_dir(&corpus.join("sigma/rules/cloud/aws"))
        .into_iter()
        .flat_map(|(_, d)| d)
        .filter_map(Result::ok)
        .collect();
    let mut docs = docs;
    // A keyword rule no parser declares: it must run on nothing.
    docs.extend(
        load_str(
            "title: Undeclared keyword\nlogsource: {product: salesforce, service: x}\ndetection:\n    keywords: [amazonaws]\n    condition: keywords\n",
            "inline",
        )
        .into_iter()
        .filter_map(Result::ok),
    );
    let (set, _) = RuleSet::compile(docs);
    assert!(set.len() > 40, "{} AWS rules compiled", set.len());
    let ctx = ParseContext::new(Timestamp::parse("2026-12-07T00:00:00Z").unwrap(), "t");
    let dir = corpus.join("invictus-aws-cloudtrail/CloudTrail");
    let mut fired: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    let mut records = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        // Independently: the record count and event names, from the raw JSON.
        let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
        for r in raw["Records"].as_array().unwrap() {
            *by_name
                .entry(format!(
                    "{}/{}",
                    r["eventSource"].as_str().unwrap(),
                    r["eventName"].as_str().unwrap()
                ))
                .or_default() += 1;
        }
        for line in vigil_parse::cloud::split_records(&text).expect("a CloudTrail delivery") {
            records += 1;
            let e = parse_line(line.as_bytes(), Format::Auto, &ctx);
            assert_eq!(e.get_str("event.dataset"), Some("aws.cloudtrail"));
            for id in set.matches(&e) {
                *fired
                    .entry(set.rule(id).unwrap().meta.title.clone())
                    .or_default() += 1;
            }
        }
    }
    eprintln!("{records} records; rules fired: {fired:#?}");
    assert_eq!(records, by_name.values().sum::<usize>());
    let count = |names: &[&str]| -> usize {
        names
            .iter()
            .map(|n| by_name.get(*n).copied().unwrap_or(0))
            .sum()
    };
    let important = count(&[
        "cloudtrail.amazonaws.com/StopLogging",
        "cloudtrail.amazonaws.com/UpdateTrail",
        "cloudtrail.amazonaws.com/DeleteTrail",
    ]);
    assert!(important > 0, "the attack stops or deletes a trail");
    assert_eq!(
        fired
            .get("AWS CloudTrail Important Change")
            .copied()
            .unwrap_or(0),
        important
    );
    let routes = count(&["ec2.amazonaws.com/CreateRoute"]);
    assert!(routes > 0);
    assert_eq!(
        fired.get("New Network Route Added").copied().unwrap_or(0),
        routes
    );
    assert_eq!(
        fired.get("Undeclared keyword"),
        None,
        "an undeclared logsource runs on nothing"
    );
}

/// SigmaHQ rules of one product, compiled.
fn product_rules(corpus: &std::path::Path, dirs: &[&str]) -> RuleSet {
    let mut docs: Vec<Document> = Vec::new();
    for dir in dirs {
        docs.extend(
            load_dir(&corpus.join("sigma").join(dir))
                .into_iter()
                .flat_map(|(_, d)| d)
                .filter_map(Result::ok),
        );
    }
    let (set, issues) = RuleSet::compile(docs);
    for i in &issues {
        eprintln!("{dirs:?}: not compiled: {i:?}");
    }
    set
}

/// Which rules fire on each line of a JSON-lines sample file.
fn fire_per_line(set: &RuleSet, path: &std::path::Path) -> Vec<Vec<String>> {
    let ctx = ParseContext::new(Timestamp::parse("2026-12-07T00:00:00Z").unwrap(), "t");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let e = parse_line(line.as_bytes(), Format::Auto, &ctx);
            set.matches(&e)
                .into_iter()
                .map(|id| set.rule(id).unwrap().meta.title.clone())
                .collect()
        })
        .collect()
}

#[test]
fn explore_cloud_rules() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let panther = corpus.join("panther-rule-test-events/rule-tests");
    for (dirs, file) in [
        (&["rules/cloud/azure"][..], "Azure.MonitorActivity"),
        (&["rules/cloud/azure"][..], "Azure.Audit"),
        (&["rules/cloud/gcp"][..], "GCP.AuditLog"),
        (&["rules/identity/okta"][..], "Okta.SystemLog"),
        (&["rules/application/github"][..], "GitHub.Audit"),
        (&["rules/application/kubernetes"][..], "Amazon.EKS.Audit"),
        (&["rules/cloud/m365"][..], "Microsoft365.Audit"),
    ] {
        let set = product_rules(&corpus, dirs);
        let labels = std::fs::read_to_string(panther.join(format!("{file}.labels.tsv"))).unwrap();
        let labels: Vec<&str> = labels.lines().skip(1).collect();
        let fired = fire_per_line(&set, &panther.join(format!("{file}.jsonl")));
        eprintln!("=== {file}: {} rules", set.len());
        for (i, f) in fired.iter().enumerate() {
            let l: Vec<&str> = labels[i].split('\t').collect();
            if !f.is_empty() || l[3] == "True" {
                eprintln!("{}\t{}\t{}\t{:?}", i + 1, l[1], l[3], f);
            }
        }
    }
}
