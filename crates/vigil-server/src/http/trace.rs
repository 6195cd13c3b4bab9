//! `POST /api/v1/rules/trace`: why a stored event (or one given in the body) did or did not
//! match a loaded rule — which logsource, search identifier, field and modifier — computed by
//! `vigil_detect::trace::explain` on the rule as written in its file. A correlation is
//! explained by its detection rules, one trace each.

#[allow(unused_imports)]
use super::*;

use vigil_detect::ruleset::CorrelationRef;
use vigil_detect::{Document, SigmaRule};

/// Most detection rules traced for one correlation.
const MAX_TRACES: usize = 16;

/// Traces computed at once (each compiles rule pieces and may read every rule file for
/// filters); more wait briefly, then get 429.
static TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TraceRequest {
    /// The rule's id, name or title.
    rule: String,
    /// A stored event, by ledger sequence number…
    seq: Option<u64>,
    /// …or an event given whole (flat or nested JSON).
    event: Option<JsonValue>,
}

pub(super) async fn trace_rule(State(state): State<Shared>, body: Bytes) -> Response {
    let Some(detect) = state.detect.clone() else {
        return error(StatusCode::NOT_FOUND, "detection is off");
    };
    let request: TraceRequest = match json_body(
        &body,
        r#"{"rule": ID, "seq": N} or {"rule": ID, "event": {…}}"#,
    ) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if request.rule.len() > 1024 {
        return error(StatusCode::BAD_REQUEST, "rule longer than 1024 bytes");
    }
    let Ok(Ok(_turn)) = tokio::time::timeout(Duration::from_secs(5), TURNS.acquire()).await else {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "traces are busy; retry in a moment",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let dir = state.data_dir.clone();
    let work = move || -> Result<JsonValue, (StatusCode, String)> {
        let (event, seq) = match (request.seq, request.event) {
            (Some(seq), None) => {
                let mut reader = vigil_ledger::LedgerReader::open(&dir)
                    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                let event = reader
                    .read_event(seq)
                    .map_err(|e| (StatusCode::NOT_FOUND, format!("no event {seq}: {e}")))?;
                (event, Some(seq))
            }
            (None, Some(json)) => (
                Event::from_json_value(json, Timestamp::now())
                    .map_err(|e| (StatusCode::BAD_REQUEST, format!("event: {e}")))?,
                None,
            ),
            _ => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "give either `seq` (a stored event) or `event`".into(),
                ));
            }
        };
        let loaded = detect.rules();
        let set = &loaded.set;
        // The detection rules to explain: the rule itself, or a correlation's rules.
        let mut targets = Vec::new();
        let mut correlation = None;
        if let Some(id) = set.find(&request.rule).or_else(|| {
            set.rules()
                .find(|(_, r)| r.meta.title == request.rule)
                .map(|(id, _)| id)
        }) {
            targets.push(id);
        } else if let Some(c) = set.correlations().iter().find(|c| {
            let m = &c.rule.meta;
            m.id.as_deref() == Some(request.rule.as_str())
                || m.name.as_deref() == Some(request.rule.as_str())
                || m.title == request.rule
        }) {
            correlation = Some(c.rule.meta.title.clone());
            collect_rules(set, c, &mut targets, 0);
            targets.dedup();
            targets.truncate(MAX_TRACES);
        } else {
            return Err((
                StatusCode::NOT_FOUND,
                format!("no loaded rule {:?}", request.rule),
            ));
        }
        let mut traces = Vec::new();
        for id in targets {
            let Some(info) = set.rule(id) else { continue };
            let (rule, filters) = documents(&info.meta, !info.filters.is_empty(), detect.dirs())
                .ok_or_else(|| {
                    (
                        StatusCode::CONFLICT,
                        format!(
                            "rule {:?} is no longer in its file ({}); the rules changed since they were loaded",
                            info.meta.title,
                            info.meta.source.as_deref().unwrap_or("?")
                        ),
                    )
                })?;
            let t = vigil_detect::trace::explain(
                &rule,
                &filters,
                &event,
                &vigil_detect::CompileOptions::default(),
            );
            let mut j = serde_json::to_value(&t)
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            // What the running detector says, beside the explanation (they agree unless the
            // file changed since it was loaded).
            j["detector_matched"] = json!(set.matches(&event).contains(&id));
            traces.push(j);
        }
        let mut out = json!({"rule": request.rule, "traces": traces});
        if let Some(c) = correlation {
            out["correlation"] = json!(c);
        }
        if let Some(seq) = seq {
            out["seq"] = json!(seq);
        }
        let mut ev = event.to_json();
        if let Some(seq) = seq {
            ev["vigil.seq"] = json!(seq);
        }
        out["event"] = ev;
        Ok(out)
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err((status, message))) => error(status, message),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The detection rules a correlation counts, through correlations it chains (bounded depth).
fn collect_rules(
    set: &vigil_detect::RuleSet,
    c: &vigil_detect::ruleset::CompiledCorrelation,
    out: &mut Vec<vigil_detect::RuleId>,
    depth: usize,
) {
    if depth > 8 {
        return;
    }
    for r in &c.refs {
        match *r {
            CorrelationRef::Rule(id) => {
                if !out.contains(&id) {
                    out.push(id);
                }
            }
            CorrelationRef::Correlation(i) => {
                if let Some(inner) = set.correlations().get(i) {
                    collect_rules(set, inner, out, depth + 1);
                }
            }
        }
    }
}

/// The rule as written in its file (its `source`: `path` or `path#N`), and, when it has
/// filters, every filter document under the rule directories.
fn documents(
    meta: &vigil_detect::RuleMeta,
    with_filters: bool,
    dirs: &[PathBuf],
) -> Option<(SigmaRule, Vec<vigil_detect::rule::SigmaFilter>)> {
    let source = meta.source.as_deref()?;
    let path = match source.rsplit_once('#') {
        Some((p, n))
            if n.bytes().all(|b| b.is_ascii_digit()) && !std::path::Path::new(source).exists() =>
        {
            p
        }
        _ => source,
    };
    let path = std::path::Path::new(path);
    // Only files under the rule directories are read.
    if !dirs.iter().any(|d| path.starts_with(d)) {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let same = |m: &vigil_detect::RuleMeta| {
        m.id == meta.id && m.name == meta.name && m.title == meta.title
    };
    let rule = vigil_detect::load_str(&text, source)
        .into_iter()
        .flatten()
        .find_map(|d| match d {
            Document::Rule(r) if same(&r.meta) => Some(r),
            _ => None,
        })?;
    let mut filters = Vec::new();
    if with_filters {
        for dir in dirs {
            for (_, docs) in vigil_detect::report::load_dir(dir) {
                filters.extend(docs.into_iter().flatten().filter_map(|d| match d {
                    Document::Filter(f) => Some(f),
                    _ => None,
                }));
            }
        }
    }
    Some((rule, filters))
}
