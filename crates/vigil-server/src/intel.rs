//! Threat intelligence, enrichment tables and GeoIP at ingest (docs/intel.md): the enricher
//! built from `[intel]` and `[enrich]`, its reload timer, the bundled rule, and
//! `GET /api/v1/intel` (the lists in force, their source, count and age, and the counters).
//! The matching itself is `vigil_enrich`'s; the pipeline applies it (`Ingest::with_enricher`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::watch;
use vigil_config::Config;
use vigil_enrich::{Enricher, Settings};

use crate::http::AppState;

/// The enricher `config` asks for, loaded once off the runtime (a million indicators take
/// seconds); `None` when nothing is configured. A file that cannot be read is reported (log,
/// API) and enrichment starts without it.
pub async fn enricher(config: &Config) -> Option<Arc<Enricher>> {
    let settings = Settings {
        feeds: config.intel.feeds.clone(),
        max_indicators: config.intel.max_indicators,
        tables: config.enrich.tables.clone(),
        max_rows: config.enrich.max_rows,
        geoip: config.enrich.geoip.clone(),
    };
    if settings.is_empty() {
        return None;
    }
    let enricher = tokio::task::spawn_blocking(move || Enricher::new(settings))
        .await
        .ok()?;
    for s in enricher.status() {
        match &s.error {
            None => {
                tracing::info!(path = %s.path.display(), role = s.role, format = s.format, count = s.count, "enrichment loaded")
            }
            Some(e) => {
                tracing::warn!(path = %s.path.display(), role = s.role, "enrichment not loaded: {e}")
            }
        }
    }
    Some(Arc::new(enricher))
}

/// Writes the bundled intel rule beside Vigil's own rules when feeds are configured.
pub fn write_rule(config: &Config, dir: &std::path::Path) -> Result<(), String> {
    let (name, text) = vigil_enrich::BUNDLED_RULE;
    let path = dir.join(name);
    if config.intel.feeds.is_empty() {
        // Feeds removed: the rule goes too (it could only be raised by a match).
        let _ = std::fs::remove_file(&path);
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Re-reads changed files every `every` until `stop`: the new lists apply to the next batch.
pub async fn reload(
    enricher: Arc<Enricher>,
    every: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let every = every.max(std::time::Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let e = Arc::clone(&enricher);
        let Ok(changes) = tokio::task::spawn_blocking(move || e.reload()).await else {
            continue;
        };
        for (path, error) in changes {
            match error {
                None => tracing::info!(path = %path.display(), "enrichment file reloaded"),
                Some(e) => {
                    tracing::warn!(path = %path.display(), "enrichment file not reloaded, the previous contents stay: {e}")
                }
            }
        }
    }
}

/// `GET /api/v1/intel`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/intel", get(status))
}

async fn status(State(state): State<Arc<AppState>>) -> Response {
    let Some(enricher) = state.ingest.enricher() else {
        return axum::Json(json!({"enabled": false, "sources": [], "indicators": 0}))
            .into_response();
    };
    let snapshot = enricher.snapshot();
    let stats = &enricher.stats;
    let sources: Vec<serde_json::Value> = enricher.status().iter().map(|s| s.to_json()).collect();
    axum::Json(json!({
        "enabled": true,
        "indicators": snapshot.intel().len(),
        "sources": sources,
        "counters": {
            "intel_matches": stats.intel_matches.load(Ordering::Relaxed),
            "table_joins": stats.table_joins.load(Ordering::Relaxed),
            "geo_hits": stats.geo_hits.load(Ordering::Relaxed),
            "claims_moved": stats.claims_moved.load(Ordering::Relaxed),
            "reloads": stats.reloads.load(Ordering::Relaxed),
        },
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use vigil_event::{Event, Timestamp, Value};

    #[test]
    fn the_bundled_rule_compiles_and_fires_only_on_vigils_own_match_field() {
        let (_, text) = vigil_enrich::BUNDLED_RULE;
        let docs: Vec<_> = vigil_detect::rule::load_str(text, "vigil-intel.yml")
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let (set, issues) = vigil_detect::RuleSet::compile(docs);
        assert!(issues.is_empty(), "{issues:?}");
        let mut hit = Event::new(Timestamp::from_secs(1));
        hit.insert(vigil_enrich::fields::MATCHES, Value::Int(1));
        assert_eq!(set.matches(&hit).len(), 1);
        let mut claimed = Event::new(Timestamp::from_secs(1));
        claimed.insert("external.vigil.intel.matches", Value::Int(1));
        assert!(set.matches(&claimed).is_empty());
    }
}
