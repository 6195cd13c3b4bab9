//! From the tally and the facts read at the edges (verification, checkpoints, retention) to the
//! report of one framework: every control with its status and the numbers behind it.

use serde::Serialize;
use serde_json::{Value as Json, json};
use vigil_event::Timestamp;

use crate::cadence::{MIN_SILENCE_SECS, SILENCE_FACTOR};
use crate::mapping::{Control, Framework, Mapping, Section};
use crate::tally::{RECORD_FIELDS, Tally};

/// A control's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The logs show what the control asks.
    Met,
    /// Something the control asks is missing from the logs (a source, a field, a review).
    Gap,
    /// The logs show the control failing (a ledger that does not verify, a silent source, an
    /// unclean stop).
    Failed,
}

/// What `vigil verify` and the checkpoints say, read by the caller.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IntegrityFacts {
    /// Whether the whole ledger verified.
    pub verified: bool,
    /// Its problems, first bad place first (empty when verified).
    pub problems: Vec<String>,
    /// Signed checkpoints whose time falls in the period: `{size, time, root}`.
    pub checkpoints: Vec<Json>,
    /// Consistency proof from the period's first to its last checkpoint (hex), when there are
    /// two sizes.
    pub consistency_proof: Vec<String>,
    /// Whether that proof checked against both signed roots.
    pub consistency_verified: Option<bool>,
    /// Cosignatures by witnesses (`ledger/cosignatures.log`) of checkpoints of the period that
    /// the ledger key signed and that are this ledger's tree (one per witness and checkpoint;
    /// the witnesses' own signatures are checked by `vigil verify --witness-key`).
    pub witness_cosignatures: usize,
    /// Checkpoints of the period with at least one such cosignature.
    pub cosigned_checkpoints: usize,
    /// The witnesses (key names) that cosigned them.
    pub witnesses: Vec<String>,
}

/// What the retention settings and records say, read by the caller.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionFacts {
    /// Time of the oldest event still stored (RFC 3339).
    pub oldest: Option<String>,
    /// The configured policy, as text (`keep 400 days`), or none configured (keep forever).
    pub policy: Option<String>,
    /// Days the policy keeps (none: forever).
    pub policy_days: Option<u64>,
    /// Pruning records: `{end, time, reason}`.
    pub pruned: Vec<Json>,
    /// Legal holds in force.
    pub holds: Vec<String>,
}

/// An enabled detection rule, as the logsource evidence needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnabledRule {
    /// Its title.
    pub title: String,
    /// Its Sigma logsource.
    pub logsource: crate::mapping::Logsource,
}

/// The report period and scope.
#[derive(Debug, Clone)]
pub struct Period {
    /// From (inclusive).
    pub from: Timestamp,
    /// To (exclusive).
    pub to: Timestamp,
    /// The scope query, if any.
    pub scope: Option<String>,
}

/// Alerts must be acknowledged within this to count as reviewed daily (PCI DSS 10.4.1).
pub const ACK_WITHIN_SECS: i64 = 24 * 3600;

fn time(ns: i64) -> String {
    Timestamp::from_nanos(ns).to_rfc3339()
}

/// The sources that went silent before the period's end: `{source, last_seen, silent_secs,
/// learned_gap_secs}`. Vigil's own events and sources with fewer than 4 events are not judged.
pub fn silent_sources(tally: &Tally, end: Timestamp) -> Vec<Json> {
    let mut out = Vec::new();
    for (name, s) in &tally.sources {
        if name == crate::tally::OWN_SOURCE || s.events < 4 {
            continue;
        }
        let (Some(gap), Some(tolerance)) = (
            s.cadence.gap_quantile(0.99),
            s.cadence.tolerance(SILENCE_FACTOR, MIN_SILENCE_SECS),
        ) else {
            continue;
        };
        if let Some(silent) = s
            .cadence
            .silent_at(end.as_nanos(), SILENCE_FACTOR, MIN_SILENCE_SECS)
        {
            out.push(json!({
                "source": name,
                "last_seen": time(s.cadence.last),
                "silent_secs": silent,
                "learned_gap_secs": gap,
                "tolerance_secs": tolerance,
            }));
        }
    }
    // Sources that sent before the period and nothing in it: silent since before it began.
    for (name, last) in &tally.before {
        if name == crate::tally::OWN_SOURCE || tally.sources.contains_key(name) {
            continue;
        }
        out.push(json!({
            "source": name,
            "last_seen": time(*last),
            "silent_secs": end.as_nanos().saturating_sub(*last) / 1_000_000_000,
            "learned_gap_secs": null,
            "tolerance_secs": null,
            "reason": "sent before the period and nothing in it",
        }));
    }
    out
}

fn rule_matches(control: &Control, tags: &[String]) -> bool {
    tags.iter().any(|t| {
        let t = t.to_ascii_lowercase();
        control
            .tags
            .iter()
            .chain(&control.attack)
            .any(|c| c.eq_ignore_ascii_case(&t))
    })
}

/// The whole report of `framework` as JSON (DESIGN's `report` shape, without the signature the
/// caller adds).
pub fn report(
    mapping: &Mapping,
    framework: &Framework,
    period: &Period,
    tally: &Tally,
    integrity: &IntegrityFacts,
    retention: &RetentionFacts,
    rules: Option<&[EnabledRule]>,
) -> Json {
    let silent = silent_sources(tally, period.to);
    let review = review(tally);
    let controls: Vec<Json> = framework
        .controls
        .iter()
        .map(|c| {
            let mut out = control(mapping, c, tally, integrity, retention, &silent, &review);
            if !c.logsources.is_empty() {
                out["evidence"]["logsources"] = logsources(c, tally, rules);
            }
            out
        })
        .collect();
    json!({
        "framework": format!("{}-{}", framework.id, framework.version),
        "name": framework.name,
        "version": framework.version,
        "period": {"from": period.from.to_rfc3339(), "to": period.to.to_rfc3339()},
        "scope": period.scope,
        "events": tally.events,
        "sources": tally.sources.len() as u64 + u64::from(tally.other_sources > 0),
        "controls": controls,
        "review": review,
        "integrity": integrity_json(integrity, tally),
        "retention": retention,
        "failures": {
            "silent_sources": silent,
            "starts": tally.counts.get("starts").copied().unwrap_or(0),
            "stops": tally.stops,
            "unclean_stops": tally.unclean_stops,
            "drops": tally.parse_errors,
            "audit_reads": tally.audit_reads,
            "audit_reads_total": tally.counts.get("audit_reads").copied().unwrap_or(0),
        },
    })
}

/// The integrity facts, with the verification runs on record in the period (from the tally).
fn integrity_json(integrity: &IntegrityFacts, tally: &Tally) -> Json {
    let mut out = serde_json::to_value(integrity).expect("facts serialize");
    let failed = tally
        .verifications
        .iter()
        .filter(|v| v.outcome.as_deref() == Some("failure"))
        .count();
    out["verification_runs"] = json!({
        "total": tally.counts.get("verifications").copied().unwrap_or(0),
        "failed": failed,
        "runs": tally.verifications,
    });
    out
}

/// For each logsource `c` asks for: the sources that sent events of it, and the enabled rules
/// that watch it (`null` when the caller did not say which rules are enabled).
fn logsources(c: &Control, tally: &Tally, rules: Option<&[EnabledRule]>) -> Json {
    let out: Vec<Json> = c
        .logsources
        .iter()
        .map(|l| {
            let key = l.key();
            let seen = tally.logsources.get(&key).cloned().unwrap_or_default();
            let watching = rules.map(|rules| {
                let mut titles: Vec<&str> = rules
                    .iter()
                    .filter(|r| l.covered_by(&r.logsource))
                    .map(|r| r.title.as_str())
                    .collect();
                titles.sort_unstable();
                titles.dedup();
                titles.truncate(crate::tally::MAX_LISTED);
                titles
            });
            json!({
                "logsource": key,
                "events": seen.events,
                "sources": seen.sources,
                "more_sources": seen.more_sources,
                "rules": watching,
            })
        })
        .collect();
    Json::Array(out)
}

fn review(tally: &Tally) -> Json {
    let mut acks: Vec<i64> = tally
        .alerts
        .values()
        .filter_map(|a| {
            a.first_triage
                .map(|t| (t - a.created).max(0) / 1_000_000_000)
        })
        .collect();
    acks.sort_unstable();
    let open = tally.alerts.values().filter(|a| a.status == "open").count();
    let late = tally
        .alerts
        .values()
        .filter(|a| {
            a.first_triage
                .is_none_or(|t| (t - a.created) / 1_000_000_000 > ACK_WITHIN_SECS)
        })
        .count();
    let mut rules: Vec<&str> = tally.alerts.values().map(|a| a.rule.as_str()).collect();
    rules.sort_unstable();
    rules.dedup();
    json!({
        "alerts": tally.alerts.len(),
        "rules_fired": rules,
        "acknowledged": acks.len(),
        "open": open,
        "not_acknowledged_within_24h": late,
        "time_to_acknowledge_secs": {
            "median": acks.get(acks.len().saturating_sub(1) / 2),
            "max": acks.last(),
        },
        "triaged_per_day": tally.triaged_per_day,
    })
}

fn control(
    mapping: &Mapping,
    c: &Control,
    tally: &Tally,
    integrity: &IntegrityFacts,
    retention: &RetentionFacts,
    silent: &[Json],
    review: &Json,
) -> Json {
    let alerts = tally
        .alerts
        .values()
        .filter(|a| rule_matches(c, &a.tags))
        .count();
    let (status, sources, events, evidence) = match c.section {
        Section::Coverage => {
            let mut covered = Vec::new();
            let mut missing = Vec::new();
            let mut events = 0;
            let mut per_class = serde_json::Map::new();
            for class in &c.classes {
                let emitting: Vec<&String> = tally
                    .sources
                    .iter()
                    .filter(|(_, s)| s.classes.get(class).is_some_and(|n| *n > 0))
                    .map(|(name, _)| name)
                    .collect();
                per_class.insert(class.clone(), json!(emitting));
            }
            for (name, s) in &tally.sources {
                let n: u64 = c.classes.iter().filter_map(|k| s.classes.get(k)).sum();
                events += n;
                if n > 0 {
                    covered.push(name.clone());
                } else {
                    missing.push(name.clone());
                }
            }
            let all_classes_seen = per_class
                .values()
                .all(|v| v.as_array().is_some_and(|a| !a.is_empty()));
            let status = if all_classes_seen {
                Status::Met
            } else {
                Status::Gap
            };
            (
                status,
                json!({
                    "covered_total": covered.len(),
                    "missing_total": missing.len(),
                    "covered": listed(covered),
                    "missing": listed(missing),
                }),
                events,
                json!({"classes": per_class}),
            )
        }
        Section::Completeness => {
            let threshold = mapping.completeness_threshold;
            let mut per_source = serde_json::Map::new();
            let mut below = Vec::new();
            for (name, s) in &tally.sources {
                let ratios: serde_json::Map<String, Json> = RECORD_FIELDS
                    .iter()
                    .zip(s.fields)
                    .map(|(f, n)| (f.to_string(), json!(ratio(n, s.events))))
                    .collect();
                let short: Vec<&str> = RECORD_FIELDS
                    .iter()
                    .zip(s.fields)
                    .filter(|(_, n)| ratio(*n, s.events) < threshold)
                    .map(|(f, _)| *f)
                    .collect();
                if !short.is_empty() {
                    below.push(json!({"source": name, "fields": short}));
                }
                per_source.insert(name.clone(), Json::Object(ratios));
            }
            let status = if below.is_empty() {
                Status::Met
            } else {
                Status::Gap
            };
            (
                status,
                json!({"covered": [], "missing_total": below.len(), "missing": listed(below.iter().filter_map(|b| b["source"].as_str().map(str::to_owned)).collect())}),
                tally.events,
                json!({"threshold": threshold, "per_source": per_source, "below_threshold": below.into_iter().take(crate::tally::MAX_LISTED).collect::<Vec<_>>()}),
            )
        }
        Section::Review => {
            let late = review["not_acknowledged_within_24h"].as_u64().unwrap_or(0);
            let status = if late == 0 { Status::Met } else { Status::Gap };
            (status, json!({}), tally.alerts.len() as u64, review.clone())
        }
        Section::Integrity => {
            let status = if !integrity.verified || integrity.consistency_verified == Some(false) {
                Status::Failed
            } else if integrity.checkpoints.is_empty() {
                Status::Gap
            } else {
                Status::Met
            };
            (
                status,
                json!({}),
                tally.events,
                json!({"verified": integrity.verified, "problems": integrity.problems, "checkpoints": integrity.checkpoints.len(), "consistency_verified": integrity.consistency_verified,
                       "verification_runs": tally.counts.get("verifications").copied().unwrap_or(0),
                       "witness_cosignatures": integrity.witness_cosignatures, "cosigned_checkpoints": integrity.cosigned_checkpoints}),
            )
        }
        Section::Retention => {
            let status = match retention.policy_days {
                Some(days) if days < mapping.retention_days => Status::Gap,
                _ => Status::Met,
            };
            (
                status,
                json!({}),
                0,
                json!({"required_days": mapping.retention_days, "immediately_available_days": mapping.immediately_available_days, "policy": retention.policy, "oldest": retention.oldest, "pruned": retention.pruned.len(), "holds": retention.holds}),
            )
        }
        Section::Failures => {
            let unclean = tally.counts.get("unclean_stops").copied().unwrap_or(0);
            let status = if silent.is_empty() && unclean == 0 {
                Status::Met
            } else {
                Status::Failed
            };
            (
                status,
                json!({"covered": [], "missing": silent.iter().map(|s| s["source"].clone()).collect::<Vec<_>>()}),
                tally.parse_errors,
                json!({"silent_sources": silent.len(), "unclean_stops": unclean, "parse_errors": tally.parse_errors}),
            )
        }
    };
    json!({
        "id": c.id,
        "title": c.title,
        "section": c.section,
        "status": status,
        "sources": sources,
        "events": events,
        "alerts": alerts,
        "evidence": evidence,
    })
}

/// A list of source names as a report shows it: at most [`crate::tally::MAX_LISTED`] (the
/// totals beside it stay exact), so thousands of sender-chosen names cannot blow a report up.
fn listed(mut names: Vec<String>) -> Vec<String> {
    names.truncate(crate::tally::MAX_LISTED);
    names
}

fn ratio(n: u64, total: u64) -> f64 {
    if total == 0 {
        1.0
    } else {
        (n as f64 / total as f64 * 10_000.0).round() / 10_000.0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use vigil_event::{Event, Value, dataset};

    const HOUR: i64 = 3_600_000_000_000;

    fn alert_event(
        id: i64,
        action: &str,
        at: i64,
        created: i64,
        status: &str,
        tags: &[&str],
    ) -> Event {
        let mut e = Event::new(Timestamp::from_nanos(at));
        e.insert("event.dataset", dataset::VIGIL_ALERT);
        e.insert("event.kind", "alert");
        e.insert("event.action", format!("alert-{action}"));
        e.insert("vigil.source", "vigil");
        e.insert("vigil.alert.id", id);
        e.insert("vigil.alert.created", created);
        e.insert("vigil.alert.status", status);
        e.insert("rule.id", format!("r{}", id % 3));
        e.insert("rule.name", format!("rule {}", id % 3));
        e.insert(
            "tags",
            Value::List(tags.iter().map(|t| Value::from(*t)).collect()),
        );
        if action == "triaged" {
            e.insert("vigil.alert.triaged_at", at);
            e.insert("user.name", "analyst");
        }
        e
    }

    /// A generated alert history with known truth: alert i is created at hour i; alerts with
    /// i % 4 == 0 stay open, the others are acknowledged after (i % 5) × 10 hours and some
    /// triaged again; the review numbers must equal the ones counted here.
    #[test]
    fn review_numbers_equal_a_generated_alert_historys_truth() {
        let mapping = Mapping::builtin();
        let framework = mapping.framework("pci-dss").unwrap();
        let mut tally = Tally::default();
        let mut seq = 0;
        let (mut acks, mut open, mut late, mut per_day) = (Vec::new(), 0, 0, BTreeMap::new());
        let mut tagged = 0;
        for i in 0..40i64 {
            let created = i * HOUR;
            let tags: &[&str] = if i % 2 == 0 { &["attack.t1110"] } else { &[] };
            tagged += usize::from(i % 2 == 0);
            tally.observe(
                &mapping,
                seq,
                &alert_event(i, "created", created, created, "open", tags),
            );
            seq += 1;
            if i % 4 == 0 {
                open += 1;
                late += 1;
                continue;
            }
            let ack = created + (i % 5) * 10 * HOUR;
            tally.observe(
                &mapping,
                seq,
                &alert_event(i, "triaged", ack, created, "acknowledged", tags),
            );
            seq += 1;
            acks.push((ack - created) / 1_000_000_000);
            *per_day
                .entry(Timestamp::from_nanos(ack).to_rfc3339()[..10].to_owned())
                .or_insert(0u64) += 1;
            if (ack - created) / 1_000_000_000 > ACK_WITHIN_SECS {
                late += 1;
            }
            if i % 3 == 0 {
                let closed = ack + HOUR;
                tally.observe(
                    &mapping,
                    seq,
                    &alert_event(i, "triaged", closed, created, "closed", tags),
                );
                seq += 1;
                *per_day
                    .entry(Timestamp::from_nanos(closed).to_rfc3339()[..10].to_owned())
                    .or_insert(0u64) += 1;
            }
        }
        acks.sort_unstable();
        let period = Period {
            from: Timestamp::from_nanos(0),
            to: Timestamp::from_nanos(100 * HOUR),
            scope: None,
        };
        let r = report(
            &mapping,
            framework,
            &period,
            &tally,
            &IntegrityFacts::default(),
            &RetentionFacts::default(),
            None,
        );
        let review = &r["review"];
        assert_eq!(review["alerts"], 40);
        assert_eq!(review["acknowledged"], acks.len());
        assert_eq!(review["open"], open);
        assert_eq!(review["not_acknowledged_within_24h"], late);
        assert_eq!(
            review["time_to_acknowledge_secs"]["max"],
            *acks.last().unwrap()
        );
        assert_eq!(
            review["time_to_acknowledge_secs"]["median"],
            acks[(acks.len() - 1) / 2]
        );
        assert_eq!(review["triaged_per_day"], json!(per_day));
        let status = |id: &str| {
            r["controls"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == id)
                .unwrap()
                .clone()
        };
        assert_eq!(status("10.4.1")["status"], "gap", "late acknowledgements");
        // Alerts of rules tagged with the control's ATT&CK technique count for it.
        assert_eq!(status("10.2.1.4")["alerts"], tagged);
        // Integrity facts that did not verify fail the integrity control.
        assert_eq!(status("10.3.2")["status"], "failed");
    }
}

#[cfg(test)]
mod bounds_tests {
    use super::*;
    use vigil_event::Event;

    #[test]
    fn thousands_of_long_source_names_are_cut_and_listed_within_bounds() {
        let mapping = Mapping::builtin();
        let mut tally = Tally::default();
        for i in 0..1_500u64 {
            let mut e = Event::new(Timestamp::from_secs(i as i64));
            e.insert("host.name", format!("{i:05}{}", "é".repeat(400)));
            e.insert("event.category", "authentication");
            e.insert("event.outcome", "failure");
            tally.observe(&mapping, i, &e);
        }
        assert!(
            tally
                .sources
                .keys()
                .all(|k| k.len() <= 4 * crate::tally::MAX_SOURCE_NAME)
        );
        let period = Period {
            from: Timestamp::from_secs(0),
            to: Timestamp::from_secs(2_000),
            scope: None,
        };
        let r = report(
            &mapping,
            mapping.framework("pci-dss").unwrap(),
            &period,
            &tally,
            &IntegrityFacts::default(),
            &RetentionFacts::default(),
            None,
        );
        let c = r["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "10.2.1.4")
            .unwrap();
        assert_eq!(c["sources"]["covered_total"], 1_500);
        assert_eq!(
            c["sources"]["covered"].as_array().unwrap().len(),
            crate::tally::MAX_LISTED
        );
        assert_eq!(c["events"], 1_500);
    }
}

#[cfg(test)]
mod logsource_tests {
    use super::*;
    use crate::mapping::Logsource;
    use vigil_event::Event;

    fn ls(product: Option<&str>, category: Option<&str>, service: Option<&str>) -> Logsource {
        Logsource {
            product: product.map(str::to_owned),
            category: category.map(str::to_owned),
            service: service.map(str::to_owned),
        }
    }

    /// A control's logsources list the sources the caller matched to each and the enabled
    /// rules on the same or a more specific logsource; without the rules, `rules` is null.
    #[test]
    fn each_required_logsource_names_its_sources_and_the_rules_watching_it() {
        let mapping = Mapping::builtin();
        let framework = mapping.framework("pci-dss").unwrap();
        let mut tally = Tally::default();
        for i in 0..3 {
            let mut e = Event::new(Timestamp::from_secs(i));
            e.insert("host.name", "web1");
            e.insert("vigil.sender", "syslog:10.0.0.5");
            tally.observe(&mapping, i as u64, &e);
            tally.observe_logsource("product: linux, service: sshd", &e);
        }
        let rules = [
            EnabledRule {
                title: "SSH brute force".into(),
                logsource: ls(Some("linux"), None, Some("sshd")),
            },
            EnabledRule {
                title: "Firewall deny storm".into(),
                logsource: ls(Some("fortigate"), Some("firewall"), None),
            },
            EnabledRule {
                title: "Any Linux".into(),
                logsource: ls(Some("linux"), None, None),
            },
        ];
        let period = Period {
            from: Timestamp::from_secs(0),
            to: Timestamp::from_secs(10),
            scope: None,
        };
        let facts = (IntegrityFacts::default(), RetentionFacts::default());
        let r = report(
            &mapping,
            framework,
            &period,
            &tally,
            &facts.0,
            &facts.1,
            Some(&rules),
        );
        let c = r["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "10.2.1.4")
            .unwrap();
        let by_key = |key: &str| {
            c["evidence"]["logsources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["logsource"] == key)
                .cloned()
                .unwrap_or_else(|| panic!("{key}: {c:#}"))
        };
        let sshd = by_key("product: linux, service: sshd");
        assert_eq!(sshd["events"], 3);
        assert_eq!(sshd["sources"], json!(["web1@syslog:10.0.0.5"]));
        // A rule on linux alone is less specific than linux/sshd: it does not count.
        assert_eq!(sshd["rules"], json!(["SSH brute force"]));
        let firewall = by_key("category: firewall");
        assert_eq!(firewall["events"], 0);
        assert_eq!(firewall["rules"], json!(["Firewall deny storm"]));
        let windows = by_key("product: windows, service: security");
        assert_eq!(windows["rules"], json!([]));
        let r = report(
            &mapping, framework, &period, &tally, &facts.0, &facts.1, None,
        );
        let c = &r["controls"].as_array().unwrap()[3];
        assert_eq!(c["id"], "10.2.1.4");
        assert!(c["evidence"]["logsources"][0]["rules"].is_null());
    }
}

#[cfg(test)]
mod drill_tests {
    use super::*;
    use vigil_event::Event;

    /// A drill's failed logins (marked by the door) are in no figure of the report; the same
    /// events unmarked are.
    #[test]
    fn drill_events_count_in_no_figure() {
        let mapping = Mapping::builtin();
        let failure = |drill: bool| {
            let mut e = Event::new(Timestamp::from_secs(1));
            e.insert("host.name", "web1");
            e.insert("event.category", "authentication");
            e.insert("event.outcome", "failure");
            if drill {
                e.insert(vigil_event::field::VIGIL_DRILL_RUN, "drill-1");
            }
            e
        };
        let mut drills = Tally::default();
        let mut real = Tally::default();
        for i in 0..10 {
            drills.observe(&mapping, i, &failure(true));
            real.observe(&mapping, i, &failure(false));
        }
        assert!(drills.sources.is_empty() && drills.counts.values().all(|n| *n == 0));
        assert!(!real.sources.is_empty());
    }
}
