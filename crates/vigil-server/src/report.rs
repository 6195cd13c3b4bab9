//! Compliance reports (`vigil report`, `GET /api/v1/report/{framework}`): one pass over the
//! ledger into `vigil-report`'s tally, a full verification and the period's checkpoints for the
//! integrity section, retention from the latest start's settings and the prune records, and a
//! signature with the ledger key. Blocking; the HTTP handler runs it on a blocking thread, one
//! at a time.

use std::path::Path;

use serde_json::{Value as Json, json};
use vigil_event::{Event, Timestamp};
use vigil_ledger::{LedgerPaths, LedgerReader, VerifyOptions, hex, merkle};
use vigil_report::{IntegrityFacts, Mapping, Period, RetentionFacts, Tally};

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// The framework id (`pci-dss`).
    pub framework: String,
    /// Period start (ns); `None`: the first event.
    pub from: Option<i64>,
    /// Period end (ns, exclusive).
    pub to: i64,
    /// Only events this search selects count (Vigil's own always do).
    pub scope: Option<String>,
    /// The detection rules enabled, for the logsource evidence (`None`: not known).
    pub rules: Option<Vec<vigil_report::EnabledRule>>,
}

/// The rules of `loaded` as the report's logsource evidence takes them.
pub fn enabled_rules(loaded: &vigil_detect::load::LoadedRules) -> Vec<vigil_report::EnabledRule> {
    loaded
        .set
        .rules()
        .map(|(_, r)| vigil_report::EnabledRule {
            title: r.meta.title.clone(),
            logsource: vigil_report::Logsource {
                product: r.meta.logsource.product.clone(),
                category: r.meta.logsource.category.clone(),
                service: r.meta.logsource.service.clone(),
            },
        })
        .collect()
}

/// The logsources a framework asks for, each with the ways an event belongs to it (Vigil's
/// Sigma logsource table, `vigil_detect::mapping`: the one rules run on).
struct LogsourceMatcher(Vec<(String, Vec<vigil_detect::mapping::Alternative>)>);

impl LogsourceMatcher {
    fn new(framework: &vigil_report::Framework) -> LogsourceMatcher {
        LogsourceMatcher(
            vigil_report::Mapping::logsources(framework)
                .into_iter()
                .map(|l| {
                    let sigma = vigil_detect::rule::LogSource {
                        product: l.product.clone(),
                        category: l.category.clone(),
                        service: l.service.clone(),
                    };
                    (l.key(), vigil_detect::mapping::resolve(&sigma).alternatives)
                })
                .collect(),
        )
    }

    /// Counts `event` under every logsource it belongs to.
    fn observe(&self, tally: &mut Tally, event: &Event) {
        for (key, alternatives) in &self.0 {
            if alternatives.iter().any(|a| belongs(a, event)) {
                tally.observe_logsource(key, event);
            }
        }
    }
}

/// Whether `event` holds every constraint of `alternative` (a field equal to one of the values,
/// case-insensitively; numbers as text; any element of a list).
fn belongs(alternative: &vigil_detect::mapping::Alternative, event: &Event) -> bool {
    use vigil_event::Value;
    alternative.when.iter().all(|(field, values)| {
        let is = |v: &Value| {
            let text = match v {
                Value::Str(s) => std::borrow::Cow::Borrowed(s.as_str()),
                other => std::borrow::Cow::Owned(other.to_string()),
            };
            values.iter().any(|w| w.eq_ignore_ascii_case(&text))
        };
        match event.get(field) {
            Some(Value::List(items)) => items.iter().any(is),
            Some(v) => is(v),
            None => false,
        }
    })
}

/// The stages a report goes through, for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading the ledger's events.
    Reading,
    /// Verifying the whole ledger.
    Verifying,
}

/// Computes the signed report of `request` over the ledger in `data_dir` with `mapping`.
/// `progress(stage, done, total)` is called as it goes. A ledger that cannot be read to its end
/// still gets its report: the numbers of what was read, and an integrity section that fails
/// and says what and where.
pub fn compute(
    data_dir: &Path,
    mapping: &Mapping,
    request: &ReportRequest,
    progress: &mut dyn FnMut(Stage, u64, u64),
) -> Result<Json, String> {
    let Some(framework) = mapping.framework(&request.framework) else {
        let known: Vec<&str> = mapping.frameworks.iter().map(|f| f.id.as_str()).collect();
        return Err(format!(
            "no framework {:?} in the mapping; known: {}",
            request.framework,
            known.join(", ")
        ));
    };
    let scope = match &request.scope {
        Some(q) => Some(
            vigil_query::parse(q)
                .map_err(|e| format!("scope: query error at column {}: {}", e.column, e.message))?,
        ),
        None => None,
    };
    // A period ends now at the latest (a later end would call every source silent), and
    // must not be empty.
    let to = request.to.min(Timestamp::now().as_nanos());
    let from = request.from;
    if from.is_some_and(|f| f >= to) {
        return Err(
            "the period is empty: its start must be before its end (and before now)".into(),
        );
    }
    let logsources = LogsourceMatcher::new(framework);
    let mut reader = LedgerReader::open(data_dir).map_err(|e| e.to_string())?;
    let (first, end) = (reader.first_seq(), reader.end_seq());
    let mut tally = Tally::default();
    let mut oldest: Option<i64> = None;
    let mut retention_setting: Option<String> = None;
    let mut period_from = i64::MAX;
    let read = reader.for_each_raw(first..end, |seq, bytes| {
        if (seq - first) % 4096 == 0 {
            progress(Stage::Reading, seq - first, end - first);
        }
        let Ok(event) = Event::from_canonical(bytes) else {
            return Ok(());
        };
        // Received time for what came over the network (a sender chooses its @timestamp).
        let t = vigil_report::tally::time_of(&event);
        oldest = Some(oldest.map_or(t, |o| o.min(t)));
        let own = event.get_str("vigil.source") == Some("vigil");
        if own && event.get_str("event.action") == Some("vigil_start") {
            // The settings audit writes an unset value as `none`: keep everything.
            retention_setting = event
                .get("vigil.settings.retention.max_age")
                .map(|v| v.to_string())
                .filter(|v| v != "none");
        }
        let in_period = from.is_none_or(|f| t >= f) && t < to;
        if !own && from.is_some_and(|f| t < f) {
            tally.saw_before(&event, t);
        }
        let in_scope = own
            || scope.as_ref().is_none_or(|p| {
                p.search
                    .as_ref()
                    .is_none_or(|s| vigil_query::exec::matches(s, &event))
            });
        if in_period && in_scope {
            period_from = period_from.min(t);
            tally.observe(mapping, seq, &event);
            logsources.observe(&mut tally, &event);
        }
        Ok(())
    });
    let read_error = read.err().map(|e| e.to_string());
    let period = Period {
        from: Timestamp::from_nanos(from.unwrap_or(if period_from == i64::MAX {
            to
        } else {
            period_from
        })),
        to: Timestamp::from_nanos(to),
        scope: request.scope.clone(),
    };
    let mut integrity = integrity(data_dir, &mut reader, &period, progress);
    if let Some(e) = read_error {
        integrity.verified = false;
        integrity
            .problems
            .push(format!("reading the events for this report stopped: {e}"));
    }
    let retention = retention(data_dir, oldest, retention_setting)?;
    let mut report = vigil_report::report(
        mapping,
        framework,
        &period,
        &tally,
        &integrity,
        &retention,
        request.rules.as_deref(),
    );
    sign(data_dir, &mut reader, &mut report)?;
    Ok(report)
}

/// A full verification, the period's checkpoints and the consistency proof between its first
/// and last.
fn integrity(
    data_dir: &Path,
    reader: &mut LedgerReader,
    period: &Period,
    progress: &mut dyn FnMut(Stage, u64, u64),
) -> IntegrityFacts {
    let verified = vigil_ledger::verify(data_dir, &VerifyOptions::default(), &mut |done, total| {
        progress(Stage::Verifying, done, total)
    });
    let (ok, problems) = match verified {
        Ok(r) => (
            r.problems.is_empty(),
            r.problems.iter().map(|p| p.to_string()).collect(),
        ),
        Err(e) => (false, vec![e.to_string()]),
    };
    let in_period: Vec<_> = reader
        .checkpoints()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            c.checkpoint
                .time()
                .and_then(|t| Timestamp::parse(t).ok())
                .is_some_and(|t| t >= period.from && t < period.to)
        })
        .collect();
    let checkpoints = in_period
        .iter()
        .map(|c| {
            json!({"size": c.checkpoint.size, "time": c.checkpoint.time(), "root": c.checkpoint.root_hex()})
        })
        .collect();
    let (mut consistency_proof, mut consistency_verified) = (Vec::new(), None);
    if let (Some(a), Some(b)) = (
        in_period.iter().min_by_key(|c| c.checkpoint.size),
        in_period.iter().max_by_key(|c| c.checkpoint.size),
    ) && a.checkpoint.size < b.checkpoint.size
        && a.checkpoint.size > 0
    {
        match reader.consistency_proof(a.checkpoint.size, b.checkpoint.size) {
            Ok(proof) => {
                consistency_verified = Some(
                    merkle::verify_consistency(
                        a.checkpoint.size,
                        b.checkpoint.size,
                        &proof,
                        &a.checkpoint.root,
                        &b.checkpoint.root,
                    )
                    .is_ok(),
                );
                consistency_proof = proof.iter().map(hex).collect();
            }
            Err(_) => consistency_verified = Some(false),
        }
    }
    let mut problems = problems;
    let cosigned = cosignatures(data_dir, reader, period, &mut problems);
    IntegrityFacts {
        verified: ok && problems.is_empty(),
        problems,
        checkpoints,
        consistency_proof,
        consistency_verified,
        witness_cosignatures: cosigned.0,
        cosigned_checkpoints: cosigned.1,
        witnesses: cosigned.2,
    }
}

/// The witnesses' cosignatures of the period's checkpoints (`ledger/cosignatures.log`): those
/// on a checkpoint the ledger key signed, whose time falls in the period and whose root is this
/// ledger's tree at its size; one that is not this ledger's tree is a problem (a rollback or a
/// fork after the witness saw it). Returns (cosignatures, checkpoints cosigned, witnesses).
fn cosignatures(
    data_dir: &Path,
    reader: &mut LedgerReader,
    period: &Period,
    problems: &mut Vec<String>,
) -> (usize, usize, Vec<String>) {
    use vigil_ledger::note::{Checkpoint, parse_note};
    let paths = LedgerPaths::new(data_dir);
    let (Ok(notes), Ok(log_key)) = (
        vigil_ledger::cosigned::read(&paths),
        vigil_ledger::load_verifier(&paths),
    ) else {
        return (0, 0, Vec::new());
    };
    let (mut count, mut sizes, mut witnesses) = (
        0,
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    for note in &notes {
        let (Ok(text), Ok(parsed)) = (log_key.open(note), parse_note(note)) else {
            continue;
        };
        let Ok(checkpoint) = Checkpoint::parse(text) else {
            continue;
        };
        let in_period = checkpoint
            .time()
            .and_then(|t| Timestamp::parse(t).ok())
            .is_some_and(|t| t >= period.from && t < period.to);
        if !in_period {
            continue;
        }
        match reader.root_at(checkpoint.size) {
            Ok(root) if root == checkpoint.root => {}
            _ => {
                problems.push(format!(
                    "a witness cosigned a checkpoint of size {} whose root {} is not this ledger's tree at that size: the ledger was rolled back or forked after it saw it",
                    checkpoint.size,
                    checkpoint.root_hex()
                ));
                continue;
            }
        }
        for sig in parsed
            .signatures
            .iter()
            .filter(|s| s.name != log_key.name())
        {
            count += 1;
            sizes.insert(checkpoint.size);
            witnesses.insert(sig.name.clone());
        }
    }
    (count, sizes.len(), witnesses.into_iter().collect())
}

fn retention(
    data_dir: &Path,
    oldest: Option<i64>,
    setting: Option<String>,
) -> Result<RetentionFacts, String> {
    let paths = LedgerPaths::new(data_dir);
    let pruned = vigil_ledger::prune_records(&paths)
        .unwrap_or_default()
        .iter()
        .map(|p| json!({"end": p.end, "time": p.time.to_rfc3339(), "reason": p.reason}))
        .collect();
    let holds = vigil_ledger::legal_hold(data_dir)
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    let policy_days = setting
        .as_deref()
        .and_then(|s| vigil_ledger::parse_duration(s).ok())
        .map(|d| d.as_secs() / 86_400);
    Ok(RetentionFacts {
        oldest: oldest.map(|t| Timestamp::from_nanos(t).to_rfc3339()),
        policy: setting.map(|s| format!("remove sealed segments older than {s}")),
        policy_days,
        pruned,
        holds,
    })
}

/// Adds `signature` (format: `vigil_report::signature`): the SHA-256 of the report's JSON, the
/// latest checkpoint, the ledger's verifier key, and a signed note over the framework, the
/// digest and the checkpoint's size with the ledger key.
fn sign(data_dir: &Path, reader: &mut LedgerReader, report: &mut Json) -> Result<(), String> {
    let digest = vigil_report::signature::digest(report);
    let checkpoint = reader.latest_checkpoint().map_err(|e| e.to_string())?;
    let size = checkpoint.as_ref().map_or(0, |c| c.checkpoint.size);
    let text = vigil_report::signature::note_text(
        report["framework"].as_str().unwrap_or_default(),
        &digest,
        size,
    );
    let paths = LedgerPaths::new(data_dir);
    let signed = vigil_ledger::load_or_create_signer(&paths)
        .map_err(|e| e.to_string())
        .and_then(|s| s.sign(&text).map_err(|e| e.to_string()));
    let key = vigil_ledger::load_verifier(&paths)
        .map(|v| v.to_vkey())
        .ok();
    report["signature"] = json!({
        "digest": digest,
        "checkpoint": checkpoint.map(|c| c.note),
        "key": key,
        "note": signed.as_ref().ok(),
        "error": signed.as_ref().err().map(|e| format!("the report is NOT signed: {e}")),
    });
    Ok(())
}
