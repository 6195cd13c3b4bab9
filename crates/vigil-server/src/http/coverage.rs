//! ATT&CK coverage: `GET /api/v1/coverage` (the tactics × techniques matrix of the enabled
//! rules, `vigil_detect::attack::coverage`) and `GET /api/v1/coverage/navigator` (the same as an
//! ATT&CK Navigator layer, format 4.5, to download).
//!
//! A rule counts only when its logsource is being received: each logsource alternative
//! (`vigil_detect::mapping::resolve`) is a set of `field = one of values` constraints, and it is
//! received when some event of the period (`from`, default the last 7 days) meets all of them.
//! That is asked of the search path once per distinct set of constraint fields
//! (`* | stats count by F1, F2`), and the constraints are then checked on the value tuples
//! with the mapping's own rule (case-insensitive, numbers as text). A correlation is received
//! when any rule it counts is.

#[allow(unused_imports)]
use super::*;

use std::collections::{BTreeMap, BTreeSet};

use vigil_detect::attack::{CoverageRule, coverage as matrix, navigator_layer};
use vigil_detect::mapping::{Alternative, resolve};
use vigil_detect::ruleset::CorrelationRef;

/// Distinct value tuples read per set of constraint fields.
const MAX_TUPLES: usize = 10_000;

#[derive(Deserialize, Default)]
pub(super) struct CoverageQuery {
    from: Option<String>,
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.to_lowercase()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Ip(ip) => Some(ip.to_string()),
        _ => None,
    }
}

/// Which alternatives some event of the period meets.
async fn received_alternatives(
    state: &Shared,
    alternatives: &BTreeSet<Alternative>,
    limits: vigil_query::Limits,
) -> Result<BTreeSet<Alternative>, Response> {
    let mut by_fields: BTreeMap<Vec<String>, Vec<&Alternative>> = BTreeMap::new();
    for alt in alternatives {
        let fields: Vec<String> = alt.when.iter().map(|(f, _)| f.clone()).collect();
        by_fields.entry(fields).or_default().push(alt);
    }
    let mut out = BTreeSet::new();
    for (fields, alts) in by_fields {
        let text = if fields.is_empty() {
            "* | stats count".to_owned()
        } else {
            format!("* | stats count by {}", fields.join(", "))
        };
        let r = crate::cases::query(
            state,
            &text,
            vigil_query::Limits {
                max_rows: MAX_TUPLES,
                ..limits
            },
        )
        .await?;
        let col = |name: &str| r.columns.iter().position(|c| c == name);
        let count_col = col("count");
        let tuples: Vec<Vec<Option<String>>> = r
            .rows
            .iter()
            .filter(|row| {
                count_col
                    .and_then(|c| row.get(c))
                    .and_then(Value::as_i64)
                    .is_some_and(|n| n > 0)
            })
            .map(|row| {
                fields
                    .iter()
                    .map(|f| col(f).and_then(|c| row.get(c)).and_then(text_of))
                    .collect()
            })
            .collect();
        for alt in alts {
            let met = tuples.iter().any(|tuple| {
                alt.when.iter().zip(tuple).all(|((_, values), got)| {
                    got.as_ref()
                        .is_some_and(|g| values.iter().any(|v| v.to_lowercase() == *g))
                })
            });
            if met {
                out.insert(alt.clone());
            }
        }
    }
    Ok(out)
}

/// The enabled rules with whether their logsource is received.
async fn coverage_rules(
    state: &Shared,
    detect: &crate::detect::DetectService,
    limits: vigil_query::Limits,
) -> Result<Vec<CoverageRule>, Response> {
    let loaded = detect.rules();
    let set = &loaded.set;
    let alts_of = |id: vigil_detect::RuleId| {
        set.rule(id)
            .map(|r| resolve(&r.meta.logsource).alternatives)
            .unwrap_or_default()
    };
    let all: BTreeSet<Alternative> = set.rules().flat_map(|(id, _)| alts_of(id)).collect();
    let received = received_alternatives(state, &all, limits).await?;
    let rule_received = |id: vigil_detect::RuleId| alts_of(id).iter().any(|a| received.contains(a));
    let mut out: Vec<CoverageRule> = set
        .rules()
        .filter(|(_, info)| info.generate)
        .map(|(id, info)| {
            let r = crate::detect::alert_rule(&info.meta);
            CoverageRule {
                id: r.id,
                title: r.title,
                tags: r.tags,
                received: rule_received(id),
            }
        })
        .collect();
    // Correlations: received when a rule they count is (chains: when the correlation they
    // count, listed earlier, is).
    let mut corr_received: Vec<bool> = Vec::new();
    for c in set.correlations() {
        let got = c.refs.iter().any(|r| match r {
            CorrelationRef::Rule(id) => rule_received(*id),
            CorrelationRef::Correlation(i) => corr_received.get(*i).copied().unwrap_or(false),
        });
        corr_received.push(got);
        let r = crate::detect::alert_rule(&c.rule.meta);
        out.push(CoverageRule {
            id: r.id,
            title: r.title,
            tags: r.tags,
            received: got,
        });
    }
    Ok(out)
}

async fn build(
    state: &Shared,
    q: &CoverageQuery,
) -> Result<vigil_detect::attack::Coverage, Response> {
    let Some(detect) = state.detect.clone() else {
        return Ok(matrix(&[]));
    };
    let now = Timestamp::now();
    let from = crate::search::resolve_time(Some(q.from.as_deref().unwrap_or("-7d")), now)
        .map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    let _turn = search_turn(state, || {}).await?;
    let limits = vigil_query::Limits {
        from,
        to: None,
        max_rows: MAX_TUPLES,
        now,
    };
    let rules = coverage_rules(state, &detect, limits).await?;
    Ok(matrix(&rules))
}

pub(super) async fn coverage(
    State(state): State<Shared>,
    Query(q): Query<CoverageQuery>,
) -> Response {
    match build(&state, &q).await {
        Ok(c) => {
            let mut body = c.to_json();
            body["from"] = json!(q.from.as_deref().unwrap_or("-7d"));
            body["detection"] = json!(state.detect.is_some());
            Json(body).into_response()
        }
        Err(r) => r,
    }
}

pub(super) async fn navigator(
    State(state): State<Shared>,
    Query(q): Query<CoverageQuery>,
) -> Response {
    match build(&state, &q).await {
        Ok(c) => (
            [(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"vigil-attack-layer.json\""),
            )],
            Json(navigator_layer(&c, "Vigil detection coverage")),
        )
            .into_response(),
        Err(r) => r,
    }
}
